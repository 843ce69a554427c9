//! The `manager`/`villas-node` and `gateway`/`villas-node` kinds,
//! black-box: the real daemon on the real broker, driving a faithful fake
//! of VILLASnode's API v2 (`tests/fixtures/villas-fakes`) served by the
//! test on 127.0.0.1. Discovery of nodes as gateways, nodes added and
//! removed, every gateway action reaching VILLASnode without a body and
//! confirmed by re-reading the node, refusals, a VILLASnode down at
//! start-up and coming back, a stall longer than the timeout, and the
//! daemon answering other components' pings throughout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use villas_fakes::node::{FakeNodeEntry, FakeVillasNode, VERSION};

const SUPER_NODE: &str = "5d3b7a9e-2c41-4f6a-9e0b-1f2a3b4c5d6e";

/// A villas-node manager entry (`extra`: more YAML lines, indented two
/// spaces) and a dummy to ping.
fn lab_config(
    exchange: &str,
    root: &str,
    manager: &str,
    api_url: &str,
    extra: &str,
    dummy_uuid: &str,
) -> String {
    let components = format!(
        "- category: manager\n  type: villas-node\n  name: VILLASnode\n  uuid: {manager}\n  api_url: {api_url}\n  poll_interval: 0.2\n  timeout: 0.5\n  backoff_max: 0.5\n{extra}{}",
        dummy(dummy_uuid, None, "Other")
    );
    config(exchange, root, &components)
}

struct Lab {
    client: Client,
    _daemon: Daemon,
    manager: String,
    other: String,
}

async fn lab(fake_url: &str, extra: &str) -> Lab {
    let exchange = test_exchange();
    let client = connect(&exchange).await;
    let (root, manager, other) = (new_uuid(), new_uuid(), new_uuid());
    let daemon = Daemon::start(&lab_config(
        &exchange, &root, &manager, fake_url, extra, &other,
    ));
    Lab {
        client,
        _daemon: daemon,
        manager,
        other,
    }
}

impl Lab {
    async fn act(&self, uuid: &str, action: &str) {
        self.client
            .act(uuid, &json!({"action": action}))
            .await
            .unwrap();
    }

    /// The other component answers a ping (the daemon is not blocked).
    async fn other_answers(&mut self) {
        let other = self.other.clone();
        self.client
            .backlog
            .retain(|r| r.uuid().as_deref() != Some(other.as_str()));
        self.act(&other, "ping").await;
        self.client.wait_state(&other, "idle").await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_become_gateways_and_vanished_ones_are_gone() {
    let fake = FakeVillasNode::start(SUPER_NODE).await.unwrap();
    let udp = fake.add_node("udp_1", "udp");
    let ws = fake.add_node("ws_1", "websocket");
    let mut lab = lab(
        &fake.url(),
        "  api_url_external: https://lab.example/node\n",
    )
    .await;

    let running = lab
        .client
        .wait_state(&lab.manager, "running")
        .await
        .unwrap();
    assert_eq!(running.body["status"]["villas_node_version"], VERSION);
    assert_eq!(running.body["status"]["villas_node_uuid"], SUPER_NODE);
    // The configured uuid, never VILLASnode's.
    assert_eq!(running.body["properties"]["uuid"], lab.manager.as_str());

    let gateway = lab.client.wait_state(&udp, "running").await.unwrap();
    assert_eq!(gateway.body["status"]["managed_by"], lab.manager.as_str());
    assert_eq!(gateway.body["status"]["node_state"], "running");
    assert_eq!(gateway.body["properties"]["category"], "gateway");
    assert_eq!(gateway.body["properties"]["type"], "villas-node");
    assert_eq!(gateway.body["properties"]["name"], "udp_1");
    assert_eq!(gateway.body["properties"]["ws_url"], "");
    let ws_gateway = lab.client.wait_state(&ws, "running").await.unwrap();
    assert_eq!(
        ws_gateway.body["properties"]["ws_url"],
        "https://lab.example/node/ws_1"
    );
    assert_eq!(ws_gateway.body["properties"]["sub_type"], "websocket");

    // The manager lists them.
    let components: Vec<&str> = running.body["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(components.len(), 2);
    assert!(components.contains(&udp.as_str()) && components.contains(&ws.as_str()));

    // A node that disappears: its gateway is gone; a new one appears.
    fake.remove_node("udp_1");
    lab.client.wait_state(&udp, "gone").await.unwrap();
    let file = fake.add(FakeNodeEntry {
        name: "file_1".into(),
        node_type: "file".into(),
        state: "stopped".into(),
        pausable: true,
        extra: Default::default(),
    });
    let file_uuid = file.clone();
    let idle = lab
        .client
        .wait_for("the new gateway with its node's state", |r| {
            r.uuid().as_deref() == Some(file_uuid.as_str())
                && r.body["status"]["node_state"] == "stopped"
        })
        .await
        .unwrap();
    assert_eq!(idle.state().as_deref(), Some("idle"));
    let manager = lab.manager.clone();
    let (file_, ws_) = (file.clone(), ws.clone());
    lab.client
        .wait_for("the manager's new list", |r| {
            r.uuid().as_deref() == Some(manager.as_str())
                && r.body["components"] == json!([ws_, file_])
        })
        .await
        .unwrap();
    lab.other_answers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_actions_reach_villas_node_and_are_confirmed() {
    let fake = FakeVillasNode::start(SUPER_NODE).await.unwrap();
    let udp = fake.add_node("udp_1", "udp");
    let stuck = fake.add(FakeNodeEntry {
        name: "file_1".into(),
        node_type: "file".into(),
        state: "running".into(),
        pausable: false,
        extra: Default::default(),
    });
    let mut lab = lab(&fake.url(), "").await;
    lab.client.wait_state(&udp, "running").await.unwrap();
    lab.client.wait_state(&stuck, "running").await.unwrap();

    lab.act(&udp, "stop").await;
    assert_eq!(
        lab.client.states_until(&udp, "idle").await.unwrap(),
        ["stopping", "idle"]
    );
    assert_eq!(fake.state_of("udp_1").as_deref(), Some("stopped"));
    lab.act(&udp, "start").await;
    assert_eq!(
        lab.client.states_until(&udp, "running").await.unwrap(),
        ["starting", "running"]
    );
    lab.act(&udp, "pause").await;
    let paused = lab.client.wait_state(&udp, "paused").await.unwrap();
    assert_eq!(paused.body["status"]["node_state"], "paused");
    lab.act(&udp, "resume").await;
    lab.client.wait_state(&udp, "running").await.unwrap();
    lab.act(&udp, "reset").await;
    lab.client.wait_state(&udp, "resetting").await.unwrap();
    lab.client.wait_state(&udp, "running").await.unwrap();

    let posts: Vec<(String, String)> = fake.posts().into_iter().map(|r| (r.path, r.body)).collect();
    let expected: Vec<(String, String)> = ["stop", "start", "pause", "resume", "restart"]
        .iter()
        .map(|a| (format!("/api/v2/node/udp_1/{a}"), String::new()))
        .collect();
    assert_eq!(posts, expected, "every action POSTed, without a body");

    // Not supported: refused, the state kept, nothing sent.
    lab.act(&udp, "shutdown").await;
    let refused = lab
        .client
        .wait_error(&udp, "unsupported-action")
        .await
        .unwrap();
    assert_eq!(refused.state().as_deref(), Some("running"));
    lab.act(&lab.manager.clone(), "create").await;
    lab.client
        .wait_error(&lab.manager.clone(), "unsupported-action")
        .await
        .unwrap();

    // A node whose pause does nothing: never published as paused.
    lab.act(&stuck, "pause").await;
    let error = lab.client.wait_error(&stuck, "remote-error").await.unwrap();
    assert_eq!(error.state().as_deref(), Some("error"));
    assert_eq!(error.body["status"]["error"]["node_state"], "running");
    // And the next read of the node brings it back.
    lab.client.wait_state(&stuck, "running").await.unwrap();
    assert_eq!(fake.posts().len(), 6);
    lab.other_answers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manager_reset_restarts_villas_node() {
    let fake = FakeVillasNode::start(SUPER_NODE).await.unwrap();
    let mut lab = lab(&fake.url(), "").await;
    lab.client
        .wait_state(&lab.manager, "running")
        .await
        .unwrap();
    lab.act(&lab.manager.clone(), "reset").await;
    let states = lab
        .client
        .states_until(&lab.manager, "running")
        .await
        .unwrap();
    assert_eq!(states, ["resetting", "idle", "starting", "running"]);
    assert_eq!(fake.restarts(), 1);
    let restart = fake
        .posts()
        .into_iter()
        .find(|r| r.path == "/api/v2/restart")
        .unwrap();
    assert_eq!(restart.body, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn villas_node_down_at_start_up_then_back() {
    let mut fake = FakeVillasNode::start(SUPER_NODE).await.unwrap();
    let udp = fake.add_node("udp_1", "udp");
    fake.down();
    let mut lab = lab(&fake.url(), "").await;
    // The daemon started anyway; the manager says why it is in error.
    let error = lab
        .client
        .wait_error(&lab.manager, "remote-error")
        .await
        .unwrap();
    assert_eq!(error.state().as_deref(), Some("error"));
    let message = error.body["status"]["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("unreachable"), "{message}");
    assert_eq!(error.body["status"]["error"]["api_url"], fake.url());
    lab.other_answers().await;
    // Back: the manager leaves `error` by itself and finds the node.
    fake.up().await.unwrap();
    lab.client
        .wait_state(&lab.manager, "running")
        .await
        .unwrap();
    lab.client.wait_state(&udp, "running").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_longer_than_the_timeout_is_an_error_until_it_ends() {
    let fake = FakeVillasNode::start(SUPER_NODE).await.unwrap();
    let udp = fake.add_node("udp_1", "udp");
    let mut lab = lab(&fake.url(), "").await;
    lab.client
        .wait_state(&lab.manager, "running")
        .await
        .unwrap();
    lab.client.wait_state(&udp, "running").await.unwrap();
    fake.stall(true);
    let error = lab
        .client
        .wait_error(&lab.manager, "remote-error")
        .await
        .unwrap();
    let message = error.body["status"]["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("timed out") || message.contains("timeout"),
        "{message}"
    );
    lab.client.wait_error(&udp, "remote-error").await.unwrap();
    // Nothing waits on VILLASnode: the daemon answers, the gateway too.
    lab.other_answers().await;
    lab.client.backlog.clear();
    lab.act(&udp, "ping").await;
    lab.client.wait_state(&udp, "error").await.unwrap();
    fake.stall(false);
    lab.client
        .wait_state(&lab.manager, "running")
        .await
        .unwrap();
    lab.client.wait_state(&udp, "running").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn villas_node_answering_errors_is_an_error_with_its_text() {
    let fake = FakeVillasNode::start(SUPER_NODE).await.unwrap();
    let udp = fake.add_node("udp_1", "udp");
    let mut lab = lab(&fake.url(), "").await;
    lab.client
        .wait_state(&lab.manager, "running")
        .await
        .unwrap();
    lab.client.wait_state(&udp, "running").await.unwrap();
    // An action VILLASnode refuses: the gateway says what it answered.
    fake.fail_with(Some(500));
    lab.act(&udp, "stop").await;
    let error = lab.client.wait_error(&udp, "remote-error").await.unwrap();
    assert_eq!(error.body["status"]["error"]["action"], "stop");
    assert_eq!(error.body["status"]["error"]["http_status"], 500);
    assert_eq!(
        error.body["status"]["error"]["villas_node_error"],
        "Failed (fake)"
    );
    let error = lab
        .client
        .wait_error(&lab.manager, "remote-error")
        .await
        .unwrap();
    assert_eq!(error.body["status"]["error"]["http_status"], 500);
    lab.other_answers().await;
    fake.fail_with(None);
    lab.client
        .wait_state(&lab.manager, "running")
        .await
        .unwrap();
    lab.client.wait_state(&udp, "running").await.unwrap();
}
