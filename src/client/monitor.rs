//! `villas-controller monitor [-r] [-c] [-t] [-u] [--table]`: watches the
//! exchange through a private queue bound with the filter's headers (all
//! must match, as the reference's binding). Each message is printed as the
//! reference prints it: one JSON object per line with `time`, `payload` and
//! the AMQP properties under their kombu names (`application_headers`,
//! `content_type`, ...). `--table` instead keeps a live table of the ICs,
//! redrawn when one appears or changes state; it pings the ICs the filter
//! addresses once at start (every IC, reference daemons' included, without
//! a filter: `villas_client::Filter::pings`) so the table fills at once.
//! Runs until SIGINT or SIGTERM.

use super::table::IcTable;
use super::{print_line, ClientError, FilterArgs};
use lapin::types::{AMQPValue, FieldTable};
use serde_json::{json, Map, Value};
use std::io::IsTerminal;
use villas_client::{Binding, Message, Session, Target};
use villas_sdk::protocol::unix_now;
use villas_sdk::{Action, ActionKind};

/// `monitor` arguments.
#[derive(Debug, clap::Args)]
pub struct MonitorArgs {
    /// Which messages to show (every given header must match).
    #[command(flatten)]
    pub filter: FilterArgs,
    /// A live table of the ICs and their states instead of JSON lines.
    #[arg(long)]
    pub table: bool,
}

/// Runs `monitor` until interrupted.
pub async fn run(args: MonitorArgs, target: &Target) -> Result<(), ClientError> {
    let session = Session::open(target).await?;
    let result = tokio::select! {
        result = watch(&session, &args) => result,
        _ = crate::signals::stopped() => Ok(()),
    };
    session.close().await;
    result
}

async fn watch(session: &Session, args: &MonitorArgs) -> Result<(), ClientError> {
    let filter = args.filter.filter();
    let mut subscription = session
        .subscribe(&Binding::All(filter.headers().clone()))
        .await?;
    tracing::info!(filter = ?filter.headers(), "monitoring");
    if !args.table {
        loop {
            let message = subscription.next().await?;
            print_line(&entry(&message).to_string())?;
        }
    }
    // Fill the table at once: ping what the filter addresses, reference
    // daemons included (see `Filter::pings`).
    let ping = Action::new(ActionKind::Ping);
    for headers in filter.pings() {
        session.send(&headers, &ping).await?;
    }
    let terminal = std::io::stdout().is_terminal();
    let mut table = IcTable::default();
    loop {
        let message = subscription.next().await?;
        let Some(status) = message.status() else {
            continue;
        };
        if table.update(&status) {
            let text = table.render();
            if terminal {
                // Home and clear, then the table: a live view.
                print_line(&format!("\x1b[H\x1b[2J{}", text.trim_end()))?;
            } else {
                print_line(&text)?;
            }
        }
    }
}

/// The reference's line: `{"time", "payload", ...properties}`.
pub fn entry(message: &Message) -> Value {
    let mut line = Map::new();
    line.insert("time".into(), json!(unix_now()));
    line.insert("payload".into(), message.payload());
    let p = &message.properties;
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            line.insert(key.into(), value);
        }
    };
    let text = |s: &Option<lapin::types::ShortString>| s.as_ref().map(|s| json!(s.as_str()));
    put("content_type", text(p.content_type()));
    put("content_encoding", text(p.content_encoding()));
    put("application_headers", p.headers().as_ref().map(table_json));
    put("delivery_mode", p.delivery_mode().map(|m| json!(m)));
    put("priority", p.priority().map(|m| json!(m)));
    put("correlation_id", text(p.correlation_id()));
    put("reply_to", text(p.reply_to()));
    put("expiration", text(p.expiration()));
    put("message_id", text(p.message_id()));
    put("timestamp", p.timestamp().map(|t| json!(t)));
    put("type", text(p.kind()));
    put("user_id", text(p.user_id()));
    put("app_id", text(p.app_id()));
    put("cluster_id", text(p.cluster_id()));
    Value::Object(line)
}

/// An AMQP field table as JSON.
fn table_json(table: &FieldTable) -> Value {
    Value::Object(
        table
            .into_iter()
            .map(|(key, value)| (key.to_string(), value_json(value)))
            .collect(),
    )
}

fn value_json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::LongString(s) => json!(String::from_utf8_lossy(s.as_bytes())),
        AMQPValue::ShortString(s) => json!(s.as_str()),
        AMQPValue::Boolean(b) => json!(b),
        AMQPValue::ShortShortInt(i) => json!(i),
        AMQPValue::ShortShortUInt(i) => json!(i),
        AMQPValue::ShortInt(i) => json!(i),
        AMQPValue::ShortUInt(i) => json!(i),
        AMQPValue::LongInt(i) => json!(i),
        AMQPValue::LongUInt(i) => json!(i),
        AMQPValue::LongLongInt(i) => json!(i),
        AMQPValue::Float(f) => json!(f),
        AMQPValue::Double(f) => json!(f),
        AMQPValue::Timestamp(t) => json!(t),
        AMQPValue::FieldTable(t) => table_json(t),
        AMQPValue::FieldArray(items) => {
            Value::Array(items.as_slice().iter().map(value_json).collect())
        }
        AMQPValue::Void => Value::Null,
        other => json!(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::LongString;
    use lapin::BasicProperties;
    use villas_sdk::Headers;

    #[test]
    fn entry_has_the_reference_keys() {
        let mut headers = FieldTable::default();
        headers.insert(
            "uuid".into(),
            AMQPValue::LongString(LongString::from("u-1")),
        );
        let message = Message {
            headers: Headers::uuid("u-1"),
            properties: BasicProperties::default()
                .with_content_type("application/json".into())
                .with_delivery_mode(2)
                .with_headers(headers),
            body: br#"{"action":"ping"}"#.to_vec(),
        };
        let line = entry(&message);
        assert_eq!(line["payload"], json!({"action": "ping"}));
        assert_eq!(line["application_headers"], json!({"uuid": "u-1"}));
        assert_eq!(line["content_type"], "application/json");
        assert_eq!(line["delivery_mode"], 2);
        assert!(line["time"].as_f64().unwrap() > 1.0e9);
        assert!(line.get("priority").is_none());
    }

    #[test]
    fn a_body_that_is_not_json_is_a_string() {
        let message = Message {
            headers: Headers::default(),
            properties: BasicProperties::default(),
            body: b"hello".to_vec(),
        };
        assert_eq!(entry(&message)["payload"], "hello");
    }
}
