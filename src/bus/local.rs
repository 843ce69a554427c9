//! The in-process bus, used when no broker is configured: actions arrive
//! through the HTTP API, which addresses components directly, and status
//! messages have no audience, so the outbox is drained (traced) and
//! flushes are answered.

use super::{Outbox, Outgoing};

/// Drains the outbox until every publisher is gone.
pub fn spawn(mut outbox: Outbox) {
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
}
