//! The daemon-wide metrics: bus health and traffic, action handling
//! latency and supervisor escalations, as typed handles whose methods are
//! the one-line instrumentation calls of the bus and the supervisor.

use crate::names::*;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use villas_sdk::ActionKind;

/// Why a received message reached no component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// A status message (ours or another controller's).
    Status,
    /// No addressing header.
    NoHeaders,
    /// JSON without an `action`.
    NotAnAction,
    /// Its headers addressed no component.
    NoMatch,
    /// A redelivery of an action dispatched already.
    Redelivered,
}

impl DropReason {
    /// Every reason, in label order.
    pub const ALL: [DropReason; 5] = [
        DropReason::Status,
        DropReason::NoHeaders,
        DropReason::NotAnAction,
        DropReason::NoMatch,
        DropReason::Redelivered,
    ];

    /// The `reason` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::Status => "status",
            DropReason::NoHeaders => "no_headers",
            DropReason::NotAnAction => "not_an_action",
            DropReason::NoMatch => "no_match",
            DropReason::Redelivered => "redelivered",
        }
    }
}

/// The daemon's metrics. Cheap to call from any thread.
#[derive(Debug)]
pub struct DaemonMetrics {
    bus_connected: IntGauge,
    received: IntCounter,
    published: IntCounter,
    dropped: [IntCounter; DropReason::ALL.len()],
    malformed: IntCounter,
    reconnects: IntCounter,
    escalations: IntCounter,
    action_duration: [Histogram; ActionKind::ALL.len()],
    /// Whether the bus was connected once (the next connection is a
    /// reconnection).
    ever_connected: AtomicBool,
}

impl DaemonMetrics {
    /// Creates the metrics, every series at 0, and registers them.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let bus_connected = IntGauge::new(BUS_CONNECTED, BUS_CONNECTED_HELP)?;
        let received = IntCounter::new(BUS_RECEIVED, BUS_RECEIVED_HELP)?;
        let published = IntCounter::new(BUS_PUBLISHED, BUS_PUBLISHED_HELP)?;
        let dropped_vec =
            IntCounterVec::new(Opts::new(BUS_DROPPED, BUS_DROPPED_HELP), &[REASON_LABEL])?;
        let malformed = IntCounter::new(BUS_MALFORMED, BUS_MALFORMED_HELP)?;
        let reconnects = IntCounter::new(BUS_RECONNECTS, BUS_RECONNECTS_HELP)?;
        let escalations = IntCounter::new(SUPERVISOR_ESCALATIONS, SUPERVISOR_ESCALATIONS_HELP)?;
        let duration_vec = HistogramVec::new(
            HistogramOpts::new(ACTION_DURATION, ACTION_DURATION_HELP)
                .buckets(ACTION_BUCKETS.to_vec()),
            &[ACTION_LABEL],
        )?;
        registry.register(Box::new(bus_connected.clone()))?;
        registry.register(Box::new(received.clone()))?;
        registry.register(Box::new(published.clone()))?;
        registry.register(Box::new(dropped_vec.clone()))?;
        registry.register(Box::new(malformed.clone()))?;
        registry.register(Box::new(reconnects.clone()))?;
        registry.register(Box::new(escalations.clone()))?;
        registry.register(Box::new(duration_vec.clone()))?;
        Ok(DaemonMetrics {
            bus_connected,
            received,
            published,
            dropped: DropReason::ALL.map(|r| dropped_vec.with_label_values(&[r.as_str()])),
            malformed,
            reconnects,
            escalations,
            action_duration: ActionKind::ALL.map(|a| duration_vec.with_label_values(&[a.as_str()])),
            ever_connected: AtomicBool::new(false),
        })
    }

    /// The bus is connected; a connection after the first counts as a
    /// reconnection.
    pub fn bus_up(&self) {
        self.bus_connected.set(1);
        if self.ever_connected.swap(true, Ordering::Relaxed) {
            self.reconnects.inc();
        }
    }

    /// The bus lost its connection (or was closed).
    pub fn bus_down(&self) {
        self.bus_connected.set(0);
    }

    /// A message was taken from the broker.
    pub fn message_received(&self) {
        self.received.inc();
    }

    /// A status message was handed to the broker.
    pub fn message_published(&self) {
        self.published.inc();
    }

    /// A received message reached no component.
    pub fn message_dropped(&self, reason: DropReason) {
        if let Some(counter) = self.dropped.get(reason as usize) {
            counter.inc();
        }
    }

    /// A received action message was malformed or too large.
    pub fn message_malformed(&self) {
        self.malformed.inc();
    }

    /// A supervisor gave up restarting a component and escalated.
    pub fn escalated(&self) {
        self.escalations.inc();
    }

    /// An IC handled an action in `elapsed`.
    pub fn action_handled(&self, kind: ActionKind, elapsed: Duration) {
        if let Some(histogram) = self.action_duration.get(action_index(kind)) {
            histogram.observe(elapsed.as_secs_f64());
        }
    }
}

/// The position of `kind` in [`ActionKind::ALL`].
pub(crate) fn action_index(kind: ActionKind) -> usize {
    ActionKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_count_connections_after_the_first() {
        let registry = Registry::new();
        let metrics = DaemonMetrics::register(&registry).unwrap();
        metrics.bus_up();
        assert_eq!(
            (metrics.bus_connected.get(), metrics.reconnects.get()),
            (1, 0)
        );
        metrics.bus_down();
        assert_eq!(metrics.bus_connected.get(), 0);
        metrics.bus_up();
        assert_eq!(
            (metrics.bus_connected.get(), metrics.reconnects.get()),
            (1, 1)
        );
    }

    #[test]
    fn every_labelled_series_exists_before_use() {
        let registry = Registry::new();
        let _metrics = DaemonMetrics::register(&registry).unwrap();
        let families = registry.gather();
        let count = |name: &str| {
            families
                .iter()
                .find(|f| f.name() == name)
                .map_or(0, |f| f.get_metric().len())
        };
        assert_eq!(count(BUS_DROPPED), DropReason::ALL.len());
        assert_eq!(count(ACTION_DURATION), ActionKind::ALL.len());
        assert_eq!(count(BUS_RECONNECTS), 1);
    }
}
