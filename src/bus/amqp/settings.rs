//! The `broker` section of the settings, owned and validated here: the
//! raw section as the configuration file spells it ([`RawBroker`]), where
//! the broker is ([`BrokerEndpoint`], all a client command needs) and what
//! the daemon's AMQP transport needs besides ([`AmqpSettings`]).

use serde::Deserialize;
use std::time::Duration;
use villas_actors::invalid::{positive_seconds, InvalidSetting};
use villas_client::nodes::{split_urls, spread};
pub use villas_client::redact_url;
use villas_client::TlsFiles;

/// `[broker]` as written in the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBroker {
    /// AMQP URI, or the URIs of several nodes (a cluster) as a list or a
    /// comma-separated string; absent: the in-process bus.
    url: Option<RawUrls>,
    /// Try the nodes in an order of the daemon's own (by its uuid) rather
    /// than as listed, to spread a lab's daemons over a cluster.
    shuffle: Option<bool>,
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

/// `broker.url`: one URI, or several nodes.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawUrls {
    /// One URI, or a comma-separated list of them.
    One(String),
    /// A list of URIs.
    Many(Vec<String>),
}

impl RawUrls {
    /// The URIs, in the order given.
    fn into_list(self) -> Vec<String> {
        match self {
            RawUrls::One(list) => split_urls(&list),
            RawUrls::Many(urls) => urls.iter().flat_map(|url| split_urls(url)).collect(),
        }
    }
}

/// Where the broker is: what a client command needs of the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerEndpoint {
    /// The broker's nodes (at least one), each URI with its heartbeat
    /// (passwords included: never print them unredacted), tried in this
    /// order.
    pub urls: Vec<String>,
    /// The headers exchange.
    pub exchange: String,
    /// TLS files for an `amqps://` URL (`broker.tls`).
    pub tls: Option<TlsFiles>,
}

/// What the AMQP transport needs to know.
#[derive(Debug, Clone)]
pub(crate) struct AmqpSettings {
    /// The broker's nodes, heartbeat included, in the order this daemon
    /// tries them (failing over to the next when one is lost).
    pub(crate) urls: Vec<String>,
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
    /// `broker.shuffle`.
    shuffle: bool,
}

impl BrokerSection {
    /// Validates the broker section; `broker_url` (the `-b` flag, one URI
    /// or a comma-separated list) overrides `broker.url`. `None`: no
    /// broker URL (the daemon's in-process bus; a client's default broker).
    pub(crate) fn from_raw(
        raw: RawBroker,
        broker_url: Option<&str>,
    ) -> Result<Option<BrokerSection>, InvalidSetting> {
        let urls = match broker_url {
            Some(list) => split_urls(list),
            None => raw.url.map(RawUrls::into_list).unwrap_or_default(),
        };
        if urls.is_empty() {
            return Ok(None);
        }
        let secure = urls.iter().filter(|u| u.starts_with("amqps://")).count();
        if urls
            .iter()
            .any(|u| !(u.starts_with("amqp://") || u.starts_with("amqps://")))
        {
            return Err(InvalidSetting::new(
                "broker.url",
                "must be an amqp:// or amqps:// URI (or a list of them)",
            ));
        }
        if secure != 0 && secure != urls.len() {
            return Err(InvalidSetting::new(
                "broker.url",
                "the nodes must all be amqp:// or all amqps://",
            ));
        }
        let url = &urls[0];
        let exchange = raw.exchange.unwrap_or_else(|| "villas".into());
        if exchange.is_empty() || exchange.len() > 255 {
            return Err(InvalidSetting::new(
                "broker.exchange",
                "must be 1 to 255 characters",
            ));
        }
        let queue_expires = positive_seconds("broker.queue_expires", raw.queue_expires, 60.0)?;
        let reconnect_max = positive_seconds("broker.reconnect_max", raw.reconnect_max, 5.0)?;
        let tls = villas_client::connect::checked(raw.tls, url)
            .map_err(|(key, message)| InvalidSetting::new(key, message))?;
        let heartbeat = raw.heartbeat.unwrap_or(10);
        Ok(Some(BrokerSection {
            endpoint: BrokerEndpoint {
                urls: urls.iter().map(|u| with_heartbeat(u, heartbeat)).collect(),
                exchange,
                tls,
            },
            queue_expires,
            reconnect_max,
            max_body_bytes: raw.max_body_bytes.unwrap_or(1 << 20),
            shuffle: raw.shuffle.unwrap_or(false),
        }))
    }

    /// The daemon's AMQP settings: its queue is named after its uuid, and
    /// so is its order of the nodes with `broker.shuffle`.
    pub(crate) fn for_daemon(self, uuid: &str) -> AmqpSettings {
        let urls = if self.shuffle {
            spread(&self.endpoint.urls, uuid)
        } else {
            self.endpoint.urls
        };
        AmqpSettings {
            urls,
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

    fn section(json: &str, flag: Option<&str>) -> Result<Option<BrokerSection>, InvalidSetting> {
        BrokerSection::from_raw(serde_json::from_str(json).unwrap(), flag)
    }

    #[test]
    fn url_is_one_uri_or_a_list_of_nodes() {
        let one = section(r#"{"url": "amqp://a/%2F"}"#, None)
            .unwrap()
            .unwrap();
        assert_eq!(one.endpoint.urls, ["amqp://a/%2F?heartbeat=10"]);
        for json in [
            r#"{"url": ["amqp://a/%2F", "amqp://b/%2F"]}"#,
            r#"{"url": "amqp://a/%2F,amqp://b/%2F"}"#,
        ] {
            let many = section(json, None).unwrap().unwrap();
            assert_eq!(
                many.endpoint.urls,
                ["amqp://a/%2F?heartbeat=10", "amqp://b/%2F?heartbeat=10"],
                "{json}"
            );
        }
        let flag = section(r#"{"url": "amqp://a/%2F"}"#, Some("amqp://c/,amqp://d/"))
            .unwrap()
            .unwrap();
        assert_eq!(flag.endpoint.urls.len(), 2);
        assert!(section(r#"{"url": []}"#, None).unwrap().is_none());
        for bad in [
            r#"{"url": ["amqp://a/", "http://b/"]}"#,
            r#"{"url": ["amqp://a/", "amqps://b/"]}"#,
        ] {
            assert_eq!(section(bad, None).err().unwrap().key, "broker.url", "{bad}");
        }
    }

    #[test]
    fn shuffle_orders_the_nodes_per_daemon() {
        let nodes = r#""url": ["amqp://a/", "amqp://b/", "amqp://c/"]"#;
        let listed = section(&format!("{{{nodes}}}"), None)
            .unwrap()
            .unwrap()
            .for_daemon("d1");
        assert_eq!(listed.urls[0], "amqp://a/?heartbeat=10");
        let orders: std::collections::HashSet<Vec<String>> = (0..20)
            .map(|i| {
                section(&format!(r#"{{{nodes}, "shuffle": true}}"#), None)
                    .unwrap()
                    .unwrap()
                    .for_daemon(&format!("daemon-{i}"))
                    .urls
            })
            .collect();
        assert!(orders.len() > 1, "{orders:?}");
    }

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
