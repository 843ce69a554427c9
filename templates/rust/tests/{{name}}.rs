//! Tests of `simulator/{{name}}`: the kind under the SDK's driver on a
//! virtual clock (`villas_sdk::testing`), and the built executable driven
//! over stdin and stdout as the daemon drives it.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;
use villas_sdk::testing::{check_villasweb_schemas, Harness};
use villas_sdk::typed::TypedKind;
use villas_sdk::{ActionKind, ErrorCode, State};

use {{name}}_kind::SimulatorKind;

fn simulator() -> Harness {
    Harness::typed(SimulatorKind, json!({"name": "Test"})).expect("built")
}

#[test]
fn start_runs_and_counts_steps_until_stop() {
    let mut h = simulator();
    h.act(ActionKind::Start, json!({"period": 0.5}))
        .expect("started");
    assert_eq!(h.states(), [State::Starting, State::Running]);
    h.advance(Duration::from_secs(2));
    assert_eq!(h.status()["status"]["steps"], 4);
    h.act(ActionKind::Stop, json!({})).expect("stopped");
    assert_eq!(h.state(), State::Idle);
    // No step after the stop.
    h.advance(Duration::from_secs(2));
    assert_eq!(h.status()["status"]["steps"], 4);
}

#[test]
fn bad_parameters_are_refused_and_reset_recovers() {
    let mut h = simulator();
    // Checked against the schema: the component goes to error, as the
    // protocol says, until a reset.
    let refused = h.act(ActionKind::Start, json!({"period": -1})).unwrap_err();
    assert_eq!(refused.code, ErrorCode::InvalidParameters);
    assert_eq!(h.state(), State::Error);
    h.act(ActionKind::Reset, json!({})).expect("reset");
    assert_eq!(h.state(), State::Idle);
    // Pause is not one of its actions: refused, the state kept.
    h.act(ActionKind::Start, json!({})).expect("started");
    assert!(h.act(ActionKind::Pause, json!({})).is_err());
    assert_eq!(h.state(), State::Running);
    h.act(ActionKind::Reset, json!({})).expect("reset");
    assert_eq!(h.state(), State::Idle);
    assert!(h.pending_timers().is_empty());
}

#[test]
fn its_schemas_are_ones_villasweb_draws() {
    check_villasweb_schemas(SimulatorKind.into_kind().as_ref()).expect("drawable");
}

/// The executable, driven as the daemon drives it (docs/kind-protocol.md
/// of villas-controller): handshake, build, start, stop.
#[test]
fn the_executable_serves_the_kind_process_protocol() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_{{name}}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the kind executable starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut send = |message: Value| {
        writeln!(stdin, "{message}").expect("written");
    };
    // Every line up to and including the reply to `id`.
    let mut until_reply = |id: u64| -> Vec<Value> {
        let mut seen = Vec::new();
        for line in stdout.by_ref() {
            let message: Value = serde_json::from_str(&line.expect("a line")).expect("JSON");
            let done = message["reply"] == id;
            seen.push(message);
            if done {
                return seen;
            }
        }
        panic!("the process ended before its reply to {id}: {seen:?}");
    };
    let sdk = villas_sdk::kind_protocol::SDK_VERSION;
    send(json!({"op": "hello", "id": 1, "protocol": 1, "daemon": sdk, "sdk": sdk}));
    let hello = until_reply(1).pop().expect("the reply");
    assert_eq!(hello["ok"], true, "{hello}");
    assert_eq!(hello["name"], "{{name}}");
    assert_eq!(hello["kinds"][0]["type"], "{{name}}");
    let actions = &hello["kinds"][0]["actions"];
    assert!(
        actions
            .as_array()
            .is_some_and(|a| a.contains(&json!("start")) && a.contains(&json!("stop"))),
        "{actions}"
    );
    let uuid = "6a1f0c33-2f4e-4b8e-9d35-0c8f1c6d2a10";
    send(
        json!({"op": "build", "id": 2, "instance": uuid, "category": "simulator",
                "type": "{{name}}", "properties": {"name": "Test"}, "data_dir": null}),
    );
    assert_eq!(until_reply(2)[0]["ok"], true);
    send(
        json!({"op": "act", "id": 3, "instance": uuid, "state": "starting",
                "action": {"action": "start", "parameters": {"period": 60}}}),
    );
    let started = until_reply(3);
    assert!(
        started.contains(&json!({"event": "transition", "instance": uuid, "state": "running"})),
        "{started:?}"
    );
    send(
        json!({"op": "act", "id": 4, "instance": uuid, "state": "stopping",
                "action": {"action": "stop", "parameters": {}}}),
    );
    let stopped = until_reply(4);
    assert!(
        stopped.contains(&json!({"event": "transition", "instance": uuid, "state": "idle"})),
        "{stopped:?}"
    );
    send(json!({"op": "stop", "id": 5}));
    until_reply(5);
    assert!(child.wait().expect("exited").success());
}
