//! Test harness: runs the real daemon binary against the local RabbitMQ
//! (or on its in-process bus) and watches the exchange like VILLASweb does
//! through the project's own protocol client ([`villas_client::Client`]:
//! a private queue bound without arguments, waits on statuses with a
//! deadline, never on sleeps).

#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
pub use villas_client::wire::string_table;
pub use villas_client::{Client, Received, Target};
pub use villas_sdk::Headers;

pub mod http_server;
pub mod reference_cli;

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

    /// Waits until `n` log lines contain `needle`; returns the last one.
    pub fn wait_log_nth(&mut self, needle: &str, n: usize) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let found: Vec<&String> = self.log.iter().filter(|l| l.contains(needle)).collect();
            if found.len() >= n {
                return found[n - 1].clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.log.push(line),
                Err(_) => panic!(
                    "fewer than {n} log lines containing {needle:?} within {DEADLINE:?}; log so far:\n{}",
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

/// A client on the test broker, watching `exchange` like VILLASweb (it
/// sees every message); its waits give up after [`DEADLINE`].
pub async fn connect(exchange: &str) -> Client {
    Client::connect(&Target::new(amqp_url(), exchange))
        .await
        .expect("broker reachable")
        .with_timeout(DEADLINE)
}

/// The tests' barrier on a [`Client`].
#[allow(async_fn_in_trait)]
pub trait Barrier {
    /// Asks every component to `resume` (refused everywhere that is idle
    /// or a manager) and waits until each of `uuids` refused it. Each
    /// component answers in order, so every status it published for
    /// earlier messages has been received by then. Returns the statuses
    /// received before each refusal, per uuid (refusals excluded).
    async fn barrier(&mut self, uuids: &[String]) -> HashMap<String, Vec<Received>>;
}

impl Barrier for Client {
    async fn barrier(&mut self, uuids: &[String]) -> HashMap<String, Vec<Received>> {
        self.publish(&Headers::uuid(""), &serde_json::json!({"action": "resume"}))
            .await
            .unwrap();
        let mut before: HashMap<String, Vec<Received>> = HashMap::new();
        let mut pending: Vec<String> = uuids.to_vec();
        let mut pending_msgs = std::mem::take(&mut self.backlog);
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while !pending.is_empty() {
            let seen = if !pending_msgs.is_empty() {
                pending_msgs.remove(0)
            } else {
                match self.next_until(deadline).await {
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
