//! Supervision, black-box: the real daemon on the real broker, faults
//! injected through the `dummy` kind's chaos-testing `start` parameter and
//! the chaos-testing `create` of a generic manager configured for it. Each
//! test asserts the published state sequence, that the daemon stays up
//! (except on escalation, which must exit non-zero) and that another IC
//! still answers `ping`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;

/// A dummy entry with extra YAML properties (indented two spaces).
fn dummy_with(uuid: &str, name: &str, extra: &str) -> String {
    format!("{}{extra}", dummy(uuid, None, name))
}

const FAST_BACKOFF: &str = "  restart_backoff: {initial: 0.02, max: 0.05, jitter: 0.2}\n";

/// The other IC still answers `ping`.
async fn still_answers(client: &mut Client, uuid: &str) {
    client.act(uuid, &json!({"action": "ping"})).await.unwrap();
    client.wait_state(uuid, "idle").await.unwrap();
}

#[tokio::test]
async fn a_panicking_kind_goes_to_error_then_its_supervisor_resets_it() {
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let (manager, sim, other) = (new_uuid(), new_uuid(), new_uuid());
    let components = [
        dummy_with(&sim, "Chaos", FAST_BACKOFF),
        dummy(&other, None, "Other"),
    ]
    .concat();
    let mut daemon = Daemon::start(&config(&exchange, &manager, &components));
    client.wait_state(&sim, "idle").await.unwrap();
    client
        .act(
            &sim,
            &json!({"action": "start", "parameters": {"chaos": "panic"}}),
        )
        .await
        .unwrap();
    let states = client.states_until(&sim, "idle").await.unwrap();
    assert_eq!(
        states,
        ["starting", "running", "error", "resetting", "idle"]
    );
    daemon.wait_log("restarting component through reset");
    // Default policy `never`: it waits in idle for the operator; it is
    // controllable and the rest of the lab is untouched.
    client
        .act(&sim, &json!({"action": "start", "parameters": {}}))
        .await
        .unwrap();
    client.wait_state(&sim, "running").await.unwrap();
    still_answers(&mut client, &other).await;
    assert!(daemon.child.try_wait().unwrap().is_none(), "daemon exited");
    client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn the_crash_reason_is_published_in_the_error_object() {
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let (manager, sim) = (new_uuid(), new_uuid());
    let _daemon = Daemon::start(&config(
        &exchange,
        &manager,
        &dummy_with(&sim, "Chaos", FAST_BACKOFF),
    ));
    client.wait_state(&sim, "idle").await.unwrap();
    client
        .act(
            &sim,
            &json!({"action": "start", "parameters": {"chaos": "panic"}}),
        )
        .await
        .unwrap();
    let error = client.wait_state(&sim, "error").await.unwrap();
    assert_eq!(error.error_kind().as_deref(), Some("crashed"));
    let message = error.body["status"]["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("chaos: the dummy simulation crashed"),
        "{message}"
    );
    client.wait_state(&sim, "resetting").await.unwrap();
    client.wait_state(&sim, "idle").await.unwrap();
    client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn a_restart_storm_spends_the_budget_and_an_operator_reset_clears_it() {
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let (manager, sim, other) = (new_uuid(), new_uuid(), new_uuid());
    let policy = format!(
        "  restart: on-failure\n  restart_budget: {{max_restarts: 2, window: 600}}\n{FAST_BACKOFF}"
    );
    let components = [
        dummy_with(&sim, "Storm", &policy),
        dummy(&other, None, "Other"),
    ]
    .concat();
    let mut daemon = Daemon::start(&config(&exchange, &manager, &components));
    client.wait_state(&sim, "idle").await.unwrap();
    client
        .act(
            &sim,
            &json!({"action": "start", "parameters": {"chaos": "fail"}}),
        )
        .await
        .unwrap();
    // on-failure re-issues the failing start: two restarts, then the
    // budget is spent and the component stays in error.
    let spent = client
        .wait_error(&sim, "restart-budget-spent")
        .await
        .unwrap();
    assert_eq!(spent.state().as_deref(), Some("error"));
    let mut states: Vec<String> = client
        .backlog
        .iter()
        .filter(|s| s.uuid().as_deref() == Some(&sim))
        .filter_map(Received::state)
        .collect();
    states.dedup();
    assert_eq!(
        states,
        [
            "starting",
            "running",
            "error",
            "resetting",
            "idle",
            "starting",
            "running",
            "error",
            "resetting",
            "idle",
            "starting",
            "running",
            "error"
        ]
    );
    let message = spent.body["status"]["error"]["message"].as_str().unwrap();
    assert!(message.contains("restart budget spent"), "{message}");
    assert_eq!(spent.body["status"]["restarts"], 2);
    daemon.wait_log("restart budget spent");
    still_answers(&mut client, &other).await;
    // Nothing restarts it any more: the barrier sees no further status.
    client.backlog.clear();
    let before = client.barrier(std::slice::from_ref(&sim)).await;
    assert!(before.get(&sim).is_none_or(Vec::is_empty), "{before:?}");
    // An operator reset clears the budget; a good start runs.
    client.act(&sim, &json!({"action": "reset"})).await.unwrap();
    client.wait_state(&sim, "idle").await.unwrap();
    client
        .act(&sim, &json!({"action": "start", "parameters": {}}))
        .await
        .unwrap();
    client.wait_state(&sim, "running").await.unwrap();
    // And a new failure is restarted again (the budget starts over).
    client.act(&sim, &json!({"action": "stop"})).await.unwrap();
    client.wait_state(&sim, "idle").await.unwrap();
    client
        .act(
            &sim,
            &json!({"action": "start", "parameters": {"chaos": "fail"}}),
        )
        .await
        .unwrap();
    client.wait_state(&sim, "error").await.unwrap();
    client.wait_state(&sim, "resetting").await.unwrap();
    assert!(daemon.child.try_wait().unwrap().is_none(), "daemon exited");
    client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn policy_always_starts_a_finished_run_again() {
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let (manager, sim) = (new_uuid(), new_uuid());
    let policy = format!("  restart: always\n{FAST_BACKOFF}");
    let _daemon = Daemon::start(&config(
        &exchange,
        &manager,
        &dummy_with(&sim, "Always", &policy),
    ));
    client.wait_state(&sim, "idle").await.unwrap();
    client
        .act(
            &sim,
            &json!({"action": "start", "parameters": {"runtime": 0.5}}),
        )
        .await
        .unwrap();
    let states = client.states_until(&sim, "idle").await.unwrap();
    assert_eq!(states, ["starting", "running", "stopping", "idle"]);
    // The finished run is started again through the reset path.
    let again = client.states_until(&sim, "running").await.unwrap();
    assert_eq!(again, ["resetting", "idle", "starting", "running"]);
    // An operator stop is final.
    client.act(&sim, &json!({"action": "stop"})).await.unwrap();
    client.wait_state(&sim, "idle").await.unwrap();
    let before = client.barrier(std::slice::from_ref(&sim)).await;
    let later: Vec<String> = before
        .get(&sim)
        .into_iter()
        .flatten()
        .filter_map(Received::state)
        .filter(|s| s == "starting" || s == "resetting")
        .collect();
    assert!(
        later.is_empty(),
        "restarted after an operator stop: {later:?}"
    );
    client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn invalid_restart_settings_are_a_configuration_error() {
    let exchange = test_exchange();
    let (manager, sim) = (new_uuid(), new_uuid());
    let mut daemon = Daemon::start(&config(
        &exchange,
        &manager,
        &dummy_with(&sim, "Bad", "  restart: sometimes\n"),
    ));
    assert_eq!(daemon.wait_exit(), Some(78));
    daemon.wait_log("restart");
}

#[tokio::test]
async fn a_created_component_with_a_bad_restart_policy_is_refused() {
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let manager = new_uuid();
    let _daemon = Daemon::start(&config(&exchange, &manager, "  []\n"));
    client.wait_state(&manager, "idle").await.unwrap();
    client
        .act(
            &manager,
            &json!({"action": "create", "parameters": {
                "name": "x", "category": "simulator", "type": "dummy", "restart": 7
            }}),
        )
        .await
        .unwrap();
    let refused = client
        .wait_error(&manager, "invalid-parameters")
        .await
        .unwrap();
    assert_eq!(refused.state().as_deref(), Some("idle"));
    client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn a_manager_that_spends_its_budget_escalates_and_the_daemon_exits_non_zero() {
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let manager = new_uuid();
    let yaml = format!(
        "uuid: {manager}\nbroker:\n  url: {url}\n  exchange: {exchange}\napi:\n  enabled: false\nstatus:\n  heartbeat_interval: 3600\ncomponents:\n- category: manager\n  type: generic\n  uuid: {manager}\n  chaos: true\n  restart_budget: {{max_restarts: 1, window: 600}}\n{FAST_BACKOFF}",
        url = amqp_url()
    );
    let mut daemon = Daemon::start(&yaml);
    client.wait_state(&manager, "idle").await.unwrap();
    let crash = json!({"action": "create", "parameters": {
        "name": "x", "category": "simulator", "type": "dummy", "chaos": "panic"
    }});
    client.act(&manager, &crash).await.unwrap();
    let error = client.wait_state(&manager, "error").await.unwrap();
    assert_eq!(error.error_kind().as_deref(), Some("crashed"));
    // The root resets the manager (one restart in the budget).
    client.wait_state(&manager, "resetting").await.unwrap();
    client.wait_state(&manager, "idle").await.unwrap();
    // The second crash spends the manager's budget: escalation.
    client.act(&manager, &crash).await.unwrap();
    client.wait_state(&manager, "error").await.unwrap();
    assert_eq!(daemon.wait_exit(), Some(70));
    daemon.wait_log("supervision escalated to the root");
    // It stopped in order: the manager's final state was published.
    client.wait_state(&manager, "shutdown").await.unwrap();
    client.close_and_delete_exchange().await.unwrap();
}
