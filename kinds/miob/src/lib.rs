//! # villas-kind-miob
//!
//! The `manager`/`miob` kind: a generic manager (`create` and `delete` as
//! `manager/generic`, through `villas_sdk::typed::manage`) whose status
//! adds the host's telemetry under `status.telemetry`, as the reference's
//! MIOB manager does (see [`telemetry`]). Sampling runs on a thread of its
//! own every `telemetry_interval` seconds (default 5); the status shows
//! the latest sample, so a status never waits for it.

pub mod telemetry;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::Duration;
use telemetry::{Cache, Sampler};
use villas_sdk::typed::manage::{self, CreateParameters, DeleteParameters};
use villas_sdk::typed::{Actions, Ctx, TypedComponent, TypedKind};
use villas_sdk::{ComponentSpec, ErrorCode, ErrorInfo};

/// The `manager`/`miob` kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct MiobKind;

/// The MIOB manager's own properties.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct MiobProperties {
    /// Seconds between two telemetry samples.
    #[serde(default = "default_interval")]
    #[schemars(range(min = 0.1, max = 3600))]
    pub telemetry_interval: f64,
}

fn default_interval() -> f64 {
    5.0
}

impl TypedKind for MiobKind {
    const CATEGORY: &'static str = "manager";
    const TYPE_NAME: &'static str = "miob";
    type Properties = MiobProperties;
    type Component = Miob;

    fn build(&self, _spec: &ComponentSpec, properties: MiobProperties) -> Result<Miob, ErrorInfo> {
        let cache = Cache::default();
        let sampler = Sampler::start(
            cache.clone(),
            Duration::from_secs_f64(properties.telemetry_interval),
        )
        .map_err(|e| {
            ErrorInfo::new(
                ErrorCode::Failed,
                format!("cannot start the telemetry sampler: {e}"),
            )
        })?;
        Ok(Miob {
            cache,
            sampler: Some(sampler),
        })
    }
}

/// One MIOB manager.
#[derive(Debug)]
pub struct Miob {
    /// The latest telemetry sample.
    cache: Cache,
    /// Its sampler thread (ends when dropped).
    sampler: Option<Sampler>,
}

impl Miob {
    fn create(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        create: CreateParameters,
    ) -> Result<(), ErrorInfo> {
        manage::create(ctx, create)
    }

    fn delete(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        delete: DeleteParameters,
    ) -> Result<(), ErrorInfo> {
        manage::delete(ctx, delete)
    }
}

impl TypedComponent for Miob {
    type Timer = ();
    type Output = ();

    fn actions(actions: &mut Actions<Self>) {
        actions.create(Self::create).delete(Self::delete);
    }

    fn status_fields(&self, fields: &mut Map<String, Value>) {
        fields.insert("telemetry".into(), self.cache.get());
    }

    fn on_remove(&mut self) {
        self.sampler = None;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;
    use villas_sdk::testing::Harness;
    use villas_sdk::ActionKind;

    #[test]
    fn it_creates_like_the_generic_manager_and_publishes_the_same_schemas() {
        let mut h = Harness::typed(MiobKind, json!({})).unwrap();
        h.act(
            ActionKind::Create,
            json!({"category": "simulator", "type": "dummy"}),
        )
        .unwrap();
        assert_eq!(h.manager().unwrap().created.len(), 1);
        let schemas = MiobKind.into_kind().schemas();
        assert!(schemas["create"]["properties"]["category"].is_object());
        assert!(schemas["delete"]["properties"]["uuid"].is_object());
    }
}
