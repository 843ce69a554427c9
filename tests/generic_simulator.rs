//! The `generic` simulator, black-box: real child processes under the real
//! daemon on the real broker. Fault injection (SIGKILL mid-run, non-zero
//! exit, a child ignoring SIGTERM, a daemon stopped or killed with children
//! running), the whitelist and argv handling, pause/resume checked in
//! /proc, and the model download / results upload against a local HTTP
//! server started by the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::http_server::http_server;
use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Names resolved through PATH (`sh` is `/usr/bin/sh`: symlinks are not
/// followed), matched up to their end.
const WHITELIST: &str = r#"["/usr/bin/(sleep|sh|dash|bash|echo|true|cat|printf|touch)$"]"#;

/// A generic simulator entry; `extra` (YAML, indented two spaces) may
/// replace the default whitelist.
fn generic(uuid: &str, extra: &str) -> String {
    let whitelist = if extra.contains("whitelist:") {
        String::new()
    } else {
        format!("  whitelist: {WHITELIST}\n")
    };
    format!(
        "- category: simulator\n  type: generic\n  name: Gen\n  uuid: {uuid}\n{whitelist}  stop_grace: 0.3\n{extra}"
    )
}

struct Lab {
    client: Client,
    daemon: Daemon,
    manager: String,
    sim: String,
    other: String,
}

async fn lab(extra: &str) -> Lab {
    let exchange = test_exchange();
    let client = connect(&exchange).await;
    let (manager, sim, other) = (new_uuid(), new_uuid(), new_uuid());
    let components = [generic(&sim, extra), dummy(&other, None, "Other")].concat();
    let daemon = Daemon::start(&config(&exchange, &manager, &components));
    let mut lab = Lab {
        client,
        daemon,
        manager,
        sim,
        other,
    };
    lab.client.wait_state(&lab.sim, "idle").await.unwrap();
    lab.client.wait_state(&lab.other, "idle").await.unwrap();
    lab
}

impl Lab {
    async fn start(&self, parameters: Value) {
        self.client
            .act(
                &self.sim,
                &json!({"action": "start", "parameters": parameters}),
            )
            .await
            .unwrap();
    }

    /// Waits for `running` and returns the child's pid.
    async fn running_pid(&mut self) -> i32 {
        let running = self.client.wait_state(&self.sim, "running").await.unwrap();
        // What came before (`starting`) is consumed with it.
        let sim = self.sim.clone();
        self.client
            .backlog
            .retain(|s| s.uuid().as_deref() != Some(&sim));
        running.body["status"]["pid"]
            .as_i64()
            .expect("pid in status") as i32
    }

    /// The daemon is up and the other IC answers ping.
    async fn rest_of_lab_fine(&mut self) {
        assert!(
            self.daemon.child.try_wait().unwrap().is_none(),
            "daemon exited"
        );
        self.client
            .act(&self.other, &json!({"action": "ping"}))
            .await
            .unwrap();
        self.client.wait_state(&self.other, "idle").await.unwrap();
    }
}

/// The state letter of a process in /proc (`S`, `T`, `Z`, ...), if it
/// exists.
fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(") ")?.1;
    after.chars().next()
}

/// The parent pid of a process.
fn proc_parent(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()
}

/// Waits until `pid` is gone (or a zombie that is not ours), bounded.
/// There is no event to await for another process's end: poll /proc.
fn wait_gone(pid: i32) {
    let deadline = Instant::now() + DEADLINE;
    while proc_state(pid).is_some_and(|s| s != 'Z') {
        assert!(Instant::now() < deadline, "process {pid} still alive");
        std::thread::park_timeout(Duration::from_millis(20));
    }
}

/// Waits until `pid` has the state letter `state`, bounded (signals are
/// delivered asynchronously).
fn wait_proc_state(pid: i32, state: char) {
    let deadline = Instant::now() + DEADLINE;
    while proc_state(pid) != Some(state) {
        assert!(
            Instant::now() < deadline,
            "process {pid} is {:?}, not {state}",
            proc_state(pid)
        );
        std::thread::park_timeout(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn a_child_killed_with_sigkill_mid_run_is_reported_and_reset() {
    let mut lab = lab("").await;
    lab.start(json!({"executable": "sleep", "argv": ["60"]}))
        .await;
    let pid = lab.running_pid().await;
    nix_kill(pid, "KILL");
    let error = lab.client.wait_state(&lab.sim, "error").await.unwrap();
    assert_eq!(error.error_kind().as_deref(), Some("crashed"));
    assert_eq!(error.body["status"]["error"]["signal_name"], "SIGKILL");
    assert_eq!(error.body["status"]["signal_name"], "SIGKILL");
    let after = lab.client.states_until(&lab.sim, "idle").await.unwrap();
    assert_eq!(after, ["resetting", "idle"]);
    lab.rest_of_lab_fine().await;
    lab.client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn a_non_zero_exit_is_an_error_with_the_return_code() {
    let mut lab = lab("").await;
    lab.start(json!({"executable": "sh", "argv": ["-c", "exit 3"]}))
        .await;
    let states = lab.client.states_until(&lab.sim, "error").await.unwrap();
    assert_eq!(states, ["starting", "running", "error"]);
    lab.client.backlog.clear();
    lab.client
        .publish(&Headers::uuid(&lab.sim), &json!({"action": "ping"}))
        .await
        .unwrap();
    // The supervisor resets it (policy never: back to idle, waiting).
    let idle = lab.client.wait_state(&lab.sim, "idle").await.unwrap();
    assert_eq!(idle.body["status"]["return_code"], 3);
    lab.rest_of_lab_fine().await;
    lab.client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn the_error_object_names_the_exit_code() {
    let mut lab = lab("").await;
    lab.start(json!({"executable": "sh", "argv": ["-c", "exit 7"]}))
        .await;
    let error = lab.client.wait_state(&lab.sim, "error").await.unwrap();
    assert_eq!(error.error_kind().as_deref(), Some("failed"));
    assert_eq!(error.body["status"]["error"]["return_code"], 7);
    assert_eq!(error.body["status"]["return_code"], 7);
    lab.client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn on_failure_re_issues_the_last_start_after_the_reset() {
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("failed-once");
    let mut lab =
        lab("  restart: on-failure\n  restart_backoff: {initial: 0.02, max: 0.05}\n").await;
    // Fails the first time, runs the second.
    let script = format!(
        "if [ -e '{m}' ]; then exec sleep 60; else touch '{m}'; exit 4; fi",
        m = marker.display()
    );
    lab.start(json!({"executable": "sh", "argv": ["-c", script]}))
        .await;
    let states = lab.client.states_until(&lab.sim, "running").await.unwrap();
    assert_eq!(states, ["starting", "running"]);
    let states = lab.client.states_until(&lab.sim, "running").await.unwrap();
    assert_eq!(
        states,
        ["error", "resetting", "idle", "starting", "running"]
    );
    let pid = lab.running_pid_from_ping().await;
    assert_eq!(proc_state(pid).map(|s| s != 'Z'), Some(true));
    lab.client
        .act(&lab.sim, &json!({"action": "stop"}))
        .await
        .unwrap();
    lab.client.wait_state(&lab.sim, "idle").await.unwrap();
    wait_gone(pid);
    lab.rest_of_lab_fine().await;
    lab.client.close_and_delete_exchange().await.unwrap();
}

impl Lab {
    async fn running_pid_from_ping(&mut self) -> i32 {
        self.client.backlog.clear();
        self.client
            .act(&self.sim, &json!({"action": "ping"}))
            .await
            .unwrap();
        let seen = self.client.wait_state(&self.sim, "running").await.unwrap();
        seen.body["status"]["pid"].as_i64().unwrap() as i32
    }
}

#[tokio::test]
async fn exit_zero_goes_through_stopping_to_idle_and_output_is_logged() {
    let mut lab = lab("").await;
    lab.start(
        json!({"executable": "sh", "argv": ["-c", "echo hello from the child; echo oops >&2"]}),
    )
    .await;
    let states = lab.client.states_until(&lab.sim, "idle").await.unwrap();
    assert_eq!(states, ["starting", "running", "stopping", "idle"]);
    lab.client.backlog.clear();
    lab.client
        .act(&lab.sim, &json!({"action": "ping"}))
        .await
        .unwrap();
    let idle = lab.client.wait_state(&lab.sim, "idle").await.unwrap();
    assert_eq!(idle.body["status"]["return_code"], 0);
    let run = idle.body["status"]["run_directory"]
        .as_str()
        .unwrap()
        .to_owned();
    let log = wait_file_containing(&Path::new(&run).join("output.log"), "oops");
    assert!(log.contains("hello from the child\n"), "{log}");
    lab.rest_of_lab_fine().await;
    lab.client.close_and_delete_exchange().await.unwrap();
}

/// Output is copied by a task of its own: wait for it to land.
fn wait_file_containing(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} lacks {needle:?}: {text:?}",
            path.display()
        );
        std::thread::park_timeout(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn a_child_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let mut lab = lab("").await;
    lab.start(json!({"executable": "sh", "argv": ["-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"]}))
        .await;
    let pid = lab.running_pid().await;
    lab.client
        .act(&lab.sim, &json!({"action": "stop"}))
        .await
        .unwrap();
    lab.client.wait_state(&lab.sim, "stopping").await.unwrap();
    // SIGTERM is ignored: only SIGKILL after stop_grace (0.3 s) ends it.
    assert!(proc_state(pid).is_some_and(|s| s != 'Z'), "died on SIGTERM");
    lab.client.wait_state(&lab.sim, "idle").await.unwrap();
    wait_gone(pid);
    lab.daemon.wait_log("ignored SIGTERM; killing it");
    lab.rest_of_lab_fine().await;
    lab.client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn stopping_a_paused_child_continues_it_so_it_can_exit() {
    let mut lab = lab("").await;
    lab.start(json!({"executable": "sleep", "argv": ["60"]}))
        .await;
    let pid = lab.running_pid().await;
    lab.client
        .act(&lab.sim, &json!({"action": "pause"}))
        .await
        .unwrap();
    lab.client.states_until(&lab.sim, "paused").await.unwrap();
    wait_proc_state(pid, 'T');
    lab.client
        .act(&lab.sim, &json!({"action": "stop"}))
        .await
        .unwrap();
    let states = lab.client.states_until(&lab.sim, "idle").await.unwrap();
    assert_eq!(states, ["stopping", "idle"]);
    wait_gone(pid);
    lab.client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn pause_and_resume_stop_and_continue_the_real_process() {
    let mut lab = lab("").await;
    lab.start(json!({"executable": "sleep", "argv": ["60"]}))
        .await;
    let pid = lab.running_pid().await;
    assert_eq!(proc_parent(pid), Some(lab.daemon.child.id() as i32));
    lab.client
        .act(&lab.sim, &json!({"action": "pause"}))
        .await
        .unwrap();
    assert_eq!(
        lab.client.states_until(&lab.sim, "paused").await.unwrap(),
        ["pausing", "paused"]
    );
    wait_proc_state(pid, 'T');
    lab.client
        .act(&lab.sim, &json!({"action": "resume"}))
        .await
        .unwrap();
    assert_eq!(
        lab.client.states_until(&lab.sim, "running").await.unwrap(),
        ["resuming", "running"]
    );
    wait_proc_state(pid, 'S');
    lab.client
        .act(&lab.sim, &json!({"action": "reset"}))
        .await
        .unwrap();
    lab.client.wait_state(&lab.sim, "idle").await.unwrap();
    wait_gone(pid);
    lab.client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn executables_off_the_whitelist_and_unallowed_shells_are_refused_before_spawning() {
    let mut lab = lab("").await;
    for (parameters, needle) in [
        (json!({"executable": "/usr/bin/id"}), "not whitelisted"),
        (json!({"executable": "env"}), "not whitelisted"),
        (
            json!({"executable": "../../usr/bin/sleep"}),
            "absolute path",
        ),
        (json!({"executable": "no-such-program-here"}), "not found"),
        (
            json!({"executable": "echo hi", "shell": true}),
            "shell execution is not allowed",
        ),
    ] {
        lab.start(parameters.clone()).await;
        let refused = lab
            .client
            .wait_error(&lab.sim, "invalid-parameters")
            .await
            .unwrap();
        assert_eq!(refused.state().as_deref(), Some("idle"), "{parameters}");
        let message = refused.body["status"]["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{parameters}: {message}");
    }
    // Nothing ran: no state change was published.
    let before = lab.client.barrier(std::slice::from_ref(&lab.sim)).await;
    let states: Vec<String> = before
        .get(&lab.sim)
        .into_iter()
        .flatten()
        .filter_map(Received::state)
        .collect();
    assert!(states.iter().all(|s| s == "idle"), "{states:?}");
    lab.rest_of_lab_fine().await;
    lab.client.close_and_delete_exchange().await.unwrap();
}

/// The reference's whitelist rule on a merged-/usr system (`/bin` ->
/// `usr/bin`, `/bin/sh` -> `dash`): entries match at the start of the
/// executable as given or of its PATH-resolved path, symlinks not
/// followed, and the path that matched is the one that runs.
#[tokio::test]
async fn the_whitelist_matches_as_the_reference_on_merged_usr() {
    let mut lab = lab("  whitelist: ['^/bin/sh$', '/bin/true', '^echo', '/opt/tools/']\n").await;
    // A name runs from the child's PATH (the daemon's, here).
    let echo = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join("echo"))
        .find(|path| path.is_file())
        .unwrap();
    let echo = echo.to_str().unwrap();
    for (parameters, program) in [
        (
            json!({"executable": "/bin/sh", "argv": ["-c", "exit 0"]}),
            "/bin/sh",
        ),
        (json!({"executable": "/bin/true"}), "/bin/true"),
        (json!({"executable": "echo", "argv": ["hi"]}), echo),
    ] {
        lab.start(parameters.clone()).await;
        let states = lab.client.states_until(&lab.sim, "idle").await.unwrap();
        assert_eq!(
            states,
            ["starting", "running", "stopping", "idle"],
            "{parameters}"
        );
        let started = lab.daemon.wait_log(&format!("program={program} "));
        assert!(started.contains("child process started"), "{started}");
        lab.daemon.log.clear();
    }
    for (parameters, needle) in [
        // `$` ends the match; the path as given is not resolved further.
        (json!({"executable": "/usr/bin/dash"}), "not whitelisted"),
        (json!({"executable": "/usr/bin/true"}), "not whitelisted"),
        (
            json!({"executable": "/opt/tools/../../bin/sh"}),
            "must not contain `..`",
        ),
        (json!({"executable": "tools/run"}), "absolute path"),
    ] {
        lab.start(parameters.clone()).await;
        let refused = lab
            .client
            .wait_error(&lab.sim, "invalid-parameters")
            .await
            .unwrap();
        assert_eq!(refused.state().as_deref(), Some("idle"), "{parameters}");
        let message = refused.body["status"]["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{parameters}: {message}");
    }
    lab.rest_of_lab_fine().await;
    lab.client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn shell_metacharacters_in_argv_are_passed_literally() {
    let scratch = tempfile::tempdir().unwrap();
    let marker = scratch.path().join("pwned");
    let mut lab = lab("").await;
    let nasty = [
        format!("$(touch {})", marker.display()),
        format!("; touch {}", marker.display()),
        format!("`touch {}`", marker.display()),
        "| cat /etc/passwd && echo".to_owned(),
        "'quoted' \"double\" *".to_owned(),
    ];
    let mut argv = vec!["%s\\n".to_owned()];
    argv.extend(nasty.iter().cloned());
    lab.start(json!({"executable": "printf", "argv": argv}))
        .await;
    let idle = lab.client.states_until(&lab.sim, "idle").await.unwrap();
    assert_eq!(idle.last().map(String::as_str), Some("idle"));
    lab.client.backlog.clear();
    lab.client
        .act(&lab.sim, &json!({"action": "ping"}))
        .await
        .unwrap();
    let status = lab.client.wait_state(&lab.sim, "idle").await.unwrap();
    let run = status.body["status"]["run_directory"]
        .as_str()
        .unwrap()
        .to_owned();
    let log = wait_file_containing(&Path::new(&run).join("output.log"), "double");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines, nasty.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!marker.exists(), "an argument was run by a shell");
    lab.client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn shell_mode_runs_through_sh_when_the_component_allows_it() {
    let mut lab = lab("  shell: true\n  whitelist: ['echo .*']\n").await;
    lab.start(json!({"executable": "echo \"$1-$2\"", "argv": ["a", "b"], "shell": true}))
        .await;
    lab.client.states_until(&lab.sim, "idle").await.unwrap();
    lab.client.backlog.clear();
    lab.client
        .act(&lab.sim, &json!({"action": "ping"}))
        .await
        .unwrap();
    let status = lab.client.wait_state(&lab.sim, "idle").await.unwrap();
    let run = status.body["status"]["run_directory"]
        .as_str()
        .unwrap()
        .to_owned();
    let log = wait_file_containing(&Path::new(&run).join("output.log"), "a-b");
    assert_eq!(log, "a-b\n");
    lab.client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn the_environment_is_the_allow_list_plus_the_given_map() {
    let mut lab = lab("").await;
    lab.start(json!({
        "executable": "sh",
        "argv": ["-c", "echo \"A=$A SECRET=${CARGO:-unset} PATH_SET=${PATH:+yes} RUN=$VILLAS_RUN_DIR\""],
        "environment": {"A": "from the action"},
        "working_directory": "work"
    }))
    .await;
    lab.client.states_until(&lab.sim, "idle").await.unwrap();
    lab.client.backlog.clear();
    lab.client
        .act(&lab.sim, &json!({"action": "ping"}))
        .await
        .unwrap();
    let status = lab.client.wait_state(&lab.sim, "idle").await.unwrap();
    let run = status.body["status"]["run_directory"]
        .as_str()
        .unwrap()
        .to_owned();
    let log = wait_file_containing(&Path::new(&run).join("output.log"), "RUN=");
    assert_eq!(
        log,
        format!("A=from the action SECRET=unset PATH_SET=yes RUN={run}\n")
    );
    assert!(Path::new(&run).join("work").is_dir());
    lab.client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn sigterm_to_the_daemon_leaves_no_child_process_behind() {
    let mut lab = lab("").await;
    lab.start(json!({"executable": "sh", "argv": ["-c", "sleep 60 & sleep 60; wait"]}))
        .await;
    let pid = lab.running_pid().await;
    let group = process_group(pid);
    assert!(!group.is_empty());
    lab.daemon.signal("TERM");
    assert_eq!(lab.daemon.wait_exit(), Some(0));
    for member in group {
        wait_gone(member);
    }
    lab.client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn a_killed_daemon_takes_its_child_with_it() {
    let mut lab = lab("").await;
    lab.start(json!({"executable": "sleep", "argv": ["60"]}))
        .await;
    let pid = lab.running_pid().await;
    lab.daemon.signal("KILL");
    lab.daemon.wait_exit();
    // The parent-death signal kills the child.
    wait_gone(pid);
    lab.client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn many_runs_leave_no_zombies() {
    let mut lab = lab("").await;
    for _ in 0..15 {
        lab.start(json!({"executable": "true"})).await;
        lab.client.states_until(&lab.sim, "idle").await.unwrap();
    }
    let daemon = lab.daemon.child.id() as i32;
    let zombies: Vec<i32> = all_pids()
        .into_iter()
        .filter(|&p| proc_parent(p) == Some(daemon) && proc_state(p) == Some('Z'))
        .collect();
    assert!(zombies.is_empty(), "zombies: {zombies:?}");
    lab.client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn deleting_a_running_generic_component_terminates_its_child() {
    let mut lab = lab("").await;
    lab.start(json!({"executable": "sleep", "argv": ["60"]}))
        .await;
    let pid = lab.running_pid().await;
    lab.client
        .act(
            &lab.manager,
            &json!({"action": "delete", "parameters": {"uuid": lab.sim}}),
        )
        .await
        .unwrap();
    lab.client.wait_state(&lab.sim, "gone").await.unwrap();
    wait_gone(pid);
    lab.rest_of_lab_fine().await;
    lab.client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn a_created_generic_simulator_runs_in_its_own_data_directory() {
    let mut lab = lab("").await;
    let created = new_uuid();
    lab.client
        .act(
            &lab.manager,
            &json!({"action": "create", "parameters": {
                "name": "Created", "category": "simulator", "type": "generic", "uuid": created,
                "whitelist": ["/usr/bin/(sh|echo)$"]
            }}),
        )
        .await
        .unwrap();
    lab.client.wait_state(&created, "idle").await.unwrap();
    lab.client
        .act(
            &created,
            &json!({"action": "start", "parameters": {"executable": "sh", "argv": ["-c", "pwd"]}}),
        )
        .await
        .unwrap();
    lab.client.states_until(&created, "idle").await.unwrap();
    lab.client
        .act(&created, &json!({"action": "ping"}))
        .await
        .unwrap();
    let status = lab.client.wait_state(&created, "idle").await.unwrap();
    let run = status.body["status"]["run_directory"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(run.contains(&created), "{run} is not the component's own");
    let log = wait_file_containing(&Path::new(&run).join("output.log"), "/");
    assert_eq!(log.trim_end(), run);
    lab.client.close_and_delete_exchange().await.unwrap();
}

fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Every process in the group led by `pgid`.
fn process_group(pgid: i32) -> Vec<i32> {
    all_pids()
        .into_iter()
        .filter(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(") ")
                        .map(|(_, r)| r.split(' ').nth(2).map(str::to_owned))
                })
                .flatten()
                .and_then(|g| g.parse::<i32>().ok())
                == Some(pgid)
        })
        .collect()
}

fn nix_kill(pid: i32, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, text) in files {
        writer
            .start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        writer.write_all(text.as_bytes()).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

#[tokio::test]
async fn the_model_is_downloaded_and_unpacked_and_the_results_uploaded() {
    let model = zip_of(&[("input.txt", "42 volts\n")]);
    let (base, requests) = http_server(vec![("/files/model.zip".into(), model)], 201);
    let mut lab = lab("").await;
    lab.client
        .act(
            &lab.sim,
            &json!({
                "action": "start",
                "parameters": {"executable": "sh", "argv": ["-c", "cat %PATH%/input.txt > result.txt"]},
                "model": {"type": "url", "url": format!("{base}/files/model.zip"), "token": "model-token"},
                "results": {"url": format!("{base}/results/1"), "token": "results-token"}
            }),
        )
        .await.unwrap();
    let states = lab.client.states_until(&lab.sim, "idle").await.unwrap();
    assert_eq!(states, ["starting", "running", "stopping", "idle"]);
    let get = requests.recv_timeout(DEADLINE).unwrap();
    assert_eq!(
        (get.method.as_str(), get.path.as_str()),
        ("GET", "/files/model.zip")
    );
    assert_eq!(get.authorization.as_deref(), Some("Bearer model-token"));
    let put = requests.recv_timeout(DEADLINE).unwrap();
    assert_eq!(
        (put.method.as_str(), put.path.as_str()),
        ("PUT", "/results/1")
    );
    assert_eq!(put.authorization.as_deref(), Some("Bearer results-token"));
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(put.body)).unwrap();
    let mut result = String::new();
    archive
        .by_name("result.txt")
        .unwrap()
        .read_to_string(&mut result)
        .unwrap();
    assert_eq!(result, "42 volts\n");
    assert!(archive.file_names().all(|n| !n.starts_with("model")));
    lab.client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn a_failed_model_download_is_an_error_and_nothing_runs() {
    let (base, _requests) = http_server(Vec::new(), 201);
    let mut lab = lab("").await;
    lab.client
        .act(
            &lab.sim,
            &json!({
                "action": "start",
                "parameters": {"executable": "sleep", "argv": ["60"]},
                "model": {"type": "url", "url": format!("{base}/missing.zip")}
            }),
        )
        .await
        .unwrap();
    let states = lab.client.states_until(&lab.sim, "error").await.unwrap();
    assert_eq!(states, ["starting", "error"]);
    lab.client.close_and_delete_exchange().await.unwrap();
}
