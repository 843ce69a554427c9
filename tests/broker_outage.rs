//! Broker loss and recovery, and the graceful stop, with the real daemon
//! binary and the real RabbitMQ: the daemon's own connection cut,
//! `rabbitmqctl close_all_connections` during a burst of actions, the
//! broker application stopped and started (`stop_app` / `start_app`,
//! always restored by a drop guard), the broker down at start-up, a
//! refused declare, the negotiated heartbeat, and SIGTERM.
//!
//! These tests disturb the broker for every client, so they live in their
//! own test binary and take a process-wide lock: one runs at a time.
//! The observer here reads a durable queue of its own (not an exclusive
//! one) so that it misses nothing across a cut or a broker restart.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::*;
use futures_util::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use villas_client::wire::{action_properties, declare_exchange, headers_of, string_table};

/// One test at a time in this binary (tokio's lock: held across awaits,
/// never poisoned by a failed test).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `rabbitmqctl` and returns its standard output; panics on failure.
fn rabbitmqctl(args: &[&str]) -> String {
    let output = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl runs");
    assert!(
        output.status.success(),
        "rabbitmqctl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Stops the broker application; starts it again when dropped, even if
/// the test fails.
struct BrokerStopped {
    started: bool,
}

impl BrokerStopped {
    fn now() -> BrokerStopped {
        rabbitmqctl(&["stop_app"]);
        BrokerStopped { started: false }
    }

    /// Starts the application again; returns when it accepts commands.
    fn start(&mut self) -> Instant {
        rabbitmqctl(&["start_app"]);
        self.started = true;
        rabbitmqctl(&["await_startup"]);
        Instant::now()
    }
}

impl Drop for BrokerStopped {
    fn drop(&mut self) {
        if !self.started {
            let _ = Command::new("rabbitmqctl").arg("start_app").status();
            let _ = Command::new("rabbitmqctl").arg("await_startup").status();
        }
    }
}

/// The daemon's connections, by the `connection_name` client property
/// (`villas-controller.<uuid>`): (pid, heartbeat timeout).
fn connections_named(name: &str) -> Vec<(String, u64)> {
    let out = rabbitmqctl(&[
        "list_connections",
        "pid",
        "client_properties",
        "timeout",
        "-q",
        "--no-table-headers",
    ]);
    out.lines()
        .filter(|line| line.contains(&format!("\"{name}\"")))
        .map(|line| {
            let columns: Vec<&str> = line.split('\t').collect();
            let timeout = columns.last().and_then(|t| t.trim().parse().ok());
            (columns[0].to_owned(), timeout.unwrap_or_default())
        })
        .collect()
}

/// Closes only the named connection (the other engineers' test runs are
/// left alone).
fn close_connection_named(name: &str) {
    let found = connections_named(name);
    assert_eq!(found.len(), 1, "one connection named {name}: {found:?}");
    rabbitmqctl(&["close_connection", &found[0].0, "test: connection cut"]);
}

/// Watches the exchange through a durable queue of its own (it survives a
/// connection cut and a broker restart) and publishes actions; reconnects
/// on demand.
struct Observer {
    exchange: String,
    queue: String,
    connection: Connection,
    channel: Channel,
    tx: mpsc::UnboundedSender<Received>,
    rx: mpsc::UnboundedReceiver<Received>,
    backlog: Vec<Received>,
    /// Every status received, in order.
    history: Vec<Received>,
}

impl Observer {
    async fn connect(exchange: &str) -> Observer {
        let (tx, rx) = mpsc::unbounded_channel();
        let queue = format!("observer.{}", new_uuid());
        let (connection, channel) = Self::open(exchange, &queue, &tx).await.unwrap();
        Observer {
            exchange: exchange.to_owned(),
            queue,
            connection,
            channel,
            tx,
            rx,
            backlog: Vec::new(),
            history: Vec::new(),
        }
    }

    async fn open(
        exchange: &str,
        queue: &str,
        tx: &mpsc::UnboundedSender<Received>,
    ) -> lapin::Result<(Connection, Channel)> {
        let connection = Connection::connect(&amqp_url(), ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        declare_exchange(&channel, exchange).await?;
        let mut arguments = FieldTable::default();
        arguments.insert("x-expires".into(), AMQPValue::LongUInt(120_000));
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .queue_declare(queue.into(), durable, arguments)
            .await?;
        channel
            .queue_bind(
                queue.into(),
                exchange.into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut consumer = channel
            .basic_consume(
                queue.into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let headers = headers_of(delivery.properties.headers().as_ref());
                let body = serde_json::from_slice(&delivery.data).unwrap_or(Value::Null);
                let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                if tx.send(Received { headers, body }).is_err() {
                    break;
                }
            }
        });
        Ok((connection, channel))
    }

    /// Connects again (the broker may still be starting); bounded.
    async fn reconnect(&mut self) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            match Self::open(&self.exchange, &self.queue, &self.tx).await {
                Ok((connection, channel)) => {
                    self.connection = connection;
                    self.channel = channel;
                    return;
                }
                Err(error) => {
                    assert!(
                        Instant::now() < deadline,
                        "observer cannot reconnect: {error}"
                    );
                    // No event tells when the broker accepts connections
                    // again: retry at a short interval, bounded.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Publishes an action as VILLASweb does; `Err` unless the broker
    /// confirmed it.
    async fn try_act(&self, uuid: &str, body: &Value) -> Result<(), String> {
        let confirmation = self
            .channel
            .basic_publish(
                self.exchange.as_str().into(),
                "".into(),
                BasicPublishOptions::default(),
                body.to_string().as_bytes(),
                action_properties(string_table([("uuid", uuid)])),
            )
            .await
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        if confirmation.is_ack() {
            Ok(())
        } else {
            Err(format!("not confirmed: {confirmation:?}"))
        }
    }

    /// Publishes all `bodies` to `uuid` back to back, then waits until the
    /// broker confirmed every one.
    async fn act_burst(&self, uuid: &str, bodies: &[Value]) {
        let mut confirms = Vec::new();
        for body in bodies {
            let confirm = self
                .channel
                .basic_publish(
                    self.exchange.as_str().into(),
                    "".into(),
                    BasicPublishOptions::default(),
                    body.to_string().as_bytes(),
                    BasicProperties::default()
                        .with_content_type("application/json".into())
                        .with_headers(string_table([("uuid", uuid)])),
                )
                .await
                .unwrap();
            confirms.push(confirm);
        }
        for confirm in confirms {
            assert!(confirm.await.unwrap().is_ack());
        }
    }

    async fn act(&self, uuid: &str, body: Value) {
        self.try_act(uuid, &body).await.unwrap();
    }

    /// Next status matching `pred`, keeping the others.
    async fn wait_for(&mut self, what: &str, mut pred: impl FnMut(&Received) -> bool) -> Received {
        if let Some(index) = self.backlog.iter().position(|s| s.is_status() && pred(s)) {
            return self.backlog.remove(index);
        }
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(seen)) if seen.is_status() && pred(&seen) => {
                    self.history.push(seen.clone());
                    return seen;
                }
                Ok(Some(seen)) => {
                    self.history.push(seen.clone());
                    self.backlog.push(seen);
                }
                _ => panic!(
                    "timed out waiting for {what}; seen: {:?}",
                    self.backlog
                        .iter()
                        .map(|s| (s.uuid(), s.state()))
                        .collect::<Vec<_>>()
                ),
            }
        }
    }

    async fn wait_state(&mut self, uuid: &str, state: &str) -> Received {
        let (u, s) = (uuid.to_owned(), state.to_owned());
        self.wait_for(&format!("{uuid} in {state}"), move |m| {
            m.uuid().as_deref() == Some(&u) && m.state().as_deref() == Some(&s)
        })
        .await
    }

    /// Any status of `uuid` (after whatever was consumed so far).
    async fn wait_any(&mut self, uuid: &str) -> Received {
        let u = uuid.to_owned();
        self.wait_for(&format!("a status of {uuid}"), move |m| {
            m.uuid().as_deref() == Some(&u)
        })
        .await
    }

    /// Pings `uuid` and waits for its answer; returns how long it took.
    async fn ping(&mut self, uuid: &str) -> Duration {
        let sent = Instant::now();
        self.forget();
        self.act(uuid, json!({"action": "ping"})).await;
        self.wait_any(uuid).await;
        sent.elapsed()
    }

    /// The `uuids` the manager does not list after they all should have
    /// been created (pings it until they are all there, bounded).
    async fn missing_components(&mut self, manager: &str, uuids: &[String]) -> Vec<String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            self.forget();
            self.act(manager, json!({"action": "ping"})).await;
            let status = self.wait_any(manager).await;
            let listed: HashSet<String> = status.body["status"]["components"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect();
            let missing: Vec<String> = uuids
                .iter()
                .filter(|u| !listed.contains(*u))
                .cloned()
                .collect();
            if missing.is_empty() || Instant::now() > deadline {
                return missing;
            }
        }
    }

    /// How many `create`s the manager refused as duplicates so far.
    fn duplicate_refusals(&mut self, manager: &str) -> usize {
        self.received();
        self.history
            .iter()
            .filter(|s| {
                s.uuid().as_deref() == Some(manager)
                    && s.error_kind().as_deref() == Some("duplicate-uuid")
            })
            .count()
    }

    /// Drops what was received so far.
    fn forget(&mut self) {
        self.received();
    }

    /// Every status received and not waited for, without waiting.
    fn received(&mut self) -> Vec<Received> {
        while let Ok(seen) = self.rx.try_recv() {
            self.history.push(seen.clone());
            self.backlog.push(seen);
        }
        std::mem::take(&mut self.backlog)
    }

    async fn close(self) {
        let _ = self
            .channel
            .queue_delete(self.queue.as_str().into(), QueueDeleteOptions::default())
            .await;
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

/// A daemon with a manager (its own uuid) and `sims` dummies, observed.
struct Lab {
    daemon: Daemon,
    observer: Observer,
    manager: String,
    sims: Vec<String>,
}

impl Lab {
    /// `edit` may change the YAML config.
    async fn start(sims: usize, edit: impl Fn(String) -> String) -> Lab {
        let exchange = test_exchange();
        let mut observer = Observer::connect(&exchange).await;
        let manager = new_uuid();
        let sims: Vec<String> = (0..sims).map(|_| new_uuid()).collect();
        let components: String = sims
            .iter()
            .enumerate()
            .map(|(i, uuid)| dummy(uuid, None, &format!("Sim {i}")))
            .collect();
        let mut yaml = config(&exchange, &manager, &components);
        if sims.is_empty() {
            yaml = yaml.replace("components:\n", "components: []\n");
        }
        let yaml = edit(yaml);
        let daemon = Daemon::start(&yaml);
        for uuid in sims.iter().chain([&manager]) {
            observer.wait_any(uuid).await;
        }
        Lab {
            daemon,
            observer,
            manager,
            sims,
        }
    }

    fn all(&self) -> Vec<String> {
        let mut all = self.sims.clone();
        all.push(self.manager.clone());
        all
    }

    /// The daemon's connection name (its queue's name).
    fn connection_name(&self) -> String {
        format!("villas-controller.{}", self.manager)
    }

    /// Starts a long run on `uuid` and waits until it runs.
    async fn run_long(&mut self, uuid: &str) {
        self.observer
            .act(
                uuid,
                json!({"action": "start", "parameters": {"runtime": 3600}}),
            )
            .await;
        self.observer.wait_state(uuid, "running").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_connection_cut_during_activity() {
    let _serial = SERIAL.lock().await;
    let mut lab = Lab::start(2, |yaml| yaml).await;
    let (a, b) = (lab.sims[0].clone(), lab.sims[1].clone());
    lab.run_long(&a).await;
    let heard = lab.all();
    lab.observer.forget();

    close_connection_named(&lab.connection_name());
    let cut = Instant::now();
    // Sent while the daemon reconnects: the queue keeps it.
    lab.observer
        .act(
            &b,
            json!({"action": "start", "parameters": {"runtime": 3600}}),
        )
        .await;
    lab.daemon.wait_log("to=down");
    lab.observer.wait_state(&b, "running").await;
    let resumed = cut.elapsed();
    lab.daemon.wait_log("bus up again");
    // Without any ping, every component published a fresh status after
    // the reconnect (the heartbeat is an hour): a still runs.
    let mut fresh: HashMap<String, String> = HashMap::new();
    for uuid in &heard {
        let seen = lab.observer.wait_any(uuid).await;
        fresh.insert(uuid.clone(), seen.state().unwrap_or_default());
    }
    assert_eq!(fresh[&a], "running", "{fresh:?}");
    // Still controllable, and every component answers a ping.
    for uuid in &heard {
        lab.observer.ping(uuid).await;
    }
    lab.observer.act(&a, json!({"action": "stop"})).await;
    lab.observer.wait_state(&a, "idle").await;
    eprintln!("MEASURED own connection cut -> action sent during the cut carried out: {resumed:?}");
    lab.observer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_all_connections_during_a_burst_of_creates_loses_none() {
    let _serial = SERIAL.lock().await;
    let mut lab = Lab::start(1, |yaml| yaml).await;
    let a = lab.sims[0].clone();
    lab.run_long(&a).await;
    let manager = lab.manager.clone();
    let created: Vec<String> = (0..60).map(|_| new_uuid()).collect();
    let mut resent = 0;
    let mut cut_at = None;
    for (i, uuid) in created.iter().enumerate() {
        if i == 20 {
            rabbitmqctl(&["close_all_connections", "test: connection cut"]);
            cut_at = Some(Instant::now());
        }
        let create = json!({"action": "create", "parameters": {
            "category": "simulator", "type": "dummy", "name": format!("C{i}"), "uuid": uuid}});
        // A create the broker did not confirm is sent again after the
        // observer reconnects (counted: it may be a duplicate).
        while lab.observer.try_act(&manager, &create).await.is_err() {
            resent += 1;
            lab.observer.reconnect().await;
        }
    }
    let cut_at = cut_at.unwrap();
    lab.daemon.wait_log("to=down");
    let elapsed_ping = {
        let started = Instant::now();
        lab.observer.ping(&manager).await;
        started.elapsed()
    };
    let resumed = cut_at.elapsed();
    // Every confirmed create was carried out: the manager lists them all.
    let missing = lab.observer.missing_components(&manager, &created).await;
    assert!(
        missing.is_empty(),
        "creates lost across the cut: {missing:?}"
    );
    // Duplicates: only those the test itself sent again.
    let duplicates = lab.observer.duplicate_refusals(&manager);
    assert!(
        duplicates <= resent,
        "{duplicates} duplicate creates, {resent} resent"
    );
    // The simulation started before the cut still runs and obeys.
    lab.observer.forget();
    lab.observer.act(&a, json!({"action": "ping"})).await;
    assert_eq!(
        lab.observer.wait_any(&a).await.state().as_deref(),
        Some("running")
    );
    lab.observer.act(&a, json!({"action": "pause"})).await;
    lab.observer.wait_state(&a, "paused").await;
    eprintln!("MEASURED close_all_connections -> manager answers ping: {resumed:?} (ping itself {elapsed_ping:?}); resent {resent}");
    lab.observer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_amid_a_burst_neither_loses_nor_repeats_actions() {
    let _serial = SERIAL.lock().await;
    let mut lab = Lab::start(0, |yaml| yaml).await;
    let manager = lab.manager.clone();
    let created: Vec<String> = (0..150).map(|_| new_uuid()).collect();
    let creates: Vec<Value> = created
        .iter()
        .enumerate()
        .map(|(i, uuid)| {
            json!({"action": "create", "parameters": {
                "category": "simulator", "type": "dummy", "name": format!("B{i}"), "uuid": uuid}})
        })
        .collect();
    // The whole burst is in the daemon's queue or mailboxes when its
    // connection is cut a third of the way through the creates: nothing
    // may be lost or run twice (whether a redelivery happens depends on
    // timing; the filter itself is unit-tested in `bus::amqp::redelivery`).
    lab.observer.act_burst(&manager, &creates).await;
    lab.observer
        .wait_for("the manager listing 50 components", |m| {
            m.body["status"]["components"]
                .as_array()
                .is_some_and(|c| c.len() >= 50)
        })
        .await;
    close_connection_named(&lab.connection_name());
    lab.daemon.wait_log("to=down");
    let missing = lab.observer.missing_components(&manager, &created).await;
    assert!(missing.is_empty(), "{} creates lost", missing.len());
    assert_eq!(
        lab.observer.duplicate_refusals(&manager),
        0,
        "a create ran twice"
    );
    let filtered = lab
        .daemon
        .log
        .iter()
        .filter(|l| l.contains("dispatched already"))
        .count();
    eprintln!("MEASURED burst cut: {filtered} redelivered duplicates filtered");
    lab.observer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_keeps_simulations_and_publishes_only_the_latest_status() {
    let _serial = SERIAL.lock().await;
    let mut lab = Lab::start(2, |yaml| {
        yaml.replace(
            "api:\n  enabled: false\n",
            "api:\n  enabled: true\n  port: 0\n",
        )
    })
    .await;
    let (a, b) = (lab.sims[0].clone(), lab.sims[1].clone());
    let base = lab.daemon.api_base();
    let http = reqwest::Client::new();
    lab.run_long(&a).await;

    let mut broker = BrokerStopped::now();
    lab.daemon.wait_log("to=down");
    // While the broker is down, b starts through the HTTP API:
    // idle -> starting -> running, both published into the outage.
    let answer: Value = http
        .post(format!("{base}/component/{b}"))
        .body(json!({"action": "start", "parameters": {"runtime": 3600}}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["status"]["state"], "starting", "{answer}");
    // The daemon logs every transition: await b's move to running there.
    lab.daemon
        .wait_log(&format!("uuid=\"{b}\" from=starting to=running"));
    let status: Value = http
        .get(format!("{base}/component/{b}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"]["state"], "running", "{status}");
    // The daemon keeps retrying, with a growing backoff.
    lab.daemon.wait_log("broker not reachable; retrying");

    let back = broker.start();
    lab.observer.reconnect().await;
    let ping_a = {
        lab.observer.forget();
        lab.observer.act(&a, json!({"action": "ping"})).await;
        let seen = lab.observer.wait_any(&a).await;
        assert_eq!(
            seen.state().as_deref(),
            Some("running"),
            "a was touched by the outage"
        );
        back.elapsed()
    };
    lab.daemon.wait_log("bus up again");
    // Only b's latest status went out: never the stale `starting`.
    let (mut b_states, deadline) = (Vec::new(), Instant::now() + DEADLINE);
    while !b_states.contains(&"running".to_owned()) {
        assert!(
            Instant::now() < deadline,
            "no running status of b: {b_states:?}"
        );
        let seen = lab.observer.wait_any(&b).await;
        b_states.push(seen.state().unwrap_or_default());
    }
    for uuid in lab.all() {
        lab.observer.ping(&uuid).await;
    }
    let all_received = lab.observer.received();
    b_states.extend(
        all_received
            .iter()
            .filter(|s| s.uuid().as_deref() == Some(&b))
            .filter_map(Received::state),
    );
    assert!(
        !b_states.contains(&"starting".to_owned()),
        "stale status published: {b_states:?}"
    );
    // Both runs are still controllable.
    lab.observer.act(&a, json!({"action": "stop"})).await;
    lab.observer.act(&b, json!({"action": "pause"})).await;
    lab.observer.wait_state(&a, "idle").await;
    lab.observer.wait_state(&b, "paused").await;
    eprintln!("MEASURED start_app -> running simulation answers ping: {ping_a:?}");
    lab.observer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_at_start_up() {
    let _serial = SERIAL.lock().await;
    let exchange = test_exchange();
    let manager = new_uuid();
    let sim = new_uuid();
    let mut broker = BrokerStopped::now();
    let mut daemon = Daemon::start(&config(&exchange, &manager, &dummy(&sim, None, "S")));
    daemon.wait_log("broker not reachable; retrying");
    daemon.wait_log("supervision tree started");
    let back = broker.start();
    let mut observer = Observer::connect(&exchange).await;
    daemon.wait_log("to=up");
    for uuid in [&sim, &manager] {
        observer.ping(uuid).await;
    }
    eprintln!(
        "MEASURED broker up after start-up -> ICs answer: {:?}",
        back.elapsed()
    );
    observer.act(&sim, json!({"action": "start"})).await;
    observer.wait_state(&sim, "running").await;
    observer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_declare_rebuilds_the_channel() {
    let _serial = SERIAL.lock().await;
    let exchange = test_exchange();
    // The exchange exists with another type: the daemon's declare is
    // refused (a channel-level error, the connection stays open).
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let manager = new_uuid();
    let mut daemon = Daemon::start(
        &config(&exchange, &manager, "").replace("components:\n", "components: []\n"),
    );
    daemon.wait_log("rebuilding the channel on the open connection");
    daemon.wait_log("rebuilding the channel on the open connection");
    let name = format!("villas-controller.{manager}");
    assert_eq!(
        connections_named(&name).len(),
        1,
        "the connection is reused"
    );
    channel
        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
    let mut observer = Observer::connect(&exchange).await;
    daemon.wait_log("to=up");
    observer.ping(&manager).await;
    assert_eq!(connections_named(&name).len(), 1);
    let _ = connection.close(200, "bye".into()).await;
    observer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_queue_is_declared_again_on_the_same_connection() {
    let _serial = SERIAL.lock().await;
    let mut lab = Lab::start(1, |yaml| yaml).await;
    let a = lab.sims[0].clone();
    lab.run_long(&a).await;
    let name = lab.connection_name();
    let before = connections_named(&name);
    // The broker cancels the consumer: a channel-level event, the
    // connection stays open.
    rabbitmqctl(&["delete_queue", &name]);
    lab.daemon.wait_log("to=down");
    lab.daemon.wait_log("bus up again");
    assert!(lab
        .daemon
        .wait_log("reconnecting")
        .contains("reuse_connection=true"));
    assert_eq!(connections_named(&name), before, "the same connection");
    lab.observer.ping(&a).await;
    lab.observer.act(&a, json!({"action": "stop"})).await;
    lab.observer.wait_state(&a, "idle").await;
    lab.observer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_heartbeat_is_negotiated() {
    let _serial = SERIAL.lock().await;
    let lab = Lab::start(0, |yaml| yaml).await;
    let found = connections_named(&lab.connection_name());
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].1, 10, "default broker.heartbeat");
    drop(lab);
    let exchange = test_exchange();
    let mut observer = Observer::connect(&exchange).await;
    let manager = new_uuid();
    let yaml = config(&exchange, &manager, "")
        .replace("components:\n", "components: []\n")
        .replace("broker:\n", "broker:\n  heartbeat: 7\n");
    let mut daemon = Daemon::start(&yaml);
    observer.wait_any(&manager).await;
    let line = daemon.wait_log("bus connected");
    assert!(line.contains("heartbeat=7"), "{line}");
    let found = connections_named(&format!("villas-controller.{manager}"));
    assert_eq!(found.iter().map(|c| c.1).collect::<Vec<_>>(), [7]);
    observer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_publishes_every_final_state_then_exits_0() {
    let _serial = SERIAL.lock().await;
    let mut lab = Lab::start(2, |yaml| yaml).await;
    let a = lab.sims[0].clone();
    lab.run_long(&a).await;
    lab.observer.forget();
    let stopped = Instant::now();
    lab.daemon.signal("TERM");
    for uuid in lab.all() {
        lab.observer.wait_state(&uuid, "shutdown").await;
    }
    assert_eq!(lab.daemon.wait_exit(), Some(0));
    let took = stopped.elapsed();
    assert!(took < Duration::from_secs(20), "{took:?}");
    lab.daemon.wait_log("to=draining");
    lab.daemon.wait_log("to=closed");
    // Nothing from the daemon after its final statuses.
    let after: Vec<_> = lab
        .observer
        .received()
        .iter()
        .map(|s| (s.uuid(), s.state()))
        .collect();
    assert!(
        after.is_empty(),
        "published after the final state: {after:?}"
    );
    assert!(connections_named(&lab.connection_name()).is_empty());
    lab.observer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_the_broker_down_still_exits_0_in_time() {
    let _serial = SERIAL.lock().await;
    let mut lab = Lab::start(1, |yaml| yaml).await;
    let mut broker = BrokerStopped::now();
    lab.daemon.wait_log("to=down");
    let stopped = Instant::now();
    lab.daemon.signal("TERM");
    assert_eq!(lab.daemon.wait_exit(), Some(0));
    let took = stopped.elapsed();
    assert!(took < Duration::from_secs(20), "{took:?}");
    broker.start();
    lab.observer.reconnect().await;
    lab.observer.close().await;
}
