//! The ports between a transport and the component tree; depends on the
//! SDK and the metrics only, so a transport never sees an actor:
//!
//! - outbound: what components publish ([`Outgoing`]), the handle they
//!   publish through ([`Publisher`]) and the queue a transport drains
//!   ([`Outbox`]);
//! - inbound: what a transport hands the tree ([`Inbound`]), the tree as a
//!   transport sees it ([`Dispatch`]), and the transport-neutral
//!   [`Intake`] every transport calls for each message it receives (size
//!   limit, parse, drop and malformed metrics, one tracing span per
//!   delivery, fan-out);
//! - the seam itself: [`Transport`] (the AMQP bus and the in-process bus
//!   are its implementations) and the [`BusHandle`] the daemon stops it
//!   through.

use actix::prelude::*;
use std::fmt;
use std::sync::{Arc, LazyLock};
use tokio::sync::{mpsc, oneshot, watch};
use villas_metrics::{DaemonMetrics, DropReason};
use villas_sdk::protocol::{parse_body, ActionError, Body};
use villas_sdk::{Action, ActionKind, Headers};

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

/// What a transport hands the component tree: a well-formed action, or
/// why the body is not one (every addressed component publishes the
/// refusal).
pub type Inbound = Result<Action, ActionError>;

/// The component tree as a transport sees it (implemented by
/// `crate::ic::directory::Directory`).
pub trait Dispatch: Send + Sync + 'static {
    /// Hands `message` to every component `headers` address (`x-match:
    /// any`; an empty value addresses everyone); returns how many.
    fn dispatch(&self, headers: &Headers, message: &Arc<Inbound>) -> usize;
}

/// What [`Intake::accept`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intook {
    /// Not handed to any component (counted under this reason).
    Dropped(DropReason),
    /// Handed to this many components (0: nobody matched, counted too).
    Dispatched(usize),
}

/// The transport-neutral intake: every transport calls [`Intake::accept`]
/// with the headers and the body of each message it receives, so the size
/// limit, the parsing, the metrics and the fan-out are the same on every
/// transport. Cheap to clone.
#[derive(Clone)]
pub struct Intake {
    /// Where messages go.
    dispatch: Arc<dyn Dispatch>,
    /// Bodies larger than this are refused unparsed.
    max_body: usize,
    /// Received, dropped and malformed messages.
    metrics: Arc<DaemonMetrics>,
}

impl fmt::Debug for Intake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intake")
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

/// The `ping` a reconnected transport sends everyone, built once.
static PING: LazyLock<Arc<Inbound>> = LazyLock::new(|| Arc::new(Ok(Action::new(ActionKind::Ping))));

impl Intake {
    /// An intake handing messages to `dispatch`, refusing bodies over
    /// `max_body` bytes.
    pub fn new(dispatch: Arc<dyn Dispatch>, max_body: usize, metrics: Arc<DaemonMetrics>) -> Self {
        Intake {
            dispatch,
            max_body,
            metrics,
        }
    }

    /// Takes one message: drops it if it addresses nobody or is no action
    /// (status traffic); refuses it unparsed to everyone it addresses if
    /// it is too large; hands the action, or why it is malformed, to every
    /// component it addresses.
    pub fn accept(&self, headers: &Headers, body: &[u8]) -> Intook {
        self.metrics.message_received();
        if headers.is_empty() {
            return self.dropped(DropReason::NoHeaders);
        }
        let span =
            tracing::info_span!("delivery", headers = %Addressed(headers), size = body.len());
        let _entered = span.enter();
        let parsed = if body.len() > self.max_body {
            Body::Invalid(ActionError::TooLarge {
                size: body.len(),
                limit: self.max_body,
            })
        } else {
            parse_body(body)
        };
        let inbound = match parsed {
            Body::NotAnAction => return self.dropped(DropReason::NotAnAction),
            Body::Action(action) => Ok(action),
            Body::Invalid(error) => {
                tracing::warn!(%error, "malformed action message");
                self.metrics.message_malformed();
                Err(error)
            }
        };
        let reached = self.dispatch.dispatch(headers, &Arc::new(inbound));
        tracing::debug!(reached, "message fanned out");
        if reached == 0 {
            self.metrics.message_dropped(DropReason::NoMatch);
        }
        Intook::Dispatched(reached)
    }

    /// Counts a message the transport itself recognised as not for the
    /// components (its own status traffic, a redelivery it dispatched
    /// already) as received and dropped.
    pub fn skip(&self, reason: DropReason) -> Intook {
        self.metrics.message_received();
        self.dropped(reason)
    }

    fn dropped(&self, reason: DropReason) -> Intook {
        self.metrics.message_dropped(reason);
        Intook::Dropped(reason)
    }

    /// Asks every component for a fresh status (a `ping` to `uuid: ""`,
    /// through their mailboxes, so it follows what they published before):
    /// what a transport does after a reconnect. Returns how many.
    pub fn refresh_all(&self) -> usize {
        self.dispatch.dispatch(&Headers::uuid(""), &PING)
    }
}

/// The headers a message carries, as `uuid="..." type="..."` (present
/// ones only), for the delivery span.
struct Addressed<'a>(&'a Headers);

impl fmt::Display for Addressed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, (name, value)) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{name}={value:?}")?;
        }
        Ok(())
    }
}

/// A message bus: takes messages from somewhere, hands each to the
/// [`Intake`], and publishes what the components put in the [`Outbox`].
/// The daemon picks one implementation from its settings.
pub trait Transport {
    /// Starts the transport on the current actix system.
    fn start(self: Box<Self>, intake: Intake, outbox: Outbox) -> BusHandle;
}

/// What the daemon tells a running transport as it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub enum BusControl {
    /// Take no more messages (those already taken were dispatched);
    /// keep publishing.
    StopIntake,
    /// Close the link (after the outbox was flushed).
    Close,
}

/// The daemon's handle on a running transport.
#[derive(Debug, Clone)]
pub struct BusHandle {
    /// `true` while the transport has a usable link (readiness waits for
    /// the first).
    linked: watch::Receiver<bool>,
    /// Where [`BusControl`] goes; `None` for a transport with nothing to
    /// stop.
    control: Option<Recipient<BusControl>>,
}

impl BusHandle {
    /// A handle on a transport whose link state is `linked`, controlled
    /// through `control`.
    pub fn new(linked: watch::Receiver<bool>, control: Option<Recipient<BusControl>>) -> Self {
        BusHandle { linked, control }
    }

    /// A handle on a transport that is always linked and has nothing to
    /// stop (the in-process bus).
    pub fn always_linked() -> Self {
        let (tx, linked) = watch::channel(true);
        // The receiver keeps the last value once the sender is gone.
        drop(tx);
        BusHandle {
            linked,
            control: None,
        }
    }

    /// The link state, to wait on.
    pub fn linked(&self) -> watch::Receiver<bool> {
        self.linked.clone()
    }

    /// Takes no more messages; returns once the transport stopped taking
    /// them.
    pub async fn stop_intake(&self) {
        self.control(BusControl::StopIntake).await;
    }

    /// Closes the link; returns once it is closed.
    pub async fn close(&self) {
        self.control(BusControl::Close).await;
    }

    async fn control(&self, message: BusControl) {
        if let Some(control) = &self.control {
            // A transport already gone has nothing left to do.
            let _ = control.send(message).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    /// Records what it was handed; reaches `reach` components.
    #[derive(Default)]
    struct Recorder {
        reach: usize,
        seen: Mutex<Vec<(Headers, Arc<Inbound>)>>,
    }

    impl Dispatch for Recorder {
        fn dispatch(&self, headers: &Headers, message: &Arc<Inbound>) -> usize {
            self.seen.lock().push((headers.clone(), message.clone()));
            self.reach
        }
    }

    fn metrics() -> Arc<DaemonMetrics> {
        let metrics = villas_metrics::Metrics::new(&villas_metrics::BuildInfo {
            version: "test".into(),
            profile: "debug",
        })
        .unwrap();
        metrics.daemon().clone()
    }

    fn intake(reach: usize, max_body: usize) -> (Intake, Arc<Recorder>) {
        let recorder = Arc::new(Recorder {
            reach,
            ..Recorder::default()
        });
        (Intake::new(recorder.clone(), max_body, metrics()), recorder)
    }

    #[test]
    fn actions_and_malformed_bodies_are_fanned_out_the_rest_dropped() {
        let (intake, seen) = intake(3, 64);
        let to = Headers::uuid("x");
        assert_eq!(
            intake.accept(&to, br#"{"action": "ping"}"#),
            Intook::Dispatched(3)
        );
        assert_eq!(intake.accept(&to, b"{"), Intook::Dispatched(3));
        assert_eq!(
            intake.accept(&to, &[b' '; 65]),
            Intook::Dispatched(3),
            "too large: refused to everyone, unparsed"
        );
        assert_eq!(
            intake.accept(&to, br#"{"status": {}}"#),
            Intook::Dropped(DropReason::NotAnAction)
        );
        assert_eq!(
            intake.accept(&Headers::default(), br#"{"action": "ping"}"#),
            Intook::Dropped(DropReason::NoHeaders)
        );
        let seen = seen.seen.lock();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0].1.as_ref().as_ref().unwrap().kind, ActionKind::Ping);
        assert!(matches!(*seen[1].1, Err(ActionError::NotJson { .. })));
        assert!(matches!(
            *seen[2].1,
            Err(ActionError::TooLarge {
                size: 65,
                limit: 64
            })
        ));
    }

    #[test]
    fn nobody_reached_is_reported() {
        let (intake, _) = intake(0, 64);
        assert_eq!(
            intake.accept(&Headers::uuid("x"), br#"{"action": "ping"}"#),
            Intook::Dispatched(0)
        );
    }

    #[test]
    fn refresh_pings_everyone() {
        let (intake, seen) = intake(7, 64);
        assert_eq!(intake.refresh_all(), 7);
        let seen = seen.seen.lock();
        assert_eq!(seen[0].0, Headers::uuid(""));
        assert_eq!(seen[0].1.as_ref().as_ref().unwrap().kind, ActionKind::Ping);
    }

    #[actix::test]
    async fn a_handle_without_control_is_linked_and_stops_at_once() {
        let handle = BusHandle::always_linked();
        assert!(*handle.linked().borrow());
        handle.stop_intake().await;
        handle.close().await;
    }
}
