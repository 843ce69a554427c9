//! The `manager`/`villas-node` kind running VILLASnode as its child,
//! black-box: the real daemon on the real broker, with a fake
//! `villas-node` executable (a wrapper script around this test binary's
//! `fake_villas_node_executable`, which serves the fake API v2 of
//! `tests/fixtures/villas-fakes` on the port of the configuration it is
//! given and exits on SIGTERM; SIGSTOP stalls it). `start`, `stop`,
//! `pause`, `resume` act on the child, `autostart` starts it, the daemon's
//! SIGTERM ends it, a manager without a configuration refuses them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};
use villas_fakes::uuids::node_uuid;

const SUPER_NODE: &str = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

/// Not a test: the fake `villas-node` executable, when the wrapper script
/// runs this binary with `FAKE_VILLAS_NODE_CONFIG` set; else a no-op.
#[test]
fn fake_villas_node_executable() {
    let Ok(config) = std::env::var("FAKE_VILLAS_NODE_CONFIG") else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(villas_fakes::node::run_executable(&config))
        .unwrap();
    std::process::exit(0);
}

/// Writes the wrapper script `villas-node CONFIG` into `dir`.
fn fake_executable(dir: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("villas-node");
    let exe = std::env::current_exe().unwrap();
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nFAKE_VILLAS_NODE_CONFIG=\"$1\" exec {} fake_villas_node_executable --exact --nocapture --test-threads=1\n",
            exe.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script.display().to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Lab {
    client: Client,
    daemon: Daemon,
    manager: String,
    bare: String,
    _dir: tempfile::TempDir,
}

async fn lab(autostart: bool) -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let executable = fake_executable(dir.path());
    let port = free_port();
    let config = json!({"uuid": SUPER_NODE, "http": {"port": port},
                        "nodes": {"udp_1": {"type": "udp"}}});
    let exchange = test_exchange();
    let client = connect(&exchange).await;
    let (root, manager, bare) = (new_uuid(), new_uuid(), new_uuid());
    let components = format!(
        "- category: manager\n  type: villas-node\n  uuid: {manager}\n  api_url: http://127.0.0.1:{port}\n  executable: {executable}\n  config: {config}\n  autostart: {autostart}\n  poll_interval: 0.2\n  timeout: 0.5\n  backoff_max: 0.5\n\
         - category: manager\n  type: villas-node\n  uuid: {bare}\n  api_url: http://127.0.0.1:{}\n  poll_interval: 0.2\n",
        free_port()
    );
    let daemon = Daemon::start(&config_yaml(&exchange, &root, &components));
    Lab {
        client,
        daemon,
        manager,
        bare,
        _dir: dir,
    }
}

fn config_yaml(exchange: &str, root: &str, components: &str) -> String {
    config(exchange, root, components)
}

impl Lab {
    async fn act(&self, uuid: &str, action: &str) {
        self.client
            .act(uuid, &json!({"action": action}))
            .await
            .unwrap();
    }
}

/// `/proc/<pid>/stat`'s state letter; `None` once reaped.
fn proc_state(pid: i64) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(") ").next()?.chars().next()
}

async fn wait_proc(pid: i64, done: impl Fn(Option<char>) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done(proc_state(pid)) {
        assert!(
            Instant::now() < deadline,
            "process {pid}: {:?}",
            proc_state(pid)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_pause_resume_stop_drive_the_child() {
    let mut lab = lab(false).await;
    let gateway = node_uuid(SUPER_NODE, "udp_1");
    let manager = lab.manager.clone();
    // Owning a VILLASnode that does not run yet is no error.
    lab.client.wait_state(&manager, "idle").await.unwrap();
    lab.act(&manager, "start").await;
    assert_eq!(
        lab.client.states_until(&manager, "running").await.unwrap(),
        ["starting", "running"]
    );
    lab.act(&manager, "ping").await;
    let running = lab.client.wait_state(&manager, "running").await.unwrap();
    let pid = running.body["status"]["pid"].as_i64().unwrap();
    assert!(proc_state(pid).is_some());
    lab.client.wait_state(&gateway, "running").await.unwrap();

    lab.act(&manager, "pause").await;
    assert_eq!(
        lab.client.states_until(&manager, "paused").await.unwrap(),
        ["pausing", "paused"]
    );
    wait_proc(pid, |s| s == Some('T')).await;
    lab.act(&manager, "resume").await;
    assert_eq!(
        lab.client.states_until(&manager, "running").await.unwrap(),
        ["resuming", "running"]
    );
    wait_proc(pid, |s| matches!(s, Some('S' | 'R'))).await;

    lab.act(&manager, "stop").await;
    assert_eq!(
        lab.client.states_until(&manager, "idle").await.unwrap(),
        ["stopping", "idle"]
    );
    lab.client.wait_state(&gateway, "gone").await.unwrap();
    wait_proc(pid, |s| s.is_none() || s == Some('Z')).await;

    // A manager that runs no VILLASnode of its own refuses them.
    let bare = lab.bare.clone();
    lab.act(&bare, "start").await;
    let refused = lab
        .client
        .wait_for("the bare manager's refusal", |r| {
            r.uuid().as_deref() == Some(bare.as_str())
                && r.body["status"]["error"]["action"] == "start"
        })
        .await
        .unwrap();
    // In `error` (its VILLASnode does not answer) the table refuses it
    // first; from `idle` the manager does (code 6).
    assert_eq!(refused.state().as_deref(), Some("error"));
    let kind = refused.error_kind().unwrap();
    assert!(
        kind == "invalid-transition" || kind == "unsupported-action",
        "{kind}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autostart_runs_villas_node_and_sigterm_ends_it() {
    let mut lab = lab(true).await;
    let gateway = node_uuid(SUPER_NODE, "udp_1");
    let manager = lab.manager.clone();
    let running = lab.client.wait_state(&manager, "running").await.unwrap();
    let pid = running.body["status"]["pid"].as_i64().unwrap();
    lab.client.wait_state(&gateway, "running").await.unwrap();
    lab.daemon.signal("TERM");
    assert_eq!(lab.daemon.wait_exit(), Some(0));
    wait_proc(pid, |s| s.is_none() || s == Some('Z')).await;
}
