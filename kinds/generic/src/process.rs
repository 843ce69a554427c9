//! The child process of a `generic` simulator run: spawned in its own
//! process group with a parent-death signal, an environment built from an
//! allow-list, its output copied to the run's log file and to tracing;
//! signalled as a group; reaped by a runtime task that outlives the
//! component's actor (no zombies), and recorded in [`LiveGroups`] until
//! then so that nothing outlives the daemon.

use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::sync::oneshot;

/// The process groups of every run still alive, shared by the kind and
/// its instances.
#[derive(Debug, Clone, Default)]
pub struct LiveGroups(Arc<Mutex<HashSet<i32>>>);

impl LiveGroups {
    fn insert(&self, pgid: i32) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(pgid);
    }

    fn remove(&self, pgid: i32) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&pgid);
    }

    fn snapshot(&self) -> Vec<i32> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }

    /// Terminates every live group: SIGTERM (and SIGCONT, so a stopped
    /// group can act on it), then SIGKILL for what is left after `grace`.
    pub fn terminate_all(&self, grace: Duration) {
        let groups = self.snapshot();
        if groups.is_empty() {
            return;
        }
        tracing::info!(groups = groups.len(), ?grace, "terminating child processes");
        for &pgid in &groups {
            terminate(pgid);
        }
        let deadline = Instant::now() + grace;
        let mut left = groups;
        while !left.is_empty() && Instant::now() < deadline {
            left.retain(|&pgid| group_alive(pgid));
            std::thread::sleep(Duration::from_millis(20));
        }
        for pgid in left {
            tracing::warn!(pgid, "child process group ignored SIGTERM; killing it");
            signal_group(pgid, Signal::SIGKILL);
        }
    }
}

/// What to run.
#[derive(Debug)]
pub struct Launch<'a> {
    /// The program (absolute), or `/bin/sh` in shell mode.
    pub program: &'a Path,
    /// Its arguments.
    pub args: &'a [String],
    /// Its working directory.
    pub cwd: &'a Path,
    /// Its complete environment.
    pub env: &'a BTreeMap<String, OsString>,
    /// Where stdout and stderr go (appended).
    pub log_file: &'a Path,
    /// For log lines.
    pub uuid: &'a str,
}

/// A running child.
#[derive(Debug)]
pub struct Spawned {
    /// Its pid, which is also its process group id.
    pub pid: i32,
    /// Completes with its exit status once it has been reaped.
    pub exited: oneshot::Receiver<std::io::Result<ExitStatus>>,
}

/// Starts the child in a new process group. Must run inside a tokio
/// runtime (it spawns the reaper and the output copiers).
pub fn spawn(launch: &Launch<'_>, groups: &LiveGroups) -> std::io::Result<Spawned> {
    let mut command = tokio::process::Command::new(launch.program);
    command
        .args(launch.args)
        .current_dir(launch.cwd)
        .env_clear()
        .envs(launch.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    die_with_parent(&mut command);
    let mut child = command.spawn()?;
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .ok_or_else(|| std::io::Error::other("the child has no pid"))?;
    groups.insert(pid);
    let log = Arc::new(launch.log_file.to_owned());
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(copy_output(
            stdout,
            log.clone(),
            launch.uuid.to_owned(),
            "stdout",
        ));
    }
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(copy_output(stderr, log, launch.uuid.to_owned(), "stderr"));
    }
    let (tx, exited) = oneshot::channel();
    let reaper_groups = groups.clone();
    tokio::spawn(async move {
        let status = child.wait().await;
        reaper_groups.remove(pid);
        let _ = tx.send(status);
    });
    Ok(Spawned { pid, exited })
}

/// The child gets SIGKILL when the daemon's thread that spawned it dies
/// (the daemon was killed): no orphaned simulator keeps running.
#[allow(unsafe_code)]
fn die_with_parent(command: &mut tokio::process::Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and only
    // makes async-signal-safe system calls (prctl, getppid, _exit).
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            // The parent may have died between fork and prctl.
            if nix::unistd::getppid().as_raw() as u32 != parent {
                nix::libc::_exit(1);
            }
            Ok(())
        });
    }
}

async fn copy_output(
    stream: impl AsyncRead + Unpin,
    log_file: Arc<PathBuf>,
    uuid: String,
    name: &'static str,
) {
    let mut log = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file.as_ref())
        .await
        .inspect_err(|error| tracing::warn!(%uuid, %error, log = %log_file.display(), "cannot open the run's log file"))
        .ok();
    let mut lines = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                tracing::debug!(%uuid, stream = name, line = %String::from_utf8_lossy(&line).trim_end(), "child output");
                if let Some(file) = log.as_mut() {
                    if file.write_all(&line).await.is_err() {
                        log = None;
                    }
                }
            }
        }
    }
}

/// Sends `signal` to the group; a group that is gone already is fine.
pub fn signal_group(pgid: i32, signal: Signal) {
    if let Err(error) = killpg(Pid::from_raw(pgid), signal) {
        if error != nix::errno::Errno::ESRCH {
            tracing::warn!(pgid, %signal, %error, "cannot signal the child process group");
        }
    }
}

/// SIGTERM, then SIGCONT so that a stopped group can act on it.
pub fn terminate(pgid: i32) {
    signal_group(pgid, Signal::SIGTERM);
    signal_group(pgid, Signal::SIGCONT);
}

/// Whether any process of the group still exists (reaping the leader if
/// it is our zombie).
fn group_alive(pgid: i32) -> bool {
    let _ = waitpid(Pid::from_raw(pgid), Some(WaitPidFlag::WNOHANG));
    killpg(Pid::from_raw(pgid), None).is_ok()
}

/// Terminates a group in the background: SIGTERM now, SIGKILL after
/// `grace` if it is still there (for a component deleted while running).
pub fn terminate_in_background(pgid: i32, grace: Duration) {
    terminate(pgid);
    let spawned = std::thread::Builder::new()
        .name("villas-terminate".into())
        .spawn(move || {
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if killpg(Pid::from_raw(pgid), None).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            signal_group(pgid, Signal::SIGKILL);
        });
    if spawned.is_err() {
        signal_group(pgid, Signal::SIGKILL);
    }
}

/// The name of a signal number (`SIGKILL`), or its number.
pub fn signal_name(signal: i32) -> String {
    Signal::try_from(signal).map_or_else(|_| format!("signal {signal}"), |s| s.as_str().to_owned())
}
