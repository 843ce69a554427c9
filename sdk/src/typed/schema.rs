//! JSON schemas generated from Rust types (schemars, draft-07, every
//! subschema inlined: the shape VILLASweb draws its forms from), and the
//! typed properties of a definition, checked against their schema and then
//! parsed by serde.

use crate::protocol::action::cut;
use crate::protocol::{ErrorCode, ErrorInfo};
use crate::spec::ComponentSpec;
use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The `$schema` of every published schema: draft-07, spelled as the
/// built-in kinds always published it.
const DRAFT_07: &str = "http://json-schema.org/draft-07/schema";

/// The longest schema error message echoed, in characters.
const ECHO_LIMIT: usize = 256;

/// Properties every component may have whatever its kind (identity, what
/// VILLASweb shows, placement and supervision): taken out before a kind's
/// `Properties` are parsed, so a kind that refuses unknown properties
/// (`#[serde(deny_unknown_fields)]`) still accepts them.
pub const COMMON_PROPERTIES: &[&str] = &[
    "uuid",
    "name",
    "category",
    "type",
    "realm",
    "location",
    "owner",
    "description",
    "ws_url",
    "api_url",
    "manager",
    "enabled",
    "restart",
    "restart_budget",
    "restart_backoff",
];

/// Number formats schemars adds (`"format": "double"`) that are no JSON
/// Schema formats: form libraries warn about them, validators ignore them.
const NUMBER_FORMATS: &[&str] = &[
    "double", "float", "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16",
    "uint32", "uint64",
];

/// The draft-07 schema of `T`, as published: subschemas inlined; no
/// title made up from the Rust type's name; no number formats; an optional
/// field (an `Option` that may be left out) does not accept `null` unless
/// its default is `null` (an `Option` field with `#[serde(default)]`).
pub fn schema_for<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft07()
        .with(|settings| {
            settings.inline_subschemas = true;
            settings.meta_schema = Some(DRAFT_07.into());
        })
        .into_generator();
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    if let Value::Object(root) = &mut schema {
        if root.get("title").and_then(Value::as_str) == Some(T::schema_name().as_ref()) {
            root.remove("title");
        }
    }
    tidy(&mut schema);
    schema
}

/// Applies the publishing rules of [`schema_for`] to a schema and all its
/// subschemas.
fn tidy(schema: &mut Value) {
    let Value::Object(object) = schema else {
        return;
    };
    if object
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|format| NUMBER_FORMATS.contains(&format))
    {
        object.remove("format");
    }
    let required: Vec<String> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if let Some(Value::Object(properties)) = object.get_mut("properties") {
        for (name, property) in properties.iter_mut() {
            let null_default = property.get("default") == Some(&Value::Null);
            if !required.contains(name) && !null_default {
                drop_null(property);
            }
        }
    }
    for value in object.values_mut() {
        match value {
            Value::Object(_) => tidy(value),
            Value::Array(items) => items.iter_mut().for_each(tidy),
            _ => {}
        }
    }
}

/// Takes `null` out of what a schema accepts (`type`, `enum`, and the
/// `anyOf: [T, {type: null}]` of an optional subschema).
fn drop_null(schema: &mut Value) {
    let Value::Object(object) = schema else {
        return;
    };
    if let Some(Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            object.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(values)) = object.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    let inner = match object.get("anyOf").and_then(Value::as_array) {
        Some(choices) if choices.len() == 2 => {
            let is_null = |v: &Value| v.get("type").and_then(Value::as_str) == Some("null");
            match (is_null(&choices[0]), is_null(&choices[1])) {
                (true, false) => Some(choices[1].clone()),
                (false, true) => Some(choices[0].clone()),
                _ => None,
            }
        }
        _ => None,
    };
    if let Some(Value::Object(inner)) = inner {
        object.remove("anyOf");
        for (key, value) in inner {
            object.entry(key).or_insert(value);
        }
    }
}

/// A kind's `Properties` schema, compiled once.
pub(crate) struct PropertiesSchema {
    /// The validator, or why the generated schema does not compile.
    validator: Result<jsonschema::Validator, String>,
}

impl PropertiesSchema {
    /// Generates and compiles the schema of `T`.
    pub(crate) fn of<T: JsonSchema>() -> Self {
        let validator = jsonschema::validator_for(&schema_for::<T>()).map_err(|e| e.to_string());
        PropertiesSchema { validator }
    }

    /// The kind's properties of `spec`: the common ones and those set to
    /// `null` (= absent) left out, checked against the schema (the error
    /// names the property), then parsed.
    pub(crate) fn parse<T: DeserializeOwned>(&self, spec: &ComponentSpec) -> Result<T, ErrorInfo> {
        let validator = self.validator.as_ref().map_err(|reason| {
            ErrorInfo::new(
                ErrorCode::Failed,
                format!("the kind's properties schema is invalid: {reason}"),
            )
        })?;
        let own: Map<String, Value> = spec
            .properties
            .iter()
            .filter(|(key, value)| !value.is_null() && !COMMON_PROPERTIES.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let own = Value::Object(own);
        if let Some(error) = validator.iter_errors(&own).next() {
            let path = error.instance_path().to_string();
            let name = cut(path.trim_start_matches('/'), ECHO_LIMIT);
            let message = cut(&error.to_string(), ECHO_LIMIT);
            let info = if name.is_empty() {
                ErrorInfo::new(
                    ErrorCode::InvalidParameters,
                    format!("properties: {message}"),
                )
            } else {
                ErrorInfo::new(
                    ErrorCode::InvalidParameters,
                    format!("property {name}: {message}"),
                )
                .with("property", name)
            };
            return Err(info);
        }
        serde_json::from_value(own).map_err(|error| {
            ErrorInfo::new(
                ErrorCode::InvalidParameters,
                format!("properties: {}", cut(&error.to_string(), ECHO_LIMIT)),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Parameters {
        /// How long.
        #[schemars(range(min = 0))]
        runtime: Option<f64>,
        #[serde(default)]
        uuid: Option<String>,
        mode: Option<Mode>,
        nested: Option<Nested>,
        count: u32,
    }

    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    #[allow(dead_code)]
    enum Mode {
        Fast,
        Slow,
    }

    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Nested {
        depth: Option<u8>,
    }

    #[test]
    fn published_schemas_follow_the_rules() {
        let schema = schema_for::<Parameters>();
        assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema");
        assert_eq!(schema["type"], "object");
        assert!(schema.get("title").is_none(), "{schema}");
        assert!(schema.get("definitions").is_none(), "inlined: {schema}");
        let properties = &schema["properties"];
        assert_eq!(
            properties["runtime"],
            json!({"description": "How long.", "type": "number", "minimum": 0})
        );
        assert_eq!(
            properties["uuid"]["type"],
            json!(["string", "null"]),
            "null is the default, so it is accepted"
        );
        assert_eq!(
            properties["mode"],
            json!({"type": "string", "enum": ["fast", "slow"]})
        );
        assert_eq!(properties["nested"]["type"], "object", "{schema}");
        assert!(properties["nested"].get("anyOf").is_none(), "{schema}");
        assert_eq!(
            properties["nested"]["properties"]["depth"]["type"],
            "integer"
        );
        assert_eq!(properties["count"]["type"], "integer");
        assert!(properties["count"].get("format").is_none());
        assert_eq!(schema["required"], json!(["count"]));
    }

    #[test]
    fn properties_are_checked_then_parsed_without_the_common_ones() {
        #[derive(Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        struct Own {
            #[schemars(range(min = 0, max = 10))]
            delay: Option<f64>,
        }
        let schema = PropertiesSchema::of::<Own>();
        let spec = |properties: Value| {
            let Value::Object(mut properties) = properties else {
                unreachable!()
            };
            properties.insert("category".into(), "simulator".into());
            properties.insert("type".into(), "test".into());
            ComponentSpec::from_properties(properties).unwrap()
        };
        let own: Own = schema
            .parse(&spec(
                json!({"delay": 2, "location": "lab", "restart": "never"}),
            ))
            .unwrap();
        assert_eq!(own.delay, Some(2.0));
        let own: Own = schema.parse(&spec(json!({"delay": null}))).unwrap();
        assert_eq!(own.delay, None, "null is absent");
        let error = schema
            .parse::<Own>(&spec(json!({"delay": 11})))
            .err()
            .unwrap();
        assert_eq!(error.code, ErrorCode::InvalidParameters);
        assert!(
            error.message.starts_with("property delay: "),
            "{}",
            error.message
        );
        let error = schema
            .parse::<Own>(&spec(json!({"dleay": 1})))
            .err()
            .unwrap();
        assert!(error.message.contains("dleay"), "{}", error.message);
    }
}
