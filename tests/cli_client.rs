//! Black-box tests of the client CLI (`monitor`, `simulator`, `discover`)
//! driving a running daemon over the real RabbitMQ: the messages the CLI
//! publishes are checked by an independent observer on the exchange, the
//! daemon's answers by the CLI's output and exit code. The last test runs
//! the reference's own CLI (PyPI villas-controller 0.3.0) instead.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use villas_client::{Binding, Session};

/// A daemon with its generic manager and dummies `A` and `B` in one realm,
/// an observer on its exchange, and the config file the CLI shares.
struct Lab {
    daemon: Daemon,
    client: Client,
    manager: String,
    a: String,
    b: String,
    realm: String,
}

impl Lab {
    async fn start() -> Lab {
        let exchange = test_exchange();
        let mut client = connect(&exchange).await;
        let (manager, a, b) = (new_uuid(), new_uuid(), new_uuid());
        let realm = format!("lab.{}", new_uuid());
        let components = [dummy(&a, Some(&realm), "A"), dummy(&b, Some(&realm), "B")].concat();
        let daemon = Daemon::start(&config(&exchange, &manager, &components));
        for uuid in [&manager, &a, &b] {
            client.wait_state(uuid, "idle").await.unwrap();
        }
        Lab {
            daemon,
            client,
            manager,
            a,
            b,
            realm,
        }
    }

    fn config(&self) -> PathBuf {
        self.daemon.dir.path().join("config.yaml")
    }

    /// `villas-controller -c <the daemon's config> ARGS...`
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary());
        command
            .arg("-c")
            .arg(self.config())
            .args(args)
            .env_remove("RUST_LOG")
            .env("XDG_DATA_HOME", self.daemon.dir.path())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    async fn run(&self, args: &[&str]) -> Output {
        let output = self.command(args).output().await.unwrap();
        eprintln!(
            "cli {args:?} -> {:?}\nstdout:\n{}\nstderr:\n{}",
            output.status.code(),
            text(&output.stdout),
            text(&output.stderr)
        );
        output
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json_lines(output: &Output) -> Vec<Value> {
    text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("every stdout line is JSON"))
        .collect()
}

/// The CLI without a daemon (input errors, broker errors).
async fn bare(args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .env_remove("RUST_LOG")
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .env("XDG_CONFIG_DIRS", "/nonexistent")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap()
}

/// A long-running CLI process (monitor) with its output read line by line.
struct Running {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Lines<BufReader<ChildStderr>>,
}

impl Running {
    fn spawn(mut command: Command) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        Running {
            child,
            stdout,
            stderr,
        }
    }

    /// Waits for a stderr line containing `needle`.
    async fn wait_stderr(&mut self, needle: &str) {
        let found = tokio::time::timeout(DEADLINE, async {
            while let Some(line) = self.stderr.next_line().await.unwrap() {
                eprintln!("cli stderr| {line}");
                if line.contains(needle) {
                    return;
                }
            }
            panic!("stderr ended before {needle:?}");
        })
        .await;
        found.unwrap_or_else(|_| panic!("no stderr line with {needle:?}"));
    }

    /// Stdout lines up to and including the first that satisfies `pred`.
    async fn stdout_until(
        &mut self,
        what: &str,
        mut pred: impl FnMut(&str) -> bool,
    ) -> Vec<String> {
        let mut lines = Vec::new();
        let found = tokio::time::timeout(DEADLINE, async {
            while let Some(line) = self.stdout.next_line().await.unwrap() {
                let done = pred(&line);
                lines.push(line);
                if done {
                    return;
                }
            }
            panic!("stdout ended before {what}");
        })
        .await;
        if found.is_err() {
            panic!(
                "timed out waiting for {what}; stdout so far:\n{}",
                lines.join("\n")
            );
        }
        lines
    }

    /// Sends `signal` and returns the exit code.
    async fn stop(mut self, signal: &str) -> Option<i32> {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(status.success());
        tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("the CLI exits on the signal")
            .unwrap()
            .code()
    }
}

#[tokio::test]
async fn discover_tables_every_ic_that_answers() {
    let lab = Lab::start().await;
    let output = lab.run(&["discover", "--timeout", "2"]).await;
    assert_eq!(output.status.code(), Some(0));
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "UUID",
            "NAME",
            "CATEGORY/TYPE",
            "STATE",
            "UPTIME",
            "MANAGED_BY"
        ]
    );
    assert_eq!(lines.len(), 4, "a header and one row per IC:\n{stdout}");
    for (uuid, name, kind) in [
        (&lab.manager, "Generic", "manager/generic"),
        (&lab.a, "A", "simulator/dummy"),
        (&lab.b, "B", "simulator/dummy"),
    ] {
        let row = lines
            .iter()
            .find(|l| l.starts_with(uuid.as_str()))
            .unwrap_or_else(|| panic!("no row for {uuid}:\n{stdout}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert!(cells.contains(&kind), "{row}");
        assert!(cells.contains(&"idle"), "{row}");
        assert!(row.contains(name), "{row}");
        // Every IC is managed by the daemon's manager (itself included).
        assert_eq!(cells.last(), Some(&lab.manager.as_str()), "{row}");
    }
}

#[tokio::test]
async fn start_with_the_reference_flags_and_wait_for_running() {
    let mut lab = Lab::start().await;
    let output = lab
        .run(&[
            "simulator",
            "-u",
            &lab.a,
            "start",
            "-p",
            "{runtime: 30}",
            "-m",
            r#"{"url": "https://models.example/m.zip"}"#,
            "-r",
            "url: https://results.example/",
            "--wait",
            "running",
        ])
        .await;
    assert_eq!(output.status.code(), Some(0));
    let statuses = json_lines(&output);
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0]["properties"]["uuid"], lab.a.as_str());
    assert_eq!(statuses[0]["status"]["state"], "running");

    // What the CLI published, as another client on the exchange saw it
    // (kept in the backlog while waiting for A's state).
    lab.client.wait_state(&lab.a, "running").await.unwrap();
    let sent = lab
        .client
        .backlog
        .iter()
        .find(|s| s.body["action"] == "start")
        .expect("the start action went over the exchange")
        .clone();
    assert_eq!(sent.headers, villas_sdk::Headers::uuid(lab.a.clone()));
    assert_eq!(sent.body["parameters"], json!({"runtime": 30}));
    assert_eq!(
        sent.body["model"],
        json!({"url": "https://models.example/m.zip"})
    );
    assert_eq!(
        sent.body["results"],
        json!({"url": "https://results.example/"})
    );

    // Realm-wide stop: B is idle and refuses it, so the wait fails.
    let output = lab
        .run(&["simulator", "-r", &lab.realm, "stop", "--wait", "idle"])
        .await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("{} (B) refused stop", lab.b)),
        "{stderr}"
    );

    // A alone was stopped by it all the same.
    lab.client.wait_state(&lab.a, "idle").await.unwrap();
    let output = lab
        .run(&["simulator", "-u", &lab.a, "--wait", "idle", "reset"])
        .await;
    assert_eq!(output.status.code(), Some(0));
}

#[tokio::test]
async fn wait_fails_when_the_ic_ends_in_error() {
    let lab = Lab::start().await;
    // The dummy fails as soon as it runs: the run never ends in idle.
    let output = lab
        .run(&[
            "simulator",
            "-u",
            &lab.a,
            "start",
            "-p",
            "{runtime: 30, chaos: fail}",
            "--wait",
            "idle",
        ])
        .await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("{} (A) is in error", lab.a)),
        "{stderr}"
    );
    let last = json_lines(&output);
    assert_eq!(last[0]["status"]["state"], "error");
}

#[tokio::test]
async fn wait_fails_when_the_parameters_are_refused() {
    let lab = Lab::start().await;
    let output = lab
        .run(&[
            "simulator",
            "-u",
            &lab.a,
            "start",
            "-p",
            "runtime: -1",
            "--wait",
            "running",
        ])
        .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("refused start"));
}

#[tokio::test]
async fn wait_times_out_with_exit_124() {
    let lab = Lab::start().await;
    let output = lab
        .run(&[
            "simulator",
            "-u",
            &lab.a,
            "--wait",
            "paused",
            "--timeout",
            "3",
            "start",
            "-p",
            "runtime: 60",
        ])
        .await;
    assert_eq!(output.status.code(), Some(124));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("timed out after 3 s"), "{stderr}");
    assert!(
        stderr.contains(&format!("{} (A) still running", lab.a)),
        "{stderr}"
    );
}

#[tokio::test]
async fn create_and_delete_with_wait() {
    let lab = Lab::start().await;
    let output = lab
        .run(&[
            "simulator",
            "-u",
            &lab.manager,
            "create",
            "-p",
            "{category: simulator, type: dummy, name: Created}",
            "--wait",
            "idle",
        ])
        .await;
    assert_eq!(output.status.code(), Some(0));
    let created = json_lines(&output);
    let uuid = created[0]["properties"]["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(created[0]["properties"]["name"], "Created");
    assert_eq!(created[0]["status"]["managed_by"], lab.manager.as_str());

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("delete.json");
    std::fs::write(&file, json!({"uuid": uuid}).to_string()).unwrap();
    let output = lab
        .run(&[
            "simulator",
            "-u",
            &lab.manager,
            "delete",
            "-P",
            file.to_str().unwrap(),
            "--wait",
            "gone",
        ])
        .await;
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(json_lines(&output)[0]["status"]["state"], "gone");
}

#[tokio::test]
async fn ping_prints_replies_as_json_lines_or_a_table() {
    let lab = Lab::start().await;
    let output = lab.run(&["simulator", "-u", &lab.a, "ping"]).await;
    assert_eq!(output.status.code(), Some(0));
    let replies = json_lines(&output);
    assert_eq!(replies.len(), 1, "only the addressed IC's reply");
    assert_eq!(replies[0]["properties"]["uuid"], lab.a.as_str());
    assert_eq!(replies[0]["status"]["state"], "idle");

    let output = lab
        .run(&[
            "simulator",
            "-r",
            &lab.realm,
            "--table",
            "--timeout",
            "2",
            "ping",
        ])
        .await;
    assert_eq!(output.status.code(), Some(0));
    let stdout = text(&output.stdout);
    assert_eq!(stdout.lines().count(), 3, "header, A and B:\n{stdout}");
    assert!(stdout.contains(&lab.a) && stdout.contains(&lab.b));
    assert!(
        !stdout.contains(&format!("{}  ", lab.manager)),
        "the manager has no realm"
    );

    let nobody = new_uuid();
    let output = lab
        .run(&["simulator", "-u", &nobody, "--timeout", "0.5", "ping"])
        .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("no IC answered"));
}

#[tokio::test]
async fn monitor_prints_the_filtered_messages_as_the_reference() {
    let mut lab = Lab::start().await;
    // `-c` after `monitor` is the category filter (before it: the file).
    let mut monitor =
        Running::spawn(lab.command(&["monitor", "-c", "simulator", "-r", &lab.realm]));
    monitor.wait_stderr("monitoring").await;

    // The manager's status (category manager, no realm) is not shown: it
    // is routed before A's, so it would come first.
    lab.client
        .act(&lab.manager, &json!({"action": "ping"}))
        .await
        .unwrap();
    lab.client.wait_state(&lab.manager, "idle").await.unwrap();
    lab.client
        .act(&lab.a, &json!({"action": "ping"}))
        .await
        .unwrap();
    let a = lab.a.clone();
    let lines = monitor
        .stdout_until("A's status", |line| {
            let entry: Value = serde_json::from_str(line).unwrap();
            entry["payload"]["properties"]["uuid"] == a.as_str()
        })
        .await;
    assert_eq!(
        lines.len(),
        1,
        "only A's status passes the filter: {lines:#?}"
    );
    let entry: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(entry["payload"]["status"]["state"], "idle");
    assert_eq!(entry["application_headers"]["uuid"], lab.a.as_str());
    assert_eq!(entry["application_headers"]["realm"], lab.realm.as_str());
    assert_eq!(entry["content_type"], "application/json");
    assert!(entry["time"].as_f64().unwrap() > 1.0e9);
    assert_eq!(monitor.stop("TERM").await, Some(0));
}

#[tokio::test]
async fn monitor_table_follows_states() {
    let lab = Lab::start().await;
    let mut monitor = Running::spawn(lab.command(&["monitor", "--table"]));
    monitor.wait_stderr("monitoring").await;
    // The table fills from its own ping at start.
    let a = lab.a.clone();
    monitor
        .stdout_until("A idle", |line| {
            line.starts_with(a.as_str()) && line.contains(" idle ")
        })
        .await;
    lab.client
        .act(
            &lab.a,
            &json!({"action": "start", "parameters": {"runtime": 30}}),
        )
        .await
        .unwrap();
    let lines = monitor
        .stdout_until("A running", |line| {
            line.starts_with(a.as_str()) && line.contains(" running ")
        })
        .await;
    assert!(lines.iter().any(|l| l.contains("STATE")));
    assert_eq!(monitor.stop("INT").await, Some(0));
}

#[tokio::test]
async fn bad_parameters_are_reported_with_line_and_column() {
    let output = bare(&["simulator", "-u", "x", "start", "-p", r#"{"runtime": 5,,}"#]).await;
    assert_eq!(output.status.code(), Some(65));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("-p/--parameters: not valid JSON"),
        "{stderr}"
    );
    assert!(stderr.contains("at line 1 column 15"), "{stderr}");

    let output = bare(&["simulator", "-u", "x", "create", "-p", "a: 1\n b: [2"]).await;
    assert_eq!(output.status.code(), Some(65));
    assert!(text(&output.stderr).contains("line 2 column"));

    let output = bare(&["simulator", "-u", "x", "start", "-P", "/nonexistent/p.yaml"]).await;
    assert_eq!(output.status.code(), Some(65));
    assert!(text(&output.stderr).contains("cannot read /nonexistent/p.yaml"));
}

#[tokio::test]
async fn no_broker_is_a_clear_error_without_the_password() {
    let output = bare(&[
        "-b",
        "amqp://villas:pw-Nobody-Knows@127.0.0.1:1/%2F",
        "simulator",
        "-u",
        "x",
        "stop",
    ])
    .await;
    assert_eq!(output.status.code(), Some(69));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("cannot use the broker at amqp://villas:***@127.0.0.1:1/"),
        "{stderr}"
    );
    assert!(!stderr.contains("pw-Nobody-Knows"), "{stderr}");
}

#[tokio::test]
async fn an_action_must_address_someone() {
    let output = bare(&["simulator", "stop"]).await;
    assert_eq!(output.status.code(), Some(64));
    assert!(text(&output.stderr).contains("stop addresses nobody"));
}

#[tokio::test]
async fn config_flag_works_after_daemon_subcommands_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, "uuid: 5f0c7a3e-8d0b-4c52-9b1e-2a41c7d9e610\n").unwrap();
    let output = bare(&["check-config", "-c", path.to_str().unwrap()]).await;
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output.stdout).contains("5f0c7a3e-8d0b-4c52-9b1e-2a41c7d9e610"));
}

/// A component bound as the reference binds each of its components: a
/// private queue with `x-match: any` on its own headers only (here
/// `category: simulator` and its uuid), so a ping with `uuid: ""` never
/// reaches it. It answers a ping with a status shaped like the
/// reference's.
struct ReferenceLike {
    uuid: String,
    /// Ends the answering task, which then closes its session.
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl ReferenceLike {
    async fn start(exchange: &str) -> ReferenceLike {
        let uuid = new_uuid();
        let session = Session::open(&Target::new(amqp_url(), exchange))
            .await
            .unwrap();
        let binding = Binding::Any(Headers {
            category: Some("simulator".into()),
            uuid: Some(uuid.clone()),
            ..Headers::default()
        });
        let mut subscription = session.subscribe(&binding).await.unwrap();
        let me = uuid.clone();
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    message = subscription.next() => message,
                    _ = &mut stopped => break,
                };
                let Ok(message) = message else { break };
                if message.payload()["action"] != "ping" {
                    continue;
                }
                let status = json!({
                    "status": {"state": "idle", "version": "0.4.1", "uptime": 1.5, "host": "ref"},
                    "properties": {"name": "Reference dummy", "category": "simulator",
                                   "type": "dummy", "uuid": me, "realm": null},
                    "schema": {}
                });
                let headers = Headers {
                    category: Some("simulator".into()),
                    type_name: Some("dummy".into()),
                    uuid: Some(me.clone()),
                    ..Headers::default()
                };
                let _ = session.publish(&headers, &status).await;
            }
            session.close().await;
        });
        ReferenceLike { uuid, stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

#[tokio::test]
async fn discover_ping_and_monitor_find_reference_daemons_too() {
    let lab = Lab::start().await;
    let reference = ReferenceLike::start(lab.client.exchange()).await;
    let ours = [&lab.manager, &lab.a, &lab.b];

    let output = lab.run(&["discover", "--timeout", "2"]).await;
    assert_eq!(output.status.code(), Some(0));
    let stdout = text(&output.stdout);
    // Two daemons: each group under a `#` line.
    let rows: Vec<&str> = stdout
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with('#'))
        .collect();
    for uuid in ours.into_iter().chain([&reference.uuid]) {
        let found = rows.iter().filter(|r| r.starts_with(uuid.as_str())).count();
        assert_eq!(found, 1, "one row for {uuid}:\n{stdout}");
    }
    assert_eq!(rows.len(), 4, "{stdout}");
    let row = rows
        .iter()
        .find(|r| r.starts_with(&reference.uuid))
        .unwrap();
    assert!(
        row.contains("simulator/dummy") && row.contains("Reference dummy"),
        "{row}"
    );

    // A bare ping: every IC, each answer once.
    let output = lab.run(&["simulator", "--timeout", "2", "ping"]).await;
    assert_eq!(output.status.code(), Some(0));
    let uuids: Vec<String> = json_lines(&output)
        .iter()
        .map(|reply| reply["properties"]["uuid"].as_str().unwrap().to_owned())
        .collect();
    for uuid in ours.into_iter().chain([&reference.uuid]) {
        let answers = uuids.iter().filter(|u| *u == uuid).count();
        assert_eq!(answers, 1, "{uuid} in {uuids:?}");
    }

    // The table of `monitor --table` fills from its own pings.
    let mut monitor = Running::spawn(lab.command(&["monitor", "--table"]));
    monitor.wait_stderr("monitoring").await;
    let me = reference.uuid.clone();
    monitor
        .stdout_until("the reference's row", |line| line.starts_with(me.as_str()))
        .await;
    assert_eq!(monitor.stop("TERM").await, Some(0));
    reference.stop().await;
}

/// A configuration shared with the daemon whose daemon part the client's
/// user cannot use: an unreadable token file, a state directory whose
/// stored uuid cannot be read, a component of an unknown type, an API
/// bind address that is not one, a key of a later version.
fn unusable_daemon_part(lab: &Lab, dir: &Path, broker: &str) -> PathBuf {
    let state = dir.join("state");
    std::fs::create_dir_all(state.join("uuid")).unwrap();
    let path = dir.join("shared.yaml");
    std::fs::write(
        &path,
        format!(
            "{broker}state_dir: {state:?}\napi:\n  bind: not-an-address\n  token_file: /nonexistent/villas/token\n\
             components:\n- {{category: simulator, type: no-such-kind, uuid: {}}}\nfuture_setting: 1\n",
            lab.a
        ),
    )
    .unwrap();
    path
}

fn cli_with(config: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command
        .arg("-c")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn client_commands_read_only_the_broker_section() {
    let mut lab = Lab::start().await;
    let dir = tempfile::tempdir().unwrap();
    let broker = format!(
        "broker:\n  url: {}\n  exchange: {}\n",
        amqp_url(),
        lab.client.exchange()
    );
    let shared = unusable_daemon_part(&lab, dir.path(), &broker);
    // The daemon would refuse it.
    let check = cli_with(&shared, &["check-config"]).output().await.unwrap();
    assert_eq!(check.status.code(), Some(78));

    let output = cli_with(&shared, &["discover", "--timeout", "1"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains(&lab.a));

    let output = cli_with(&shared, &["simulator", "-u", &lab.a, "ping"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(json_lines(&output)[0]["properties"]["uuid"], lab.a.as_str());

    let mut monitor = Running::spawn(cli_with(&shared, &["monitor", "-u", &lab.a]));
    monitor.wait_stderr("monitoring").await;
    lab.client
        .act(&lab.a, &json!({"action": "ping"}))
        .await
        .unwrap();
    lab.client.wait_state(&lab.a, "idle").await.unwrap();
    let a = lab.a.clone();
    monitor
        .stdout_until("A's status", |line| {
            line.contains(a.as_str()) && line.contains("idle")
        })
        .await;
    assert_eq!(monitor.stop("TERM").await, Some(0));

    // The broker section itself is still checked.
    let bad = unusable_daemon_part(&lab, dir.path(), "broker:\n  url: http://127.0.0.1/\n");
    let output = cli_with(&bad, &["discover"]).output().await.unwrap();
    assert_eq!(output.status.code(), Some(78));
    assert!(
        text(&output.stderr).contains("broker.url"),
        "{}",
        text(&output.stderr)
    );
}

/// The reference's own CLI (PyPI villas-controller 0.3.0, `villas-ctl`, as
/// `.ci/test` makes it): its `monitor` shows, and its `simulator start` and
/// `stop` drive, a built-in dummy of ours through a whole run, on the
/// exchange `villas` it hard-codes (the dummy's uuid is fresh; no test
/// broadcasts there). Its `ping` is not used: it prints only replies with
/// a top-level `state` (the 2019 protocol), never today's `status.state`.
#[tokio::test]
async fn the_reference_cli_monitors_and_drives_a_dummy_through_a_run() {
    let exchange = reference_cli::EXCHANGE;
    let mut client = connect(exchange).await;
    let (manager, sim) = (new_uuid(), new_uuid());
    let _daemon = Daemon::start(&config(exchange, &manager, &dummy(&sim, None, "Ref")));
    client.wait_state(&sim, "idle").await.unwrap();
    let mut monitor = Running::spawn(reference_cli::command(&["monitor"]));
    // It says nothing once its queue is bound: ping until it prints
    // (bounded), so that it sees the whole run.
    let mut bound = false;
    for _ in 0..100 {
        client.act(&sim, &json!({"action": "ping"})).await.unwrap();
        client.wait_state(&sim, "idle").await.unwrap();
        let line = tokio::time::timeout(
            std::time::Duration::from_millis(100),
            monitor.stdout.next_line(),
        )
        .await;
        if let Ok(line) = line {
            assert!(line.unwrap().is_some(), "the monitor ended");
            bound = true;
            break;
        }
    }
    assert!(bound, "the reference's monitor printed nothing");
    let mut states = Vec::new();
    let state_of = |line: &str| -> Option<String> {
        let entry: Value = serde_json::from_str(line).expect("a JSON line per message");
        let payload = &entry["payload"];
        (payload["properties"]["uuid"] == sim.as_str())
            .then(|| payload["status"]["state"].as_str().map(str::to_owned))
            .flatten()
    };
    reference_cli::simulator(&sim, "start", &[]).await;
    for line in monitor
        .stdout_until("running", |line| {
            state_of(line).is_some_and(|s| s == "running")
        })
        .await
    {
        states.extend(state_of(&line));
    }
    reference_cli::simulator(&sim, "stop", &[]).await;
    for line in monitor
        .stdout_until("idle", |line| state_of(line).is_some_and(|s| s == "idle"))
        .await
    {
        states.extend(state_of(&line));
    }
    // The pings' statuses (idle) may still come first.
    let run: Vec<&String> = states.iter().skip_while(|s| *s == "idle").collect();
    assert_eq!(
        run,
        ["starting", "running", "stopping", "idle"],
        "{states:?}"
    );
    // It ends on Ctrl-C (SIGINT).
    assert_eq!(monitor.stop("INT").await, Some(0));
}
