//! The `generic` manager: creates and deletes components of any kind this
//! daemon knows, in this daemon. Its status lists what it manages.
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

use serde_json::{json, Map, Value};
use villas_sdk::{
    Action, ActionKind, Component, ComponentSpec, Context, ErrorCode, ErrorInfo, Kind,
};

/// The `manager`/`generic` kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct GenericManagerKind;

impl Kind for GenericManagerKind {
    fn category(&self) -> &'static str {
        "manager"
    }

    fn type_name(&self) -> &'static str {
        "generic"
    }

    fn schemas(&self) -> Map<String, Value> {
        let text = |title: &str, example: &str| json!({"type": "string", "title": title, "default": "", "examples": [example]});
        let mut schemas = Map::new();
        schemas.insert(
            "create".into(),
            json!({
                "$schema": "http://json-schema.org/draft-07/schema",
                "type": "object",
                "default": {},
                "required": ["category", "type"],
                "properties": {
                    "name": text("Component name (default: \"<type> <category>\")", "Generic Simulator #1"),
                    "owner": text("Component owner", "svg"),
                    "realm": text("Component realm", "de.rwth-aachen.eonerc.acs"),
                    "category": text("Component category", "simulator"),
                    "type": text("Component type", "dummy"),
                    "location": text("Component location", "Richard's PC"),
                    "description": text("Description", "A dummy simulator"),
                    "ws_url": text("WebSocket URL", "https://villas.k8s.eonerc.rwth-aachen.de/ws/relay/generic_1"),
                    "api_url": text("API URL", "https://villas.k8s.eonerc.rwth-aachen.de/api/ic/generic_1"),
                    "uuid": {
                        "type": ["string", "null"],
                        "title": "Component uuid (generated when absent)",
                        "default": null,
                        "pattern": "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
                    },
                    "properties": {"type": "object", "title": "Further type-specific properties"}
                },
                "additionalProperties": true
            }),
        );
        schemas.insert(
            "delete".into(),
            json!({
                "$schema": "http://json-schema.org/draft-07/schema",
                "type": "object",
                "required": ["uuid"],
                "properties": {"uuid": {"type": "string", "title": "The uuid of the component to delete"}}
            }),
        );
        schemas
    }

    fn build(&self, spec: &ComponentSpec) -> Result<Box<dyn Component>, ErrorInfo> {
        let chaos = spec.properties.get("chaos") == Some(&Value::Bool(true));
        Ok(Box::new(GenericManager { chaos }))
    }
}

/// One generic manager.
#[derive(Debug)]
pub struct GenericManager {
    /// Chaos testing is enabled by the manager's configuration.
    chaos: bool,
}

impl Component for GenericManager {
    fn actions(&self) -> &'static [ActionKind] {
        &[ActionKind::Create, ActionKind::Delete]
    }

    fn create(&mut self, ctx: &mut Context<'_>, action: &Action) -> Result<(), ErrorInfo> {
        if self.chaos && action.parameters.get("chaos").and_then(Value::as_str) == Some("panic") {
            panic!("chaos: the manager crashed while creating a component");
        }
        let mut properties = action.parameters.clone();
        if let Some(Value::Object(nested)) = properties.remove("properties") {
            for (key, value) in nested {
                properties.entry(key).or_insert(value);
            }
        }
        let spec = ComponentSpec::from_properties(properties).map_err(|e| e.to_error_info())?;
        ctx.manager()?.create(spec)
    }

    fn delete(&mut self, ctx: &mut Context<'_>, action: &Action) -> Result<(), ErrorInfo> {
        let uuid = action
            .parameters
            .get("uuid")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ErrorInfo::new(
                    ErrorCode::InvalidParameters,
                    "delete needs parameter uuid (a string)",
                )
            })?;
        ctx.manager()?.delete(uuid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use villas_sdk::{Driver, Effect, ManagerOps, State};

    #[derive(Default)]
    struct FakeDaemon {
        created: Vec<ComponentSpec>,
    }

    impl ManagerOps for FakeDaemon {
        fn create(&mut self, spec: ComponentSpec) -> Result<(), ErrorInfo> {
            if self.created.iter().any(|c| c.uuid() == spec.uuid()) {
                return Err(ErrorInfo::new(ErrorCode::DuplicateUuid, "dup"));
            }
            self.created.push(spec);
            Ok(())
        }
        fn delete(&mut self, uuid: &str) -> Result<(), ErrorInfo> {
            let before = self.created.len();
            self.created.retain(|c| c.uuid() != uuid);
            if before == self.created.len() {
                return Err(ErrorInfo::new(ErrorCode::UnknownComponent, "unknown"));
            }
            Ok(())
        }
        fn managed(&self) -> Vec<String> {
            self.created.iter().map(|c| c.uuid().to_owned()).collect()
        }
    }

    fn manager() -> Driver {
        let properties = json!({"category": "manager", "type": "generic"});
        Driver::standalone(
            Arc::new(GenericManagerKind),
            properties.as_object().cloned().unwrap(),
        )
        .unwrap()
    }

    fn act(
        d: &mut Driver,
        ops: &mut FakeDaemon,
        kind: ActionKind,
        parameters: Value,
    ) -> Option<ErrorCode> {
        let mut effects = Vec::new();
        let action = Action::new(kind).with_parameters(parameters.as_object().cloned().unwrap());
        let outcome = d
            .handle(&action, Some(ops), &mut effects)
            .err()
            .map(|e| e.code);
        assert_eq!(
            d.state(),
            State::Idle,
            "create/delete never change the manager's state"
        );
        match effects.as_slice() {
            [Effect::Publish { error, .. }] => {
                assert_eq!(
                    error.as_ref().map(|e| e.code),
                    outcome,
                    "published and returned errors differ"
                );
                outcome
            }
            other => panic!("unexpected effects {other:?}"),
        }
    }

    #[test]
    fn create_merges_nested_properties_and_generates_uuids() {
        let (mut d, mut ops) = (manager(), FakeDaemon::default());
        let params = json!({"name": "S", "category": "simulator", "type": "dummy", "location": "top",
                            "properties": {"location": "nested", "transition_delay": 0.1}});
        assert_eq!(
            act(&mut d, &mut ops, ActionKind::Create, params.clone()),
            None
        );
        assert_eq!(act(&mut d, &mut ops, ActionKind::Create, params), None);
        let [a, b] = &ops.created[..] else { panic!() };
        assert_ne!(a.uuid(), b.uuid());
        assert_eq!(a.properties["location"], "top");
        assert_eq!(a.properties["transition_delay"], 0.1);
    }

    #[test]
    fn create_without_name_gets_the_default_name() {
        let (mut d, mut ops) = (manager(), FakeDaemon::default());
        let params = json!({"category": "simulator", "type": "dummy"});
        assert_eq!(act(&mut d, &mut ops, ActionKind::Create, params), None);
        assert_eq!(ops.created[0].name, "dummy simulator");
    }

    #[test]
    fn create_and_delete_refusals() {
        let (mut d, mut ops) = (manager(), FakeDaemon::default());
        let uuid = "3ddd318e-fee1-46d7-bff4-7c064d640d4e";
        let params = json!({"name": "S", "category": "simulator", "type": "dummy", "uuid": uuid});
        assert_eq!(
            act(&mut d, &mut ops, ActionKind::Create, params.clone()),
            None
        );
        assert_eq!(
            act(&mut d, &mut ops, ActionKind::Create, params),
            Some(ErrorCode::DuplicateUuid)
        );
        assert_eq!(
            act(
                &mut d,
                &mut ops,
                ActionKind::Create,
                json!({"name": "S", "type": "dummy"})
            ),
            Some(ErrorCode::InvalidParameters)
        );
        assert_eq!(
            act(
                &mut d,
                &mut ops,
                ActionKind::Create,
                json!({"name": "S", "category": "simulator", "type": "dummy", "uuid": "xyz"})
            ),
            Some(ErrorCode::InvalidParameters)
        );
        assert_eq!(
            act(&mut d, &mut ops, ActionKind::Delete, json!({"uuid": uuid})),
            None
        );
        assert_eq!(
            act(&mut d, &mut ops, ActionKind::Delete, json!({"uuid": uuid})),
            Some(ErrorCode::UnknownComponent)
        );
        assert_eq!(
            act(&mut d, &mut ops, ActionKind::Delete, json!({})),
            Some(ErrorCode::InvalidParameters)
        );
        assert_eq!(
            act(&mut d, &mut ops, ActionKind::Start, json!({})),
            Some(ErrorCode::Unsupported)
        );
    }
}
