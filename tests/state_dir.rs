//! Black-box tests of the state directory with the real daemon and broker:
//! components created over the bus come back after a SIGKILL with the same
//! uuid, manager and data directory; deleted ones do not; a torn temporary
//! file is ignored; the daemon's uuid is stored; a configured uuid that
//! clashes with a stored one stops the start-up with exit code 78; two
//! daemons cannot share one state directory.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// `config` with `state_dir` (and extra top-level YAML) prepended.
fn with_state(state: &Path, extra: &str, config: &str) -> String {
    format!("state_dir: {}\n{extra}{config}", state.display())
}

fn create(uuid: &str, category: &str, kind: &str) -> Value {
    json!({"action": "create", "parameters": {"name": format!("{kind} {uuid}"), "category": category,
           "type": kind, "uuid": uuid, "transition_delay": 0.05}})
}

fn component_dir(state: &Path, uuid: &str) -> PathBuf {
    state.join("components").join(uuid)
}

/// The uuids a manager's status lists under `components`.
fn listed(seen: &Received) -> Vec<String> {
    seen.body["status"]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_owned())
        .collect()
}

/// Waits until every status `uuids` published so far was received, then
/// forgets them all (so that a restarted daemon's statuses are not
/// confused with the last one's).
async fn settle(client: &mut Client, uuids: &[&String]) {
    let uuids: Vec<String> = uuids.iter().map(|u| (*u).clone()).collect();
    client.barrier(&uuids).await;
    client.backlog.clear();
}

/// Pings `uuid` and returns its answer.
async fn ping(client: &mut Client, uuid: &str) -> Received {
    client.act(uuid, &json!({"action": "ping"})).await.unwrap();
    let u = uuid.to_owned();
    client
        .wait_for(&format!("ping answer of {uuid}"), move |s| {
            s.uuid().as_deref() == Some(&u)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn created_components_survive_sigkill_and_deleted_ones_do_not_come_back() {
    let state = tempfile::tempdir().unwrap();
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let (m, configured) = (new_uuid(), new_uuid());
    let cfg = with_state(
        state.path(),
        "",
        &config(&exchange, &m, &dummy(&configured, None, "Configured")),
    );
    let mut daemon = Daemon::start(&cfg);
    client.wait_state(&configured, "idle").await.unwrap();

    // A dummy under the daemon's manager, a manager, a dummy under that.
    let (sim, sub, nested) = (new_uuid(), new_uuid(), new_uuid());
    client
        .act(&m, &create(&sim, "simulator", "dummy"))
        .await
        .unwrap();
    client.wait_state(&sim, "idle").await.unwrap();
    client
        .act(&m, &create(&sub, "manager", "generic"))
        .await
        .unwrap();
    client.wait_state(&sub, "idle").await.unwrap();
    client
        .act(&sub, &create(&nested, "simulator", "dummy"))
        .await
        .unwrap();
    client.wait_state(&nested, "idle").await.unwrap();
    // The running state is not what is restored: the definition is.
    client.act(&sim, &json!({"action": "start"})).await.unwrap();
    client.wait_state(&sim, "running").await.unwrap();

    // Every component has a data directory; only created ones a definition.
    for uuid in [&m, &configured, &sim, &sub, &nested] {
        assert!(
            component_dir(state.path(), uuid).join("data").is_dir(),
            "{uuid}"
        );
    }
    for uuid in [&m, &configured] {
        assert!(!component_dir(state.path(), uuid)
            .join("component.json")
            .exists());
    }
    let data = component_dir(state.path(), &sim).join("data");
    std::fs::write(data.join("result.csv"), "1,2\n").unwrap();
    // What a SIGKILL in the middle of writing a definition leaves behind.
    let torn = new_uuid();
    std::fs::create_dir_all(component_dir(state.path(), &torn)).unwrap();
    let torn_file = component_dir(state.path(), &torn).join("component.json.tmp");
    std::fs::write(&torn_file, br#"{"managed_by": "#).unwrap();

    settle(&mut client, &[&m, &configured, &sim, &sub, &nested]).await;
    daemon.signal("KILL");
    assert_eq!(daemon.wait_exit(), None, "killed by a signal");
    let stored_uuid = std::fs::read_to_string(state.path().join("uuid")).unwrap();
    assert_eq!(stored_uuid.trim(), m);

    let mut daemon = Daemon::start(&cfg);
    daemon.wait_log("restored=3");
    for (uuid, manager) in [(&sim, &m), (&sub, &m), (&nested, &sub), (&configured, &m)] {
        let seen = ping(&mut client, uuid).await;
        assert_eq!(seen.state().as_deref(), Some("idle"), "{uuid}");
        assert_eq!(
            seen.body["status"]["managed_by"],
            manager.as_str(),
            "{uuid}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(data.join("result.csv")).unwrap(),
        "1,2\n"
    );
    assert!(!torn_file.exists(), "the torn temporary file is removed");
    let seen = ping(&mut client, &m).await;
    assert_eq!(
        listed(&seen),
        [configured.clone(), sim.clone(), sub.clone()]
    );
    // Restored components are controllable.
    client
        .act(&nested, &json!({"action": "start"}))
        .await
        .unwrap();
    client.wait_state(&nested, "running").await.unwrap();

    // Deleting the sub-manager deletes what it manages too.
    client
        .act(
            &m,
            &json!({"action": "delete", "parameters": {"uuid": sub}}),
        )
        .await
        .unwrap();
    client.wait_state(&sub, "gone").await.unwrap();
    client.wait_state(&nested, "gone").await.unwrap();
    client
        .act(
            &m,
            &json!({"action": "delete", "parameters": {"uuid": sim}}),
        )
        .await
        .unwrap();
    client.wait_state(&sim, "gone").await.unwrap();
    for uuid in [&sim, &sub, &nested] {
        assert!(!component_dir(state.path(), uuid)
            .join("component.json")
            .exists());
    }
    settle(&mut client, &[&m, &configured]).await;
    daemon.signal("KILL");
    daemon.wait_exit();

    let mut daemon = Daemon::start(&cfg);
    daemon.wait_log("restored=0");
    let seen = ping(&mut client, &m).await;
    assert_eq!(listed(&seen), std::slice::from_ref(&configured));
    // The deleted ones do not answer (the barrier proves the pings were
    // handled before it).
    for uuid in [&sim, &sub, &nested] {
        client.act(uuid, &json!({"action": "ping"})).await.unwrap();
    }
    let before = client.barrier(&[m.clone(), configured.clone()]).await;
    let answered: Vec<String> = client
        .backlog
        .iter()
        .chain(before.values().flatten())
        .filter_map(Received::uuid)
        .filter(|u| [&sim, &sub, &nested].contains(&u))
        .collect();
    assert!(
        answered.is_empty(),
        "deleted components answered: {answered:?}"
    );
    // Data is kept by default (state.delete_data = false).
    assert_eq!(
        std::fs::read_to_string(data.join("result.csv")).unwrap(),
        "1,2\n"
    );
    drop(daemon);
    client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn delete_data_removes_the_data_directory() {
    let state = tempfile::tempdir().unwrap();
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let m = new_uuid();
    let cfg = with_state(
        state.path(),
        "state:\n  delete_data: true\n",
        &config(&exchange, &m, "  []\n"),
    );
    let mut daemon = Daemon::start(&cfg);
    client.wait_state(&m, "idle").await.unwrap();
    let sim = new_uuid();
    client
        .act(&m, &create(&sim, "simulator", "dummy"))
        .await
        .unwrap();
    client.wait_state(&sim, "idle").await.unwrap();
    let dir = component_dir(state.path(), &sim);
    assert!(dir.join("data").is_dir() && dir.join("component.json").is_file());
    client
        .act(
            &m,
            &json!({"action": "delete", "parameters": {"uuid": sim}}),
        )
        .await
        .unwrap();
    client.wait_state(&sim, "gone").await.unwrap();
    assert!(!dir.exists());

    // A graceful stop keeps the definitions: the other one comes back.
    let kept = new_uuid();
    client
        .act(&m, &create(&kept, "simulator", "dummy"))
        .await
        .unwrap();
    client.wait_state(&kept, "idle").await.unwrap();
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
    client.backlog.clear();
    let _daemon = Daemon::start(&cfg);
    let seen = client.wait_state(&kept, "idle").await.unwrap();
    assert_eq!(seen.body["status"]["managed_by"], m.as_str());
    client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn a_configured_uuid_that_is_stored_too_stops_the_start_up() {
    let state = tempfile::tempdir().unwrap();
    let (m, clash) = (new_uuid(), new_uuid());
    let dir = component_dir(state.path(), &clash);
    std::fs::create_dir_all(&dir).unwrap();
    let definition = json!({"managed_by": m, "created": 1.0,
        "properties": {"category": "simulator", "type": "dummy", "uuid": clash}});
    std::fs::write(dir.join("component.json"), definition.to_string()).unwrap();
    let cfg = with_state(
        state.path(),
        "",
        &config(&test_exchange(), &m, &dummy(&clash, None, "Clash")),
    );
    let mut daemon = Daemon::start(&cfg);
    let line = daemon.wait_log("daemon failed");
    assert!(line.contains(&clash), "{line}");
    assert!(line.contains("created over the bus"), "{line}");
    assert_eq!(daemon.wait_exit(), Some(78));
}

#[tokio::test]
async fn the_daemon_uuid_is_stored_and_one_daemon_owns_a_state_directory() {
    let state = tempfile::tempdir().unwrap();
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    // A stored uuid is the daemon's when the configuration names none.
    let stored = new_uuid();
    std::fs::write(state.path().join("uuid"), format!("{stored}\n")).unwrap();
    let without_uuid = with_state(
        state.path(),
        "",
        &config(&exchange, "X", "  []\n").replace("uuid: X\n", ""),
    );
    let mut daemon = Daemon::start(&without_uuid);
    let seen = client.wait_state(&stored, "idle").await.unwrap();
    assert_eq!(seen.body["properties"]["category"], "manager");

    // A second daemon on the same state directory is refused.
    let mut second = Daemon::start(&without_uuid);
    let line = second.wait_log("daemon failed");
    assert!(line.contains("in use by another"), "{line}");
    assert_eq!(second.wait_exit(), Some(1));
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));

    // A configured uuid is stored, and used when the configuration no
    // longer names one.
    let configured = new_uuid();
    let mut daemon = Daemon::start(&with_state(
        state.path(),
        "",
        &config(&exchange, &configured, "  []\n"),
    ));
    client.wait_state(&configured, "idle").await.unwrap();
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
    assert_eq!(
        std::fs::read_to_string(state.path().join("uuid"))
            .unwrap()
            .trim(),
        configured
    );
    let _daemon = Daemon::start(&without_uuid);
    client.wait_state(&configured, "idle").await.unwrap();
    client.close_and_delete_exchange().await.unwrap();
}
