//! The `manager`/`villas-relay` and `gateway`/`villas-relay` kinds,
//! black-box: the real daemon on the real broker against a fake
//! VILLASrelay (`tests/fixtures/villas-fakes`) served by the test on
//! 127.0.0.1. Sessions as gateways with the relay's MD5 uuids and the
//! `ws_url` rule, a vanished session's gateway leaving `running` (and
//! coming back under the same uuid), refusals, the relay down at start-up
//! and coming back, a stall longer than the timeout, `autostart`, and the
//! daemon answering other components' pings throughout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};
use villas_fakes::relay::{FakeVillasRelay, VERSION};

const RELAY: &str = "32dd320b-3f86-497f-a77c-f83ecdb55c54";

struct Lab {
    client: Client,
    daemon: Daemon,
    manager: String,
    other: String,
}

async fn lab(relay_url: &str, extra: &str) -> Lab {
    let exchange = test_exchange();
    let client = connect(&exchange).await;
    let (root, manager, other) = (new_uuid(), new_uuid(), new_uuid());
    let components = format!(
        "- category: manager\n  type: villas-relay\n  name: VILLASrelay\n  uuid: {manager}\n  realm: lab.example\n  api_url: {relay_url}\n  poll_interval: 0.2\n  timeout: 0.5\n  backoff_max: 0.5\n{extra}{}",
        dummy(&other, None, "Other")
    );
    let daemon = Daemon::start(&config(&exchange, &root, &components));
    Lab {
        client,
        daemon,
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
async fn sessions_become_gateways_that_outlive_them() {
    let relay = FakeVillasRelay::start(RELAY).await.unwrap();
    // The relay's own example (VILLASnode doc/openapi-relay.yaml).
    let node_1 = relay.add_session("node_1");
    assert_eq!(node_1, "8c58c29d-db3a-821b-7a4c-c4be5930d751");
    let mut lab = lab(
        &relay.url(),
        "  api_url_external: wss://lab.example/ws/relay/\n",
    )
    .await;

    let running = lab
        .client
        .wait_state(&lab.manager, "running")
        .await
        .unwrap();
    assert_eq!(running.body["status"]["villas_relay_version"], VERSION);
    assert_eq!(running.body["properties"]["uuid"], lab.manager.as_str());
    let gateway = lab.client.wait_state(&node_1, "running").await.unwrap();
    assert_eq!(gateway.body["status"]["managed_by"], lab.manager.as_str());
    assert_eq!(gateway.body["properties"]["name"], "node_1");
    assert_eq!(gateway.body["properties"]["realm"], "lab.example");
    assert_eq!(
        gateway.body["properties"]["ws_url"],
        "wss://lab.example/ws/relay/node_1"
    );
    assert_eq!(gateway.body["status"]["connections"], 1);

    // A second session while the first is there.
    let node_2 = relay.add_session("node_2");
    lab.client.wait_state(&node_2, "running").await.unwrap();

    // Vanished: the gateway leaves running and stays; back: same uuid.
    relay.remove_session("node_1");
    assert_eq!(
        lab.client.states_until(&node_1, "idle").await.unwrap(),
        ["stopping", "idle"]
    );
    relay.add_session("node_1");
    assert_eq!(
        lab.client.states_until(&node_1, "running").await.unwrap(),
        ["starting", "running"]
    );

    // Sessions cannot be controlled: refused, state kept.
    lab.act(&node_1, "stop").await;
    let refused = lab
        .client
        .wait_error(&node_1, "unsupported-action")
        .await
        .unwrap();
    assert_eq!(refused.state().as_deref(), Some("running"));
    lab.act(&lab.manager.clone(), "start").await;
    let refused = lab
        .client
        .wait_error(&lab.manager.clone(), "unsupported-action")
        .await
        .unwrap();
    assert_eq!(refused.state().as_deref(), Some("running"));
    lab.other_answers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_ws_url_is_the_relays_root() {
    let relay = FakeVillasRelay::start(RELAY).await.unwrap();
    let session = relay.add_session("sim_a");
    let mut lab = lab(&relay.url(), "").await;
    let gateway = lab.client.wait_state(&session, "running").await.unwrap();
    // Not `.../api/v1/sim_a` (the reference's default).
    assert_eq!(
        gateway.body["properties"]["ws_url"],
        format!("{}/sim_a", relay.url())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_down_at_start_up_then_back_and_a_stall() {
    let mut relay = FakeVillasRelay::start(RELAY).await.unwrap();
    let session = relay.add_session("node_1");
    relay.down();
    let mut lab = lab(&relay.url(), "").await;
    let error = lab
        .client
        .wait_error(&lab.manager, "remote-error")
        .await
        .unwrap();
    assert_eq!(error.state().as_deref(), Some("error"));
    lab.other_answers().await;
    relay.up().await.unwrap();
    lab.client
        .wait_state(&lab.manager, "running")
        .await
        .unwrap();
    lab.client.wait_state(&session, "running").await.unwrap();

    relay.stall(true);
    let error = lab
        .client
        .wait_error(&lab.manager, "remote-error")
        .await
        .unwrap();
    let message = error.body["status"]["error"]["message"].as_str().unwrap();
    assert!(message.contains("timed out"), "{message}");
    lab.client
        .wait_error(&session, "remote-error")
        .await
        .unwrap();
    lab.other_answers().await;
    relay.stall(false);
    lab.client
        .wait_state(&lab.manager, "running")
        .await
        .unwrap();
    lab.client.wait_state(&session, "running").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autostart_runs_the_relay_without_blocking() {
    let relay = FakeVillasRelay::start(RELAY).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    let script = dir.path().join("villas-relay");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho $$ > {}\nexec sleep 30\n", marker.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut lab = lab(
        &relay.url(),
        &format!("  autostart: true\n  executable: {}\n", script.display()),
    )
    .await;
    // The child runs for 30 s; the manager and the daemon go on meanwhile.
    lab.client
        .wait_state(&lab.manager, "running")
        .await
        .unwrap();
    lab.other_answers().await;
    let deadline = Instant::now() + DEADLINE;
    let pid = loop {
        if let Ok(text) = std::fs::read_to_string(&marker) {
            if let Ok(pid) = text.trim().parse::<i32>() {
                break pid;
            }
        }
        assert!(Instant::now() < deadline, "the relay was not started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    // The daemon stops: the relay child with it.
    lab.daemon.signal("TERM");
    lab.daemon.wait_exit();
    let deadline = Instant::now() + DEADLINE;
    while std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| !stat.contains(") Z "))
    {
        assert!(Instant::now() < deadline, "the relay outlived the daemon");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
