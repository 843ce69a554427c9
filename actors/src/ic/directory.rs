//! The daemon-wide directory of running components: the routing table
//! shared by the transports (fan-out, through `crate::ports::Dispatch`),
//! the managers (create, delete, the duplicate-uuid check) and the HTTP API
//! (look-ups). Writes happen only on the actor system's thread; reads are
//! short, and no lock is ever held outside this module.

use crate::ic::actor::{Deliver, IcActor};
use crate::ports::{Dispatch, Inbound};
use crate::routing::{DuplicateUuid, RoutingTable};
use actix::Addr;
use parking_lot::RwLock;
use std::sync::Arc;
use villas_sdk::{Headers, Identity};

/// Every component in the daemon, by uuid, realm, category and type.
/// Cheap to clone (one shared table).
#[derive(Clone, Default)]
pub struct Directory(Arc<RwLock<RoutingTable<Addr<IcActor>>>>);

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("components", &self.0.read().len())
            .finish()
    }
}

impl Directory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// The actor of the component with this (canonical) uuid.
    pub fn lookup(&self, uuid: &str) -> Option<Addr<IcActor>> {
        self.0.read().get(uuid).map(|route| route.target.clone())
    }

    /// Whether a component has this (canonical) uuid.
    pub fn contains(&self, uuid: &str) -> bool {
        self.0.read().get(uuid).is_some()
    }

    /// Enters a component; refuses a uuid that is there already.
    pub fn insert(&self, identity: Identity, actor: Addr<IcActor>) -> Result<(), DuplicateUuid> {
        self.0.write().insert(identity, actor)
    }

    /// Removes a component (if it is there).
    pub fn remove(&self, uuid: &str) {
        self.0.write().remove(uuid);
    }

    /// The uuids of every component.
    pub fn uuids(&self) -> Vec<String> {
        self.0
            .read()
            .iter()
            .map(|route| route.identity.uuid.clone())
            .collect()
    }
}

impl Dispatch for Directory {
    fn dispatch(&self, headers: &Headers, message: &Arc<Inbound>) -> usize {
        self.0.read().route(headers, |route| {
            route.target.do_send(Deliver(message.clone()))
        })
    }
}
