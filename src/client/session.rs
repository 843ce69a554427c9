//! A client's short-lived session on the broker: one connection and one
//! channel, a private queue bound to the exchange like the reference's
//! monitor and VILLASweb, and publishing with publisher confirms (so a
//! command that exits right after sending knows the broker has it).

use super::{ClientError, Target};
use crate::bus::amqp::{close_link, declare_exchange, headers_of};
use crate::settings::redact_url;
use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use serde_json::Value;
use std::time::Duration;
use tokio::sync::mpsc;
use villas_sdk::protocol::StatusView;
use villas_sdk::Headers;

/// How long connecting may take (the reference's `connect_timeout=3`).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A message received from the exchange.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its addressing headers.
    pub headers: Headers,
    /// All its AMQP properties (the monitor prints them).
    pub properties: BasicProperties,
    /// The raw body.
    pub body: Vec<u8>,
}

impl Received {
    /// The body as JSON, or as a string when it is not JSON (as kombu
    /// hands a non-JSON payload to the reference's monitor).
    pub fn payload(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.body).into_owned()))
    }

    /// The body as a status message; `None` for actions and anything else.
    pub fn status(&self) -> Option<StatusView> {
        let value: Value = serde_json::from_slice(&self.body).ok()?;
        if value.get("action").is_some() {
            return None;
        }
        serde_json::from_value(value).ok()
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
    /// Connects (within [`CONNECT_TIMEOUT`]), opens a channel in confirm
    /// mode and declares the exchange as the daemon does.
    pub async fn open(target: &Target) -> Result<Session, ClientError> {
        let redacted = redact_url(&target.url);
        let broker = |message: String| {
            ClientError::Broker(format!(
                "cannot use the broker at {redacted} (exchange {}): {message}",
                target.exchange
            ))
        };
        let connect =
            crate::bus::connect::connect(&target.url, target.tls.as_ref(), "villas-controller-cli");
        let connection = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => return Err(broker(error.to_string())),
            Err(_) => {
                return Err(broker(format!(
                    "no connection within {} s",
                    CONNECT_TIMEOUT.as_secs()
                )))
            }
        };
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| broker(e.to_string()))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| broker(e.to_string()))?;
        declare_exchange(&channel, &target.exchange)
            .await
            .map_err(|e| broker(e.to_string()))?;
        tracing::debug!(broker = %redacted, exchange = %target.exchange, "connected");
        Ok(Session {
            connection,
            channel,
            exchange: target.exchange.clone(),
        })
    }

    /// Binds a private queue (server-named, exclusive, auto-delete) and
    /// consumes it. `filter` empty: every message; otherwise only messages
    /// carrying all of its headers (the reference monitor's binding,
    /// RabbitMQ's default `x-match: all`). The receiver closes when the
    /// connection is lost. Returns once the binding is in place, so nothing
    /// published afterwards is missed.
    pub async fn subscribe(
        &self,
        filter: &Headers,
    ) -> Result<mpsc::UnboundedReceiver<Received>, ClientError> {
        let lost = |e: lapin::Error| ClientError::Broker(format!("cannot subscribe: {e}"));
        let options = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..Default::default()
        };
        let queue = self
            .channel
            .queue_declare("".into(), options, FieldTable::default())
            .await
            .map_err(lost)?;
        let mut arguments = field_table(filter);
        if !filter.is_empty() {
            arguments.insert("x-match".into(), AMQPValue::LongString("all".into()));
        }
        self.channel
            .queue_bind(
                queue.name().clone(),
                self.exchange.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                arguments,
            )
            .await
            .map_err(lost)?;
        let mut consumer = self
            .channel
            .basic_consume(
                queue.name().clone(),
                "villas-controller-cli".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(lost)?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let received = Received {
                    headers: headers_of(delivery.properties.headers().as_ref()),
                    properties: delivery.properties.clone(),
                    body: delivery.data,
                };
                if tx.send(received).is_err() {
                    break;
                }
            }
        });
        Ok(rx)
    }

    /// Publishes `body` with `headers` as the reference's CLI does (JSON,
    /// persistent) and waits for the broker's confirmation.
    pub async fn publish(&self, headers: &Headers, body: &Value) -> Result<(), ClientError> {
        let failed = |message: String| ClientError::Broker(format!("cannot publish: {message}"));
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_content_encoding("utf-8".into())
            .with_delivery_mode(2)
            .with_headers(field_table(headers));
        let confirmation = self
            .channel
            .basic_publish(
                self.exchange.as_str().into(),
                "".into(),
                BasicPublishOptions::default(),
                body.to_string().as_bytes(),
                properties,
            )
            .await
            .map_err(|e| failed(e.to_string()))?
            .await
            .map_err(|e| failed(e.to_string()))?;
        match confirmation {
            Confirmation::Nack(_) => Err(failed("the broker refused the message".into())),
            _ => Ok(()),
        }
    }

    /// Closes the channel, then the connection, politely (in that order,
    /// so lapin logs no error: see [`close_link`]).
    pub async fn close(self) {
        close_link(Some(self.channel), Some(self.connection), "bye").await;
    }
}

/// Headers as an AMQP table of strings.
fn field_table(headers: &Headers) -> FieldTable {
    let mut table = FieldTable::default();
    for (name, value) in headers.iter() {
        table.insert(name.into(), AMQPValue::LongString(LongString::from(value)));
    }
    table
}

/// Waits for the next message until `deadline`; `Ok(None)` when the
/// deadline passed first, an error when the connection was lost.
pub async fn next_until(
    rx: &mut mpsc::UnboundedReceiver<Received>,
    deadline: tokio::time::Instant,
) -> Result<Option<Received>, ClientError> {
    match tokio::time::timeout_at(deadline, rx.recv()).await {
        Ok(Some(received)) => Ok(Some(received)),
        Ok(None) => Err(connection_lost()),
        Err(_) => Ok(None),
    }
}

/// The error for a consumer that ended.
pub fn connection_lost() -> ClientError {
    ClientError::Broker("the connection to the broker was lost".into())
}
