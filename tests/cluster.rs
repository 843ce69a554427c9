//! Several broker nodes, with the real daemon binary: the first node that
//! answers is used; a lost node fails over to the next (independent
//! brokers: a node of our own and the shared broker on 5672, which is never
//! stopped); and daemons on a three-node RabbitMQ cluster of our own
//! (`tests/fixtures/cluster/rabbitmq-cluster.sh`: nodes villas-c1..3 on
//! 5681..5683) through a node's `stop_app`, its return, and the whole
//! cluster down and back; `broker.shuffle` spreading daemons given the
//! same list over the nodes.
//!
//! The cluster is started by each test that needs it and stopped (its data
//! removed) when the test ends, failed or not ([`Cluster`]'s drop);
//! `.ci/run` stops it at exit too. One test at a time in this binary.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::*;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use villas_client::discover::Discovery;
use villas_client::nodes::spread;
use villas_client::{Binding, Filter, Session};
use villas_sdk::protocol::StatusView;

/// One test at a time: they start and stop the same nodes.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a failed-over daemon's components may take to answer again.
const FAILOVER: Duration = Duration::from_secs(5);

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster/rabbitmq-cluster.sh")
}

fn run_script(args: &[&str]) {
    let status = Command::new(script())
        .args(args)
        .status()
        .expect("script runs");
    assert!(status.success(), "rabbitmq-cluster.sh {args:?} failed");
}

/// Our RabbitMQ nodes; stopped and removed when dropped.
struct Cluster;

impl Cluster {
    /// Starts `nodes` nodes (joined into one cluster).
    fn start(nodes: u8) -> Cluster {
        // A cluster left behind by an interrupted run is replaced.
        run_script(&["stop"]);
        let guard = Cluster;
        run_script(&["start", &nodes.to_string()]);
        guard
    }

    /// The AMQP URL of node `n` (1..3).
    fn url(n: u8) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2F", 5680 + u16::from(n))
    }

    fn stop_app(&self, n: u8) {
        run_script(&["stop-app", &n.to_string()]);
    }

    fn start_app(&self, n: u8) {
        run_script(&["start-app", &n.to_string()]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").status();
    }
}

/// A daemon config with the broker nodes `urls`, in this order.
fn config_on(urls: &[String], exchange: &str, uuid: &str, components: &str) -> String {
    let list: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    format!(
        "uuid: {uuid}\nbroker:\n  url: [{}]\n  exchange: {exchange}\n  reconnect_max: 2\napi:\n  enabled: false\nstatus:\n  heartbeat_interval: 3600\ncomponents:\n{components}",
        list.join(", ")
    )
}

/// `config` with `broker.shuffle: true`: the daemon tries the nodes in an
/// order of its own, by its uuid.
fn shuffled(config: &str) -> String {
    assert!(config.contains("  reconnect_max: 2\n"));
    config.replace(
        "  reconnect_max: 2\n",
        "  reconnect_max: 2\n  shuffle: true\n",
    )
}

/// `config` with the HTTP API (and `/metrics`) on a free port.
fn with_api(config: &str) -> String {
    assert!(config.contains("api:\n  enabled: false\n"));
    config.replace(
        "api:\n  enabled: false\n",
        "api:\n  bind: 127.0.0.1\n  port: 0\n",
    )
}

/// A new daemon uuid whose shuffled order of `nodes` (as the daemon spells
/// them) starts with `nodes[first]`.
fn uuid_first_on(nodes: &[String], first: usize) -> String {
    loop {
        let uuid = new_uuid();
        if spread(nodes, &uuid)[0] == nodes[first] {
            return uuid;
        }
    }
}

/// The server port of every client connection in the cluster, sorted, as
/// the broker lists them (`rabbitmqctl list_connections port`).
fn connection_ports() -> Vec<u16> {
    let output = Command::new(script())
        .arg("connections")
        .output()
        .expect("script runs");
    assert!(
        output.status.success(),
        "rabbitmq-cluster.sh connections failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut ports: Vec<u16> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect();
    ports.sort_unstable();
    ports
}

/// Pings everyone through node `url` and collects the answers until every
/// uuid of `expected` answered (or the deadline): the latest status of each
/// IC that answered.
async fn census(
    url: &str,
    exchange: &str,
    expected: &HashSet<String>,
    within: Duration,
) -> HashMap<String, StatusView> {
    let session = Session::open(&Target::new(url, exchange))
        .await
        .expect("node reachable");
    let mut subscription = session.subscribe(&Binding::Everything).await.unwrap();
    let until = tokio::time::Instant::now() + within;
    let mut discovery = Discovery::start(&session, &mut subscription, &Filter::everyone(), until)
        .await
        .unwrap();
    let mut found = HashMap::new();
    while let Some(reply) = discovery.next().await.unwrap() {
        found.insert(reply.uuid.clone(), reply.status);
        if expected.iter().all(|uuid| found.contains_key(uuid)) {
            break;
        }
    }
    drop(discovery);
    session.close().await;
    found
}

/// Each component's manager (`status.managed_by`), by uuid.
fn managed(found: &HashMap<String, StatusView>) -> HashMap<String, Option<String>> {
    found
        .iter()
        .map(|(uuid, status)| (uuid.clone(), status.status.managed_by.clone()))
        .collect()
}

/// Counts the log lines containing `needle` so far.
fn count_log(daemon: &Daemon, needle: &str) -> usize {
    daemon.log.iter().filter(|l| l.contains(needle)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_to_the_first_node_that_answers() {
    let _serial = SERIAL.lock().await;
    let exchange = test_exchange();
    let uuid = new_uuid();
    let sim = new_uuid();
    // Nothing listens on 5689: the daemon goes on to the shared broker.
    let urls = [
        "amqp://guest:guest@127.0.0.1:5689/%2F".to_owned(),
        amqp_url(),
    ];
    let mut daemon = Daemon::start(&config_on(&urls, &exchange, &uuid, &dummy(&sim, None, "s")));
    daemon.wait_log("bus connected");
    let expected: HashSet<String> = [uuid.clone(), sim.clone()].into();
    let found = census(&amqp_url(), &exchange, &expected, DEADLINE).await;
    assert_eq!(found.keys().cloned().collect::<HashSet<_>>(), expected);
    // The client takes the same list.
    let target = Target::of_nodes(&urls, exchange.clone());
    let session = Session::open(&target)
        .await
        .expect("the second node answers");
    session.delete_exchange().await.unwrap();
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_node_fails_over_to_the_next_and_republishes_every_status() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(1);
    let exchange = test_exchange();
    let uuid = new_uuid();
    let sims = [new_uuid(), new_uuid()];
    let components = format!(
        "{}{}",
        dummy(&sims[0], None, "a"),
        dummy(&sims[1], None, "b")
    );
    // Our node first, the shared broker (independent of it) second.
    let urls = [Cluster::url(1), amqp_url()];
    let mut daemon = Daemon::start(&config_on(&urls, &exchange, &uuid, &components));
    daemon.wait_log("bus connected");
    let mut expected: HashSet<String> = sims.iter().cloned().collect();
    expected.insert(uuid.clone());
    let on_node = census(&Cluster::url(1), &exchange, &expected, DEADLINE).await;
    assert_eq!(on_node.len(), 3, "{:?}", on_node.keys());

    // A watcher on the shared broker, before the node goes.
    let mut watcher = connect(&exchange).await;
    cluster.stop_app(1);
    let lost = Instant::now();
    // Every component's status is published again there, unasked.
    let mut seen = HashSet::new();
    while !expected.iter().all(|uuid| seen.contains(uuid)) {
        let left = FAILOVER.saturating_sub(lost.elapsed());
        let deadline = tokio::time::Instant::now() + left;
        match watcher.next_until(deadline).await.unwrap() {
            Some(message) if message.is_status() => {
                seen.extend(message.uuid());
            }
            Some(_) => {}
            None => panic!(
                "statuses of {:?} not republished on the next node within {FAILOVER:?}",
                expected.difference(&seen).collect::<Vec<_>>()
            ),
        }
    }
    // And they answer there.
    let found = census(&amqp_url(), &exchange, &expected, FAILOVER).await;
    assert_eq!(found.keys().cloned().collect::<HashSet<_>>(), expected);
    assert!(lost.elapsed() < 2 * FAILOVER, "{:?}", lost.elapsed());
    watcher.close_and_delete_exchange().await.unwrap();
    drop(daemon);
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_on_a_three_node_cluster() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(3);
    let exchange = test_exchange();
    let nodes: Vec<String> = (1..=3).map(Cluster::url).collect();
    // Every daemon is given the same list with `shuffle: true`; daemon i's
    // uuid is one whose order (spread by uuid) starts on node i + 1. The
    // heartbeat is given so that the daemon adds none: the order computed
    // here is of the URLs as the daemon spells them.
    let listed: Vec<String> = nodes.iter().map(|u| format!("{u}?heartbeat=10")).collect();
    let roots: Vec<String> = (0..3).map(|i| uuid_first_on(&listed, i)).collect();
    let mut expected: HashSet<String> = roots.iter().cloned().collect();
    let mut daemons = Vec::new();
    for (i, root) in roots.iter().enumerate() {
        let sims = [new_uuid(), new_uuid()];
        expected.extend(sims.iter().cloned());
        let components = format!(
            "{}{}",
            dummy(&sims[0], None, &format!("d{i}-a")),
            dummy(&sims[1], None, &format!("d{i}-b"))
        );
        // Daemon i starts on node i + 1, as its shuffled order says.
        let config = shuffled(&config_on(&listed, &exchange, root, &components));
        let mut daemon = Daemon::start(&config);
        let line = daemon.wait_log("bus connected");
        assert!(
            line.contains(&format!(":{}/", 5681 + i)),
            "daemon {i} shuffled {:?}: {line}",
            spread(&listed, root)
        );
        daemons.push(daemon);
    }
    // The broker agrees: one client connection on each node.
    assert_eq!(connection_ports(), [5681, 5682, 5683]);

    // A component created through daemon 0's root manager.
    let created = new_uuid();
    {
        let mut client = Client::connect(&Target::new(nodes[0].clone(), exchange.clone()))
            .await
            .unwrap()
            .with_timeout(DEADLINE);
        client
            .act(
                &roots[0],
                &json!({"action": "create", "parameters": {
                    "category": "simulator", "type": "dummy", "name": "created",
                    "uuid": created, "transition_delay": 0.05}}),
            )
            .await
            .unwrap();
        client.wait_state(&created, "idle").await.unwrap();
        client.close().await;
    }
    expected.insert(created.clone());

    // Everything is discoverable from each node; each component is managed
    // by exactly one daemon.
    let mut before = None;
    for node in &nodes {
        let found = census(node, &exchange, &expected, DEADLINE).await;
        assert_eq!(
            found.keys().cloned().collect::<HashSet<_>>(),
            expected,
            "through {node}"
        );
        let managers = managed(&found);
        assert_eq!(before.get_or_insert(managers.clone()), &managers);
    }
    let before = before.unwrap();
    assert_eq!(before[&created].as_ref(), Some(&roots[0]));

    // Node 1 stops: daemon 0 goes to another node, its components answer
    // again within FAILOVER, nothing lost or duplicated.
    cluster.stop_app(1);
    let stopped = Instant::now();
    let found = census(&nodes[1], &exchange, &expected, FAILOVER).await;
    assert_eq!(
        found.keys().cloned().collect::<HashSet<_>>(),
        expected,
        "after node 1 stopped ({:?})",
        stopped.elapsed()
    );
    assert!(stopped.elapsed() <= FAILOVER + Duration::from_secs(1));
    assert_eq!(managed(&found), before);
    // It reconnected to another node of the cluster.
    let reconnected = daemons[0].wait_log_nth("bus connected", 2);
    assert!(!reconnected.contains(":5681/"), "{reconnected}");
    let found = census(&nodes[2], &exchange, &expected, DEADLINE).await;
    assert_eq!(found.len(), expected.len());

    // Node 1 back: nothing changes (no daemon moves back, nothing new).
    cluster.start_app(1);
    let found = census(&nodes[0], &exchange, &expected, DEADLINE).await;
    assert_eq!(found.keys().cloned().collect::<HashSet<_>>(), expected);
    assert_eq!(managed(&found), before);
    for (i, daemon) in daemons.iter().enumerate() {
        let links = count_log(daemon, "bus connected");
        assert_eq!(links, if i == 0 { 2 } else { 1 }, "daemon {i}");
    }

    // The whole cluster down and back: every daemon recovers.
    run_script(&["stop-apps"]);
    for daemon in &mut daemons {
        daemon.wait_log("to=down");
    }
    run_script(&["start-apps"]);
    for node in &nodes {
        let found = census(node, &exchange, &expected, Duration::from_secs(30)).await;
        assert_eq!(
            found.keys().cloned().collect::<HashSet<_>>(),
            expected,
            "through {node} after the cluster came back"
        );
        assert_eq!(managed(&found), before);
    }
    let session = Session::open(&Target::new(nodes[0].clone(), exchange.clone()))
        .await
        .unwrap();
    session.delete_exchange().await.unwrap();
    session.close().await;
    drop(daemons);
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemons_of_one_lab_keep_apart_and_discover_groups_them() {
    let _serial = SERIAL.lock().await;
    let exchange = test_exchange();
    let roots = [new_uuid(), new_uuid()];
    let sims = [new_uuid(), new_uuid()];
    // Each daemon has a generic manager besides its root manager.
    let managers = [new_uuid(), new_uuid()];
    let urls = [amqp_url()];
    let mut daemons: Vec<Daemon> = (0..2)
        .map(|i| {
            let components = format!(
                "{}- category: manager\n  type: generic\n  name: manager-{i}\n  uuid: {}\n",
                dummy(&sims[i], None, &format!("sim-{i}")),
                managers[i]
            );
            let config = config_on(&urls, &exchange, &roots[i], &components);
            // Daemon 0 serves /metrics: what its queue received, and why
            // it dropped it.
            Daemon::start(&if i == 0 { with_api(&config) } else { config })
        })
        .collect();
    for daemon in &mut daemons {
        daemon.wait_log("bus connected");
    }
    let metrics = daemons[0].api_base().replace("/api/v1", "/metrics");
    // A create sent to daemon 0's root manager, another to daemon 1's
    // generic manager: only the manager addressed creates.
    let created = new_uuid();
    let made = new_uuid();
    let mut client = connect(&exchange).await;
    for (manager, uuid) in [(&roots[0], &created), (&managers[1], &made)] {
        client
            .act(
                manager,
                &json!({"action": "create", "parameters": {
                    "category": "simulator", "type": "dummy", "name": "created",
                    "uuid": uuid, "transition_delay": 0.05}}),
            )
            .await
            .unwrap();
        let idle = client.wait_state(uuid, "idle").await.unwrap();
        let status = idle.status().unwrap();
        assert_eq!(status.status.managed_by.as_ref(), Some(manager));
    }

    // Another daemon's statuses are dropped by their AMQP type, unparsed
    // (`reason="status"`), never taken for a message without an action:
    // five of daemon 1's answers reach daemon 0's queue, each in order
    // before daemon 0's answer to the ping sent after them.
    barrier(&mut client, &sims[0]).await;
    let before = scrape(&metrics).await;
    for _ in 0..5 {
        barrier(&mut client, &sims[1]).await;
    }
    barrier(&mut client, &sims[0]).await;
    let after = scrape(&metrics).await;
    let dropped = |text: &str, reason: &str| {
        counter(
            text,
            &format!("villas_bus_messages_dropped_total{{reason=\"{reason}\"}}"),
        )
    };
    assert!(
        dropped(&after, "status") - dropped(&before, "status") >= 5.0,
        "daemon 1's statuses not dropped as statuses:\n{after}"
    );
    assert_eq!(dropped(&after, "not_an_action"), 0.0, "{after}");
    assert_eq!(
        counter(&after, "villas_bus_messages_malformed_total"),
        0.0,
        "{after}"
    );

    // `discover` groups the inventory by daemon (root manager) and host;
    // `-b` takes the list of nodes (nothing listens on the first).
    let nodes = format!("amqp://guest:guest@127.0.0.1:5689/%2F,{}", amqp_url());
    let output = tokio::process::Command::new(binary())
        .args(["-b", &nodes, "discover", "--timeout", "2"])
        .env("VILLAS_CONTROLLER__BROKER__EXCHANGE", &exchange)
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .env("XDG_CONFIG_DIRS", "/nonexistent")
        .env_remove("RUST_LOG")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let mut group = None;
    let mut seen: HashMap<String, String> = HashMap::new();
    for line in stdout.lines().skip(1) {
        if let Some(title) = line.strip_prefix("# daemon ") {
            group = Some(title.split_whitespace().next().unwrap().to_owned());
            assert!(title.contains(" on "), "{line}");
            continue;
        }
        let uuid = line.split_whitespace().next().unwrap().to_owned();
        let group = group.clone().expect("a group line before every row");
        assert!(
            seen.insert(uuid, group).is_none(),
            "one row per IC:\n{stdout}"
        );
    }
    let expected: HashMap<String, String> = [
        (roots[0].clone(), roots[0].clone()),
        (sims[0].clone(), roots[0].clone()),
        (managers[0].clone(), roots[0].clone()),
        (created.clone(), roots[0].clone()),
        (roots[1].clone(), roots[1].clone()),
        (sims[1].clone(), roots[1].clone()),
        (managers[1].clone(), roots[1].clone()),
        (made.clone(), roots[1].clone()),
    ]
    .into();
    assert_eq!(seen, expected, "{stdout}");

    // Each daemon answered the discover pings sent after the creates, so
    // it had taken both creates: each created only the one addressed to
    // one of its managers.
    for (i, mut daemon) in daemons.into_iter().enumerate() {
        daemon.signal("TERM");
        let log = daemon.whole_log();
        let creations: Vec<&String> = log
            .iter()
            .filter(|l| l.contains("component created"))
            .collect();
        let (own, other) = if i == 0 {
            (&created, &made)
        } else {
            (&made, &created)
        };
        assert!(
            creations.iter().any(|l| l.contains(own.as_str())),
            "daemon {i}: {creations:?}"
        );
        assert!(
            !creations.iter().any(|l| l.contains(other.as_str())),
            "daemon {i} created the other daemon's component: {creations:?}"
        );
    }
    client.close_and_delete_exchange().await.unwrap();
}

/// Pings `uuid` and waits for its answer (statuses received before are
/// forgotten first).
async fn barrier(client: &mut Client, uuid: &str) {
    client.backlog.clear();
    client.act(uuid, &json!({"action": "ping"})).await.unwrap();
    let wanted = uuid.to_owned();
    client
        .wait_for("ping answer", move |m| m.uuid().as_deref() == Some(&wanted))
        .await
        .unwrap();
}

/// A daemon's `/metrics` text.
async fn scrape(url: &str) -> String {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "{url}");
    response.text().await.unwrap()
}

/// The value of the series `series` (name and labels exactly as exposed);
/// 0 when absent.
fn counter(text: &str, series: &str) -> f64 {
    text.lines()
        .filter_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .next()
        .unwrap_or(0.0)
}
