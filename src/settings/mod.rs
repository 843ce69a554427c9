//! Settings, loaded in stages: raw fragments (a TOML, YAML or JSON file in
//! the reference's format, then `VILLAS_CONTROLLER__SECTION__KEY`
//! environment overrides) -> one raw document checked key by key
//! (`raw`) -> validated `Settings`, each section by its owner: `broker`
//! by `crate::bus::amqp::settings`, `api` by `crate::api`, `state_dir` by
//! `villas_actors::store`, `components` by `villas_actors::placement` (which places them
//! once). Every error names the file and the key.

pub(crate) mod installed;
pub(crate) mod raw;

use crate::api::ApiSettings;
use crate::bus::amqp::settings::BrokerSection;
use crate::bus::BusSettings;
use raw::{RawClientSettings, RawSettings};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use villas_actors::invalid::{positive_seconds, InvalidSetting};
use villas_actors::kinds::KindRegistry;
use villas_actors::placement::Placement;
use villas_actors::store::StateSettings;

pub use crate::bus::amqp::settings::{redact_url, BrokerEndpoint};

/// File names searched in each configuration directory, in order.
const FILE_NAMES: [&str; 4] = ["config.toml", "config.yaml", "config.yml", "config.json"];

/// Validated settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The daemon's uuid.
    pub(crate) uuid: String,
    /// The state directory and what `delete` does with data.
    pub(crate) state: StateSettings,
    /// The transport.
    pub(crate) bus: BusSettings,
    /// The HTTP API; `None`: disabled.
    pub(crate) api: Option<ApiSettings>,
    /// Status heartbeat period.
    pub(crate) heartbeat: Duration,
    /// The configured components, placed: the root generic manager (uuid:
    /// the daemon's) and everything below it.
    pub(crate) placement: Placement,
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
pub(crate) fn find_config_file(explicit: Option<&Path>) -> Option<PathBuf> {
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
pub(crate) fn load(
    file: Option<&Path>,
    broker_url: Option<&str>,
    kinds: &KindRegistry,
) -> Result<Settings, SettingsError> {
    let (merged, file_name) = merged_document(file)?;
    from_value(merged, &file_name, broker_url, kinds)
}

/// The state directory alone (for `kind install|list|remove`), from
/// `file` and the environment.
pub(crate) fn state_dir(file: Option<&Path>) -> Result<PathBuf, SettingsError> {
    let (merged, file_name) = merged_document(file)?;
    let raw: raw::RawKindSettings =
        serde_path_to_error::deserialize(merged).map_err(|e| SettingsError::Invalid {
            file: file_name.clone(),
            key: e.path().to_string(),
            message: e.into_inner().to_string(),
        })?;
    StateSettings::from_config(raw.state_dir, raw.workdir, None)
        .map(|state| state.dir)
        .map_err(in_file(&file_name))
}

/// The kind executables to start: those installed in the state
/// directory (`state_dir/kinds/*/villas-kind.toml`), then the configured
/// `kind_processes`; read from `file` and the environment before the rest
/// of the settings (the kinds they serve check `components`).
pub(crate) fn kind_processes(
    file: Option<&Path>,
) -> Result<Vec<villas_actors::process::KindProcessSpec>, SettingsError> {
    let (merged, file_name) = merged_document(file)?;
    let raw: raw::RawKindSettings =
        serde_path_to_error::deserialize(merged).map_err(|e| SettingsError::Invalid {
            file: file_name.clone(),
            key: format!("kind_processes.{}", e.path()),
            message: e.into_inner().to_string(),
        })?;
    let state = StateSettings::from_config(raw.state_dir, raw.workdir, None)
        .map_err(in_file(&file_name))?;
    let mut specs = installed::installed_kinds(&state.dir).map_err(|e| SettingsError::Load {
        file: file_name.clone(),
        message: format!("installed kind: {e}"),
    })?;
    for (index, entry) in raw.kind_processes.into_iter().enumerate() {
        specs.push(
            kind_process(entry).map_err(|message| SettingsError::Invalid {
                file: file_name.clone(),
                key: format!("kind_processes[{index}]"),
                message,
            })?,
        );
    }
    Ok(specs)
}

fn kind_process(
    raw: raw::RawKindProcess,
) -> Result<villas_actors::process::KindProcessSpec, String> {
    let mut command = raw.command.into_iter();
    let Some(executable) = command.next().filter(|c| !c.is_empty()) else {
        return Err("command must name an executable".into());
    };
    if raw.name.is_empty() {
        return Err("name must not be empty".into());
    }
    let mut spec = villas_actors::process::KindProcessSpec::new(raw.name, executable);
    spec.args = command.collect();
    spec.env = raw.environment.into_iter().collect();
    spec.working_dir = raw.working_directory;
    if let Some(seconds) = raw.request_timeout {
        spec.request_timeout =
            positive_seconds("request_timeout", Some(seconds), 10.0).map_err(|e| e.to_string())?;
    }
    if let Some(limit) = raw.flood_limit {
        if limit == 0 {
            return Err("flood_limit must be at least 1 line per second".into());
        }
        spec.flood_limit = limit;
    }
    let mut properties = serde_json::Map::new();
    if let Some(budget) = raw.restart_budget {
        properties.insert("restart_budget".into(), budget);
    }
    if let Some(backoff) = raw.restart_backoff {
        properties.insert("restart_backoff".into(), backoff);
    }
    let supervision = villas_actors::ic::policy::SupervisionSpec::from_properties(&properties)
        .map_err(|e| e.message)?;
    spec.restart = villas_actors::ic::policy::SupervisionSpec {
        policy: spec.restart.policy,
        ..supervision
    };
    Ok(spec)
}

/// Loads the broker section alone from `file` (if any) and the
/// environment, for client commands: `None` without a broker URL (the
/// client then uses the reference's default broker). The broker section is
/// validated as [`load`] does; the daemon's sections (`api`, `state_dir`,
/// the stored uuid, `components`, ...) are ignored unread.
pub(crate) fn load_broker(
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
    let section = BrokerSection::from_raw(raw.broker, broker_url).map_err(in_file(&file_name))?;
    Ok(section.map(|section| section.endpoint))
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

/// What [`check_text`] accepted.
#[derive(Debug)]
pub struct Checked {
    /// Where the configured components go.
    pub placement: Placement,
    /// Whether a broker is configured (else the in-process bus).
    pub broker: bool,
}

/// Validates a configuration text as the daemon would (without the
/// environment overrides): the entry point of the settings fuzzer. Never
/// panics, whatever the text.
pub fn check_text(
    text: &str,
    format: Format,
    kinds: &KindRegistry,
) -> Result<Checked, SettingsError> {
    from_text(text, format, kinds).map(|settings| Checked {
        broker: matches!(settings.bus, BusSettings::Amqp(_)),
        placement: settings.placement,
    })
}

/// Validates the settings in the text of a configuration file, without the
/// environment overrides: the loader's core.
pub(crate) fn from_text(
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
    from_value(merged, file_name, None, kinds)
}

/// Checks the merged raw document key by key, then validates it.
fn from_value(
    merged: Value,
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
    validate(raw, file_name, broker_url, kinds)
}

fn validate(
    raw: RawSettings,
    file: &str,
    broker_url: Option<&str>,
    kinds: &KindRegistry,
) -> Result<Settings, SettingsError> {
    let state = StateSettings::from_config(raw.state_dir, raw.workdir, raw.state.delete_data)
        .map_err(in_file(file))?;
    let uuid = daemon_uuid(raw.uuid.as_deref(), &state).map_err(in_file(file))?;
    let heartbeat = positive_seconds(
        "status.heartbeat_interval",
        raw.status.heartbeat_interval,
        30.0,
    )
    .map_err(in_file(file))?;
    let bus = match BrokerSection::from_raw(raw.broker, broker_url).map_err(in_file(file))? {
        Some(section) => BusSettings::Amqp(section.for_daemon(&uuid)),
        None => BusSettings::Local,
    };
    let api = ApiSettings::from_raw(raw.api).map_err(in_file(file))?;
    let placement = Placement::from_config(&uuid, raw.components, kinds).map_err(in_file(file))?;
    Ok(Settings {
        uuid,
        state,
        bus,
        api,
        heartbeat,
        placement,
    })
}

/// The daemon's uuid: the configured one, else the one stored in the
/// state directory, else one derived from the host name.
fn daemon_uuid(configured: Option<&str>, state: &StateSettings) -> Result<String, InvalidSetting> {
    let uuid = match configured {
        Some(text) => uuid::Uuid::parse_str(text)
            .map_err(|e| InvalidSetting::new("uuid", format!("not a uuid: {e}")))?,
        None => match villas_actors::store::stored_daemon_uuid(&state.dir) {
            Ok(Some(stored)) => stored,
            Ok(None) => default_uuid(),
            Err(error) => return Err(InvalidSetting::new("uuid", error.to_string())),
        },
    };
    Ok(uuid.hyphenated().to_string())
}

/// Adds the file name to an owner's [`InvalidSetting`].
fn in_file(file: &str) -> impl Fn(InvalidSetting) -> SettingsError + '_ {
    move |InvalidSetting { key, message }| SettingsError::Invalid {
        file: file.to_owned(),
        key,
        message,
    }
}

/// A uuid derived from the host name, stable across restarts.
fn default_uuid() -> uuid::Uuid {
    let host = villas_sdk::protocol::hostname();
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_DNS,
        format!("villas-controller.{host}").as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_processes_keep_the_case_of_environment_names() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.yaml");
        std::fs::write(
            &file,
            "kind_processes:\n- name: clock\n  command: [python3, clock.py]\n  environment: {PYTHONPATH: /x}\n  request_timeout: 2.5\n  flood_limit: 100\n  restart_budget: {max_restarts: 2, window: 10}\n",
        )
        .unwrap();
        let specs = kind_processes(Some(&file)).unwrap();
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].env, [("PYTHONPATH".to_owned(), "/x".to_owned())]);
        assert_eq!(specs[0].args, ["clock.py"]);
        assert_eq!(specs[0].request_timeout, Duration::from_millis(2500));
        assert_eq!(specs[0].flood_limit, 100);
        assert_eq!(specs[0].restart.max_restarts, 2);
        std::fs::write(&file, "kind_processes:\n- name: clock\n  command: []\n").unwrap();
        assert!(kind_processes(Some(&file)).is_err());
    }

    fn kinds() -> KindRegistry {
        KindRegistry::new(crate::builtin_kinds()).unwrap()
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
        assert_eq!(endpoint.urls, ["amqp://u:p@h/%2F?heartbeat=10"]);
        assert_eq!(endpoint.exchange, "lab");
        let given = load_broker(Some(&path), Some("amqp://other/%2F")).unwrap();
        assert_eq!(given.unwrap().urls, ["amqp://other/%2F?heartbeat=10"]);

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
