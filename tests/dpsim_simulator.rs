//! `simulator/dpsim`, black-box: the real daemon on the real broker runs
//! the real DPsim (PyPI `dpsim`, in the virtual environment `.ci/run`
//! makes: `target/dpsim-venv`, or `$DPSIM_PYTHON`) on the CIGRE
//! medium-voltage grid of the `cimpy` wheel (`.ci/run` fetches it with
//! `pip download` into `target/dpsim-models`, or `$CIMPY_WHEEL`), the
//! model served and the results received by a local HTTP server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::http_server::{http_server, Request};
use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

/// DPsim loads a model in a second or two; a loaded machine needs more.
const SLOW: Duration = Duration::from_secs(90);

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python of an environment with DPsim.
fn dpsim_python() -> String {
    let python = std::env::var("DPSIM_PYTHON").unwrap_or_else(|_| {
        workspace()
            .join("target/dpsim-venv/bin/python")
            .to_string_lossy()
            .into_owned()
    });
    assert!(
        std::path::Path::new(&python).exists(),
        "no DPsim environment at {python}: run .ci/run (section dpsim) or set DPSIM_PYTHON"
    );
    python
}

/// The four CGMES files of CIGRE MV from the cimpy wheel: (name, text).
fn cigre_files() -> Vec<(String, String)> {
    let wheel = std::env::var("CIMPY_WHEEL")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join("target/dpsim-models/cimpy-1.1.0-py3-none-any.whl"));
    let file = std::fs::File::open(&wheel).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: run .ci/run (section dpsim: pip download --no-deps cimpy==1.1.0)",
            wheel.display()
        )
    });
    let mut archive = zip::ZipArchive::new(file).unwrap();
    let names: Vec<String> = archive
        .file_names()
        .filter(|n| n.contains("sampledata/CIGRE_MV/") && n.ends_with(".xml"))
        .map(str::to_owned)
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    names
        .into_iter()
        .map(|name| {
            let mut text = String::new();
            archive
                .by_name(&name)
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            (name.rsplit('/').next().unwrap().to_owned(), text)
        })
        .collect()
}

fn zip_of(files: &[(String, String)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, text) in files {
        writer
            .start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .unwrap();
        writer.write_all(text.as_bytes()).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

struct Lab {
    client: Client,
    daemon: Daemon,
    sim: String,
    base: String,
    requests: mpsc::Receiver<Request>,
}

/// A daemon with one DPsim simulator (`python` its interpreter) and a
/// server holding `model` at `/model.zip`.
async fn lab(python: &str, model: Vec<u8>) -> Lab {
    let exchange = test_exchange();
    let client = connect(&exchange).await.with_timeout(SLOW);
    let (manager, sim) = (new_uuid(), new_uuid());
    let components = format!(
        "- category: simulator\n  type: dpsim\n  name: DPsim\n  uuid: {sim}\n  python: {python}\n"
    );
    let daemon = Daemon::start(&config(&exchange, &manager, &components));
    let (base, requests) = http_server(vec![("/model.zip".into(), model)], 201);
    let mut lab = Lab {
        client,
        daemon,
        sim,
        base,
        requests,
    };
    lab.client.wait_state(&lab.sim, "idle").await.unwrap();
    lab
}

impl Lab {
    async fn start(&self, parameters: Value) {
        self.client
            .act(
                &self.sim,
                &json!({
                    "action": "start",
                    "parameters": parameters,
                    "model": {"type": "url", "url": format!("{}/model.zip", self.base)},
                    "results": {"url": format!("{}/results", self.base)}
                }),
            )
            .await
            .unwrap();
    }

    /// The results archive PUT by the daemon.
    fn results(&self) -> zip::ZipArchive<std::io::Cursor<Vec<u8>>> {
        loop {
            let request = self.requests.recv_timeout(SLOW).expect("results uploaded");
            if request.method == "PUT" {
                assert_eq!(request.path, "/results");
                return zip::ZipArchive::new(std::io::Cursor::new(request.body)).unwrap();
            }
        }
    }
}

fn read(archive: &mut zip::ZipArchive<std::io::Cursor<Vec<u8>>>, name: &str) -> String {
    let names: Vec<String> = archive.file_names().map(str::to_owned).collect();
    let mut text = String::new();
    archive
        .by_name(name)
        .unwrap_or_else(|_| panic!("{name} not in {names:?}"))
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// The CSV's header and rows.
fn csv(text: &str) -> (Vec<String>, Vec<Vec<f64>>) {
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap()
        .split(',')
        .map(|c| c.trim().to_owned())
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(|c| c.trim().parse().unwrap()).collect())
        .collect();
    (header, rows)
}

/// The stored load-flow voltages of the SV file: node -> (kV, degrees).
fn stored_voltages(sv: &str) -> Vec<(String, f64, f64)> {
    let mut out = Vec::new();
    for block in sv.split("<cim:SvVoltage ").skip(1) {
        let field = |tag: &str| {
            let start = block.find(&format!("<cim:SvVoltage.{tag}>")).unwrap() + tag.len() + 16;
            let end = start + block[start..].find('<').unwrap();
            block[start..end].trim().to_owned()
        };
        let node = block
            .split("TopologicalNode rdf:resource=\"#")
            .nth(1)
            .unwrap();
        let node = node[..node.find('"').unwrap()].to_owned();
        out.push((
            node,
            field("v").parse().unwrap(),
            field("angle").parse().unwrap(),
        ));
    }
    out
}

#[tokio::test]
async fn an_sp_power_flow_of_cigre_mv_reproduces_the_stored_load_flow_voltages() {
    let files = cigre_files();
    let mut lab = lab(&dpsim_python(), zip_of(&files)).await;
    lab.start(
        json!({"name": "cigre_pf", "solver-domain": "SP", "solver-type": "NRP",
                     "timestep": 1, "duration": 1, "system-freq": 50}),
    )
    .await;
    let states = lab.client.states_until(&lab.sim, "idle").await.unwrap();
    assert_eq!(states, ["starting", "running", "stopping", "idle"]);
    let mut archive = lab.results();
    let (header, rows) = csv(&read(&mut archive, "logs/cigre_pf.csv"));
    let last = rows.last().unwrap();
    let sv = &files
        .iter()
        .find(|(n, _)| n.ends_with("_SV.xml"))
        .unwrap()
        .1;
    let stored = stored_voltages(sv);
    assert_eq!(stored.len(), 15);
    for (node, kv, degrees) in stored {
        let column = |part: &str| {
            let name = format!("{node}.V.{part}");
            last[header
                .iter()
                .position(|h| *h == name)
                .unwrap_or_else(|| panic!("{name}"))]
        };
        let (re, im) = (column("re"), column("im"));
        let magnitude = (re * re + im * im).sqrt() / 1000.0;
        let angle = im.atan2(re).to_degrees();
        assert!(
            (magnitude - kv).abs() / kv < 1e-4,
            "{node}: {magnitude} kV computed, {kv} kV stored"
        );
        assert!(
            (angle - degrees).abs() < 0.01,
            "{node}: {angle} vs {degrees} degrees"
        );
    }
    assert!(read(&mut archive, "run.json").contains("\"NRP\""));
    assert!(lab.daemon.child.try_wait().unwrap().is_none());
}

#[tokio::test]
async fn dp_and_emt_runs_step_through_the_whole_duration() {
    let mut lab = lab(&dpsim_python(), zip_of(&cigre_files())).await;
    for (domain, timestep, duration, columns) in [
        ("DP", 1e-3_f64, 0.2_f64, 31usize),
        ("EMT", 1e-4, 0.02, 46usize),
    ] {
        let name = format!("cigre_{domain}");
        lab.start(
            json!({"name": name, "solver-domain": domain, "solver-type": "MNA",
                         "timestep": timestep, "duration": duration}),
        )
        .await;
        let states = lab.client.states_until(&lab.sim, "idle").await.unwrap();
        assert_eq!(
            states,
            ["starting", "running", "stopping", "idle"],
            "{domain}"
        );
        let mut archive = lab.results();
        let (header, rows) = csv(&read(&mut archive, &format!("logs/{name}.csv")));
        assert_eq!(header.len(), columns, "{domain}: {header:?}");
        // One row per step from t = 0; DPsim accumulates the time in
        // floating point, so the step at exactly `duration` may fall just
        // past it and not be taken.
        let expected = (duration / timestep).round() as usize + 1;
        assert!(
            rows.len() == expected || rows.len() == expected - 1,
            "{domain}: {} rows, {expected} expected",
            rows.len()
        );
        let last = rows.last().unwrap()[0];
        assert!((last - duration).abs() < timestep * 1.5, "{domain}: {last}");
        // Not all zero: the grid is energised.
        assert!(rows.last().unwrap()[1..].iter().any(|v| v.abs() > 1000.0));
    }
}

#[tokio::test]
async fn pause_holds_the_simulated_time_and_stop_ends_with_complete_logs() {
    let mut lab = lab(&dpsim_python(), zip_of(&cigre_files())).await;
    lab.start(json!({"name": "long", "solver-domain": "DP", "timestep": 1e-3, "duration": 3600}))
        .await;
    lab.client.wait_state(&lab.sim, "running").await.unwrap();
    let sim = lab.sim.clone();
    let time_of = |r: &Received| r.body["status"]["simulation"]["time"].as_f64();
    // Stepping: a progress status with a simulated time past 0.05 s.
    lab.client
        .wait_for("progress", |r| {
            r.uuid().as_deref() == Some(sim.as_str()) && time_of(r).is_some_and(|t| t > 0.05)
        })
        .await
        .unwrap();
    lab.client
        .act(&lab.sim, &json!({"action": "pause"}))
        .await
        .unwrap();
    lab.client.wait_state(&lab.sim, "pausing").await.unwrap();
    let paused = lab.client.wait_state(&lab.sim, "paused").await.unwrap();
    let held = time_of(&paused).unwrap();
    // Half a second later the simulated time has not moved.
    tokio::time::sleep(Duration::from_millis(500)).await;
    lab.client
        .act(&lab.sim, &json!({"action": "ping"}))
        .await
        .unwrap();
    let later = lab.client.wait_state(&lab.sim, "paused").await.unwrap();
    assert_eq!(time_of(&later), Some(held));
    lab.client
        .act(&lab.sim, &json!({"action": "resume"}))
        .await
        .unwrap();
    lab.client.wait_state(&lab.sim, "running").await.unwrap();
    lab.client
        .wait_for("progress after resume", |r| {
            r.uuid().as_deref() == Some(sim.as_str()) && time_of(r).is_some_and(|t| t > held)
        })
        .await
        .unwrap();
    lab.client
        .act(&lab.sim, &json!({"action": "stop"}))
        .await
        .unwrap();
    let states = lab.client.states_until(&lab.sim, "idle").await.unwrap();
    assert_eq!(states.last().unwrap(), "idle");
    assert!(states.contains(&"stopping".to_owned()), "{states:?}");
    let mut archive = lab.results();
    let text = read(&mut archive, "logs/long.csv");
    let (header, rows) = csv(&text);
    // Complete: every row has every column, the last one too.
    assert!(rows.iter().all(|r| r.len() == header.len()));
    assert!(text.ends_with('\n'));
    let last = rows.last().unwrap()[0];
    assert!(last > held && last < 3600.0, "{last}");
}

#[tokio::test]
async fn a_malformed_model_is_an_error_with_dpsims_reason_and_the_daemon_lives() {
    let mut files = cigre_files();
    for (name, text) in &mut files {
        if name.ends_with("_EQ.xml") {
            text.truncate(text.len() / 2);
        }
    }
    let mut lab = lab(&dpsim_python(), zip_of(&files)).await;
    lab.start(json!({"name": "broken"})).await;
    let error = lab.client.wait_state(&lab.sim, "error").await.unwrap();
    let message = error.body["status"]["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("model")
            && (message.contains("not loadable") || message.contains("cannot be loaded")),
        "{}",
        error.body["status"]["error"]
    );
    assert!(
        lab.daemon.child.try_wait().unwrap().is_none(),
        "daemon died"
    );
    lab.client
        .act(&lab.sim, &json!({"action": "reset"}))
        .await
        .unwrap();
    lab.client.wait_state(&lab.sim, "idle").await.unwrap();
}

#[tokio::test]
async fn a_python_without_dpsim_is_refused_at_start_with_the_fix() {
    // The system's interpreter, which has no dpsimpy.
    let mut lab = lab("/usr/bin/python3", zip_of(&cigre_files())).await;
    lab.start(json!({"name": "x"})).await;
    let refused = lab
        .client
        .wait_error(&lab.sim, "invalid-parameters")
        .await
        .unwrap();
    let status = &refused.body["status"];
    assert_eq!(status["state"], "idle", "{status}");
    let message = status["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("pip install dpsim") && message.contains("/usr/bin/python3"),
        "{message}"
    );
    // Nothing was downloaded.
    assert!(lab.requests.try_recv().is_err());
}

/// The component entry of the reference's `etc/config_dpsim.yaml`
/// (VILLASframework/controller), verbatim: no `category`, no `python`.
const REFERENCE_DPSIM_ENTRY: &str = "- location: Richard's PC
  name: 'DPsim Simulator #1'
  owner: rmr
  realm: de.rwth-aachen.eonerc.acs
  type: dpsim
  uuid: e15f5ad4-241f-11e8-9bf3-23372608bf60
";

#[tokio::test]
async fn the_references_config_dpsim_loads_and_its_simulator_runs_cigre() {
    let uuid = "e15f5ad4-241f-11e8-9bf3-23372608bf60";
    let exchange = test_exchange();
    let mut client = connect(&exchange).await.with_timeout(SLOW);
    // `python3` (the default) is the DPsim environment's, through PATH.
    let python = PathBuf::from(dpsim_python());
    let path = format!(
        "{}:{}",
        python.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let _daemon = Daemon::start_with(
        &config(&exchange, &new_uuid(), REFERENCE_DPSIM_ENTRY),
        &[("PATH", &path)],
    );
    let idle = client.wait_state(uuid, "idle").await.unwrap();
    assert_eq!(idle.body["properties"]["category"], "simulator");
    assert_eq!(idle.body["properties"]["name"], "DPsim Simulator #1");
    let (base, requests) = http_server(vec![("/model.zip".into(), zip_of(&cigre_files()))], 201);
    client
        .act(
            uuid,
            &json!({"action": "start", "parameters": {"name": "cigre", "timestep": 1, "duration": 1},
                    "model": {"url": format!("{base}/model.zip")},
                    "results": {"url": format!("{base}/results")}}),
        )
        .await
        .unwrap();
    let states = client.states_until(uuid, "idle").await.unwrap();
    assert_eq!(states, ["starting", "running", "stopping", "idle"]);
    let put = std::iter::from_fn(|| requests.recv_timeout(SLOW).ok())
        .find(|r| r.method == "PUT")
        .expect("results uploaded");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(put.body)).unwrap();
    let (header, rows) = csv(&read(&mut archive, "logs/cigre.csv"));
    assert_eq!(header.len(), 31);
    assert_eq!(rows.len(), 2);
}
