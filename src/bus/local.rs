//! The in-process bus, used when no broker is configured: actions arrive
//! through the HTTP API, which addresses components directly (so the
//! intake is not used), and status messages have no audience, so the
//! outbox is drained (traced) and flushes are answered.

use std::sync::Arc;
use villas_actors::ports::{BusHandle, Intake, Outbox, Outgoing, Transport};
use villas_metrics::DaemonMetrics;

/// The in-process transport.
pub(crate) struct Local {
    /// Reports the bus as up (it always is).
    metrics: Arc<DaemonMetrics>,
}

impl Local {
    /// The in-process transport, reporting to `metrics`.
    pub(crate) fn new(metrics: Arc<DaemonMetrics>) -> Self {
        Local { metrics }
    }
}

impl Transport for Local {
    fn start(self: Box<Self>, _intake: Intake, mut outbox: Outbox) -> BusHandle {
        self.metrics.bus_up();
        actix::spawn(async move {
            while let Some(outgoing) = outbox.recv().await {
                match outgoing {
                    Outgoing::Status { headers, .. } => {
                        tracing::trace!(
                            uuid = headers.uuid.as_deref().unwrap_or(""),
                            "status on the in-process bus"
                        );
                    }
                    Outgoing::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        BusHandle::always_linked()
    }
}
