//! Test harness: runs the real daemon binary against the local RabbitMQ
//! (or on its in-process bus) and watches the exchange like VILLASweb does,
//! with a private queue bound without arguments. Waits are on events with
//! a deadline, never on sleeps.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use futures_util::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use villas_controller::bus::amqp::{bind_private_queue, declare_exchange, headers_of};
use villas_sdk::protocol::StatusView;

pub const DEADLINE: Duration = Duration::from_secs(15);

pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2F".into())
}

pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_villas-controller"))
}

/// A running daemon process; killed when dropped.
pub struct Daemon {
    pub child: Child,
    pub dir: tempfile::TempDir,
    lines: std_mpsc::Receiver<String>,
    pub log: Vec<String>,
}

impl Daemon {
    /// Starts `villas-controller -c <config> daemon` with a config file
    /// written from `config` (YAML).
    pub fn start(config: &str) -> Daemon {
        Self::start_with(config, &[])
    }

    pub fn start_with(config: &str, env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, config).unwrap();
        let mut command = Command::new(binary());
        command
            .arg("-c")
            .arg(&path)
            .arg("-d")
            .arg("info,villas_controller=debug")
            .arg("daemon")
            .env_remove("RUST_LOG")
            // A state directory of its own unless the config names one.
            .env("XDG_DATA_HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("daemon binary starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std_mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("daemon| {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Daemon {
            child,
            dir,
            lines,
            log: Vec::new(),
        }
    }

    /// Waits for a log line containing `needle`; returns it.
    pub fn wait_log(&mut self, needle: &str) -> String {
        if let Some(line) = self.log.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no log line containing {needle:?} within {DEADLINE:?}; log so far:\n{}",
                    self.log.join("\n")
                ),
            }
        }
    }

    /// Every log line, once the process has exited and closed its stderr
    /// (bounded).
    pub fn whole_log(&mut self) -> Vec<String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.log.push(line),
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return self.log.clone(),
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    panic!("the daemon's stderr is still open after {DEADLINE:?}")
                }
            }
        }
    }

    /// The HTTP API's base URL, from the start-up log line.
    pub fn api_base(&mut self) -> String {
        let line = self.wait_log("api_addr=");
        let addr = line
            .split("api_addr=")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        format!("http://{addr}/api/v1")
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (bounded); returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not exit within {DEADLINE:?}"
            );
            // Polling a child process for exit: there is no event to await
            // from std; poll at a short interval with a deadline.
            std::thread::park_timeout(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A message seen on the exchange.
#[derive(Debug, Clone)]
pub struct Seen {
    pub headers: villas_sdk::Headers,
    pub body: Value,
}

impl Seen {
    pub fn status(&self) -> Option<StatusView> {
        serde_json::from_value(self.body.clone()).ok()
    }
    pub fn uuid(&self) -> Option<String> {
        self.body["properties"]["uuid"].as_str().map(str::to_owned)
    }
    pub fn state(&self) -> Option<String> {
        self.body["status"]["state"].as_str().map(str::to_owned)
    }
    pub fn error_kind(&self) -> Option<String> {
        self.body["status"]["error"]["kind"]
            .as_str()
            .map(str::to_owned)
    }
    pub fn is_status(&self) -> bool {
        self.body.get("status").is_some()
    }
}

/// A client on the exchange, like VILLASweb: sees every message.
pub struct Client {
    pub exchange: String,
    connection: Connection,
    channel: Channel,
    rx: mpsc::UnboundedReceiver<Seen>,
    /// Messages received but not yet consumed by a wait.
    pub backlog: Vec<Seen>,
}

impl Client {
    pub async fn connect(exchange: &str) -> Client {
        let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
            .await
            .expect("broker reachable");
        let channel = connection.create_channel().await.unwrap();
        declare_exchange(&channel, exchange).await.unwrap();
        let queue = bind_private_queue(&channel, exchange).await.unwrap();
        let mut consumer = channel
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
            .unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let headers = headers_of(delivery.properties.headers().as_ref());
                let body = serde_json::from_slice(&delivery.data).unwrap_or(Value::Null);
                if tx.send(Seen { headers, body }).is_err() {
                    break;
                }
            }
        });
        Client {
            exchange: exchange.to_owned(),
            connection,
            channel,
            rx,
            backlog: Vec::new(),
        }
    }

    /// Publishes raw bytes with string headers, as VILLASweb does.
    pub async fn publish_raw(&self, headers: &[(&str, &str)], body: &[u8]) {
        let mut table = FieldTable::default();
        for (k, v) in headers {
            table.insert((*k).into(), AMQPValue::LongString(LongString::from(*v)));
        }
        self.publish_table(table, body).await;
    }

    pub async fn publish_table(&self, table: FieldTable, body: &[u8]) {
        self.channel
            .basic_publish(
                self.exchange.as_str().into(),
                "".into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default()
                    .with_content_type("application/json".into())
                    .with_delivery_mode(2)
                    .with_headers(table),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    pub async fn send(&self, headers: &[(&str, &str)], body: Value) {
        self.publish_raw(headers, body.to_string().as_bytes()).await;
    }

    /// Sends an action to one component by uuid.
    pub async fn act(&self, uuid: &str, body: Value) {
        self.send(&[("uuid", uuid)], body).await;
    }

    /// Next status message (not action echoes) matching `pred`, consuming
    /// everything before it. Panics after the deadline.
    pub async fn wait_for(&mut self, what: &str, mut pred: impl FnMut(&Seen) -> bool) -> Seen {
        if let Some(index) = self.backlog.iter().position(|s| s.is_status() && pred(s)) {
            return self.backlog.remove(index);
        }
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(seen)) => {
                    if seen.is_status() && pred(&seen) {
                        return seen;
                    }
                    self.backlog.push(seen);
                }
                Ok(None) => panic!("consumer ended while waiting for {what}"),
                Err(_) => panic!(
                    "timed out waiting for {what}; seen: {:#?}",
                    self.backlog
                        .iter()
                        .map(|s| (s.uuid(), s.state(), s.error_kind()))
                        .collect::<Vec<_>>()
                ),
            }
        }
    }

    /// Waits for a status of `uuid` in `state`.
    pub async fn wait_state(&mut self, uuid: &str, state: &str) -> Seen {
        let (u, s) = (uuid.to_owned(), state.to_owned());
        self.wait_for(&format!("{uuid} in {state}"), move |m| {
            m.uuid().as_deref() == Some(&u) && m.state().as_deref() == Some(&s)
        })
        .await
    }

    /// Waits for a status of `uuid` carrying an error of `kind`.
    pub async fn wait_error(&mut self, uuid: &str, kind: &str) -> Seen {
        let (u, k) = (uuid.to_owned(), kind.to_owned());
        self.wait_for(&format!("{uuid} error {kind}"), move |m| {
            m.uuid().as_deref() == Some(&u) && m.error_kind().as_deref() == Some(&k)
        })
        .await
    }

    /// The states `uuid` publishes, in order, until it publishes `last`.
    pub async fn states_until(&mut self, uuid: &str, last: &str) -> Vec<String> {
        let mut states = Vec::new();
        loop {
            let u = uuid.to_owned();
            let seen = self
                .wait_for(
                    &format!("{uuid} states until {last} (got {states:?})"),
                    move |m| m.uuid().as_deref() == Some(&u),
                )
                .await;
            let state = seen.state().unwrap();
            states.push(state.clone());
            if state == last {
                return states;
            }
        }
    }

    /// Barrier: asks every component to `resume` (refused everywhere that
    /// is idle or a manager) and waits until each of `uuids` refused it.
    /// Each component answers in order, so every status it published for
    /// earlier messages has been received by then. Returns the statuses
    /// received before each refusal, per uuid (refusals excluded).
    pub async fn barrier(&mut self, uuids: &[String]) -> HashMap<String, Vec<Seen>> {
        self.send(&[("uuid", "")], serde_json::json!({"action": "resume"}))
            .await;
        let mut before: HashMap<String, Vec<Seen>> = HashMap::new();
        let mut pending: Vec<String> = uuids.to_vec();
        let mut pending_msgs = std::mem::take(&mut self.backlog);
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while !pending.is_empty() {
            let seen = if !pending_msgs.is_empty() {
                pending_msgs.remove(0)
            } else {
                match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                    Ok(Some(seen)) => seen,
                    _ => panic!("barrier: no refusal from {pending:?}"),
                }
            };
            if !seen.is_status() {
                continue;
            }
            let Some(uuid) = seen.uuid() else { continue };
            let refused = matches!(
                seen.error_kind().as_deref(),
                Some("invalid-transition" | "unsupported-action")
            ) && seen.body["status"]["error"]["action"] == "resume";
            if refused && pending.contains(&uuid) {
                pending.retain(|u| u != &uuid);
            } else if !refused {
                before.entry(uuid).or_default().push(seen);
            }
        }
        self.backlog = pending_msgs;
        before
    }

    pub async fn close(self) {
        let _ = self
            .channel
            .exchange_delete(
                self.exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await;
        let _ = self.connection.close(200, "bye".into()).await;
    }
}

/// A YAML config for a daemon on the test broker with a unique exchange.
pub fn config(exchange: &str, uuid: &str, components: &str) -> String {
    format!(
        "uuid: {uuid}\nbroker:\n  url: {url}\n  exchange: {exchange}\napi:\n  enabled: false\nstatus:\n  heartbeat_interval: 3600\ncomponents:\n{components}",
        url = amqp_url()
    )
}

/// One dummy simulator entry for [`config`].
pub fn dummy(uuid: &str, realm: Option<&str>, name: &str) -> String {
    let realm = realm.map(|r| format!("  realm: {r}\n")).unwrap_or_default();
    format!("- category: simulator\n  type: dummy\n  name: {name}\n  uuid: {uuid}\n  transition_delay: 0.05\n{realm}")
}

pub fn test_exchange() -> String {
    format!("test-{}", new_uuid())
}
