//! The `broker` section of the settings, owned and validated here: the
//! raw section as the configuration file spells it ([`RawBroker`]), where
//! the broker is ([`BrokerEndpoint`], all a client command needs) and what
//! the daemon's AMQP transport needs besides ([`AmqpSettings`]).

use serde::Deserialize;
use std::time::Duration;
use villas_actors::invalid::{positive_seconds, InvalidSetting};
pub use villas_client::redact_url;
use villas_client::TlsFiles;

/// `[broker]` as written in the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBroker {
    /// AMQP URI; absent: the in-process bus.
    url: Option<String>,
    /// Exchange name.
    exchange: Option<String>,
    /// AMQP heartbeat in seconds (added to the URI unless it has one).
    heartbeat: Option<u16>,
    /// Seconds the broker keeps our queue after we vanish.
    queue_expires: Option<f64>,
    /// Longest reconnect delay, seconds.
    reconnect_max: Option<f64>,
    /// Largest message body accepted, bytes.
    max_body_bytes: Option<usize>,
    /// `[broker.tls]`: CA file, client certificate and key (amqps:// only).
    #[serde(default)]
    tls: Option<TlsFiles>,
}

/// Where the broker is: what a client command needs of the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerEndpoint {
    /// Broker URI, heartbeat included (password included: never print it
    /// unredacted).
    pub url: String,
    /// The headers exchange.
    pub exchange: String,
    /// TLS files for an `amqps://` URL (`broker.tls`).
    pub tls: Option<TlsFiles>,
}

/// What the AMQP transport needs to know.
#[derive(Debug, Clone)]
pub(crate) struct AmqpSettings {
    /// Broker URI, heartbeat included.
    pub(crate) url: String,
    /// Exchange name (`villas`).
    pub(crate) exchange: String,
    /// The daemon's queue name.
    pub(crate) queue: String,
    /// How long the broker keeps the queue after we disconnect.
    pub(crate) queue_expires: Duration,
    /// First retry delay after a failed connection.
    pub(crate) reconnect_min: Duration,
    /// Longest retry delay.
    pub(crate) reconnect_max: Duration,
    /// Bodies larger than this are refused unparsed.
    pub(crate) max_body_bytes: usize,
    /// TLS files for an `amqps://` URL (`broker.tls`).
    pub(crate) tls: Option<TlsFiles>,
}

/// The broker section, validated: the endpoint and the daemon's settings
/// that do not depend on its uuid.
#[derive(Debug)]
pub(crate) struct BrokerSection {
    /// Where the broker is.
    pub(crate) endpoint: BrokerEndpoint,
    /// `broker.queue_expires`.
    queue_expires: Duration,
    /// `broker.reconnect_max`.
    reconnect_max: Duration,
    /// `broker.max_body_bytes`.
    max_body_bytes: usize,
}

impl BrokerSection {
    /// Validates the broker section; `broker_url` (the `-b` flag)
    /// overrides `broker.url`. `None`: no broker URL (the daemon's
    /// in-process bus; a client's default broker).
    pub(crate) fn from_raw(
        raw: RawBroker,
        broker_url: Option<&str>,
    ) -> Result<Option<BrokerSection>, InvalidSetting> {
        let url = broker_url
            .map(str::to_owned)
            .or(raw.url)
            .filter(|u| !u.is_empty());
        let Some(url) = url else {
            return Ok(None);
        };
        if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
            return Err(InvalidSetting::new(
                "broker.url",
                "must be an amqp:// or amqps:// URI",
            ));
        }
        let exchange = raw.exchange.unwrap_or_else(|| "villas".into());
        if exchange.is_empty() || exchange.len() > 255 {
            return Err(InvalidSetting::new(
                "broker.exchange",
                "must be 1 to 255 characters",
            ));
        }
        let queue_expires = positive_seconds("broker.queue_expires", raw.queue_expires, 60.0)?;
        let reconnect_max = positive_seconds("broker.reconnect_max", raw.reconnect_max, 5.0)?;
        let tls = villas_client::connect::checked(raw.tls, &url)
            .map_err(|(key, message)| InvalidSetting::new(key, message))?;
        Ok(Some(BrokerSection {
            endpoint: BrokerEndpoint {
                url: with_heartbeat(&url, raw.heartbeat.unwrap_or(10)),
                exchange,
                tls,
            },
            queue_expires,
            reconnect_max,
            max_body_bytes: raw.max_body_bytes.unwrap_or(1 << 20),
        }))
    }

    /// The daemon's AMQP settings: its queue is named after its uuid.
    pub(crate) fn for_daemon(self, uuid: &str) -> AmqpSettings {
        AmqpSettings {
            url: self.endpoint.url,
            queue: format!("villas-controller.{uuid}"),
            exchange: self.endpoint.exchange,
            queue_expires: self.queue_expires,
            reconnect_min: Duration::from_millis(200),
            reconnect_max: self.reconnect_max,
            max_body_bytes: self.max_body_bytes,
            tls: self.endpoint.tls,
        }
    }
}

/// Adds `heartbeat=N` to an AMQP URI's query unless it sets one.
fn with_heartbeat(url: &str, heartbeat: u16) -> String {
    if url.contains("heartbeat=") {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}heartbeat={heartbeat}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_is_added_once() {
        assert_eq!(
            with_heartbeat("amqp://h/%2F", 10),
            "amqp://h/%2F?heartbeat=10"
        );
        assert_eq!(
            with_heartbeat("amqp://h/?x=1", 5),
            "amqp://h/?x=1&heartbeat=5"
        );
        assert_eq!(
            with_heartbeat("amqp://h/?heartbeat=3", 5),
            "amqp://h/?heartbeat=3"
        );
    }
}
