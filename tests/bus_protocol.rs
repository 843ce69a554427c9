//! Black-box tests of the daemon binary over the real RabbitMQ: discovery,
//! the dummy lifecycle, refusals, schema violations, manager create and
//! delete, malformed input, `when`, and the graceful stop.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::*;
use serde_json::json;
use std::collections::HashSet;

struct Lab {
    daemon: Daemon,
    client: Client,
    manager: String,
    /// a, b: realm r1; c: realm r2; d: no realm.
    sims: Vec<String>,
    realm1: String,
    realm2: String,
}

impl Lab {
    fn all(&self) -> Vec<String> {
        let mut all = self.sims.clone();
        all.push(self.manager.clone());
        all
    }
}

/// A daemon with its manager and one dummy, its YAML config edited by
/// `edit`; returns once the dummy's start-up status was seen.
async fn one_dummy(edit: impl Fn(String) -> String) -> (Client, Daemon, String, String) {
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let (manager, sim) = (new_uuid(), new_uuid());
    let daemon = Daemon::start(&edit(config(
        &exchange,
        &manager,
        &dummy(&sim, None, "One"),
    )));
    client.wait_state(&sim, "idle").await.unwrap();
    (client, daemon, manager, sim)
}

async fn lab() -> Lab {
    let exchange = test_exchange();
    let client = connect(&exchange).await;
    let manager = new_uuid();
    let sims: Vec<String> = (0..4).map(|_| new_uuid()).collect();
    let realm1 = format!("r1.{}", new_uuid());
    let realm2 = format!("r2.{}", new_uuid());
    let components = [
        dummy(&sims[0], Some(&realm1), "A"),
        dummy(&sims[1], Some(&realm1), "B"),
        dummy(&sims[2], Some(&realm2), "C"),
        dummy(&sims[3], None, "D"),
    ]
    .concat();
    let daemon = Daemon::start(&config(&exchange, &manager, &components));
    let mut lab = Lab {
        daemon,
        client,
        manager,
        sims,
        realm1,
        realm2,
    };
    // Every component publishes a status at start-up.
    for uuid in lab.all() {
        lab.client.wait_state(&uuid, "idle").await.unwrap();
    }
    lab
}

/// Sends a ping with `headers`, and returns how many statuses each
/// component published in answer (exactly, thanks to the barrier).
async fn ping_counts(lab: &mut Lab, headers: &[(&str, &str)]) -> Vec<(String, usize)> {
    lab.client
        .publish_raw(
            string_table(headers.iter().copied()),
            br#"{"action":"ping"}"#,
        )
        .await
        .unwrap();
    let before = lab.client.barrier(&lab.all()).await;
    let mut counts: Vec<(String, usize)> = before.into_iter().map(|(u, s)| (u, s.len())).collect();
    counts.sort();
    counts
}

/// The uuids in a JSON array of strings (panics on anything else).
fn uuids(list: &serde_json::Value) -> HashSet<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list of uuids: {list}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn expect(uuids: &[&String]) -> Vec<(String, usize)> {
    let mut v: Vec<(String, usize)> = uuids.iter().map(|u| ((*u).clone(), 1)).collect();
    v.sort();
    v
}

#[tokio::test]
async fn discovery_by_each_header_reaches_the_right_set_once() {
    let mut lab = lab().await;
    let (a, b, c, d, m) = (
        lab.sims[0].clone(),
        lab.sims[1].clone(),
        lab.sims[2].clone(),
        lab.sims[3].clone(),
        lab.manager.clone(),
    );
    assert_eq!(ping_counts(&mut lab, &[("uuid", &a)]).await, expect(&[&a]));
    let r1 = lab.realm1.clone();
    assert_eq!(
        ping_counts(&mut lab, &[("realm", &r1)]).await,
        expect(&[&a, &b])
    );
    assert_eq!(
        ping_counts(&mut lab, &[("category", "simulator")]).await,
        expect(&[&a, &b, &c, &d])
    );
    assert_eq!(
        ping_counts(&mut lab, &[("type", "generic")]).await,
        expect(&[&m])
    );
    assert_eq!(
        ping_counts(&mut lab, &[("category", "manager")]).await,
        expect(&[&m])
    );
    // x-match any: several headers, each component answers once.
    let r2 = lab.realm2.clone();
    assert_eq!(
        ping_counts(&mut lab, &[("realm", &r1), ("type", "dummy"), ("uuid", &a)]).await,
        expect(&[&a, &b, &c, &d])
    );
    assert_eq!(
        ping_counts(&mut lab, &[("realm", &r2), ("uuid", &m)]).await,
        expect(&[&c, &m])
    );
    // uuid "" (VILLASweb's start-up ping) addresses everyone.
    assert_eq!(
        ping_counts(&mut lab, &[("uuid", "")]).await,
        expect(&[&a, &b, &c, &d, &m])
    );
    // No matching header, or none at all: nobody.
    assert_eq!(ping_counts(&mut lab, &[("realm", "nowhere")]).await, vec![]);
    assert_eq!(ping_counts(&mut lab, &[]).await, vec![]);
    lab.client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn statuses_carry_what_villasweb_parses() {
    let mut lab = lab().await;
    let (a, m) = (lab.sims[0].clone(), lab.manager.clone());
    lab.client
        .act(&a, &json!({"action": "ping"}))
        .await
        .unwrap();
    let seen = lab.client.wait_state(&a, "idle").await.unwrap();
    let body = &seen.body;
    for key in ["state", "version", "uptime", "managed_by", "host", "kernel"] {
        assert!(
            body["status"].get(key).is_some(),
            "status.{key} missing in {body}"
        );
    }
    for key in [
        "uuid",
        "name",
        "description",
        "location",
        "owner",
        "ws_url",
        "api_url",
        "category",
        "type",
        "realm",
    ] {
        assert!(
            body["properties"].get(key).is_some(),
            "properties.{key} missing"
        );
    }
    assert!(body["schema"]["start"].is_object());
    assert!(body["when"].as_f64().unwrap() > 1.6e9);
    assert_eq!(body["status"]["managed_by"], m.as_str());
    // Published with the component's four headers.
    assert_eq!(seen.headers.uuid.as_ref(), Some(&a));
    assert_eq!(seen.headers.realm.as_ref(), Some(&lab.realm1));
    assert_eq!(seen.headers.category.as_deref(), Some("simulator"));
    assert_eq!(seen.headers.type_name.as_deref(), Some("dummy"));
    // A component without a realm publishes no realm header at all.
    let d = lab.sims[3].clone();
    lab.client
        .act(&d, &json!({"action": "ping"}))
        .await
        .unwrap();
    let realmless = lab.client.wait_state(&d, "idle").await.unwrap();
    assert_eq!(realmless.headers.realm, None);
    assert_eq!(realmless.headers.uuid.as_ref(), Some(&d));

    // The root manager manages itself (a valid uuid for VILLASweb), lists its
    // components and publishes the create schema.
    lab.client
        .act(&m, &json!({"action": "ping"}))
        .await
        .unwrap();
    let manager = lab.client.wait_state(&m, "idle").await.unwrap().body;
    assert_eq!(manager["status"]["managed_by"], m.as_str());
    let listed: HashSet<String> = manager["status"]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, lab.sims.iter().cloned().collect());
    // ... and at the top level of the message too, where the reference
    // puts them (a simulator has no such list).
    assert_eq!(uuids(&manager["components"]), listed);
    assert!(body.get("components").is_none());
    assert!(manager["schema"]["create"].is_object());
    lab.client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn dummy_lifecycle_publishes_the_exact_state_sequence() {
    let mut lab = lab().await;
    let a = lab.sims[0].clone();
    let c = &mut lab.client;
    c.act(&a, &json!({"action": "start"})).await.unwrap();
    assert_eq!(
        c.states_until(&a, "running").await.unwrap(),
        ["starting", "running"]
    );
    c.act(&a, &json!({"action": "pause"})).await.unwrap();
    assert_eq!(
        c.states_until(&a, "paused").await.unwrap(),
        ["pausing", "paused"]
    );
    c.act(&a, &json!({"action": "resume"})).await.unwrap();
    assert_eq!(
        c.states_until(&a, "running").await.unwrap(),
        ["resuming", "running"]
    );
    c.act(&a, &json!({"action": "stop"})).await.unwrap();
    assert_eq!(
        c.states_until(&a, "idle").await.unwrap(),
        ["stopping", "idle"]
    );
    c.act(&a, &json!({"action": "shutdown"})).await.unwrap();
    assert_eq!(
        c.states_until(&a, "shutdown").await.unwrap(),
        ["shuttingdown", "shutdown"]
    );
    c.act(
        &a,
        &json!({"action": "start", "parameters": {"runtime": 0.1}}),
    )
    .await
    .unwrap();
    // A finite run ends by itself.
    assert_eq!(
        c.states_until(&a, "idle").await.unwrap(),
        ["starting", "running", "stopping", "idle"]
    );
    c.act(&a, &json!({"action": "start"})).await.unwrap();
    assert_eq!(
        c.states_until(&a, "running").await.unwrap(),
        ["starting", "running"]
    );
    c.act(&a, &json!({"action": "reset"})).await.unwrap();
    assert_eq!(
        c.states_until(&a, "idle").await.unwrap(),
        ["resetting", "idle"]
    );
    lab.client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn invalid_transitions_are_refused_and_the_state_is_kept() {
    let mut lab = lab().await;
    let a = lab.sims[0].clone();
    let c = &mut lab.client;
    for action in ["stop", "pause", "resume"] {
        c.act(&a, &json!({"action": action})).await.unwrap();
        let refused = c.wait_error(&a, "invalid-transition").await.unwrap();
        assert_eq!(refused.state().as_deref(), Some("idle"), "{action}");
        assert_eq!(refused.body["status"]["error"]["action"], action);
        assert!(refused.body["status"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("idle"));
        assert_eq!(
            refused.body["status"]["error"]["msg"],
            refused.body["status"]["error"]["message"]
        );
    }
    c.act(&a, &json!({"action": "start"})).await.unwrap();
    assert_eq!(
        c.states_until(&a, "running").await.unwrap(),
        ["starting", "running"]
    );
    c.act(&a, &json!({"action": "start"})).await.unwrap();
    assert_eq!(
        c.wait_error(&a, "invalid-transition")
            .await
            .unwrap()
            .state()
            .as_deref(),
        Some("running")
    );
    // The manager refuses control actions it does not support.
    let m = lab.manager.clone();
    lab.client
        .act(&m, &json!({"action": "start"}))
        .await
        .unwrap();
    assert_eq!(
        lab.client
            .wait_error(&m, "unsupported-action")
            .await
            .unwrap()
            .state()
            .as_deref(),
        Some("idle")
    );
    lab.client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn schema_violation_is_an_error_and_reset_recovers() {
    let mut lab = lab().await;
    let a = lab.sims[0].clone();
    let c = &mut lab.client;
    c.act(
        &a,
        &json!({"action": "start", "parameters": {"runtime": "long"}}),
    )
    .await
    .unwrap();
    let error = c.wait_state(&a, "error").await.unwrap();
    assert_eq!(error.error_kind().as_deref(), Some("invalid-parameters"));
    assert_eq!(error.body["status"]["error"]["path"], "/runtime");
    assert_eq!(error.body["status"]["error"]["code"], 5);
    // Only reset leaves error.
    c.act(&a, &json!({"action": "start"})).await.unwrap();
    assert_eq!(
        c.wait_error(&a, "invalid-transition")
            .await
            .unwrap()
            .state()
            .as_deref(),
        Some("error")
    );
    c.act(&a, &json!({"action": "reset"})).await.unwrap();
    assert_eq!(
        c.states_until(&a, "idle").await.unwrap(),
        ["resetting", "idle"]
    );
    c.act(
        &a,
        &json!({"action": "start", "parameters": {"runtime": -1}}),
    )
    .await
    .unwrap();
    assert_eq!(
        c.wait_state(&a, "error")
            .await
            .unwrap()
            .error_kind()
            .as_deref(),
        Some("invalid-parameters")
    );
    lab.client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn manager_creates_and_deletes_components() {
    let mut lab = lab().await;
    let m = lab.manager.clone();
    let a = lab.sims[0].clone();
    let created = new_uuid();
    let c = &mut lab.client;
    let create = |uuid: Option<&str>| {
        json!({"action": "create", "parameters": {"name": "New", "category": "simulator", "type": "dummy",
               "location": "here", "owner": "me", "realm": "x", "ws_url": "", "api_url": "",
               "uuid": uuid, "properties": {"transition_delay": 0.05}}})
    };
    c.act(&m, &create(Some(&created))).await.unwrap();
    let status = c.wait_state(&created, "idle").await.unwrap();
    assert_eq!(status.body["status"]["managed_by"], m.as_str());
    assert_eq!(status.body["properties"]["transition_delay"], 0.05);
    let listing = c
        .wait_for("manager lists it", |s| {
            s.uuid().as_deref() == Some(&m)
                && s.body["status"]["components"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|u| u == created.as_str())
        })
        .await
        .unwrap();
    assert_eq!(listing.state().as_deref(), Some("idle"));
    // The new component is controllable.
    c.act(&created, &json!({"action": "start"})).await.unwrap();
    assert_eq!(
        c.states_until(&created, "running").await.unwrap(),
        ["starting", "running"]
    );

    // Duplicate uuid: refused, visibly, manager state kept.
    c.act(&m, &create(Some(&created))).await.unwrap();
    assert_eq!(
        c.wait_error(&m, "duplicate-uuid")
            .await
            .unwrap()
            .state()
            .as_deref(),
        Some("idle")
    );
    c.act(&m, &create(Some(&a))).await.unwrap();
    c.wait_error(&m, "duplicate-uuid").await.unwrap();
    // Missing category: schema refusal.
    c.act(
        &m,
        &json!({"action": "create", "parameters": {"name": "x", "type": "dummy"}}),
    )
    .await
    .unwrap();
    c.wait_error(&m, "invalid-parameters").await.unwrap();
    // Unknown kind.
    c.act(&m, &json!({"action": "create", "parameters": {"name": "x", "category": "simulator", "type": "no-such-kind"}})).await.unwrap();
    c.wait_error(&m, "unsupported-action").await.unwrap();
    // Without uuid: one is generated.
    c.act(&m, &create(None)).await.unwrap();
    let generated = c
        .wait_for("generated component", |s| {
            s.body["status"]["managed_by"] == m.as_str()
                && s.body["properties"]["name"] == "New"
                && s.uuid().as_deref() != Some(&created)
        })
        .await
        .unwrap();
    assert!(uuid::Uuid::parse_str(&generated.uuid().unwrap()).is_ok());

    // Delete: gone once, it stops answering, the manager no longer lists it.
    c.act(
        &m,
        &json!({"action": "delete", "parameters": {"uuid": created}}),
    )
    .await
    .unwrap();
    c.wait_state(&created, "gone").await.unwrap();
    c.wait_for("manager unlists it", |s| {
        s.uuid().as_deref() == Some(&m)
            && !s.body["status"]["components"]
                .as_array()
                .unwrap()
                .iter()
                .any(|u| u == created.as_str())
    })
    .await
    .unwrap();
    let mut everyone = lab.all();
    everyone.push(generated.uuid().unwrap());
    let c = &mut lab.client;
    c.act(&created, &json!({"action": "ping"})).await.unwrap();
    let before = c.barrier(&everyone).await;
    let gone_count = c
        .backlog
        .iter()
        .chain(before.values().flatten())
        .filter(|s| s.uuid().as_deref() == Some(&created))
        .count();
    assert_eq!(gone_count, 0, "a deleted component must not answer");
    // Delete of an unknown or malformed uuid, and of an already deleted one.
    for uuid in [
        created.as_str(),
        "00000000-0000-4000-8000-000000000000",
        "not-a-uuid",
    ] {
        c.act(
            &m,
            &json!({"action": "delete", "parameters": {"uuid": uuid}}),
        )
        .await
        .unwrap();
        c.wait_error(&m, "unknown-component").await.unwrap();
    }
    c.act(&m, &json!({"action": "delete", "parameters": {}}))
        .await
        .unwrap();
    c.wait_error(&m, "invalid-parameters").await.unwrap();
    // create/delete to a simulator: refused visibly.
    c.act(&a, &create(None)).await.unwrap();
    assert_eq!(
        c.wait_error(&a, "unsupported-action")
            .await
            .unwrap()
            .state()
            .as_deref(),
        Some("idle")
    );
    c.act(&a, &json!({"action": "delete", "parameters": {"uuid": a}}))
        .await
        .unwrap();
    c.wait_error(&a, "unsupported-action").await.unwrap();
    lab.client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn deleting_a_running_component_stops_its_timers_and_publishes_gone_once() {
    let mut lab = lab().await;
    let m = lab.manager.clone();
    let created = new_uuid();
    let c = &mut lab.client;
    c.act(&m, &json!({"action": "create", "parameters": {"name": "R", "category": "simulator", "type": "dummy", "uuid": created, "transition_delay": 0.2}})).await.unwrap();
    c.wait_state(&created, "idle").await.unwrap();
    c.act(
        &created,
        &json!({"action": "start", "parameters": {"runtime": 0.1}}),
    )
    .await
    .unwrap();
    c.wait_state(&created, "starting").await.unwrap();
    // Deleted while its timer to `running` is pending.
    c.act(
        &m,
        &json!({"action": "delete", "parameters": {"uuid": created}}),
    )
    .await
    .unwrap();
    c.wait_state(&created, "gone").await.unwrap();
    // Anything it would still publish would come before a status published
    // after the timers' horizon; wait for such a status from the same
    // process (the manager, pinged after a scheduled `when`).
    let later = villas_sdk::protocol::unix_now() + 0.6;
    c.act(&m, &json!({"action": "ping", "when": later}))
        .await
        .unwrap();
    c.wait_for("deferred manager ping", |s| {
        s.uuid().as_deref() == Some(&m) && s.body["when"].as_f64().unwrap() >= later
    })
    .await
    .unwrap();
    let after: Vec<_> = c
        .backlog
        .iter()
        .filter(|s| s.uuid().as_deref() == Some(&created))
        .map(|s| s.state())
        .collect();
    assert!(after.is_empty(), "published after gone: {after:?}");
    lab.client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn malformed_messages_are_refused_and_everything_stays_controllable() {
    let mut lab = lab().await;
    let a = lab.sims[0].clone();
    let c = &mut lab.client;
    let cases: Vec<(&[u8], &str)> = vec![
        (b"not json", "malformed-message"),
        (&[0xff, 0xfe, 0x00], "malformed-message"),
        (b"[1,2,3]", "malformed-message"),
        (b"\"ping\"", "malformed-message"),
        (br#"{"action": 5}"#, "malformed-message"),
        (
            br#"{"action": "start", "parameters": "fast"}"#,
            "malformed-message",
        ),
        (
            br#"{"action": "start", "when": "soon"}"#,
            "malformed-message",
        ),
        (br#"{"action": "start", "model": 1}"#, "malformed-message"),
        (br#"{"action": "explode"}"#, "unknown-action"),
        (br#"{"action": null}"#, "malformed-message"),
    ];
    for (body, kind) in &cases {
        c.publish_raw(string_table([("uuid", &a)]), body)
            .await
            .unwrap();
        let refused = c.wait_error(&a, kind).await.unwrap();
        assert_eq!(
            refused.state().as_deref(),
            Some("idle"),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    // Status traffic (no action) is ignored, as are non-string headers.
    c.publish(&Headers::uuid(&a), &json!({"status": {"state": "running"}}))
        .await
        .unwrap();
    let mut table = lapin::types::FieldTable::default();
    table.insert("uuid".into(), lapin::types::AMQPValue::LongInt(42));
    c.publish_raw(table, br#"{"action":"start"}"#)
        .await
        .unwrap();
    let all = lab.all();
    let before = lab.client.barrier(&all).await;
    assert!(
        before
            .values()
            .flatten()
            .all(|s| s.state().as_deref() == Some("idle")),
        "{before:?}"
    );
    assert!(
        !before.contains_key(&a),
        "status traffic must not be answered"
    );
    // Still fully controllable.
    let c = &mut lab.client;
    c.act(&a, &json!({"action": "start"})).await.unwrap();
    assert_eq!(
        c.states_until(&a, "running").await.unwrap(),
        ["starting", "running"]
    );
    lab.client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn an_action_with_a_future_when_is_carried_out_then() {
    let mut lab = lab().await;
    let a = lab.sims[0].clone();
    let at = villas_sdk::protocol::unix_now() + 0.5;
    lab.client
        .act(&a, &json!({"action": "start", "when": at}))
        .await
        .unwrap();
    let starting = lab.client.wait_state(&a, "starting").await.unwrap();
    assert!(
        starting.body["when"].as_f64().unwrap() >= at,
        "started before its time"
    );
    lab.client.wait_state(&a, "running").await.unwrap();
    // A past `when` is carried out at once.
    lab.client
        .act(&a, &json!({"action": "stop", "when": 1.0}))
        .await
        .unwrap();
    lab.client.wait_state(&a, "stopping").await.unwrap();
    lab.client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn sigterm_stops_gracefully_and_managers_publish_their_final_state() {
    stops_gracefully_on("TERM").await;
}

#[tokio::test]
async fn sigint_stops_gracefully_too() {
    stops_gracefully_on("INT").await;
}

async fn stops_gracefully_on(signal: &str) {
    let mut lab = lab().await;
    let m = lab.manager.clone();
    lab.daemon.signal(signal);
    lab.client.wait_state(&m, "shutdown").await.unwrap();
    assert_eq!(lab.daemon.wait_exit(), Some(0));
    lab.daemon.wait_log(&format!("SIG{signal} received"));
    lab.client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn broker_url_from_the_environment_and_broker_down_at_start_up() {
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let uuid = new_uuid();
    let yaml = format!("uuid: {uuid}\nbroker:\n  exchange: {exchange}\n  url: amqp://guest:guest@127.0.0.1:1/%2F\napi:\n  enabled: false\n");
    // The config names an unreachable broker: the daemon keeps running and
    // retrying (logged). The environment then supplies the real one.
    let mut unreachable = Daemon::start(&yaml);
    unreachable.wait_log("broker not reachable; retrying");
    unreachable.wait_log("broker not reachable; retrying");
    assert!(
        unreachable.child.try_wait().unwrap().is_none(),
        "daemon exited without a broker"
    );
    drop(unreachable);
    let url = amqp_url();
    let _daemon = Daemon::start_with(&yaml, &[("VILLAS_CONTROLLER__BROKER__URL", &url)]);
    client.wait_state(&uuid, "idle").await.unwrap();
    client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn components_publish_a_heartbeat_status() {
    let (mut client, _daemon, manager, sim) =
        one_dummy(|yaml| yaml.replace("heartbeat_interval: 3600", "heartbeat_interval: 0.2")).await;
    // Unprompted: three more statuses of each component arrive.
    for _ in 0..3 {
        client.wait_state(&sim, "idle").await.unwrap();
        client.wait_state(&manager, "idle").await.unwrap();
    }
    client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn oversize_bodies_are_refused_unparsed_and_the_state_is_kept() {
    let (mut client, _daemon, _, sim) =
        one_dummy(|yaml| yaml.replace("  exchange:", "  max_body_bytes: 4096\n  exchange:")).await;
    let padding = "x".repeat(5000);
    client
        .act(
            &sim,
            &json!({"action": "start", "parameters": {"padding": padding}}),
        )
        .await
        .unwrap();
    let refused = client.wait_error(&sim, "too-large").await.unwrap();
    assert_eq!(refused.state().as_deref(), Some("idle"));
    assert_eq!(refused.body["status"]["error"]["limit"], 4096);
    // A body within the limit is carried out.
    client.act(&sim, &json!({"action": "start"})).await.unwrap();
    assert_eq!(
        client.states_until(&sim, "running").await.unwrap(),
        ["starting", "running"]
    );
    client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn villasweb_style_actions_sent_twice_run_once() {
    // VILLASweb's backend publishes every action twice, with only a uuid
    // header, delivery mode 2, and `"when": 0`.
    let mut lab = lab().await;
    let a = lab.sims[0].clone();
    for _ in 0..2 {
        lab.client
            .publish(
                &Headers::uuid(&a),
                &json!({"action": "start", "when": 0, "parameters": {}}),
            )
            .await
            .unwrap();
    }
    assert_eq!(
        lab.client.states_until(&a, "running").await.unwrap(),
        ["starting", "running"]
    );
    for _ in 0..2 {
        lab.client
            .publish(&Headers::uuid(&a), &json!({"action": "stop", "when": 0}))
            .await
            .unwrap();
    }
    assert_eq!(
        lab.client.states_until(&a, "idle").await.unwrap(),
        ["stopping", "idle"]
    );
    let all = lab.all();
    let before = lab.client.barrier(&all).await;
    assert!(
        before.get(&a).is_none_or(|s| s.is_empty()),
        "extra statuses: {:?}",
        before.get(&a)
    );
    lab.client.close_and_delete_exchange().await.unwrap();
}

/// The configuration's `uuid` is always the daemon's root generic manager
/// (as in the reference): configured managers go under it, a component
/// goes under the configured manager its `manager` property names, and
/// scripts reach the root by its uuid.
#[tokio::test]
async fn the_daemon_uuid_is_the_root_manager_and_configured_managers_go_under_it() {
    let exchange = test_exchange();
    let mut c = connect(&exchange).await;
    let root = new_uuid();
    // g: a configured generic manager (the reference's example config has
    // one); h: a manager under g; d under the root; e under g; f under h.
    let (g, h, d, e, f) = (new_uuid(), new_uuid(), new_uuid(), new_uuid(), new_uuid());
    let components = format!(
        "- {{category: manager, type: generic, name: Standard Controller, uuid: {g}}}\n\
         - {{category: simulator, type: dummy, uuid: {f}, manager: {h}}}\n\
         - {{category: manager, type: generic, uuid: {h}, manager: {g}}}\n\
         - {{category: simulator, type: dummy, uuid: {e}, manager: {g}}}\n{}",
        dummy(&d, None, "D")
    );
    let _daemon = Daemon::start(&config(&exchange, &root, &components));
    let status = c.wait_state(&root, "idle").await.unwrap().body;
    assert_eq!(status["status"]["managed_by"], root.as_str());
    assert_eq!(status["properties"]["type"], "generic");
    let top = uuids(&status["components"]);
    assert_eq!(top, [g.clone(), d.clone()].into());
    assert_eq!(uuids(&status["status"]["components"]), top);
    for (uuid, manager, manages) in [
        (&g, &root, vec![h.clone(), e.clone()]),
        (&h, &g, vec![f.clone()]),
        (&d, &root, vec![]),
        (&e, &g, vec![]),
        (&f, &h, vec![]),
    ] {
        let seen = c.wait_state(uuid, "idle").await.unwrap().body;
        assert_eq!(seen["status"]["managed_by"], manager.as_str(), "{uuid}");
        if seen["properties"]["category"] == "manager" {
            assert_eq!(
                uuids(&seen["components"]),
                manages.into_iter().collect(),
                "{uuid}"
            );
        }
    }
    // Scripts ping and create through the daemon's uuid.
    c.act(&root, &json!({"action": "ping"})).await.unwrap();
    c.wait_state(&root, "idle").await.unwrap();
    let created = new_uuid();
    c.act(
        &root,
        &json!({"action": "create", "parameters": {"name": "N", "category": "simulator", "type": "dummy", "uuid": created}}),
    )
    .await.unwrap();
    let seen = c.wait_state(&created, "idle").await.unwrap();
    assert_eq!(seen.body["status"]["managed_by"], root.as_str());
    c.close_and_delete_exchange().await.unwrap();
}

/// `reset` leads back from every state but `gone`, `shutdown` included;
/// while `shuttingdown` it is refused (the protocol's table), and that
/// state ends by itself: a "reset until idle" loop always ends.
#[tokio::test]
async fn reset_brings_a_shut_down_component_back() {
    let (mut c, _daemon, _, sim) =
        one_dummy(|yaml| yaml.replace("transition_delay: 0.05", "transition_delay: 1.0")).await;
    c.act(&sim, &json!({"action": "shutdown"})).await.unwrap();
    c.wait_state(&sim, "shuttingdown").await.unwrap();
    c.act(&sim, &json!({"action": "reset"})).await.unwrap();
    let refused = c.wait_error(&sim, "invalid-transition").await.unwrap();
    assert_eq!(refused.state().as_deref(), Some("shuttingdown"));
    c.wait_state(&sim, "shutdown").await.unwrap();
    c.act(&sim, &json!({"action": "reset"})).await.unwrap();
    assert_eq!(
        c.states_until(&sim, "idle").await.unwrap(),
        ["resetting", "idle"]
    );
    c.close_and_delete_exchange().await.unwrap();
}

/// A simulator's status carries, at the top level as the reference's do,
/// the `model` and `results` of its last accepted `start` (else null).
#[tokio::test]
async fn simulator_statuses_carry_the_model_and_results_of_the_last_start() {
    let (mut c, _daemon, manager, sim) = one_dummy(|yaml| yaml).await;
    c.act(&sim, &json!({"action": "ping"})).await.unwrap();
    let idle = c.wait_state(&sim, "idle").await.unwrap().body;
    assert_eq!(idle.get("model"), Some(&serde_json::Value::Null), "{idle}");
    assert_eq!(
        idle.get("results"),
        Some(&serde_json::Value::Null),
        "{idle}"
    );
    let model = json!({"type": "url", "url": "https://files.example/model.zip"});
    let results = json!({"url": "https://files.example/results/1"});
    c.act(
        &sim,
        &json!({"action": "start", "model": model, "results": results}),
    )
    .await
    .unwrap();
    let starting = c.wait_state(&sim, "starting").await.unwrap().body;
    assert_eq!(
        (&starting["model"], &starting["results"]),
        (&model, &results)
    );
    c.wait_state(&sim, "running").await.unwrap();
    // A refused start changes nothing; the last start's stay after the run.
    c.act(&sim, &json!({"action": "start", "model": {"url": "x"}}))
        .await
        .unwrap();
    let refused = c.wait_error(&sim, "invalid-transition").await.unwrap().body;
    assert_eq!(refused["model"], model);
    c.act(&sim, &json!({"action": "stop"})).await.unwrap();
    let idle = c.wait_state(&sim, "idle").await.unwrap().body;
    assert_eq!((&idle["model"], &idle["results"]), (&model, &results));
    // Managers carry neither.
    let status = c.wait_state(&manager, "idle").await.unwrap().body;
    assert!(status.get("model").is_none() && status.get("results").is_none());
    c.close_and_delete_exchange().await.unwrap();
}

/// `create` without `name` is accepted, as the reference accepts it; the
/// name defaults as for configured components.
#[tokio::test]
async fn create_without_a_name_gets_the_default_name() {
    let (mut c, _daemon, manager, _) = one_dummy(|yaml| yaml).await;
    let created = new_uuid();
    c.act(
        &manager,
        &json!({"action": "create", "parameters": {"category": "simulator", "type": "dummy", "uuid": created}}),
    )
    .await.unwrap();
    let status = c.wait_state(&created, "idle").await.unwrap().body;
    assert_eq!(status["properties"]["name"], "dummy simulator");
    assert_eq!(status["status"]["managed_by"], manager.as_str());
    c.close_and_delete_exchange().await.unwrap();
}
