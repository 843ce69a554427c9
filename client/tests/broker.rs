//! The client against the real RabbitMQ (`AMQP_URL`, default the local
//! one), each test on an exchange of its own, with simulated ICs that
//! answer as the daemon's do: bindings, discovery (each IC once, the
//! early end at a single uuid), following an action to a state or to a
//! refusal, and the backlog of [`Client`].

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use serde_json::{json, Value};
use std::time::Duration;
use tokio::task::JoinHandle;
use villas_client::{discover, Binding, Client, Discovery, Error, Filter, Follow, Session, Target};
use villas_sdk::{Action, ActionKind, Headers, Identity, State};

/// Bound on the waits for events that do come.
const DEADLINE: Duration = Duration::from_secs(15);

fn target() -> Target {
    let url = std::env::var("AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2F".into());
    Target::new(url, format!("test-client-{}", uuid::Uuid::new_v4()))
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

/// A simulated IC (`simulator/dummy` in `realm`): it watches the whole
/// exchange as the daemon does and answers what addresses it (x-match any,
/// an empty value addresses everyone). `ping` is answered with its state;
/// `start` goes `starting`, then `running`; any other action is refused
/// with an error object naming it, the state kept. Listening when this
/// returns.
async fn simulated_ic(target: &Target, uuid: &str, realm: &str) -> JoinHandle<()> {
    let identity = Identity {
        realm: Some(realm.to_owned()),
        category: "simulator".into(),
        type_name: "dummy".into(),
        uuid: uuid.to_owned(),
    };
    let session = Session::open(target).await.unwrap();
    let mut subscription = session.subscribe(&Binding::Everything).await.unwrap();
    tokio::spawn(async move {
        let mut state = "idle";
        while let Ok(message) = subscription.next().await {
            let body = message.payload();
            let Some(action) = body["action"].as_str() else {
                continue;
            };
            if !identity.matches(&message.headers) {
                continue;
            }
            let status = |state: &str, error: Value| {
                json!({
                    "status": {"state": state, "error": error},
                    "properties": {"uuid": identity.uuid, "name": "sim", "category": "simulator",
                                   "type": "dummy", "realm": identity.realm},
                })
            };
            let mut answers = Vec::new();
            match action {
                "ping" => answers.push(status(state, Value::Null)),
                "start" => {
                    answers.push(status("starting", Value::Null));
                    state = "running";
                    answers.push(status(state, Value::Null));
                }
                other => answers.push(status(
                    state,
                    json!({"kind": "invalid-transition", "action": other,
                           "message": format!("{state} -> {other}")}),
                )),
            }
            for answer in answers {
                session.publish(&identity.headers(), &answer).await.unwrap();
            }
        }
    })
}

#[tokio::test]
async fn a_subscription_receives_what_its_binding_matches() {
    let target = target();
    let session = Session::open(&target).await.unwrap();
    let lab = Headers {
        realm: Some("lab".into()),
        ..Headers::default()
    };
    let mut all = session.subscribe(&Binding::Everything).await.unwrap();
    let mut lab_only = session.subscribe(&Binding::All(lab.clone())).await.unwrap();
    session
        .publish(&Headers::uuid("u-1"), &json!({"n": 1}))
        .await
        .unwrap();
    session.publish(&lab, &json!({"n": 2})).await.unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    for n in [1, 2] {
        let message = all.next_until(deadline).await.unwrap().unwrap();
        assert_eq!(message.payload()["n"], n);
    }
    let message = lab_only.next_until(deadline).await.unwrap().unwrap();
    assert_eq!(message.payload()["n"], 2);
    assert_eq!(message.headers, lab);
    // Nothing else came for the realm: a marker on it arrives next.
    session.publish(&lab, &json!({"n": 3})).await.unwrap();
    let message = lab_only.next_until(deadline).await.unwrap().unwrap();
    assert_eq!(message.payload()["n"], 3);
    session.delete_exchange().await.unwrap();
    session.close().await;
}

#[tokio::test]
async fn discovery_finds_each_ic_once_and_ends_at_the_only_uuid() {
    let target = target();
    let (a, b) = (new_uuid(), new_uuid());
    let ics = [
        simulated_ic(&target, &a, "lab").await,
        simulated_ic(&target, &b, "lab").await,
    ];
    let session = Session::open(&target).await.unwrap();

    // Without a filter: `uuid: ""` and one ping per category, each IC
    // answers two of them, and is listed once.
    let found = discover(&session, &Filter::everyone(), Duration::from_secs(1))
        .await
        .unwrap();
    let mut uuids: Vec<&str> = found.iter().filter_map(|s| s.uuid()).collect();
    uuids.sort_unstable();
    let mut expected = [a.as_str(), b.as_str()];
    expected.sort_unstable();
    assert_eq!(uuids, expected);

    // One uuid: the round ends with its answer, long before its end.
    let mut subscription = session.subscribe(&Binding::Everything).await.unwrap();
    let far = tokio::time::Instant::now() + Duration::from_secs(3600);
    let mut discovery = Discovery::start(&session, &mut subscription, &Filter::uuid(&b), far)
        .await
        .unwrap();
    let replies = tokio::time::timeout(DEADLINE, async {
        let mut replies = Vec::new();
        while let Some(reply) = discovery.next().await.unwrap() {
            replies.push(reply.uuid);
        }
        replies
    })
    .await
    .expect("the round ends at the one uuid's answer");
    assert_eq!(replies, [b]);

    for ic in ics {
        ic.abort();
    }
    session.delete_exchange().await.unwrap();
    session.close().await;
}

#[tokio::test]
async fn follow_reaches_the_state_or_fails_on_a_refusal() {
    let target = target();
    let (a, b) = (new_uuid(), new_uuid());
    let ics = [
        simulated_ic(&target, &a, "lab").await,
        simulated_ic(&target, &b, "lab").await,
    ];
    let session = Session::open(&target).await.unwrap();

    // A realm-wide start: both ICs are found, and both reach `running`.
    let realm = Filter::everyone().realm("lab");
    let start = Action::new(ActionKind::Start);
    let last = Follow::start(&session, &realm, &start, State::Running, DEADLINE)
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(last.len(), 2);
    for message in &last {
        assert_eq!(message.payload()["status"]["state"], "running");
    }

    // A refused action fails the wait at once, naming who refused.
    let stop = Action::new(ActionKind::Stop);
    let error = Follow::start(&session, &Filter::uuid(&a), &stop, State::Idle, DEADLINE)
        .await
        .unwrap()
        .wait()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Failed(m) if m.contains(&a) && m.contains("refused stop")),
        "{error}"
    );

    // Nobody answers: nothing to wait for.
    let nobody = Filter::uuid(new_uuid());
    let error = Follow::start(
        &session,
        &nobody,
        &start,
        State::Running,
        Duration::from_secs(1),
    )
    .await
    .err()
    .unwrap();
    assert!(
        matches!(&error, Error::Failed(m) if m.contains("nothing to wait for")),
        "{error}"
    );

    for ic in ics {
        ic.abort();
    }
    session.delete_exchange().await.unwrap();
    session.close().await;
}

#[tokio::test]
async fn a_client_waits_in_any_order_from_its_backlog() {
    let target = target();
    let a = new_uuid();
    let ic = simulated_ic(&target, &a, "lab").await;
    let mut client = Client::connect(&target)
        .await
        .unwrap()
        .with_timeout(DEADLINE);
    client.act(&a, &json!({"action": "start"})).await.unwrap();
    // `running` first: `starting`, received before it, stays for later.
    let running = client.wait_state(&a, "running").await.unwrap();
    assert_eq!(running.uuid().as_deref(), Some(a.as_str()));
    client.wait_state(&a, "starting").await.unwrap();
    client.act(&a, &json!({"action": "pause"})).await.unwrap();
    let refused = client.wait_error(&a, "invalid-transition").await.unwrap();
    assert_eq!(refused.state().as_deref(), Some("running"));

    // A wait for what never comes times out, saying what it saw.
    let mut impatient = client.with_timeout(Duration::from_millis(300));
    impatient.act(&a, &json!({"action": "ping"})).await.unwrap();
    let error = impatient.wait_state(&a, "paused").await.unwrap_err();
    assert!(
        matches!(&error, Error::Timeout { detail, .. } if detail.contains(&format!("{a} running"))),
        "{error}"
    );
    ic.abort();
    impatient.close_and_delete_exchange().await.unwrap();
}
