//! The per-IC metrics: a compact, atomic record per IC (about half a
//! kilobyte, so that 10,000 ICs stay cheap) kept in a map by uuid, written
//! straight to the text exposition format at scrape time. The
//! [`IcMetrics`] handle is what an IC actor holds; its methods are the
//! one-line instrumentation calls.

use crate::daemon::{action_index, DaemonMetrics};
use crate::names::*;
use parking_lot::{Mutex, RwLock};
#[cfg(test)]
use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use villas_sdk::{ActionKind, ComponentSpec, State};

/// The states of the state set: every state but `gone` (a deleted IC's
/// series are removed instead).
const STATES: &[State] = State::ALL.split_at(State::ALL.len() - 1).0;
const _: () = assert!(matches!(State::ALL[State::ALL.len() - 1], State::Gone));

const ACTIONS: usize = ActionKind::ALL.len();

/// The label values of one IC, from its definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcLabels {
    /// Values in the order of [`IC_LABELS`].
    values: [String; 5],
}

impl IcLabels {
    /// The labels of a configured or created component (realm `""` when it
    /// has none).
    pub fn of(spec: &ComponentSpec) -> Self {
        let identity = &spec.identity;
        IcLabels {
            values: [
                identity.uuid.clone(),
                spec.name.clone(),
                identity.category.clone(),
                identity.kind.clone(),
                identity.realm.clone().unwrap_or_default(),
            ],
        }
    }

    /// The uuid.
    pub fn uuid(&self) -> &str {
        &self.values[0]
    }
}

/// A small lock-free histogram with fixed buckets.
#[derive(Debug)]
struct AtomicHistogram {
    /// Non-cumulative counts per bucket of [`RUN_BUCKETS`].
    buckets: [AtomicU64; RUN_BUCKETS.len()],
    count: AtomicU64,
    /// f64 bits of the sum.
    sum: AtomicU64,
}

impl AtomicHistogram {
    fn new() -> Self {
        AtomicHistogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    fn observe(&self, value: f64) {
        if let Some(index) = RUN_BUCKETS.iter().position(|bound| value <= *bound) {
            self.buckets[index].fetch_add(1, Ordering::Relaxed);
        }
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Cumulative bucket counts, the total count (at least the last
    /// bucket's, so a concurrent observation never makes +Inf smaller)
    /// and the sum.
    fn snapshot(&self) -> ([u64; RUN_BUCKETS.len()], u64, f64) {
        let mut cumulative = 0;
        let buckets = std::array::from_fn(|index| {
            cumulative += self.buckets[index].load(Ordering::Relaxed);
            cumulative
        });
        let count = self.count.load(Ordering::Relaxed).max(cumulative);
        (
            buckets,
            count,
            f64::from_bits(self.sum.load(Ordering::Relaxed)),
        )
    }

    #[cfg(test)]
    fn proto(&self) -> Histogram {
        let (cumulative, count, sum) = self.snapshot();
        let buckets = RUN_BUCKETS
            .iter()
            .zip(cumulative)
            .map(|(bound, count)| {
                let mut bucket = Bucket::default();
                bucket.set_upper_bound(*bound);
                bucket.set_cumulative_count(count);
                bucket
            })
            .collect();
        let mut histogram = Histogram::default();
        histogram.set_bucket(buckets);
        histogram.set_sample_count(count);
        histogram.set_sample_sum(sum);
        histogram
    }
}

/// One IC's series.
#[derive(Debug)]
struct IcSeries {
    labels: IcLabels,
    /// Index into [`STATES`].
    state: AtomicU8,
    /// f64 bits of the Unix time of the last state change.
    changed_at: AtomicU64,
    changes: AtomicU64,
    accepted: [AtomicU64; ACTIONS],
    refused: [AtomicU64; ACTIONS],
    restarts: AtomicU64,
    runs: AtomicHistogram,
    /// When the current run began, if one is on.
    run_started: Mutex<Option<Instant>>,
}

impl IcSeries {
    fn new(labels: IcLabels) -> Self {
        IcSeries {
            labels,
            state: AtomicU8::new(0),
            changed_at: AtomicU64::new(unix_now().to_bits()),
            changes: AtomicU64::new(0),
            accepted: std::array::from_fn(|_| AtomicU64::new(0)),
            refused: std::array::from_fn(|_| AtomicU64::new(0)),
            restarts: AtomicU64::new(0),
            runs: AtomicHistogram::new(),
            run_started: Mutex::new(None),
        }
    }

    fn set_state(&self, state: State) {
        let index = STATES.iter().position(|s| *s == state).unwrap_or(0);
        self.state.store(index as u8, Ordering::Relaxed);
        self.changed_at
            .store(unix_now().to_bits(), Ordering::Relaxed);
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Whether `state` belongs to a run (entered through `running`).
fn in_run(state: State) -> bool {
    matches!(
        state,
        State::Running | State::Pausing | State::Paused | State::Resuming
    )
}

/// Every IC's series, by uuid.
#[derive(Debug, Default)]
pub(crate) struct IcTable {
    ics: RwLock<BTreeMap<String, Arc<IcSeries>>>,
}

impl IcTable {
    /// The series of the IC with these labels: the existing record when
    /// the uuid has one with the same labels (a restarted IC keeps its
    /// counters), else a new one. The state starts at `idle`.
    fn entry(&self, labels: IcLabels) -> Arc<IcSeries> {
        let mut ics = self.ics.write();
        let series = match ics.get(labels.uuid()) {
            Some(existing) if existing.labels == labels => existing.clone(),
            _ => {
                let series = Arc::new(IcSeries::new(labels));
                ics.insert(series.labels.uuid().to_owned(), series.clone());
                series
            }
        };
        series.set_state(State::Idle);
        series
    }

    /// Removes `series` if it is still the uuid's current record.
    fn remove(&self, series: &Arc<IcSeries>) {
        let mut ics = self.ics.write();
        if ics
            .get(series.labels.uuid())
            .is_some_and(|current| Arc::ptr_eq(current, series))
        {
            ics.remove(series.labels.uuid());
        }
    }

    /// How many ICs have series.
    pub(crate) fn len(&self) -> usize {
        self.ics.read().len()
    }

    /// Appends every IC family to `out` in the text exposition format,
    /// line for line what the prometheus crate's `TextEncoder` writes for
    /// these families (checked by a test against [`IcTable::collect`]),
    /// without building them as `MetricFamily` values first: at 10,000
    /// ICs those are 480,000 series, about 280 MB of short-lived
    /// allocations per scrape.
    pub(crate) fn write_text(&self, out: &mut String) {
        let ics: Vec<Arc<IcSeries>> = self.ics.read().values().cloned().collect();
        let prefixes: Vec<String> = ics.iter().map(|ic| label_prefix(&ic.labels)).collect();
        let all = || ics.iter().zip(&prefixes);
        out.reserve(ics.len() * 48 * (prefixes.first().map_or(0, String::len) + 60));

        header(out, IC_STATE, IC_STATE_HELP, "gauge");
        for (ic, prefix) in all() {
            let current = usize::from(ic.state.load(Ordering::Relaxed));
            for (index, state) in STATES.iter().enumerate() {
                let value = f64::from(u8::from(index == current));
                sample(
                    out,
                    IC_STATE,
                    prefix,
                    Some((STATE_LABEL, state.as_str())),
                    value,
                );
            }
        }
        header(out, IC_STATE_CHANGES, IC_STATE_CHANGES_HELP, "counter");
        for (ic, prefix) in all() {
            let value = ic.changes.load(Ordering::Relaxed) as f64;
            sample(out, IC_STATE_CHANGES, prefix, None, value);
        }
        header(out, IC_STATE_CHANGED, IC_STATE_CHANGED_HELP, "gauge");
        for (ic, prefix) in all() {
            let value = f64::from_bits(ic.changed_at.load(Ordering::Relaxed));
            sample(out, IC_STATE_CHANGED, prefix, None, value);
        }
        for (name, help, accepted) in [
            (IC_ACTIONS_ACCEPTED, IC_ACTIONS_ACCEPTED_HELP, true),
            (IC_ACTIONS_REFUSED, IC_ACTIONS_REFUSED_HELP, false),
        ] {
            header(out, name, help, "counter");
            for (ic, prefix) in all() {
                let counters = if accepted { &ic.accepted } else { &ic.refused };
                for (kind, counter) in ActionKind::ALL.iter().zip(counters) {
                    let value = counter.load(Ordering::Relaxed) as f64;
                    sample(
                        out,
                        name,
                        prefix,
                        Some((ACTION_LABEL, kind.as_str())),
                        value,
                    );
                }
            }
        }
        header(out, IC_RESTARTS, IC_RESTARTS_HELP, "counter");
        for (ic, prefix) in all() {
            let value = ic.restarts.load(Ordering::Relaxed) as f64;
            sample(out, IC_RESTARTS, prefix, None, value);
        }
        header(out, IC_RUN_DURATION, IC_RUN_DURATION_HELP, "histogram");
        let bucket = format!("{IC_RUN_DURATION}_bucket");
        let sum = format!("{IC_RUN_DURATION}_sum");
        let count = format!("{IC_RUN_DURATION}_count");
        let bounds: Vec<String> = RUN_BUCKETS.iter().map(f64::to_string).collect();
        for (ic, prefix) in all() {
            let (cumulative, total, total_sum) = ic.runs.snapshot();
            for (bound, value) in bounds.iter().zip(cumulative) {
                sample(out, &bucket, prefix, Some(("le", bound)), value as f64);
            }
            sample(out, &bucket, prefix, Some(("le", "+Inf")), total as f64);
            sample(out, &sum, prefix, None, total_sum);
            sample(out, &count, prefix, None, total as f64);
        }
    }
}

/// `{uuid="...",name="...",...` (escaped, without the closing brace).
fn label_prefix(labels: &IcLabels) -> String {
    let mut prefix = String::with_capacity(128);
    for (index, (name, value)) in IC_LABELS.iter().zip(&labels.values).enumerate() {
        prefix.push(if index == 0 { '{' } else { ',' });
        prefix.push_str(name);
        prefix.push_str("=\"");
        escape(&mut prefix, value, true);
        prefix.push('"');
    }
    prefix
}

/// The text format's escaping: `\\`, newline, and `"` in label values.
fn escape(out: &mut String, text: &str, quote: bool) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    escape(out, help, false);
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
}

fn sample(out: &mut String, name: &str, prefix: &str, extra: Option<(&str, &str)>, value: f64) {
    out.push_str(name);
    out.push_str(prefix);
    if let Some((label, text)) = extra {
        out.push(',');
        out.push_str(label);
        out.push_str("=\"");
        escape(out, text, true);
        out.push('"');
    }
    out.push_str("} ");
    // Writing to a String cannot fail.
    let _ = write!(out, "{value}");
    out.push('\n');
}

/// The same families as `MetricFamily` values, in the shape the
/// prometheus crate's collectors produce: the reference the streaming
/// writer is tested against.
#[cfg(test)]
impl IcTable {
    pub(crate) fn collect(&self) -> Vec<MetricFamily> {
        let ics = self.ics.read();
        let mut state = Vec::new();
        let mut changes = Vec::new();
        let mut changed = Vec::new();
        let mut accepted = Vec::new();
        let mut refused = Vec::new();
        let mut restarts = Vec::new();
        let mut runs = Vec::new();
        for ic in ics.values() {
            let current = usize::from(ic.state.load(Ordering::Relaxed));
            for (index, s) in STATES.iter().enumerate() {
                let labels = label_pairs(&ic.labels, Some((STATE_LABEL, s.as_str())));
                state.push(gauge(labels, f64::from(u8::from(index == current))));
            }
            changes.push(counter(
                label_pairs(&ic.labels, None),
                ic.changes.load(Ordering::Relaxed),
            ));
            changed.push(gauge(
                label_pairs(&ic.labels, None),
                f64::from_bits(ic.changed_at.load(Ordering::Relaxed)),
            ));
            for (index, kind) in ActionKind::ALL.iter().enumerate() {
                let pair = Some((ACTION_LABEL, kind.as_str()));
                accepted.push(counter(
                    label_pairs(&ic.labels, pair),
                    ic.accepted[index].load(Ordering::Relaxed),
                ));
                refused.push(counter(
                    label_pairs(&ic.labels, pair),
                    ic.refused[index].load(Ordering::Relaxed),
                ));
            }
            restarts.push(counter(
                label_pairs(&ic.labels, None),
                ic.restarts.load(Ordering::Relaxed),
            ));
            let mut run = Metric::from_label(label_pairs(&ic.labels, None));
            run.set_histogram(ic.runs.proto());
            runs.push(run);
        }
        vec![
            family(IC_STATE, IC_STATE_HELP, MetricType::GAUGE, state),
            family(
                IC_STATE_CHANGES,
                IC_STATE_CHANGES_HELP,
                MetricType::COUNTER,
                changes,
            ),
            family(
                IC_STATE_CHANGED,
                IC_STATE_CHANGED_HELP,
                MetricType::GAUGE,
                changed,
            ),
            family(
                IC_ACTIONS_ACCEPTED,
                IC_ACTIONS_ACCEPTED_HELP,
                MetricType::COUNTER,
                accepted,
            ),
            family(
                IC_ACTIONS_REFUSED,
                IC_ACTIONS_REFUSED_HELP,
                MetricType::COUNTER,
                refused,
            ),
            family(IC_RESTARTS, IC_RESTARTS_HELP, MetricType::COUNTER, restarts),
            family(
                IC_RUN_DURATION,
                IC_RUN_DURATION_HELP,
                MetricType::HISTOGRAM,
                runs,
            ),
        ]
    }
}

/// The five IC label pairs plus an optional sixth.
#[cfg(test)]
fn label_pairs(labels: &IcLabels, extra: Option<(&str, &str)>) -> Vec<LabelPair> {
    IC_LABELS
        .iter()
        .zip(&labels.values)
        .map(|(name, value)| (*name, value.as_str()))
        .chain(extra)
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name(name.to_owned());
            pair.set_value(value.to_owned());
            pair
        })
        .collect()
}

#[cfg(test)]
fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_owned());
    family.set_help(help.to_owned());
    family.set_field_type(kind);
    family.set_metric(metrics);
    family
}

#[cfg(test)]
fn gauge(labels: Vec<LabelPair>, value: f64) -> Metric {
    let mut gauge = Gauge::default();
    gauge.set_value(value);
    let mut metric = Metric::from_label(labels);
    metric.set_gauge(gauge);
    metric
}

#[cfg(test)]
fn counter(labels: Vec<LabelPair>, value: u64) -> Metric {
    let mut counter = Counter::default();
    counter.set_value(value as f64);
    let mut metric = Metric::from_label(labels);
    metric.set_counter(counter);
    metric
}

/// The metrics handle of one IC, created with its configured labels by
/// [`Metrics::ic`](crate::Metrics::ic). Its series exist (at 0) from
/// creation until the IC is deleted ([`IcMetrics::state_changed`] to
/// `gone`, or [`IcMetrics::remove`]).
#[derive(Debug, Clone)]
pub struct IcMetrics {
    series: Arc<IcSeries>,
    table: Arc<IcTable>,
    daemon: Arc<DaemonMetrics>,
}

impl IcMetrics {
    pub(crate) fn new(table: &Arc<IcTable>, daemon: &Arc<DaemonMetrics>, labels: IcLabels) -> Self {
        IcMetrics {
            series: table.entry(labels),
            table: table.clone(),
            daemon: daemon.clone(),
        }
    }

    /// The IC moved from `from` to `to`: the state set, the change counter
    /// and timestamp, and the run duration when a run ends. `gone`
    /// removes the IC's series.
    pub fn state_changed(&self, from: State, to: State) {
        if to == State::Gone {
            self.remove();
            return;
        }
        let series = &self.series;
        series.set_state(to);
        series.changes.fetch_add(1, Ordering::Relaxed);
        let mut run = series.run_started.lock();
        if to == State::Running && !in_run(from) {
            *run = Some(Instant::now());
        } else if !in_run(to) {
            if let Some(started) = run.take() {
                series.runs.observe(started.elapsed().as_secs_f64());
            }
        }
    }

    /// The IC handled an action in `elapsed`: accepted (carried out) or
    /// refused (an error status was published).
    pub fn action(&self, kind: ActionKind, accepted: bool, elapsed: Duration) {
        let index = action_index(kind);
        let counters = if accepted {
            &self.series.accepted
        } else {
            &self.series.refused
        };
        if let Some(counter) = counters.get(index) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        self.daemon.action_handled(kind, elapsed);
    }

    /// The supervisor restarted the IC.
    pub fn restarted(&self) {
        self.series.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// Removes the IC's series (it was deleted). Does nothing if a newer
    /// handle for the same uuid replaced them.
    pub fn remove(&self) {
        self.table.remove(&self.series);
    }
}
