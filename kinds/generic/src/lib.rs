//! # villas-kind-generic
//!
//! The `simulator`/`generic` kind: runs an executable as a child process
//! per `start` (the reference's most used kind, hardened).
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
/// Model download and results upload (shared with other kinds through the
/// SDK).
pub use villas_sdk::transfer;

use process::{LiveGroups, Spawned};
use regex::Regex;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;
use transfer::{ModelSource, ResultsTarget, TransferError};
use villas_sdk::typed::{Actions, Ctx, TypedComponent, TypedKind};
use villas_sdk::{Action, ComponentSpec, ErrorCode, ErrorInfo, State, TimerId};

/// The `simulator`/`generic` kind.
#[derive(Debug, Default, Clone)]
pub struct GenericKind {
    /// Every live child process group of every instance.
    groups: LiveGroups,
}

/// The generic simulator's own properties.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct GenericProperties {
    /// Regular expressions an executable must match, each at the start of
    /// the text (Python's `re.match`); no whitelist, no start.
    #[serde(default)]
    pub whitelist: Vec<String>,
    /// Whether `start` may ask for `shell: true` (`/bin/sh -c`).
    #[serde(default)]
    pub shell: bool,
    /// Seconds between SIGTERM and SIGKILL on `stop`.
    #[serde(default = "default_stop_grace")]
    #[schemars(range(min = 0, max = 3600))]
    pub stop_grace: f64,
    /// The names of the daemon's environment variables a child inherits.
    #[serde(default = "default_environment_allow")]
    pub environment_allow: Vec<String>,
}

fn default_stop_grace() -> f64 {
    5.0
}

fn default_environment_allow() -> Vec<String> {
    ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME"]
        .map(str::to_owned)
        .to_vec()
}

impl TypedKind for GenericKind {
    const CATEGORY: &'static str = "simulator";
    const TYPE_NAME: &'static str = "generic";
    type Properties = GenericProperties;
    type Component = Generic;

    fn build(
        &self,
        spec: &ComponentSpec,
        properties: GenericProperties,
    ) -> Result<Generic, ErrorInfo> {
        let whitelist = properties
            .whitelist
            .iter()
            .map(|text| {
                // Anchored at the start only, as Python's `re.match`.
                Regex::new(&format!("^(?:{text})"))
                    .map_err(|e| invalid(format!("property whitelist: {text:?}: {e}")))
            })
            .collect::<Result<_, _>>()?;
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
            shell_allowed: properties.shell,
            grace: Duration::from_secs_f64(properties.stop_grace),
            environment_allow: properties.environment_allow,
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

    fn drain(&self, grace: Duration) {
        self.groups.terminate_all(grace);
    }
}

fn invalid(message: impl Into<String>) -> ErrorInfo {
    ErrorInfo::new(ErrorCode::InvalidParameters, message)
}

fn failed(message: impl Into<String>) -> ErrorInfo {
    ErrorInfo::new(ErrorCode::Failed, message)
}

// `start` parameters (published as `schema.start`, what VILLASweb draws
// its start form from: the titles are the form's).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct StartParameters {
    #[schemars(
        title = "Executable (absolute path, or a name looked up in PATH); must match the whitelist",
        length(min = 1),
        extend("examples" = ["/usr/bin/villas-node"])
    )]
    executable: String,
    #[serde(default)]
    #[schemars(
        title = "Arguments (%PATH% is replaced by the model's path)",
        extend("default" = [])
    )]
    argv: Vec<Scalar>,
    #[schemars(title = "Working directory (relative: inside the run directory)")]
    working_directory: Option<String>,
    #[schemars(title = "Environment variables")]
    environment: Option<BTreeMap<String, Scalar>>,
    #[serde(default)]
    #[schemars(title = "Run through /bin/sh -c (only if the component allows it)")]
    shell: bool,
    #[schemars(title = "Log file of stdout and stderr (relative: inside the run directory)")]
    stdout_logfile: Option<String>,
}

/// A string, number or boolean, passed on as text (argv, environment).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Scalar {
    /// A string.
    Text(String),
    /// A number, as JSON writes it.
    Number(serde_json::Number),
    /// `true` or `false`.
    Bool(bool),
}

impl JsonSchema for Scalar {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Scalar".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": ["string", "number", "boolean"]})
    }
}

impl Scalar {
    fn into_text(self) -> String {
        match self {
            Scalar::Text(text) => text,
            Scalar::Number(number) => number.to_string(),
            Scalar::Bool(value) => value.to_string(),
        }
    }
}

/// What to run, checked: executable resolved and whitelisted, environment
/// built.
#[derive(Debug)]
struct Launch {
    /// The resolved executable, or `/bin/sh` in shell mode.
    program: PathBuf,
    /// Its arguments (`%PATH%` still to be replaced by the model's path).
    args: Vec<String>,
    /// As given (relative: inside the run directory).
    working_directory: Option<String>,
    /// The child's whole environment but the run's own variables.
    environment: BTreeMap<String, OsString>,
    /// As given (relative: inside the run directory).
    stdout_logfile: Option<String>,
}

/// A `start` that passed every check (before the state changed): what the
/// run needs, parsed once.
#[derive(Debug)]
struct AdmittedStart {
    /// What to run.
    launch: Launch,
    /// Where the model comes from, if the action names one.
    model: Option<ModelSource>,
    /// Where results go, if the action names a URL.
    results: Option<ResultsTarget>,
    /// The action's `model`, published as the reference does.
    model_json: Option<Value>,
    /// The action's `results`, published as the reference does.
    results_json: Option<Value>,
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
    launch: Option<Launch>,
    /// Where results go.
    results: Option<ResultsTarget>,
    /// The SIGKILL deadline of a `stop`, cancelled when the child exits.
    kill: Option<TimerId>,
}

/// What a task of a run hands back.
#[derive(Debug)]
pub enum RunEvent {
    /// The model was downloaded (or not).
    ModelReady(u64, Result<PathBuf, TransferError>),
    /// The child was reaped.
    Exited(u64, std::io::Result<ExitStatus>),
    /// The results were uploaded (or not).
    Uploaded(u64, Result<(), TransferError>),
}

/// The generic simulator's timer: the SIGKILL deadline of a `stop`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KillDeadline;

/// One generic simulator.
#[derive(Debug)]
pub struct Generic {
    /// For log lines and the child's `VILLAS_COMPONENT_UUID`.
    uuid: String,
    /// Property `whitelist`, compiled (anchored at the start).
    whitelist: Vec<Regex>,
    /// Property `shell`.
    shell_allowed: bool,
    /// Property `stop_grace`.
    grace: Duration,
    /// Property `environment_allow`.
    environment_allow: Vec<String>,
    /// The component's data directory (runs live below it).
    base_dir: PathBuf,
    /// The kind's record of live process groups (see [`GenericKind`]).
    groups: LiveGroups,
    /// The run in progress.
    run: Option<Run>,
    /// Runs started so far (run ids).
    runs: u64,
    /// The last run's exit code.
    return_code: Option<i32>,
    /// The signal that ended the last run.
    signal: Option<String>,
    /// The last `start`'s `model`, published as the reference does.
    model: Option<Value>,
    /// The last `start`'s `results`, published as the reference does.
    results: Option<Value>,
    /// The last run's directory (its log file is there).
    last_run_dir: Option<PathBuf>,
}

impl Generic {
    /// Checks a `start` before the state changes: executable resolved and
    /// whitelisted, shell only where allowed, `model` and `results`
    /// readable.
    fn check_start(
        &self,
        start: StartParameters,
        action: &Action,
    ) -> Result<AdmittedStart, ErrorInfo> {
        let model = action
            .model
            .as_ref()
            .map(|model| ModelSource::parse(model).map_err(|e| invalid(e.to_string())))
            .transpose()?;
        let results = match &action.results {
            Some(results) => ResultsTarget::parse(results).map_err(|e| invalid(e.to_string()))?,
            None => None,
        };
        Ok(AdmittedStart {
            launch: self.check_launch(start)?,
            model,
            results,
            model_json: action.model.clone(),
            results_json: action.results.clone(),
        })
    }

    /// What `start`'s parameters ask to run, checked.
    fn check_launch(&self, start: StartParameters) -> Result<Launch, ErrorInfo> {
        let executable = start.executable;
        let args: Vec<String> = start.argv.into_iter().map(Scalar::into_text).collect();
        let mut environment = BTreeMap::new();
        for name in &self.environment_allow {
            if let Some(value) = std::env::var_os(name) {
                environment.insert(name.clone(), value);
            }
        }
        for (name, value) in start.environment.unwrap_or_default() {
            let text = value.into_text();
            if name.is_empty() || name.contains(['=', '\0']) || text.contains('\0') {
                return Err(invalid(format!(
                    "environment variable {name:?} is not valid"
                )));
            }
            environment.insert(name, text.into());
        }
        let (program, args) = if start.shell {
            if !self.shell_allowed {
                return Err(ErrorInfo::new(
                    ErrorCode::InvalidParameters,
                    "shell execution is not allowed for this simulator (property shell is not true)",
                ));
            }
            self.check_whitelisted(&executable, None)?;
            let mut all = vec!["-c".to_owned(), executable, "sh".to_owned()];
            all.extend(args);
            (PathBuf::from("/bin/sh"), all)
        } else {
            let resolved = resolve(&executable, environment.get("PATH"))?;
            self.check_whitelisted(&executable, Some(&resolved))?;
            (resolved, args)
        };
        Ok(Launch {
            program,
            args,
            working_directory: start.working_directory,
            environment,
            stdout_logfile: start.stdout_logfile,
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
    fn launch(&mut self, ctx: &mut Ctx<'_, Self>, model: Option<&Path>) -> Result<(), ErrorInfo> {
        let Some(run) = self.run.as_mut() else {
            return Ok(());
        };
        let Some(mut params) = run.launch.take() else {
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
    fn finish(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
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
        ctx: &mut Ctx<'_, Self>,
        status: std::io::Result<ExitStatus>,
    ) -> Result<(), ErrorInfo> {
        if let Some(run) = self.run.as_mut() {
            run.pid = None;
            if let Some(kill) = run.kill.take() {
                ctx.cancel(kill);
            }
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

    fn start(&mut self, ctx: &mut Ctx<'_, Self>, start: AdmittedStart) -> Result<(), ErrorInfo> {
        self.runs += 1;
        self.return_code = None;
        self.signal = None;
        self.model = start.model_json;
        self.results = start.results_json;
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
        let id = self.runs;
        self.last_run_dir = Some(dir.clone());
        self.run = Some(Run {
            id,
            dir: dir.clone(),
            pid: None,
            launch: Some(start.launch),
            results: start.results,
            kill: None,
        });
        match start.model {
            Some(source) => {
                ctx.spawn(async move {
                    RunEvent::ModelReady(id, transfer::download(source, dir.join("model")).await)
                });
                Ok(())
            }
            None => self.launch(ctx, None),
        }
    }

    fn stop(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        let pid = self.pid();
        match (pid, self.run.as_mut()) {
            (Some(pid), Some(run)) => {
                tracing::info!(uuid = %self.uuid, pid, grace = ?self.grace, "stopping the child process (SIGTERM)");
                process::terminate(pid);
                run.kill = Some(ctx.schedule(self.grace, KillDeadline));
                Ok(())
            }
            _ => {
                self.run = None;
                ctx.transition(State::Idle)
            }
        }
    }

    fn pause(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        let pid = self
            .pid()
            .ok_or_else(|| failed("no child process is running"))?;
        process::signal_group(pid, nix::sys::signal::Signal::SIGTSTP);
        ctx.transition(State::Paused)
    }

    fn resume(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        let pid = self
            .pid()
            .ok_or_else(|| failed("no child process is running"))?;
        process::signal_group(pid, nix::sys::signal::Signal::SIGCONT);
        ctx.transition(State::Running)
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

impl TypedComponent for Generic {
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
        if let Some(pid) = self.pid() {
            tracing::info!(uuid = %self.uuid, pid, "reset: killing the child process group");
            process::signal_group(pid, nix::sys::signal::Signal::SIGKILL);
        }
        self.run = None;
        ctx.transition(State::Idle)
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, _: KillDeadline) -> Result<(), ErrorInfo> {
        if let Some(run) = self.run.as_mut() {
            run.kill = None;
        }
        if ctx.state() == State::Stopping {
            if let Some(pid) = self.pid() {
                tracing::warn!(uuid = %self.uuid, pid, grace = ?self.grace, "the child process ignored SIGTERM; killing it");
                process::signal_group(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
        Ok(())
    }

    fn on_task(&mut self, ctx: &mut Ctx<'_, Self>, event: RunEvent) -> Result<(), ErrorInfo> {
        let current = self.run.as_ref().map(|r| r.id);
        match event {
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
    use serde_json::json;
    use villas_sdk::testing::Harness;
    use villas_sdk::ActionKind;

    fn generic(whitelist: &[&str]) -> Generic {
        let own = json!({"whitelist": whitelist, "shell": true});
        let mut properties = own.as_object().cloned().unwrap();
        properties.insert("category".into(), "simulator".into());
        properties.insert("type".into(), "generic".into());
        let spec = ComponentSpec::from_properties(properties).unwrap();
        let own: GenericProperties = serde_json::from_value(own).unwrap();
        GenericKind::default().build(&spec, own).unwrap()
    }

    fn start(generic: &Generic, parameters: Value) -> Result<PathBuf, String> {
        let action = Action::new(villas_sdk::ActionKind::Start)
            .with_parameters(parameters.as_object().cloned().unwrap());
        let start: StartParameters =
            serde_json::from_value(parameters).map_err(|e| e.to_string())?;
        generic
            .check_start(start, &action)
            .map(|admitted| admitted.launch.program)
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

    #[test]
    fn bad_properties_are_refused_naming_the_property() {
        for (properties, needle) in [
            (json!({"whitelist": "^/bin/sh$"}), "whitelist"),
            (json!({"whitelist": ["("]}), "whitelist"),
            (json!({"stop_grace": 3601}), "stop_grace"),
            (json!({"shell": "yes"}), "shell"),
            (json!({"environment_allow": [1]}), "environment_allow"),
        ] {
            let error = Harness::typed(GenericKind::default(), properties.clone())
                .err()
                .unwrap_or_else(|| panic!("{properties} was accepted"));
            assert_eq!(error.code, ErrorCode::InvalidParameters, "{properties}");
            assert!(
                error.message.contains(needle),
                "{properties}: {}",
                error.message
            );
        }
    }

    #[test]
    fn the_published_start_schema_is_the_one_villasweb_draws() {
        let kind = GenericKind::default().into_kind();
        villas_sdk::testing::check_villasweb_schemas(kind.as_ref()).unwrap();
        let scalar = json!({"type": ["string", "number", "boolean"]});
        assert_eq!(
            Value::Object(kind.schemas()),
            json!({"start": {
                "$schema": "http://json-schema.org/draft-07/schema",
                "type": "object",
                "additionalProperties": false,
                "required": ["executable"],
                "properties": {
                    "executable": {
                        "type": "string",
                        "minLength": 1,
                        "title": "Executable (absolute path, or a name looked up in PATH); must match the whitelist",
                        "examples": ["/usr/bin/villas-node"]
                    },
                    "argv": {
                        "type": "array",
                        "title": "Arguments (%PATH% is replaced by the model's path)",
                        "items": scalar,
                        "default": []
                    },
                    "working_directory": {
                        "type": "string",
                        "title": "Working directory (relative: inside the run directory)"
                    },
                    "environment": {
                        "type": "object",
                        "title": "Environment variables",
                        "additionalProperties": scalar
                    },
                    "shell": {
                        "type": "boolean",
                        "title": "Run through /bin/sh -c (only if the component allows it)",
                        "default": false
                    },
                    "stdout_logfile": {
                        "type": "string",
                        "title": "Log file of stdout and stderr (relative: inside the run directory)"
                    }
                }
            }})
        );
    }

    /// A generic simulator whose runs live in a temporary directory.
    fn lab(whitelist: &[&str]) -> (Harness, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let properties = json!({"category": "simulator", "type": "generic",
                                "whitelist": whitelist, "stop_grace": 5});
        let mut spec =
            ComponentSpec::from_properties(properties.as_object().cloned().unwrap()).unwrap();
        spec.set_data_dir(Some(dir.path().to_owned()));
        let harness = Harness::from_spec(GenericKind::default().into_kind(), spec).unwrap();
        (harness, dir)
    }

    /// Completes the run's tasks until the simulator is in `state`.
    async fn until(h: &mut Harness, state: State) {
        let wait = async {
            while h.state() != state {
                assert!(h.next_task().await, "no task left, in {}", h.state());
            }
        };
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .unwrap_or_else(|_| panic!("not {state} in time"));
    }

    #[tokio::test]
    async fn a_run_that_exits_with_zero_goes_back_to_idle() {
        let (mut h, _dir) = lab(&["^/usr/bin/true$"]);
        h.act(ActionKind::Start, json!({"executable": "/usr/bin/true"}))
            .unwrap();
        until(&mut h, State::Idle).await;
        assert_eq!(
            h.states(),
            [
                State::Starting,
                State::Running,
                State::Stopping,
                State::Idle
            ]
        );
        assert_eq!(h.status()["status"]["return_code"], 0);
    }

    #[tokio::test]
    async fn a_run_that_exits_with_another_code_is_an_error() {
        let (mut h, _dir) = lab(&["^/usr/bin/false$"]);
        h.act(ActionKind::Start, json!({"executable": "/usr/bin/false"}))
            .unwrap();
        until(&mut h, State::Error).await;
        let error = h.error().unwrap();
        assert_eq!(error.code, ErrorCode::Failed);
        assert_eq!(error.details["return_code"], 1);
    }

    #[tokio::test]
    async fn a_refused_start_keeps_the_state_and_spawns_nothing() {
        let (mut h, _dir) = lab(&["^/usr/bin/true$"]);
        let error = h
            .act(ActionKind::Start, json!({"executable": "/usr/bin/id"}))
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidParameters);
        assert_eq!(h.states(), [State::Idle]);
        assert_eq!(h.pending_tasks(), 0);
    }

    #[tokio::test]
    async fn stop_cancels_the_kill_deadline_once_the_child_is_gone() {
        let (mut h, _dir) = lab(&["^/usr/bin/sleep$"]);
        h.act(
            ActionKind::Start,
            json!({"executable": "/usr/bin/sleep", "argv": [30]}),
        )
        .unwrap();
        assert_eq!(h.state(), State::Running);
        h.act(ActionKind::Stop, json!({})).unwrap();
        let [(_, grace)] = h.pending_timers()[..] else {
            panic!("no kill deadline: {:?}", h.pending_timers())
        };
        assert_eq!(grace, Duration::from_secs(5));
        // SIGTERM ends `sleep`: the run is over, its deadline with it.
        until(&mut h, State::Idle).await;
        assert_eq!(h.pending_timers(), [], "the kill deadline outlived the run");
        assert_eq!(h.status()["status"]["signal_name"], "SIGTERM");
    }
}
