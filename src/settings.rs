//! Settings, loaded in stages: raw fragments (a TOML, YAML or JSON file in
//! the reference's format, then `VILLAS_CONTROLLER__SECTION__KEY`
//! environment overrides) -> one raw document checked key by key
//! (`deny_unknown_fields`) -> validated [`Settings`] with typed durations,
//! socket addresses and component definitions. Every error names the file
//! and the key.

use crate::bus::amqp::AmqpSettings;
use crate::kinds::KindRegistry;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;
use villas_sdk::ComponentSpec;

/// Exit code for configuration errors (`EX_CONFIG`).
pub const EXIT_CONFIG: i32 = 78;

/// File names searched in each configuration directory, in order.
const FILE_NAMES: [&str; 4] = ["config.toml", "config.yaml", "config.yml", "config.json"];

/// The raw configuration document.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    /// The daemon's uuid: its default generic manager's and its queue's;
    /// a configured generic manager may carry the same uuid.
    #[serde(default)]
    uuid: Option<String>,
    /// Working directory for components (the reference's `workdir`).
    #[serde(default)]
    workdir: Option<PathBuf>,
    /// Broker section.
    #[serde(default)]
    broker: RawBroker,
    /// HTTP API section.
    #[serde(default)]
    api: RawApi,
    /// Status publication section.
    #[serde(default)]
    status: RawStatus,
    /// Component definitions (free-form properties each).
    #[serde(default)]
    components: Vec<Map<String, Value>>,
}

/// `[broker]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBroker {
    /// AMQP URI; absent: the in-process bus.
    url: Option<String>,
    /// Exchange name.
    exchange: Option<String>,
    /// AMQP heartbeat in seconds (added to the URI unless it has one).
    heartbeat: Option<u16>,
    /// Seconds the broker keeps our queue after we vanish.
    queue_expires: Option<f64>,
    /// Longest reconnect delay, seconds.
    reconnect_max: Option<f64>,
    /// Largest message body accepted, bytes.
    max_body_bytes: Option<usize>,
}

/// `[api]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    /// Serve the HTTP API.
    enabled: Option<bool>,
    /// TCP port (0: any free port, logged at start-up).
    port: Option<u16>,
    /// Bind address.
    bind: Option<String>,
}

/// `[status]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatus {
    /// Seconds between heartbeat status messages of each component.
    heartbeat_interval: Option<f64>,
}

/// A component from the configuration file.
#[derive(Debug, Clone)]
pub struct ConfiguredComponent {
    /// Its definition.
    pub spec: ComponentSpec,
    /// The uuid of the manager it goes under (`manager` property; default:
    /// the daemon's generic manager).
    pub manager: Option<String>,
}

/// HTTP API settings.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Where to listen.
    pub listen: SocketAddr,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The file they came from.
    pub source: Option<PathBuf>,
    /// The daemon's uuid.
    pub uuid: String,
    /// Working directory for components.
    pub workdir: Option<PathBuf>,
    /// The broker; `None`: the in-process bus.
    pub broker: Option<AmqpSettings>,
    /// The HTTP API; `None`: disabled.
    pub api: Option<ApiSettings>,
    /// Status heartbeat period.
    pub heartbeat: Duration,
    /// Managers from the configuration, in order.
    pub managers: Vec<ConfiguredComponent>,
    /// Other components from the configuration, in order.
    pub components: Vec<ConfiguredComponent>,
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file cannot be read or parsed.
    #[error("{file}: {message}")]
    Load {
        /// The file (or `<environment>`).
        file: String,
        /// What went wrong.
        message: String,
    },
    /// A key has an unusable value.
    #[error("{file}: key {key}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// The key path (`broker.url`, `components[2].uuid`).
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// The configuration file to use: `explicit`, else the first existing one
/// in the XDG config dirs, `.`, `./etc` and `/etc/villas/controller`.
pub fn find_config_file(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.to_owned());
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    match std::env::var_os("XDG_CONFIG_HOME") {
        Some(home) if !home.is_empty() => dirs.push(PathBuf::from(home)),
        _ => {
            if let Some(home) = std::env::var_os("HOME") {
                dirs.push(PathBuf::from(home).join(".config"));
            }
        }
    }
    let xdg_dirs = std::env::var("XDG_CONFIG_DIRS")
        .ok()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/etc/xdg".into());
    dirs.extend(xdg_dirs.split(':').map(PathBuf::from));
    let mut candidates: Vec<PathBuf> = dirs
        .into_iter()
        .map(|d| d.join("villas").join("controller"))
        .collect();
    candidates.extend([
        PathBuf::from("."),
        PathBuf::from("etc"),
        PathBuf::from("/etc/villas/controller"),
    ]);
    candidates
        .iter()
        .flat_map(|dir| FILE_NAMES.iter().map(move |name| dir.join(name)))
        .find(|path| path.is_file())
}

/// Loads and validates settings from `file` (if any) and the environment;
/// `broker_url` (the `-b` flag) overrides `broker.url`.
pub fn load(
    file: Option<&Path>,
    broker_url: Option<&str>,
    kinds: &KindRegistry,
) -> Result<Settings, SettingsError> {
    let file_name = file.map_or_else(|| "<defaults>".to_owned(), |f| f.display().to_string());
    let mut builder = config::Config::builder();
    if let Some(path) = file {
        if !path.is_file() {
            return Err(SettingsError::Load {
                file: file_name,
                message: "no such file".into(),
            });
        }
        builder = builder.add_source(config::File::from(path));
    }
    builder = builder.add_source(
        config::Environment::with_prefix("VILLAS_CONTROLLER")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true),
    );
    let merged = builder
        .build()
        .and_then(|c| c.try_deserialize::<Value>())
        .map_err(|e| SettingsError::Load {
            file: file_name.clone(),
            message: e.to_string(),
        })?;
    let raw: RawSettings =
        serde_path_to_error::deserialize(merged).map_err(|e| SettingsError::Invalid {
            file: file_name.clone(),
            key: e.path().to_string(),
            message: e.into_inner().to_string(),
        })?;
    validate(raw, file.map(Path::to_owned), &file_name, broker_url, kinds)
}

fn validate(
    raw: RawSettings,
    source: Option<PathBuf>,
    file: &str,
    broker_url: Option<&str>,
    kinds: &KindRegistry,
) -> Result<Settings, SettingsError> {
    let invalid = |key: &str, message: String| SettingsError::Invalid {
        file: file.to_owned(),
        key: key.to_owned(),
        message,
    };
    let uuid = match raw.uuid.as_deref() {
        Some(text) => {
            uuid::Uuid::parse_str(text).map_err(|e| invalid("uuid", format!("not a uuid: {e}")))?
        }
        None => default_uuid(),
    }
    .hyphenated()
    .to_string();
    let seconds =
        |key: &str, value: Option<f64>, default: f64| -> Result<Duration, SettingsError> {
            let value = value.unwrap_or(default);
            if value.is_finite() && value > 0.0 && value < 1e7 {
                Ok(Duration::from_secs_f64(value))
            } else {
                Err(invalid(
                    key,
                    format!("must be a positive number of seconds, not {value}"),
                ))
            }
        };
    let heartbeat = seconds(
        "status.heartbeat_interval",
        raw.status.heartbeat_interval,
        30.0,
    )?;

    let url = broker_url
        .map(str::to_owned)
        .or(raw.broker.url)
        .filter(|u| !u.is_empty());
    let broker = match url {
        None => None,
        Some(url) => {
            if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
                return Err(invalid(
                    "broker.url",
                    "must be an amqp:// or amqps:// URI".into(),
                ));
            }
            let exchange = raw.broker.exchange.unwrap_or_else(|| "villas".into());
            if exchange.is_empty() || exchange.len() > 255 {
                return Err(invalid(
                    "broker.exchange",
                    "must be 1 to 255 characters".into(),
                ));
            }
            Some(AmqpSettings {
                url: with_heartbeat(&url, raw.broker.heartbeat.unwrap_or(10)),
                queue: format!("villas-controller.{uuid}"),
                exchange,
                queue_expires: seconds("broker.queue_expires", raw.broker.queue_expires, 60.0)?,
                reconnect_min: Duration::from_millis(200),
                reconnect_max: seconds("broker.reconnect_max", raw.broker.reconnect_max, 5.0)?,
                max_body_bytes: raw.broker.max_body_bytes.unwrap_or(1 << 20),
            })
        }
    };

    let api = if raw.api.enabled.unwrap_or(true) {
        let bind = raw.api.bind.as_deref().unwrap_or("127.0.0.1");
        let ip: IpAddr = bind
            .parse()
            .map_err(|_| invalid("api.bind", format!("not an IP address: {bind:?}")))?;
        Some(ApiSettings {
            listen: SocketAddr::new(ip, raw.api.port.unwrap_or(8089)),
        })
    } else {
        None
    };

    let mut seen: HashSet<String> = HashSet::new();
    let mut managers = Vec::new();
    let mut components = Vec::new();
    for (index, properties) in raw.components.into_iter().enumerate() {
        let key = |field: &str| format!("components[{index}]{field}");
        if properties.get("enabled").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let manager = match properties.get("manager") {
            None | Some(Value::Null) => None,
            Some(Value::String(m)) => Some(
                uuid::Uuid::parse_str(m)
                    .map_err(|_| invalid(&key(".manager"), format!("not a uuid: {m:?}")))?
                    .hyphenated()
                    .to_string(),
            ),
            Some(_) => {
                return Err(invalid(
                    &key(".manager"),
                    "must be the uuid of a configured manager".into(),
                ))
            }
        };
        let spec = ComponentSpec::from_properties(properties)
            .map_err(|e| invalid(&key(""), e.to_string()))?;
        if !seen.insert(spec.uuid().to_owned()) {
            return Err(invalid(
                &key(".uuid"),
                format!("duplicate uuid {}", spec.uuid()),
            ));
        }
        let registered = kinds
            .get(&spec.identity.category, &spec.identity.kind)
            .map_err(|e| invalid(&key(".type"), e.message))?;
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            registered.kind.build(&spec)
        }));
        match built {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(invalid(&key(""), e.message)),
            Err(_) => {
                return Err(invalid(
                    &key(""),
                    "the kind panicked checking this definition".into(),
                ))
            }
        }
        let entry = ConfiguredComponent { spec, manager };
        if entry.spec.identity.category == "manager" {
            managers.push(entry);
        } else {
            components.push(entry);
        }
    }
    // The daemon's uuid names its default generic manager; a configured
    // generic manager may carry it (the reference's configs do), nothing
    // else may.
    let carried_by_generic = managers
        .iter()
        .any(|m| m.spec.uuid() == uuid && m.spec.identity.kind == "generic");
    if seen.contains(&uuid) && !carried_by_generic {
        return Err(invalid(
            "uuid",
            format!(
                "{uuid} is both the daemon's (its default manager's) and a configured component's"
            ),
        ));
    }
    for (index, component) in components.iter().enumerate() {
        if let Some(manager) = &component.manager {
            if manager != &uuid && !managers.iter().any(|m| m.spec.uuid() == manager) {
                return Err(invalid(
                    &format!("components ({})", component.spec.uuid()),
                    format!("manager {manager} is not configured (component {index})"),
                ));
            }
        }
    }
    Ok(Settings {
        source,
        uuid,
        workdir: raw.workdir,
        broker,
        api,
        heartbeat,
        managers,
        components,
    })
}

/// A uuid derived from the host name, stable across restarts.
fn default_uuid() -> uuid::Uuid {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_DNS,
        format!("villas-controller.{}", host.trim()).as_bytes(),
    )
}

/// Adds `heartbeat=N` to an AMQP URI's query unless it sets one.
fn with_heartbeat(url: &str, heartbeat: u16) -> String {
    if url.contains("heartbeat=") {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}heartbeat={heartbeat}")
}

/// The URI with its password replaced, for logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds() -> KindRegistry {
        KindRegistry::new(villas_actors::builtin_kinds()).unwrap()
    }

    #[test]
    fn heartbeat_is_added_once() {
        assert_eq!(
            with_heartbeat("amqp://h/%2F", 10),
            "amqp://h/%2F?heartbeat=10"
        );
        assert_eq!(
            with_heartbeat("amqp://h/?x=1", 5),
            "amqp://h/?x=1&heartbeat=5"
        );
        assert_eq!(
            with_heartbeat("amqp://h/?heartbeat=3", 5),
            "amqp://h/?heartbeat=3"
        );
    }

    #[test]
    fn password_is_redacted() {
        assert_eq!(
            redact_url("amqp://villas:secret@host:5672/%2F"),
            "amqp://villas:***@host:5672/%2F"
        );
        assert_eq!(redact_url("amqp://host"), "amqp://host");
    }

    #[test]
    fn defaults_without_a_file() {
        let settings = load(None, None, &kinds()).unwrap();
        assert!(settings.api.is_some());
        assert_eq!(settings.heartbeat, Duration::from_secs(30));
    }
}
