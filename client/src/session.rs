//! A session on the broker: one connection and one channel in confirm
//! mode on the protocol's exchange ([`Session`]), private queues bound to
//! it ([`Subscription`], a stream of [`Message`]s), and publishing that
//! waits for the broker's confirmation (so a script that exits right after
//! sending knows the broker has the message).

use crate::connect::{connect, redact_url, TlsFiles};
use crate::error::{ConnectError, Error, Result};
use crate::wire::{
    action_properties, bind_private_queue, close_link, consume, declare_exchange, field_table,
    headers_of, is_status_message, publish, Binding,
};
use futures_util::StreamExt;
use lapin::options::{ConfirmSelectOptions, ExchangeDeleteOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection, Consumer};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;
use villas_sdk::protocol::StatusView;
use villas_sdk::{Action, Headers, State};

/// How long connecting may take by default (the reference's
/// `connect_timeout=3`).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The reference's exchange.
pub const DEFAULT_EXCHANGE: &str = "villas";

/// Where a session connects.
#[derive(Debug, Clone)]
pub struct Target {
    /// Broker URL, `amqp://` or `amqps://` (password included: print it
    /// only through [`redact_url`]).
    pub url: String,
    /// Further nodes of the same broker (a cluster's other nodes), tried
    /// in order when `url` does not answer.
    pub alternates: Vec<String>,
    /// The headers exchange.
    pub exchange: String,
    /// TLS files for an `amqps://` URL.
    pub tls: Option<TlsFiles>,
    /// The connection's name in the broker's management view.
    pub name: String,
    /// How long connecting may take.
    pub connect_timeout: Duration,
}

impl Target {
    /// `url` and `exchange`, without TLS files, named `villas-client`.
    pub fn new(url: impl Into<String>, exchange: impl Into<String>) -> Target {
        Target {
            url: url.into(),
            alternates: Vec::new(),
            exchange: exchange.into(),
            tls: None,
            name: "villas-client".into(),
            connect_timeout: CONNECT_TIMEOUT,
        }
    }

    /// The same target with TLS files (for `amqps://`).
    #[must_use]
    pub fn with_tls(mut self, tls: TlsFiles) -> Target {
        self.tls = Some(tls);
        self
    }

    /// The target of a list of broker nodes: the first is `url`, the rest
    /// [`Target::alternates`]. An empty list is the reference's default
    /// broker.
    pub fn of_nodes(urls: &[String], exchange: impl Into<String>) -> Target {
        let mut nodes = urls.iter();
        let first = nodes
            .next()
            .cloned()
            .unwrap_or_else(|| "amqp://guest:guest@localhost/%2F".into());
        let mut target = Target::new(first, exchange);
        target.alternates = nodes.cloned().collect();
        target
    }

    /// Every node, `url` first.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.url.as_str()).chain(self.alternates.iter().map(String::as_str))
    }

    /// The nodes for messages, passwords redacted.
    pub fn redacted(&self) -> String {
        self.urls().map(redact_url).collect::<Vec<_>>().join(", ")
    }

    /// The same target under another connection name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Target {
        self.name = name.into();
        self
    }
}

/// A message received from the exchange.
#[derive(Debug, Clone)]
pub struct Message {
    /// Its addressing headers.
    pub headers: Headers,
    /// All its AMQP properties.
    pub properties: BasicProperties,
    /// The raw body.
    pub body: Vec<u8>,
}

impl From<lapin::message::Delivery> for Message {
    fn from(delivery: lapin::message::Delivery) -> Message {
        Message {
            headers: headers_of(delivery.properties.headers().as_ref()),
            properties: delivery.properties,
            body: delivery.data,
        }
    }
}

/// The two fields of a status that say who is where, parsed without the
/// rest of the message.
#[derive(Deserialize)]
struct StatusHead {
    /// `status`.
    status: StateOnly,
    /// `properties`.
    properties: UuidOnly,
}

/// `status.state`.
#[derive(Deserialize)]
struct StateOnly {
    /// The state.
    state: State,
}

/// `properties.uuid`.
#[derive(Deserialize)]
struct UuidOnly {
    /// The uuid.
    uuid: String,
}

impl Message {
    /// The body as JSON, or as a string when it is not JSON (as kombu
    /// hands a non-JSON payload to the reference's monitor).
    pub fn payload(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.body).into_owned()))
    }

    /// The body as a status message (ours or the reference's); `None` for
    /// actions and anything else.
    pub fn status(&self) -> Option<StatusView> {
        let value: Value = serde_json::from_slice(&self.body).ok()?;
        if value.get("action").is_some() {
            return None;
        }
        serde_json::from_value(value).ok()
    }

    /// Whether it is one of the daemon's statuses, by its `type` property
    /// alone (the reference's statuses do not carry it).
    pub fn is_status_message(&self) -> bool {
        is_status_message(&self.properties)
    }

    /// The uuid and state of a status, parsing nothing else: the cheap
    /// view for watching many ICs.
    pub fn uuid_and_state(&self) -> Option<(String, State)> {
        let head: StatusHead = serde_json::from_slice(&self.body).ok()?;
        Some((head.properties.uuid, head.status.state))
    }
}

/// Messages arriving on a private queue, in order. Buffered by lapin
/// while nobody reads, so nothing is lost between reads.
pub struct Subscription {
    /// The consumer on the queue.
    consumer: Consumer,
}

impl From<Consumer> for Subscription {
    fn from(consumer: Consumer) -> Subscription {
        Subscription { consumer }
    }
}

impl Subscription {
    /// The next message; [`Error::ConnectionLost`] once the consumer ended.
    /// Cancel-safe: a message is never lost by dropping the future.
    pub async fn next(&mut self) -> Result<Message> {
        match self.consumer.next().await {
            Some(Ok(delivery)) => Ok(Message::from(delivery)),
            Some(Err(_)) | None => Err(Error::ConnectionLost),
        }
    }

    /// The next message if one arrives before `deadline`; `Ok(None)` when
    /// the deadline passed first.
    pub async fn next_until(&mut self, deadline: Instant) -> Result<Option<Message>> {
        match tokio::time::timeout_at(deadline, self.next()).await {
            Ok(message) => message.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Reads until nothing arrived for `quiet` (at most until `deadline`);
    /// returns how many messages were dropped.
    pub async fn drain(&mut self, quiet: Duration, deadline: Instant) -> Result<usize> {
        let mut drained = 0;
        loop {
            let until = (Instant::now() + quiet).min(deadline);
            match self.next_until(until).await? {
                Some(_) => drained += 1,
                None => return Ok(drained),
            }
        }
    }
}

/// A connection and a channel on the exchange.
pub struct Session {
    /// The connection, closed by [`Session::close`].
    connection: Connection,
    /// The one channel, in confirm mode.
    channel: Channel,
    /// The exchange everything goes through.
    exchange: String,
}

impl Session {
    /// Connects (within the target's timeout), opens a channel in confirm
    /// mode and declares the exchange as the daemon does.
    pub async fn open(target: &Target) -> Result<Session> {
        let failed = |source: ConnectError| Error::Connect {
            broker: target.redacted(),
            exchange: target.exchange.clone(),
            source: Box::new(source),
        };
        // A TLS file that cannot be used is told as such, not as the I/O
        // error lapin would make of it.
        if let Some(tls) = &target.tls {
            tls.load()
                .map_err(|error| failed(ConnectError::Tls(error)))?;
        }
        // The first node that answers; the last node's error otherwise.
        let mut last = None;
        let mut connected = None;
        for url in target.urls() {
            let connecting = connect(url, target.tls.as_ref(), &target.name);
            match tokio::time::timeout(target.connect_timeout, connecting).await {
                Ok(Ok(connection)) => {
                    connected = Some((url, connection));
                    break;
                }
                Ok(Err(error)) => last = Some(ConnectError::Amqp(error)),
                Err(_) => last = Some(ConnectError::TimedOut(target.connect_timeout)),
            }
            tracing::debug!(broker = %redact_url(url), "broker node not reachable; trying the next");
        }
        let Some((url, connection)) = connected else {
            return Err(failed(
                last.unwrap_or(ConnectError::TimedOut(target.connect_timeout)),
            ));
        };
        let channel = async {
            let channel = connection.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            declare_exchange(&channel, &target.exchange).await?;
            Ok::<_, lapin::Error>(channel)
        }
        .await;
        let channel = match channel {
            Ok(channel) => channel,
            Err(error) => {
                close_link(None, Some(connection), "bye").await;
                return Err(failed(ConnectError::Amqp(error)));
            }
        };
        tracing::debug!(broker = %redact_url(url), exchange = %target.exchange, "connected");
        Ok(Session {
            connection,
            channel,
            exchange: target.exchange.clone(),
        })
    }

    /// The exchange.
    pub fn exchange(&self) -> &str {
        &self.exchange
    }

    /// The channel, for what this type does not offer.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// A private queue (server-named, exclusive, auto-delete) bound by
    /// `binding`, and its messages. Returns once the binding is in place,
    /// so nothing published afterwards is missed.
    pub async fn subscribe(&self, binding: &Binding) -> Result<Subscription> {
        let queue = bind_private_queue(&self.channel, &self.exchange, binding)
            .await
            .map_err(Error::Subscribe)?;
        let consumer = consume(&self.channel, queue)
            .await
            .map_err(Error::Subscribe)?;
        Ok(Subscription { consumer })
    }

    /// Sends `action` to the ICs `headers` address (x-match any: an empty
    /// value addresses every IC) and waits for the broker's confirmation.
    pub async fn send(&self, headers: &Headers, action: &Action) -> Result<()> {
        self.publish(headers, &action.to_json()).await
    }

    /// Publishes a JSON `body` with `headers` as the reference's CLI does
    /// (JSON, persistent) and waits for the broker's confirmation.
    pub async fn publish(&self, headers: &Headers, body: &Value) -> Result<()> {
        self.publish_raw(field_table(headers), body.to_string().as_bytes())
            .await
    }

    /// Publishes any bytes with any headers (as an action's properties)
    /// and waits for the broker's confirmation: for bodies and headers
    /// that are not the protocol's, e.g. to test how an IC takes them.
    pub async fn publish_raw(&self, headers: FieldTable, body: &[u8]) -> Result<()> {
        let confirmation = publish(
            &self.channel,
            &self.exchange,
            action_properties(headers),
            body,
        )
        .await
        .map_err(Error::Publish)?
        .await
        .map_err(Error::Publish)?;
        match confirmation {
            Confirmation::Nack(_) => Err(Error::Refused),
            _ => Ok(()),
        }
    }

    /// Deletes the exchange: for a scratch exchange of a test or a CI run,
    /// never for a lab's shared one.
    pub async fn delete_exchange(&self) -> Result<()> {
        self.channel
            .exchange_delete(
                self.exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await
            .map_err(|source| Error::Operation {
                what: "delete the exchange",
                source,
            })
    }

    /// Closes the channel, then the connection, politely (in that order,
    /// so lapin logs no error: see [`close_link`]).
    pub async fn close(self) {
        close_link(Some(self.channel), Some(self.connection), "bye").await;
    }
}
