//! # villas-actors
//!
//! The actor runtime of villas-controller: the IC actors and the
//! supervision tree, and the ports a transport plugs into. It knows no
//! transport and no configuration file; the daemon (`villas-controller`)
//! wires a transport, the settings and the HTTP API around it.
//!
//! Until they move to crates of their own (`kinds/<name>/`), the built-in
//! kinds live here too, each behind its cargo feature ([`builtin_kinds`]).

pub mod directory;
pub mod ic;
pub mod invalid;
pub mod kinds;
pub mod placement;
pub mod ports;
pub mod root;
pub mod routing;
pub mod store;

use std::sync::Arc;
use villas_sdk::Kind;

#[cfg(feature = "dummy")]
pub mod dummy;
#[cfg(feature = "generic")]
pub mod generic;
#[cfg(feature = "generic-manager")]
pub mod generic_manager;

/// Every kind compiled into this build.
pub fn builtin_kinds() -> Vec<Arc<dyn Kind>> {
    let candidates: [Option<Arc<dyn Kind>>; 3] = [
        #[cfg(feature = "dummy")]
        Some(Arc::new(dummy::DummyKind)),
        #[cfg(not(feature = "dummy"))]
        None,
        #[cfg(feature = "generic-manager")]
        Some(Arc::new(generic_manager::GenericManagerKind)),
        #[cfg(not(feature = "generic-manager"))]
        None,
        #[cfg(feature = "generic")]
        Some(Arc::new(generic::GenericKind::default())),
        #[cfg(not(feature = "generic"))]
        None,
    ];
    candidates.into_iter().flatten().collect()
}
