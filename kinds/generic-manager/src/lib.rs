//! # villas-kind-generic-manager
//!
//! The `manager`/`generic` kind: creates and deletes components of any
//! kind the daemon knows, in this daemon. Its status lists what it
//! manages.
//!
//! `create` parameters are the new component's properties (`category` and
//! `type` required; `uuid` optional: a new v4 uuid is generated when it is
//! absent or null; `name` optional: `"<type> <category>"` by default, as
//! for configured components; the reference accepts a `create` without
//! it too). A nested `properties` object, as the protocol page
//! shows it, is merged in (top-level keys win). `delete` takes `{"uuid"}`.
//!
//! For chaos testing of the supervision tree only: a manager configured
//! with the property `chaos: true` panics on a `create` whose parameters
//! hold `"chaos": "panic"` (without the property such a `create` is an
//! ordinary one).

use schemars::JsonSchema;
use serde::Deserialize;
use villas_sdk::typed::manage::{self, CreateParameters, DeleteParameters};
use villas_sdk::typed::{Actions, Ctx, TypedComponent, TypedKind};
use villas_sdk::{ComponentSpec, ErrorInfo};

/// The `manager`/`generic` kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct GenericManagerKind;

/// The generic manager's own properties.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct GenericManagerProperties {
    /// Chaos testing only: panic on a `create` whose parameters hold
    /// `"chaos": "panic"`.
    #[serde(default)]
    pub chaos: bool,
}

impl TypedKind for GenericManagerKind {
    const CATEGORY: &'static str = "manager";
    const TYPE_NAME: &'static str = "generic";
    type Properties = GenericManagerProperties;
    type Component = GenericManager;

    fn build(
        &self,
        _spec: &ComponentSpec,
        properties: GenericManagerProperties,
    ) -> Result<GenericManager, ErrorInfo> {
        Ok(GenericManager {
            chaos: properties.chaos,
        })
    }
}

/// One generic manager.
#[derive(Debug)]
pub struct GenericManager {
    /// Chaos testing is enabled by the manager's configuration.
    chaos: bool,
}

impl GenericManager {
    fn create(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        create: CreateParameters,
    ) -> Result<(), ErrorInfo> {
        if self.chaos
            && create
                .extra()
                .get("chaos")
                .and_then(serde_json::Value::as_str)
                == Some("panic")
        {
            panic!("chaos: the manager crashed while creating a component");
        }
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

impl TypedComponent for GenericManager {
    type Timer = ();
    type Output = ();

    fn actions(actions: &mut Actions<Self>) {
        actions.create(Self::create).delete(Self::delete);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use villas_sdk::testing::Harness;
    use villas_sdk::{ActionKind, ErrorCode, State};

    fn manager() -> Harness {
        Harness::typed(GenericManagerKind, json!({})).unwrap()
    }

    /// Carries out a `create` or `delete`: the manager's state never
    /// changes, and it publishes its status once, with the error it
    /// returned.
    fn act(m: &mut Harness, kind: ActionKind, parameters: Value) -> Option<ErrorCode> {
        let outcome = m.act(kind, parameters).err().map(|e| e.code);
        assert_eq!(
            m.state(),
            State::Idle,
            "create/delete never change the manager's state"
        );
        match &m.published()[..] {
            [published] => {
                assert_eq!(
                    published.error.as_ref().map(|e| e.code),
                    outcome,
                    "published and returned errors differ"
                );
                outcome
            }
            other => panic!("unexpected publications {other:?}"),
        }
    }

    fn created(m: &mut Harness) -> Vec<ComponentSpec> {
        m.manager()
            .map(|ops| ops.created.clone())
            .unwrap_or_default()
    }

    #[test]
    fn create_merges_nested_properties_and_generates_uuids() {
        let mut m = manager();
        let params = json!({"name": "S", "category": "simulator", "type": "dummy", "location": "top",
                            "properties": {"location": "nested", "transition_delay": 0.1}});
        assert_eq!(act(&mut m, ActionKind::Create, params.clone()), None);
        assert_eq!(act(&mut m, ActionKind::Create, params), None);
        let [a, b] = &created(&mut m)[..] else {
            panic!()
        };
        assert_ne!(a.uuid(), b.uuid());
        assert_eq!(a.properties["location"], "top");
        assert_eq!(a.properties["transition_delay"], 0.1);
        assert!(a.properties.get("properties").is_none());
    }

    #[test]
    fn create_keeps_every_property_as_sent() {
        let mut m = manager();
        let uuid = "3ddd318e-fee1-46d7-bff4-7c064d640d4e";
        let params = json!({"category": "simulator", "type": "dummy", "uuid": null, "whitelist": ["^x$"],
                            "restart": "never", "properties": {"uuid": uuid, "shell": true}});
        assert_eq!(act(&mut m, ActionKind::Create, params), None);
        let [spec] = &created(&mut m)[..] else {
            panic!()
        };
        assert_ne!(
            spec.uuid(),
            uuid,
            "a top-level null uuid wins over the nested one"
        );
        assert_eq!(spec.properties["whitelist"], json!(["^x$"]));
        assert_eq!(spec.properties["restart"], "never");
        assert_eq!(spec.properties["shell"], true);
        let params =
            json!({"category": "simulator", "type": "dummy", "properties": {"uuid": uuid}});
        assert_eq!(act(&mut m, ActionKind::Create, params), None);
        assert_eq!(created(&mut m)[1].uuid(), uuid, "the nested uuid fills in");
    }

    #[test]
    fn create_without_name_gets_the_default_name() {
        let mut m = manager();
        let params = json!({"category": "simulator", "type": "dummy"});
        assert_eq!(act(&mut m, ActionKind::Create, params), None);
        assert_eq!(created(&mut m)[0].name, "dummy simulator");
    }

    #[test]
    fn create_and_delete_refusals() {
        let mut m = manager();
        let uuid = "3ddd318e-fee1-46d7-bff4-7c064d640d4e";
        let params = json!({"name": "S", "category": "simulator", "type": "dummy", "uuid": uuid});
        assert_eq!(act(&mut m, ActionKind::Create, params.clone()), None);
        assert_eq!(
            act(&mut m, ActionKind::Create, params),
            Some(ErrorCode::DuplicateUuid)
        );
        assert_eq!(
            act(
                &mut m,
                ActionKind::Create,
                json!({"name": "S", "type": "dummy"})
            ),
            Some(ErrorCode::InvalidParameters)
        );
        assert_eq!(
            act(
                &mut m,
                ActionKind::Create,
                json!({"name": "S", "category": "simulator", "type": "dummy", "uuid": "xyz"})
            ),
            Some(ErrorCode::InvalidParameters)
        );
        assert_eq!(
            act(
                &mut m,
                ActionKind::Create,
                json!({"category": "simulator", "type": "dummy", "owner": null})
            ),
            Some(ErrorCode::InvalidParameters)
        );
        assert_eq!(act(&mut m, ActionKind::Delete, json!({"uuid": uuid})), None);
        assert_eq!(
            act(&mut m, ActionKind::Delete, json!({"uuid": uuid})),
            Some(ErrorCode::UnknownComponent)
        );
        assert_eq!(
            act(&mut m, ActionKind::Delete, json!({})),
            Some(ErrorCode::InvalidParameters)
        );
        assert_eq!(
            act(&mut m, ActionKind::Start, json!({})),
            Some(ErrorCode::Unsupported)
        );
    }

    #[test]
    fn a_chaos_manager_panics_on_a_chaos_create_only() {
        let params = json!({"category": "simulator", "type": "dummy", "chaos": "panic"});
        let mut ordinary = manager();
        assert_eq!(act(&mut ordinary, ActionKind::Create, params.clone()), None);
        assert_eq!(created(&mut ordinary)[0].properties["chaos"], "panic");
        let mut chaotic = Harness::typed(GenericManagerKind, json!({"chaos": true})).unwrap();
        assert_eq!(
            chaotic
                .act(ActionKind::Create, params)
                .err()
                .map(|e| e.code),
            Some(ErrorCode::Crashed)
        );
        assert_eq!(chaotic.state(), State::Error);
    }

    #[test]
    fn the_published_schemas_are_the_ones_villasweb_draws() {
        let kind = GenericManagerKind.into_kind();
        villas_sdk::testing::check_villasweb_schemas(kind.as_ref()).unwrap();
        let schemas = kind.schemas();
        let create = &schemas["create"];
        assert_eq!(create["default"], json!({}));
        assert_eq!(create["required"], json!(["category", "type"]));
        assert_eq!(create["additionalProperties"], true);
        let text = |title: &str, example: &str| json!({"type": "string", "title": title, "default": "", "examples": [example]});
        let properties = &create["properties"];
        assert_eq!(
            properties["name"],
            text(
                "Component name (default: \"<type> <category>\")",
                "Generic Simulator #1"
            )
        );
        assert_eq!(
            properties["category"],
            text("Component category", "simulator")
        );
        assert_eq!(properties["type"], text("Component type", "dummy"));
        assert_eq!(
            properties["location"],
            text("Component location", "Richard's PC")
        );
        assert_eq!(properties["uuid"]["type"], json!(["string", "null"]));
        assert_eq!(properties["uuid"]["default"], Value::Null);
        assert!(properties["uuid"]["pattern"].is_string());
        assert_eq!(properties["properties"]["type"], "object");
        assert_eq!(
            schemas["delete"],
            json!({
                "$schema": "http://json-schema.org/draft-07/schema",
                "type": "object",
                "required": ["uuid"],
                "properties": {"uuid": {"type": "string", "title": "The uuid of the component to delete"}}
            })
        );
    }
}
