//! `simulator/rtlab` and `simulator/rscad`, black-box: the real daemon on
//! the real broker loads a configuration listing them (the reference
//! crashes at load), answers `ping` for them, and refuses every control
//! action with the state kept and an error naming the missing vendor API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn rtlab_and_rscad_load_answer_ping_and_refuse_every_control_action() {
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let (manager, rtlab, rscad) = (new_uuid(), new_uuid(), new_uuid());
    let components = format!(
        "- category: simulator\n  type: rtlab\n  name: OP5600\n  uuid: {rtlab}\n\
         - category: simulator\n  type: rscad\n  name: NovaCor\n  uuid: {rscad}\n"
    );
    let _daemon = Daemon::start(&config(&exchange, &manager, &components));
    for (uuid, vendor) in [(&rtlab, "RT-LAB"), (&rscad, "RSCAD")] {
        client.wait_state(uuid, "idle").await.unwrap();
        client.act(uuid, &json!({"action": "ping"})).await.unwrap();
        let pong = client.wait_state(uuid, "idle").await.unwrap();
        assert_eq!(pong.body["status"]["control_api"]["available"], false);
        for action in ["start", "stop", "pause", "resume", "shutdown"] {
            client
                .act(uuid, &json!({"action": action, "parameters": {}}))
                .await
                .unwrap();
            let refused = client
                .wait_for(&format!("{uuid} refusing {action}"), |r| {
                    r.uuid().as_deref() == Some(uuid.as_str())
                        && r.body["status"]["error"]["action"] == action
                })
                .await
                .unwrap();
            let status = &refused.body["status"];
            // Refused before the state changed: never `starting` & co.
            assert_eq!(status["state"], "idle", "{status}");
            assert_eq!(status["error"]["kind"], "unsupported-action", "{status}");
            let message = status["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("vendor's control API") && message.contains(vendor),
                "{message}"
            );
        }
    }
    // Nothing but idle statuses (and their refusals) was published.
    assert!(client
        .backlog
        .iter()
        .filter(|r| r.is_status())
        .all(|r| r.state().as_deref() == Some("idle")));
}
