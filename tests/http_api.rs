//! Black-box tests of the HTTP API on the daemon's in-process bus (no
//! broker configured: the README's first command).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

struct Api {
    _daemon: Daemon,
    base: String,
    http: reqwest::Client,
    manager: String,
    sim: String,
}

async fn api() -> Api {
    let manager = new_uuid();
    let sim = new_uuid();
    let yaml = format!(
        "uuid: {manager}\napi:\n  port: 0\ncomponents:\n{}",
        dummy(&sim, Some("lab"), "Sim")
    );
    let mut daemon = Daemon::start(&yaml);
    let base = daemon.api_base();
    daemon.wait_log("supervision tree started");
    Api {
        _daemon: daemon,
        base,
        http: reqwest::Client::new(),
        manager,
        sim,
    }
}

impl Api {
    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }
    async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .body(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }
    /// Polls the component's status until `state` (the in-process bus has
    /// no subscriber to await here; bounded by the deadline).
    async fn wait_state(&self, uuid: &str, state: &str) -> Value {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let (code, body) = self.get(&format!("/component/{uuid}")).await;
            assert_eq!(code, 200);
            if body["status"]["state"] == state {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{uuid} never reached {state}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await; // poll interval of wait_until
        }
    }
}

#[tokio::test]
async fn index_lists_components_and_controller_status() {
    let api = api().await;
    let (code, body) = api.get("/").await;
    assert_eq!(code, 200);
    let uuids: Vec<&str> = body["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        uuids.contains(&api.manager.as_str()) && uuids.contains(&api.sim.as_str()),
        "{body}"
    );
    assert_eq!(body["status"]["uuid"], api.manager.as_str());
    assert_eq!(body["status"]["bus"], "local");
    assert!(body["status"]["version"].is_string());
    let (code, _) = api.get("").await;
    assert_eq!(code, 200);
    let (code, health) = api.get("/health").await;
    assert_eq!((code, health["status"].as_str()), (200, Some("ok")));
}

#[tokio::test]
async fn component_status_and_actions() {
    let api = api().await;
    let sim = api.sim.clone();
    let (code, status) = api.get(&format!("/component/{sim}")).await;
    assert_eq!(code, 200);
    assert_eq!(status["status"]["state"], "idle");
    assert_eq!(status["status"]["managed_by"], api.manager.as_str());
    assert!(status["schema"]["start"].is_object());
    // Any spelling of the uuid finds it.
    let shouted = sim.to_uppercase().replace('-', "");
    let (code, same) = api.get(&format!("/component/{shouted}")).await;
    assert_eq!((code, &same["properties"]["uuid"]), (200, &json!(sim)));

    let (code, started) = api
        .post(
            &format!("/component/{sim}"),
            json!({"action": "start"}).to_string(),
        )
        .await;
    assert_eq!(
        (code, started["status"]["state"].as_str()),
        (200, Some("starting"))
    );
    api.wait_state(&sim, "running").await;

    let (code, refused) = api
        .post(
            &format!("/component/{sim}"),
            json!({"action": "start"}).to_string(),
        )
        .await;
    assert_eq!(code, 400);
    assert_eq!(refused["error"]["kind"], "invalid-transition");
    assert_eq!(refused["error"]["msg"], refused["error"]["message"]);
    // The refusal carries the component's status (unchanged) and the
    // reference's `exception` object.
    assert_eq!(refused["status"]["state"], "running");
    assert_eq!(refused["exception"]["msg"], refused["error"]["message"]);
    api.wait_state(&sim, "running").await;

    let (code, body) = api
        .post(
            &format!("/component/{sim}"),
            json!({"action": "stop"}).to_string(),
        )
        .await;
    assert_eq!(
        (code, body["status"]["state"].as_str()),
        (200, Some("stopping"))
    );
    api.wait_state(&sim, "idle").await;

    let (code, body) = api
        .post(
            &format!("/component/{sim}"),
            json!({"action": "start", "parameters": {"runtime": "x"}}).to_string(),
        )
        .await;
    assert_eq!(
        (code, body["error"]["kind"].as_str()),
        (400, Some("invalid-parameters"))
    );
    api.wait_state(&sim, "error").await;
    // A ping in state error answers with the status and its error: no refusal.
    let (code, body) = api
        .post(
            &format!("/component/{sim}"),
            json!({"action": "ping"}).to_string(),
        )
        .await;
    assert_eq!(
        (code, body["status"]["state"].as_str()),
        (200, Some("error")),
        "{body}"
    );
    assert_eq!(body["status"]["error"]["kind"], "invalid-parameters");
    let (code, _) = api
        .post(
            &format!("/component/{sim}"),
            json!({"action": "reset"}).to_string(),
        )
        .await;
    assert_eq!(code, 200);
    api.wait_state(&sim, "idle").await;
}

#[tokio::test]
async fn bad_requests_and_unknown_components() {
    let api = api().await;
    let sim = api.sim.clone();
    for body in [
        "not json",
        "[1]",
        "{\"action\": 3}",
        "{\"nothing\": 1}",
        "{\"action\": \"fly\"}",
    ] {
        let (code, answer) = api.post(&format!("/component/{sim}"), body).await;
        assert_eq!(code, 400, "{body}");
        assert!(answer["error"]["message"].is_string(), "{body}: {answer}");
    }
    let (code, body) = api.get(&format!("/component/{}", new_uuid())).await;
    assert_eq!(
        (code, body["error"]["kind"].as_str()),
        (404, Some("unknown-component"))
    );
    let (code, _) = api
        .post(
            &format!("/component/{}", new_uuid()),
            "{\"action\":\"ping\"}",
        )
        .await;
    assert_eq!(code, 404);
    api.wait_state(&sim, "idle").await;
}

#[tokio::test]
async fn create_and_delete_through_the_manager() {
    let api = api().await;
    let manager = api.manager.clone();
    let created = new_uuid();
    let (code, body) = api
        .post(&format!("/component/{manager}"), json!({"action": "create", "parameters": {"name": "N", "category": "simulator", "type": "dummy", "uuid": created}}).to_string())
        .await;
    assert_eq!(code, 200, "{body}");
    assert!(body["status"]["components"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u == created.as_str()));
    api.wait_state(&created, "idle").await;
    let (code, body) = api
        .post(&format!("/component/{manager}"), json!({"action": "create", "parameters": {"name": "N", "category": "simulator", "type": "dummy", "uuid": created}}).to_string())
        .await;
    assert_eq!(
        (code, body["error"]["kind"].as_str()),
        (400, Some("duplicate-uuid"))
    );
    let (code, _) = api
        .post(
            &format!("/component/{manager}"),
            json!({"action": "delete", "parameters": {"uuid": created}}).to_string(),
        )
        .await;
    assert_eq!(code, 200);
    let (code, _) = api.get(&format!("/component/{created}")).await;
    assert_eq!(code, 404);
}
