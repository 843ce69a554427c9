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
//! | `kubernetes`      | `simulator/kubernetes` | `villas-kind-kubernetes`   |
//! | `kubernetes-manager` | `manager/kubernetes` | `villas-kind-kubernetes-manager` |

use std::sync::Arc;
use villas_sdk::Kind;
#[cfg(any(
    feature = "dummy",
    feature = "generic",
    feature = "generic-manager",
    feature = "kubernetes",
    feature = "kubernetes-manager"
))]
use villas_sdk::TypedKind;

/// Every built-in kind compiled into this build.
pub fn builtin_kinds() -> Vec<Arc<dyn Kind>> {
    vec![
        #[cfg(feature = "dummy")]
        villas_kind_dummy::DummyKind.into_kind(),
        #[cfg(feature = "generic-manager")]
        villas_kind_generic_manager::GenericManagerKind.into_kind(),
        #[cfg(feature = "generic")]
        villas_kind_generic::GenericKind::default().into_kind(),
        #[cfg(feature = "kubernetes")]
        villas_kind_kubernetes::KubernetesKind.into_kind(),
        #[cfg(feature = "kubernetes-manager")]
        villas_kind_kubernetes_manager::KubernetesManagerKind.into_kind(),
    ]
}
