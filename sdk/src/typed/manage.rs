//! `create` and `delete` as the generic manager carries them out, for
//! every manager kind that creates components in this daemon
//! (`manager/generic`, `manager/miob`): the parameters (whose schemas are
//! the published `schema.create` / `schema.delete`) and the two actions.

use super::{Ctx, TypedComponent};
use crate::protocol::ErrorInfo;
use crate::spec::ComponentSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

// `create` parameters: the new component's properties (published as
// `schema.create`, what VILLASweb draws its create form from: the titles,
// defaults and examples are the form's).
// `create` parameters: the new component's properties. (Plain comments:
// a doc comment would become the published schema's description.)
#[allow(missing_docs)]
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(extend("default" = {}))]
pub struct CreateParameters {
    #[schemars(
        title = "Component name (default: \"<type> <category>\")",
        extend("default" = "", "examples" = ["Generic Simulator #1"])
    )]
    name: Option<String>,
    #[schemars(
        title = "Component owner",
        extend("default" = "", "examples" = ["svg"])
    )]
    owner: Option<String>,
    #[schemars(
        title = "Component realm",
        extend("default" = "", "examples" = ["de.rwth-aachen.eonerc.acs"])
    )]
    realm: Option<String>,
    #[schemars(
        title = "Component category",
        extend("default" = "", "examples" = ["simulator"])
    )]
    category: String,
    #[serde(rename = "type")]
    #[schemars(
        title = "Component type",
        extend("default" = "", "examples" = ["dummy"])
    )]
    type_name: String,
    #[schemars(
        title = "Component location",
        extend("default" = "", "examples" = ["Richard's PC"])
    )]
    location: Option<String>,
    #[schemars(
        title = "Description",
        extend("default" = "", "examples" = ["A dummy simulator"])
    )]
    description: Option<String>,
    #[schemars(
        title = "WebSocket URL",
        extend("default" = "", "examples" = ["https://villas.k8s.eonerc.rwth-aachen.de/ws/relay/generic_1"])
    )]
    ws_url: Option<String>,
    #[schemars(
        title = "API URL",
        extend("default" = "", "examples" = ["https://villas.k8s.eonerc.rwth-aachen.de/api/ic/generic_1"])
    )]
    api_url: Option<String>,
    // Absent (outer `None`) or null (`Some(None)`): a new uuid. Either way
    // the definition keeps what was sent, so a nested `properties.uuid`
    // only fills in an absent one.
    #[serde(default, deserialize_with = "present")]
    #[schemars(
        title = "Component uuid (generated when absent)",
        regex(
            pattern = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
        )
    )]
    uuid: Option<Option<String>>,
    #[schemars(title = "Further type-specific properties")]
    properties: Option<Map<String, Value>>,
    // Every other property of the new component, as sent.
    #[serde(flatten)]
    other: Map<String, Value>,
}

/// Deserialises a field that is present (possibly null) into `Some`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

impl CreateParameters {
    /// The new component's properties: what was sent, with the nested
    /// `properties` merged in (top-level keys win).
    pub fn into_properties(self) -> Map<String, Value> {
        let mut out = self.other;
        let texts = [
            ("name", self.name),
            ("owner", self.owner),
            ("realm", self.realm),
            ("category", Some(self.category)),
            ("type", Some(self.type_name)),
            ("location", self.location),
            ("description", self.description),
            ("ws_url", self.ws_url),
            ("api_url", self.api_url),
        ];
        for (key, text) in texts {
            if let Some(text) = text {
                out.insert(key.into(), text.into());
            }
        }
        if let Some(uuid) = self.uuid {
            out.insert("uuid".into(), uuid.map_or(Value::Null, Value::String));
        }
        for (key, value) in self.properties.unwrap_or_default() {
            out.entry(key).or_insert(value);
        }
        out
    }
}

// `delete` parameters (published as `schema.delete`).
// `delete` parameters.
#[allow(missing_docs)]
#[derive(Debug, Deserialize, JsonSchema)]
pub struct DeleteParameters {
    // The component to delete.
    #[schemars(title = "The uuid of the component to delete")]
    pub uuid: String,
}

impl CreateParameters {
    /// The properties sent besides the common ones (a kind's own).
    pub fn extra(&self) -> &Map<String, Value> {
        &self.other
    }
}

/// Creates the component `create` describes under this manager.
pub fn create<C: TypedComponent>(
    ctx: &mut Ctx<'_, C>,
    create: CreateParameters,
) -> Result<(), ErrorInfo> {
    let spec =
        ComponentSpec::from_properties(create.into_properties()).map_err(|e| e.to_error_info())?;
    ctx.manager()?.create(spec)
}

/// Deletes a component this manager manages.
pub fn delete<C: TypedComponent>(
    ctx: &mut Ctx<'_, C>,
    delete: DeleteParameters,
) -> Result<(), ErrorInfo> {
    ctx.manager()?.delete(&delete.uuid)
}
