//! The message bus seen from the daemon: what components publish
//! ([`Outgoing`]), the handle they publish through ([`Publisher`]), and the
//! two transports: AMQP ([`amqp`], with its publish loop [`publish`], the
//! outage store [`pending`] and the redelivery filter [`redelivery`]) and
//! the in-process bus ([`local`]) used when no broker is configured.

pub mod amqp;
pub mod connect;
pub mod local;
pub mod pending;
pub mod publish;
pub mod redelivery;

use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use villas_sdk::Headers;

/// The AMQP `type` property our status messages carry, so that the
/// consumer drops its own status traffic without parsing it.
pub const STATUS_MESSAGE_TYPE: &str = "villas.status";

/// Something for the bus to send.
#[derive(Debug)]
pub enum Outgoing {
    /// A status message, published with the component's four headers.
    Status {
        /// The publishing component's headers.
        headers: Arc<Headers>,
        /// The JSON body.
        body: Vec<u8>,
    },
    /// Answered once everything queued before it was handed to the broker.
    Flush(oneshot::Sender<()>),
}

/// The handle components publish through: cheap to clone, never blocks,
/// keeps order per sender.
#[derive(Debug, Clone)]
pub struct Publisher {
    /// The queue the transport drains.
    tx: mpsc::UnboundedSender<Outgoing>,
}

/// The transport's end of a [`Publisher`].
pub type Outbox = mpsc::UnboundedReceiver<Outgoing>;

impl Publisher {
    /// A publisher and the outbox its transport drains.
    pub fn channel() -> (Publisher, Outbox) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Publisher { tx }, rx)
    }

    /// Queues a status message. Dropped silently once the transport is gone
    /// (the daemon is stopping).
    pub fn publish(&self, headers: Arc<Headers>, body: Vec<u8>) {
        let _ = self.tx.send(Outgoing::Status { headers, body });
    }

    /// Waits until everything queued so far was handed to the transport.
    /// Returns `false` if the transport is gone.
    pub async fn flush(&self) -> bool {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Outgoing::Flush(done)).is_err() {
            return false;
        }
        wait.await.is_ok()
    }
}
