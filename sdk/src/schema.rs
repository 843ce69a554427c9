//! JSON schemas of a kind, compiled once and shared by all its instances.

use crate::protocol::action::cut;
use crate::protocol::status::raw_json;
use crate::protocol::{ErrorCode, ErrorInfo};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The longest schema error message and path published, in characters.
const SCHEMA_ECHO_LIMIT: usize = 256;

/// A kind's schemas by action name (`start`, `create`, ...), compiled.
pub struct Schemas {
    /// Compiled validators by action name.
    validators: HashMap<String, jsonschema::Validator>,
    /// The `schema` object published in every status, serialised once.
    published: Box<RawValue>,
}

impl std::fmt::Debug for Schemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schemas")
            .field("actions", &self.validators.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A schema document that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {action:?} schema is invalid: {reason}")]
pub struct SchemaError {
    /// Which action's schema.
    pub action: String,
    /// The compiler's reason.
    pub reason: String,
}

impl Schemas {
    /// Compiles every schema (draft 2020-12 by default; `$schema` selects
    /// draft-07 and the others).
    pub fn compile(schemas: Map<String, Value>) -> Result<Self, SchemaError> {
        let mut validators = HashMap::with_capacity(schemas.len());
        for (action, schema) in &schemas {
            let validator = jsonschema::validator_for(schema).map_err(|e| SchemaError {
                action: action.clone(),
                reason: e.to_string(),
            })?;
            validators.insert(action.clone(), validator);
        }
        Ok(Schemas {
            validators,
            published: raw_json(&Value::Object(schemas)),
        })
    }

    /// The `schema` object to publish.
    pub fn published(&self) -> &RawValue {
        &self.published
    }

    /// Validates an action's parameters. Actions without a schema accept
    /// anything. The error names the failing instance path and schema path.
    pub fn validate(&self, action: &str, parameters: &Map<String, Value>) -> Result<(), ErrorInfo> {
        let Some(validator) = self.validators.get(action) else {
            return Ok(());
        };
        let instance = Value::Object(parameters.clone());
        let outcome = match validator.iter_errors(&instance).next() {
            None => Ok(()),
            Some(error) => {
                // The error quotes the offending value, and the path its
                // keys: both are a client's text, echoed cut.
                let path = cut(&error.instance_path().to_string(), SCHEMA_ECHO_LIMIT);
                Err(ErrorInfo::new(
                    ErrorCode::InvalidParameters,
                    format!(
                        "invalid {action} parameters: {}",
                        cut(&error.to_string(), SCHEMA_ECHO_LIMIT)
                    ),
                )
                .with(
                    "path",
                    if path.is_empty() {
                        "/".to_owned()
                    } else {
                        path
                    },
                )
                .with("schema_path", error.schema_path().to_string())
                .with("action", action))
            }
        };
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schemas() -> Schemas {
        let mut map = Map::new();
        map.insert(
            "start".into(),
            json!({"$schema":"http://json-schema.org/draft-07/schema","type":"object",
                   "properties":{"runtime":{"type":"number","minimum":0}}}),
        );
        Schemas::compile(map).unwrap()
    }

    #[test]
    fn valid_and_invalid_parameters() {
        let s = schemas();
        let ok = json!({"runtime": 2}).as_object().cloned().unwrap();
        assert!(s.validate("start", &ok).is_ok());
        let bad = json!({"runtime": "long"}).as_object().cloned().unwrap();
        let error = s.validate("start", &bad).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidParameters);
        assert_eq!(error.details["path"], "/runtime");
        assert!(s.validate("stop", &bad).is_ok());
    }

    #[test]
    fn errors_echo_a_clients_value_cut() {
        let huge = "9".repeat(100_000);
        let bad = json!({"runtime": huge}).as_object().cloned().unwrap();
        let error = schemas().validate("start", &bad).unwrap_err();
        assert!(error.message.len() < 1_000, "{}", error.message.len());
        let key = "k".repeat(100_000);
        let mut map = Map::new();
        map.insert(
            "start".into(),
            json!({"type":"object","additionalProperties":{"type":"number"}}),
        );
        let s = Schemas::compile(map).unwrap();
        let bad = json!({ key: "x" }).as_object().cloned().unwrap();
        let error = s.validate("start", &bad).unwrap_err();
        assert!(error.details["path"].as_str().unwrap().len() < 1_000);
    }

    #[test]
    fn published_is_the_schema_object() {
        let v: Value = serde_json::from_str(schemas().published().get()).unwrap();
        assert!(v["start"].is_object());
    }

    #[test]
    fn broken_schema_is_an_error() {
        let mut map = Map::new();
        map.insert("start".into(), json!({"type": 12}));
        assert!(Schemas::compile(map).is_err());
    }
}
