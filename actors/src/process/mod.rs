//! Kinds in their own process (`docs/kind-protocol.md`): the daemon side
//! of the kind process protocol. [`start`] starts a kind executable on a
//! host thread of its own, handshakes, and returns each kind it serves as
//! an ordinary `villas_sdk::Kind` for the [`crate::kinds::KindRegistry`]:
//! the IC actors stay in the daemon, so on the bus a component of a
//! process kind is indistinguishable from a built-in one.
//!
//! ```text
//! IcActor ──Driver──> ProcessComponent ──Command──> host thread ──stdin──> kind process
//!    ^                      │ (Inbox, task)               │  <──stdout── replies, events
//!    └──────on_task─────────┘ <────── Update ─────────────┘  <──stderr── logged
//! ```
//!
//! - `component`: [`ProcessKind`] and its instances, which never wait
//!   for the process (actions are forwarded, what comes back is applied
//!   from a task).
//! - `host`: the process, its requests and deadlines, its supervision.
//! - `lines`: bounded lines and the flood limit.

mod component;
mod host;
mod lines;

pub use component::{ProcessComponent, ProcessKind};

use crate::ic::policy::{RestartPolicy, SupervisionSpec};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use villas_sdk::Kind;

/// How to run one kind executable.
#[derive(Debug, Clone)]
pub struct KindProcessSpec {
    /// Its name (logs, errors).
    pub name: String,
    /// The executable.
    pub command: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment variables set for it (besides the daemon's).
    pub env: Vec<(String, String)>,
    /// Its working directory (the daemon's if `None`).
    pub working_dir: Option<PathBuf>,
    /// The deadline of every request (and of the handshake).
    pub request_timeout: Duration,
    /// Lines per second it may send before it counts as flooding.
    pub flood_limit: u32,
    /// Restart backoff and budget (the components' defaults).
    pub restart: SupervisionSpec,
}

impl KindProcessSpec {
    /// A spec with the defaults: 10 s request deadline, 20,000 lines/s,
    /// the components' restart backoff and budget.
    pub fn new(name: impl Into<String>, command: impl Into<PathBuf>) -> Self {
        KindProcessSpec {
            name: name.into(),
            command: command.into(),
            args: Vec::new(),
            env: Vec::new(),
            working_dir: None,
            request_timeout: Duration::from_secs(10),
            flood_limit: 20_000,
            restart: SupervisionSpec {
                policy: RestartPolicy::OnFailure,
                ..SupervisionSpec::default()
            },
        }
    }
}

/// Why a kind process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The executable (or its host thread) could not be started.
    #[error("cannot start the kind process: {0}")]
    Spawn(#[source] std::io::Error),
    /// The handshake did not complete.
    #[error("kind process handshake failed: {0}")]
    Handshake(String),
    /// The kind and the daemon are incompatible (protocol or SDK version,
    /// or a malformed handshake): a permanent refusal.
    #[error("kind process refused: {0}")]
    Incompatible(String),
}

/// Starts a kind process and handshakes (blocking, at most the request
/// deadline and a few seconds); the kinds it serves, to register.
pub fn start(
    spec: KindProcessSpec,
    daemon_version: &str,
) -> Result<Vec<Arc<dyn Kind>>, ProcessError> {
    let (host, served) = host::spawn(spec, daemon_version.to_owned())?;
    Ok(served
        .into_iter()
        .map(|served| Arc::new(ProcessKind::new(served, host.clone())) as Arc<dyn Kind>)
        .collect())
}
