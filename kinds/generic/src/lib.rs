//! The `generic` simulator: runs an executable as a child process per
//! `start` (the reference's most used kind, hardened).
//!
//! Properties: `whitelist` (regular expressions; no whitelist, no
//! start), `shell` (`true` allows
//! `start` with `shell: true`), `stop_grace` (seconds between SIGTERM and
//! SIGKILL on `stop`, default 5), `environment_allow` (names of the
//! daemon's environment variables a child inherits; default `PATH`,
//! `HOME`, `LANG`, `LC_ALL`, `TZ`, `USER`, `LOGNAME`).
//!
//! `start` parameters: `executable`, `argv` (`%PATH%` replaced by the
//! downloaded model's path), `working_directory` (relative: inside the
//! run directory), `environment` (a map added to the allowed ones),
//! `shell`, `stdout_logfile` (relative: inside the run directory; default
//! `output.log`). Each run gets its own directory `runs/<id>/` in the
//! component's data directory. Arguments are passed as argv, never
//! through a shell unless `shell` is allowed and asked for.
//!
//! The whitelist, the reference's rule: each entry is a regular expression
//! matched at the START of the text only (Python's `re.match`): `^echo`
//! and `/sbin/ping` work, and an entry without `$` is a prefix
//! (`/usr/bin/python3` admits `/usr/bin/python3.11` too;
//! `^/usr/bin/python3$` only itself). An executable is admitted when an
//! entry matches it as given OR its PATH-resolved absolute path:
//! - an executable with a `/` must be absolute and have no `..` segment;
//!   its resolved path is itself, symlinks NOT followed (so on a merged-/usr
//!   system `^/bin/sh$` admits `/bin/sh`, though `/bin/sh` is a link to
//!   `/usr/bin/dash`);
//! - a bare name is looked up in the child's `PATH` (its absolute entries
//!   only; the first executable file wins): `true` is admitted by
//!   `^true$` (as given) or by `/usr/bin/true` (resolved).
//!
//! The path that runs is that resolved path, whichever form matched: the
//! check and the spawn use one lookup. With `shell: true` the command
//! text is matched as given (the reference does the same).
//!
//! Signals go to the child's process group: `pause` SIGTSTP, `resume`
//! SIGCONT, `stop` SIGTERM then SIGKILL after the grace period (a paused
//! child is continued so it can exit), `reset` SIGKILL. Exit code 0 ->
//! `stopping` -> `idle` (after the results upload, if `results` names a
//! URL); any other exit -> `error` with `return_code` or the signal name.

mod process;
pub mod transfer;

use process::{LiveGroups, Spawned};
use regex::Regex;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;
use transfer::{ModelSource, ResultsTarget, TransferError};
use villas_sdk::{
    Action, ActionKind, Component, ComponentSpec, Context, ErrorCode, ErrorInfo, Kind, State,
    TaskOutput, TimerToken,
};

/// The environment variables a child inherits by default.
const DEFAULT_ENVIRONMENT_ALLOW: [&str; 7] =
    ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME"];

/// The `simulator`/`generic` kind.
#[derive(Debug, Default, Clone)]
pub struct GenericKind {
    /// Every live child process group of every instance.
    groups: LiveGroups,
}

impl Kind for GenericKind {
    fn category(&self) -> &'static str {
        "simulator"
    }

    fn type_name(&self) -> &'static str {
        "generic"
    }

    fn schemas(&self) -> Map<String, Value> {
        let mut schemas = Map::new();
        schemas.insert(
            "start".into(),
            json!({
                "$schema": "http://json-schema.org/draft-07/schema",
                "type": "object",
                "required": ["executable"],
                "properties": {
                    "executable": {
                        "type": "string", "minLength": 1,
                        "title": "Executable (absolute path, or a name looked up in PATH); must match the whitelist",
                        "examples": ["/usr/bin/villas-node"]
                    },
                    "argv": {
                        "type": "array", "title": "Arguments (%PATH% is replaced by the model's path)",
                        "items": {"type": ["string", "number", "boolean"]},
                        "default": []
                    },
                    "working_directory": {"type": "string", "title": "Working directory (relative: inside the run directory)"},
                    "environment": {
                        "type": "object", "title": "Environment variables",
                        "additionalProperties": {"type": ["string", "number", "boolean"]}
                    },
                    "shell": {"type": "boolean", "title": "Run through /bin/sh -c (only if the component allows it)", "default": false},
                    "stdout_logfile": {"type": "string", "title": "Log file of stdout and stderr (relative: inside the run directory)"}
                },
                "additionalProperties": false
            }),
        );
        schemas
    }

    fn build(&self, spec: &ComponentSpec) -> Result<Box<dyn Component>, ErrorInfo> {
        Ok(Box::new(self.instance(spec)?))
    }

    fn drain(&self, grace: Duration) {
        self.groups.terminate_all(grace);
    }
}

impl GenericKind {
    /// One generic simulator from its properties, checked.
    fn instance(&self, spec: &ComponentSpec) -> Result<Generic, ErrorInfo> {
        let properties = &spec.properties;
        let whitelist = match properties.get("whitelist") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(patterns)) => patterns
                .iter()
                .map(|p| {
                    let text = p.as_str().ok_or_else(|| {
                        invalid("property whitelist must be a list of regular expressions")
                    })?;
                    // Anchored at the start only, as Python's `re.match`.
                    Regex::new(&format!("^(?:{text})"))
                        .map_err(|e| invalid(format!("property whitelist: {text:?}: {e}")))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(invalid(
                    "property whitelist must be a list of regular expressions",
                ))
            }
        };
        let shell_allowed = match properties.get("shell") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(allowed)) => *allowed,
            Some(_) => return Err(invalid("property shell must be true or false")),
        };
        let grace = match properties.get("stop_grace") {
            None | Some(Value::Null) => 5.0,
            Some(value) => value
                .as_f64()
                .filter(|g| g.is_finite() && (0.0..=3600.0).contains(g))
                .ok_or_else(|| invalid("property stop_grace must be seconds between 0 and 3600"))?,
        };
        let environment_allow = match properties.get("environment_allow") {
            None | Some(Value::Null) => DEFAULT_ENVIRONMENT_ALLOW.map(str::to_owned).to_vec(),
            Some(Value::Array(names)) => names
                .iter()
                .map(|n| n.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| invalid("property environment_allow must be a list of names"))?,
            Some(_) => {
                return Err(invalid(
                    "property environment_allow must be a list of names",
                ))
            }
        };
        let base_dir = spec.data_dir().map_or_else(
            || {
                std::env::temp_dir()
                    .join("villas-controller")
                    .join(spec.uuid())
            },
            Path::to_owned,
        );
        Ok(Generic {
            uuid: spec.uuid().to_owned(),
            whitelist,
            shell_allowed,
            grace: Duration::from_secs_f64(grace),
            environment_allow,
            base_dir,
            groups: self.groups.clone(),
            run: None,
            runs: 0,
            return_code: None,
            signal: None,
            model: None,
            results: None,
            last_run_dir: None,
        })
    }
}

fn invalid(message: impl Into<String>) -> ErrorInfo {
    ErrorInfo::new(ErrorCode::InvalidParameters, message)
}

/// `start`'s parameters, checked.
#[derive(Debug)]
struct StartParams {
    program: PathBuf,
    args: Vec<String>,
    working_directory: Option<String>,
    environment: BTreeMap<String, OsString>,
    stdout_logfile: Option<String>,
}

/// One run.
#[derive(Debug)]
struct Run {
    /// Tells its tasks' outputs from an earlier run's.
    id: u64,
    /// `runs/<id>/` in the data directory.
    dir: PathBuf,
    /// The child's pid (= process group), once spawned.
    pid: Option<i32>,
    /// What to run, until it is spawned.
    params: Option<StartParams>,
    /// Where results go.
    results: Option<ResultsTarget>,
}

/// What a task of a run hands back.
enum RunEvent {
    /// The model was downloaded (or not).
    ModelReady(u64, Result<PathBuf, TransferError>),
    /// The child was reaped.
    Exited(u64, std::io::Result<ExitStatus>),
    /// The results were uploaded (or not).
    Uploaded(u64, Result<(), TransferError>),
}

/// One generic simulator.
#[derive(Debug)]
pub struct Generic {
    uuid: String,
    whitelist: Vec<Regex>,
    shell_allowed: bool,
    grace: Duration,
    environment_allow: Vec<String>,
    /// The component's data directory (runs live below it).
    base_dir: PathBuf,
    groups: LiveGroups,
    run: Option<Run>,
    /// Runs started so far (run ids).
    runs: u64,
    /// The last run's exit code.
    return_code: Option<i32>,
    /// The signal that ended the last run.
    signal: Option<String>,
    /// The last `start`'s `model` and `results`, published as the
    /// reference does.
    model: Option<Value>,
    results: Option<Value>,
    /// The last run's directory (its log file is there).
    last_run_dir: Option<PathBuf>,
}

impl Generic {
    /// Checks `start`'s parameters: executable resolved and whitelisted,
    /// shell only where allowed.
    fn check_start(&self, action: &Action) -> Result<StartParams, ErrorInfo> {
        let p = &action.parameters;
        let executable = p
            .get("executable")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("start needs parameter executable (a string)"))?;
        let args: Vec<String> = match p.get("argv") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(scalar_text)
                .collect::<Option<_>>()
                .ok_or_else(|| invalid("argv must be a list of strings"))?,
            Some(_) => return Err(invalid("argv must be a list of strings")),
        };
        let mut environment = BTreeMap::new();
        for name in &self.environment_allow {
            if let Some(value) = std::env::var_os(name) {
                environment.insert(name.clone(), value);
            }
        }
        if let Some(Value::Object(given)) = p.get("environment") {
            for (name, value) in given {
                let text = scalar_text(value)
                    .ok_or_else(|| invalid(format!("environment {name:?} must be a string")))?;
                if name.is_empty() || name.contains(['=', '\0']) || text.contains('\0') {
                    return Err(invalid(format!(
                        "environment variable {name:?} is not valid"
                    )));
                }
                environment.insert(name.clone(), text.into());
            }
        }
        let shell = p.get("shell").and_then(Value::as_bool).unwrap_or(false);
        let (program, args) = if shell {
            if !self.shell_allowed {
                return Err(ErrorInfo::new(
                    ErrorCode::InvalidParameters,
                    "shell execution is not allowed for this simulator (property shell is not true)",
                ));
            }
            self.check_whitelisted(executable, None)?;
            let mut all = vec!["-c".to_owned(), executable.to_owned(), "sh".to_owned()];
            all.extend(args);
            (PathBuf::from("/bin/sh"), all)
        } else {
            let resolved = resolve(executable, environment.get("PATH"))?;
            self.check_whitelisted(executable, Some(&resolved))?;
            (resolved, args)
        };
        Ok(StartParams {
            program,
            args,
            working_directory: p
                .get("working_directory")
                .and_then(Value::as_str)
                .map(str::to_owned),
            environment,
            stdout_logfile: p
                .get("stdout_logfile")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    /// Admits `given` if a whitelist entry matches it or its `resolved`
    /// path (see the module docs).
    fn check_whitelisted(&self, given: &str, resolved: Option<&Path>) -> Result<(), ErrorInfo> {
        let resolved_text = resolved.map(|path| path.to_string_lossy());
        let admitted = self.whitelist.iter().any(|entry| {
            entry.is_match(given) || resolved_text.as_deref().is_some_and(|r| entry.is_match(r))
        });
        if admitted {
            return Ok(());
        }
        let message = match resolved_text.as_deref() {
            Some(resolved) if resolved != given => {
                format!("executable {given:?} ({resolved}) is not whitelisted for this simulator")
            }
            _ => format!("executable {given:?} is not whitelisted for this simulator"),
        };
        let mut error =
            ErrorInfo::new(ErrorCode::InvalidParameters, message).with("executable", given);
        if let Some(resolved) = resolved_text {
            error = error.with("resolved", resolved.into_owned());
        }
        Err(error)
    }

    /// Spawns the child of the current run.
    fn launch(&mut self, ctx: &mut Context<'_>, model: Option<&Path>) -> Result<(), ErrorInfo> {
        let Some(run) = self.run.as_mut() else {
            return Ok(());
        };
        let Some(mut params) = run.params.take() else {
            return Ok(());
        };
        if let Some(model) = model {
            let text = model.to_string_lossy();
            for arg in &mut params.args {
                *arg = arg.replace("%PATH%", &text);
            }
        }
        let cwd = match &params.working_directory {
            Some(dir) => run.dir.join(dir),
            None => run.dir.clone(),
        };
        std::fs::create_dir_all(&cwd).map_err(|e| {
            failed(format!(
                "cannot create the working directory {}: {e}",
                cwd.display()
            ))
        })?;
        let log_file = run
            .dir
            .join(params.stdout_logfile.as_deref().unwrap_or("output.log"));
        params
            .environment
            .insert("VILLAS_RUN_DIR".into(), run.dir.clone().into());
        params
            .environment
            .insert("VILLAS_COMPONENT_UUID".into(), self.uuid.clone().into());
        let launch = process::Launch {
            program: &params.program,
            args: &params.args,
            cwd: &cwd,
            env: &params.environment,
            log_file: &log_file,
            uuid: &self.uuid,
        };
        let Spawned { pid, exited } = process::spawn(&launch, &self.groups)
            .map_err(|e| failed(format!("cannot start {}: {e}", params.program.display())))?;
        tracing::info!(uuid = %self.uuid, pid, program = %params.program.display(), args = ?params.args, run = %run.dir.display(), "child process started");
        run.pid = Some(pid);
        let id = run.id;
        ctx.spawn(async move {
            let status = exited
                .await
                .unwrap_or_else(|_| Err(std::io::Error::other("the reaper stopped")));
            RunEvent::Exited(id, status)
        });
        ctx.transition(State::Running)
    }

    fn pid(&self) -> Option<i32> {
        self.run.as_ref().and_then(|r| r.pid)
    }

    /// The run ended well: upload results if asked, then `idle`.
    fn finish(&mut self, ctx: &mut Context<'_>) -> Result<(), ErrorInfo> {
        let Some(run) = self.run.as_mut() else {
            return ctx.transition(State::Idle);
        };
        run.pid = None;
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

    fn exited(
        &mut self,
        ctx: &mut Context<'_>,
        status: std::io::Result<ExitStatus>,
    ) -> Result<(), ErrorInfo> {
        if let Some(run) = self.run.as_mut() {
            run.pid = None;
        }
        let status =
            status.map_err(|e| failed(format!("cannot wait for the child process: {e}")))?;
        self.return_code = status.code();
        self.signal = status.signal().map(process::signal_name);
        tracing::info!(uuid = %self.uuid, code = ?self.return_code, signal = ?self.signal, state = %ctx.state(), "child process exited");
        match ctx.state() {
            // Asked to stop: however it ended, the run is over.
            State::Stopping => self.finish(ctx),
            State::Running | State::Pausing | State::Paused | State::Resuming => {
                match (self.return_code, &self.signal) {
                    (Some(0), _) => {
                        ctx.transition(State::Stopping)?;
                        self.finish(ctx)
                    }
                    (Some(code), _) => {
                        self.run = None;
                        Err(failed(format!("child process exited with code {code}"))
                            .with("return_code", code))
                    }
                    (None, signal) => {
                        self.run = None;
                        let name = signal.clone().unwrap_or_else(|| "an unknown signal".into());
                        let mut error = ErrorInfo::new(
                            ErrorCode::Crashed,
                            format!("child process was killed by {name}"),
                        )
                        .with("signal_name", name);
                        if let Some(number) = status.signal() {
                            error = error.with("signal", number);
                        }
                        Err(error)
                    }
                }
            }
            _ => Ok(()),
        }
    }
}

fn failed(message: impl Into<String>) -> ErrorInfo {
    ErrorInfo::new(ErrorCode::Failed, message)
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The absolute path of `executable`, symlinks not followed: itself when
/// it holds a `/` (it must then be absolute, without `..` segments), else
/// the first executable file named so in the absolute directories of
/// `path`. It must be an executable file.
fn resolve(executable: &str, path: Option<&OsString>) -> Result<PathBuf, ErrorInfo> {
    let refuse = |message: String| invalid(message).with("executable", executable);
    let resolved = if executable.contains('/') {
        let given = Path::new(executable);
        if !given.is_absolute() {
            return Err(refuse(format!(
                "executable {executable:?} must be an absolute path or a name looked up in PATH"
            )));
        }
        if given
            .components()
            .any(|c| c == std::path::Component::ParentDir)
        {
            return Err(refuse(format!(
                "executable {executable:?} must not contain `..` segments"
            )));
        }
        given.to_owned()
    } else {
        let dirs = path.cloned().unwrap_or_default();
        std::env::split_paths(&dirs)
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.join(executable))
            .find(|p| is_executable(p))
            .ok_or_else(|| refuse(format!("executable {executable:?} not found in PATH")))?
    };
    if !resolved.exists() {
        return Err(refuse(format!("executable {executable:?} not found")));
    }
    if !is_executable(&resolved) {
        return Err(refuse(format!(
            "{} is not an executable file",
            resolved.display()
        )));
    }
    Ok(resolved)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Timers above this one are SIGKILL deadlines of a `stop`, one per run.
const KILL_BASE: TimerToken = 1_000;

impl Component for Generic {
    fn actions(&self) -> &'static [ActionKind] {
        &[
            ActionKind::Start,
            ActionKind::Stop,
            ActionKind::Pause,
            ActionKind::Resume,
        ]
    }

    fn admit(&self, _spec: &ComponentSpec, action: &Action) -> Result<(), ErrorInfo> {
        if action.kind == ActionKind::Start {
            self.check_start(action)?;
            if let Some(model) = &action.model {
                ModelSource::parse(model).map_err(|e| invalid(e.to_string()))?;
            }
            if let Some(results) = &action.results {
                ResultsTarget::parse(results).map_err(|e| invalid(e.to_string()))?;
            }
        }
        Ok(())
    }

    fn start(&mut self, ctx: &mut Context<'_>, action: &Action) -> Result<(), ErrorInfo> {
        let params = self.check_start(action)?;
        self.runs += 1;
        self.return_code = None;
        self.signal = None;
        self.model = action.model.clone();
        self.results = action.results.clone();
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
        let results = match &action.results {
            Some(results) => ResultsTarget::parse(results).map_err(|e| invalid(e.to_string()))?,
            None => None,
        };
        let id = self.runs;
        self.last_run_dir = Some(dir.clone());
        self.run = Some(Run {
            id,
            dir: dir.clone(),
            pid: None,
            params: Some(params),
            results,
        });
        match &action.model {
            Some(model) => {
                let source = ModelSource::parse(model).map_err(|e| invalid(e.to_string()))?;
                ctx.spawn(async move {
                    RunEvent::ModelReady(id, transfer::download(source, dir.join("model")).await)
                });
                Ok(())
            }
            None => self.launch(ctx, None),
        }
    }

    fn stop(&mut self, ctx: &mut Context<'_>, _action: &Action) -> Result<(), ErrorInfo> {
        match (self.pid(), self.run.as_ref()) {
            (Some(pid), Some(run)) => {
                tracing::info!(uuid = %self.uuid, pid, grace = ?self.grace, "stopping the child process (SIGTERM)");
                process::terminate(pid);
                ctx.schedule(self.grace, KILL_BASE + run.id);
                Ok(())
            }
            _ => {
                self.run = None;
                ctx.transition(State::Idle)
            }
        }
    }

    fn pause(&mut self, ctx: &mut Context<'_>, _action: &Action) -> Result<(), ErrorInfo> {
        let pid = self
            .pid()
            .ok_or_else(|| failed("no child process is running"))?;
        process::signal_group(pid, nix::sys::signal::Signal::SIGTSTP);
        ctx.transition(State::Paused)
    }

    fn resume(&mut self, ctx: &mut Context<'_>, _action: &Action) -> Result<(), ErrorInfo> {
        let pid = self
            .pid()
            .ok_or_else(|| failed("no child process is running"))?;
        process::signal_group(pid, nix::sys::signal::Signal::SIGCONT);
        ctx.transition(State::Running)
    }

    fn reset(&mut self, ctx: &mut Context<'_>, _action: &Action) -> Result<(), ErrorInfo> {
        if let Some(pid) = self.pid() {
            tracing::info!(uuid = %self.uuid, pid, "reset: killing the child process group");
            process::signal_group(pid, nix::sys::signal::Signal::SIGKILL);
        }
        self.run = None;
        ctx.transition(State::Idle)
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, token: TimerToken) -> Result<(), ErrorInfo> {
        let current = self.run.as_ref().map(|r| KILL_BASE + r.id);
        if ctx.state() == State::Stopping && current == Some(token) {
            if let Some(pid) = self.pid() {
                tracing::warn!(uuid = %self.uuid, pid, grace = ?self.grace, "the child process ignored SIGTERM; killing it");
                process::signal_group(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
        Ok(())
    }

    fn on_task(&mut self, ctx: &mut Context<'_>, output: TaskOutput) -> Result<(), ErrorInfo> {
        let Ok(event) = output.downcast::<RunEvent>() else {
            return Ok(());
        };
        let current = self.run.as_ref().map(|r| r.id);
        match *event {
            RunEvent::ModelReady(id, result) if Some(id) == current => match result {
                Ok(path) if ctx.state() == State::Starting => self.launch(ctx, Some(&path)),
                Ok(_) => Ok(()),
                Err(error) => {
                    self.run = None;
                    Err(failed(format!("model download failed: {error}")))
                }
            },
            RunEvent::Exited(id, status) if Some(id) == current => self.exited(ctx, status),
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
        fields.insert(
            "return_code".into(),
            self.return_code.map_or(Value::Null, Value::from),
        );
        if let Some(signal) = &self.signal {
            fields.insert("signal_name".into(), signal.clone().into());
        }
        if let Some(pid) = self.pid() {
            fields.insert("pid".into(), pid.into());
        }
        if let Some(dir) = &self.last_run_dir {
            fields.insert(
                "run_directory".into(),
                dir.to_string_lossy().into_owned().into(),
            );
        }
        fields.insert("model".into(), self.model.clone().unwrap_or(Value::Null));
        fields.insert(
            "results".into(),
            self.results.clone().unwrap_or(Value::Null),
        );
    }

    fn on_remove(&mut self) {
        if let Some(pid) = self.pid() {
            tracing::info!(uuid = %self.uuid, pid, "component released: terminating its child process group");
            process::terminate_in_background(pid, self.grace);
        }
        self.run = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(whitelist: &[&str]) -> Generic {
        let properties = json!({"category": "simulator", "type": "generic", "whitelist": whitelist, "shell": true});
        let spec =
            ComponentSpec::from_properties(properties.as_object().cloned().unwrap()).unwrap();
        GenericKind::default().instance(&spec).unwrap()
    }

    fn start(generic: &Generic, parameters: Value) -> Result<PathBuf, String> {
        let action = Action::new(ActionKind::Start)
            .with_parameters(parameters.as_object().cloned().unwrap());
        generic
            .check_start(&action)
            .map(|p| p.program)
            .map_err(|e| e.message)
    }

    #[test]
    fn entries_match_at_the_start_as_python_re_match() {
        let g = generic(&["^/bin/sh$", "/bin/true", "^echo"]);
        // As given, symlinks not followed: /bin is a link on merged /usr.
        assert_eq!(
            start(&g, json!({"executable": "/bin/sh"})),
            Ok(PathBuf::from("/bin/sh"))
        );
        assert_eq!(
            start(&g, json!({"executable": "/bin/true"})),
            Ok(PathBuf::from("/bin/true"))
        );
        // A name matched as given runs from PATH.
        let echo = start(&g, json!({"executable": "echo"})).unwrap();
        assert!(echo.is_absolute() && echo.ends_with("echo"), "{echo:?}");
        // `$` ends the match; without it an entry is a prefix.
        let refused = start(&g, json!({"executable": "/usr/bin/true"})).unwrap_err();
        assert!(refused.contains("not whitelisted"), "{refused}");
        assert!(start(&g, json!({"executable": "/bin/sh", "shell": false})).is_ok());
        // The shell command text is matched as given.
        assert!(start(&g, json!({"executable": "echo hi; id", "shell": true})).is_ok());
        assert!(start(&g, json!({"executable": "id", "shell": true})).is_err());
    }

    #[test]
    fn the_path_resolved_through_path_matches_too() {
        let g = generic(&["/usr/bin/printf$"]);
        let program = start(
            &g,
            json!({"executable": "printf", "environment": {"PATH": "relative:/usr/bin"}}),
        );
        assert_eq!(program, Ok(PathBuf::from("/usr/bin/printf")));
        let refused = start(
            &g,
            json!({"executable": "printf", "environment": {"PATH": "/bin"}}),
        )
        .unwrap_err();
        assert!(
            refused.contains("(/bin/printf) is not whitelisted"),
            "{refused}"
        );
    }

    #[test]
    fn relative_paths_and_parent_segments_are_refused() {
        let g = generic(&["/usr/bin/", "bin/"]);
        let relative = start(&g, json!({"executable": "bin/true"})).unwrap_err();
        assert!(relative.contains("absolute path"), "{relative}");
        let parent = start(&g, json!({"executable": "/usr/bin/../bin/id"})).unwrap_err();
        assert!(parent.contains("`..`"), "{parent}");
        let missing = start(&g, json!({"executable": "/usr/bin/no-such-tool"})).unwrap_err();
        assert!(missing.contains("not found"), "{missing}");
    }
}
