//! The kinds this daemon can run, by (category, type), each with its
//! schemas compiled once. Clones share one registry: a kind registered
//! while the daemon runs (a kind process installed and picked up at a
//! reload) is seen by every part of it.

use parking_lot::RwLock;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use villas_sdk::{ErrorCode, ErrorInfo, Kind, SchemaError, Schemas};

/// A registered kind and its compiled schemas.
#[derive(Clone)]
pub struct RegisteredKind {
    /// The kind.
    pub kind: Arc<dyn Kind>,
    /// Its schemas, shared by all its instances.
    pub schemas: Arc<Schemas>,
}

/// The registry of kinds.
#[derive(Clone, Default)]
pub struct KindRegistry {
    /// (category, type) -> kind.
    kinds: Arc<RwLock<HashMap<(String, String), RegisteredKind>>>,
    /// The kind processes started (by name), so that a reload starts only
    /// new ones.
    processes: Arc<parking_lot::Mutex<HashSet<String>>>,
}

impl std::fmt::Debug for KindRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.kinds.read().keys()).finish()
    }
}

impl KindRegistry {
    /// Registers kinds, compiling their schemas.
    pub fn new(kinds: impl IntoIterator<Item = Arc<dyn Kind>>) -> Result<Self, SchemaError> {
        let registry = KindRegistry::default();
        for kind in kinds {
            registry.register(kind)?;
        }
        Ok(registry)
    }

    /// Registers one kind (a lab's own, say); a later one replaces an
    /// earlier one of the same category and type.
    pub fn register(&self, kind: Arc<dyn Kind>) -> Result<(), SchemaError> {
        let schemas = Arc::new(Schemas::compile(kind.schemas())?);
        let key = (kind.category().to_owned(), kind.type_name().to_owned());
        self.kinds
            .write()
            .insert(key, RegisteredKind { kind, schemas });
        Ok(())
    }

    /// Records that the kind process `name` was started; `false` if it
    /// was already.
    pub fn mark_process(&self, name: &str) -> bool {
        self.processes.lock().insert(name.to_owned())
    }

    /// The kind for a category and type.
    pub fn get(&self, category: &str, kind: &str) -> Result<RegisteredKind, ErrorInfo> {
        // The lock is released before `names` takes it again.
        let found = self
            .kinds
            .read()
            .get(&(category.to_owned(), kind.to_owned()))
            .cloned();
        found.ok_or_else(|| {
            ErrorInfo::new(
                ErrorCode::Unsupported,
                format!(
                    "this controller has no component kind {category}/{kind} (it has: {})",
                    self.names().join(", ")
                ),
            )
        })
    }

    /// Asks every kind to end what its components ran (the daemon exits),
    /// each within `grace`; blocks.
    pub fn drain(&self, grace: std::time::Duration) {
        let kinds: Vec<RegisteredKind> = self.kinds.read().values().cloned().collect();
        for registered in &kinds {
            let kind = &registered.kind;
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| kind.drain(grace))).is_err()
            {
                tracing::error!(
                    kind = %format!("{}/{}", kind.category(), kind.type_name()),
                    "kind panicked while draining"
                );
            }
        }
    }

    /// The categories that have a kind of type `type_name`, sorted.
    pub fn categories_of(&self, type_name: &str) -> Vec<String> {
        let mut categories: Vec<String> = self
            .kinds
            .read()
            .keys()
            .filter(|(_, t)| t == type_name)
            .map(|(c, _)| c.clone())
            .collect();
        categories.sort();
        categories
    }

    /// "category/type" of every kind, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .kinds
            .read()
            .keys()
            .map(|(c, t)| format!("{c}/{t}"))
            .collect();
        names.sort();
        names
    }
}
