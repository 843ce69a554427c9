//! The protocol on the wire, below any session: the exchange, private
//! queues and their bindings, the addressing headers as AMQP tables, the
//! properties of actions and statuses, and closing a link cleanly. The
//! daemon's transport and every client use these same pieces, so what they
//! put on the wire cannot drift apart.

use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, Consumer, ExchangeKind, PublisherConfirm};
use villas_sdk::Headers;

/// The AMQP `type` property of the daemon's status messages, so that its
/// own consumer (and a client that wants only statuses) can drop other
/// traffic without parsing it. The reference's statuses do not carry it.
pub const STATUS_MESSAGE_TYPE: &str = "villas.status";

/// The `app_id` property of the daemon's status messages.
pub const STATUS_APP_ID: &str = "villas-controller";

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

/// Which messages of the headers exchange a queue receives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Binding {
    /// Every message, as VILLASweb and the reference's monitor without a
    /// filter watch the exchange.
    #[default]
    Everything,
    /// Messages carrying every one of these headers with these values
    /// (`x-match: all`, the reference monitor's filter). No header at all
    /// is [`Binding::Everything`].
    All(Headers),
    /// Messages carrying any one of these headers with its value
    /// (`x-match: any`): how a component of the reference binds its queue.
    Any(Headers),
}

impl Binding {
    /// The binding's arguments.
    pub fn arguments(&self) -> FieldTable {
        let (headers, mode) = match self {
            Binding::Everything => return FieldTable::default(),
            Binding::All(headers) => (headers, "all"),
            Binding::Any(headers) => (headers, "any"),
        };
        let mut arguments = field_table(headers);
        if !headers.is_empty() {
            arguments.insert("x-match".into(), AMQPValue::LongString(mode.into()));
        }
        arguments
    }
}

/// Declares a private queue (server-named, exclusive, auto-delete: it goes
/// with the connection) bound to `exchange` by `binding`. Returns the
/// queue's name.
pub async fn bind_private_queue(
    channel: &Channel,
    exchange: &str,
    binding: &Binding,
) -> lapin::Result<ShortString> {
    let options = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..Default::default()
    };
    let queue = channel
        .queue_declare("".into(), options, FieldTable::default())
        .await?;
    let name = queue.name().clone();
    bind_queue(channel, &name, exchange, binding).await?;
    Ok(name)
}

/// Binds `queue` to one more exchange.
pub async fn bind_queue(
    channel: &Channel,
    queue: &ShortString,
    exchange: &str,
    binding: &Binding,
) -> lapin::Result<()> {
    channel
        .queue_bind(
            queue.clone(),
            exchange.into(),
            "".into(),
            QueueBindOptions::default(),
            binding.arguments(),
        )
        .await
}

/// Consumes `queue` without acknowledgements (a private queue's messages
/// are not worth redelivering), under a server-generated consumer tag.
pub async fn consume(channel: &Channel, queue: ShortString) -> lapin::Result<Consumer> {
    channel
        .basic_consume(
            queue,
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
}

/// Publishes `body` on `exchange` (empty routing key: the headers
/// address). Resolves once lapin has handed the message over; the returned
/// confirmation resolves when the broker confirmed it on a channel in
/// confirm mode (at once otherwise).
pub async fn publish(
    channel: &Channel,
    exchange: &str,
    properties: BasicProperties,
    body: &[u8],
) -> lapin::Result<PublisherConfirm> {
    channel
        .basic_publish(
            exchange.into(),
            "".into(),
            BasicPublishOptions::default(),
            body,
            properties,
        )
        .await
}

/// The four addressing headers of a message; non-string values are ignored
/// (they address nobody).
pub fn headers_of(table: Option<&FieldTable>) -> Headers {
    let mut headers = Headers::default();
    let Some(table) = table else {
        return headers;
    };
    for (name, value) in table {
        if let Some(text) = text_of(value) {
            headers.set(name.as_str(), text);
        }
    }
    headers
}

/// A string header's value (long or short string); `None` for any other
/// type.
pub fn text_of(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// Addressing headers as an AMQP table of strings.
pub fn field_table(headers: &Headers) -> FieldTable {
    string_table(headers.iter())
}

/// Any string headers as an AMQP table (long strings, as VILLASweb and
/// kombu send them).
pub fn string_table<N, V>(pairs: impl IntoIterator<Item = (N, V)>) -> FieldTable
where
    N: AsRef<str>,
    V: AsRef<str>,
{
    let mut table = FieldTable::default();
    for (name, value) in pairs {
        table.insert(
            name.as_ref().into(),
            AMQPValue::LongString(LongString::from(value.as_ref())),
        );
    }
    table
}

/// The properties of an action as the reference's CLI and VILLASweb send
/// it: JSON, persistent, with `headers`.
pub fn action_properties(headers: FieldTable) -> BasicProperties {
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_content_encoding("utf-8".into())
        .with_delivery_mode(2)
        .with_headers(headers)
}

/// The properties of a status message as the daemon publishes it: JSON,
/// tagged with [`STATUS_MESSAGE_TYPE`] (so its own consumer drops it
/// unparsed) and [`STATUS_APP_ID`], and the component's four headers.
pub fn status_properties(headers: &Headers) -> BasicProperties {
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_content_encoding("utf-8".into())
        .with_type(STATUS_MESSAGE_TYPE.into())
        .with_app_id(STATUS_APP_ID.into())
        .with_headers(field_table(headers))
}

/// Whether a message is one of the daemon's statuses, by its `type`
/// property alone (no parsing).
pub fn is_status_message(properties: &BasicProperties) -> bool {
    properties
        .kind()
        .as_ref()
        .is_some_and(|kind| kind.as_str() == STATUS_MESSAGE_TYPE)
}

/// Closes `channel`, then `connection`, each with reply code 200.
///
/// The order matters: lapin closes a channel by itself when the last
/// handle on it is dropped, from a task of its own. Should that task run
/// after `connection.close` has begun, the channel is already `Closing`,
/// its `channel.close` fails, and lapin reports the failure as
/// `ERROR lapin::channels: Connection error ... Closing` on every clean
/// stop. Closing the channel first (its state leaves `Connected` at once)
/// leaves nothing for a dropped handle to do.
pub async fn close_link(channel: Option<Channel>, connection: Option<Connection>, reason: &str) {
    if let Some(channel) = channel.filter(|c| c.status().connected()) {
        if let Err(error) = channel.close(200, reason.into()).await {
            tracing::debug!(%error, "channel already closed");
        }
    }
    if let Some(connection) = connection.filter(|c| c.status().connected()) {
        if let Err(error) = connection.close(200, reason.into()).await {
            tracing::debug!(%error, "connection already closed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_through_a_table() {
        let headers = Headers {
            realm: Some("lab".into()),
            uuid: Some(String::new()),
            ..Headers::default()
        };
        assert_eq!(headers_of(Some(&field_table(&headers))), headers);
        assert_eq!(headers_of(None), Headers::default());
    }

    #[test]
    fn non_string_headers_address_nobody() {
        let mut table = string_table([("category", "simulator")]);
        table.insert("uuid".into(), AMQPValue::LongInt(7));
        table.insert("realm".into(), AMQPValue::ShortString("lab".into()));
        let headers = headers_of(Some(&table));
        assert_eq!(headers.uuid, None);
        assert_eq!(headers.category.as_deref(), Some("simulator"));
        assert_eq!(headers.realm.as_deref(), Some("lab"));
    }

    #[test]
    fn bindings_match_all_or_any() {
        assert_eq!(Binding::Everything.arguments(), FieldTable::default());
        assert_eq!(
            Binding::All(Headers::default()).arguments(),
            FieldTable::default()
        );
        let any = Binding::Any(Headers::uuid("u")).arguments();
        assert_eq!(
            any.inner().get("x-match"),
            Some(&AMQPValue::LongString("any".into()))
        );
        let all = Binding::All(Headers::uuid("u")).arguments();
        assert_eq!(
            all.inner().get("x-match"),
            Some(&AMQPValue::LongString("all".into()))
        );
        assert_eq!(headers_of(Some(&all)), Headers::uuid("u"));
    }

    #[test]
    fn statuses_are_recognised_by_their_type() {
        assert!(is_status_message(&status_properties(&Headers::uuid("u"))));
        assert!(!is_status_message(
            &action_properties(FieldTable::default())
        ));
    }
}
