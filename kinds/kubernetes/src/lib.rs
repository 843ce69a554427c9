//! # villas-kind-kubernetes
//!
//! The `simulator`/`kubernetes` kind: each `start` runs the component's
//! Job template as a Kubernetes Job, with the action's payload in a
//! ConfigMap mounted into the pod (`/config/payload.json`,
//! `VILLAS_PAYLOAD_FILE`). The state is taken from the Job and its pods
//! through kube-runtime watchers (`resourceVersion` kept, re-listed after
//! `410 Gone`), never from replayed events:
//!
//! | what the cluster says                         | state              |
//! |-----------------------------------------------|--------------------|
//! | Job and ConfigMap created                     | `starting`         |
//! | a pod of the Job is `Running`                 | `running`          |
//! | the Job has condition `Complete`              | `stopping` (ConfigMap deleted), then `idle` |
//! | the Job has condition `Failed` (`BackoffLimitExceeded`, `DeadlineExceeded`, ...) | `error` with the reason and the last failed pod |
//! | the Job was deleted by someone else           | `error`            |
//! | creating the objects failed (401, 403, 5xx, unreachable) | `error` with the status code and reason |
//!
//! `stop` and `reset` delete the component's Jobs (propagation
//! `Background`: their pods go too) and ConfigMaps, found by the label
//! `villas.fein-aachen.org/ic-uuid`, then report `idle`. `pause` and
//! `resume` are refused (see [`PAUSE_REFUSAL`]). Deleting the component
//! through its `manager`/`kubernetes` removes its objects too.
//!
//! Modules: [`job`] builds the objects, [`api`] talks to the API server.

pub mod api;
pub mod job;

use api::{Created, Found, KubeError, Observations, Observed};
use futures_util::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::runtime::watcher::Event;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::time::Duration;
use villas_sdk::typed::{Actions, Ctx, TypedComponent, TypedKind};
use villas_sdk::{Action, ComponentSpec, ErrorCode, ErrorInfo, State};

/// Why `pause` and `resume` are refused: a Job's container cannot be
/// paused from outside with a guarantee. The reference sends `kill -19 1`
/// through exec, which does nothing to a container's PID 1 (in a PID
/// namespace, init only receives signals it handles, and SIGSTOP cannot
/// be handled: pid_namespaces(7)), and then claims `paused`.
pub const PAUSE_REFUSAL: &str = "a Kubernetes Job cannot be paused: SIGSTOP to the container's PID 1 is ignored inside its PID namespace, so nothing would pause";

/// The `simulator`/`kubernetes` kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct KubernetesKind;

/// The properties of a `simulator`/`kubernetes` component (the
/// reference's `create` parameters put them under `properties`; the
/// `manager`/`kubernetes` lifts them).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct KubernetesProperties {
    /// The Job template: a `batch/v1` Job manifest with at least one
    /// container.
    pub job: Map<String, Value>,
    /// The namespace the Jobs run in (the manager's, when created through
    /// a `manager`/`kubernetes`).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The reference's per-component schemas by action
    /// (`{"start": <JSON schema>}`): published as the component's `schema`
    /// and checked instead of the kind's.
    #[serde(default)]
    pub schema: Option<Map<String, Value>>,
}

fn default_namespace() -> String {
    "default".into()
}

impl TypedKind for KubernetesKind {
    const CATEGORY: &'static str = "simulator";
    const TYPE_NAME: &'static str = "kubernetes";
    type Properties = KubernetesProperties;
    type Component = KubernetesJob;

    fn build(
        &self,
        spec: &ComponentSpec,
        properties: KubernetesProperties,
    ) -> Result<KubernetesJob, ErrorInfo> {
        job::check_template(&properties.job).map_err(|error| {
            ErrorInfo::new(
                ErrorCode::InvalidParameters,
                format!("property job is not a Job template: {error}"),
            )
            .with("property", "job")
        })?;
        let mut annotations = Map::new();
        for key in ["name", "location", "realm"] {
            let value = match key {
                "name" => Some(Value::String(spec.name.clone())),
                "realm" => spec.identity.realm.clone().map(Value::String),
                _ => spec.properties.get(key).filter(|v| v.is_string()).cloned(),
            };
            if let Some(value) = value {
                annotations.insert(format!("villas.fein-aachen.org/{key}"), value);
            }
        }
        let owner = job::Owner {
            uuid: spec.uuid().to_owned(),
            manager: spec
                .properties
                .get("manager")
                .and_then(Value::as_str)
                .map(str::to_owned),
            annotations,
            owner_references: job::controller_pod_owner(&properties.namespace),
        };
        Ok(KubernetesJob {
            template: properties.job,
            namespace: properties.namespace,
            owner,
            run: 0,
            watching: false,
            job: None,
            config_map: None,
            pods: Vec::new(),
            pod_failure: None,
            failing: None,
            watch_error: None,
            retry: RETRY_FIRST,
            schemas: properties.schema,
        })
    }
}

/// `start` parameters (the whole action is the payload).
#[derive(Debug, Deserialize, JsonSchema)]
struct Start {
    /// Overrides merged into the Job template for this run (`null`
    /// removes a key).
    #[serde(default)]
    job: Option<Map<String, Value>>,
}

/// A start, checked before the state changes.
struct Prepared {
    config_map: ConfigMap,
    overrides: Option<Map<String, Value>>,
}

/// Parameters of the refused `pause` and `resume` (none).
#[derive(Debug, Deserialize, JsonSchema)]
struct NoPause {}

/// One `simulator`/`kubernetes` component.
#[derive(Debug)]
pub struct KubernetesJob {
    /// The Job template.
    template: Map<String, Value>,
    /// Where its objects live.
    namespace: String,
    /// Labels, annotations and owner references of its objects.
    owner: job::Owner,
    /// The current run; every task carries the run it belongs to, and
    /// the outputs of an older run are dropped.
    run: u64,
    /// The current run's objects are being watched.
    watching: bool,
    /// The current run's Job.
    job: Option<String>,
    /// The current run's payload ConfigMap (until deleted).
    config_map: Option<String>,
    /// The pods of the current run's Job seen so far.
    pods: Vec<String>,
    /// The last pod of the run that failed (exit code, reason).
    pod_failure: Option<Value>,
    /// The Job failed before its failed pod was seen: the error to
    /// publish once the pod's event (or [`Timer::PodGrace`]) comes.
    failing: Option<ErrorInfo>,
    /// The last error of the watch (it retries with backoff), or of the
    /// look for what a previous daemon left.
    watch_error: Option<String>,
    /// The delay before the next look, after a failed one.
    retry: Duration,
    /// The reference's per-component schemas (`{"start": {...}}`),
    /// published and checked instead of the kind's.
    schemas: Option<Map<String, Value>>,
}

/// The first delay before looking again for what a previous daemon left.
const RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest.
const RETRY_MAX: Duration = Duration::from_secs(30);

/// The component's timers.
#[derive(Debug)]
pub enum Timer {
    /// Look again for what a previous daemon left.
    LookAgain,
    /// The Job of this run failed and its failed pod was not seen yet
    /// (the Job and pod watches are separate streams): fail without it.
    PodGrace(u64),
}

/// How long a failed Job waits for its failed pod's event, so that the
/// error carries the pod's exit code whichever watch reports first.
const POD_GRACE: Duration = Duration::from_secs(2);

/// Why objects were deleted.
#[derive(Debug, Clone, Copy)]
pub enum Removal {
    /// `stop`: then `idle`.
    Stop,
    /// `reset`: then `idle`.
    Reset,
    /// The Job completed: the ConfigMap is gone, then `idle`.
    Completed,
    /// The Job failed (state `error` already): the ConfigMap is gone.
    Failed,
}

/// What a component's tasks return.
pub enum Output {
    /// What a previous daemon left (or why it could not be looked for).
    Found {
        /// Of which run.
        run: u64,
        /// The newest Job of the component, if any.
        result: Result<Option<Found>, KubeError>,
    },
    /// The Job and its ConfigMap were created (or not).
    Created {
        /// Of which run.
        run: u64,
        /// The names, or why not.
        result: Result<Created, KubeError>,
    },
    /// The watch was set up (or not).
    Watching {
        /// Of which run.
        run: u64,
        /// The events to come.
        result: Result<Observations, KubeError>,
    },
    /// The watch reported.
    Observed {
        /// Of which run.
        run: u64,
        /// The event (`None`: the stream ended).
        item: Option<Result<Observed, KubeError>>,
        /// The events after it.
        rest: Observations,
    },
    /// Objects were deleted (or not).
    Removed {
        /// Of which run.
        run: u64,
        /// Why.
        why: Removal,
        /// Whether it worked.
        result: Result<(), KubeError>,
    },
}

impl KubernetesJob {
    fn check_start(&self, start: Start, action: &Action) -> Result<Prepared, ErrorInfo> {
        let invalid = |error: String| {
            ErrorInfo::new(
                ErrorCode::InvalidParameters,
                format!("the Job of this start is invalid: {error}"),
            )
            .with("action", "start")
        };
        job::job(
            &self.template,
            start.job.as_ref(),
            &self.owner,
            "job-payload-check",
        )
        .map_err(invalid)?;
        let config_map = job::config_map(&self.owner, &action.to_json()).map_err(invalid)?;
        Ok(Prepared {
            config_map,
            overrides: start.job,
        })
    }

    fn start(&mut self, ctx: &mut Ctx<'_, Self>, prepared: Prepared) -> Result<(), ErrorInfo> {
        self.run += 1;
        self.watching = false;
        self.job = None;
        self.config_map = None;
        self.pods.clear();
        self.pod_failure = None;
        self.failing = None;
        self.watch_error = None;
        let run = self.run;
        let template = self.template.clone();
        let owner = self.owner.clone();
        let future = api::create(
            self.namespace.clone(),
            self.owner.selector(),
            prepared.config_map,
            move |config_map: &str| {
                job::job(&template, prepared.overrides.as_ref(), &owner, config_map)
            },
        );
        ctx.spawn(async move {
            Output::Created {
                run,
                result: future.await,
            }
        });
        Ok(())
    }

    /// Deletes every object of the component, then `why` says what next.
    fn remove(&mut self, ctx: &mut Ctx<'_, Self>, why: Removal) {
        self.run += 1;
        self.watching = false;
        self.failing = None;
        let run = self.run;
        let future = api::remove(self.namespace.clone(), self.owner.selector());
        ctx.spawn(async move {
            Output::Removed {
                run,
                why,
                result: future.await,
            }
        });
    }

    fn stop(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        self.remove(ctx, Removal::Stop);
        Ok(())
    }

    fn refuse_pause(&self, _: NoPause, _: &Action) -> Result<(), ErrorInfo> {
        Err(ErrorInfo::new(ErrorCode::Unsupported, PAUSE_REFUSAL))
    }

    fn never(&mut self, _: &mut Ctx<'_, Self>, (): ()) -> Result<(), ErrorInfo> {
        Ok(())
    }

    fn next(&mut self, ctx: &mut Ctx<'_, Self>, mut rest: Observations) {
        let run = self.run;
        ctx.spawn(async move {
            let item = rest.next().await;
            Output::Observed { run, item, rest }
        });
    }

    fn watch(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.watching = true;
        let run = self.run;
        let future = api::observe(self.namespace.clone(), self.owner.selector());
        ctx.spawn(async move {
            Output::Watching {
                run,
                result: future.await,
            }
        });
    }

    /// A Job or pod of the component changed (or was listed again).
    fn observed(&mut self, ctx: &mut Ctx<'_, Self>, observed: Observed) -> Result<(), ErrorInfo> {
        if !matches!(ctx.state(), State::Starting | State::Running) {
            return Ok(());
        }
        match observed {
            Observed::Job(event) => match *event {
                Event::Apply(job) | Event::InitApply(job) if job.metadata.name == self.job => {
                    self.job_changed(ctx, &job)?;
                }
                Event::Delete(job) if job.metadata.name == self.job => {
                    self.watching = false;
                    ctx.fail(
                        ErrorInfo::new(
                            ErrorCode::Failed,
                            "the Kubernetes Job was deleted outside the controller",
                        )
                        .with("job", job.metadata.name.unwrap_or_default()),
                    );
                }
                _ => {}
            },
            Observed::Pod(event) => {
                if let Event::Apply(pod) | Event::InitApply(pod) = *event {
                    self.pod_changed(ctx, &pod)?;
                }
            }
        }
        Ok(())
    }

    fn pod_changed(&mut self, ctx: &mut Ctx<'_, Self>, pod: &Pod) -> Result<(), ErrorInfo> {
        let of_job = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("job-name"))
            .is_some_and(|name| Some(name) == self.job.as_ref());
        if !of_job {
            return Ok(());
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        if !self.pods.contains(&name) {
            self.pods.push(name.clone());
        }
        let status = pod.status.as_ref();
        match status.and_then(|s| s.phase.as_deref()) {
            Some("Running") => ctx.transition(State::Running),
            Some("Failed") => {
                let terminated = status
                    .and_then(|s| s.container_statuses.as_ref())
                    .and_then(|c| c.first())
                    .and_then(|c| c.state.as_ref())
                    .and_then(|s| s.terminated.as_ref());
                self.pod_failure = Some(json!({
                    "pod": name,
                    "exit_code": terminated.map(|t| t.exit_code),
                    "reason": terminated.and_then(|t| t.reason.clone()),
                    "message": terminated.and_then(|t| t.message.clone()),
                }));
                if let Some(error) = self.failing.take() {
                    self.fail_run(ctx, error);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn job_changed(&mut self, ctx: &mut Ctx<'_, Self>, job: &Job) -> Result<(), ErrorInfo> {
        let condition = |kind: &str| {
            job.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == kind && c.status == "True"))
        };
        if let Some(failed) = condition("Failed") {
            if self.failing.is_some() {
                return Ok(());
            }
            let reason = failed.reason.clone().unwrap_or_else(|| "Failed".into());
            let mut error = ErrorInfo::new(
                ErrorCode::Failed,
                format!("the Kubernetes Job failed: {reason}"),
            )
            .with("reason", reason.as_str())
            .with("job", self.job.clone().unwrap_or_default());
            if let Some(message) = &failed.message {
                error = error.with("detail", message.as_str());
            }
            if self.pod_failure.is_some() {
                self.fail_run(ctx, error);
            } else {
                self.failing = Some(error);
                ctx.schedule(POD_GRACE, Timer::PodGrace(self.run));
            }
        } else if condition("Complete").is_some() {
            self.watching = false;
            ctx.transition(State::Running)?;
            ctx.transition(State::Stopping)?;
            self.remove_config_map(ctx, Removal::Completed);
        }
        Ok(())
    }

    /// Ends the run in `error`, with the failed pod's exit code and
    /// reason when it was seen.
    fn fail_run(&mut self, ctx: &mut Ctx<'_, Self>, mut error: ErrorInfo) {
        self.watching = false;
        if let Some(pod) = &self.pod_failure {
            error = error.with("pod", pod.clone());
        }
        ctx.fail(error);
        self.remove_config_map(ctx, Removal::Failed);
    }

    fn remove_config_map(&mut self, ctx: &mut Ctx<'_, Self>, why: Removal) {
        let Some(name) = self.config_map.clone() else {
            return;
        };
        let run = self.run;
        let future = api::remove_config_map(self.namespace.clone(), name);
        ctx.spawn(async move {
            Output::Removed {
                run,
                why,
                result: future.await,
            }
        });
    }
}

impl KubernetesJob {
    fn look(&mut self, ctx: &mut Ctx<'_, Self>) {
        let run = self.run;
        let future = api::find(self.namespace.clone(), self.owner.selector());
        ctx.spawn(async move {
            Output::Found {
                run,
                result: future.await,
            }
        });
    }

    /// Takes up the state of what a previous daemon left.
    fn found(&mut self, ctx: &mut Ctx<'_, Self>, found: Option<Found>) -> Result<(), ErrorInfo> {
        if self.watch_error.take().is_some() {
            ctx.publish_status();
        }
        let Some(found) = found else { return Ok(()) };
        tracing::info!(job = %found.job, "found the Job of a previous daemon");
        self.job = Some(found.job.clone());
        self.config_map = found.config_map;
        if let Some((reason, message)) = found.failed {
            ctx.fail(
                ErrorInfo::new(
                    ErrorCode::Failed,
                    format!("the Kubernetes Job failed: {reason}"),
                )
                .with("reason", reason.as_str())
                .with("job", found.job)
                .with("detail", message),
            );
        } else if found.complete {
            ctx.publish_status();
        } else {
            ctx.transition(State::Starting)?;
            self.watch(ctx);
        }
        Ok(())
    }
}

impl TypedComponent for KubernetesJob {
    type Timer = Timer;
    type Output = Output;

    fn actions(actions: &mut Actions<Self>) {
        actions
            .start_checked(Self::check_start, Self::start)
            .stop(Self::stop)
            .pause_checked(Self::refuse_pause, Self::never)
            .resume_checked(Self::refuse_pause, Self::never);
    }

    fn reset(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        self.remove(ctx, Removal::Reset);
        Ok(())
    }

    /// A restarted daemon takes up the state of the component's Job.
    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        self.look(ctx);
        Ok(())
    }

    fn own_schemas(&self) -> Option<Map<String, Value>> {
        self.schemas.clone()
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, timer: Timer) -> Result<(), ErrorInfo> {
        match timer {
            Timer::LookAgain => {
                if ctx.state() == State::Idle && self.job.is_none() {
                    self.look(ctx);
                }
            }
            Timer::PodGrace(run) if run == self.run => {
                if let Some(error) = self.failing.take() {
                    self.fail_run(ctx, error);
                }
            }
            Timer::PodGrace(_) => {}
        }
        Ok(())
    }

    fn on_task(&mut self, ctx: &mut Ctx<'_, Self>, output: Output) -> Result<(), ErrorInfo> {
        match output {
            Output::Found { run, result } if run == self.run && ctx.state() == State::Idle => {
                match result {
                    Ok(found) => self.found(ctx, found)?,
                    Err(error) => {
                        // The state of a Job left running is unknown: the
                        // component stays as it is and looks again.
                        tracing::warn!(%error, "looking for the Job of a previous daemon");
                        self.watch_error = Some(error.to_string());
                        ctx.publish_status();
                        ctx.schedule(self.retry, Timer::LookAgain);
                        self.retry = (self.retry * 2).min(RETRY_MAX);
                    }
                }
            }
            Output::Created { run, result } if run == self.run => match result {
                Ok(created) => {
                    self.job = Some(created.job);
                    self.config_map = Some(created.config_map);
                    self.watch(ctx);
                    ctx.publish_status();
                }
                Err(error) => ctx.fail(error.to_error_info("could not create the Kubernetes Job")),
            },
            Output::Watching { run, result } if run == self.run && self.watching => match result {
                Ok(events) => self.next(ctx, events),
                Err(error) => {
                    self.watching = false;
                    ctx.fail(error.to_error_info("could not watch the Kubernetes Job"));
                }
            },
            Output::Observed { run, item, rest } if run == self.run && self.watching => {
                match item {
                    Some(Ok(observed)) => {
                        if self.watch_error.take().is_some() {
                            ctx.publish_status();
                        }
                        self.observed(ctx, observed)?;
                    }
                    Some(Err(error)) if error.is_expired() => {
                        // 410 Gone: the watcher lists again; not a failure.
                        tracing::debug!(%error, "the watch expired");
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%error, "watching the Kubernetes Job");
                        // Published once per outage, not per retry.
                        if self.watch_error.replace(error.to_string()).is_none() {
                            ctx.publish_status();
                        }
                    }
                    None => {
                        self.watch(ctx);
                        return Ok(());
                    }
                }
                if self.watching {
                    self.next(ctx, rest);
                }
            }
            Output::Removed { run, why, result } if run == self.run => match (why, result) {
                (Removal::Failed, Ok(())) => self.config_map = None,
                (Removal::Failed, Err(error)) => {
                    tracing::warn!(%error, "deleting the payload of a failed Job");
                }
                (_, Ok(())) => {
                    self.config_map = None;
                    ctx.transition(State::Idle)?;
                }
                (_, Err(error)) => {
                    ctx.fail(error.to_error_info("could not delete the Kubernetes objects"))
                }
            },
            _ => {}
        }
        Ok(())
    }

    fn status_fields(&self, fields: &mut Map<String, Value>) {
        fields.insert("namespace".into(), self.namespace.clone().into());
        fields.insert("job_name".into(), self.job.clone().into());
        fields.insert("config_map".into(), self.config_map.clone().into());
        fields.insert("pod_names".into(), self.pods.clone().into());
        if let Some(failure) = &self.pod_failure {
            fields.insert("pod_failure".into(), failure.clone());
        }
        if let Some(error) = &self.watch_error {
            fields.insert("api_error".into(), error.clone().into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use villas_sdk::testing::Harness;
    use villas_sdk::ActionKind;

    fn template() -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
               "spec": {"template": {"spec": {"restartPolicy": "Never",
                 "containers": [{"name": "pi", "image": "perl"}]}}}})
    }

    #[test]
    fn a_template_without_containers_is_refused() {
        let error = Harness::typed(KubernetesKind, json!({"job": {"spec": {}}})).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidParameters);
        assert!(error.message.contains("property job"), "{}", error.message);
        assert!(Harness::typed(KubernetesKind, json!({})).is_err());
        assert!(Harness::typed(KubernetesKind, json!({"job": template()})).is_ok());
    }

    trait Refusal {
        fn driver_refusal(&mut self, kind: ActionKind) -> ErrorInfo;
    }

    impl Refusal for Harness {
        /// What the component's own check says, whatever the state.
        fn driver_refusal(&mut self, _kind: ActionKind) -> ErrorInfo {
            let job = KubernetesKind
                .build(
                    &ComponentSpec::from_properties(
                        json!({"category": "simulator", "type": "kubernetes", "job": template()})
                            .as_object()
                            .cloned()
                            .unwrap(),
                    )
                    .unwrap(),
                    serde_json::from_value(json!({"job": template()})).unwrap(),
                )
                .unwrap();
            job.refuse_pause(NoPause {}, &Action::new(ActionKind::Pause))
                .unwrap_err()
        }
    }

    #[test]
    fn pause_and_resume_are_refused_with_the_reason_and_the_state_kept() {
        let mut job = Harness::typed(KubernetesKind, json!({"job": template()})).unwrap();
        for kind in [ActionKind::Pause, ActionKind::Resume] {
            let error = job.act(kind, json!({})).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidTransition, "not from idle");
            assert_eq!(job.state(), State::Idle);
            let error = job.driver_refusal(kind);
            assert_eq!(error.code, ErrorCode::Unsupported);
            assert!(error.message.contains("cannot be paused"));
        }
        assert!(!job.states().contains(&State::Paused));
    }

    #[test]
    fn the_published_schemas_are_the_ones_villasweb_draws() {
        villas_sdk::testing::check_villasweb_schemas(KubernetesKind.into_kind().as_ref()).unwrap();
    }
}
