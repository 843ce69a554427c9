//! Black-box tests of configuration loading: the reference's YAML format,
//! TOML, environment overrides, and start-up errors (exit code 78 naming
//! the file and the key).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::binary;
use std::process::{Command, Output};

fn check(file_name: &str, text: &str, env: &[(&str, &str)]) -> (Output, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file_name);
    std::fs::write(&path, text).unwrap();
    let mut command = Command::new(binary());
    command
        .arg("-c")
        .arg(&path)
        .arg("check-config")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        command.env(k, v);
    }
    (command.output().unwrap(), path.display().to_string())
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The reference's own example (etc/config.yaml of VILLASframework/controller).
const REFERENCE_YAML: &str = r#"---
broker:
  url: amqp://villas:Haegiethu0rohtee@broker.example:30809/%2F
components:

- category: manager
  type: generic
  name: Standard Controller
  realm: de.rwth-aachen.eonerc.acs
  uuid: f4751894-205e-11eb-aefb-0741ff98abca

- api_url: https://villas.example/api/ic/generic_1
  category: simulator
  enabled: false
  location: Richard's PC
  name: 'Generic Simulator #1'
  owner: rmr
  realm: de.rwth-aachen.eonerc.acs
  shell: true
  type: generic
  uuid: null # Generate automatically
  whitelist:
  - "/sbin/ping"
  - "^echo"

- category: simulator
  enabled: true
  location: Sonjas's Laptop
  name: 'Dummy Simulator #1'
  owner: svg
  realm: de.rwth-aachen.eonerc.acs
  type: dummy
  uuid: 3ddd318e-fee1-46d7-bff4-7c064d640d4e
"#;

#[test]
fn reference_yaml_loads_unchanged_and_hides_the_password() {
    let (out, _) = check("config.yaml", REFERENCE_YAML, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("configuration OK"), "{text}");
    // The daemon's root manager and the configured one below it.
    assert!(text.contains("2 manager(s), 1 component(s)"), "{text}");
    assert!(!text.contains("Haegiethu0rohtee") && !stderr(&out).contains("Haegiethu0rohtee"));
}

/// VILLASframework/controller `etc/config_dpsim.yaml`, verbatim: its
/// component has no `category` (the reference crashes on it).
const REFERENCE_DPSIM_YAML: &str = r#"---
broker:
  url: amqp://villas:Haegiethu0rohtee@k8s.eonerc.rwth-aachen.de:30809/%2F

components:
- location: Richard's PC
  name: 'DPsim Simulator #1'
  owner: rmr
  realm: de.rwth-aachen.eonerc.acs
  type: dpsim
  uuid: e15f5ad4-241f-11e8-9bf3-23372608bf60
"#;

#[test]
fn reference_config_dpsim_loads_its_category_implied_by_the_type() {
    let (out, _) = check("config_dpsim.yaml", REFERENCE_DPSIM_YAML, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 component(s)"), "{}", stdout(&out));
}

#[test]
fn daemon_uuid_may_name_the_configured_generic_manager() {
    let yaml = "uuid: f4751894-205e-11eb-aefb-0741ff98abca\ncomponents:\n- {category: manager, type: generic, uuid: f4751894-205e-11eb-aefb-0741ff98abca}\n";
    let (out, _) = check("same.yaml", yaml, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 manager(s)"));
}

#[test]
fn toml_and_environment_overrides() {
    let toml = "uuid = \"9f1e0b9c-0000-4000-8000-000000000001\"\n[api]\nport = 9000\n[[components]]\ncategory = \"simulator\"\ntype = \"dummy\"\n";
    let (out, _) = check(
        "config.toml",
        toml,
        &[("VILLAS_CONTROLLER__BROKER__URL", "amqp://u:pw@h/%2F")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("broker amqp://u:***@h/%2F"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn invalid_configurations_exit_78_naming_file_and_key() {
    let cases: &[(&str, &str, &str)] = &[
        ("unknown.yaml", "brokr:\n  url: amqp://h\n", "brokr"),
        ("nested.yaml", "broker:\n  urll: amqp://h\n", "broker"),
        ("port.yaml", "api:\n  port: seventy\n", "api.port"),
        ("uuid.yaml", "uuid: nope\n", "uuid"),
        ("url.yaml", "broker:\n  url: http://h\n", "broker.url"),
        ("bind.yaml", "api:\n  bind: localhost:80\n", "api.bind"),
        ("heartbeat.yaml", "status:\n  heartbeat_interval: -1\n", "status.heartbeat_interval"),
        (
            "dup.yaml",
            "components:\n- {category: simulator, type: dummy, uuid: 3ddd318e-fee1-46d7-bff4-7c064d640d4e}\n- {category: simulator, type: dummy, uuid: 3ddd318e-fee1-46d7-bff4-7c064d640d4e}\n",
            "components[1].uuid",
        ),
        (
            "clash.yaml",
            "uuid: 3ddd318e-fee1-46d7-bff4-7c064d640d4e\ncomponents:\n- {category: simulator, type: dummy, uuid: 3ddd318e-fee1-46d7-bff4-7c064d640d4e}\n",
            "uuid",
        ),
        ("kind.yaml", "components:\n- {category: simulator, type: no-such-kind}\n", "components[0].type"),
        (
            "manager.yaml",
            "components:\n- {category: simulator, type: dummy, manager: 3ddd318e-fee1-46d7-bff4-7c064d640d4e}\n",
            "components[0].manager",
        ),
        (
            "cycle.yaml",
            "components:\n- {category: manager, type: generic, uuid: 3ddd318e-fee1-46d7-bff4-7c064d640d4e, manager: 3ddd318e-fee1-46d7-bff4-7c064d640d4f}\n- {category: manager, type: generic, uuid: 3ddd318e-fee1-46d7-bff4-7c064d640d4f, manager: 3ddd318e-fee1-46d7-bff4-7c064d640d4e}\n",
            "components[0].manager",
        ),
        ("missing.yaml", "components:\n- {type: no-such-kind}\n", "components[0]"),
        // `generic` is a simulator and a manager: the error names both.
        ("ambiguous.yaml", "components:\n- {type: generic}\n", "components[0].category: type \"generic\" exists in several categories: give category (manager, simulator)"),
        ("delay.yaml", "components:\n- {category: simulator, type: dummy, transition_delay: fast}\n", "components[0]"),
        ("broken.yaml", "broker: [unclosed\n", "broken.yaml"),
    ];
    for (file, text, key) in cases {
        let (out, path) = check(file, text, &[]);
        assert_eq!(out.status.code(), Some(78), "{file}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&path),
            "{file}: error does not name the file: {err}"
        );
        assert!(
            err.contains(key),
            "{file}: error does not name {key}: {err}"
        );
    }
}

#[test]
fn missing_file_and_daemon_refuse_to_start_with_78() {
    let out = Command::new(binary())
        .args(["-c", "/nonexistent/config.toml", "daemon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(stderr(&out).contains("/nonexistent/config.toml"));
}

#[test]
fn version_flag() {
    let out = Command::new(binary()).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(stdout(&out).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn config_is_found_in_the_search_path_and_json_logs_are_available() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::write(
        dir.path().join("etc/config.yaml"),
        "uuid: 9f1e0b9c-0000-4000-8000-00000000abcd\nbrokr: {}\n",
    )
    .unwrap();
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(binary())
        .args(["--log-format", "json", "check-config"])
        .current_dir(dir.path())
        .env("XDG_CONFIG_HOME", empty.path())
        .env("XDG_CONFIG_DIRS", empty.path())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("etc/config.yaml") && err.contains("brokr"),
        "{err}"
    );
    let json_line = err
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("a JSON log line");
    let parsed: serde_json::Value = serde_json::from_str(json_line).unwrap();
    assert_eq!(parsed["level"], "ERROR");

    // The XDG config home wins over ./etc.
    std::fs::create_dir_all(empty.path().join("villas/controller")).unwrap();
    std::fs::write(
        empty.path().join("villas/controller/config.toml"),
        "uuid = \"9f1e0b9c-0000-4000-8000-00000000abcd\"\n",
    )
    .unwrap();
    let out = Command::new(binary())
        .arg("check-config")
        .current_dir(dir.path())
        .env("XDG_CONFIG_HOME", empty.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("villas/controller/config.toml"));
}
