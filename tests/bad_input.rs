//! The bad-input corpus, sent over the real broker to the real daemon:
//! invalid UTF-8, non-JSON, JSON that is not an object, wrong types for
//! every field, unknown actions, bodies over `broker.max_body_bytes`,
//! deeply nested JSON, `create` with missing or ill-typed properties,
//! `delete` of unknown or malformed uuids, actions for categories that
//! cannot do them, and headers of non-string types. Each addressable
//! refusal must be published as an error status with the state kept;
//! afterwards every IC answers `ping`, nothing was created, and the state
//! directory holds no definition.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::*;
use lapin::types::{AMQPValue, ByteArray, FieldArray, FieldTable, LongString};
use serde_json::{json, Value};

/// `broker.max_body_bytes` of the daemon under test.
const LIMIT: usize = 262_144;

struct Lab {
    daemon: Daemon,
    client: Client,
    /// The daemon's generic manager.
    m: String,
    /// Dummy simulators a (realm `realm`) and b.
    a: String,
    b: String,
    realm: String,
}

impl Lab {
    fn all(&self) -> Vec<String> {
        vec![self.m.clone(), self.a.clone(), self.b.clone()]
    }
}

async fn lab() -> Lab {
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let (m, a, b) = (new_uuid(), new_uuid(), new_uuid());
    let realm = format!("bad.{}", new_uuid());
    let components = [dummy(&a, Some(&realm), "A"), dummy(&b, None, "B")].concat();
    let yaml = config(&exchange, &m, &components).replace(
        "  exchange:",
        &format!("  max_body_bytes: {LIMIT}\n  exchange:"),
    );
    let daemon = Daemon::start(&yaml);
    for uuid in [&m, &a, &b] {
        client.wait_state(uuid, "idle").await.unwrap();
    }
    Lab {
        daemon,
        client,
        m,
        a,
        b,
        realm,
    }
}

/// `depth` nested arrays.
fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// Bodies any component must refuse, with the error kind it publishes.
fn malformed_bodies() -> Vec<(Vec<u8>, &'static str)> {
    let mut cases: Vec<(Vec<u8>, &'static str)> = Vec::new();
    let mut add = |body: &[u8], kind: &'static str| cases.push((body.to_vec(), kind));
    // Invalid UTF-8.
    add(&[0xff, 0xfe, 0x00], "malformed-message");
    add(
        b"{\"action\":\"ping\",\"x\":\"\xc3\x28\"}",
        "malformed-message",
    );
    add(b"{\"action\":\"\xed\xa0\x80\"}", "malformed-message");
    add(b"\xef\xbb\xbf{\"action\":\"ping\"}", "malformed-message");
    // Not JSON.
    for text in [
        "",
        "   ",
        "not json",
        "{",
        "}",
        "{\"action\":\"ping\"",
        "{\"action\":\"ping\"} trailing",
        "{'action':'ping'}",
        "NaN",
        "\0",
        "{\"action\":\"ping\",}",
        "{\"when\":1e400,\"action\":\"ping\"}",
    ] {
        add(text.as_bytes(), "malformed-message");
    }
    // JSON, not an object.
    for text in ["[1,2]", "\"ping\"", "1", "null", "true", "[]"] {
        add(text.as_bytes(), "malformed-message");
    }
    // Wrong types for every field.
    for bad in ["5", "null", "true", "[]", "{}", "1.5", "[\"ping\"]"] {
        add(
            format!("{{\"action\":{bad}}}").as_bytes(),
            "malformed-message",
        );
    }
    for (field, bads) in [
        ("when", &["\"soon\"", "true", "[]", "{}"][..]),
        ("parameters", &["\"x\"", "1", "true", "[]"][..]),
        ("model", &["\"x\"", "1", "true", "[]"][..]),
        ("results", &["\"x\"", "1", "true", "[]"][..]),
    ] {
        for bad in bads {
            add(
                format!("{{\"action\":\"start\",\"{field}\":{bad}}}").as_bytes(),
                "malformed-message",
            );
        }
    }
    // Unknown actions.
    let long = "x".repeat(10_000);
    for name in ["explode", "", "PING", "ping ", "start\0", long.as_str()] {
        add(
            json!({ "action": name }).to_string().as_bytes(),
            "unknown-action",
        );
    }
    // Deeply nested JSON, over the parser's depth limit.
    add(nested(100_000).as_bytes(), "malformed-message");
    add(
        format!(
            "{{\"action\":\"start\",\"parameters\":{{\"x\":{}}}}}",
            nested(100_000)
        )
        .as_bytes(),
        "malformed-message",
    );
    add(
        format!(
            "{{\"action\":\"start\",\"parameters\":{}{}",
            "{\"a\":".repeat(30_000),
            "1"
        )
        .as_bytes(),
        "malformed-message",
    );
    // Over the size limit (not parsed at all).
    add(&vec![b'x'; LIMIT + 1], "too-large");
    let padding = "p".repeat(2 * 1024 * 1024);
    add(
        json!({"action": "ping", "parameters": {"padding": padding}})
            .to_string()
            .as_bytes(),
        "too-large",
    );
    cases
}

fn create(parameters: Value) -> Value {
    json!({"action": "create", "parameters": parameters})
}

/// Actions the manager must refuse, with the error kind it publishes.
fn manager_refusals(lab: &Lab) -> Vec<(Value, &'static str)> {
    let sim = |extra: Value| {
        let mut p = json!({"name": "x", "category": "simulator", "type": "dummy"});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    };
    let mut cases = vec![
        // Missing properties (the create schema requires category and type;
        // a missing name gets its default, see tests/bus_protocol.rs).
        (create(json!({})), "invalid-parameters"),
        (
            create(json!({"name": "x", "type": "dummy"})),
            "invalid-parameters",
        ),
        (
            create(json!({"name": "x", "category": "simulator"})),
            "invalid-parameters",
        ),
        // Ill-typed properties.
        (create(sim(json!({"category": 5}))), "invalid-parameters"),
        (
            create(sim(json!({"type": ["dummy"]}))),
            "invalid-parameters",
        ),
        (create(sim(json!({"name": {}}))), "invalid-parameters"),
        (create(sim(json!({"realm": 5}))), "invalid-parameters"),
        (create(sim(json!({"uuid": 5}))), "invalid-parameters"),
        (
            create(sim(json!({"uuid": "not-a-uuid"}))),
            "invalid-parameters",
        ),
        (create(sim(json!({"uuid": ""}))), "invalid-parameters"),
        (
            create(sim(
                json!({"uuid": "{3ddd318e-fee1-46d7-bff4-7c064d640d4e}"}),
            )),
            "invalid-parameters",
        ),
        (
            create(sim(json!({"properties": "fast"}))),
            "invalid-parameters",
        ),
        (create(sim(json!({"owner": false}))), "invalid-parameters"),
        // Huge values and keys are not echoed back whole.
        (
            create(sim(json!({ "uuid": "0".repeat(100_000) }))),
            "invalid-parameters",
        ),
        (
            create(sim(json!({ "location": {"k".repeat(100_000): 1} }))),
            "invalid-parameters",
        ),
        // A definition the kind refuses when it builds it.
        (
            create(sim(json!({"transition_delay": "abc"}))),
            "invalid-parameters",
        ),
        (
            create(sim(json!({"transition_delay": -1}))),
            "invalid-parameters",
        ),
        (
            create(sim(json!({"properties": {"transition_delay": 1e9}}))),
            "invalid-parameters",
        ),
        // Unknown kinds.
        (
            create(sim(json!({"type": "no-such-kind"}))),
            "unsupported-action",
        ),
        (
            create(sim(json!({"category": "", "type": ""}))),
            "unsupported-action",
        ),
        // Existing uuids, in any spelling.
        (create(sim(json!({"uuid": lab.a}))), "duplicate-uuid"),
        (
            create(sim(json!({"uuid": lab.b.to_uppercase()}))),
            "duplicate-uuid",
        ),
        (
            create(json!({"name": "x", "category": "manager", "type": "generic", "uuid": lab.m})),
            "duplicate-uuid",
        ),
        // delete of unknown, malformed or ill-typed uuids.
        (
            json!({"action": "delete", "parameters": {}}),
            "invalid-parameters",
        ),
        (
            json!({"action": "delete", "parameters": {"uuid": 5}}),
            "invalid-parameters",
        ),
        (
            json!({"action": "delete", "parameters": {"uuid": null}}),
            "invalid-parameters",
        ),
        (
            json!({"action": "delete", "parameters": {"uuid": [lab.a]}}),
            "invalid-parameters",
        ),
        (json!({"action": "delete"}), "invalid-parameters"),
    ];
    for uuid in [
        new_uuid(),
        "not-a-uuid".to_owned(),
        String::new(),
        "x".repeat(5_000),
        lab.m.clone(),
    ] {
        cases.push((
            json!({"action": "delete", "parameters": {"uuid": uuid}}),
            "unknown-component",
        ));
    }
    // Actions a manager cannot do.
    for action in ["start", "stop", "pause", "resume", "shutdown"] {
        cases.push((json!({ "action": action }), "unsupported-action"));
    }
    cases
}

/// Actions a simulator must refuse in state idle.
fn simulator_refusals(lab: &Lab) -> Vec<(Value, &'static str)> {
    vec![
        (
            create(json!({"name": "x", "category": "simulator", "type": "dummy"})),
            "unsupported-action",
        ),
        (
            json!({"action": "delete", "parameters": {"uuid": lab.b}}),
            "unsupported-action",
        ),
        (json!({"action": "pause"}), "invalid-transition"),
        (json!({"action": "resume"}), "invalid-transition"),
        (json!({"action": "stop"}), "invalid-transition"),
    ]
}

/// Header tables that address nobody: non-string values only.
fn non_string_headers(lab: &Lab) -> Vec<FieldTable> {
    let values = [
        AMQPValue::LongInt(42),
        AMQPValue::Boolean(true),
        AMQPValue::Double(1.5),
        AMQPValue::Void,
        AMQPValue::Timestamp(0),
        AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::LongString(
            LongString::from(lab.a.as_str()),
        )])),
        AMQPValue::FieldTable({
            let mut t = FieldTable::default();
            t.insert("uuid".into(), AMQPValue::LongString(lab.a.as_str().into()));
            t
        }),
        AMQPValue::ByteArray(ByteArray::from(lab.a.as_bytes().to_vec())),
    ];
    values
        .into_iter()
        .map(|value| {
            let mut table = FieldTable::default();
            for name in ["uuid", "realm", "category", "type"] {
                table.insert(name.into(), value.clone());
            }
            table
        })
        .chain(std::iter::once({
            // Invalid UTF-8 in a string header matches nothing.
            let mut table = FieldTable::default();
            let mut bytes = lab.a.as_bytes().to_vec();
            bytes[0] = 0xff;
            table.insert(
                "uuid".into(),
                AMQPValue::LongString(LongString::from(bytes)),
            );
            table
        }))
        .collect()
}

#[tokio::test]
async fn the_bad_input_corpus_is_refused_visibly_and_changes_nothing() {
    let mut lab = lab().await;
    let (m, a, b) = (lab.m.clone(), lab.a.clone(), lab.b.clone());

    // Malformed bodies, addressed by uuid, by realm and to everyone.
    for (body, kind) in malformed_bodies() {
        let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        lab.client
            .publish_raw(string_table([("uuid", &a)]), &body)
            .await
            .unwrap();
        let refused = lab.client.wait_error(&a, kind).await.unwrap();
        assert_eq!(refused.state().as_deref(), Some("idle"), "{shown}");
        lab.client
            .publish_raw(string_table([("realm", &lab.realm)]), &body)
            .await
            .unwrap();
        lab.client.wait_error(&a, kind).await.unwrap();
    }
    // A refusal does not echo a client's megabytes back.
    let long = "y".repeat(100_000);
    lab.client
        .act(&a, &json!({ "action": long }))
        .await
        .unwrap();
    let refused = lab.client.wait_error(&a, "unknown-action").await.unwrap();
    let echoed = refused.body["status"]["error"].to_string();
    assert!(echoed.len() < 1_000, "{} bytes echoed", echoed.len());
    lab.client
        .publish_raw(string_table([("uuid", "")]), b"{")
        .await
        .unwrap();
    for uuid in [&m, &a, &b] {
        lab.client
            .wait_error(uuid, "malformed-message")
            .await
            .unwrap();
    }
    lab.daemon.wait_log("exceeds the limit of 262144 bytes");

    // Refusals by the manager and by a simulator: the state is kept.
    for (body, kind) in manager_refusals(&lab) {
        lab.client.act(&m, &body).await.unwrap();
        let refused = lab.client.wait_error(&m, kind).await.unwrap();
        assert_eq!(refused.state().as_deref(), Some("idle"), "{body}");
        let echoed = refused.body["status"]["error"].to_string();
        assert!(echoed.len() < 1_000, "{} bytes echoed", echoed.len());
    }
    for (body, kind) in simulator_refusals(&lab) {
        lab.client.act(&a, &body).await.unwrap();
        let refused = lab.client.wait_error(&a, kind).await.unwrap();
        assert_eq!(refused.state().as_deref(), Some("idle"), "{body}");
    }
    // An action the schema refuses puts a simulator into error; reset
    // recovers it (the protocol's recovery path).
    lab.client
        .act(
            &b,
            &json!({"action": "start", "parameters": {"runtime": -1}}),
        )
        .await
        .unwrap();
    lab.client
        .wait_error(&b, "invalid-parameters")
        .await
        .unwrap();
    lab.client
        .act(&b, &json!({"action": "reset"}))
        .await
        .unwrap();
    lab.client.wait_state(&b, "idle").await.unwrap();

    // Forget what was published so far (every status is in by the barrier).
    lab.client.barrier(&lab.all()).await;
    lab.client.backlog.clear();
    // Headers of non-string types address nobody: not even `start` is
    // answered, and a string header next to them still routes.
    for table in non_string_headers(&lab) {
        lab.client
            .publish_raw(table.clone(), br#"{"action":"start"}"#)
            .await
            .unwrap();
        lab.client.publish_raw(table, b"not json").await.unwrap();
    }
    let before = lab.client.barrier(&lab.all()).await;
    assert!(before.is_empty(), "answered non-string headers: {before:?}");
    let mut table = FieldTable::default();
    table.insert("uuid".into(), AMQPValue::LongInt(7));
    table.insert("category".into(), AMQPValue::LongString("simulator".into()));
    lab.client
        .publish_raw(table, br#"{"action":"ping"}"#)
        .await
        .unwrap();
    let before = lab.client.barrier(&lab.all()).await;
    let mut answered: Vec<&String> = before.keys().collect();
    answered.sort();
    let mut sims = vec![&a, &b];
    sims.sort();
    assert_eq!(answered, sims);

    // Everything still answers, unchanged; nothing was created or stored.
    for uuid in [&m, &a, &b] {
        lab.client
            .act(uuid, &json!({"action": "ping"}))
            .await
            .unwrap();
        let u = uuid.clone();
        let seen = lab
            .client
            .wait_for("ping answer", move |s| {
                s.uuid().as_deref() == Some(&u) && s.body["status"].get("error").is_none()
            })
            .await
            .unwrap();
        assert_eq!(seen.state().as_deref(), Some("idle"));
        if uuid == &m {
            let listed: Vec<&str> = seen.body["status"]["components"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u.as_str().unwrap())
                .collect();
            assert_eq!(listed, [a.as_str(), b.as_str()]);
        }
    }
    let components = lab
        .daemon
        .dir
        .path()
        .join("villas-controller")
        .join("components");
    let mut dirs: Vec<String> = std::fs::read_dir(&components)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut expected = vec![m.clone(), a.clone(), b.clone()];
    expected.sort();
    assert_eq!(dirs, expected, "a refused create left something behind");
    for dir in &dirs {
        assert!(!components.join(dir).join("component.json").exists());
    }
    assert!(
        lab.daemon.child.try_wait().unwrap().is_none(),
        "daemon alive"
    );
    lab.client.close_and_delete_exchange().await.unwrap();
}
