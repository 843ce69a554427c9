//! The daemon-wide directory of running components: the routing table
//! shared by the consumer (fan-out), the managers (create, delete, the
//! duplicate-uuid check) and the HTTP API (look-ups). Writes happen only on
//! the actor system's thread; reads are short.

use crate::component_actor::IcActor;
use crate::routing::RoutingTable;
use actix::Addr;
use std::sync::Arc;

/// The shared routing table of every component in the daemon.
pub type Directory = Arc<parking_lot::RwLock<RoutingTable<Addr<IcActor>>>>;

/// An empty directory.
pub fn new_directory() -> Directory {
    Arc::new(parking_lot::RwLock::new(RoutingTable::new()))
}
