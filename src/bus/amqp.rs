//! The AMQP consumer actor: connects to the broker (retrying with backoff),
//! declares the headers exchange, one queue for the whole daemon and one
//! binding, consumes, and fans every action out in-process through the
//! routing table. It also owns the publish loop that sends status messages.
//!
//! Binding scheme: a single binding with no arguments (a headers exchange
//! binding that matches every message), whatever the number of
//! components. The broker evaluates one binding per message for us instead
//! of one per component; we receive status traffic too and drop it before
//! parsing (our own by its `type` property, others' by their missing
//! `action`).

use super::{Outbox, Outgoing, STATUS_MESSAGE_TYPE};
use crate::component_actor::{Deliver, Delivered};
use crate::directory::Directory;
use actix::prelude::*;
use lapin::message::Delivery;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use villas_sdk::protocol::{parse_body, ActionError, Body};
use villas_sdk::Headers;

/// What the AMQP bus needs to know.
#[derive(Debug, Clone)]
pub struct AmqpSettings {
    /// Broker URI, heartbeat included.
    pub url: String,
    /// Exchange name (`villas`).
    pub exchange: String,
    /// The daemon's queue name.
    pub queue: String,
    /// How long the broker keeps the queue after we disconnect.
    pub queue_expires: Duration,
    /// First retry delay after a failed connection.
    pub reconnect_min: Duration,
    /// Longest retry delay.
    pub reconnect_max: Duration,
    /// Bodies larger than this are dropped with a log line.
    pub max_body_bytes: usize,
}

/// A connection attempt's result.
type Established = (Connection, Channel, lapin::Consumer);

/// The consumer actor.
pub struct AmqpBus {
    /// Settings.
    settings: Arc<AmqpSettings>,
    /// Where to route actions.
    directory: Directory,
    /// Outbox to hand to the publish loop when the actor starts.
    outbox: Option<Outbox>,
    /// The channel the publish loop publishes on (`None` while down).
    channel: watch::Sender<Option<Channel>>,
    /// The live connection, for a clean close.
    connection: Option<Connection>,
    /// Failed attempts since the last success, for the backoff.
    attempts: u32,
}

impl AmqpBus {
    /// A bus that will connect when started.
    pub fn new(settings: AmqpSettings, directory: Directory, outbox: Outbox) -> Self {
        AmqpBus {
            settings: Arc::new(settings),
            directory,
            outbox: Some(outbox),
            channel: watch::channel(None).0,
            connection: None,
            attempts: 0,
        }
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        let settings = self.settings.clone();
        ctx.spawn(establish(settings).into_actor(self).map(|result, bus, ctx| match result {
            Ok((connection, channel, consumer)) => {
                tracing::info!(exchange = %bus.settings.exchange, queue = %bus.settings.queue, "bus connected; consuming");
                bus.attempts = 0;
                bus.connection = Some(connection);
                bus.channel.send_replace(Some(channel));
                ctx.add_stream(consumer);
            }
            Err(error) => {
                let delay = backoff(bus.attempts, bus.settings.reconnect_min, bus.settings.reconnect_max);
                bus.attempts = bus.attempts.saturating_add(1);
                tracing::warn!(%error, retry_in = ?delay, attempt = bus.attempts, "broker not reachable; retrying");
                ctx.run_later(delay, |bus, ctx| bus.connect(ctx));
            }
        }));
    }

    fn dispatch(&self, delivery: Delivery) {
        let properties = &delivery.properties;
        if properties
            .kind()
            .as_ref()
            .is_some_and(|kind| kind.as_str() == STATUS_MESSAGE_TYPE)
        {
            return;
        }
        let headers = headers_of(properties.headers().as_ref());
        if headers.is_empty() {
            return;
        }
        let size = delivery.data.len();
        let limit = self.settings.max_body_bytes;
        let parsed = if size > limit {
            // Not parsed: refused as too large to everyone it addresses.
            Body::Invalid(ActionError::TooLarge { size, limit })
        } else {
            parse_body(&delivery.data)
        };
        let delivered = match parsed {
            Body::NotAnAction => return,
            Body::Action(action) => Delivered::Action(action),
            Body::Invalid(error) => {
                tracing::warn!(%error, ?headers, "malformed action message");
                Delivered::Invalid(error)
            }
        };
        let message = Arc::new(delivered);
        let reached = self.directory.read().route(&headers, |route| {
            route.target.do_send(Deliver(message.clone()))
        });
        tracing::debug!(reached, ?headers, "message fanned out");
    }
}

impl Actor for AmqpBus {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(outbox) = self.outbox.take() {
            let exchange = ShortString::from(self.settings.exchange.as_str());
            actix::spawn(publish_loop(outbox, self.channel.subscribe(), exchange));
        }
        self.connect(ctx);
    }
}

impl StreamHandler<lapin::Result<Delivery>> for AmqpBus {
    fn handle(&mut self, item: lapin::Result<Delivery>, _ctx: &mut Context<Self>) {
        match item {
            Ok(delivery) => self.dispatch(delivery),
            Err(error) => tracing::warn!(%error, "consumer error"),
        }
    }

    /// The consumer ended (connection or channel lost): reconnect instead
    /// of stopping the actor, as `StreamHandler` would by default.
    fn finished(&mut self, ctx: &mut Context<Self>) {
        tracing::warn!("bus connection lost; reconnecting");
        self.channel.send_replace(None);
        self.connection = None;
        self.connect(ctx);
    }
}

/// Closes the connection cleanly (after the publish loop was flushed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseBus;

impl Handler<CloseBus> for AmqpBus {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: CloseBus, ctx: &mut Context<Self>) -> Self::Result {
        self.channel.send_replace(None);
        let connection = self.connection.take();
        ctx.stop();
        Box::pin(async move {
            if let Some(connection) = connection {
                let _ = connection.close(200, "daemon stopping".into()).await;
            }
        })
    }
}

async fn establish(settings: Arc<AmqpSettings>) -> lapin::Result<Established> {
    let properties =
        ConnectionProperties::default().with_connection_name("villas-controller".into());
    let connection = Connection::connect(&settings.url, properties).await?;
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
    let consumer = channel
        .basic_consume(
            settings.queue.as_str().into(),
            "villas-controller".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok((connection, channel, consumer))
}

/// Declares the protocol's exchange as the reference and VILLASweb do:
/// type `headers`, durable.
pub async fn declare_exchange(channel: &Channel, name: &str) -> lapin::Result<()> {
    channel
        .exchange_declare(
            name.into(),
            ExchangeKind::Headers,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
}

/// Declares a private queue (server-named, exclusive, auto-delete) bound to
/// `exchange` without arguments, as VILLASweb and monitors watch the
/// exchange: it receives every message. Returns the queue's name.
pub async fn bind_private_queue(channel: &Channel, exchange: &str) -> lapin::Result<ShortString> {
    let options = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..Default::default()
    };
    let queue = channel
        .queue_declare("".into(), options, FieldTable::default())
        .await?;
    let name = queue.name().clone();
    channel
        .queue_bind(
            name.clone(),
            exchange.into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(name)
}

/// Publishes the outbox in order on whichever channel is current, waiting
/// for a new one while the bus is down.
async fn publish_loop(
    mut outbox: Outbox,
    mut channel: watch::Receiver<Option<Channel>>,
    exchange: ShortString,
) {
    while let Some(outgoing) = outbox.recv().await {
        let (headers, body) = match outgoing {
            Outgoing::Flush(done) => {
                let _ = done.send(());
                continue;
            }
            Outgoing::Status { headers, body } => (headers, body),
        };
        loop {
            let current = channel.borrow_and_update().clone();
            if let Some(ch) = current {
                match ch
                    .basic_publish(
                        exchange.clone(),
                        "".into(),
                        BasicPublishOptions::default(),
                        &body,
                        status_properties(&headers),
                    )
                    .await
                {
                    Ok(_) => break,
                    Err(error) => tracing::warn!(%error, "publish failed; waiting for the bus"),
                }
            }
            if channel.changed().await.is_err() {
                return;
            }
        }
    }
}

/// The AMQP properties of a status message: JSON, tagged with our status
/// type so that our own consumer drops it unparsed, and the component's
/// four headers. Built per attempt (not built once and cloned per attempt).
fn status_properties(headers: &Headers) -> BasicProperties {
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_content_encoding("utf-8".into())
        .with_type(STATUS_MESSAGE_TYPE.into())
        .with_app_id("villas-controller".into())
        .with_headers(field_table(headers))
}

/// A component's headers as an AMQP field table (strings).
fn field_table(headers: &Headers) -> FieldTable {
    let mut table = FieldTable::default();
    for (name, value) in headers.iter() {
        table.insert(name.into(), AMQPValue::LongString(LongString::from(value)));
    }
    table
}

/// The four addressing headers of a message; non-string values are ignored
/// (they address nobody).
pub fn headers_of(table: Option<&FieldTable>) -> Headers {
    let mut headers = Headers::default();
    let Some(table) = table else {
        return headers;
    };
    for (name, value) in table {
        let text = match value {
            AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
            AMQPValue::ShortString(s) => s.as_str().to_owned(),
            _ => continue,
        };
        headers.set(name.as_str(), text);
    }
    headers
}

/// Exponential backoff with ±20 % jitter.
pub fn backoff(attempt: u32, min: Duration, max: Duration) -> Duration {
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
    fn header_extraction_ignores_non_strings() {
        let mut table = FieldTable::default();
        table.insert("uuid".into(), AMQPValue::LongString("abc".into()));
        table.insert("realm".into(), AMQPValue::LongInt(5));
        table.insert("type".into(), AMQPValue::ShortString("dummy".into()));
        table.insert("other".into(), AMQPValue::LongString("x".into()));
        let headers = headers_of(Some(&table));
        assert_eq!(headers.uuid.as_deref(), Some("abc"));
        assert_eq!(headers.kind.as_deref(), Some("dummy"));
        assert_eq!(headers.realm, None);
        assert!(headers_of(None).is_empty());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let min = Duration::from_millis(100);
        let max = Duration::from_secs(5);
        assert!(backoff(0, min, max) <= Duration::from_millis(120));
        assert!(backoff(3, min, max) >= Duration::from_millis(640));
        assert!(backoff(30, min, max) <= max);
    }
}
