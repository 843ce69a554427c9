//! # villas-actors
//!
//! The built-in infrastructure-component kinds, each written against
//! `villas-sdk` exactly as a lab's own kind would be, one module and one
//! cargo feature each so a deployment compiles in only what it needs:
//!
//! | feature           | category  | type      | module              |
//! |-------------------|-----------|-----------|---------------------|
//! | `dummy`           | simulator | dummy     | [`dummy`]           |
//! | `generic-manager` | manager   | generic   | [`generic_manager`] |
//! | `generic`         | simulator | generic   | [`generic`]         |

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
