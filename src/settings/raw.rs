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
