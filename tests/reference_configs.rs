//! The reference's own configurations with `villas-node` and
//! `villas-relay` managers (`etc/config_villas.yaml`,
//! `etc/config_node.yaml` of VILLASframework/controller, kept in
//! `tests/fixtures/reference/`) load and run under the real daemon on the
//! real broker, with their URLs pointed at the fakes of
//! `tests/fixtures/villas-fakes` (and the enabled-false relay of
//! `config_villas.yaml` switched on, to run it too).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use villas_fakes::node::{FakeVillasNode, VERSION};
use villas_fakes::relay::FakeVillasRelay;

const SUPER_NODE: &str = "5d3b7a9e-2c41-4f6a-9e0b-1f2a3b4c5d6e";
const RELAY: &str = "32dd320b-3f86-497f-a77c-f83ecdb55c54";

/// The fixture with the broker pointed at the test's exchange, a daemon
/// uuid of its own (tests run side by side) and the `replace`ments made.
fn reference(file: &str, exchange: &str, replace: &[(&str, &str)]) -> String {
    let path = format!(
        "{}/tests/fixtures/reference/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut text = std::fs::read_to_string(path).unwrap();
    for (from, to) in replace {
        assert!(text.contains(from), "{from} not in {file}");
        text = text.replace(from, to);
    }
    let broker = "  url: amqp://guest:guest@localhost:5672/%2F\n";
    assert!(text.contains(broker));
    text.replace(
        broker,
        &format!("  url: {}\n  exchange: {exchange}\n", amqp_url()),
    ) + &format!("uuid: {}\napi:\n  enabled: false\n", new_uuid())
}

/// The first status of a component of `category`/`type_name` in `state`.
async fn wait_kind(client: &mut Client, category: &str, type_name: &str, state: &str) -> Received {
    let what = format!("{category}/{type_name} in {state}");
    client
        .wait_for(&what, |r| {
            r.body["properties"]["category"] == category
                && r.body["properties"]["type"] == type_name
                && r.state().as_deref() == Some(state)
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_node_yaml_runs_against_a_fake_villas_node() {
    let fake = FakeVillasNode::start(SUPER_NODE).await.unwrap();
    let node = fake.add_node("ws_1", "websocket");
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let url = fake.url();
    let config = reference(
        "config_node.yaml",
        &exchange,
        &[("api_url: http://localhost:8080", &format!("api_url: {url}"))],
    );
    let _daemon = Daemon::start(&config);
    let manager = wait_kind(&mut client, "manager", "villas-node", "running").await;
    assert_eq!(manager.body["properties"]["name"], "VILLASnode");
    assert_eq!(manager.body["status"]["villas_node_version"], VERSION);
    let gateway = client.wait_state(&node, "running").await.unwrap();
    assert_eq!(
        gateway.body["status"]["managed_by"],
        manager.body["properties"]["uuid"]
    );
    assert_eq!(gateway.body["properties"]["ws_url"], format!("{url}/ws_1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_villas_yaml_runs_against_fakes() {
    let fake = FakeVillasNode::start(SUPER_NODE).await.unwrap();
    let node = fake.add_node("file_1", "file");
    let relay = FakeVillasRelay::start(RELAY).await.unwrap();
    let session = relay.add_session("node_1");
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let config = reference(
        "config_villas.yaml",
        &exchange,
        &[
            (
                "api_url: http://ernie.acs-lab.eonerc.rwth-aachen.de:8080",
                &format!("api_url: {}", fake.url()),
            ),
            (
                "api_url: https://villas-new.k8s.eonerc.rwth-aachen.de/ws/relay",
                &format!("api_url: {}", relay.url()),
            ),
            ("enabled: false", "enabled: true"),
        ],
    );
    let _daemon = Daemon::start(&config);
    // `category: controller` is the reference's older name for managers.
    let manager = wait_kind(&mut client, "manager", "villas-node", "running").await;
    assert_eq!(manager.body["properties"]["name"], "VILLASnode (k8s)");
    assert_eq!(
        manager.body["properties"]["realm"],
        "de.rwth-aachen.eonerc.acs"
    );
    let gateway = client.wait_state(&node, "running").await.unwrap();
    assert_eq!(
        gateway.body["properties"]["realm"],
        "de.rwth-aachen.eonerc.acs"
    );
    let relay_manager = wait_kind(&mut client, "manager", "villas-relay", "running").await;
    assert_eq!(
        relay_manager.body["properties"]["name"],
        "VILLASrelay (k8s)"
    );
    let gateway = client.wait_state(&session, "running").await.unwrap();
    assert_eq!(
        gateway.body["properties"]["ws_url"],
        format!("{}/node_1", relay.url())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_are_found_again_after_a_restart() {
    let fake = FakeVillasNode::start(SUPER_NODE).await.unwrap();
    let kept = fake.add_node("kept_1", "udp");
    let dropped = fake.add_node("dropped_1", "udp");
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let state = tempfile::tempdir().unwrap();
    // config_node.yaml names no uuid: the manager's is stable anyway.
    let config = reference(
        "config_node.yaml",
        &exchange,
        &[(
            "api_url: http://localhost:8080",
            &format!("api_url: {}", fake.url()),
        )],
    ) + &format!("state_dir: {}\n", state.path().display());
    let mut daemon = Daemon::start(&config);
    let first = wait_kind(&mut client, "manager", "villas-node", "running").await;
    client.wait_state(&kept, "running").await.unwrap();
    client.wait_state(&dropped, "running").await.unwrap();
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));

    // While it was down a node went away.
    fake.remove_node("dropped_1");
    client.backlog.clear();
    let _daemon = Daemon::start(&config);
    let second = wait_kind(&mut client, "manager", "villas-node", "running").await;
    assert_eq!(
        second.body["properties"]["uuid"],
        first.body["properties"]["uuid"]
    );
    // Restored under the same manager, then reconciled: gone, and kept.
    client.wait_state(&dropped, "gone").await.unwrap();
    let gateway = client.wait_state(&kept, "running").await.unwrap();
    assert_eq!(
        gateway.body["status"]["managed_by"],
        second.body["properties"]["uuid"]
    );
}
