//! The state directory: what must survive a restart or a crash. It holds
//! the daemon's uuid, the definition of every component created with
//! `create` (restored at the next start under the same manager), and a
//! data directory for every component (configured ones too), which its
//! kind receives as [`ComponentSpec::data_dir`].
//!
//! ```text
//! <state_dir>/lock                            flock: one daemon per directory
//! <state_dir>/uuid                            the daemon's uuid
//! <state_dir>/components/<uuid>/component.json  {"managed_by", "created", "properties"}
//! <state_dir>/components/<uuid>/data/         the kind's working area
//! ```
//!
//! Every file is written atomically: a temporary file is written and
//! synced, renamed over the old one, and the directory is synced. A daemon
//! killed at any moment therefore leaves each definition either complete
//! or absent; temporary files left by a crash are ignored and removed at
//! the next start. Components from the configuration file are never
//! written here (only their data directories are made).

use crate::invalid::InvalidSetting;
use crate::placement::Placement;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use villas_sdk::{ComponentSpec, ErrorCode, ErrorInfo};

/// Name of a component's definition file.
const DEFINITION: &str = "component.json";
/// Name of the daemon's uuid file.
const UUID_FILE: &str = "uuid";
/// Suffix of temporary files (ignored and removed when found at start-up).
const TMP_SUFFIX: &str = ".tmp";

/// What went wrong with the state directory.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Another daemon uses this state directory.
    #[error("state directory {} is in use by another villas-controller (lock held on {})", dir.display(), dir.join("lock").display())]
    Locked {
        /// The state directory.
        dir: PathBuf,
    },
    /// The stored daemon uuid is not a uuid.
    #[error("{}: not a uuid: {text:?}", path.display())]
    BadUuidFile {
        /// The file.
        path: PathBuf,
        /// What it holds.
        text: String,
    },
    /// A configured component has the uuid of a stored one.
    #[error("component {uuid} is defined in the configuration file and was also created over the bus earlier (stored in {}); remove one of the two", path.display())]
    Clash {
        /// The uuid.
        uuid: String,
        /// The stored definition.
        path: PathBuf,
    },
}

impl StoreError {
    /// Whether an operator must change the configuration or the state
    /// directory (exit code 78) rather than retry.
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            StoreError::Clash { .. } | StoreError::BadUuidFile { .. }
        )
    }
}

impl From<StoreError> for ErrorInfo {
    fn from(error: StoreError) -> Self {
        ErrorInfo::new(
            ErrorCode::Failed,
            format!("cannot write the state directory: {error}"),
        )
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A stored component definition, as written in `component.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    /// The uuid of its manager.
    pub managed_by: String,
    /// When it was created (unix seconds), to restore in creation order.
    #[serde(default)]
    pub created: f64,
    /// Its properties (what `create` was given, uuid included).
    pub properties: Map<String, Value>,
}

/// Where the daemon keeps what must survive a restart: the store's section
/// of the settings, validated here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateSettings {
    /// The state directory (`state_dir`).
    pub dir: PathBuf,
    /// `state.delete_data`: `delete` removes the component's data directory
    /// too (default: it is kept).
    pub delete_data: bool,
}

impl StateSettings {
    /// The state settings from `state_dir` (or its deprecated alias
    /// `workdir`), else `$XDG_DATA_HOME/villas-controller`, else
    /// `~/.local/share/villas-controller`, and `state.delete_data`.
    pub fn from_config(
        state_dir: Option<PathBuf>,
        workdir: Option<PathBuf>,
        delete_data: Option<bool>,
    ) -> Result<StateSettings, InvalidSetting> {
        if workdir.is_some() {
            tracing::warn!("the setting `workdir` is deprecated: use `state_dir`");
        }
        let dir = match (state_dir, workdir) {
            (Some(dir), Some(old)) if dir != old => {
                return Err(InvalidSetting::new(
                    "workdir",
                    "set only state_dir (workdir is its deprecated alias)",
                ))
            }
            (Some(dir), _) | (None, Some(dir)) => dir,
            (None, None) => default_state_dir().ok_or_else(|| {
                InvalidSetting::new(
                    "state_dir",
                    "not set, and neither XDG_DATA_HOME nor HOME is set to derive it from",
                )
            })?,
        };
        if dir.as_os_str().is_empty() {
            return Err(InvalidSetting::new("state_dir", "must not be empty"));
        }
        Ok(StateSettings {
            dir,
            delete_data: delete_data.unwrap_or(false),
        })
    }
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

/// The daemon's state directory, shared by every component actor.
#[derive(Debug)]
pub struct Store {
    /// The state directory.
    dir: PathBuf,
    /// `state.delete_data`.
    delete_data: bool,
    /// Uuids of configured components: never written.
    configured: HashSet<String>,
    /// uuid -> manager, as stored (to skip writing what is already there).
    stored: Mutex<HashMap<String, String>>,
    /// manager uuid -> stored components to create when it starts.
    restored: Mutex<HashMap<String, Vec<ComponentSpec>>>,
    /// Held open for the daemon's lifetime: the directory's lock.
    _lock: File,
}

/// The daemon uuid stored in `dir`, if there is one.
pub fn stored_daemon_uuid(dir: &Path) -> Result<Option<uuid::Uuid>, StoreError> {
    let path = dir.join(UUID_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StoreError::Io { path, source }),
    };
    match uuid::Uuid::parse_str(text.trim()) {
        Ok(uuid) => Ok(Some(uuid)),
        Err(_) => Err(StoreError::BadUuidFile {
            path,
            text: text.chars().take(64).collect(),
        }),
    }
}

impl Store {
    /// Opens (creating it if needed) and locks the state directory
    /// `state.dir`, stores the daemon's uuid (the root manager's in
    /// `placement`), and loads the stored components: each goes under its
    /// manager; one whose manager no longer exists goes under the root
    /// manager (with a warning). A stored uuid that a configured component
    /// (or the root) also has is an error.
    pub fn open(state: &StateSettings, placement: &Placement) -> Result<Store, StoreError> {
        let dir = state.dir.clone();
        let root = placement.daemon_uuid();
        let components = dir.join("components");
        fs::create_dir_all(&components).map_err(io_error(&components))?;
        let lock = lock(&dir)?;
        let stored = stored_daemon_uuid(&dir).ok().flatten();
        if stored.map(|u| u.hyphenated().to_string()).as_deref() != Some(root) {
            write_atomically(&dir.join(UUID_FILE), format!("{root}\n").as_bytes())?;
        }
        let configured: HashSet<String> =
            placement.all().map(|c| c.spec.uuid().to_owned()).collect();
        let loaded = load_definitions(&components)?;
        for uuid in loaded.keys() {
            if configured.contains(uuid) {
                return Err(StoreError::Clash {
                    uuid: uuid.clone(),
                    path: components.join(uuid).join(DEFINITION),
                });
            }
        }
        // The managers that exist at start-up: the root and the configured
        // ones (all below the root, see `crate::placement`).
        let managers: HashSet<String> = placement
            .all()
            .filter(|c| c.spec.identity.category == "manager")
            .map(|c| c.spec.uuid().to_owned())
            .collect();
        let placed = place(loaded, &managers, root);
        let stored = placed
            .iter()
            .map(|(uuid, (definition, _))| (uuid.clone(), definition.managed_by.clone()))
            .collect();
        let mut ordered: Vec<(String, (Definition, ComponentSpec))> = placed.into_iter().collect();
        ordered.sort_by(|a, b| {
            a.1 .0
                .created
                .total_cmp(&b.1 .0.created)
                .then_with(|| a.0.cmp(&b.0))
        });
        let mut restored: HashMap<String, Vec<ComponentSpec>> = HashMap::new();
        let count = ordered.len();
        for (_, (definition, spec)) in ordered {
            restored
                .entry(definition.managed_by)
                .or_default()
                .push(spec);
        }
        tracing::info!(state_dir = %dir.display(), restored = count, "state directory opened");
        Ok(Store {
            dir,
            delete_data: state.delete_data,
            configured,
            stored: Mutex::new(stored),
            restored: Mutex::new(restored),
            _lock: lock,
        })
    }

    /// The data directory of a component (whether or not it exists).
    pub fn data_dir(&self, uuid: &str) -> PathBuf {
        self.component_dir(uuid).join("data")
    }

    fn component_dir(&self, uuid: &str) -> PathBuf {
        self.dir.join("components").join(uuid)
    }

    /// Creates the component's data directory and hands it to the kind
    /// through its definition.
    pub fn attach_data_dir(&self, spec: &mut ComponentSpec) -> Result<(), StoreError> {
        let data = self.data_dir(spec.uuid());
        fs::create_dir_all(&data).map_err(io_error(&data))?;
        spec.set_data_dir(Some(data));
        Ok(())
    }

    /// Removes the data directory of a component that could not be built,
    /// if it is empty (a refused `create` leaves nothing behind).
    pub fn discard_unused(&self, uuid: &str) {
        if !self.stored.lock().contains_key(uuid) && !self.configured.contains(uuid) {
            let _ = fs::remove_dir(self.data_dir(uuid));
            let _ = fs::remove_dir(self.component_dir(uuid));
        }
    }

    /// The stored components to create under `manager` as it starts (once).
    pub fn take_restored(&self, manager: &str) -> Vec<ComponentSpec> {
        self.restored.lock().remove(manager).unwrap_or_default()
    }

    /// Stores the definition of a component created under `managed_by`
    /// (durably, before it returns). Configured components and definitions
    /// stored unchanged already are not written.
    pub fn created(&self, spec: &ComponentSpec, managed_by: &str) -> Result<(), StoreError> {
        let uuid = spec.uuid();
        if self.configured.contains(uuid)
            || self.stored.lock().get(uuid).map(String::as_str) == Some(managed_by)
        {
            return Ok(());
        }
        let definition = Definition {
            managed_by: managed_by.to_owned(),
            created: villas_sdk::protocol::unix_now(),
            properties: spec.properties.clone(),
        };
        // Serialising a map of JSON values cannot fail.
        let body = serde_json::to_vec_pretty(&definition).unwrap_or_default();
        let dir = self.component_dir(uuid);
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        sync_dir(&self.dir.join("components"))?;
        write_atomically(&dir.join(DEFINITION), &body)?;
        self.stored
            .lock()
            .insert(uuid.to_owned(), managed_by.to_owned());
        Ok(())
    }

    /// Removes a deleted component's definition (durably); its data
    /// directory too when `state.delete_data` is set. Configured
    /// components have no definition here: nothing is removed for them.
    pub fn deleted(&self, uuid: &str) -> Result<(), StoreError> {
        if self.configured.contains(uuid) {
            return Ok(());
        }
        let dir = self.component_dir(uuid);
        let path = dir.join(DEFINITION);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&dir)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(StoreError::Io { path, source }),
        }
        self.stored.lock().remove(uuid);
        if self.delete_data {
            match fs::remove_dir_all(&dir) {
                Ok(()) => sync_dir(&self.dir.join("components"))?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(StoreError::Io { path: dir, source }),
            }
        }
        Ok(())
    }
}

/// Takes the directory's lock, failing at once if another daemon holds it.
fn lock(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_error(&path))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(StoreError::Locked {
            dir: dir.to_owned(),
        }),
        Err(errno) => Err(StoreError::Io {
            path,
            source: errno.into(),
        }),
    }
}

/// Reads every `components/<uuid>/component.json`. Temporary files are
/// removed; unreadable or invalid definitions are skipped with an error
/// log and left in place (nothing is deleted that an operator might want).
fn load_definitions(
    components: &Path,
) -> Result<HashMap<String, (Definition, ComponentSpec)>, StoreError> {
    let mut loaded = HashMap::new();
    for entry in fs::read_dir(components).map_err(io_error(components))? {
        let entry = entry.map_err(io_error(components))?;
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        remove_temporary_files(&dir);
        let path = dir.join(DEFINITION);
        let text = match fs::read(&path) {
            Ok(text) => text,
            // A data directory alone: a configured component's, or a
            // deleted component's whose data was kept.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => {
                tracing::error!(path = %path.display(), %error, "stored component not readable; skipped");
                continue;
            }
        };
        match parse_definition(&text, &entry.file_name().to_string_lossy()) {
            Ok((definition, spec)) => {
                loaded.insert(spec.uuid().to_owned(), (definition, spec));
            }
            Err(error) => {
                tracing::error!(path = %path.display(), %error, "stored component invalid; skipped");
            }
        }
    }
    Ok(loaded)
}

/// Parses a definition file found in the directory named `dir_name`.
pub fn parse_definition(
    text: &[u8],
    dir_name: &str,
) -> Result<(Definition, ComponentSpec), String> {
    let definition: Definition = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    let spec =
        ComponentSpec::from_properties(definition.properties.clone()).map_err(|e| e.to_string())?;
    if spec.uuid() != dir_name {
        return Err(format!(
            "uuid {} does not match its directory {dir_name}",
            spec.uuid()
        ));
    }
    if uuid::Uuid::parse_str(&definition.managed_by).is_err() {
        return Err(format!(
            "managed_by is not a uuid: {:?}",
            definition.managed_by
        ));
    }
    Ok((definition, spec))
}

fn remove_temporary_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().ends_with(TMP_SUFFIX) {
            tracing::info!(path = %entry.path().display(), "removing a temporary file left by a crash");
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Puts every stored component under a manager that will exist: its own
/// if that is one of `managers` (those that exist at start-up) or a stored
/// manager placed in turn; otherwise (its manager is gone, or managers
/// form a cycle) under `root`, with a warning. Returns uuid -> (definition
/// with the manager it goes under, spec).
pub fn place(
    mut loaded: HashMap<String, (Definition, ComponentSpec)>,
    managers: &HashSet<String>,
    root: &str,
) -> HashMap<String, (Definition, ComponentSpec)> {
    loop {
        let mut reachable: HashSet<String> = managers.clone();
        loop {
            let before = reachable.len();
            for (uuid, (definition, spec)) in &loaded {
                if spec.identity.category == "manager" && reachable.contains(&definition.managed_by)
                {
                    reachable.insert(uuid.clone());
                }
            }
            if reachable.len() == before {
                break;
            }
        }
        let mut orphans: Vec<String> = loaded
            .iter()
            .filter(|(_, (d, _))| !reachable.contains(&d.managed_by))
            .map(|(uuid, _)| uuid.clone())
            .collect();
        if orphans.is_empty() {
            return loaded;
        }
        orphans.sort();
        // Components whose manager does not exist at all go first; if only
        // cycles are left, one member of a cycle is moved.
        let dangling: Vec<String> = orphans
            .iter()
            .filter(|u| !loaded.contains_key(&loaded[*u].0.managed_by))
            .cloned()
            .collect();
        let adopt = if dangling.is_empty() {
            orphans.truncate(1);
            orphans
        } else {
            dangling
        };
        for uuid in adopt {
            if let Some((definition, _)) = loaded.get_mut(&uuid) {
                tracing::warn!(%uuid, manager = %definition.managed_by, adopted_by = %root, "the stored component's manager does not exist; the root manager takes it over");
                definition.managed_by = root.to_owned();
            }
        }
    }
}

/// Writes `body` to `path` atomically and durably: temporary file, sync,
/// rename, sync of the directory.
pub fn write_atomically(path: &Path, body: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(TMP_SUFFIX);
    let tmp = dir.join(tmp_name);
    let mut file = File::create(&tmp).map_err(io_error(&tmp))?;
    file.write_all(body).map_err(io_error(&tmp))?;
    file.sync_all().map_err(io_error(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io_error(path))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(
        uuid: &str,
        category: &str,
        managed_by: &str,
    ) -> (String, (Definition, ComponentSpec)) {
        let properties = json!({"category": category, "type": "generic", "uuid": uuid})
            .as_object()
            .cloned()
            .unwrap();
        let spec = ComponentSpec::from_properties(properties.clone()).unwrap();
        (
            spec.uuid().to_owned(),
            (
                Definition {
                    managed_by: managed_by.to_owned(),
                    created: 0.0,
                    properties,
                },
                spec,
            ),
        )
    }

    fn u(n: u32) -> String {
        format!("00000000-0000-4000-8000-{n:012}")
    }

    fn managers_of(placed: &HashMap<String, (Definition, ComponentSpec)>) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = placed
            .iter()
            .map(|(uuid, (d, _))| (uuid.clone(), d.managed_by.clone()))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn nested_managers_keep_their_children_and_orphans_are_adopted() {
        let top: HashSet<String> = [u(1)].into();
        let loaded = [
            stored(&u(10), "manager", &u(1)),
            stored(&u(11), "simulator", &u(10)),
            stored(&u(12), "simulator", &u(99)),
            stored(&u(13), "manager", &u(99)),
            stored(&u(14), "simulator", &u(13)),
            // A cycle no existing manager reaches.
            stored(&u(20), "manager", &u(21)),
            stored(&u(21), "manager", &u(20)),
        ]
        .into_iter()
        .collect();
        let placed = place(loaded, &top, &u(1));
        assert_eq!(
            managers_of(&placed),
            vec![
                (u(10), u(1)),
                (u(11), u(10)),
                (u(12), u(1)),
                (u(13), u(1)),
                (u(14), u(13)),
                (u(20), u(1)),
                (u(21), u(20)),
            ]
        );
    }

    #[test]
    fn definitions_must_match_their_directory() {
        let (_, (definition, _)) = stored(&u(5), "simulator", &u(1));
        let text = serde_json::to_vec(&definition).unwrap();
        assert!(parse_definition(&text, &u(5)).is_ok());
        assert!(parse_definition(&text, &u(6)).is_err());
        assert!(parse_definition(b"{\"managed_by\":", &u(5)).is_err());
        assert!(parse_definition(b"", &u(5)).is_err());
        let mut bad = definition;
        bad.managed_by = "x".into();
        assert!(parse_definition(&serde_json::to_vec(&bad).unwrap(), &u(5)).is_err());
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stored_uuid_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(stored_daemon_uuid(dir.path()).unwrap(), None);
        fs::write(
            dir.path().join(UUID_FILE),
            "3DDD318E-FEE1-46D7-BFF4-7C064D640D4E\n",
        )
        .unwrap();
        assert_eq!(
            stored_daemon_uuid(dir.path())
                .unwrap()
                .map(|u| u.hyphenated().to_string()),
            Some("3ddd318e-fee1-46d7-bff4-7c064d640d4e".to_owned())
        );
        fs::write(dir.path().join(UUID_FILE), "garbage").unwrap();
        assert!(stored_daemon_uuid(dir.path()).unwrap_err().is_config());
    }

    #[test]
    fn a_second_store_on_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path()).unwrap();
        assert!(matches!(lock(dir.path()), Err(StoreError::Locked { .. })));
        drop(first);
        assert!(lock(dir.path()).is_ok());
    }
}
