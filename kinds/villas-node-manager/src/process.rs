//! The VILLASnode child process a manager runs when it owns one: the
//! command line (`executable CONFIG`, the configuration as VILLASnode
//! reads it itself), its output file, and the signals of `stop` (SIGTERM),
//! `pause` (SIGSTOP) and `resume` (SIGCONT).

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

/// Why the child could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The configuration file could not be written.
    #[error("writing VILLASnode's configuration {path}: {source}")]
    Config {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The log file could not be opened.
    #[error("opening the log file {path}: {source}")]
    Log {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The executable could not be run.
    #[error("running {executable}: {source}")]
    Spawn {
        /// What.
        executable: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Where VILLASnode's configuration comes from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// `config`: written to a JSON file the child is given.
    Inline(Map<String, Value>),
    /// `config_filename`: given as it is (JSON or libconfig).
    File(PathBuf),
}

/// How to run the child.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// `executable`.
    pub executable: String,
    /// Its configuration.
    pub config: ConfigSource,
    /// `log_filename`, or a file in the data directory, or nowhere.
    pub log: Option<PathBuf>,
    /// Where an inline configuration is written.
    pub config_dir: PathBuf,
    /// Names the written file (the manager's uuid).
    pub tag: String,
}

/// A running child.
#[derive(Debug)]
pub struct Running {
    /// Its pid.
    pub pid: i32,
}

impl ProcessSpec {
    /// Starts the child; returns it and the future that waits for its end.
    pub fn spawn(
        &self,
    ) -> Result<
        (
            Running,
            impl std::future::Future<Output = std::io::Result<ExitStatus>>,
        ),
        ProcessError,
    > {
        let config_path = match &self.config {
            ConfigSource::File(path) => path.clone(),
            ConfigSource::Inline(config) => {
                let path = self
                    .config_dir
                    .join(format!("villas-node-{}.json", self.tag));
                let text =
                    serde_json::to_vec_pretty(&Value::Object(config.clone())).unwrap_or_default();
                std::fs::write(&path, text).map_err(|source| ProcessError::Config {
                    path: path.clone(),
                    source,
                })?;
                path
            }
        };
        let (stdout, stderr) = match &self.log {
            Some(path) => {
                let file = open_log(path)?;
                let copy = file.try_clone().map_err(|source| ProcessError::Log {
                    path: path.clone(),
                    source,
                })?;
                (Stdio::from(file), Stdio::from(copy))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let mut command = tokio::process::Command::new(&self.executable);
        command
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        let mut child = command.spawn().map_err(|source| ProcessError::Spawn {
            executable: self.executable.clone(),
            source,
        })?;
        let pid = child.id().map_or(0, |id| id as i32);
        Ok((Running { pid }, async move { child.wait().await }))
    }
}

fn open_log(path: &Path) -> Result<std::fs::File, ProcessError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| ProcessError::Log {
            path: path.to_owned(),
            source,
        })
}

impl Running {
    /// Sends `signal` to the child (an error if it is gone).
    pub fn signal(&self, signal: Signal) -> Result<(), nix::Error> {
        if self.pid <= 0 {
            return Err(nix::Error::ESRCH);
        }
        kill(Pid::from_raw(self.pid), signal)
    }

    /// SIGTERM, and SIGCONT so that a stopped child sees it.
    pub fn terminate(&self) {
        let _ = self.signal(Signal::SIGTERM);
        let _ = self.signal(Signal::SIGCONT);
    }
}
