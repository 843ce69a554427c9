//! The runner child process of a DPsim run: the Python script shipped in
//! this crate (`runner/dpsim_runner.py`, embedded and written into each
//! run's directory), started with the component's `python` in its own
//! process group (SIGKILL when the daemon dies), its events read line by
//! line from its stdout, its commands written to its stdin, its stderr
//! (DPsim's and the CIM library's output) in the run's `output.log`.

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::Deserialize;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::ChildStdout;
use tokio::sync::oneshot;

/// The runner script.
pub const RUNNER: &str = include_str!("../runner/dpsim_runner.py");

/// Its file name in the run directory.
pub const RUNNER_FILE: &str = "dpsim_runner.py";

/// The longest event line read (longer ones are cut).
const LINE_LIMIT: usize = 64 * 1024;

/// How long the check of the Python environment may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the runner could not be started or talked to.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The interpreter does not exist.
    #[error("the python interpreter {python:?} (property python) cannot be run: {source}")]
    NoPython {
        /// As configured.
        python: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The interpreter has no `dpsimpy`.
    #[error("the python interpreter {python:?} (property python) has no dpsimpy module: install DPsim into its environment (pip install dpsim){detail}")]
    NoDpsim {
        /// As configured.
        python: String,
        /// What the interpreter said, if anything.
        detail: String,
    },
    /// The check did not finish in time.
    #[error("the python interpreter {0:?} did not answer within 10 s")]
    ProbeTimeout(String),
    /// Files of the run could not be written, the process not started.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// One event of the runner (a JSON line on its stdout).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event {
    /// Loading the model's files.
    Loading {},
    /// The model was loaded.
    Loaded {
        /// Topological nodes.
        nodes: u64,
        /// Components.
        components: u64,
    },
    /// Stepping began.
    Running {
        /// Simulated seconds.
        time: f64,
    },
    /// Stepping goes on.
    Progress {
        /// Simulated seconds.
        time: f64,
        /// Steps so far.
        steps: u64,
    },
    /// Stepping is paused.
    Paused {
        /// Simulated seconds.
        time: f64,
        /// Steps so far.
        steps: u64,
    },
    /// Stepping goes on again.
    Resumed {
        /// Simulated seconds.
        time: f64,
        /// Steps so far.
        steps: u64,
    },
    /// The run is over, loggers closed.
    Finished {
        /// Simulated seconds.
        time: f64,
        /// Steps done.
        steps: u64,
        /// Ended by a stop.
        stopped: bool,
    },
    /// The run failed; the reason is DPsim's.
    Error {
        /// What failed (`import`, `config`, `load`, `run`).
        stage: String,
        /// Why.
        message: String,
        /// The end of DPsim's CIM log, for load errors.
        #[serde(default)]
        log: Option<String>,
    },
}

impl Event {
    /// Reads one line; `None` for a line that is no event.
    pub fn parse(line: &str) -> Option<Event> {
        serde_json::from_str::<Value>(line)
            .ok()
            .and_then(|v| serde_json::from_value(v).ok())
    }
}

/// Checks that `python` runs and finds `dpsimpy` (without importing it:
/// finding the module costs an interpreter start, about 30 ms). Runs
/// before a `start` changes the state.
pub fn probe(python: &str) -> Result<(), RunnerError> {
    let mut child = std::process::Command::new(python)
        .args([
            "-c",
            "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('dpsimpy') else 3)",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| RunnerError::NoPython {
            python: python.to_owned(),
            source,
        })?;
    let deadline = Instant::now() + PROBE_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            if status.success() {
                return Ok(());
            }
            let mut said = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut stderr, &mut said);
            }
            let said = said.trim();
            return Err(RunnerError::NoDpsim {
                python: python.to_owned(),
                detail: if said.is_empty() {
                    String::new()
                } else {
                    format!(": {}", cut(said, 300))
                },
            });
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(RunnerError::ProbeTimeout(python.to_owned()));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The CIM files of a downloaded model: the file itself, or the `.xml`
/// files below the directory, sorted.
pub fn model_files(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    if root.is_file() {
        return Ok(vec![root.to_owned()]);
    }
    let mut found = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file()
                && path
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("xml"))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The event stream of a runner: read one line at a time by a task.
pub type EventLines = Lines<BufReader<ChildStdout>>;

/// A started runner.
pub struct Started {
    /// Its pid (= its process group).
    pub pid: i32,
    /// Where commands go.
    pub control: std::fs::File,
    /// Its events.
    pub events: EventLines,
    /// Completes with its exit status once reaped.
    pub exited: oneshot::Receiver<std::io::Result<ExitStatus>>,
}

/// Writes the runner and its configuration into `dir` and starts it.
/// Must run inside a tokio runtime (it spawns the reaper).
pub fn spawn(python: &str, dir: &Path, config: &Value) -> Result<Started, RunnerError> {
    let script = dir.join(RUNNER_FILE);
    std::fs::write(&script, RUNNER)?;
    let config_file = dir.join("run.json");
    std::fs::write(
        &config_file,
        serde_json::to_vec_pretty(config).map_err(std::io::Error::other)?,
    )?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("output.log"))?;
    let mut command = tokio::process::Command::new(python);
    command
        .arg(&script)
        .arg("--config")
        .arg(&config_file)
        .current_dir(dir)
        .env_clear()
        .envs(
            ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME"]
                .iter()
                .filter_map(|k| std::env::var_os(k).map(|v| (*k, v))),
        )
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .process_group(0);
    die_with_parent(&mut command);
    let mut child = command.spawn().map_err(|source| RunnerError::NoPython {
        python: python.to_owned(),
        source,
    })?;
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .ok_or_else(|| std::io::Error::other("the runner has no pid"))?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("the runner has no stdin"))?;
    let control = std::fs::File::from(stdin.into_owned_fd()?);
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("the runner has no stdout"))?;
    let (tx, exited) = oneshot::channel();
    tokio::spawn(async move {
        let _ = tx.send(child.wait().await);
    });
    Ok(Started {
        pid,
        control,
        events: BufReader::new(stdout).lines(),
        exited,
    })
}

/// The next line of the runner's events, `None` at their end (cut to
/// 64 KiB).
pub async fn next_line(mut lines: EventLines) -> (Option<String>, EventLines) {
    let line = lines.next_line().await.ok().flatten().map(|mut line| {
        if line.len() > LINE_LIMIT {
            line = cut(&line, LINE_LIMIT).to_owned();
        }
        line
    });
    (line, lines)
}

/// Sends a command line to the runner (`pause`, `resume`, `stop`).
pub fn command(control: &mut std::fs::File, word: &str) -> std::io::Result<()> {
    control.write_all(format!("{word}\n").as_bytes())
}

/// The child gets SIGKILL when the daemon's thread that spawned it dies.
#[allow(unsafe_code)]
fn die_with_parent(command: &mut tokio::process::Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and only
    // makes async-signal-safe system calls (prctl, getppid, _exit).
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            if nix::unistd::getppid().as_raw() as u32 != parent {
                nix::libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// Sends `signal` to the group; a group that is gone already is fine.
pub fn signal_group(pgid: i32, signal: Signal) {
    if let Err(error) = killpg(Pid::from_raw(pgid), signal) {
        if error != nix::errno::Errno::ESRCH {
            tracing::warn!(pgid, %signal, %error, "cannot signal the DPsim runner");
        }
    }
}

/// The name of a signal number (`SIGSEGV`), or its number.
pub fn signal_name(signal: i32) -> String {
    Signal::try_from(signal).map_or_else(|_| format!("signal {signal}"), |s| s.as_str().to_owned())
}

/// At most `max` bytes of `text`, cut at a character boundary.
pub fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The last `lines` lines of a text file (empty if unreadable).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn events_are_read_from_json_lines_and_other_lines_ignored() {
        assert_eq!(
            Event::parse(r#"{"event": "progress", "time": 0.5, "steps": 500, "final_time": 1.0}"#),
            Some(Event::Progress {
                time: 0.5,
                steps: 500
            })
        );
        assert_eq!(
            Event::parse(r#"{"event": "error", "stage": "load", "message": "bad"}"#),
            Some(Event::Error {
                stage: "load".into(),
                message: "bad".into(),
                log: None
            })
        );
        assert_eq!(Event::parse("Couldn't find cim:Foo"), None);
        assert_eq!(Event::parse(r#"{"event": "unknown"}"#), None);
    }

    #[test]
    fn a_missing_interpreter_is_named() {
        let error = probe("/nonexistent/python3").unwrap_err().to_string();
        assert!(
            error.contains("/nonexistent/python3") && error.contains("property python"),
            "{error}"
        );
    }

    #[test]
    fn an_interpreter_without_dpsimpy_is_refused_with_the_fix() {
        // The system's python3 has no dpsimpy (DPsim lives in a venv).
        if probe("python3").is_ok() {
            return;
        }
        let error = probe("python3").unwrap_err().to_string();
        assert!(error.contains("pip install dpsim"), "{error}");
    }
}
