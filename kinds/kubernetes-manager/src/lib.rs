//! # villas-kind-kubernetes-manager
//!
//! The `manager`/`kubernetes` kind: creates `simulator`/`kubernetes`
//! components (one per Job template) that run their Jobs in the
//! manager's `namespace`, and deletes them with everything they created
//! in the cluster.
//!
//! `create` takes the reference's parameters
//! (`etc/params_k8s_create.yaml` of VILLASframework/controller):
//! `{name, location, realm, owner, uuid?, category: simulator, type:
//! kubernetes, properties: {job: <batch/v1 Job>, schema: {...}}}`. The
//! Job template is checked (by the simulator kind) before anything is
//! created; the new component gets the manager's `namespace` and the
//! manager's uuid as its `manager` (the label
//! `villas.fein-aachen.org/ic-manager-uuid` of its objects). `delete`
//! takes `{uuid}`: the component goes `gone` at once, and its Jobs (with
//! their pods) and ConfigMaps, found by the label
//! `villas.fein-aachen.org/ic-uuid`, are deleted; if that fails the
//! manager shows `error` with the reason and deletes them at the next
//! namespace check that passes.
//!
//! The manager checks its namespace with a namespaced `get` (what a
//! service account bound to the namespace may do) when the daemon starts
//! and then every `check_interval`, each request bounded by
//! `api_timeout`. It never blocks the daemon:
//!
//! | manager state | when |
//! |---|---|
//! | `idle` | the namespace answered (or before the first answer) |
//! | `error` (12 `remote-error`) | the API unreachable, stalled past `api_timeout`, answering 401/403/5xx, or the namespace missing; checked again after 1 s, doubling up to 30 s; `idle` again at the first answer |
//!
//! Components it creates get its `namespace`, `api_timeout` and
//! `api_grace` (unless their `properties` name their own).

mod cleanup;

use cleanup::KubeError;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::Duration;
use villas_sdk::time::seconds_property;
use villas_sdk::typed::{Actions, Ctx, TypedComponent, TypedKind};
use villas_sdk::{ComponentSpec, ErrorCode, ErrorInfo, State};

/// The `manager`/`kubernetes` kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct KubernetesManagerKind;

/// The manager's own properties.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct KubernetesManagerProperties {
    /// The namespace its components' Jobs run in.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Seconds: the longest wait for a connection to the API and for each
    /// of its answers (its components' too).
    #[serde(default = "default_api_timeout")]
    pub api_timeout: f64,
    /// Seconds the watch of a component's starting or running Job may
    /// fail before the component shows `error` (passed to its components).
    #[serde(default = "default_api_grace")]
    pub api_grace: f64,
    /// Seconds between checks of the namespace while the API answers.
    #[serde(default = "default_check_interval")]
    pub check_interval: f64,
}

fn default_namespace() -> String {
    "default".into()
}

fn default_api_timeout() -> f64 {
    DEFAULT_API_TIMEOUT
}

fn default_api_grace() -> f64 {
    DEFAULT_API_GRACE
}

/// The default `api_timeout` (seconds): simulator/kubernetes's default too.
pub const DEFAULT_API_TIMEOUT: f64 = 10.0;

/// The default `api_grace` (seconds): simulator/kubernetes's default too.
pub const DEFAULT_API_GRACE: f64 = 30.0;

/// The default `check_interval` (seconds).
pub const DEFAULT_CHECK_INTERVAL: f64 = 30.0;

fn default_check_interval() -> f64 {
    DEFAULT_CHECK_INTERVAL
}

impl TypedKind for KubernetesManagerKind {
    const CATEGORY: &'static str = "manager";
    const TYPE_NAME: &'static str = "kubernetes";
    type Properties = KubernetesManagerProperties;
    type Component = KubernetesManager;

    fn build(
        &self,
        spec: &ComponentSpec,
        properties: KubernetesManagerProperties,
    ) -> Result<KubernetesManager, ErrorInfo> {
        Ok(KubernetesManager {
            uuid: spec.uuid().to_owned(),
            namespace: properties.namespace,
            timeout: seconds_property("api_timeout", properties.api_timeout)?,
            api_timeout: properties.api_timeout,
            api_grace: seconds_property("api_grace", properties.api_grace)
                .map(|_| properties.api_grace)?,
            interval: seconds_property("check_interval", properties.check_interval)?,
            cleanup_error: None,
            unclean: Vec::new(),
            api_error: None,
            retry: RETRY_FIRST,
        })
    }
}

/// The component's own properties in a `create` (the reference's
/// `properties`).
#[derive(Debug, Deserialize, JsonSchema)]
struct JobProperties {
    /// The Job template: a `batch/v1` Job manifest.
    job: Map<String, Value>,
    /// A start schema for this component (kept with its properties).
    #[serde(default)]
    schema: Option<Map<String, Value>>,
    /// Its own `api_timeout` (else the manager's).
    #[serde(default)]
    api_timeout: Option<f64>,
    /// Its own `api_grace` (else the manager's).
    #[serde(default)]
    api_grace: Option<f64>,
}

/// `create` parameters, as the reference's `etc/params_k8s_create.yaml`.
#[derive(Debug, Deserialize, JsonSchema)]
struct CreateParameters {
    /// Component name.
    #[serde(default)]
    name: Option<String>,
    /// Component location.
    #[serde(default)]
    location: Option<String>,
    /// Component realm.
    #[serde(default)]
    realm: Option<String>,
    /// Component owner.
    #[serde(default)]
    owner: Option<String>,
    /// Description.
    #[serde(default)]
    description: Option<String>,
    /// Component uuid (generated when absent).
    #[serde(default)]
    uuid: Option<String>,
    /// Must be `simulator`.
    #[serde(default)]
    category: Option<String>,
    /// Must be `kubernetes`.
    #[serde(default, rename = "type")]
    type_name: Option<String>,
    /// The Job template and the start schema.
    properties: JobProperties,
}

/// `delete` parameters.
#[derive(Debug, Deserialize, JsonSchema)]
struct DeleteParameters {
    /// The uuid of the component to delete.
    uuid: String,
}

/// One `manager`/`kubernetes`.
#[derive(Debug)]
pub struct KubernetesManager {
    /// Its uuid (its components' `manager`).
    uuid: String,
    /// Where its components' Jobs run.
    namespace: String,
    /// `api_timeout`.
    timeout: Duration,
    /// `api_timeout` as configured (passed to its components).
    api_timeout: f64,
    /// `api_grace` (passed to its components).
    api_grace: f64,
    /// `check_interval`.
    interval: Duration,
    /// The last failed deletion of a deleted component's objects.
    cleanup_error: Option<String>,
    /// Deleted components whose objects could not be deleted yet: tried
    /// again at every namespace check that passes.
    unclean: Vec<String>,
    /// Why the namespace could not be checked (the API unreachable,
    /// refusing, or the namespace missing), until it can: the message of
    /// the `error` published.
    api_error: Option<String>,
    /// The delay before the next check, after a failed one.
    retry: Duration,
}

/// The first delay before checking the namespace again.
const RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest.
const RETRY_MAX: Duration = Duration::from_secs(30);

/// What the manager's tasks return.
#[derive(Debug)]
pub enum Output {
    /// The objects of a deleted component were deleted (or not).
    Cleaned(String, Result<(), KubeError>),
    /// The namespace was checked.
    Checked(Result<(), KubeError>),
}

/// The manager's timer: check the namespace again.
#[derive(Debug)]
pub struct CheckAgain;

impl KubernetesManager {
    fn create(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        create: CreateParameters,
    ) -> Result<(), ErrorInfo> {
        let wrong = |key: &str, want: &str| {
            ErrorInfo::new(
                ErrorCode::InvalidParameters,
                format!("a manager/kubernetes creates {key} {want} only"),
            )
            .with("property", key)
        };
        if create.category.as_deref().is_some_and(|c| c != "simulator") {
            return Err(wrong("category", "simulator"));
        }
        if create
            .type_name
            .as_deref()
            .is_some_and(|t| t != "kubernetes")
        {
            return Err(wrong("type", "kubernetes"));
        }
        let mut properties = Map::new();
        let texts = [
            ("name", create.name),
            ("location", create.location),
            ("realm", create.realm),
            ("owner", create.owner),
            ("description", create.description),
            ("uuid", create.uuid),
        ];
        for (key, value) in texts {
            if let Some(value) = value {
                properties.insert(key.into(), value.into());
            }
        }
        properties.insert("category".into(), "simulator".into());
        properties.insert("type".into(), "kubernetes".into());
        properties.insert("manager".into(), self.uuid.clone().into());
        properties.insert("namespace".into(), self.namespace.clone().into());
        let timeout = create.properties.api_timeout.unwrap_or(self.api_timeout);
        properties.insert("api_timeout".into(), timeout.into());
        let grace = create.properties.api_grace.unwrap_or(self.api_grace);
        properties.insert("api_grace".into(), grace.into());
        properties.insert("job".into(), Value::Object(create.properties.job));
        if let Some(schema) = create.properties.schema {
            properties.insert("schema".into(), Value::Object(schema));
        }
        let spec = ComponentSpec::from_properties(properties).map_err(|e| e.to_error_info())?;
        ctx.manager()?.create(spec)
    }

    fn delete(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        delete: DeleteParameters,
    ) -> Result<(), ErrorInfo> {
        ctx.manager()?.delete(&delete.uuid)?;
        self.clean(ctx, delete.uuid);
        Ok(())
    }

    /// Deletes the objects of deleted component `uuid`.
    fn clean(&mut self, ctx: &mut Ctx<'_, Self>, uuid: String) {
        let future = cleanup::remove(self.namespace.clone(), uuid.clone(), self.timeout);
        ctx.spawn(async move { Output::Cleaned(uuid, future.await) });
    }

    fn check(&mut self, ctx: &mut Ctx<'_, Self>) {
        let future = cleanup::check_namespace(self.namespace.clone(), self.timeout);
        ctx.spawn(async move { Output::Checked(future.await) });
    }
}

impl TypedComponent for KubernetesManager {
    type Timer = CheckAgain;
    type Output = Output;

    fn actions(actions: &mut Actions<Self>) {
        actions.create(Self::create).delete(Self::delete);
    }

    /// Checks the namespace (never blocking the daemon: an unreachable API
    /// shows as `error` and is checked again with backoff).
    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        self.check(ctx);
        Ok(())
    }

    /// `reset`: `idle`, and the namespace is checked again at once (the
    /// reset cancelled the pending check; the deletions still to do are
    /// tried again with it).
    fn reset(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        self.api_error = None;
        self.cleanup_error = None;
        self.retry = RETRY_FIRST;
        self.check(ctx);
        ctx.transition(State::Idle)
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, _: CheckAgain) -> Result<(), ErrorInfo> {
        self.check(ctx);
        Ok(())
    }

    fn on_task(&mut self, ctx: &mut Ctx<'_, Self>, output: Output) -> Result<(), ErrorInfo> {
        let (uuid, result) = match output {
            Output::Checked(Ok(())) => {
                self.retry = RETRY_FIRST;
                ctx.schedule(self.interval, CheckAgain);
                for uuid in self.unclean.clone() {
                    self.clean(ctx, uuid);
                }
                let recovered = self.api_error.take().is_some() && self.unclean.is_empty();
                if recovered && ctx.state() == State::Error {
                    ctx.reach(State::Idle)?;
                }
                return Ok(());
            }
            Output::Checked(Err(error)) => {
                tracing::warn!(namespace = %self.namespace, %error, "checking the namespace");
                let retry_in = self.retry;
                ctx.schedule(retry_in, CheckAgain);
                self.retry = (self.retry * 2).min(RETRY_MAX);
                let message = format!("namespace {}: {error}", self.namespace);
                if ctx.state() != State::Error || self.api_error.as_ref() != Some(&message) {
                    self.api_error = Some(message.clone());
                    ctx.fail(
                        ErrorInfo::new(ErrorCode::Remote, message)
                            .with("namespace", self.namespace.as_str())
                            .with("retry_in", retry_in.as_secs_f64()),
                    );
                }
                return Ok(());
            }
            Output::Cleaned(uuid, result) => (uuid, result),
        };
        match result {
            Ok(()) => {
                self.unclean.retain(|u| *u != uuid);
                if self.unclean.is_empty() && self.cleanup_error.take().is_some() {
                    if ctx.state() == State::Error && self.api_error.is_none() {
                        ctx.reach(State::Idle)?;
                    } else {
                        ctx.publish_status();
                    }
                }
                Ok(())
            }
            Err(error) => {
                let message = format!("could not delete the Kubernetes objects of {uuid}: {error}");
                if !self.unclean.contains(&uuid) {
                    self.unclean.push(uuid.clone());
                }
                if self.cleanup_error.as_ref() == Some(&message) && ctx.state() == State::Error {
                    return Ok(());
                }
                self.cleanup_error = Some(message.clone());
                Err(ErrorInfo::new(ErrorCode::Remote, message)
                    .with("component", uuid)
                    .with("unclean", self.unclean.clone()))
            }
        }
    }

    fn status_fields(&self, fields: &mut Map<String, Value>) {
        fields.insert("namespace".into(), self.namespace.clone().into());
        if let Some(error) = &self.cleanup_error {
            fields.insert("cleanup_error".into(), error.clone().into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use villas_sdk::testing::Harness;
    use villas_sdk::ActionKind;

    fn reference_params() -> Value {
        json!({"name": "kubernetes simulator", "location": "ACS lab", "realm": "de.rwth-aachen.eonerc.acs",
               "category": "simulator", "type": "kubernetes", "uuid": "c487a470-6af6-11eb-beee-7fa268050224",
               "properties": {"job": {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
                 "spec": {"template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}}}}})
    }

    #[test]
    fn create_lifts_the_reference_parameters() {
        let mut m = Harness::typed(KubernetesManagerKind, json!({"namespace": "villas"})).unwrap();
        m.act(ActionKind::Create, reference_params()).unwrap();
        let spec = m.manager().unwrap().created[0].clone();
        assert_eq!(spec.uuid(), "c487a470-6af6-11eb-beee-7fa268050224");
        assert_eq!(spec.identity.type_name, "kubernetes");
        assert_eq!(spec.properties["namespace"], "villas");
        assert_eq!(spec.properties["job"]["metadata"]["name"], "pi");
        assert!(spec.properties["manager"].is_string());
        assert_eq!(spec.properties["api_timeout"], 10.0, "the manager's");
        assert_eq!(spec.properties["api_grace"], 30.0, "the manager's");
    }

    #[test]
    fn create_passes_the_managers_timings_unless_the_component_has_its_own() {
        let mut m = Harness::typed(
            KubernetesManagerKind,
            json!({"api_timeout": 2, "api_grace": 5}),
        )
        .unwrap();
        m.act(ActionKind::Create, reference_params()).unwrap();
        let mut own = reference_params();
        own["uuid"] = "d487a470-6af6-11eb-beee-7fa268050224".into();
        own["properties"]["api_grace"] = 60.into();
        m.act(ActionKind::Create, own).unwrap();
        let created = m.manager().unwrap().created.clone();
        assert_eq!(created[0].properties["api_timeout"], 2.0);
        assert_eq!(created[0].properties["api_grace"], 5.0);
        assert_eq!(created[1].properties["api_grace"], 60.0);
    }

    #[test]
    fn create_refuses_other_kinds_and_missing_jobs() {
        let mut m = Harness::typed(KubernetesManagerKind, json!({})).unwrap();
        let mut params = reference_params();
        params["type"] = "dummy".into();
        assert_eq!(
            m.act(ActionKind::Create, params).unwrap_err().code,
            ErrorCode::InvalidParameters
        );
        assert_eq!(
            m.act(ActionKind::Create, json!({"name": "x"}))
                .unwrap_err()
                .code,
            ErrorCode::InvalidParameters
        );
    }

    #[test]
    fn the_published_schemas_are_the_ones_villasweb_draws() {
        villas_sdk::testing::check_villasweb_schemas(KubernetesManagerKind.into_kind().as_ref())
            .unwrap();
    }
}
