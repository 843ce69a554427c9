//! The AMQP link: connects to the broker (retrying with jittered backoff
//! for ever, reusing a connection that is still open when only the channel
//! failed; with several broker nodes, failing over to the next node when
//! one does not answer or is lost, see `villas_client::nodes::Failover`),
//! declares the exchange, the queue and the binding, starts the
//! consumer, tracks the bus state (a log line and the metrics per
//! transition) and hands the channel to the publish loop. The consumer
//! side is in the parent module.

use super::redelivery::SUSPECT_WINDOW;
use super::{AmqpBus, AmqpSettings, CONSUMER_TAG, PREFETCH};
use actix::prelude::*;
use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicQosOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use villas_client::redact_url;
use villas_client::wire::declare_exchange;

/// Bound of one connection attempt (TCP, TLS, AMQP handshake, declares).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// A link that stayed up this long resets the backoff; one that fails
/// sooner keeps growing it (a flapping broker is not hammered).
const STABLE_AFTER: Duration = Duration::from_secs(10);

/// The state of the bus, logged at every transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BusState {
    /// No link yet (start-up).
    Connecting,
    /// Consuming and publishing.
    Up,
    /// The link was lost; reconnecting.
    Down,
    /// The daemon stops: no new actions are taken, statuses still go out.
    Draining,
    /// Closed for good.
    Closed,
}

impl BusState {
    /// Whether the bus has a link to the broker in this state.
    pub(crate) fn linked(self) -> bool {
        matches!(self, BusState::Up | BusState::Draining)
    }
}

impl fmt::Display for BusState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BusState::Connecting => "connecting",
            BusState::Up => "up",
            BusState::Down => "down",
            BusState::Draining => "draining",
            BusState::Closed => "closed",
        })
    }
}

/// A connection attempt's result: the connection, the channel and, unless
/// the bus is draining, the consumer.
type Established = (Connection, Channel, Option<lapin::Consumer>);

/// A failed attempt: the error, and the connection if it is still open
/// (a channel-level error), for the next attempt to reuse.
type Failed = (lapin::Error, Option<Connection>);

impl AmqpBus {
    /// Hands the publish loop its channel (`None` while down) and tells
    /// readiness whether there is one.
    pub(super) fn set_link(&self, channel: Option<Channel>) {
        self.linked.send_replace(channel.is_some());
        self.link.send_replace(channel);
    }

    /// Logs a state transition (once per change).
    pub(super) fn set_state(&mut self, to: BusState, reason: &str) {
        if self.state == to {
            return;
        }
        let from = self.state;
        match to {
            BusState::Down => tracing::warn!(%from, %to, reason, "bus state"),
            _ => tracing::info!(%from, %to, reason, "bus state"),
        }
        // A connection after the first counts as a reconnection.
        match (from.linked(), to.linked()) {
            (false, true) => self.metrics.bus_up(),
            (true, false) => self.metrics.bus_down(),
            _ => {}
        }
        self.state = to;
    }

    pub(super) fn connect(&mut self, ctx: &mut Context<Self>) {
        if self.state == BusState::Closed {
            return;
        }
        let settings = self.settings.clone();
        let node = self.failover.current();
        let reuse = self
            .connection
            .take()
            .filter(|connection| connection.status().connected());
        let consume = self.intake_open;
        let attempt = async move {
            match tokio::time::timeout(ATTEMPT_TIMEOUT, establish(settings, node, reuse, consume))
                .await
            {
                Ok(result) => result,
                Err(_) => Err((
                    std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "connection attempt timed out",
                    )
                    .into(),
                    None,
                )),
            }
        };
        ctx.spawn(
            attempt
                .into_actor(self)
                .map(|result, bus, ctx| match result {
                    Ok(established) => bus.established(established, ctx),
                    Err((error, connection)) => bus.retry(error, connection, ctx),
                }),
        );
    }

    fn established(
        &mut self,
        (connection, channel, consumer): Established,
        ctx: &mut Context<Self>,
    ) {
        if self.state == BusState::Closed {
            return;
        }
        self.generation += 1;
        let generation = self.generation;
        let heartbeat = connection.configuration().heartbeat();
        self.connection = Some(connection);
        self.channel = Some(channel.clone());
        self.up_since = Some(Instant::now());
        self.last_error = None;
        if let Some(consumer) = consumer {
            let ended = futures_util::stream::once(async move { (generation, None) });
            ctx.add_stream(
                consumer
                    .map(move |item| (generation, Some(item)))
                    .chain(ended),
            );
        }
        self.set_link(Some(channel));
        let node = self.settings.urls.get(self.failover.current());
        let broker = node.map(|url| redact_url(url)).unwrap_or_default();
        tracing::info!(%broker, exchange = %self.settings.exchange, queue = %self.settings.queue, heartbeat, consuming = self.intake_open, "bus connected");
        let to = if self.intake_open {
            BusState::Up
        } else {
            BusState::Draining
        };
        self.set_state(to, "connected");
    }

    fn retry(
        &mut self,
        error: lapin::Error,
        connection: Option<Connection>,
        ctx: &mut Context<Self>,
    ) {
        let failed = self.node_name();
        // A channel refused on an open connection stays on its node.
        let step = if connection.is_some() {
            self.failover.lost(false, true)
        } else {
            self.failover.failed()
        };
        let delay = backoff(
            step,
            self.settings.reconnect_min,
            self.settings.reconnect_max,
        );
        if connection.is_some() {
            tracing::warn!(%error, broker = %failed, retry_in = ?delay, "channel refused by the broker; rebuilding the channel on the open connection");
        } else {
            tracing::warn!(%error, broker = %failed, next = %self.node_name(), retry_in = ?delay, "broker not reachable; retrying");
        }
        self.connection = connection;
        ctx.run_later(delay, |bus, ctx| bus.connect(ctx));
    }

    /// The node the next attempt goes to, password redacted (for logs).
    fn node_name(&self) -> String {
        let node = self.settings.urls.get(self.failover.current());
        node.map(|url| redact_url(url)).unwrap_or_default()
    }

    /// Whether the consumer ended because `BusControl::StopIntake` cancelled it: the
    /// channel is still open and keeps publishing.
    pub(super) fn stopped_by_us(&self) -> bool {
        !self.intake_open
            && self.last_error.is_none()
            && self
                .channel
                .as_ref()
                .is_some_and(|channel| channel.status().connected())
    }

    /// The link was lost: tell the publish loop, reconnect after a backoff.
    pub(super) fn lost(&mut self, ctx: &mut Context<Self>) {
        self.set_link(None);
        self.unacked = None;
        self.unacked_count = 0;
        self.redelivered.link_lost(SUSPECT_WINDOW);
        if let Some(channel) = self.channel.take().filter(|c| c.status().connected()) {
            // The consumer was cancelled but the channel is open: close it
            // rather than leave it behind on the reused connection.
            actix::spawn(async move {
                let _ = channel.close(200, "rebuilding the channel".into()).await;
            });
        }
        let stable = self
            .up_since
            .take()
            .is_some_and(|up| up.elapsed() >= STABLE_AFTER);
        let channel_only = self
            .connection
            .as_ref()
            .is_some_and(|connection| connection.status().connected());
        let reason = match (&self.last_error, channel_only) {
            (Some(error), _) => error.clone(),
            (None, true) => "the broker closed the channel or cancelled the consumer".into(),
            (None, false) => "connection lost".into(),
        };
        self.set_state(BusState::Down, &reason);
        let lost = self.node_name();
        if !channel_only {
            // Do not leave a half-dead connection to the lost node behind.
            self.connection = None;
        }
        let step = self.failover.lost(stable, channel_only);
        let delay = backoff(
            step,
            self.settings.reconnect_min,
            self.settings.reconnect_max,
        );
        tracing::info!(broker = %lost, next = %self.node_name(), retry_in = ?delay, reuse_connection = channel_only, "reconnecting");
        ctx.run_later(delay, |bus, ctx| bus.connect(ctx));
    }
}

/// Opens a connection to node `node` (or reuses one), opens a channel,
/// declares the exchange, the queue and the binding, and starts consuming
/// if `consume`.
async fn establish(
    settings: Arc<AmqpSettings>,
    node: usize,
    reuse: Option<Connection>,
    consume: bool,
) -> Result<Established, Failed> {
    let connection = match reuse {
        Some(connection) => connection,
        None => {
            let url = settings.urls.get(node).or(settings.urls.first());
            let url = url.map(String::as_str).unwrap_or_default();
            villas_client::connect::connect(url, settings.tls.as_ref(), &settings.queue)
                .await
                .map_err(|error| (error, None))?
        }
    };
    match open_channel(&settings, &connection, consume).await {
        Ok((channel, consumer)) => Ok((connection, channel, consumer)),
        Err(error) => {
            let open = connection.status().connected().then_some(connection);
            Err((error, open))
        }
    }
}

/// Opens a channel on `connection` and declares everything on it.
async fn open_channel(
    settings: &AmqpSettings,
    connection: &Connection,
    consume: bool,
) -> lapin::Result<(Channel, Option<lapin::Consumer>)> {
    let channel = connection.create_channel().await?;
    declare_exchange(&channel, &settings.exchange).await?;
    let mut arguments = FieldTable::default();
    let expires = u32::try_from(settings.queue_expires.as_millis())
        .unwrap_or(u32::MAX)
        .max(1000);
    arguments.insert("x-expires".into(), AMQPValue::LongUInt(expires));
    channel
        .queue_declare(
            settings.queue.as_str().into(),
            QueueDeclareOptions::default(),
            arguments,
        )
        .await?;
    channel
        .queue_bind(
            settings.queue.as_str().into(),
            settings.exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    if !consume {
        return Ok((channel, None));
    }
    channel
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await?;
    let consumer = channel
        .basic_consume(
            settings.queue.as_str().into(),
            CONSUMER_TAG.into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((channel, Some(consumer)))
}

/// Exponential backoff with ±20 % jitter.
pub(crate) fn backoff(attempt: u32, min: Duration, max: Duration) -> Duration {
    let base = min
        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(max);
    let jitter = rand::random_range(0.8..1.2);
    base.mul_f64(jitter).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let min = Duration::from_millis(100);
        let max = Duration::from_secs(5);
        assert!(backoff(0, min, max) <= Duration::from_millis(120));
        assert!(backoff(3, min, max) >= Duration::from_millis(640));
        assert!(backoff(30, min, max) <= max);
    }
}
