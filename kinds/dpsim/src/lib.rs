//! # villas-kind-dpsim
//!
//! The `simulator`/`dpsim` kind: runs a DPsim simulation of a CIM/CGMES
//! grid model per `start`, in a child process (a Python runner on
//! `dpsimpy`, PyPI package `dpsim`, shipped in this crate), never inside
//! the daemon (DPsim's CIM reader kills its process on malformed input).
//!
//! Property `python`: the interpreter of an environment that has DPsim
//! (default `python3`); checked at every `start`, before the state changes.
//!
//! `start`: the reference's start schema (DPsim's command-line options,
//! [`start::StartParameters`]); `model` (required: a zip of CIM files, or
//! one file, downloaded as the generic simulator downloads models) and
//! `results` (the run directory, zipped, uploaded with PUT). The run
//! directory `runs/<stamp>-<n>/` in the component's data directory holds
//! the runner, its configuration `run.json`, DPsim's output `output.log`,
//! and DPsim's logs and CSV files (`logs/`).
//!
//! States: `starting` (download, load) -> `running` when the simulation
//! steps -> `stopping` -> `idle` once it finished and the results were
//! uploaded; `error` with DPsim's own reason when the model cannot be
//! loaded or the run fails, with the signal when the runner dies by one.
//! `pause`/`resume` pause and resume the stepping (the runner confirms:
//! `pausing -> paused` only when it stopped stepping); `stop` ends the run
//! after the current step with complete logs (SIGKILL after 10 s);
//! `reset` kills the runner. `status.simulation` reports the simulated
//! time, the steps and the final time while it runs.

pub mod runner;
pub mod start;

use nix::sys::signal::Signal;
use runner::{Event, EventLines};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use start::StartParameters;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};
use villas_sdk::transfer::{self, ModelSource, ResultsTarget, TransferError};
use villas_sdk::typed::{Actions, Ctx, TypedComponent, TypedKind};
use villas_sdk::{Action, ComponentSpec, ErrorCode, ErrorInfo, State, TimerId};

/// How long a stopped runner may take to finish its step and close its
/// logs before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// At most one status per this much wall time for progress alone.
const PROGRESS_PUBLISH: Duration = Duration::from_secs(1);

/// The `simulator`/`dpsim` kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct DpsimKind;

/// The DPsim simulator's own properties.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct DpsimProperties {
    /// The Python interpreter of an environment with DPsim (`pip install
    /// dpsim`): a path, or a name looked up in PATH.
    #[serde(default = "default_python")]
    #[schemars(length(min = 1))]
    pub python: String,
}

fn default_python() -> String {
    "python3".into()
}

impl TypedKind for DpsimKind {
    const CATEGORY: &'static str = "simulator";
    const TYPE_NAME: &'static str = "dpsim";
    type Properties = DpsimProperties;
    type Component = Dpsim;

    fn build(&self, spec: &ComponentSpec, properties: DpsimProperties) -> Result<Dpsim, ErrorInfo> {
        let base_dir = spec.data_dir().map_or_else(
            || {
                std::env::temp_dir()
                    .join("villas-controller")
                    .join(spec.uuid())
            },
            Path::to_owned,
        );
        Ok(Dpsim {
            uuid: spec.uuid().to_owned(),
            python: properties.python,
            base_dir,
            run: None,
            runs: 0,
            last: LastRun::default(),
        })
    }
}

fn invalid(message: impl Into<String>) -> ErrorInfo {
    ErrorInfo::new(ErrorCode::InvalidParameters, message)
}

fn failed(message: impl Into<String>) -> ErrorInfo {
    ErrorInfo::new(ErrorCode::Failed, message)
}

/// A `start` that passed every check before the state changed.
#[derive(Debug)]
pub struct AdmittedStart {
    parameters: StartParameters,
    model: ModelSource,
    results: Option<ResultsTarget>,
    model_json: Option<Value>,
    results_json: Option<Value>,
}

/// One run.
struct Run {
    /// Tells its tasks' outputs from an earlier run's.
    id: u64,
    /// Its directory.
    dir: PathBuf,
    /// What to run, until the model is there.
    parameters: StartParameters,
    /// Where results go.
    results: Option<ResultsTarget>,
    /// The runner's pid (= process group), while it lives.
    pid: Option<i32>,
    /// The runner's stdin.
    control: Option<std::fs::File>,
    /// The runner's events ended.
    eof: bool,
    /// The runner was reaped.
    exit: Option<ExitStatus>,
    /// Its `finished` event.
    finished: bool,
    /// Its `error` event.
    error: Option<ErrorInfo>,
    /// The model was loaded.
    loaded: bool,
    /// The SIGKILL deadline of a `stop`.
    kill: Option<TimerId>,
    /// When progress was last published.
    published: Option<Instant>,
}

/// What the status reports of the last run.
#[derive(Debug, Default, Clone)]
struct LastRun {
    simulation: Map<String, Value>,
    return_code: Option<i32>,
    signal: Option<String>,
    dir: Option<PathBuf>,
    model: Option<Value>,
    results: Option<Value>,
}

/// What a task of a run hands back.
pub enum RunEvent {
    /// The model was downloaded (or not).
    ModelReady(u64, Result<PathBuf, TransferError>),
    /// A line of the runner's events (`None`: they ended).
    Line(u64, Option<String>, Box<EventLines>),
    /// The runner was reaped.
    Exited(u64, std::io::Result<ExitStatus>),
    /// The results were uploaded (or not).
    Uploaded(u64, Result<(), TransferError>),
}

/// The DPsim simulator's timer: the SIGKILL deadline of a `stop`.
#[derive(Debug, Clone, Copy)]
pub struct KillDeadline;

/// One DPsim simulator.
pub struct Dpsim {
    /// For log lines.
    uuid: String,
    /// Property `python`.
    python: String,
    /// The component's data directory (runs live below it).
    base_dir: PathBuf,
    /// The run in progress.
    run: Option<Run>,
    /// Runs started so far.
    runs: u64,
    /// What the status shows.
    last: LastRun,
}

impl Dpsim {
    fn check_start(
        &self,
        parameters: StartParameters,
        action: &Action,
    ) -> Result<AdmittedStart, ErrorInfo> {
        parameters.check().map_err(invalid)?;
        let model = action
            .model
            .as_ref()
            .ok_or_else(|| {
                invalid("a DPsim run needs a model: `model` with the URL of a zip of CIM files")
            })
            .and_then(|model| ModelSource::parse(model).map_err(|e| invalid(e.to_string())))?;
        let results = match &action.results {
            Some(results) => ResultsTarget::parse(results).map_err(|e| invalid(e.to_string()))?,
            None => None,
        };
        runner::probe(&self.python).map_err(|e| {
            ErrorInfo::new(ErrorCode::InvalidParameters, e.to_string())
                .with("python", self.python.clone())
        })?;
        Ok(AdmittedStart {
            parameters,
            model,
            results,
            model_json: action.model.clone(),
            results_json: action.results.clone(),
        })
    }

    fn start(&mut self, ctx: &mut Ctx<'_, Self>, start: AdmittedStart) -> Result<(), ErrorInfo> {
        self.runs += 1;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let dir = self
            .base_dir
            .join("runs")
            .join(format!("{stamp}-{}", self.runs));
        std::fs::create_dir_all(&dir).map_err(|e| {
            failed(format!(
                "cannot create the run directory {}: {e}",
                dir.display()
            ))
        })?;
        self.last = LastRun {
            dir: Some(dir.clone()),
            model: start.model_json,
            results: start.results_json,
            ..LastRun::default()
        };
        let id = self.runs;
        self.run = Some(Run {
            id,
            dir: dir.clone(),
            parameters: start.parameters,
            results: start.results,
            pid: None,
            control: None,
            eof: false,
            exit: None,
            finished: false,
            error: None,
            loaded: false,
            kill: None,
            published: None,
        });
        let source = start.model;
        ctx.spawn(async move {
            RunEvent::ModelReady(id, transfer::download(source, dir.join("model")).await)
        });
        Ok(())
    }

    /// The model is there: start the runner.
    fn launch(&mut self, ctx: &mut Ctx<'_, Self>, model: &Path) -> Result<(), ErrorInfo> {
        let Some(run) = self.run.as_mut() else {
            return Ok(());
        };
        let files = runner::model_files(model)
            .map_err(|e| failed(format!("cannot read the model {}: {e}", model.display())))?;
        if files.is_empty() {
            self.run = None;
            return Err(failed("the model holds no CIM (.xml) file"));
        }
        let config = run.parameters.run_config(files);
        let config = serde_json::to_value(&config)
            .map_err(|e| failed(format!("cannot write the run configuration: {e}")))?;
        let started = runner::spawn(&self.python, &run.dir, &config)
            .map_err(|e| failed(format!("cannot start the DPsim runner: {e}")))?;
        tracing::info!(uuid = %self.uuid, pid = started.pid, run = %run.dir.display(), "DPsim runner started");
        run.pid = Some(started.pid);
        run.control = Some(started.control);
        let id = run.id;
        let lines = started.events;
        ctx.spawn(async move {
            let (line, lines) = runner::next_line(lines).await;
            RunEvent::Line(id, line, Box::new(lines))
        });
        let exited = started.exited;
        ctx.spawn(async move {
            let status = exited
                .await
                .unwrap_or_else(|_| Err(std::io::Error::other("the reaper stopped")));
            RunEvent::Exited(id, status)
        });
        Ok(())
    }

    fn on_event(&mut self, ctx: &mut Ctx<'_, Self>, event: Event) -> Result<(), ErrorInfo> {
        let Some(run) = self.run.as_mut() else {
            return Ok(());
        };
        let sim = &mut self.last.simulation;
        let mut publish = false;
        match event {
            Event::Loading {} => {}
            Event::Loaded { nodes, components } => {
                run.loaded = true;
                sim.insert("nodes".into(), nodes.into());
                sim.insert("components".into(), components.into());
            }
            Event::Running { time } => {
                sim.insert("time".into(), time.into());
                sim.insert("steps".into(), 0.into());
                sim.insert(
                    "final_time".into(),
                    run.parameters.run_config(vec![]).duration.into(),
                );
                if ctx.state() == State::Starting {
                    return ctx.transition(State::Running);
                }
            }
            Event::Progress { time, steps } => {
                sim.insert("time".into(), time.into());
                sim.insert("steps".into(), steps.into());
                let now = ctx.now();
                if run
                    .published
                    .is_none_or(|at| now.duration_since(at) >= PROGRESS_PUBLISH)
                {
                    run.published = Some(now);
                    publish = true;
                }
            }
            Event::Paused { time, steps } => {
                sim.insert("time".into(), time.into());
                sim.insert("steps".into(), steps.into());
                if ctx.state() == State::Pausing {
                    return ctx.transition(State::Paused);
                }
            }
            Event::Resumed { time, steps } => {
                sim.insert("time".into(), time.into());
                sim.insert("steps".into(), steps.into());
                if ctx.state() == State::Resuming {
                    return ctx.transition(State::Running);
                }
            }
            Event::Finished {
                time,
                steps,
                stopped,
            } => {
                run.finished = true;
                sim.insert("time".into(), time.into());
                sim.insert("steps".into(), steps.into());
                sim.insert("stopped".into(), stopped.into());
            }
            Event::Error {
                stage,
                message,
                log,
            } => {
                let mut error = failed(message).with("stage", stage);
                if let Some(log) = log.filter(|l| !l.is_empty()) {
                    error = error.with("log", log);
                }
                run.error = Some(error);
            }
        }
        if publish {
            ctx.publish_status();
        }
        Ok(())
    }

    /// Both the events' end and the exit status are in: how did it end?
    fn conclude(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        let Some(run) = self.run.as_mut() else {
            return Ok(());
        };
        let (true, Some(status)) = (run.eof, run.exit) else {
            return Ok(());
        };
        run.pid = None;
        run.control = None;
        if let Some(kill) = run.kill.take() {
            ctx.cancel(kill);
        }
        self.last.return_code = status.code();
        self.last.signal = status.signal().map(runner::signal_name);
        tracing::info!(uuid = %self.uuid, code = ?self.last.return_code, signal = ?self.last.signal, state = %ctx.state(), "DPsim runner exited");
        if let Some(error) = run.error.take() {
            self.run = None;
            return Err(error.with_code(status.code()));
        }
        if status.success() && run.finished {
            if ctx.state() != State::Stopping {
                ctx.transition(State::Stopping)?;
            }
            return self.finish(ctx);
        }
        if ctx.state() == State::Stopping && status.signal() == Some(Signal::SIGKILL as i32) {
            // Killed after ignoring the stop: the logs may be cut short.
            return self.finish(ctx);
        }
        let output = runner::tail(&run.dir.join("output.log"), 15);
        let loaded = run.loaded;
        let name = run.parameters.name.clone();
        let cim_log = runner::tail(&run.dir.join("logs").join(format!("{name}_CIM.log")), 15);
        self.run = None;
        let mut error = match status.signal() {
            Some(number) => {
                let signal = runner::signal_name(number);
                let what = if loaded {
                    "while simulating"
                } else {
                    "while loading the model (the model is not loadable by DPsim)"
                };
                ErrorInfo::new(
                    ErrorCode::Crashed,
                    format!("the DPsim runner was killed by {signal} {what}"),
                )
                .with("signal_name", signal)
                .with("signal", number)
            }
            None => failed(format!(
                "the DPsim runner exited with code {} without finishing",
                status.code().unwrap_or(-1)
            ))
            .with("return_code", status.code().unwrap_or(-1)),
        };
        if !output.is_empty() {
            error = error.with("output", output);
        }
        if !cim_log.is_empty() {
            error = error.with("log", cim_log);
        }
        Err(error)
    }

    /// The run ended well: upload results if asked, then `idle`.
    fn finish(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        let Some(run) = self.run.as_mut() else {
            return ctx.transition(State::Idle);
        };
        match run.results.take() {
            Some(target) => {
                let (id, dir) = (run.id, run.dir.clone());
                ctx.spawn(
                    async move { RunEvent::Uploaded(id, transfer::upload(dir, target).await) },
                );
                Ok(())
            }
            None => {
                self.run = None;
                ctx.transition(State::Idle)
            }
        }
    }

    fn command(&mut self, word: &str) -> Result<(), ErrorInfo> {
        let control = self
            .run
            .as_mut()
            .and_then(|r| r.control.as_mut())
            .ok_or_else(|| failed("the DPsim runner is not running"))?;
        runner::command(control, word)
            .map_err(|e| failed(format!("cannot tell the DPsim runner to {word}: {e}")))
    }

    fn stop(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        let pid = self.run.as_ref().and_then(|r| r.pid);
        match pid {
            Some(pid) => {
                tracing::info!(uuid = %self.uuid, pid, "stopping the DPsim run");
                if self.command("stop").is_err() {
                    runner::signal_group(pid, Signal::SIGTERM);
                }
                runner::signal_group(pid, Signal::SIGCONT);
                let timer = ctx.schedule(STOP_GRACE, KillDeadline);
                if let Some(run) = self.run.as_mut() {
                    run.kill = Some(timer);
                }
                Ok(())
            }
            None => {
                // Still downloading: nothing runs yet.
                self.run = None;
                ctx.transition(State::Idle)
            }
        }
    }

    fn pause(&mut self, _ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        // `paused` comes with the runner's confirmation.
        self.command("pause")
    }

    fn resume(&mut self, _ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        self.command("resume")
    }

    fn kill(&mut self) {
        if let Some(pid) = self.run.as_ref().and_then(|r| r.pid) {
            tracing::info!(uuid = %self.uuid, pid, "killing the DPsim runner");
            runner::signal_group(pid, Signal::SIGKILL);
        }
        self.run = None;
    }
}

/// Adds the runner's exit code to an error.
trait WithCode {
    fn with_code(self, code: Option<i32>) -> Self;
}

impl WithCode for ErrorInfo {
    fn with_code(self, code: Option<i32>) -> Self {
        match code {
            Some(code) => self.with("return_code", code),
            None => self,
        }
    }
}

impl TypedComponent for Dpsim {
    type Timer = KillDeadline;
    type Output = RunEvent;

    fn actions(actions: &mut Actions<Self>) {
        actions
            .start_checked(Self::check_start, Self::start)
            .stop(Self::stop)
            .pause(Self::pause)
            .resume(Self::resume);
    }

    fn reset(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        self.kill();
        ctx.transition(State::Idle)
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, _: KillDeadline) -> Result<(), ErrorInfo> {
        if let Some(run) = self.run.as_mut() {
            run.kill = None;
            if let (State::Stopping, Some(pid)) = (ctx.state(), run.pid) {
                tracing::warn!(uuid = %self.uuid, pid, "the DPsim runner did not stop in time; killing it");
                runner::signal_group(pid, Signal::SIGKILL);
            }
        }
        Ok(())
    }

    fn on_task(&mut self, ctx: &mut Ctx<'_, Self>, output: RunEvent) -> Result<(), ErrorInfo> {
        let current = self.run.as_ref().map(|r| r.id);
        match output {
            RunEvent::ModelReady(id, result) if Some(id) == current => match result {
                Ok(path) if ctx.state() == State::Starting => self.launch(ctx, &path),
                Ok(_) => Ok(()),
                Err(error) => {
                    self.run = None;
                    Err(failed(format!("model download failed: {error}")))
                }
            },
            RunEvent::Line(id, line, lines) if Some(id) == current => match line {
                Some(line) => {
                    ctx.spawn(async move {
                        let (line, lines) = runner::next_line(*lines).await;
                        RunEvent::Line(id, line, Box::new(lines))
                    });
                    match Event::parse(&line) {
                        Some(event) => self.on_event(ctx, event),
                        None => Ok(()),
                    }
                }
                None => {
                    if let Some(run) = self.run.as_mut() {
                        run.eof = true;
                    }
                    self.conclude(ctx)
                }
            },
            RunEvent::Exited(id, status) if Some(id) == current => {
                let status = match status {
                    Ok(status) => status,
                    Err(e) => {
                        self.kill();
                        return Err(failed(format!("cannot wait for the DPsim runner: {e}")));
                    }
                };
                if let Some(run) = self.run.as_mut() {
                    run.exit = Some(status);
                }
                self.conclude(ctx)
            }
            RunEvent::Uploaded(id, result) if Some(id) == current => {
                self.run = None;
                match result {
                    Ok(()) => ctx.transition(State::Idle),
                    Err(error) => Err(failed(format!("results upload failed: {error}"))),
                }
            }
            _ => Ok(()),
        }
    }

    fn status_fields(&self, fields: &mut Map<String, Value>) {
        fields.insert("python".into(), self.python.clone().into());
        fields.insert(
            "simulation".into(),
            Value::Object(self.last.simulation.clone()),
        );
        fields.insert(
            "return_code".into(),
            self.last.return_code.map_or(Value::Null, Value::from),
        );
        if let Some(signal) = &self.last.signal {
            fields.insert("signal_name".into(), signal.clone().into());
        }
        if let Some(pid) = self.run.as_ref().and_then(|r| r.pid) {
            fields.insert("pid".into(), pid.into());
        }
        if let Some(dir) = &self.last.dir {
            fields.insert(
                "run_directory".into(),
                dir.to_string_lossy().into_owned().into(),
            );
        }
        fields.insert(
            "model".into(),
            self.last.model.clone().unwrap_or(Value::Null),
        );
        fields.insert(
            "results".into(),
            self.last.results.clone().unwrap_or(Value::Null),
        );
    }

    fn on_remove(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn the_published_start_schema_has_the_reference_option_names() {
        let kind = DpsimKind.into_kind();
        villas_sdk::testing::check_villasweb_schemas(kind.as_ref()).unwrap();
        let schema = &kind.schemas()["start"];
        for name in [
            "name",
            "timestep",
            "duration",
            "system-freq",
            "scenario",
            "log-level",
            "solver-domain",
            "solver-type",
            "start-at",
            "start-in",
            "start-synch",
            "steady-init",
            "blocking",
            "options",
        ] {
            assert!(
                schema["properties"][name].is_object(),
                "{name} missing: {schema}"
            );
        }
        assert_eq!(schema["required"], json!(["name"]));
        assert_eq!(
            schema["properties"]["solver-domain"]["enum"],
            json!(["SP", "DP", "EMT"])
        );
    }
}
