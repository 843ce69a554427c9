//! Black-box tests of `GET /metrics`: the real daemon on the real broker
//! (an IC's one state series follows a start; its four per-IC series;
//! actions, refusals and runs counted by type; ICs per state; deletion; bus
//! traffic), `promtool check metrics` on the exposition, and the real
//! Prometheus server (Debian's `prometheus`, installed by `.ci/run`)
//! scraping a daemon, queried through its HTTP API.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The daemon's `/metrics` URL from its API base (`http://addr/api/v1`).
fn metrics_url(api_base: &str) -> String {
    format!("{}/metrics", api_base.trim_end_matches("/api/v1"))
}

async fn scrape(url: &str) -> String {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

/// The label pairs of an exposition line `name{a="1",b="2"} value`
/// (label values in tests have no escaped quotes).
/// One exposition line: name, label pairs, value.
type Line<'a> = (&'a str, Vec<(&'a str, &'a str)>, f64);

fn parse_line(line: &str) -> Option<Line<'_>> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}')?),
        None => (series, ""),
    };
    let pairs = labels
        .split("\",")
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once("=\"")?;
            Some((k, v.trim_end_matches('"')))
        })
        .collect();
    Some((name, pairs, value))
}

/// Values of the series of `name` that carry every label of `labels`.
fn samples(text: &str, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(parse_line)
        .filter(|(n, pairs, _)| *n == name && labels.iter().all(|l| pairs.contains(l)))
        .map(|(_, _, v)| v)
        .collect()
}

/// The one value of `name{labels}`; panics if there is not exactly one.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = samples(text, name, labels);
    assert_eq!(found.len(), 1, "{name}{labels:?}: {found:?} in\n{text}");
    found[0]
}

/// The states whose series is 1 for `uuid`.
fn current_states(text: &str, uuid: &str) -> Vec<String> {
    text.lines()
        .filter_map(parse_line)
        .filter(|(n, pairs, v)| {
            *n == "villas_ic_state" && pairs.contains(&("uuid", uuid)) && *v == 1.0
        })
        .filter_map(|(_, pairs, _)| {
            pairs
                .iter()
                .find(|(k, _)| *k == "state")
                .map(|(_, v)| v.to_string())
        })
        .collect()
}

/// The labels of the families aggregated by type, for the dummy simulator.
const DUMMY: [(&str, &str); 2] = [("category", "simulator"), ("type", "dummy")];

/// `villas_ics` of the dummy simulators in `realm` and `state`.
fn ics(text: &str, realm: &str, state: &str) -> f64 {
    sample(
        text,
        "villas_ics",
        &[DUMMY[0], DUMMY[1], ("realm", realm), ("state", state)],
    )
}

fn config_with_api(exchange: &str, manager: &str, components: &str) -> String {
    config(exchange, manager, components).replace("api:\n  enabled: false", "api:\n  port: 0")
}

/// Sends a ping to `uuid` and waits for its answer: everything the IC did
/// for earlier messages (counters included) is done by then.
/// Statuses received before the ping are discarded first.
async fn ping_barrier(client: &mut Client, uuid: &str) {
    client.backlog.clear();
    client.act(uuid, &json!({"action": "ping"})).await.unwrap();
    let u = uuid.to_owned();
    client
        .wait_for("ping answer", move |m| m.uuid().as_deref() == Some(&u))
        .await
        .unwrap();
}

#[tokio::test]
async fn ic_series_follow_actions_on_the_broker() {
    let exchange = test_exchange();
    let manager = new_uuid();
    let sim = new_uuid();
    let mut client = connect(&exchange).await;
    let mut daemon = Daemon::start(&config_with_api(
        &exchange,
        &manager,
        &dummy(&sim, Some("lab"), "Sim"),
    ));
    let url = metrics_url(&daemon.api_base());
    client.wait_state(&sim, "idle").await.unwrap();

    let text = scrape(&url).await;
    let labels = [
        ("uuid", sim.as_str()),
        ("name", "Sim"),
        ("category", "simulator"),
        ("type", "dummy"),
        ("realm", "lab"),
    ];
    assert_eq!(current_states(&text, &sim), ["idle"]);
    // One state series per IC, with the configured labels; four series in
    // all per IC.
    assert_eq!(samples(&text, "villas_ic_state", &labels).len(), 1);
    assert_eq!(
        text.lines().filter(|l| l.contains(sim.as_str())).count(),
        4,
        "{text}"
    );
    for name in [
        "villas_ic_state_changes_total",
        "villas_ic_restarts_total",
        "villas_ic_state_changed_timestamp_seconds",
    ] {
        assert_eq!(samples(&text, name, &labels).len(), 1, "{name}");
    }
    // Its type's aggregated series exist from the start, without IC labels.
    assert_eq!(
        sample(
            &text,
            "villas_actions_refused_total",
            &[DUMMY[0], DUMMY[1], ("action", "start")]
        ),
        0.0
    );
    assert_eq!(ics(&text, "lab", "idle"), 1.0);
    assert_eq!(ics(&text, "lab", "running"), 0.0);
    assert_eq!(sample(&text, "villas_bus_connected", &[]), 1.0);
    assert_eq!(
        samples(
            &text,
            "villas_controller_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        [1.0]
    );
    assert!(sample(&text, "process_resident_memory_bytes", &[]) > 0.0);

    client.act(&sim, &json!({"action": "start"})).await.unwrap();
    client.wait_state(&sim, "running").await.unwrap();
    client.act(&sim, &json!({"action": "start"})).await.unwrap();
    client.wait_error(&sim, "invalid-transition").await.unwrap();
    ping_barrier(&mut client, &sim).await;

    let text = scrape(&url).await;
    assert_eq!(current_states(&text, &sim), ["running"]);
    assert_eq!(
        samples(&text, "villas_ic_state", &[("uuid", &sim)]),
        [1.0],
        "the idle series is gone"
    );
    assert_eq!(
        (ics(&text, "lab", "idle"), ics(&text, "lab", "running")),
        (0.0, 1.0)
    );
    let action =
        |name: &str, kind: &str| sample(&text, name, &[DUMMY[0], DUMMY[1], ("action", kind)]);
    assert_eq!(action("villas_actions_accepted_total", "start"), 1.0);
    assert_eq!(action("villas_actions_refused_total", "start"), 1.0);
    assert_eq!(action("villas_actions_accepted_total", "ping"), 1.0);
    assert_eq!(
        sample(&text, "villas_ic_state_changes_total", &[("uuid", &sim)]),
        2.0,
        "idle -> starting -> running"
    );
    assert_eq!(
        sample(
            &text,
            "villas_action_handling_duration_seconds_count",
            &[("action", "start")]
        ),
        2.0
    );
    assert!(sample(&text, "villas_bus_messages_received_total", &[]) >= 3.0);
    assert!(sample(&text, "villas_bus_messages_published_total", &[]) >= 4.0);
    assert!(
        sample(
            &text,
            "villas_bus_messages_dropped_total",
            &[("reason", "status")]
        ) >= 1.0,
        "our own statuses come back and are dropped"
    );

    // A stop ends the run: one observation in its type's run durations.
    client.act(&sim, &json!({"action": "stop"})).await.unwrap();
    client.wait_state(&sim, "idle").await.unwrap();
    let text = scrape(&url).await;
    assert_eq!(
        sample(&text, "villas_run_duration_seconds_count", &DUMMY),
        1.0
    );

    // A created IC gets series; deleting it removes them.
    let created = new_uuid();
    client
        .act(
            &manager,
            &json!({"action": "create", "parameters": {"name": "Made", "category": "simulator", "type": "dummy", "uuid": created}}),
        )
        .await.unwrap();
    client.wait_state(&created, "idle").await.unwrap();
    let text = scrape(&url).await;
    assert_eq!(current_states(&text, &created), ["idle"]);
    assert_eq!(ics(&text, "", "idle"), 1.0, "the created IC has no realm");
    client
        .act(
            &manager,
            &json!({"action": "delete", "parameters": {"uuid": created}}),
        )
        .await
        .unwrap();
    client.wait_state(&created, "gone").await.unwrap();
    let text = scrape(&url).await;
    assert!(
        !text.contains(&created),
        "a deleted IC's series remain:\n{text}"
    );
    assert_eq!(ics(&text, "", "idle"), 0.0);
    assert_eq!(current_states(&text, &sim), ["idle"]);
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
    client.close_and_delete_exchange().await.unwrap();
}

/// The names in the `# TYPE` lines of `text`.
fn villas_metrics_families(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect()
}

fn promtool() -> Command {
    let found = Command::new("promtool").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "promtool not found: install Debian's `prometheus` package (.ci/run does)"
    );
    Command::new("promtool")
}

#[tokio::test]
async fn promtool_accepts_the_exposition() {
    let manager = new_uuid();
    let sim = new_uuid();
    // A name that needs escaping in the exposition format; and enough ICs
    // for the per-IC families to be streamed in several chunks.
    let mut yaml = format!(
        "uuid: {manager}\napi:\n  port: 0\ncomponents:\n- category: simulator\n  type: dummy\n  name: 'Sim \"quoted\" \\ back ü'\n  uuid: {sim}\n"
    );
    const MORE: usize = 1200;
    for n in 0..MORE {
        yaml.push_str(&format!(
            "- {{category: simulator, type: dummy, name: 'IC {n}', uuid: {}}}\n",
            new_uuid()
        ));
    }
    let mut daemon = Daemon::start(&yaml);
    let url = metrics_url(&daemon.api_base());
    daemon.wait_log("supervision tree started");
    // The manager creates its components as it starts: poll (bounded)
    // until every one has its series.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let text = loop {
        let text = scrape(&url).await;
        let idle = samples(&text, "villas_ics", &[DUMMY[0], ("state", "idle")]);
        if idle == [(MORE + 1) as f64] {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every IC has series: {idle:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        text.contains(r#"name="Sim \"quoted\" \\ back ü""#),
        "{text}"
    );
    // Each family announced once; four series per IC (and the manager).
    for name in villas_metrics_families(&text) {
        assert_eq!(
            text.matches(&format!("# TYPE {name} ")).count(),
            1,
            "{name}"
        );
    }
    let per_ic = text.lines().filter(|l| l.contains("uuid=\"")).count();
    assert_eq!(per_ic, 4 * (MORE + 2));
    let mut child = promtool()
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool check metrics: {report}");
    assert!(report.trim().is_empty(), "promtool lint findings: {report}");
}

/// A Prometheus server; killed when dropped.
struct Prometheus {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts `prometheus` scraping `target` (host:port) every second as
    /// job `villas-controller`, with `extra` appended to the scrape config.
    fn start(target: &str, extra: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: villas-controller\n    static_configs:\n      - targets: ['{target}']\n{extra}"
            ),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("prometheus.log")).unwrap(),
            ))
            .spawn()
            .expect(
                "the prometheus server runs: install Debian's `prometheus` package (.ci/run does)",
            );
        Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Polls the query API until `query` returns a sample satisfying
    /// `pred` (bounded); returns the result vector.
    async fn wait_query(&mut self, query: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut last = String::new();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("prometheus exited ({status}):\n{}", self.log());
            }
            let answer = http
                .get(format!("{}/api/v1/query", self.base))
                .query(&[("query", query)])
                .send()
                .await;
            if let Ok(response) = answer {
                let body: Value = response.json().await.unwrap_or_default();
                assert_ne!(
                    body["errorType"], "bad_data",
                    "{query:?} is not valid PromQL: {body}"
                );
                if body["status"] == "success" {
                    let result = body["data"]["result"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    if pred(&result) {
                        return result;
                    }
                }
                last = body.to_string();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "prometheus never answered {query:?} as expected; last answer: {last}\n{}",
                self.log()
            );
            // Poll interval of the query API (a scrape happens every second).
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn value_of(sample: &Value) -> f64 {
    sample["value"][1].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn prometheus_scrapes_an_ic_state_with_a_bearer_token() {
    let manager = new_uuid();
    let sim = new_uuid();
    let token = "prom-scrape-token-0123456789";
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let yaml = format!(
        "uuid: {manager}\napi:\n  port: 0\n  token_file: {}\ncomponents:\n{}",
        token_file.display(),
        dummy(&sim, Some("lab"), "Sim")
    );
    let mut daemon = Daemon::start(&yaml);
    let base = daemon.api_base();
    daemon.wait_log("supervision tree started");
    let target = base
        .trim_start_matches("http://")
        .trim_end_matches("/api/v1")
        .to_owned();
    let mut prometheus = Prometheus::start(
        &target,
        &format!(
            "    authorization:\n      credentials_file: {}\n",
            token_file.display()
        ),
    );
    let idle = format!("villas_ic_state{{uuid=\"{sim}\",state=\"idle\"}}");
    let result = prometheus
        .wait_query(&idle, |r| r.first().is_some_and(|s| value_of(s) == 1.0))
        .await;
    assert_eq!(result[0]["metric"]["name"], "Sim");
    assert_eq!(result[0]["metric"]["realm"], "lab");
    assert_eq!(result[0]["metric"]["job"], "villas-controller");

    let answer = reqwest::Client::new()
        .post(format!("{base}/component/{sim}"))
        .bearer_auth(token)
        .body(json!({"action": "start"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let running = format!("villas_ic_state{{uuid=\"{sim}\",state=\"running\"}} == 1");
    let result = prometheus.wait_query(&running, |r| r.len() == 1).await;
    assert_eq!(value_of(&result[0]), 1.0);
    // The idle series went stale with the transition: the IC has one.
    let all = format!("villas_ic_state{{uuid=\"{sim}\"}}");
    let result = prometheus.wait_query(&all, |r| r.len() == 1).await;
    assert_eq!(result[0]["metric"]["state"], "running");
    let up = prometheus
        .wait_query("up{job=\"villas-controller\"}", |r| r.len() == 1)
        .await;
    assert_eq!(value_of(&up[0]), 1.0, "the scrape succeeds with the token");

    // Every query of the Grafana dashboard and every alert expression is
    // valid PromQL for this Prometheus; the state timeline's coded state
    // of the running IC is 2 (its value mapping says "running").
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("metrics");
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("grafana-dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut queries: Vec<(String, String)> = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$job", "villas-controller")
                .replace("$instance", ".*")
                .replace("$realm", ".*")
                .replace("$__rate_interval", "1m");
            queries.push((panel["title"].as_str().unwrap().to_owned(), expr));
        }
    }
    let alerts = std::fs::read_to_string(root.join("alerts.yml")).unwrap();
    queries.extend(
        alerts
            .lines()
            .filter_map(|l| l.trim().strip_prefix("expr: "))
            .map(|e| ("alerts.yml".to_owned(), e.to_owned())),
    );
    assert!(queries.len() > 20, "{queries:?}");
    for (title, expr) in &queries {
        prometheus.wait_query(expr, |_| true).await;
        if title == "IC states over time" {
            let coded = prometheus
                .wait_query(expr, |r| {
                    r.iter()
                        .any(|s| s["metric"]["uuid"] == sim.as_str() && value_of(s) == 2.0)
                })
                .await;
            assert_eq!(coded.len(), 2, "the manager and the simulator: {coded:?}");
        }
    }
}
