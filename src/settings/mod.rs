//! Settings, loaded in stages: raw fragments (a TOML, YAML or JSON file in
//! the reference's format, then `VILLAS_CONTROLLER__SECTION__KEY`
//! environment overrides) -> one raw document checked key by key
//! (`deny_unknown_fields`) -> validated [`Settings`] with typed durations,
//! socket addresses and component definitions. Every error names the file
//! and the key.

use crate::bus::amqp::AmqpSettings;
use crate::kinds::KindRegistry;
use crate::tree::{ConfiguredComponent, Entry};
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
    /// The daemon's uuid: its root generic manager's and its queue's; a
    /// configured generic manager may carry it (it is then the root).
    #[serde(default)]
    uuid: Option<String>,
    /// State directory: stored components and every component's data
    /// directory (see `crate::store`).
    #[serde(default)]
    state_dir: Option<PathBuf>,
    /// Deprecated alias of `state_dir` (the reference's `workdir`).
    #[serde(default)]
    workdir: Option<PathBuf>,
    /// State section.
    #[serde(default)]
    state: RawState,
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
    /// `[broker.tls]`: CA file, client certificate and key (amqps:// only).
    #[serde(default)]
    tls: Option<crate::bus::connect::TlsFiles>,
}

/// The document as a client command reads it: the broker section only.
/// Every other key is the daemon's and is neither read nor checked (a
/// client must not fail on a token file or a state directory only the
/// daemon's user can use).
#[derive(Debug, Default, Deserialize)]
struct RawClientSettings {
    /// Broker section (still checked key by key).
    #[serde(default)]
    broker: RawBroker,
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
    /// File holding the bearer token the API requires (none: no auth).
    token_file: Option<PathBuf>,
    /// Name of an environment variable holding the bearer token.
    token_env: Option<String>,
    /// With a token: `/api/v1/health` answers without it (default true).
    open_health: Option<bool>,
    /// With a token: `/metrics` answers without it (default false).
    open_metrics: Option<bool>,
}

/// `[state]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    /// Remove a component's data directory when it is deleted.
    delete_data: Option<bool>,
}

/// `[status]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatus {
    /// Seconds between heartbeat status messages of each component.
    heartbeat_interval: Option<f64>,
}

/// HTTP API settings.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Bearer-token authentication (`None`: the API is open).
    pub auth: Option<crate::api::auth::ApiAuth>,
}

/// Where the daemon keeps what must survive a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateSettings {
    /// The state directory (`state_dir`).
    pub dir: PathBuf,
    /// `state.delete_data`: `delete` removes the component's data directory
    /// too (default: it is kept).
    pub delete_data: bool,
}

/// Where the broker is: what a client command needs of the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerEndpoint {
    /// Broker URI, heartbeat included (password included: never print it
    /// unredacted).
    pub url: String,
    /// The headers exchange.
    pub exchange: String,
    /// TLS files for an `amqps://` URL (`broker.tls`).
    pub tls: Option<crate::bus::connect::TlsFiles>,
}

/// The broker section, validated.
#[derive(Debug)]
struct BrokerSection {
    /// Where the broker is.
    endpoint: BrokerEndpoint,
    /// `broker.queue_expires`.
    queue_expires: Duration,
    /// `broker.reconnect_max`.
    reconnect_max: Duration,
    /// `broker.max_body_bytes`.
    max_body_bytes: usize,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The file they came from.
    pub source: Option<PathBuf>,
    /// The daemon's uuid.
    pub uuid: String,
    /// The state directory and what `delete` does with data.
    pub state: StateSettings,
    /// The broker; `None`: the in-process bus.
    pub broker: Option<AmqpSettings>,
    /// The HTTP API; `None`: disabled.
    pub api: Option<ApiSettings>,
    /// Status heartbeat period.
    pub heartbeat: Duration,
    /// The root generic manager (uuid: the daemon's): the configured
    /// `manager`/`generic` entry with that uuid, else the default one
    /// (see `crate::tree`).
    pub root: ComponentSpec,
    /// Every other configured component, configured managers included, in
    /// order, each with the manager it goes under.
    pub components: Vec<ConfiguredComponent>,
}

impl Settings {
    /// The managers the daemon runs at start-up: the root and the
    /// configured ones below it.
    pub fn manager_count(&self) -> usize {
        1 + self
            .components
            .iter()
            .filter(|c| c.spec.identity.category == "manager")
            .count()
    }

    /// The configured components that are not managers.
    pub fn component_count(&self) -> usize {
        self.components
            .iter()
            .filter(|c| c.spec.identity.category != "manager")
            .count()
    }
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
    let (merged, file_name) = merged_document(file)?;
    from_value(
        merged,
        file.map(Path::to_owned),
        &file_name,
        broker_url,
        kinds,
    )
}

/// Loads the broker section alone from `file` (if any) and the
/// environment, for client commands: `None` without a broker URL (the
/// client then uses the reference's default broker). The broker section is
/// validated as [`load`] does; the daemon's sections (`api`, `state_dir`,
/// the stored uuid, `components`, ...) are ignored unread.
pub fn load_broker(
    file: Option<&Path>,
    broker_url: Option<&str>,
) -> Result<Option<BrokerEndpoint>, SettingsError> {
    let (merged, file_name) = merged_document(file)?;
    let raw: RawClientSettings =
        serde_path_to_error::deserialize(merged).map_err(|e| SettingsError::Invalid {
            file: file_name.clone(),
            key: e.path().to_string(),
            message: e.into_inner().to_string(),
        })?;
    Ok(broker_section(raw.broker, broker_url, &file_name)?.map(|section| section.endpoint))
}

/// `file` (if any) and the environment overrides, merged into one raw
/// document; with the name to report errors under.
fn merged_document(file: Option<&Path>) -> Result<(Value, String), SettingsError> {
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
    Ok((merged, file_name))
}

/// The format of a configuration text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// TOML.
    Toml,
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

/// Validates the settings in the text of a configuration file, without the
/// environment overrides: the loader's core, for tests and the fuzzer.
/// Never panics, whatever the text.
pub fn from_text(
    text: &str,
    format: Format,
    kinds: &KindRegistry,
) -> Result<Settings, SettingsError> {
    let file_name = "<text>";
    let format = match format {
        Format::Toml => config::FileFormat::Toml,
        Format::Yaml => config::FileFormat::Yaml,
        Format::Json => config::FileFormat::Json,
    };
    let merged = config::Config::builder()
        .add_source(config::File::from_str(text, format))
        .build()
        .and_then(|c| c.try_deserialize::<Value>())
        .map_err(|e| SettingsError::Load {
            file: file_name.to_owned(),
            message: e.to_string(),
        })?;
    from_value(merged, None, file_name, None, kinds)
}

/// Checks the merged raw document key by key, then validates it.
fn from_value(
    merged: Value,
    source: Option<PathBuf>,
    file_name: &str,
    broker_url: Option<&str>,
    kinds: &KindRegistry,
) -> Result<Settings, SettingsError> {
    let raw: RawSettings =
        serde_path_to_error::deserialize(merged).map_err(|e| SettingsError::Invalid {
            file: file_name.to_owned(),
            key: e.path().to_string(),
            message: e.into_inner().to_string(),
        })?;
    validate(raw, source, file_name, broker_url, kinds)
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
    let state = state_settings(raw.state_dir, raw.workdir, raw.state.delete_data)
        .map_err(|(key, message)| invalid(key, message))?;
    let uuid = match raw.uuid.as_deref() {
        Some(text) => {
            uuid::Uuid::parse_str(text).map_err(|e| invalid("uuid", format!("not a uuid: {e}")))?
        }
        None => match crate::store::stored_daemon_uuid(&state.dir) {
            Ok(Some(stored)) => stored,
            Ok(None) => default_uuid(),
            Err(error) => return Err(invalid("uuid", error.to_string())),
        },
    }
    .hyphenated()
    .to_string();
    let heartbeat = seconds(raw.status.heartbeat_interval, 30.0)
        .map_err(|message| invalid("status.heartbeat_interval", message))?;

    let broker = broker_section(raw.broker, broker_url, file)?.map(|section| AmqpSettings {
        url: section.endpoint.url,
        queue: format!("villas-controller.{uuid}"),
        exchange: section.endpoint.exchange,
        queue_expires: section.queue_expires,
        reconnect_min: Duration::from_millis(200),
        reconnect_max: section.reconnect_max,
        max_body_bytes: section.max_body_bytes,
        tls: section.endpoint.tls,
    });

    let api = if raw.api.enabled.unwrap_or(true) {
        let bind = raw.api.bind.as_deref().unwrap_or("127.0.0.1");
        let ip: IpAddr = bind
            .parse()
            .map_err(|_| invalid("api.bind", format!("not an IP address: {bind:?}")))?;
        let token = crate::api::auth::load_token(
            raw.api.token_file.as_deref(),
            raw.api.token_env.as_deref(),
        )
        .map_err(|e| invalid(e.key, e.message))?;
        Some(ApiSettings {
            listen: SocketAddr::new(ip, raw.api.port.unwrap_or(8089)),
            auth: token.map(|token| crate::api::auth::ApiAuth {
                token,
                open_health: raw.api.open_health.unwrap_or(true),
                open_metrics: raw.api.open_metrics.unwrap_or(false),
            }),
        })
    } else {
        None
    };

    let mut seen: HashSet<String> = HashSet::new();
    let mut entries = Vec::new();
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
        crate::supervision::SupervisionSpec::from_properties(&spec.properties)
            .map_err(|e| invalid(&key(""), e.message))?;
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
        entries.push(Entry {
            index,
            spec,
            manager,
        });
    }
    let tree =
        crate::tree::arrange(&uuid, entries).map_err(|e| invalid(&e.key(), e.to_string()))?;
    Ok(Settings {
        source,
        uuid,
        state,
        broker,
        api,
        heartbeat,
        root: tree.root,
        components: tree.components,
    })
}

/// Validates the broker section; `broker_url` (the `-b` flag) overrides
/// `broker.url`. `None`: no broker URL (the daemon's in-process bus).
fn broker_section(
    raw: RawBroker,
    broker_url: Option<&str>,
    file: &str,
) -> Result<Option<BrokerSection>, SettingsError> {
    let invalid = |key: &str, message: String| SettingsError::Invalid {
        file: file.to_owned(),
        key: key.to_owned(),
        message,
    };
    let url = broker_url
        .map(str::to_owned)
        .or(raw.url)
        .filter(|u| !u.is_empty());
    let Some(url) = url else {
        return Ok(None);
    };
    if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
        return Err(invalid(
            "broker.url",
            "must be an amqp:// or amqps:// URI".into(),
        ));
    }
    let exchange = raw.exchange.unwrap_or_else(|| "villas".into());
    if exchange.is_empty() || exchange.len() > 255 {
        return Err(invalid(
            "broker.exchange",
            "must be 1 to 255 characters".into(),
        ));
    }
    let queue_expires = seconds(raw.queue_expires, 60.0)
        .map_err(|message| invalid("broker.queue_expires", message))?;
    let reconnect_max = seconds(raw.reconnect_max, 5.0)
        .map_err(|message| invalid("broker.reconnect_max", message))?;
    let tls = crate::bus::connect::checked(raw.tls, &url)
        .map_err(|(key, message)| invalid(key, message))?;
    Ok(Some(BrokerSection {
        endpoint: BrokerEndpoint {
            url: with_heartbeat(&url, raw.heartbeat.unwrap_or(10)),
            exchange,
            tls,
        },
        queue_expires,
        reconnect_max,
        max_body_bytes: raw.max_body_bytes.unwrap_or(1 << 20),
    }))
}

/// `value` (else `default`) as a duration: a positive, finite number of
/// seconds; the error says what is wrong.
fn seconds(value: Option<f64>, default: f64) -> Result<Duration, String> {
    let value = value.unwrap_or(default);
    if value.is_finite() && value > 0.0 && value < 1e7 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(format!("must be a positive number of seconds, not {value}"))
    }
}

/// The state settings: `state_dir` (or its deprecated alias `workdir`),
/// else `$XDG_DATA_HOME/villas-controller`, else
/// `~/.local/share/villas-controller`. Errors name the key.
fn state_settings(
    state_dir: Option<PathBuf>,
    workdir: Option<PathBuf>,
    delete_data: Option<bool>,
) -> Result<StateSettings, (&'static str, String)> {
    if workdir.is_some() {
        tracing::warn!("the setting `workdir` is deprecated: use `state_dir`");
    }
    let dir = match (state_dir, workdir) {
        (Some(dir), Some(old)) if dir != old => {
            return Err((
                "workdir",
                "set only state_dir (workdir is its deprecated alias)".into(),
            ))
        }
        (Some(dir), _) | (None, Some(dir)) => dir,
        (None, None) => default_state_dir().ok_or((
            "state_dir",
            "not set, and neither XDG_DATA_HOME nor HOME is set to derive it from".into(),
        ))?,
    };
    if dir.as_os_str().is_empty() {
        return Err(("state_dir", "must not be empty".into()));
    }
    Ok(StateSettings {
        dir,
        delete_data: delete_data.unwrap_or(false),
    })
}

/// `$XDG_DATA_HOME/villas-controller`, else `~/.local/share/villas-controller`.
fn default_state_dir() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_DATA_HOME") {
        Some(home) if !home.is_empty() => PathBuf::from(home),
        _ => PathBuf::from(std::env::var_os("HOME").filter(|h| !h.is_empty())?)
            .join(".local")
            .join("share"),
    };
    Some(base.join("villas-controller"))
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

    #[test]
    fn state_dir_and_its_deprecated_alias() {
        let state = |text: &str| from_text(text, Format::Toml, &kinds()).map(|s| s.state);
        let set = state("state_dir = \"/srv/v\"\n[state]\ndelete_data = true\n").unwrap();
        assert_eq!(set.dir, PathBuf::from("/srv/v"));
        assert!(set.delete_data);
        assert_eq!(
            state("workdir = \"/srv/w\"\n").unwrap().dir,
            PathBuf::from("/srv/w")
        );
        assert!(!state("workdir = \"/srv/w\"\n").unwrap().delete_data);
        assert!(state("workdir = \"/a\"\nstate_dir = \"/a\"\n").is_ok());
        let Err(SettingsError::Invalid { key, .. }) =
            state("workdir = \"/a\"\nstate_dir = \"/b\"\n")
        else {
            panic!("conflicting state_dir and workdir accepted")
        };
        assert_eq!(key, "workdir");
        assert!(state("state_dir = \"\"\n").is_err());
        assert!(state("[state]\nkeep = 1\n").is_err());
    }

    #[test]
    fn a_stored_uuid_is_the_daemon_uuid_unless_one_is_configured() {
        let dir = tempfile::tempdir().unwrap();
        let stored = "3ddd318e-fee1-46d7-bff4-7c064d640d4e";
        std::fs::write(dir.path().join("uuid"), format!("{stored}\n")).unwrap();
        let text = format!("state_dir = {:?}\n", dir.path());
        let settings = from_text(&text, Format::Toml, &kinds()).unwrap();
        assert_eq!(settings.uuid, stored);
        let configured = format!("uuid = \"0e5a3b38-3a39-4d3b-a2c5-4f5ae8a5f7a4\"\n{text}");
        let settings = from_text(&configured, Format::Toml, &kinds()).unwrap();
        assert_eq!(settings.uuid, "0e5a3b38-3a39-4d3b-a2c5-4f5ae8a5f7a4");
        std::fs::write(dir.path().join("uuid"), "garbage").unwrap();
        let Err(SettingsError::Invalid { key, .. }) = from_text(&text, Format::Toml, &kinds())
        else {
            panic!("a corrupt uuid file accepted")
        };
        assert_eq!(key, "uuid");
    }

    #[test]
    fn a_client_reads_the_broker_section_only() {
        let dir = tempfile::tempdir().unwrap();
        // A state directory whose stored uuid cannot be read.
        std::fs::create_dir(dir.path().join("uuid")).unwrap();
        let path = dir.path().join("config.yaml");
        let daemon_part = format!(
            "state_dir: {:?}\napi:\n  token_file: /nonexistent/token\ncomponents:\n- {{category: simulator, type: no-such-kind}}\nfuture_key: 1\n",
            dir.path()
        );
        let write = |broker: &str| {
            std::fs::write(&path, format!("{broker}{daemon_part}")).unwrap();
        };
        write("broker:\n  url: amqp://u:p@h/%2F\n  exchange: lab\n");
        assert!(load(Some(&path), None, &kinds()).is_err());
        let endpoint = load_broker(Some(&path), None).unwrap().unwrap();
        assert_eq!(endpoint.url, "amqp://u:p@h/%2F?heartbeat=10");
        assert_eq!(endpoint.exchange, "lab");
        let given = load_broker(Some(&path), Some("amqp://other/%2F")).unwrap();
        assert_eq!(given.unwrap().url, "amqp://other/%2F?heartbeat=10");

        // The broker section itself is still checked.
        for (broker, bad_key) in [
            ("broker:\n  url: http://h/\n", "broker.url"),
            (
                "broker:\n  url: amqp://h/\n  exchange: ''\n",
                "broker.exchange",
            ),
            (
                "broker:\n  url: amqp://h/\n  queue_expires: -1\n",
                "broker.queue_expires",
            ),
            (
                "broker:\n  url: amqp://h/\n  colour: blue\n",
                "broker.colour",
            ),
        ] {
            write(broker);
            let Err(SettingsError::Invalid { key, .. }) = load_broker(Some(&path), None) else {
                panic!("{broker:?} accepted")
            };
            assert_eq!(key, bad_key, "{broker:?}");
        }
        write("");
        assert_eq!(load_broker(Some(&path), None).unwrap(), None);
        assert!(load_broker(Some(&dir.path().join("missing.yaml")), None).is_err());
    }
}
