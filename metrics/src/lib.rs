//! # villas-metrics
//!
//! The Prometheus metrics of villas-controller, defined in one place
//! ([`names`]) so that the daemon, the README, the Grafana dashboard and
//! the alert rules in `metrics/` agree. Everything is registered on an
//! explicit [`prometheus::Registry`] owned by [`Metrics`], never a global
//! one, and written by the prometheus crate's `TextEncoder`. The daemon
//! hands out typed handles: [`DaemonMetrics`] to the bus and the
//! supervisor, an [`IcMetrics`] per IC, created with the labels of its
//! definition (never a value from a message payload).
//!
//! Per IC there are four series (state, state changes, time of the last
//! change, restarts); actions and run durations are counted by category
//! and type, and ICs per state by category, type and realm: see
//! `metrics/README.md` for why.

mod by_type;
mod daemon;
mod ic;
pub mod names;

pub use daemon::{DaemonMetrics, DropReason};
pub use ic::IcMetrics;

use prometheus::{IntGaugeVec, Opts, Registry, TextEncoder};
use std::sync::Arc;
use villas_sdk::ComponentSpec;

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics could not be set up or rendered.
#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

/// What `villas_controller_build_info` reports.
#[derive(Debug, Clone)]
pub struct BuildInfo {
    /// The controller's version.
    pub version: String,
    /// `release` or `debug`.
    pub profile: &'static str,
}

/// The registry and every metric of one daemon.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    daemon: Arc<DaemonMetrics>,
    /// The per-IC records, encoded after the registry's families.
    ics: Arc<ic::IcTable>,
}

impl Metrics {
    /// A registry with build info, the daemon's metrics, (on Linux) the
    /// standard `process_*` metrics and the families aggregated by kind,
    /// and an empty IC table.
    pub fn new(build: &BuildInfo) -> Result<Self, MetricsError> {
        let registry = Registry::new();
        register_build_info(&registry, build)?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let daemon = Arc::new(DaemonMetrics::register(&registry)?);
        let by_type = Arc::new(by_type::ByType::register(&registry)?);
        let ics = Arc::new(ic::IcTable::new(by_type));
        Ok(Metrics {
            registry,
            daemon,
            ics,
        })
    }

    /// The registry of every metric but the per-IC families and
    /// `villas_ics` (encoded from the IC table by [`Metrics::scrape`]).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The daemon-wide metrics (bus, latency, escalations).
    pub fn daemon(&self) -> &Arc<DaemonMetrics> {
        &self.daemon
    }

    /// The metrics of the IC defined by `spec`; its series exist from now
    /// on, in state `idle`.
    pub fn ic(&self, spec: &ComponentSpec) -> IcMetrics {
        IcMetrics::new(&self.ics, &self.daemon, spec)
    }

    /// How many ICs have series.
    pub fn ic_count(&self) -> usize {
        self.ics.len()
    }

    /// Everything in the text exposition format, as [`Metrics::scrape`]
    /// writes it, in one buffer.
    pub fn render(&self) -> Result<Vec<u8>, MetricsError> {
        let mut text = Vec::new();
        for chunk in self.scrape()? {
            text.extend_from_slice(chunk?.as_bytes());
        }
        Ok(text)
    }

    /// A scrape in the text exposition format, written by the prometheus
    /// crate's `TextEncoder`, as chunks to send as they come: first the
    /// registry's families, then the per-IC families and `villas_ics`
    /// from a snapshot of the IC table, a few hundred ICs a chunk, each
    /// encoded when asked for.
    pub fn scrape(&self) -> Result<Scrape, MetricsError> {
        let registry = TextEncoder::new().encode_to_string(&self.registry.gather())?;
        Ok(Scrape {
            registry: Some(registry),
            ics: self.ics.chunks(),
        })
    }
}

/// The chunks of one scrape (see [`Metrics::scrape`]).
pub struct Scrape {
    /// The registry's families, until taken.
    registry: Option<String>,
    ics: ic::IcChunks,
}

impl Iterator for Scrape {
    type Item = Result<String, MetricsError>;

    /// The next chunk; never an empty one (an HTTP/1.1 chunked body
    /// ends at an empty chunk).
    fn next(&mut self) -> Option<Self::Item> {
        if let Some(registry) = self.registry.take() {
            return Some(Ok(registry));
        }
        loop {
            match self.ics.next()? {
                Ok(chunk) if chunk.is_empty() => continue,
                chunk => return Some(chunk.map_err(MetricsError::from)),
            }
        }
    }
}

/// Registers `villas_controller_build_info{version,profile} 1`.
fn register_build_info(registry: &Registry, build: &BuildInfo) -> prometheus::Result<()> {
    let gauge = IntGaugeVec::new(
        Opts::new(names::BUILD_INFO, names::BUILD_INFO_HELP),
        &["version", "profile"],
    )?;
    registry.register(Box::new(gauge.clone()))?;
    gauge
        .with_label_values(&[build.version.as_str(), build.profile])
        .set(1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;
    use villas_sdk::{ActionKind, State};

    fn build() -> BuildInfo {
        BuildInfo {
            version: "1.2.3".into(),
            profile: "debug",
        }
    }

    fn spec_of(uuid: &str, kind: &str, realm: &str) -> ComponentSpec {
        let json = json!({"uuid": uuid, "name": "Sim \"1\"", "category": "simulator", "type": kind, "realm": realm});
        let serde_json::Value::Object(properties) = json else {
            unreachable!()
        };
        ComponentSpec::from_properties(properties).unwrap()
    }

    fn spec(uuid: &str) -> ComponentSpec {
        spec_of(uuid, "dummy", "lab")
    }

    fn text(metrics: &Metrics) -> String {
        String::from_utf8(metrics.render().unwrap()).unwrap()
    }

    /// The values of the series of `name` whose labels include every one
    /// of `labels` (each `key="value"`).
    fn samples(text: &str, name: &str, labels: &[&str]) -> Vec<f64> {
        text.lines()
            .filter_map(|line| line.strip_prefix(name))
            .filter(|rest| rest.starts_with('{') || rest.starts_with(' '))
            .filter(|rest| labels.iter().all(|label| rest.contains(label)))
            .filter_map(|rest| rest.rsplit(' ').next()?.parse().ok())
            .collect()
    }

    /// The one value of `name{labels}`; panics unless there is exactly one.
    fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
        let found = samples(text, name, labels);
        assert_eq!(found.len(), 1, "{name}{labels:?}: {found:?} in\n{text}");
        found[0]
    }

    const UUID: &str = "3ac5a3f2-0b3e-4c2a-9f3e-6a1c2d3e4f50";
    const OTHER: &str = "0d6f8c0e-3b1e-4c9a-8f5e-2b7d9e1a4c33";
    const THIRD: &str = "7f1e2d3c-4b5a-4968-8776-655443322110";

    fn uuid(uuid: &str) -> String {
        format!("uuid=\"{uuid}\"")
    }

    const DUMMY: [&str; 2] = ["category=\"simulator\"", "type=\"dummy\""];

    #[test]
    fn an_ic_has_four_series_and_its_kind_is_pre_initialised() {
        let metrics = Metrics::new(&build()).unwrap();
        let _ic = metrics.ic(&spec(UUID));
        let text = text(&metrics);
        let me = uuid(UUID);
        assert_eq!(
            text.lines().filter(|l| l.contains(&me)).count(),
            4,
            "four series per IC:\n{text}"
        );
        let state = text
            .lines()
            .find(|l| l.starts_with("villas_ic_state{"))
            .unwrap();
        assert_eq!(
            state,
            format!("villas_ic_state{{{me},name=\"Sim \\\"1\\\"\",category=\"simulator\",type=\"dummy\",realm=\"lab\",state=\"idle\"}} 1")
        );
        assert_eq!(sample(&text, names::IC_STATE_CHANGES, &[&me]), 0.0);
        assert_eq!(sample(&text, names::IC_RESTARTS, &[&me]), 0.0);
        assert!(sample(&text, names::IC_STATE_CHANGED, &[&me]) > 1.6e9);
        // Its kind's aggregated series exist, at 0, without IC labels.
        let ics = |state: &str| {
            let state = format!("state=\"{state}\"");
            sample(
                &text,
                names::ICS,
                &[DUMMY[0], DUMMY[1], "realm=\"lab\"", &state],
            )
        };
        assert_eq!(ics("idle"), 1.0);
        assert_eq!(ics("running"), 0.0);
        assert_eq!(samples(&text, names::ICS, &[]).len(), 11);
        for kind in ActionKind::ALL {
            let action = format!("action=\"{kind}\"");
            for family in [names::ACTIONS_ACCEPTED, names::ACTIONS_REFUSED] {
                assert_eq!(sample(&text, family, &[DUMMY[0], DUMMY[1], &action]), 0.0);
            }
        }
        let count = format!("{}_count", names::RUN_DURATION);
        assert_eq!(sample(&text, &count, &DUMMY), 0.0);
        assert!(
            text.contains("villas_controller_build_info{profile=\"debug\",version=\"1.2.3\"} 1")
        );
        #[cfg(target_os = "linux")]
        assert!(text.contains("process_resident_memory_bytes"), "{text}");
    }

    #[test]
    fn transitions_actions_runs_and_removal() {
        let metrics = Metrics::new(&build()).unwrap();
        let ic = metrics.ic(&spec(UUID));
        ic.action(ActionKind::Start, true, Duration::from_micros(30));
        ic.state_changed(State::Idle, State::Starting);
        ic.state_changed(State::Starting, State::Running);
        ic.state_changed(State::Running, State::Pausing);
        ic.state_changed(State::Pausing, State::Paused);
        ic.action(ActionKind::Start, false, Duration::from_micros(30));
        ic.state_changed(State::Paused, State::Stopping);
        ic.restarted();
        let text = text(&metrics);
        let me = uuid(UUID);
        // One state series: the previous state's is gone.
        assert_eq!(
            samples(&text, names::IC_STATE, &[&me]),
            [1.0],
            "one state series per IC:\n{text}"
        );
        assert_eq!(
            sample(&text, names::IC_STATE, &[&me, "state=\"stopping\""]),
            1.0
        );
        assert_eq!(sample(&text, names::IC_STATE_CHANGES, &[&me]), 5.0);
        assert_eq!(sample(&text, names::IC_RESTARTS, &[&me]), 1.0);
        let start = "action=\"start\"";
        assert_eq!(
            sample(&text, names::ACTIONS_ACCEPTED, &[DUMMY[0], DUMMY[1], start]),
            1.0
        );
        assert_eq!(
            sample(&text, names::ACTIONS_REFUSED, &[DUMMY[0], DUMMY[1], start]),
            1.0
        );
        // One run ended (pause kept it going; stopping ended it), in the
        // first bucket, counted for the IC's kind.
        let count = format!("{}_count", names::RUN_DURATION);
        assert_eq!(sample(&text, &count, &DUMMY), 1.0);
        let bucket = format!("{}_bucket", names::RUN_DURATION);
        assert_eq!(
            sample(&text, &bucket, &[DUMMY[0], DUMMY[1], "le=\"1\""]),
            1.0
        );
        let latency = format!("{}_count", names::ACTION_DURATION);
        assert_eq!(sample(&text, &latency, &[start]), 2.0);
        let in_state = |text: &str, state: &str| {
            let state = format!("state=\"{state}\"");
            sample(text, names::ICS, &[DUMMY[0], &state])
        };
        assert_eq!(
            (in_state(&text, "stopping"), in_state(&text, "idle")),
            (1.0, 0.0)
        );

        ic.state_changed(State::Stopping, State::Gone);
        assert_eq!(metrics.ic_count(), 0);
        let text = self::text(&metrics);
        assert!(
            !text.contains(UUID),
            "a deleted IC's series remain:\n{text}"
        );
        // Its kind's series stay, and count it no more.
        assert_eq!(in_state(&text, "stopping"), 0.0);
        assert_eq!(sample(&text, &count, &DUMMY), 1.0);
    }

    #[test]
    fn actions_runs_and_states_are_counted_by_kind_not_by_ic() {
        let metrics = Metrics::new(&build()).unwrap();
        let a = metrics.ic(&spec(UUID));
        let b = metrics.ic(&spec_of(OTHER, "dummy", "other"));
        let c = metrics.ic(&spec_of(THIRD, "generic", "lab"));
        for ic in [&a, &b, &c] {
            ic.action(ActionKind::Ping, true, Duration::from_micros(5));
        }
        c.state_changed(State::Idle, State::Error);
        let text = text(&metrics);
        let ping = "action=\"ping\"";
        let accepted = |kind: &str| {
            let kind = format!("type=\"{kind}\"");
            sample(&text, names::ACTIONS_ACCEPTED, &[&kind, ping])
        };
        assert_eq!((accepted("dummy"), accepted("generic")), (2.0, 1.0));
        for family in [names::ACTIONS_ACCEPTED, names::ACTIONS_REFUSED, names::ICS] {
            assert!(
                samples(&text, family, &["uuid="]).is_empty(),
                "{family} has IC labels"
            );
        }
        // ICs per state: one group per category, type and realm.
        let ics = |kind: &str, realm: &str, state: &str| {
            let labels = [
                format!("type=\"{kind}\""),
                format!("realm=\"{realm}\""),
                format!("state=\"{state}\""),
            ];
            let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
            sample(&text, names::ICS, &labels)
        };
        assert_eq!(ics("dummy", "lab", "idle"), 1.0);
        assert_eq!(ics("dummy", "other", "idle"), 1.0);
        assert_eq!(ics("generic", "lab", "idle"), 0.0);
        assert_eq!(ics("generic", "lab", "error"), 1.0);
        assert_eq!(samples(&text, names::ICS, &[]).len(), 3 * 11);
        // Every IC has its four series, and no more.
        let per_ic = text.lines().filter(|l| l.contains("uuid=\"")).count();
        assert_eq!(per_ic, 3 * 4, "{text}");
    }

    #[test]
    fn a_recreated_ic_keeps_its_counters_and_a_stale_handle_removes_nothing() {
        let metrics = Metrics::new(&build()).unwrap();
        let first = metrics.ic(&spec(UUID));
        first.restarted();
        first.state_changed(State::Idle, State::Error);
        let second = metrics.ic(&spec(UUID));
        let text = text(&metrics);
        let me = uuid(UUID);
        assert_eq!(sample(&text, names::IC_RESTARTS, &[&me]), 1.0);
        assert_eq!(
            sample(&text, names::IC_STATE, &[&me, "state=\"idle\""]),
            1.0
        );
        // Same uuid, other labels: a new record replaces the old one, and
        // the old handle no longer removes anything.
        let mut renamed = spec(UUID);
        renamed.name = "Other".into();
        let third = metrics.ic(&renamed);
        second.remove();
        assert_eq!(metrics.ic_count(), 1);
        assert_eq!(
            sample(&self::text(&metrics), names::IC_RESTARTS, &[&me]),
            0.0
        );
        third.remove();
        assert_eq!(metrics.ic_count(), 0);
    }

    #[test]
    fn a_scrape_has_no_empty_chunk() {
        let metrics = Metrics::new(&build()).unwrap();
        metrics.ic(&spec(UUID)).remove();
        // No IC: the per-IC families have no series, and no chunk.
        let chunks: Vec<String> = metrics.scrape().unwrap().map(Result::unwrap).collect();
        assert_eq!(chunks.len(), 2, "the registry's families and villas_ics");
        assert!(chunks.iter().all(|chunk| !chunk.is_empty()), "{chunks:?}");
    }

    #[test]
    fn every_family_is_announced_once_with_its_type() {
        let metrics = Metrics::new(&build()).unwrap();
        let _ic = metrics.ic(&spec(UUID));
        let text = text(&metrics);
        for (name, kind) in names::ALL {
            assert_eq!(
                text.matches(&format!("# TYPE {name} ")).count(),
                1,
                "{name}"
            );
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name}");
        }
    }

    #[test]
    fn nothing_is_registered_twice_and_registries_are_independent() {
        let a = Metrics::new(&build()).unwrap();
        let b = Metrics::new(&build()).unwrap();
        let _ = a.ic(&spec(UUID));
        assert_eq!((a.ic_count(), b.ic_count()), (1, 0));
        assert!(register_build_info(a.registry(), &build()).is_err());
    }
}
