//! Kinds in their own process, black-box: the real daemon on the real
//! broker, with `simulator/chaos` served by a Python kind process
//! (`tests/fixtures/kind_process/chaos_kind.py`, on the Python SDK of this
//! repository, `python/villas-kind`) configured under `kind_processes`.
//! Each test drives the component over the broker and checks that another
//! (built-in) component still answers. The last runs the built-in dummy
//! kind, unchanged, as a kind process through the Rust SDK
//! (`villas_sdk::serve`): this test binary is that executable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A config with the chaos kind process (and `extra` YAML for it), a chaos
/// component `sim` and a dummy `other`.
fn chaos_config(exchange: &str, manager: &str, sim: &str, other: &str, extra: &str) -> String {
    let script = repo().join("tests/fixtures/kind_process/chaos_kind.py");
    let components = format!(
        "- {{category: simulator, type: chaos, name: Chaos, uuid: {sim}}}\n{}",
        dummy(other, None, "Other")
    );
    format!(
        "{}kind_processes:\n- name: chaos\n  command: [python3, {script}]\n{extra}",
        config(exchange, manager, &components),
        script = script.display()
    )
}

/// The daemon with the Python SDK importable by its kind processes.
fn start_daemon(config: &str) -> Daemon {
    let sdk = repo().join("python/villas-kind/src");
    Daemon::start_with(config, &[("PYTHONPATH", sdk.to_str().unwrap())])
}

/// The other IC still answers `ping`.
async fn still_answers(client: &mut Client, uuid: &str) {
    client.act(uuid, &json!({"action": "ping"})).await.unwrap();
    client.wait_state(uuid, "idle").await.unwrap();
}

fn pid_of(status: &Value) -> i32 {
    status["status"]["pid"].as_i64().expect("pid field") as i32
}

/// The pid of the kind process serving `uuid` (idle), from its status
/// fields: the first status is published before the kind's first fields
/// arrive, so ask with `ping` until they are there (polling, bounded).
async fn pid_now(client: &mut Client, uuid: &str) -> i32 {
    for _ in 0..100 {
        client.act(uuid, &json!({"action": "ping"})).await.unwrap();
        let idle = client.wait_state(uuid, "idle").await.unwrap();
        if idle.body["status"]["pid"].is_i64() {
            return pid_of(&idle.body);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no pid in the status of {uuid}");
}

fn alive(pid: i32) -> bool {
    std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .status()
        .unwrap()
        .success()
}

#[tokio::test]
async fn a_python_kind_process_serves_components_like_built_in_ones() {
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let (manager, sim, other) = (new_uuid(), new_uuid(), new_uuid());
    let mut daemon = start_daemon(&chaos_config(&exchange, &manager, &sim, &other, ""));
    let idle = client.wait_state(&sim, "idle").await.unwrap();
    assert_eq!(idle.body["properties"]["type"], "chaos");
    assert_eq!(
        idle.body["schema"]["start"]["properties"]["mode"]["type"],
        "string"
    );
    client
        .act(
            &sim,
            &json!({"action": "start", "parameters": {"mode": "now"}}),
        )
        .await
        .unwrap();
    let states = client.states_until(&sim, "running").await.unwrap();
    assert_eq!(states, ["starting", "running"]);
    // The daemon checks the schema before the kind sees the action.
    client.act(&sim, &json!({"action": "pause"})).await.unwrap();
    client.wait_error(&sim, "unsupported-action").await.unwrap();
    client.act(&sim, &json!({"action": "stop"})).await.unwrap();
    let idle = client.wait_state(&sim, "idle").await.unwrap();
    assert_eq!(
        idle.body["status"]["mode"], "now",
        "status fields of the kind"
    );
    let pid = pid_of(&idle.body);
    still_answers(&mut client, &other).await;
    // At daemon stop the kind process ends too.
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
    assert!(!alive(pid), "kind process {pid} outlived the daemon");
}

#[tokio::test]
async fn a_killed_kind_process_puts_its_components_in_error_and_they_come_back() {
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let (manager, sim, other) = (new_uuid(), new_uuid(), new_uuid());
    let _daemon = start_daemon(&chaos_config(
        &exchange,
        &manager,
        &sim,
        &other,
        "  restart_backoff: {initial: 0.05, max: 0.1}\n",
    ));
    client.wait_state(&sim, "idle").await.unwrap();
    client
        .act(
            &sim,
            &json!({"action": "start", "parameters": {"mode": "now"}}),
        )
        .await
        .unwrap();
    let running = client.wait_state(&sim, "running").await.unwrap();
    let pid = pid_of(&running.body);
    assert!(std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let error = client.wait_state(&sim, "error").await.unwrap();
    assert_eq!(error.body["status"]["error"]["kind"], "crashed");
    let message = error.body["status"]["error"]["message"].as_str().unwrap();
    assert!(message.contains("signal: 9"), "{message}");
    // Its supervisor resets it once the process is back: a new process.
    let states = client.states_until(&sim, "idle").await.unwrap();
    assert_eq!(states.last().map(String::as_str), Some("idle"));
    assert!(states.contains(&"resetting".to_owned()), "{states:?}");
    client
        .act(
            &sim,
            &json!({"action": "start", "parameters": {"mode": "now"}}),
        )
        .await
        .unwrap();
    let running = client.wait_state(&sim, "running").await.unwrap();
    assert_ne!(pid_of(&running.body), pid, "a new kind process");
    still_answers(&mut client, &other).await;
}

#[tokio::test]
async fn a_hanging_kind_process_is_killed_and_restarted_while_others_answer() {
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let (manager, sim, other) = (new_uuid(), new_uuid(), new_uuid());
    let _daemon = start_daemon(&chaos_config(
        &exchange,
        &manager,
        &sim,
        &other,
        "  request_timeout: 2\n  restart_backoff: {initial: 0.05, max: 0.1}\n",
    ));
    client.wait_state(&sim, "idle").await.unwrap();
    let pid = pid_now(&mut client, &sim).await;
    client
        .act(
            &sim,
            &json!({"action": "start", "parameters": {"mode": "hang"}}),
        )
        .await
        .unwrap();
    client.wait_state(&sim, "starting").await.unwrap();
    // While the kind hangs, the rest of the daemon answers.
    still_answers(&mut client, &other).await;
    let error = client.wait_state(&sim, "error").await.unwrap();
    let message = error.body["status"]["error"]["message"].as_str().unwrap();
    assert!(message.contains("did not answer start"), "{message}");
    client.wait_state(&sim, "idle").await.unwrap();
    client
        .act(
            &sim,
            &json!({"action": "start", "parameters": {"mode": "now"}}),
        )
        .await
        .unwrap();
    let running = client.wait_state(&sim, "running").await.unwrap();
    assert_ne!(pid_of(&running.body), pid, "the hung process was replaced");
    assert!(!alive(pid), "the hung process {pid} was killed");
}

#[tokio::test]
async fn bad_messages_from_a_kind_process_are_logged_and_refused() {
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let (manager, sim, other) = (new_uuid(), new_uuid(), new_uuid());
    let mut daemon = start_daemon(&chaos_config(
        &exchange,
        &manager,
        &sim,
        &other,
        "  flood_limit: 2000\n  restart_backoff: {initial: 0.05, max: 0.1}\n",
    ));
    client.wait_state(&sim, "idle").await.unwrap();
    let pid = pid_now(&mut client, &sim).await;
    client
        .act(
            &sim,
            &json!({"action": "start", "parameters": {"mode": "garbage"}}),
        )
        .await
        .unwrap();
    // The forbidden `starting -> paused` is refused; `running` follows.
    let states = client.states_until(&sim, "running").await.unwrap();
    assert_eq!(states, ["starting", "running"]);
    daemon.wait_log("not JSON");
    daemon.wait_log("unknown event");
    daemon.wait_log("unknown fields ignored: colour");
    daemon.wait_log("forbids");
    client.act(&sim, &json!({"action": "stop"})).await.unwrap();
    let idle = client.wait_state(&sim, "idle").await.unwrap();
    assert_eq!(
        pid_of(&idle.body),
        pid,
        "bad lines alone do not cost the process"
    );
    // A flood: the process is killed, its component fails and comes back.
    client
        .act(
            &sim,
            &json!({"action": "start", "parameters": {"mode": "flood"}}),
        )
        .await
        .unwrap();
    let error = client.wait_state(&sim, "error").await.unwrap();
    let message = error.body["status"]["error"]["message"].as_str().unwrap();
    assert!(message.contains("lines per second"), "{message}");
    client.wait_state(&sim, "idle").await.unwrap();
    still_answers(&mut client, &other).await;
}

/// Not a test: the dummy kind served as a kind process by the Rust SDK,
/// which the daemon of `the_rust_sdk_turns_a_kind_into_a_kind_process`
/// runs through this very test binary.
#[test]
#[ignore = "run by the daemon as a kind process"]
fn serve_the_dummy_kind() {
    use villas_sdk::TypedKind;
    if std::env::var_os("VILLAS_TEST_SERVE_DUMMY").is_none() {
        return;
    }
    let kinds = vec![villas_kind_dummy::DummyKind.into_kind()];
    std::process::exit(villas_sdk::serve::serve(kinds, "rust-dummy", "0.1.0"));
}

#[tokio::test]
async fn the_rust_sdk_turns_a_kind_into_a_kind_process() {
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let (manager, sim) = (new_uuid(), new_uuid());
    let me = std::env::current_exe().unwrap();
    // libtest prints a line before the test runs: the daemon refuses it
    // as not JSON, harmlessly.
    let config = format!(
        "{}kind_processes:\n- name: rust-dummy\n  command: [{me}, serve_the_dummy_kind, --exact, --ignored, --nocapture, -q, --test-threads=1]\n  environment: {{VILLAS_TEST_SERVE_DUMMY: '1'}}\n",
        config(&exchange, &manager, &dummy(&sim, None, "Served")),
        me = me.display()
    );
    let mut daemon = Daemon::start(&config);
    let served = daemon.wait_log("kind served by a kind process");
    assert!(
        served.contains("simulator/dummy") && served.contains("replaces_built_in=true"),
        "{served}"
    );
    client.wait_state(&sim, "idle").await.unwrap();
    client
        .act(
            &sim,
            &json!({"action": "start", "parameters": {"runtime": 0.3}}),
        )
        .await
        .unwrap();
    let states = client.states_until(&sim, "idle").await.unwrap();
    assert_eq!(states, ["starting", "running", "stopping", "idle"]);
    // Parameters are checked by the daemon against the kind's schema.
    client
        .act(
            &sim,
            &json!({"action": "start", "parameters": {"runtime": "long"}}),
        )
        .await
        .unwrap();
    let error = client.wait_state(&sim, "error").await.unwrap();
    assert_eq!(error.body["status"]["error"]["kind"], "invalid-parameters");
    client.act(&sim, &json!({"action": "reset"})).await.unwrap();
    client.wait_state(&sim, "idle").await.unwrap();
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
}

/// The SDK compatibility rule, on the kind's side: a Rust kind process
/// refuses the handshake of a daemon whose SDK it is not compatible with
/// (code 6, the reason) and exits 1; a compatible one is answered.
#[test]
fn the_rust_sdk_refuses_an_incompatible_daemon_at_the_handshake() {
    use std::io::{BufRead, BufReader, Write};
    let hello = |daemon_sdk: &str| -> (Value, std::process::ExitStatus) {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "serve_the_dummy_kind",
                "--exact",
                "--ignored",
                "--nocapture",
                "-q",
            ])
            .env("VILLAS_TEST_SERVE_DUMMY", "1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        writeln!(
            stdin,
            "{}",
            json!({"op": "hello", "id": 1, "protocol": 1, "daemon": daemon_sdk, "sdk": daemon_sdk})
        )
        .unwrap();
        // libtest's own lines come first: the reply is the JSON line.
        let reply = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map_while(Result::ok)
            .find_map(|line| serde_json::from_str::<Value>(&line).ok())
            .expect("a reply");
        drop(stdin);
        (reply, child.wait().unwrap())
    };
    let sdk = villas_sdk::kind_protocol::SDK_VERSION;
    let (major, minor, _) = villas_sdk::kind_protocol::parse_version(sdk).unwrap();
    // 0.y: another minor is incompatible; x.y: a newer major is.
    let incompatible = if major == 0 {
        format!("0.{}.0", minor + 1)
    } else {
        format!("{}.0.0", major + 1)
    };
    let (refused, status) = hello(&incompatible);
    assert_eq!(refused["ok"], false, "{refused}");
    assert_eq!(refused["error"]["code"], 6, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&incompatible)),
        "{refused}"
    );
    assert_eq!(status.code(), Some(1));
    let (answered, status) = hello(sdk);
    assert_eq!(answered["ok"], true, "{answered}");
    assert_eq!(answered["sdk"], sdk);
    assert_eq!(status.code(), Some(0), "the end of stdin means stop");
}

/// `simulator/watcher`: watches something by itself from its `on_start`
/// hook (here: notes that it does, in its status).
struct WatcherKind;

struct Watcher {
    watching: bool,
}

impl villas_sdk::typed::TypedKind for WatcherKind {
    const CATEGORY: &'static str = "simulator";
    const TYPE_NAME: &'static str = "watcher";
    type Properties = villas_sdk::typed::NoProperties;
    type Component = Watcher;

    fn build(
        &self,
        _: &villas_sdk::ComponentSpec,
        _: villas_sdk::typed::NoProperties,
    ) -> Result<Watcher, villas_sdk::ErrorInfo> {
        Ok(Watcher { watching: false })
    }
}

impl villas_sdk::typed::TypedComponent for Watcher {
    type Timer = ();
    type Output = ();

    fn actions(_: &mut villas_sdk::typed::Actions<Self>) {}

    fn on_start(
        &mut self,
        ctx: &mut villas_sdk::typed::Ctx<'_, Self>,
    ) -> Result<(), villas_sdk::ErrorInfo> {
        self.watching = true;
        ctx.publish_status();
        Ok(())
    }

    fn status_fields(&self, fields: &mut serde_json::Map<String, Value>) {
        fields.insert("watching".into(), self.watching.into());
    }
}

/// Not a test: the watcher kind served as a kind process by the Rust SDK
/// (for `the_rust_sdk_calls_on_start_as_the_daemon_does`).
#[test]
#[ignore = "run by the daemon as a kind process"]
fn serve_the_watcher_kind() {
    use villas_sdk::TypedKind;
    if std::env::var_os("VILLAS_TEST_SERVE_WATCHER").is_none() {
        return;
    }
    let kinds = vec![WatcherKind.into_kind()];
    std::process::exit(villas_sdk::serve::serve(kinds, "rust-watcher", "0.1.0"));
}

#[tokio::test]
async fn the_rust_sdk_calls_on_start_as_the_daemon_does() {
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let (manager, sim) = (new_uuid(), new_uuid());
    let me = std::env::current_exe().unwrap();
    let components =
        format!("- {{category: simulator, type: watcher, name: Watcher, uuid: {sim}}}\n");
    let config = format!(
        "{}kind_processes:\n- name: rust-watcher\n  command: [{me}, serve_the_watcher_kind, --exact, --ignored, --nocapture, -q, --test-threads=1]\n  environment: {{VILLAS_TEST_SERVE_WATCHER: '1'}}\n",
        config(&exchange, &manager, &components),
        me = me.display()
    );
    let _daemon = Daemon::start(&config);
    // The first status comes before the kind's fields; on_start's follow.
    client
        .wait_for("the watcher watching", |r| {
            r.uuid().as_deref() == Some(sim.as_str()) && r.body["status"]["watching"] == true
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_kind_installed_in_the_state_directory_is_started_with_the_daemon() {
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let (manager, sim) = (new_uuid(), new_uuid());
    let state = tempfile::tempdir().unwrap();
    let kind_dir = state.path().join("kinds/chaos");
    std::fs::create_dir_all(&kind_dir).unwrap();
    std::fs::copy(
        repo().join("tests/fixtures/kind_process/chaos_kind.py"),
        kind_dir.join("chaos_kind.py"),
    )
    .unwrap();
    std::fs::write(
        kind_dir.join("villas-kind.toml"),
        format!(
            "name = \"chaos\"\nversion = \"0.1.0\"\ncommand = [\"python3\", \"chaos_kind.py\"]\n[environment]\nPYTHONPATH = {:?}\n",
            repo().join("python/villas-kind/src").display().to_string()
        ),
    )
    .unwrap();
    let components = format!("- {{category: simulator, type: chaos, name: Chaos, uuid: {sim}}}\n");
    let config = format!(
        "{}state_dir: {}\n",
        config(&exchange, &manager, &components),
        state.path().display()
    );
    let mut daemon = Daemon::start(&config);
    daemon.wait_log("installed kind");
    client.wait_state(&sim, "idle").await.unwrap();
    client
        .act(
            &sim,
            &json!({"action": "start", "parameters": {"mode": "now"}}),
        )
        .await
        .unwrap();
    let running = client.wait_state(&sim, "running").await.unwrap();
    assert_eq!(running.body["status"]["mode"], "now");
}

fn kind_cli(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(binary())
        .arg("-c")
        .arg(config)
        .arg("kind")
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_python_kind_from_kind_new_is_installed_listed_driven_and_removed() {
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let (manager, sim) = (new_uuid(), new_uuid());
    let work = tempfile::tempdir().unwrap();
    let project = work.path().join("clock");
    let made = std::process::Command::new(binary())
        .args(["kind", "new", "clock", "--lang", "python"])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    assert!(project.join("clock_kind/kind.py").is_file());
    let state = work.path().join("state");
    let components = format!("- {{category: simulator, type: clock, name: Clock, uuid: {sim}}}\n");
    let config_file = work.path().join("config.yaml");
    let config = format!(
        "{}state_dir: {}\n",
        config(&exchange, &manager, &components),
        state.display()
    );
    std::fs::write(&config_file, &config).unwrap();
    // No registry: the SDK comes from the binary (PIP_NO_INDEX is implied).
    let installed = kind_cli(&config_file, &["install", project.to_str().unwrap()]);
    assert!(
        installed.status.success(),
        "{}",
        String::from_utf8_lossy(&installed.stderr)
    );
    assert!(String::from_utf8_lossy(&installed.stdout).contains("serves simulator/clock"));
    let listed = String::from_utf8_lossy(&kind_cli(&config_file, &["list"]).stdout).into_owned();
    assert!(
        listed.contains("simulator/clock\tinstalled clock\t0.1.0"),
        "{listed}"
    );
    assert!(listed.contains("simulator/dummy\tbuilt-in"), "{listed}");
    let again = kind_cli(&config_file, &["install", project.to_str().unwrap()]);
    assert!(!again.status.success(), "installed twice");

    let mut daemon = Daemon::start(&config);
    client.wait_state(&sim, "idle").await.unwrap();
    client
        .act(&sim, &json!({"action": "start", "parameters": {}}))
        .await
        .unwrap();
    assert_eq!(
        client.states_until(&sim, "running").await.unwrap(),
        ["starting", "running"]
    );
    client.act(&sim, &json!({"action": "stop"})).await.unwrap();
    client.wait_state(&sim, "idle").await.unwrap();
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));

    let removed = kind_cli(&config_file, &["remove", "clock"]);
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    let listed = String::from_utf8_lossy(&kind_cli(&config_file, &["list"]).stdout).into_owned();
    assert!(!listed.contains("clock"), "{listed}");
}

#[tokio::test]
async fn a_running_daemon_picks_up_a_kind_installed_after_its_start_at_sighup() {
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let (manager, sim) = (new_uuid(), new_uuid());
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("state");
    let config_file = work.path().join("config.yaml");
    let config = format!(
        "{}state_dir: {}\n",
        config(&exchange, &manager, "").replace("components:\n", "components: []\n"),
        state.display()
    );
    std::fs::write(&config_file, &config).unwrap();
    let mut daemon = Daemon::start(&config);
    client.wait_state(&manager, "idle").await.unwrap();
    // A kind directory with its manifest (an executable script).
    let package = work.path().join("chaos");
    std::fs::create_dir_all(&package).unwrap();
    std::fs::copy(
        repo().join("tests/fixtures/kind_process/chaos_kind.py"),
        package.join("chaos_kind.py"),
    )
    .unwrap();
    std::fs::write(
        package.join("villas-kind.toml"),
        format!(
            "name = \"chaos\"\nversion = \"0.2.0\"\ncommand = [\"python3\", \"chaos_kind.py\"]\n[environment]\nPYTHONPATH = {:?}\n",
            repo().join("python/villas-kind/src").display().to_string()
        ),
    )
    .unwrap();
    let installed = kind_cli(&config_file, &["install", package.to_str().unwrap()]);
    assert!(
        installed.status.success(),
        "{}",
        String::from_utf8_lossy(&installed.stderr)
    );
    let create = json!({"action": "create", "parameters": {
        "category": "simulator", "type": "chaos", "name": "Late", "uuid": sim}});
    // Before the reload the daemon does not know the kind.
    client.act(&manager, &create).await.unwrap();
    client
        .wait_error(&manager, "unsupported-action")
        .await
        .unwrap();
    daemon.signal("HUP");
    daemon.wait_log("kind served by a kind process");
    client.act(&manager, &create).await.unwrap();
    client.wait_state(&sim, "idle").await.unwrap();
    client
        .act(
            &sim,
            &json!({"action": "start", "parameters": {"mode": "now"}}),
        )
        .await
        .unwrap();
    client.wait_state(&sim, "running").await.unwrap();
    // Removal is refused while a stored component of its kind exists.
    let refused = kind_cli(&config_file, &["remove", "chaos"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("component(s) of chaos exist"));
}

#[tokio::test]
async fn an_incompatible_kind_process_is_refused_and_never_restarted() {
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let (manager, sim, other) = (new_uuid(), new_uuid(), new_uuid());
    let work = tempfile::tempdir().unwrap();
    let flag = work.path().join("incompatible");
    let extra = format!(
        "  environment: {{CHAOS_INCOMPATIBLE: {}}}\n  restart_backoff: {{initial: 0.05, max: 0.1}}\n",
        flag.display()
    );
    // At start: the daemon refuses to run with it (a configuration error).
    std::fs::write(&flag, "").unwrap();
    let mut refused = start_daemon(&chaos_config(&exchange, &manager, &sim, &other, &extra));
    assert_eq!(refused.wait_exit(), Some(78));
    assert!(refused.whole_log().iter().any(|l| l.contains("9.0.0")));
    // After a crash: the restarted process refuses the handshake; its
    // components stay in error with the reason and it is not restarted again.
    std::fs::remove_file(&flag).unwrap();
    let mut daemon = start_daemon(&chaos_config(&exchange, &manager, &sim, &other, &extra));
    client.wait_state(&sim, "idle").await.unwrap();
    let pid = pid_now(&mut client, &sim).await;
    std::fs::write(&flag, "").unwrap();
    assert!(std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    client
        .wait_for("the incompatibility", |r| {
            r.uuid().as_deref() == Some(sim.as_str())
                && r.body["status"]["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("incompatible"))
        })
        .await
        .unwrap();
    daemon.wait_log("not restarted");
    still_answers(&mut client, &other).await;
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
    let log = daemon.whole_log();
    let launches = log
        .iter()
        .filter(|l| l.contains("restarting the kind process"))
        .count();
    assert_eq!(
        launches, 1,
        "one attempt after the crash, none after the refusal"
    );
}

/// Where the generated Rust projects are built: beside this test binary's
/// target directory (`target/kind-template`), so that their dependencies
/// are built once and reused by later runs.
fn template_target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/kind_process-<hash>
    let target = exe.ancestors().nth(3).unwrap();
    target.join("kind-template")
}

#[tokio::test]
async fn a_rust_kind_from_kind_new_builds_passes_its_tests_and_is_installed_and_driven() {
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let (manager, sim) = (new_uuid(), new_uuid());
    let work = tempfile::tempdir().unwrap();
    let project = work.path().join("ticker");
    let made = std::process::Command::new(binary())
        .args(["kind", "new", "ticker", "--lang", "rust"])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let cargo_toml = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    let sdk = repo().join("sdk");
    assert!(
        cargo_toml.contains(&format!("path = {:?}", sdk.display().to_string())),
        "the SDK of this source tree: {cargo_toml}"
    );
    // The workspace's versions, offline: the registry has them already.
    std::fs::copy(repo().join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target = template_target_dir();
    let tested = std::process::Command::new(&cargo)
        .args(["test", "--offline", "--quiet"])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(
        tested.status.success(),
        "the generated project's tests: {}{}",
        String::from_utf8_lossy(&tested.stdout),
        String::from_utf8_lossy(&tested.stderr)
    );

    let state = work.path().join("state");
    let components =
        format!("- {{category: simulator, type: ticker, name: Ticker, uuid: {sim}}}\n");
    let config_file = work.path().join("config.yaml");
    let config = format!(
        "{}state_dir: {}\n",
        config(&exchange, &manager, &components),
        state.display()
    );
    std::fs::write(&config_file, &config).unwrap();
    // Built with the profile its tests used: the dependencies are reused.
    let installed = std::process::Command::new(binary())
        .arg("-c")
        .arg(&config_file)
        .args(["kind", "install", "--profile", "dev"])
        .arg(&project)
        .env("CARGO_TARGET_DIR", &target)
        .env("CARGO_NET_OFFLINE", "true")
        .output()
        .unwrap();
    assert!(
        installed.status.success(),
        "{}",
        String::from_utf8_lossy(&installed.stderr)
    );
    assert!(String::from_utf8_lossy(&installed.stdout).contains("serves simulator/ticker"));
    assert!(state.join("kinds/ticker/bin/ticker").is_file());
    let listed = String::from_utf8_lossy(&kind_cli(&config_file, &["list"]).stdout).into_owned();
    assert!(
        listed.contains("simulator/ticker\tinstalled ticker\t0.1.0"),
        "{listed}"
    );

    let mut daemon = Daemon::start(&config);
    let idle = client.wait_state(&sim, "idle").await.unwrap();
    assert_eq!(
        idle.body["schema"]["start"]["properties"]["period"]["type"],
        "number"
    );
    client
        .act(
            &sim,
            &json!({"action": "start", "parameters": {"period": 0.05}}),
        )
        .await
        .unwrap();
    assert_eq!(
        client.states_until(&sim, "running").await.unwrap(),
        ["starting", "running"]
    );
    // Its steps count while it runs (a status field of the kind).
    client
        .wait_for("steps", |r| {
            r.uuid().as_deref() == Some(sim.as_str())
                && r.body["status"]["steps"].as_u64().is_some_and(|n| n >= 2)
        })
        .await
        .unwrap();
    client.act(&sim, &json!({"action": "stop"})).await.unwrap();
    let states = client.states_until(&sim, "idle").await.unwrap();
    let changes: Vec<&String> = states.iter().filter(|s| *s != "running").collect();
    assert_eq!(changes, ["stopping", "idle"], "{states:?}");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
}
