//! The in-process bus: used when no broker is configured. Status messages
//! go to in-process subscribers (none need exist); actions arrive through
//! the HTTP API, which addresses components directly.

use super::{Outbox, Outgoing};
use std::sync::Arc;
use tokio::sync::broadcast;
use villas_sdk::Headers;

/// A status message seen on the local bus.
#[derive(Debug, Clone)]
pub struct LocalMessage {
    /// The publisher's headers.
    pub headers: Arc<Headers>,
    /// The JSON body.
    pub body: Arc<Vec<u8>>,
}

/// Drains the outbox into a broadcast channel until every publisher is
/// gone. Returns the sender so callers can subscribe.
pub fn spawn(mut outbox: Outbox) -> broadcast::Sender<LocalMessage> {
    let (tx, _) = broadcast::channel(1024);
    let sender = tx.clone();
    actix::spawn(async move {
        while let Some(outgoing) = outbox.recv().await {
            match outgoing {
                Outgoing::Status { headers, body } => {
                    tracing::trace!(
                        uuid = headers.uuid.as_deref().unwrap_or(""),
                        "status on the local bus"
                    );
                    let _ = tx.send(LocalMessage {
                        headers,
                        body: Arc::new(body),
                    });
                }
                Outgoing::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    });
    sender
}
