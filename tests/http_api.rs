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

/// The (method, path) pairs the OpenAPI document describes.
fn documented(doc: &Value) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete", "head", "options"] {
            if item.get(method).is_some() {
                pairs.push((method.to_owned(), path.clone()));
            }
        }
    }
    pairs.sort();
    pairs
}

#[tokio::test]
async fn openapi_document_describes_every_route_and_every_route_answers() {
    let api = api().await;
    let (code, doc) = api.get("/openapi.json").await;
    assert_eq!(code, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    // The document describes exactly the routes the server registers.
    let mut routes: Vec<(String, String)> = villas_controller::api::ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    routes.sort();
    assert_eq!(documented(&doc), routes);
    // Every documented operation answers with one of its documented codes.
    let root = api.base.trim_end_matches("/api/v1");
    for (method, path) in documented(&doc) {
        let url = format!("{root}{}", path.replace("{uuid}", &api.sim));
        let request = match method.as_str() {
            "get" => api.http.get(&url),
            "post" => api
                .http
                .post(&url)
                .body(json!({"action": "ping"}).to_string()),
            other => panic!("undocumented method {other}"),
        };
        let code = request.send().await.unwrap().status().as_u16();
        let responses = &doc["paths"][&path][&method]["responses"];
        assert!(
            responses.get(code.to_string()).is_some(),
            "{method} {path} answered {code}, not documented in {responses}"
        );
        assert!(code < 300, "{method} {path} answered {code}");
    }
    // Every $ref points at something.
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"#/").skip(1) {
        let pointer = reference.split('"').next().unwrap();
        assert!(
            doc.pointer(&format!("/{pointer}")).is_some(),
            "dangling $ref #/{pointer}"
        );
    }
}

/// A daemon whose API needs a token; `api_extra` is added to `api:`.
fn daemon_with_token(api_extra: &str, env: &[(&str, &str)]) -> (Daemon, String, String) {
    let manager = new_uuid();
    let sim = new_uuid();
    let yaml = format!(
        "uuid: {manager}\napi:\n  port: 0\n{api_extra}components:\n{}",
        dummy(&sim, None, "Sim")
    );
    let mut daemon = Daemon::start_with(&yaml, env);
    let base = daemon.api_base();
    daemon.wait_log("supervision tree started");
    (daemon, base, sim)
}

async fn status_of(request: reqwest::RequestBuilder) -> (u16, Option<String>) {
    let response = request.send().await.unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), challenge)
}

#[tokio::test]
async fn bearer_token_from_the_environment_guards_the_api() {
    let token = "env-token-5f1c9a";
    let (_daemon, base, sim) = daemon_with_token(
        "  token_env: VILLAS_TEST_API_TOKEN\n",
        &[("VILLAS_TEST_API_TOKEN", token)],
    );
    let http = reqwest::Client::new();
    let root = base.trim_end_matches("/api/v1").to_owned();
    let component = format!("{base}/component/{sim}");

    // Missing: 401 with a bare Bearer challenge.
    let (code, challenge) = status_of(http.get(&base)).await;
    assert_eq!(code, 401);
    assert_eq!(
        challenge.as_deref(),
        Some("Bearer realm=\"villas-controller\"")
    );
    let body: Value = http.get(&base).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["error"]["kind"], "unauthorized");
    // Wrong (also a prefix of the right one, and another scheme): 401
    // with error="invalid_token" for a wrong bearer token.
    for wrong in ["nope", &token[..token.len() - 1], &format!("{token}x")] {
        let (code, challenge) = status_of(http.get(&base).bearer_auth(wrong)).await;
        assert_eq!(code, 401, "{wrong}");
        assert!(challenge.unwrap().contains("error=\"invalid_token\""));
    }
    let (code, _) = status_of(http.get(&base).basic_auth("user", Some(token))).await;
    assert_eq!(code, 401);
    // Right, in any case of the scheme.
    let (code, _) = status_of(http.get(&base).bearer_auth(token)).await;
    assert_eq!(code, 200);
    let (code, _) = status_of(
        http.get(&base)
            .header("Authorization", format!("bearer {token}")),
    )
    .await;
    assert_eq!(code, 200);

    // An action without the token is refused and not carried out.
    let start = json!({"action": "start"}).to_string();
    let (code, _) = status_of(http.post(&component).body(start.clone())).await;
    assert_eq!(code, 401);
    let status: Value = http
        .get(&component)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"]["state"], "idle");
    let (code, _) = status_of(http.post(&component).bearer_auth(token).body(start)).await;
    assert_eq!(code, 200);

    // Defaults: health open, metrics closed, the OpenAPI document open;
    // unknown paths do not reveal themselves.
    assert_eq!(status_of(http.get(format!("{base}/health"))).await.0, 200);
    assert_eq!(status_of(http.get(format!("{root}/metrics"))).await.0, 401);
    assert_eq!(
        status_of(http.get(format!("{root}/metrics")).bearer_auth(token))
            .await
            .0,
        200
    );
    assert_eq!(
        status_of(http.get(format!("{base}/openapi.json"))).await.0,
        200
    );
    assert_eq!(status_of(http.get(format!("{root}/nowhere"))).await.0, 401);
}

#[tokio::test]
async fn bearer_token_from_a_file_with_metrics_open_and_health_closed() {
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("token");
    std::fs::write(&file, "file-token-77\n").unwrap();
    let (_daemon, base, _sim) = daemon_with_token(
        &format!(
            "  token_file: {}\n  open_health: false\n  open_metrics: true\n",
            file.display()
        ),
        &[],
    );
    let http = reqwest::Client::new();
    let root = base.trim_end_matches("/api/v1").to_owned();
    assert_eq!(status_of(http.get(format!("{base}/health"))).await.0, 401);
    assert_eq!(
        status_of(
            http.get(format!("{base}/health"))
                .bearer_auth("file-token-77")
        )
        .await
        .0,
        200
    );
    assert_eq!(status_of(http.get(format!("{root}/metrics"))).await.0, 200);
    assert_eq!(status_of(http.get(&base)).await.0, 401);
}

#[tokio::test]
async fn an_unusable_token_setting_is_a_configuration_error() {
    let manager = new_uuid();
    for (api_extra, key) in [
        (
            "  token_env: VILLAS_TEST_TOKEN_SURELY_UNSET\n",
            "api.token_env",
        ),
        (
            "  token_file: /nonexistent/villas-token\n",
            "api.token_file",
        ),
    ] {
        let yaml = format!("uuid: {manager}\napi:\n  port: 0\n{api_extra}");
        let mut daemon = Daemon::start(&yaml);
        let line = daemon.wait_log("invalid configuration");
        assert!(line.contains(key), "{line}");
        assert_eq!(daemon.wait_exit(), Some(78));
    }
}

/// A 400 carries the error where the bus publishes it (`status.error` of
/// the component's status), besides the top-level `error` and the
/// reference's `exception`: for a refused action and a malformed one.
#[tokio::test]
async fn http_refusals_carry_the_error_in_the_status_as_the_bus_does() {
    let api = api().await;
    let sim = api.sim.clone();
    let (code, refused) = api
        .post(
            &format!("/component/{sim}"),
            json!({"action": "stop"}).to_string(),
        )
        .await;
    assert_eq!(code, 400, "{refused}");
    assert_eq!(refused["status"]["state"], "idle");
    assert_eq!(refused["status"]["error"]["kind"], "invalid-transition");
    assert_eq!(refused["status"]["error"], refused["error"]);
    assert_eq!(refused["exception"]["msg"], refused["error"]["message"]);
    for body in ["not json", "{\"action\": \"fly\"}", "{\"nothing\": 1}"] {
        let (code, answer) = api.post(&format!("/component/{sim}"), body).await;
        assert_eq!(code, 400, "{body}");
        assert_eq!(answer["status"]["state"], "idle", "{body}: {answer}");
        assert!(
            answer["status"]["error"]["message"].is_string(),
            "{body}: {answer}"
        );
        assert_eq!(answer["status"]["error"], answer["error"], "{body}");
        assert_eq!(answer["exception"]["msg"], answer["error"]["message"]);
    }
    // The refusal kept the state: the component's own status has no error.
    let (code, status) = api.get(&format!("/component/{sim}")).await;
    assert_eq!(code, 200);
    assert!(status["status"].get("error").is_none(), "{status}");
}
