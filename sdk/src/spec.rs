//! The definition of a component instance: its identity and the properties
//! it was configured or created with.

use crate::protocol::action::json_type_name;
use crate::protocol::{ErrorCode, ErrorInfo, Identity};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// A component's definition, checked: what a kind is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentSpec {
    /// Addressing identity (uuid, category, type, realm).
    pub identity: Identity,
    /// Display name.
    pub name: String,
    /// Every property as given (published as `properties`, with the
    /// identity written over it).
    pub properties: Map<String, Value>,
    /// The component's own working area, set by the daemon before the kind
    /// builds it (see [`ComponentSpec::data_dir`]).
    data_dir: Option<PathBuf>,
}

/// What is wrong with a component definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A required property is missing.
    #[error("property {0:?} is required")]
    Missing(&'static str),
    /// A property has the wrong JSON type.
    #[error("property {key:?} must be {expected}, not {found}")]
    WrongType {
        /// The property.
        key: &'static str,
        /// The type wanted.
        expected: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// `uuid` is not a uuid.
    #[error("property \"uuid\" is not a valid uuid: {0:?}")]
    BadUuid(String),
}

impl SpecError {
    /// As a published error.
    pub fn to_error_info(&self) -> ErrorInfo {
        ErrorInfo::new(ErrorCode::InvalidParameters, self.to_string())
    }
}

impl ComponentSpec {
    /// Checks a definition (a config entry or `create` parameters). A
    /// missing or null `uuid` gets a new random one; `name` defaults to
    /// `"<type> <category>"`. Properties the kind does not know are kept and
    /// published, as the reference does.
    pub fn from_properties(mut properties: Map<String, Value>) -> Result<Self, SpecError> {
        let category = required_string(&properties, "category")?;
        let type_name = required_string(&properties, "type")?;
        let realm = optional_string(&properties, "realm")?;
        let uuid = match properties.get("uuid") {
            None | Some(Value::Null) => Uuid::new_v4(),
            Some(Value::String(text)) => {
                Uuid::parse_str(text).map_err(|_| SpecError::BadUuid(text.clone()))?
            }
            Some(other) => {
                return Err(SpecError::WrongType {
                    key: "uuid",
                    expected: "a string",
                    found: json_type_name(other),
                })
            }
        };
        let name = optional_string(&properties, "name")?
            .unwrap_or_else(|| format!("{type_name} {category}"));
        let identity = Identity {
            realm,
            category,
            type_name,
            uuid: uuid.hyphenated().to_string(),
        };
        properties.insert("uuid".into(), identity.uuid.clone().into());
        properties.insert("name".into(), name.clone().into());
        Ok(ComponentSpec {
            identity,
            name,
            properties,
            data_dir: None,
        })
    }

    /// The component's data directory: a directory that exists, belongs to
    /// this component alone and survives daemon restarts (the daemon's
    /// `state_dir/components/<uuid>/data`). `None` when the daemon runs
    /// without a state directory, and while the configuration is only
    /// being checked: a kind must not require it in [`crate::Kind::build`].
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    /// Sets the data directory (the daemon does, before building).
    pub fn set_data_dir(&mut self, dir: Option<PathBuf>) {
        self.data_dir = dir;
    }

    /// The uuid.
    pub fn uuid(&self) -> &str {
        &self.identity.uuid
    }

    /// The `properties` object to publish: every property, with the
    /// identity and the fields VILLASweb reads always present.
    pub fn published_properties(&self) -> Value {
        let mut out = self.properties.clone();
        for key in ["location", "owner", "description", "ws_url", "api_url"] {
            out.entry(key)
                .or_insert_with(|| Value::String(String::new()));
        }
        let id = &self.identity;
        out.insert("uuid".into(), id.uuid.clone().into());
        out.insert("category".into(), id.category.clone().into());
        out.insert("type".into(), id.type_name.clone().into());
        out.insert(
            "realm".into(),
            id.realm.clone().map_or(Value::Null, Value::String),
        );
        out.insert("name".into(), self.name.clone().into());
        Value::Object(out)
    }
}

/// The form component uuids are kept in (hyphenated, lower case), for
/// looking one up from a client's spelling; text that is no uuid is
/// returned as it is (and will match nothing).
pub fn canonical_uuid(text: &str) -> String {
    Uuid::parse_str(text).map_or_else(|_| text.to_owned(), |u| u.hyphenated().to_string())
}

fn required_string(
    properties: &Map<String, Value>,
    key: &'static str,
) -> Result<String, SpecError> {
    optional_string(properties, key)?.ok_or(SpecError::Missing(key))
}

fn optional_string(
    properties: &Map<String, Value>,
    key: &'static str,
) -> Result<Option<String>, SpecError> {
    match properties.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(SpecError::WrongType {
            key,
            expected: "a string",
            found: json_type_name(other),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn generates_uuid_when_absent_or_null() {
        let a =
            ComponentSpec::from_properties(props(json!({"category":"simulator","type":"dummy"})))
                .unwrap();
        let b = ComponentSpec::from_properties(props(
            json!({"category":"simulator","type":"dummy","uuid":null}),
        ))
        .unwrap();
        assert_ne!(a.uuid(), b.uuid());
        assert_eq!(a.name, "dummy simulator");
        assert!(Uuid::parse_str(a.uuid()).is_ok());
    }

    #[test]
    fn canonical_uuid_accepts_any_spelling() {
        let canonical = "3ddd318e-fee1-46d7-bff4-7c064d640d4e";
        assert_eq!(
            canonical_uuid("3DDD318EFEE146D7BFF47C064D640D4E"),
            canonical
        );
        assert_eq!(canonical_uuid(canonical), canonical);
        assert_eq!(canonical_uuid("not-a-uuid"), "not-a-uuid");
    }

    #[test]
    fn canonicalises_uuid() {
        let s = ComponentSpec::from_properties(props(json!({"category":"simulator","type":"dummy","uuid":"3DDD318E-FEE1-46D7-BFF4-7C064D640D4E"}))).unwrap();
        assert_eq!(s.uuid(), "3ddd318e-fee1-46d7-bff4-7c064d640d4e");
    }

    #[test]
    fn rejects_bad_definitions() {
        assert_eq!(
            ComponentSpec::from_properties(props(json!({"type":"dummy"}))),
            Err(SpecError::Missing("category"))
        );
        assert!(matches!(
            ComponentSpec::from_properties(props(json!({"category":1,"type":"dummy"}))),
            Err(SpecError::WrongType {
                key: "category",
                ..
            })
        ));
        assert!(matches!(
            ComponentSpec::from_properties(props(
                json!({"category":"simulator","type":"dummy","uuid":"nope"})
            )),
            Err(SpecError::BadUuid(_))
        ));
        assert!(matches!(
            ComponentSpec::from_properties(props(
                json!({"category":"simulator","type":"dummy","uuid":7})
            )),
            Err(SpecError::WrongType { key: "uuid", .. })
        ));
    }

    #[test]
    fn published_properties_carry_what_villasweb_reads() {
        let s = ComponentSpec::from_properties(props(
            json!({"category":"simulator","type":"dummy","whitelist":["x"]}),
        ))
        .unwrap();
        let p = s.published_properties();
        for key in [
            "uuid",
            "name",
            "description",
            "location",
            "owner",
            "ws_url",
            "api_url",
            "category",
            "type",
            "realm",
        ] {
            assert!(p.get(key).is_some(), "{key}");
        }
        assert_eq!(p["whitelist"], json!(["x"]));
    }
}
