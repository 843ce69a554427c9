//! The configuration document as written: every section checked key by
//! key (`deny_unknown_fields`), nothing validated yet. A section's owner
//! defines and validates its own part (`crate::bus::amqp::settings`,
//! `crate::api`); the small sections without another owner are here.

use crate::api::RawApi;
use crate::bus::amqp::settings::RawBroker;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::PathBuf;

/// The raw configuration document.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSettings {
    /// The daemon's uuid: its root generic manager's and its queue's; a
    /// configured generic manager may carry it (it is then the root).
    #[serde(default)]
    pub(crate) uuid: Option<String>,
    /// State directory: stored components and every component's data
    /// directory (see `villas_actors::store`).
    #[serde(default)]
    pub(crate) state_dir: Option<PathBuf>,
    /// Deprecated alias of `state_dir` (the reference's `workdir`).
    #[serde(default)]
    pub(crate) workdir: Option<PathBuf>,
    /// State section.
    #[serde(default)]
    pub(crate) state: RawState,
    /// Broker section.
    #[serde(default)]
    pub(crate) broker: RawBroker,
    /// HTTP API section.
    #[serde(default)]
    pub(crate) api: RawApi,
    /// Status publication section.
    #[serde(default)]
    pub(crate) status: RawStatus,
    /// Component definitions (free-form properties each).
    #[serde(default)]
    pub(crate) components: Vec<Map<String, Value>>,
    /// Kind executables to start: read before the rest, by
    /// `settings::kind_processes` (their kinds check `components`); here
    /// only accepted.
    #[serde(default)]
    #[allow(dead_code)]
    pub(crate) kind_processes: serde::de::IgnoredAny,
}

/// The kind-processes part of the document (and the state directory,
/// where installed kinds are), read first.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawKindSettings {
    /// See [`RawSettings::state_dir`].
    #[serde(default)]
    pub(crate) state_dir: Option<PathBuf>,
    /// See [`RawSettings::workdir`].
    #[serde(default)]
    pub(crate) workdir: Option<PathBuf>,
    /// Kind executables to start.
    #[serde(default)]
    pub(crate) kind_processes: Vec<RawKindProcess>,
}

/// `kind_processes: [...]`: one kind executable (docs/kind-protocol.md).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKindProcess {
    /// Its name (logs, errors).
    pub(crate) name: String,
    /// The executable and its arguments.
    pub(crate) command: Vec<String>,
    /// Environment variables set for it.
    #[serde(default)]
    pub(crate) environment: std::collections::BTreeMap<String, String>,
    /// Its working directory.
    #[serde(default)]
    pub(crate) working_directory: Option<PathBuf>,
    /// The deadline of each request, in seconds (default 10).
    #[serde(default)]
    pub(crate) request_timeout: Option<f64>,
    /// Lines per second it may send before it counts as flooding
    /// (default 20,000).
    #[serde(default)]
    pub(crate) flood_limit: Option<u32>,
    /// `restart_budget` and `restart_backoff`, as for components.
    #[serde(default)]
    pub(crate) restart_budget: Option<Value>,
    /// See `restart_budget`.
    #[serde(default)]
    pub(crate) restart_backoff: Option<Value>,
}

/// The document as a client command reads it: the broker section only.
/// Every other key is the daemon's and is neither read nor checked (a
/// client must not fail on a token file or a state directory only the
/// daemon's user can use).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawClientSettings {
    /// Broker section (still checked key by key).
    #[serde(default)]
    pub(crate) broker: RawBroker,
}

/// `[state]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawState {
    /// Remove a component's data directory when it is deleted.
    pub(crate) delete_data: Option<bool>,
}

/// `[status]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStatus {
    /// Seconds between heartbeat status messages of each component.
    pub(crate) heartbeat_interval: Option<f64>,
}
