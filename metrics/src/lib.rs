//! # villas-metrics
//!
//! The Prometheus metrics of villas-controller, defined in one place
//! ([`names`]) so that the daemon, the README, the Grafana dashboard and
//! the alert rules in `metrics/` agree. Everything is registered on an
//! explicit [`prometheus::Registry`] owned by [`Metrics`], never a global
//! one. The daemon hands out typed handles: [`DaemonMetrics`] to the bus
//! and the supervisor, an [`IcMetrics`] per IC, created with the labels of
//! its definition (never a value from a message payload).

mod daemon;
mod ic;
pub mod names;

pub use daemon::{DaemonMetrics, DropReason};
pub use ic::{IcLabels, IcMetrics};

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
    ics: Arc<ic::IcTable>,
}

impl Metrics {
    /// A registry with build info, the daemon's metrics and (on Linux) the
    /// standard `process_*` metrics, and an empty IC table.
    pub fn new(build: &BuildInfo) -> Result<Self, MetricsError> {
        let registry = Registry::new();
        register_build_info(&registry, build)?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let daemon = Arc::new(DaemonMetrics::register(&registry)?);
        let ics = Arc::new(ic::IcTable::default());
        Ok(Metrics {
            registry,
            daemon,
            ics,
        })
    }

    /// The registry of the daemon-wide metrics (the per-IC families are
    /// rendered from the IC table, see [`Metrics::render`]).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The daemon-wide metrics (bus, latency, escalations).
    pub fn daemon(&self) -> &Arc<DaemonMetrics> {
        &self.daemon
    }

    /// The metrics of the IC defined by `spec`; its series exist from now
    /// on, at 0, in state `idle`.
    pub fn ic(&self, spec: &ComponentSpec) -> IcMetrics {
        IcMetrics::new(&self.ics, &self.daemon, IcLabels::of(spec))
    }

    /// How many ICs have series.
    pub fn ic_count(&self) -> usize {
        self.ics.len()
    }

    /// Everything in the text exposition format: the registry's families
    /// (encoded by the prometheus crate), then the per-IC families,
    /// written straight from the IC table (see `IcTable::write_text`).
    pub fn render(&self) -> Result<Vec<u8>, MetricsError> {
        let mut text = TextEncoder::new().encode_to_string(&self.registry.gather())?;
        self.ics.write_text(&mut text);
        Ok(text.into_bytes())
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

    fn spec(uuid: &str) -> ComponentSpec {
        let json = json!({"uuid": uuid, "name": "Sim \"1\"", "category": "simulator", "type": "dummy", "realm": "lab"});
        let serde_json::Value::Object(properties) = json else {
            unreachable!()
        };
        ComponentSpec::from_properties(properties).unwrap()
    }

    fn text(metrics: &Metrics) -> String {
        String::from_utf8(metrics.render().unwrap()).unwrap()
    }

    /// The value of the series whose line starts with `prefix`.
    fn value(text: &str, prefix: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    const UUID: &str = "3ac5a3f2-0b3e-4c2a-9f3e-6a1c2d3e4f50";

    fn ic_prefix(name: &str) -> String {
        format!("{name}{{uuid=\"{UUID}\",name=\"Sim \\\"1\\\"\",category=\"simulator\",type=\"dummy\",realm=\"lab\"")
    }

    #[test]
    fn an_ic_has_every_series_at_zero_and_is_idle() {
        let metrics = Metrics::new(&build()).unwrap();
        let _ic = metrics.ic(&spec(UUID));
        let text = text(&metrics);
        let state = ic_prefix(names::IC_STATE);
        assert_eq!(
            value(&text, &format!("{state},state=\"idle\"}}")),
            Some(1.0)
        );
        assert_eq!(
            value(&text, &format!("{state},state=\"running\"}}")),
            Some(0.0)
        );
        assert_eq!(text.matches(&format!("{state},")).count(), 11, "{text}");
        for kind in ActionKind::ALL {
            let accepted = format!(
                "{},action=\"{kind}\"}}",
                ic_prefix(names::IC_ACTIONS_ACCEPTED)
            );
            assert_eq!(value(&text, &accepted), Some(0.0), "{accepted}");
        }
        assert_eq!(
            value(&text, &format!("{}}}", ic_prefix(names::IC_RESTARTS))),
            Some(0.0)
        );
        let bucket = format!("{}_bucket", names::IC_RUN_DURATION);
        assert_eq!(
            value(&text, &format!("{},le=\"+Inf\"}}", ic_prefix(&bucket))),
            Some(0.0)
        );
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
        let state = ic_prefix(names::IC_STATE);
        assert_eq!(
            value(&text, &format!("{state},state=\"stopping\"}}")),
            Some(1.0)
        );
        assert_eq!(
            value(&text, &format!("{state},state=\"idle\"}}")),
            Some(0.0)
        );
        assert_eq!(
            value(&text, &format!("{}}}", ic_prefix(names::IC_STATE_CHANGES))),
            Some(5.0)
        );
        let accepted = format!(
            "{},action=\"start\"}}",
            ic_prefix(names::IC_ACTIONS_ACCEPTED)
        );
        let refused = format!(
            "{},action=\"start\"}}",
            ic_prefix(names::IC_ACTIONS_REFUSED)
        );
        assert_eq!(
            (value(&text, &accepted), value(&text, &refused)),
            (Some(1.0), Some(1.0))
        );
        assert_eq!(
            value(&text, &format!("{}}}", ic_prefix(names::IC_RESTARTS))),
            Some(1.0)
        );
        // One run ended (pause kept it going; stopping ended it), in the
        // first bucket.
        let count = format!(
            "{}}}",
            ic_prefix(&format!("{}_count", names::IC_RUN_DURATION))
        );
        assert_eq!(value(&text, &count), Some(1.0));
        let first = format!(
            "{},le=\"1\"}}",
            ic_prefix(&format!("{}_bucket", names::IC_RUN_DURATION))
        );
        assert_eq!(value(&text, &first), Some(1.0));
        let latency = format!("{}_count{{action=\"start\"}}", names::ACTION_DURATION);
        assert_eq!(value(&text, &latency), Some(2.0));

        ic.state_changed(State::Stopping, State::Gone);
        assert_eq!(metrics.ic_count(), 0);
        assert!(
            !text_contains_uuid(&metrics),
            "a deleted IC's series remain"
        );
    }

    fn text_contains_uuid(metrics: &Metrics) -> bool {
        text(metrics).contains(UUID)
    }

    #[test]
    fn a_recreated_ic_keeps_its_counters_and_a_stale_handle_removes_nothing() {
        let metrics = Metrics::new(&build()).unwrap();
        let first = metrics.ic(&spec(UUID));
        first.restarted();
        first.state_changed(State::Idle, State::Error);
        let second = metrics.ic(&spec(UUID));
        let text = text(&metrics);
        assert_eq!(
            value(&text, &format!("{}}}", ic_prefix(names::IC_RESTARTS))),
            Some(1.0)
        );
        let state = ic_prefix(names::IC_STATE);
        assert_eq!(
            value(&text, &format!("{state},state=\"idle\"}}")),
            Some(1.0)
        );
        // Same uuid, other labels: a new record replaces the old one, and
        // the old handle no longer removes anything.
        let mut renamed = spec(UUID);
        renamed.name = "Other".into();
        let third = metrics.ic(&renamed);
        second.remove();
        assert_eq!(metrics.ic_count(), 1);
        third.remove();
        assert_eq!(metrics.ic_count(), 0);
    }

    #[test]
    fn the_streaming_writer_matches_the_prometheus_encoder() {
        let metrics = Metrics::new(&build()).unwrap();
        let first = metrics.ic(&spec(UUID));
        first.state_changed(State::Idle, State::Starting);
        first.state_changed(State::Starting, State::Running);
        first.state_changed(State::Running, State::Error);
        first.action(ActionKind::Create, false, Duration::from_millis(1));
        first.restarted();
        let mut odd = spec("0d6f8c0e-3b1e-4c9a-8f5e-2b7d9e1a4c33");
        odd.name = "back\\slash \"quote\" new\nline ü".into();
        let _second = metrics.ic(&odd);
        let mut streamed = String::new();
        metrics.ics.write_text(&mut streamed);
        let encoded = TextEncoder::new()
            .encode_to_string(&metrics.ics.collect())
            .unwrap();
        // Same lines; the order of series within a family is free.
        let sorted = |text: &str| {
            let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
            lines.sort();
            lines
        };
        assert_eq!(sorted(&streamed), sorted(&encoded));
        assert!(
            streamed.contains(r#"name="back\\slash \"quote\" new\nline ü""#),
            "{streamed}"
        );
        // Families are contiguous, each announced once.
        for (name, kind) in names::ALL
            .iter()
            .filter(|(n, _)| n.starts_with("villas_ic_"))
        {
            assert_eq!(
                streamed.matches(&format!("# TYPE {name} {kind}\n")).count(),
                1
            );
        }
    }

    #[test]
    fn registry_and_ic_families_do_not_clash() {
        let metrics = Metrics::new(&build()).unwrap();
        let _ic = metrics.ic(&spec(UUID));
        let text = text(&metrics);
        for (name, _) in names::ALL {
            assert_eq!(
                text.matches(&format!("# TYPE {name} ")).count(),
                1,
                "{name}"
            );
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
