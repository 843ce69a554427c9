//! # villas-kind-rscad
//!
//! The `simulator`/`rscad` kind: an RTDS simulator run from RSCAD. RTDS
//! offers no documented remote control API that this daemon could drive
//! (RSCAD's scripting runs inside the vendor's Windows tools): the type is
//! accepted in configurations (so a lab lists its targets and VILLASweb
//! shows them; the reference crashes while loading such a configuration),
//! `ping` answers with the status, and every control action (`start`,
//! `stop`, `pause`, `resume`, `shutdown`) is refused before the state
//! changes with an error naming the missing vendor API. `reset` goes
//! `resetting -> idle` as for every kind.

use serde_json::{Map, Value};
use villas_sdk::typed::{Actions, NoProperties, TypedComponent, TypedKind};
use villas_sdk::{ActionKind, ComponentSpec, ErrorInfo};

/// What the refusals and the status name as the missing control API.
pub const VENDOR_API: &str = "RTDS RSCAD";

/// The `simulator`/`rscad` kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct RscadKind;

impl TypedKind for RscadKind {
    const CATEGORY: &'static str = "simulator";
    const TYPE_NAME: &'static str = "rscad";
    type Properties = NoProperties;
    type Component = Rscad;

    fn build(&self, _spec: &ComponentSpec, _: NoProperties) -> Result<Rscad, ErrorInfo> {
        Ok(Rscad)
    }
}

/// One RTDS simulator: nothing to hold, it cannot be controlled.
#[derive(Debug)]
pub struct Rscad;

impl TypedComponent for Rscad {
    type Timer = ();
    type Output = ();

    /// None: every control action is refused (before the state changes).
    fn actions(_: &mut Actions<Self>) {}

    fn unsupported(&self, action: ActionKind) -> Option<String> {
        Some(format!(
            "{action} is not supported: the vendor's control API ({VENDOR_API}) is not available to villas-controller"
        ))
    }

    fn status_fields(&self, fields: &mut Map<String, Value>) {
        fields.insert(
            "control_api".into(),
            serde_json::json!({"vendor": VENDOR_API, "available": false}),
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;
    use villas_sdk::testing::Harness;
    use villas_sdk::{ErrorCode, State};

    #[test]
    fn every_control_action_is_refused_with_the_state_kept() {
        let mut h = Harness::typed(RscadKind, json!({"name": "NovaCor"})).unwrap();
        for kind in [
            ActionKind::Start,
            ActionKind::Stop,
            ActionKind::Pause,
            ActionKind::Resume,
            ActionKind::Shutdown,
        ] {
            let error = h.act(kind, json!({})).unwrap_err();
            assert_eq!(error.code, ErrorCode::Unsupported);
            assert!(error.message.contains("vendor's control API"), "{error}");
            assert_eq!(h.state(), State::Idle);
        }
        assert_eq!(h.status()["status"]["control_api"]["available"], false);
    }
}
