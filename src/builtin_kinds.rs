//! The built-in kinds, one crate each under `kinds/`, each compiled in by
//! a cargo feature of villas-controller (all on by default): what the
//! `villas-controller` binary runs, and what a lab's own binary starts
//! from (`entry::main_with_kinds`).
//!
//! | feature           | category/type       | crate                         |
//! |-------------------|---------------------|-------------------------------|
//! | `dummy`           | `simulator/dummy`   | `villas-kind-dummy`           |
//! | `generic`         | `simulator/generic` | `villas-kind-generic`         |
//! | `generic-manager` | `manager/generic`   | `villas-kind-generic-manager` |

use std::sync::Arc;
use villas_sdk::Kind;

/// Every built-in kind compiled into this build.
pub fn builtin_kinds() -> Vec<Arc<dyn Kind>> {
    #[allow(unused_mut)] // with every kind feature off
    let mut kinds: Vec<Arc<dyn Kind>> = Vec::new();
    #[cfg(feature = "dummy")]
    kinds.push(Arc::new(villas_kind_dummy::DummyKind));
    #[cfg(feature = "generic-manager")]
    kinds.push(Arc::new(villas_kind_generic_manager::GenericManagerKind));
    #[cfg(feature = "generic")]
    kinds.push(Arc::new(villas_kind_generic::GenericKind::default()));
    kinds
}
