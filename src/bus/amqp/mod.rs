//! The AMQP transport. This module is the consumer: one queue for the
//! whole daemon and one binding, consumed with manual acknowledgements,
//! every delivery handed to the transport-neutral intake
//! (`villas_actors::ports::Intake`), and the daemon's [`BusControl`]
//! (stop intake, close). The link (connect, reconnect, bus states) is in
//! `link`, the publish loop in `publish`, the outage store in
//! `pending`, the redelivery filter in `redelivery`, the `broker`
//! settings in `settings`. The AMQP wire helpers (connect with TLS,
//! declaring the exchange, reading headers, closing the link) are
//! villas-client's, shared with the CLI, the tests and the benches.
//!
//! Binding scheme: a single binding with no arguments (a headers exchange
//! binding that matches every message), whatever the number of
//! components. The broker evaluates one binding per message for us instead
//! of one per component; we receive status traffic too and drop it before
//! parsing (our own by its `type` property, others' by their missing
//! `action`).
//!
//! Delivery: a message is acknowledged once it is dispatched to the
//! mailboxes of the components it addresses (acks are batched, prefetch
//! bounded). A message the broker redelivers after a connection loss is
//! dropped if it was dispatched already (`redelivery`).

mod link;
pub(crate) mod pending;
pub(crate) mod publish;
pub(crate) mod redelivery;
pub(crate) mod settings;

use actix::prelude::*;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicNackOptions};
use lapin::types::ShortString;
use lapin::Acker;
use lapin::{Channel, Connection};
pub(crate) use link::BusState;
use publish::PublishLoop;
use redelivery::{RedeliveryFilter, REMEMBERED};
pub(crate) use settings::AmqpSettings;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use villas_actors::ports::{BusControl, BusHandle, Intake, Intook, Outbox, Transport};
use villas_client::nodes::Failover;
use villas_client::wire::{close_link, headers_of, is_status_message};
use villas_metrics::{DaemonMetrics, DropReason};

/// The consumer tag of the daemon's consumer.
const CONSUMER_TAG: &str = "villas-controller";

/// Unacknowledged deliveries the broker may send ahead.
const PREFETCH: u16 = 1000;

/// Acknowledgements wait this long after the first unacknowledged
/// delivery (one `multiple` ack covers everything dispatched meanwhile)...
const ACK_DELAY: Duration = Duration::from_millis(20);

/// ... or until this many deliveries are unacknowledged (well under
/// [`PREFETCH`], so the broker never stalls on the window).
const ACK_BATCH: u16 = 256;

/// Bound of the consumer cancellation when the daemon stops.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(2);

/// One item of the consumer stream, tagged with the link it came from:
/// `None` when that consumer ended.
type Consumed = (u64, Option<lapin::Result<Delivery>>);

/// The AMQP transport, before it starts.
pub(crate) struct Amqp {
    /// Where the broker is and how to use it.
    settings: AmqpSettings,
    /// The bus gauge, reconnects and traffic counters.
    metrics: Arc<DaemonMetrics>,
}

impl Amqp {
    /// The AMQP transport with `settings`, reporting to `metrics`.
    pub(crate) fn new(settings: AmqpSettings, metrics: Arc<DaemonMetrics>) -> Self {
        Amqp { settings, metrics }
    }
}

impl Transport for Amqp {
    fn start(self: Box<Self>, intake: Intake, outbox: Outbox) -> BusHandle {
        let bus = AmqpBus::new(self.settings, intake, outbox, self.metrics);
        let linked = bus.linked.subscribe();
        let control = bus.start().recipient();
        BusHandle::new(linked, Some(control))
    }
}

/// The consumer actor.
pub(crate) struct AmqpBus {
    /// Settings.
    settings: Arc<AmqpSettings>,
    /// Where received messages go.
    intake: Intake,
    /// Outbox to hand to the publish loop when the actor starts.
    outbox: Option<Outbox>,
    /// The channel the publish loop publishes on (`None` while down).
    link: watch::Sender<Option<Channel>>,
    /// Whether a channel is declared and usable (readiness).
    linked: watch::Sender<bool>,
    /// The live connection.
    connection: Option<Connection>,
    /// The live channel (consumer, acks).
    channel: Option<Channel>,
    /// Counts links; consumer items of an older link are ignored.
    generation: u64,
    /// Which broker node the next attempt goes to, and the backoff:
    /// failed attempts since the last stable link.
    failover: Failover,
    /// When the current link came up.
    up_since: Option<Instant>,
    /// The state, for the transition log.
    state: BusState,
    /// The last consumer error, reported when the link goes down.
    last_error: Option<String>,
    /// Whether actions are still taken (cleared by
    /// [`BusControl::StopIntake`]).
    intake_open: bool,
    /// The latest delivery not yet acknowledged (acks are batched).
    unacked: Option<Acker>,
    /// Deliveries dispatched and not yet acknowledged.
    unacked_count: u16,
    /// Dispatched actions, to recognise redeliveries.
    redelivered: RedeliveryFilter,
    /// The daemon's metrics (bus gauge, reconnects, published statuses).
    metrics: Arc<DaemonMetrics>,
}

impl AmqpBus {
    /// A bus that will connect when started.
    fn new(
        settings: AmqpSettings,
        intake: Intake,
        outbox: Outbox,
        metrics: Arc<DaemonMetrics>,
    ) -> Self {
        AmqpBus {
            failover: Failover::new(settings.urls.len()),
            settings: Arc::new(settings),
            intake,
            outbox: Some(outbox),
            link: watch::channel(None).0,
            linked: watch::channel(false).0,
            connection: None,
            channel: None,
            generation: 0,
            up_since: None,
            state: BusState::Connecting,
            last_error: None,
            intake_open: true,
            unacked: None,
            unacked_count: 0,
            redelivered: RedeliveryFilter::new(REMEMBERED),
            metrics,
        }
    }

    fn on_delivery(&mut self, delivery: Delivery, ctx: &mut Context<Self>) {
        if !self.intake_open {
            // Taken back by the broker: a restarted daemon gets it.
            let acker = delivery.acker;
            actix::spawn(async move {
                let requeue = BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                };
                if let Err(error) = acker.nack(requeue).await {
                    tracing::debug!(%error, "nack failed");
                }
            });
            return;
        }
        self.dispatch(&delivery);
        self.unacked_count += 1;
        if self.unacked.replace(delivery.acker).is_none() {
            // Acknowledge everything dispatched so far a little later, off
            // the path of the statuses the actions produce.
            ctx.run_later(ACK_DELAY, |bus, _| bus.ack());
        } else if self.unacked_count >= ACK_BATCH {
            self.ack();
        }
    }

    /// Acknowledges every delivery dispatched so far on the channel.
    fn ack(&mut self) {
        let Some(acker) = self.unacked.take() else {
            return;
        };
        self.unacked_count = 0;
        actix::spawn(async move {
            let all = BasicAckOptions { multiple: true };
            if let Err(error) = acker.ack(all).await {
                tracing::debug!(%error, "ack failed; the broker will redeliver");
            }
        });
    }

    /// Hands a delivery to the intake, minus what only AMQP knows: our
    /// own status traffic (by its `type` property) and redeliveries of
    /// actions dispatched already.
    fn dispatch(&mut self, delivery: &Delivery) {
        let properties = &delivery.properties;
        if is_status_message(properties) {
            self.intake.skip(DropReason::Status);
            return;
        }
        let headers = headers_of(properties.headers().as_ref());
        let fingerprint = RedeliveryFilter::fingerprint(&headers, &delivery.data);
        if delivery.redelivered && self.redelivered.take(fingerprint) {
            tracing::info!(
                ?headers,
                "redelivered message was dispatched already; dropped"
            );
            self.intake.skip(DropReason::Redelivered);
            return;
        }
        if let Intook::Dispatched(_) = self.intake.accept(&headers, &delivery.data) {
            self.redelivered.record(fingerprint);
        }
    }
}

impl Actor for AmqpBus {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(outbox) = self.outbox.take() {
            let exchange = ShortString::from(self.settings.exchange.as_str());
            let publish = PublishLoop::new(
                outbox,
                self.link.subscribe(),
                exchange,
                self.intake.clone(),
                self.metrics.clone(),
            );
            actix::spawn(publish.run());
        }
        tracing::info!(state = %self.state, "bus state");
        self.connect(ctx);
    }
}

impl StreamHandler<Consumed> for AmqpBus {
    fn handle(&mut self, (generation, item): Consumed, ctx: &mut Context<Self>) {
        if generation != self.generation {
            return;
        }
        match item {
            Some(Ok(delivery)) => self.on_delivery(delivery, ctx),
            Some(Err(error)) => {
                tracing::warn!(%error, "consumer error");
                self.last_error = Some(error.to_string());
            }
            None if self.stopped_by_us() => {
                tracing::debug!("consumer cancelled (intake stopped); still publishing");
            }
            None => self.lost(ctx),
        }
    }

    /// A consumer stream ended: handled by its `None` item, so that the
    /// actor is not stopped as `StreamHandler` would by default.
    fn finished(&mut self, _ctx: &mut Context<Self>) {}
}

impl Handler<BusControl> for AmqpBus {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, control: BusControl, ctx: &mut Context<Self>) -> Self::Result {
        match control {
            BusControl::StopIntake => self.stop_intake(),
            BusControl::Close => self.close(ctx),
        }
    }
}

impl AmqpBus {
    /// The daemon stops: take no more actions (the consumer is cancelled;
    /// what the broker still sends is given back to the queue), keep
    /// publishing.
    fn stop_intake(&mut self) -> ResponseFuture<()> {
        self.intake_open = false;
        self.ack();
        if self.state.linked() {
            self.set_state(BusState::Draining, "stopping: no new actions");
        } else {
            // Reconnecting without a consumer, to flush: `Draining` then.
            tracing::info!(state = %self.state, "stopping: no new actions");
        }
        let channel = self.channel.clone();
        Box::pin(async move {
            if let Some(channel) = channel {
                let cancel =
                    channel.basic_cancel(CONSUMER_TAG.into(), BasicCancelOptions::default());
                match tokio::time::timeout(CANCEL_TIMEOUT, cancel).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => tracing::debug!(%error, "consumer not cancelled (link down)"),
                    Err(_) => tracing::warn!("consumer cancellation unanswered; stopping anyway"),
                }
            }
        })
    }

    /// Closes the connection cleanly (after the publish loop was flushed).
    fn close(&mut self, ctx: &mut Context<Self>) -> ResponseFuture<()> {
        self.ack();
        self.intake_open = false;
        self.set_state(BusState::Closed, "daemon stopping");
        self.set_link(None);
        let channel = self.channel.take();
        let connection = self.connection.take();
        ctx.stop();
        Box::pin(close_link(channel, connection, "daemon stopping"))
    }
}
