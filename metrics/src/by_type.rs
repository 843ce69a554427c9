//! The IC metrics aggregated by category and type (not per IC): actions
//! accepted and refused by action, and the run-duration histogram, on the
//! registry's stock `IntCounterVec`s and `HistogramVec`. Each distinct
//! category, type and realm is one [`Group`], resolved once and shared by
//! the handles of its ICs, so that instrumenting an action is an atomic
//! increment, not a label lookup.

use crate::daemon::action_index;
use crate::names::*;
use parking_lot::Mutex;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use villas_sdk::ActionKind;

const ACTIONS: usize = ActionKind::ALL.len();

/// The series of the ICs of one category, type and realm.
#[derive(Debug)]
pub(crate) struct Group {
    /// The `category` label.
    pub(crate) category: String,
    /// The `type` label.
    pub(crate) kind: String,
    /// The `realm` label (`""` without a realm).
    pub(crate) realm: String,
    /// Position in [`ByType::groups`]: where the collector counts this
    /// group's ICs per state.
    pub(crate) index: usize,
    /// Accepted actions of this category and type, by [`ActionKind::ALL`].
    accepted: [IntCounter; ACTIONS],
    /// Refused actions of this category and type, by [`ActionKind::ALL`].
    refused: [IntCounter; ACTIONS],
    /// Finished runs of this category and type.
    runs: Histogram,
}

impl Group {
    /// An IC of this group accepted (carried out) or refused `kind`.
    pub(crate) fn action(&self, kind: ActionKind, accepted: bool) {
        let counters = if accepted {
            &self.accepted
        } else {
            &self.refused
        };
        if let Some(counter) = counters.get(action_index(kind)) {
            counter.inc();
        }
    }

    /// An IC of this group finished a run that lasted `duration`.
    pub(crate) fn run_finished(&self, duration: Duration) {
        self.runs.observe(duration.as_secs_f64());
    }
}

/// The families aggregated by category and type, and every [`Group`] seen.
#[derive(Debug)]
pub(crate) struct ByType {
    accepted: IntCounterVec,
    refused: IntCounterVec,
    runs: HistogramVec,
    /// Every group seen, in creation order (never removed: their series
    /// stay, at their last value, after their last IC is deleted).
    groups: Mutex<GroupIndex>,
}

/// Groups by (category, type, realm), and in creation order.
#[derive(Debug, Default)]
struct GroupIndex {
    by_key: HashMap<(String, String, String), Arc<Group>>,
    all: Vec<Arc<Group>>,
}

impl ByType {
    /// Creates the families (no series yet: each group pre-initialises its
    /// own) and registers them.
    pub(crate) fn register(registry: &Registry) -> prometheus::Result<Self> {
        let labels = [TYPE_LABELS[0], TYPE_LABELS[1], ACTION_LABEL];
        let accepted =
            IntCounterVec::new(Opts::new(ACTIONS_ACCEPTED, ACTIONS_ACCEPTED_HELP), &labels)?;
        let refused =
            IntCounterVec::new(Opts::new(ACTIONS_REFUSED, ACTIONS_REFUSED_HELP), &labels)?;
        let runs = HistogramVec::new(
            HistogramOpts::new(RUN_DURATION, RUN_DURATION_HELP).buckets(RUN_BUCKETS.to_vec()),
            &TYPE_LABELS,
        )?;
        registry.register(Box::new(accepted.clone()))?;
        registry.register(Box::new(refused.clone()))?;
        registry.register(Box::new(runs.clone()))?;
        Ok(ByType {
            accepted,
            refused,
            runs,
            groups: Mutex::new(GroupIndex::default()),
        })
    }

    /// The group of `category`, `kind` and `realm`, created (with its
    /// series at 0) the first time.
    pub(crate) fn group(&self, category: &str, kind: &str, realm: &str) -> Arc<Group> {
        let mut groups = self.groups.lock();
        let key = (category.to_owned(), kind.to_owned(), realm.to_owned());
        if let Some(group) = groups.by_key.get(&key) {
            return group.clone();
        }
        let action = |vec: &IntCounterVec| {
            ActionKind::ALL.map(|a| vec.with_label_values(&[category, kind, a.as_str()]))
        };
        let group = Arc::new(Group {
            category: key.0.clone(),
            kind: key.1.clone(),
            realm: key.2.clone(),
            index: groups.all.len(),
            accepted: action(&self.accepted),
            refused: action(&self.refused),
            runs: self.runs.with_label_values(&[category, kind]),
        });
        groups.by_key.insert(key, group.clone());
        groups.all.push(group.clone());
        group
    }

    /// Every group seen, in creation order.
    pub(crate) fn groups(&self) -> Vec<Arc<Group>> {
        self.groups.lock().all.clone()
    }
}
