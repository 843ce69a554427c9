//! The per-IC metrics: one small record per IC (its uuid and name, the
//! [`Group`] of its category, type and realm, its state and two counters)
//! in a table by uuid, from which a scrape builds the per-IC families and
//! [`ICS`], a chunk of ICs at a time, for the stock `TextEncoder` to write
//! ([`IcChunks`]). The [`IcMetrics`] handle is what an IC actor holds; its
//! methods are the one-line instrumentation calls.
//!
//! Why a table and not a `GaugeVec`: every child of a prometheus
//! `MetricVec` keeps its own copy of the family's description and label
//! pairs, about 1.2 kB per series, so the four per-IC families would hold
//! some 48 MB at 10,000 ICs; a record here is under 300 bytes and the
//! families exist only while a scrape is encoded.

use crate::by_type::{ByType, Group};
use crate::daemon::DaemonMetrics;
use crate::names::*;
use parking_lot::{Mutex, RwLock};
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::TextEncoder;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use villas_sdk::{ActionKind, ComponentSpec, State};

/// The states an IC can be in while it has series: every state but `gone`
/// (a deleted IC's series are removed instead).
const STATES: &[State] = State::ALL.split_at(State::ALL.len() - 1).0;
const _: () = assert!(matches!(State::ALL[State::ALL.len() - 1], State::Gone));

/// One IC's series.
#[derive(Debug)]
struct IcRecord {
    /// The `uuid` label.
    uuid: String,
    /// The `name` label.
    name: String,
    /// The `category`, `type` and `realm` labels, and the aggregated
    /// series the IC counts its actions and runs in.
    group: Arc<Group>,
    /// Index into [`STATES`] of the current state.
    state: AtomicU8,
    /// f64 bits of the Unix time of the last state change.
    changed_at: AtomicU64,
    /// State changes.
    changes: AtomicU64,
    /// Supervisor restarts.
    restarts: AtomicU64,
    /// When the current run began, if one is on (for the run duration).
    run_started: Mutex<Option<Instant>>,
}

impl IcRecord {
    fn set_state(&self, state: State) {
        let index = STATES.iter().position(|s| *s == state).unwrap_or(0);
        self.state.store(index as u8, Ordering::Relaxed);
        self.changed_at
            .store(unix_now().to_bits(), Ordering::Relaxed);
    }

    /// Index into [`STATES`] of the current state.
    fn state_index(&self) -> usize {
        usize::from(self.state.load(Ordering::Relaxed)).min(STATES.len() - 1)
    }

    fn state(&self) -> State {
        STATES[self.state_index()]
    }

    /// The five IC label pairs (with room for a sixth).
    fn label_pairs(&self) -> Vec<LabelPair> {
        let group = &*self.group;
        let values = [
            self.uuid.as_str(),
            self.name.as_str(),
            group.category.as_str(),
            group.kind.as_str(),
            group.realm.as_str(),
        ];
        let mut pairs = Vec::with_capacity(IC_LABELS.len() + 1);
        pairs.extend(
            IC_LABELS
                .iter()
                .zip(values)
                .map(|(name, value)| label_pair(name, value)),
        );
        pairs
    }
}

fn label_pair(name: &str, value: &str) -> LabelPair {
    let mut pair = LabelPair::default();
    pair.set_name(name.to_owned());
    pair.set_value(value.to_owned());
    pair
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

/// Every IC's record, by uuid (the order of the series in a scrape).
#[derive(Debug)]
pub(crate) struct IcTable {
    ics: RwLock<BTreeMap<String, Arc<IcRecord>>>,
    /// The groups the records belong to, all of them counted in [`ICS`].
    by_type: Arc<ByType>,
}

impl IcTable {
    pub(crate) fn new(by_type: Arc<ByType>) -> Self {
        IcTable {
            ics: RwLock::new(BTreeMap::new()),
            by_type,
        }
    }

    /// The record of the IC defined by `spec`: the existing one when its
    /// uuid has one with the same labels (a restarted or rebuilt IC keeps
    /// its counters), else a new one. The state starts at `idle`.
    fn entry(&self, spec: &ComponentSpec) -> Arc<IcRecord> {
        let identity = &spec.identity;
        let group = self.by_type.group(
            &identity.category,
            &identity.type_name,
            identity.realm.as_deref().unwrap_or_default(),
        );
        let mut ics = self.ics.write();
        let record = match ics.get(&identity.uuid) {
            Some(existing)
                if existing.name == spec.name && Arc::ptr_eq(&existing.group, &group) =>
            {
                existing.clone()
            }
            _ => {
                let record = Arc::new(IcRecord {
                    uuid: identity.uuid.clone(),
                    name: spec.name.clone(),
                    group,
                    state: AtomicU8::new(0),
                    changed_at: AtomicU64::new(0),
                    changes: AtomicU64::new(0),
                    restarts: AtomicU64::new(0),
                    run_started: Mutex::new(None),
                });
                ics.insert(record.uuid.clone(), record.clone());
                record
            }
        };
        record.set_state(State::Idle);
        *record.run_started.lock() = None;
        record
    }

    /// Removes `record` if it is still its uuid's current record.
    fn remove(&self, record: &Arc<IcRecord>) {
        let mut ics = self.ics.write();
        if ics
            .get(&record.uuid)
            .is_some_and(|current| Arc::ptr_eq(current, record))
        {
            ics.remove(&record.uuid);
        }
    }

    /// How many ICs have series.
    pub(crate) fn len(&self) -> usize {
        self.ics.read().len()
    }
}

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_owned());
    family.set_help(help.to_owned());
    family.set_field_type(kind);
    family.set_metric(metrics);
    family
}

fn gauge(labels: Vec<LabelPair>, value: f64) -> Metric {
    let mut gauge = Gauge::default();
    gauge.set_value(value);
    let mut metric = Metric::from_label(labels);
    metric.set_gauge(gauge);
    metric
}

fn counter(labels: Vec<LabelPair>, value: u64) -> Metric {
    let mut counter = Counter::default();
    counter.set_value(value as f64);
    let mut metric = Metric::from_label(labels);
    metric.set_counter(counter);
    metric
}

impl IcTable {
    /// A scrape of the per-IC families and [`ICS`], from a snapshot of
    /// the table's records.
    pub(crate) fn chunks(self: &Arc<Self>) -> IcChunks {
        IcChunks {
            table: self.clone(),
            ics: self.ics.read().values().cloned().collect(),
            family: 0,
            offset: 0,
            encoder: TextEncoder::new(),
        }
    }

    /// [`ICS`]: the ICs of each group in each state.
    fn per_state(&self, ics: &[Arc<IcRecord>]) -> MetricFamily {
        let groups = self.by_type.groups();
        let mut per_state = vec![[0u64; STATES.len()]; groups.len()];
        for ic in ics {
            if let Some(counts) = per_state.get_mut(ic.group.index) {
                counts[ic.state_index()] += 1;
            }
        }
        let mut metrics = Vec::with_capacity(groups.len() * STATES.len());
        for (group, per_state) in groups.iter().zip(&per_state) {
            for (state, count) in STATES.iter().zip(per_state) {
                let labels = vec![
                    label_pair(TYPE_LABELS[0], &group.category),
                    label_pair(TYPE_LABELS[1], &group.kind),
                    label_pair(REALM_LABEL, &group.realm),
                    label_pair(STATE_LABEL, state.as_str()),
                ];
                metrics.push(gauge(labels, *count as f64));
            }
        }
        family(ICS, ICS_HELP, MetricType::GAUGE, metrics)
    }
}

/// A family with one series per IC.
struct PerIc {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    /// The IC's sample, from the IC and its five label pairs.
    sample: fn(&IcRecord, Vec<LabelPair>) -> Metric,
}

/// The per-IC families, in exposition order.
const PER_IC: [PerIc; 4] = [
    PerIc {
        name: IC_STATE,
        help: IC_STATE_HELP,
        kind: MetricType::GAUGE,
        sample: |ic, mut labels| {
            labels.push(label_pair(STATE_LABEL, ic.state().as_str()));
            gauge(labels, 1.0)
        },
    },
    PerIc {
        name: IC_STATE_CHANGES,
        help: IC_STATE_CHANGES_HELP,
        kind: MetricType::COUNTER,
        sample: |ic, labels| counter(labels, ic.changes.load(Ordering::Relaxed)),
    },
    PerIc {
        name: IC_STATE_CHANGED,
        help: IC_STATE_CHANGED_HELP,
        kind: MetricType::GAUGE,
        sample: |ic, labels| {
            gauge(
                labels,
                f64::from_bits(ic.changed_at.load(Ordering::Relaxed)),
            )
        },
    },
    PerIc {
        name: IC_RESTARTS,
        help: IC_RESTARTS_HELP,
        kind: MetricType::COUNTER,
        sample: |ic, labels| counter(labels, ic.restarts.load(Ordering::Relaxed)),
    },
];

/// ICs per chunk of a scrape.
const CHUNK: usize = 500;

/// A scrape of the per-IC families and [`ICS`] in the text format, as
/// chunks of [`CHUNK`] ICs, each built, encoded by the stock
/// `TextEncoder` and dropped when the next is asked for: a scrape of
/// 10,000 ICs never holds more than a few hundred `Metric` values nor a
/// buffer of the whole body (all at once, they are some 15 MB of
/// short-lived allocations and a 7 MB body, which glibc's allocator keeps:
/// 22 MB more RSS after three scrapes, measured). A family's `# HELP` and
/// `# TYPE` lines are kept from its first chunk only.
pub(crate) struct IcChunks {
    /// Where [`ICS`] takes its groups from.
    table: Arc<IcTable>,
    /// The records when the scrape began.
    ics: Vec<Arc<IcRecord>>,
    /// Index into [`PER_IC`]; [`ICS`] after them.
    family: usize,
    /// The first IC of the next chunk.
    offset: usize,
    /// Writes every chunk.
    encoder: TextEncoder,
}

impl Iterator for IcChunks {
    type Item = prometheus::Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        let Some(per_ic) = PER_IC.get(self.family) else {
            if self.family > PER_IC.len() {
                return None;
            }
            self.family += 1;
            return Some(encode(&self.encoder, self.table.per_state(&self.ics)));
        };
        let end = (self.offset + CHUNK).min(self.ics.len());
        let chunk = self.ics.get(self.offset..end).unwrap_or_default();
        let metrics = chunk
            .iter()
            .map(|ic| (per_ic.sample)(ic, ic.label_pairs()))
            .collect();
        let first = self.offset == 0;
        if end >= self.ics.len() {
            self.family += 1;
            self.offset = 0;
        } else {
            self.offset = end;
        }
        let text = encode(
            &self.encoder,
            family(per_ic.name, per_ic.help, per_ic.kind, metrics),
        );
        Some(if first {
            text
        } else {
            text.map(without_header)
        })
    }
}

/// `family` in the text format; nothing if it has no series (as the
/// registry prunes them: the encoder refuses an empty family).
fn encode(encoder: &TextEncoder, family: MetricFamily) -> prometheus::Result<String> {
    let mut text = String::new();
    if !family.get_metric().is_empty() {
        encoder.encode_utf8(&[family], &mut text)?;
    }
    Ok(text)
}

/// `text` without its `# HELP` and `# TYPE` lines.
fn without_header(text: String) -> String {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .flat_map(|line| [line, "\n"])
        .collect()
}

/// The metrics handle of one IC, created from its definition by
/// [`Metrics::ic`](crate::Metrics::ic). Its series exist from creation
/// until the IC is deleted ([`IcMetrics::state_changed`] to `gone`, or
/// [`IcMetrics::remove`]).
#[derive(Debug, Clone)]
pub struct IcMetrics {
    record: Arc<IcRecord>,
    table: Arc<IcTable>,
    daemon: Arc<DaemonMetrics>,
}

impl IcMetrics {
    pub(crate) fn new(
        table: &Arc<IcTable>,
        daemon: &Arc<DaemonMetrics>,
        spec: &ComponentSpec,
    ) -> Self {
        IcMetrics {
            record: table.entry(spec),
            table: table.clone(),
            daemon: daemon.clone(),
        }
    }

    /// The IC moved from `from` to `to`: its state series, change counter
    /// and timestamp, and its kind's run durations when a run ends. `gone`
    /// removes the IC's series.
    pub fn state_changed(&self, from: State, to: State) {
        if to == State::Gone {
            self.remove();
            return;
        }
        let record = &self.record;
        record.set_state(to);
        record.changes.fetch_add(1, Ordering::Relaxed);
        let mut run = record.run_started.lock();
        if to == State::Running && !in_run(from) {
            *run = Some(Instant::now());
        } else if !in_run(to) {
            if let Some(started) = run.take() {
                record.group.run_finished(started.elapsed());
            }
        }
    }

    /// The IC handled an action in `elapsed`: accepted (carried out) or
    /// refused (an error status was published). Counted by the IC's
    /// category and type.
    pub fn action(&self, kind: ActionKind, accepted: bool, elapsed: Duration) {
        self.record.group.action(kind, accepted);
        self.daemon.action_handled(kind, elapsed);
    }

    /// The supervisor restarted the IC.
    pub fn restarted(&self) {
        self.record.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// Removes the IC's series (it was deleted). Does nothing if a newer
    /// handle for the same uuid replaced them.
    pub fn remove(&self) {
        self.table.remove(&self.record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::Registry;

    fn table_of(count: usize) -> Arc<IcTable> {
        let by_type = Arc::new(ByType::register(&Registry::new()).unwrap());
        let table = Arc::new(IcTable::new(by_type));
        for n in 0..count {
            let json = serde_json::json!({
                "uuid": format!("00000000-0000-4000-8000-{n:012}"),
                "name": format!("IC \"{n}\""),
                "category": "simulator",
                "type": if n % 2 == 0 { "dummy" } else { "generic" },
                "realm": "lab",
            });
            let serde_json::Value::Object(properties) = json else {
                unreachable!()
            };
            let record = table.entry(&ComponentSpec::from_properties(properties).unwrap());
            if n % 3 == 0 {
                record.set_state(State::Running);
            }
        }
        table
    }

    #[test]
    fn a_chunked_scrape_is_the_encoding_of_whole_families() {
        let table = table_of(2 * CHUNK + 7);
        let chunks: Vec<String> = table.chunks().map(Result::unwrap).collect();
        assert_eq!(chunks.len(), 4 * 3 + 1, "three chunks per family, then ICS");
        let encoder = TextEncoder::new();
        let ics: Vec<Arc<IcRecord>> = table.ics.read().values().cloned().collect();
        let mut whole: String = PER_IC
            .iter()
            .map(|f| {
                let metrics = ics.iter().map(|ic| (f.sample)(ic, ic.label_pairs()));
                encode(&encoder, family(f.name, f.help, f.kind, metrics.collect())).unwrap()
            })
            .collect();
        whole.push_str(&encode(&encoder, table.per_state(&ics)).unwrap());
        assert_eq!(chunks.concat(), whole);
        assert_eq!(whole.matches("# TYPE ").count(), 5);
    }

    #[test]
    fn an_empty_table_scrapes_to_the_ics_family_only() {
        let table = table_of(0);
        assert_eq!(table.chunks().map(Result::unwrap).collect::<String>(), "");
        // A group seen once stays, at 0.
        let table = table_of(1);
        let all = table.ics.read().values().cloned().collect::<Vec<_>>();
        table.remove(&all[0]);
        let text: String = table.chunks().map(Result::unwrap).collect();
        assert!(text.starts_with("# HELP villas_ics "), "{text}");
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 11);
    }
}
