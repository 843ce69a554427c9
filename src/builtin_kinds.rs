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
//! | `rtlab`           | `simulator/rtlab`   | `villas-kind-rtlab`           |
//! | `rscad`           | `simulator/rscad`   | `villas-kind-rscad`           |
//! | `dpsim`           | `simulator/dpsim`   | `villas-kind-dpsim`           |
//! | `villas-node-manager` | `manager/villas-node` | `villas-kind-villas-node-manager` |
//! | `villas-node-gateway` | `gateway/villas-node` | `villas-kind-villas-node-gateway` |
//! | `villas-relay-manager` | `manager/villas-relay` | `villas-kind-villas-relay-manager` |
//! | `villas-relay-gateway` | `gateway/villas-relay` | `villas-kind-villas-relay-gateway` |
//! | `miob`            | `manager/miob`      | `villas-kind-miob`            |
//! | `kubernetes`      | `simulator/kubernetes` | `villas-kind-kubernetes`   |
//! | `kubernetes-manager` | `manager/kubernetes` | `villas-kind-kubernetes-manager` |

use std::sync::Arc;
use villas_sdk::Kind;
#[cfg(any(
    feature = "dummy",
    feature = "generic",
    feature = "generic-manager",
    feature = "rtlab",
    feature = "rscad",
    feature = "dpsim",
    feature = "villas-node-manager",
    feature = "villas-node-gateway",
    feature = "villas-relay-manager",
    feature = "villas-relay-gateway",
    feature = "miob",
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
        #[cfg(feature = "rtlab")]
        villas_kind_rtlab::RtlabKind.into_kind(),
        #[cfg(feature = "rscad")]
        villas_kind_rscad::RscadKind.into_kind(),
        #[cfg(feature = "dpsim")]
        villas_kind_dpsim::DpsimKind.into_kind(),
        #[cfg(feature = "villas-node-manager")]
        villas_kind_villas_node_manager::VillasNodeManagerKind.into_kind(),
        #[cfg(feature = "villas-node-gateway")]
        villas_kind_villas_node_gateway::VillasNodeGatewayKind.into_kind(),
        #[cfg(feature = "villas-relay-manager")]
        villas_kind_villas_relay_manager::VillasRelayManagerKind.into_kind(),
        #[cfg(feature = "villas-relay-gateway")]
        villas_kind_villas_relay_gateway::VillasRelayGatewayKind.into_kind(),
        #[cfg(feature = "miob")]
        villas_kind_miob::MiobKind.into_kind(),
        #[cfg(feature = "kubernetes")]
        villas_kind_kubernetes::KubernetesKind.into_kind(),
        #[cfg(feature = "kubernetes-manager")]
        villas_kind_kubernetes_manager::KubernetesManagerKind.into_kind(),
    ]
}
