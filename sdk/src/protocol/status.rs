//! The status message every component publishes, and a typed view of it
//! for clients.

use super::error::ErrorInfo;
use super::state::State;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Facts about the daemon that every status carries (`version`, `host`,
/// `kernel`): computed once, shared by every component.
#[derive(Debug)]
pub struct HostInfo {
    /// The controller version.
    pub version: String,
    /// The host name.
    pub host: String,
    /// `uname` as `{sysname, nodename, release, version, machine}`, as the
    /// reference publishes it; serialised once.
    pub kernel: Box<RawValue>,
}

/// The host's name, as the kernel has it (`/proc/sys/kernel/hostname`);
/// empty where it cannot be read.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|text| text.trim().to_owned())
        .unwrap_or_default()
}

impl HostInfo {
    /// Reads the host's name and kernel from `/proc` (empty strings where
    /// they cannot be read).
    pub fn detect(version: impl Into<String>) -> Self {
        let read = |name: &str| {
            std::fs::read_to_string(format!("/proc/sys/kernel/{name}"))
                .map(|text| text.trim().to_owned())
                .unwrap_or_default()
        };
        let host = hostname();
        let kernel = serde_json::json!({
            "sysname": if read("ostype").is_empty() { std::env::consts::OS.to_owned() } else { read("ostype") },
            "nodename": host,
            "release": read("osrelease"),
            "version": read("version"),
            "machine": std::env::consts::ARCH,
        });
        HostInfo {
            version: version.into(),
            host,
            kernel: raw_json(&kernel),
        }
    }
}

/// Serialises a JSON value into a shareable raw fragment.
pub fn raw_json(value: &Value) -> Box<RawValue> {
    // Serialising a `Value` (string keys, finite numbers) cannot fail.
    #[allow(clippy::expect_used)]
    serde_json::value::to_raw_value(value).expect("a serde_json::Value always serialises")
}

/// The `status` object of a status message, borrowed from its owners so
/// that serialising it allocates only the output.
#[derive(Debug, Serialize)]
pub struct StatusBody<'a> {
    /// Current state.
    pub state: State,
    /// Controller version.
    pub version: &'a str,
    /// Seconds since the component (re)started.
    pub uptime: f64,
    /// Host name.
    pub host: &'a str,
    /// Kernel facts.
    pub kernel: &'a RawValue,
    /// The uuid of the managing manager.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<&'a str>,
    /// The error (in state `error`, or with a refusal that kept the state).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a ErrorInfo>,
    /// A manager's components (uuids); also at the top level of the
    /// message ([`StatusMessage::components`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components: Option<&'a [&'a str]>,
    /// Type-specific fields.
    #[serde(flatten)]
    pub fields: &'a Map<String, Value>,
}

/// A whole status message, as published.
#[derive(Debug, Serialize)]
pub struct StatusMessage<'a> {
    /// The dynamic part.
    pub status: StatusBody<'a>,
    /// The component's properties (serialised once per component).
    pub properties: &'a RawValue,
    /// The JSON schemas by action (serialised once per kind).
    pub schema: &'a RawValue,
    /// When the status was taken (unix seconds).
    pub when: f64,
    /// A manager's components (uuids), at the top level where the
    /// reference puts them (clients of the reference read them there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components: Option<&'a [&'a str]>,
    /// A simulator's last accepted `start`'s `model`, at the top level as
    /// the reference publishes it (`Some(None)`: `null`, before any);
    /// absent (`None`) for other categories.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<Option<&'a Value>>,
    /// The same for `results`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Option<&'a Value>>,
}

/// A received status message, for clients and tests.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct StatusView {
    /// The `status` object.
    pub status: StatusFields,
    /// The properties.
    #[serde(default)]
    pub properties: Map<String, Value>,
    /// The schemas.
    #[serde(default)]
    pub schema: Map<String, Value>,
    /// When it was taken.
    #[serde(default)]
    pub when: Option<f64>,
}

/// The typed part of a received `status` object.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct StatusFields {
    /// State.
    pub state: State,
    /// Version.
    #[serde(default)]
    pub version: Option<String>,
    /// Uptime.
    #[serde(default)]
    pub uptime: Option<f64>,
    /// Manager.
    #[serde(default)]
    pub managed_by: Option<String>,
    /// Error object.
    #[serde(default)]
    pub error: Option<Value>,
    /// Everything else.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl StatusView {
    /// The uuid in the properties.
    pub fn uuid(&self) -> Option<&str> {
        self.properties.get("uuid").and_then(Value::as_str)
    }
}

/// Seconds since the unix epoch, now.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
