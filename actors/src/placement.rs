//! Where configured components go. The configuration's `uuid` names the
//! daemon's root generic manager, which always exists (as in the
//! reference): every configured component, configured managers included,
//! goes under it unless its `manager` property names another configured
//! manager. A configured `manager`/`generic` entry with the daemon's uuid
//! is that root (its properties are used for it); no other entry may carry
//! the daemon's uuid.
//!
//! This module owns the `components` section of the settings: each entry
//! is checked once, when the settings are validated
//! ([`Placement::from_config`]: a definition its kind accepts, a valid
//! supervision, a manager that exists), and placed ([`arrange`]); at run
//! time each manager takes the configured components placed under it as
//! its actor starts ([`PendingComponents`]), so that configured managers
//! under the root get theirs in turn.

use crate::ic::policy::SupervisionSpec;
use crate::invalid::InvalidSetting;
use crate::kinds::KindRegistry;
use parking_lot::Mutex;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use villas_sdk::{ComponentSpec, Driver};

/// A component from the configuration file, checked and placed.
#[derive(Debug, Clone)]
pub struct ConfiguredComponent {
    /// Its definition.
    pub spec: ComponentSpec,
    /// Its supervision settings, parsed once here.
    pub supervision: SupervisionSpec,
    /// The uuid of the manager it goes under: its `manager` property, else
    /// the root manager (the daemon's uuid; the root's is itself).
    pub manager: String,
}

/// A configuration entry, checked but not yet placed.
#[derive(Debug)]
pub struct Entry {
    /// Its position in `components` (for error keys).
    pub index: usize,
    /// Its definition.
    pub spec: ComponentSpec,
    /// Its supervision settings.
    pub supervision: SupervisionSpec,
    /// Its `manager` property (a canonical uuid), if it has one.
    pub manager: Option<String>,
}

/// The configured tree: the root manager and everything below it.
#[derive(Debug, Clone)]
pub struct Placement {
    /// The root generic manager (uuid: the daemon's; its manager: itself).
    pub root: ConfiguredComponent,
    /// Every other configured component, in configuration order.
    pub components: Vec<ConfiguredComponent>,
}

impl Placement {
    /// Checks the `components` entries of the configuration (disabled ones
    /// are skipped) against `kinds` and places them under the root manager
    /// `daemon_uuid`.
    pub fn from_config(
        daemon_uuid: &str,
        entries: Vec<Map<String, Value>>,
        kinds: &KindRegistry,
    ) -> Result<Placement, InvalidSetting> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut checked = Vec::new();
        for (index, properties) in entries.into_iter().enumerate() {
            if properties.get("enabled").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            let entry = check_entry(index, properties, kinds)?;
            if !seen.insert(entry.spec.uuid().to_owned()) {
                return Err(InvalidSetting::new(
                    format!("components[{index}].uuid"),
                    format!("duplicate uuid {}", entry.spec.uuid()),
                ));
            }
            checked.push(entry);
        }
        arrange(daemon_uuid, checked).map_err(|e| InvalidSetting::new(e.key(), e.to_string()))
    }

    /// The daemon's uuid (the root manager's).
    pub fn daemon_uuid(&self) -> &str {
        self.root.spec.uuid()
    }

    /// Every configured component, the root first.
    pub fn all(&self) -> impl Iterator<Item = &ConfiguredComponent> {
        std::iter::once(&self.root).chain(&self.components)
    }

    /// The managers the daemon runs at start-up: the root and the
    /// configured ones below it.
    pub fn manager_count(&self) -> usize {
        self.all()
            .filter(|c| c.spec.identity.category == "manager")
            .count()
    }

    /// The configured components that are not managers.
    pub fn component_count(&self) -> usize {
        self.all()
            .filter(|c| c.spec.identity.category != "manager")
            .count()
    }
}

/// Checks one entry: its `manager` property, its definition, its kind
/// (which must accept it), its supervision settings.
fn check_entry(
    index: usize,
    mut properties: Map<String, Value>,
    kinds: &KindRegistry,
) -> Result<Entry, InvalidSetting> {
    let key = |field: &str| format!("components[{index}]{field}");
    // The reference's older name for managers, still in its
    // `etc/config_villas.yaml` (`category: controller`, type
    // `villas-node` / `villas-relay`).
    if properties.get("category").and_then(Value::as_str) == Some("controller") {
        tracing::warn!(
            index,
            "components[{index}].category `controller` is read as `manager`"
        );
        properties.insert("category".into(), "manager".into());
    }
    stable_manager_uuid(&mut properties);
    let manager = match properties.get("manager") {
        None | Some(Value::Null) => None,
        Some(Value::String(m)) => Some(
            uuid::Uuid::parse_str(m)
                .map_err(|_| InvalidSetting::new(key(".manager"), format!("not a uuid: {m:?}")))?
                .hyphenated()
                .to_string(),
        ),
        Some(_) => {
            return Err(InvalidSetting::new(
                key(".manager"),
                "must be the uuid of a configured manager",
            ))
        }
    };
    let properties = with_implied_category(properties, kinds)
        .map_err(|m| InvalidSetting::new(key(".category"), m))?;
    let spec = ComponentSpec::from_properties(properties)
        .map_err(|e| InvalidSetting::new(key(""), e.to_string()))?;
    let registered = kinds
        .get(&spec.identity.category, &spec.identity.type_name)
        .map_err(|e| InvalidSetting::new(key(".type"), e.message))?;
    let supervision = SupervisionSpec::from_properties(&spec.properties)
        .map_err(|e| InvalidSetting::new(key(""), e.message))?;
    Driver::check(registered.kind.as_ref(), &spec)
        .map_err(|e| InvalidSetting::new(key(""), e.message))?;
    Ok(Entry {
        index,
        spec,
        supervision,
        manager,
    })
}

/// An entry without `category` whose `type` names exactly one kind (the
/// reference's own `etc/config_dpsim.yaml` has `type: dpsim` alone) gets
/// that kind's category; a type of several categories is refused naming
/// them. Anything else is left to the definition's own checks.
fn with_implied_category(
    mut properties: Map<String, Value>,
    kinds: &KindRegistry,
) -> Result<Map<String, Value>, String> {
    if !matches!(properties.get("category"), None | Some(Value::Null)) {
        return Ok(properties);
    }
    let Some(Value::String(type_name)) = properties.get("type") else {
        return Ok(properties);
    };
    match &kinds.categories_of(type_name)[..] {
        [one] => {
            let one = one.clone();
            properties.insert("category".into(), one.into());
            Ok(properties)
        }
        [] => Ok(properties),
        many => Err(format!(
            "type {type_name:?} exists in several categories: give category ({})",
            many.join(", ")
        )),
    }
}

/// Why the configured components cannot be placed.
#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    /// An entry that is not a generic manager has the daemon's uuid.
    #[error("{uuid} is the daemon's uuid, its root generic manager's; only a manager/generic entry may carry it (components[{index}] is a {category}/{type_name})")]
    RootNotGeneric {
        /// The entry's position.
        index: usize,
        /// The daemon's uuid.
        uuid: String,
        /// The entry's category.
        category: String,
        /// The entry's type.
        type_name: String,
    },
    /// The entry with the daemon's uuid names a manager.
    #[error("the root manager {uuid} (the daemon's uuid) cannot go under manager {manager}")]
    RootManaged {
        /// The entry's position.
        index: usize,
        /// The daemon's uuid.
        uuid: String,
        /// The manager it names.
        manager: String,
    },
    /// `manager` names no configured component.
    #[error("manager {manager} is not configured (neither the daemon's uuid nor a configured manager's)")]
    UnknownManager {
        /// The entry's position.
        index: usize,
        /// The manager it names.
        manager: String,
    },
    /// `manager` names a configured component that is not a manager.
    #[error("{manager} is a {category}, not a manager")]
    NotAManager {
        /// The entry's position.
        index: usize,
        /// The component it names.
        manager: String,
        /// That component's category.
        category: String,
    },
    /// Configured managers name each other in a cycle.
    #[error("manager {uuid} is under itself through its `manager` chain; one of them must go under {root}")]
    Cycle {
        /// The entry's position.
        index: usize,
        /// The entry's uuid.
        uuid: String,
        /// The daemon's uuid.
        root: String,
    },
    /// The default root manager's definition is invalid (cannot happen
    /// with a valid daemon uuid).
    #[error("the root manager's definition: {0}")]
    Root(villas_sdk::SpecError),
}

impl PlacementError {
    /// The configuration key the error is about.
    pub fn key(&self) -> String {
        match self {
            PlacementError::RootNotGeneric { .. } | PlacementError::Root(_) => "uuid".into(),
            PlacementError::RootManaged { index, .. }
            | PlacementError::UnknownManager { index, .. }
            | PlacementError::NotAManager { index, .. }
            | PlacementError::Cycle { index, .. } => format!("components[{index}].manager"),
        }
    }
}

/// Places the configured `entries` (uuids unique) under the root manager
/// `daemon_uuid`: the one place where the rule is applied.
pub fn arrange(daemon_uuid: &str, entries: Vec<Entry>) -> Result<Placement, PlacementError> {
    let mut root = None;
    let mut rest = Vec::with_capacity(entries.len());
    for entry in entries {
        if entry.spec.uuid() != daemon_uuid {
            rest.push(entry);
            continue;
        }
        let identity = &entry.spec.identity;
        if identity.category != "manager" || identity.type_name != "generic" {
            return Err(PlacementError::RootNotGeneric {
                index: entry.index,
                uuid: daemon_uuid.to_owned(),
                category: identity.category.clone(),
                type_name: identity.type_name.clone(),
            });
        }
        if let Some(manager) = entry.manager.filter(|m| m != daemon_uuid) {
            return Err(PlacementError::RootManaged {
                index: entry.index,
                uuid: daemon_uuid.to_owned(),
                manager,
            });
        }
        root = Some((entry.spec, entry.supervision));
    }
    let (root, supervision) = match root {
        Some(root) => root,
        None => (
            default_root(daemon_uuid).map_err(PlacementError::Root)?,
            SupervisionSpec::default(),
        ),
    };

    let category: HashMap<&str, &str> = rest
        .iter()
        .map(|e| (e.spec.uuid(), e.spec.identity.category.as_str()))
        .collect();
    for entry in &rest {
        let Some(manager) = entry.manager.as_deref().filter(|m| *m != daemon_uuid) else {
            continue;
        };
        match category.get(manager) {
            None => {
                return Err(PlacementError::UnknownManager {
                    index: entry.index,
                    manager: manager.to_owned(),
                })
            }
            Some(&"manager") => {}
            Some(other) => {
                return Err(PlacementError::NotAManager {
                    index: entry.index,
                    manager: manager.to_owned(),
                    category: (*other).to_owned(),
                })
            }
        }
    }
    // Every `manager` chain must end at the root: at most one step per
    // entry, else it loops.
    let parent: HashMap<&str, &str> = rest
        .iter()
        .filter_map(|e| Some((e.spec.uuid(), e.manager.as_deref()?)))
        .collect();
    for entry in &rest {
        let mut at = entry.spec.uuid();
        let mut steps = 0;
        while let Some(&up) = parent.get(at) {
            if up == daemon_uuid {
                break;
            }
            steps += 1;
            if up == entry.spec.uuid() || steps > rest.len() {
                return Err(PlacementError::Cycle {
                    index: entry.index,
                    uuid: entry.spec.uuid().to_owned(),
                    root: daemon_uuid.to_owned(),
                });
            }
            at = up;
        }
    }

    let components = rest
        .into_iter()
        .map(|entry| ConfiguredComponent {
            manager: entry.manager.unwrap_or_else(|| daemon_uuid.to_owned()),
            spec: entry.spec,
            supervision: entry.supervision,
        })
        .collect();
    Ok(Placement {
        root: ConfiguredComponent {
            spec: root,
            supervision,
            manager: daemon_uuid.to_owned(),
        },
        components,
    })
}

/// A configured manager of a remote (an entry of category `manager` with
/// an `api_url`, such as `villas-node` or `villas-relay`) without a uuid
/// gets a stable one, v5 of its type and `api_url`, instead of a new
/// random one at every start: the components it discovers are stored
/// under its uuid and must find it again after a restart.
fn stable_manager_uuid(properties: &mut Map<String, Value>) {
    if !matches!(properties.get("uuid"), None | Some(Value::Null))
        || properties.get("category").and_then(Value::as_str) != Some("manager")
    {
        return;
    }
    let (Some(type_name), Some(api_url)) = (
        properties.get("type").and_then(Value::as_str),
        properties.get("api_url").and_then(Value::as_str),
    ) else {
        return;
    };
    let name = format!(
        "villas-controller:{type_name}:{}",
        api_url.trim_end_matches('/')
    );
    let uuid = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes());
    properties.insert("uuid".into(), uuid.hyphenated().to_string().into());
}

/// The root manager when the configuration has no entry for it, as the
/// reference makes it: `Generic Manager`, located at the host's name.
fn default_root(uuid: &str) -> Result<ComponentSpec, villas_sdk::SpecError> {
    let host = villas_sdk::protocol::hostname();
    let mut properties = Map::new();
    properties.insert("category".into(), "manager".into());
    properties.insert("type".into(), "generic".into());
    properties.insert("name".into(), "Generic Manager".into());
    properties.insert("location".into(), Value::String(host));
    properties.insert("uuid".into(), uuid.into());
    ComponentSpec::from_properties(properties)
}

/// The configured components not created yet, by the uuid of the manager
/// they go under. Each manager takes its own as its actor starts (once);
/// definitions are moved, not copied: at 10,000 components a copy costs
/// megabytes for the daemon's lifetime.
#[derive(Debug, Default)]
pub struct PendingComponents(Mutex<HashMap<String, Vec<ConfiguredComponent>>>);

impl PendingComponents {
    /// Groups `components` by manager, keeping their order.
    pub fn new(components: Vec<ConfiguredComponent>) -> Self {
        let mut by_manager: HashMap<String, Vec<ConfiguredComponent>> = HashMap::new();
        for component in components {
            by_manager
                .entry(component.manager.clone())
                .or_default()
                .push(component);
        }
        PendingComponents(Mutex::new(by_manager))
    }

    /// The configured components to create under `manager` (once).
    pub fn take(&self, manager: &str) -> Vec<ConfiguredComponent> {
        self.0.lock().remove(manager).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ROOT: &str = "00000000-0000-4000-8000-000000000001";

    fn u(n: u32) -> String {
        format!("00000000-0000-4000-8000-{n:012}")
    }

    fn entry(index: usize, uuid: &str, category: &str, kind: &str, manager: Option<&str>) -> Entry {
        let properties = json!({"category": category, "type": kind, "uuid": uuid, "name": "x"});
        Entry {
            index,
            spec: ComponentSpec::from_properties(properties.as_object().cloned().unwrap()).unwrap(),
            supervision: SupervisionSpec::default(),
            manager: manager.map(str::to_owned),
        }
    }

    fn placed(arranged: &Placement) -> Vec<(String, String)> {
        arranged
            .components
            .iter()
            .map(|c| (c.spec.uuid().to_owned(), c.manager.clone()))
            .collect()
    }

    #[test]
    fn everything_goes_under_the_root_unless_it_names_a_configured_manager() {
        let arranged = arrange(
            ROOT,
            vec![
                entry(0, &u(10), "manager", "generic", None),
                entry(1, &u(11), "simulator", "dummy", None),
                entry(2, &u(12), "simulator", "dummy", Some(&u(10))),
                entry(3, &u(13), "simulator", "dummy", Some(ROOT)),
                // Named before it is defined: order does not matter.
                entry(4, &u(14), "simulator", "dummy", Some(&u(15))),
                entry(5, &u(15), "manager", "generic", Some(&u(10))),
            ],
        )
        .unwrap();
        assert_eq!(arranged.daemon_uuid(), ROOT);
        assert_eq!(arranged.root.manager, ROOT);
        assert_eq!(arranged.root.spec.name, "Generic Manager");
        assert_eq!(
            placed(&arranged),
            vec![
                (u(10), ROOT.to_owned()),
                (u(11), ROOT.to_owned()),
                (u(12), u(10)),
                (u(13), ROOT.to_owned()),
                (u(14), u(15)),
                (u(15), u(10)),
            ]
        );
    }

    #[test]
    fn a_remote_managers_uuid_is_stable_without_one_configured() {
        let entry = |api_url: &str| {
            let mut properties = Map::new();
            properties.insert("category".into(), "manager".into());
            properties.insert("type".into(), "villas-node".into());
            properties.insert("api_url".into(), api_url.into());
            stable_manager_uuid(&mut properties);
            properties["uuid"].as_str().unwrap().to_owned()
        };
        assert_eq!(
            entry("http://localhost:8080"),
            entry("http://localhost:8080/")
        );
        assert_ne!(
            entry("http://localhost:8080"),
            entry("http://localhost:8081")
        );
        let mut configured = Map::new();
        configured.insert("category".into(), "manager".into());
        configured.insert("api_url".into(), "http://x".into());
        configured.insert("type".into(), "villas-node".into());
        configured.insert("uuid".into(), u(1).into());
        stable_manager_uuid(&mut configured);
        assert_eq!(configured["uuid"], u(1).as_str(), "a configured uuid wins");
    }

    #[test]
    fn a_generic_manager_entry_with_the_daemon_uuid_is_the_root() {
        let arranged = arrange(
            ROOT,
            vec![
                entry(0, &u(11), "simulator", "dummy", None),
                entry(1, ROOT, "manager", "generic", Some(ROOT)),
            ],
        )
        .unwrap();
        assert_eq!(arranged.root.spec.name, "x");
        assert_eq!(placed(&arranged), vec![(u(11), ROOT.to_owned())]);
    }

    #[test]
    fn impossible_placements_are_refused_naming_the_key() {
        let refused = |entries: Vec<Entry>| arrange(ROOT, entries).unwrap_err().key();
        assert_eq!(
            refused(vec![entry(0, ROOT, "simulator", "dummy", None)]),
            "uuid"
        );
        assert_eq!(
            refused(vec![
                entry(0, &u(10), "manager", "generic", None),
                entry(1, ROOT, "manager", "generic", Some(&u(10))),
            ]),
            "components[1].manager"
        );
        assert_eq!(
            refused(vec![entry(2, &u(11), "simulator", "dummy", Some(&u(99)))]),
            "components[2].manager"
        );
        assert_eq!(
            refused(vec![
                entry(0, &u(11), "simulator", "dummy", None),
                entry(1, &u(12), "simulator", "dummy", Some(&u(11))),
            ]),
            "components[1].manager"
        );
        assert!(matches!(
            arrange(
                ROOT,
                vec![
                    entry(0, &u(10), "manager", "generic", Some(&u(11))),
                    entry(1, &u(11), "manager", "generic", Some(&u(10))),
                ]
            ),
            Err(PlacementError::Cycle { .. })
        ));
        assert!(matches!(
            arrange(
                ROOT,
                vec![entry(0, &u(10), "manager", "generic", Some(&u(10)))]
            ),
            Err(PlacementError::Cycle { .. })
        ));
    }

    #[test]
    fn pending_components_are_taken_once_per_manager_in_order() {
        let arranged = arrange(
            ROOT,
            vec![
                entry(0, &u(11), "simulator", "dummy", None),
                entry(1, &u(10), "manager", "generic", None),
                entry(2, &u(12), "simulator", "dummy", None),
                entry(3, &u(13), "simulator", "dummy", Some(&u(10))),
            ],
        )
        .unwrap();
        let pending = PendingComponents::new(arranged.components);
        let uuids = |placed: Vec<ConfiguredComponent>| -> Vec<String> {
            placed.iter().map(|c| c.spec.uuid().to_owned()).collect()
        };
        assert_eq!(uuids(pending.take(ROOT)), vec![u(11), u(10), u(12)]);
        assert!(pending.take(ROOT).is_empty());
        assert_eq!(uuids(pending.take(&u(10))), vec![u(13)]);
    }
}
