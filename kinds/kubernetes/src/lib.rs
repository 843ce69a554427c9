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
//! | the Job has condition `Complete`              | `stopping` (results uploaded if `results` names a URL, ConfigMap deleted), then `idle` |
//! | the results upload failed                     | `error` (`failed`) with the reason |
//! | the Job has condition `Failed` (`BackoffLimitExceeded`, `DeadlineExceeded`, ...) | `error` with the reason and the last failed pod |
//! | the Job was deleted by someone else           | `error`            |
//! | creating the objects was refused (409 after [`api::CREATE_ATTEMPTS`] names, 422, ...) | `error` (`failed`) with the status code and reason |
//! | the API is away (unreachable, no answer within `api_timeout`, 401, 403, 429, 5xx) at a `start`, `stop`, `reset` or when the daemon starts | `error` (12 `remote-error`) with the reason |
//! | the watch of a starting or running Job fails  | state kept, `status.api_error` set; after `api_grace` the Job is looked for: no answer `error` (12 `remote-error`), an answer confirms (or corrects) the state |
//! | the API answers again after a `remote-error`  | the state of the component's Job (none or complete: `idle`; pending: `starting`; running: `running`; failed: `error`) |
//!
//! After a `remote-error` the component looks for its Job again (1 s,
//! doubling up to 30 s) until the API answers. `stop` and `reset` delete
//! the component's Jobs (propagation `Background`: their pods go too) and
//! ConfigMaps, found by the label `villas.fein-aachen.org/ic-uuid`, then
//! report `idle`. `pause` and `resume` are refused (see
//! [`PAUSE_REFUSAL`]). Deleting the component through its
//! `manager`/`kubernetes` removes its objects too.
//!
//! Modules: [`job`] builds the objects, [`api`] talks to the API server,
//! [`results`] uploads what a completed Job leaves.

pub mod api;
pub mod job;
pub mod results;

use api::{Created, Found, KubeError, Look, Observations, Observed, Settings};
use futures_util::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::runtime::watcher::Event;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::time::Duration;
use villas_sdk::time::seconds_property;
use villas_sdk::transfer::ResultsTarget;
use villas_sdk::typed::{Actions, Ctx, TypedComponent, TypedKind};
use villas_sdk::{Action, ComponentSpec, ErrorCode, ErrorInfo, State, TimerId};

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
    /// Seconds: the longest wait for a connection to the API and for each
    /// of its answers (the manager's, when created through one).
    #[serde(default = "default_api_timeout")]
    pub api_timeout: f64,
    /// Seconds the watch of a starting or running Job may fail before the
    /// component shows `error` (until then `status.api_error`).
    #[serde(default = "default_api_grace")]
    pub api_grace: f64,
}

fn default_namespace() -> String {
    "default".into()
}

/// The default `api_timeout` (seconds).
pub const DEFAULT_API_TIMEOUT: f64 = 10.0;
/// The default `api_grace` (seconds).
pub const DEFAULT_API_GRACE: f64 = 30.0;

fn default_api_timeout() -> f64 {
    DEFAULT_API_TIMEOUT
}

fn default_api_grace() -> f64 {
    DEFAULT_API_GRACE
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
        let settings = Settings {
            timeout: seconds_property("api_timeout", properties.api_timeout)?,
        };
        let grace = seconds_property("api_grace", properties.api_grace)?;
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
            settings,
            grace,
            run: 0,
            watching: false,
            watch: 0,
            job: None,
            config_map: None,
            pods: Vec::new(),
            pod_failure: None,
            failing: None,
            results: None,
            api_error: None,
            outage: None,
            recovering: false,
            last_error: None,
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
    results: Option<ResultsTarget>,
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
    /// How the API is talked to (`api_timeout`).
    settings: Settings,
    /// How long the watch may fail before `error` (`api_grace`).
    grace: Duration,
    /// The current run; every task carries the run it belongs to, and
    /// the outputs of an older run are dropped.
    run: u64,
    /// The current run's objects are being watched.
    watching: bool,
    /// The current watch (the outputs of an older one are dropped).
    watch: u64,
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
    /// Where the current run's results go, if anywhere.
    results: Option<ResultsTarget>,
    /// Why the watch fails, while it does (within `api_grace`).
    api_error: Option<String>,
    /// The timer ending `api_grace`, while the watch fails.
    outage: Option<TimerId>,
    /// In `error` because the API was away: looking for the Job again
    /// until it answers.
    recovering: bool,
    /// The message of the last `remote-error` published.
    last_error: Option<String>,
    /// The delay before the next look, after a failed one.
    retry: Duration,
    /// The reference's per-component schemas (`{"start": {...}}`),
    /// published and checked instead of the kind's.
    schemas: Option<Map<String, Value>>,
}

/// The first delay before looking again for the Job, after the API was
/// away.
const RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest.
const RETRY_MAX: Duration = Duration::from_secs(30);

/// The component's timers.
#[derive(Debug)]
pub enum Timer {
    /// Look again for the Job (the API was away).
    LookAgain(u64),
    /// The Job of this run failed and its failed pod was not seen yet
    /// (the Job and pod watches are separate streams): fail without it.
    PodGrace(u64),
    /// The watch of this run has failed for `api_grace`.
    Outage(u64),
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
    /// What the cluster holds of the component (or why it could not be
    /// looked for).
    Looked {
        /// Of which run.
        run: u64,
        /// Its newest Job and payload, if any.
        result: Result<Look, KubeError>,
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
        /// Of which watch.
        watch: u64,
        /// The events to come.
        result: Result<Observations, KubeError>,
    },
    /// The watch reported.
    Observed {
        /// Of which run.
        run: u64,
        /// Of which watch.
        watch: u64,
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
    /// The results were uploaded (or not).
    Uploaded {
        /// Of which run.
        run: u64,
        /// Whether it worked.
        result: Result<(), results::ResultsError>,
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
        let results = match &action.results {
            Some(results) => ResultsTarget::parse(results).map_err(|e| {
                ErrorInfo::new(ErrorCode::InvalidParameters, e.to_string()).with("action", "start")
            })?,
            None => None,
        };
        Ok(Prepared {
            config_map,
            overrides: start.job,
            results,
        })
    }

    /// A new run: what the previous one left behind is forgotten.
    fn new_run(&mut self, ctx: &mut Ctx<'_, Self>) -> u64 {
        self.run += 1;
        self.watching = false;
        self.failing = None;
        self.recovering = false;
        self.last_error = None;
        self.api_error = None;
        if let Some(timer) = self.outage.take() {
            ctx.cancel(timer);
        }
        self.run
    }

    fn start(&mut self, ctx: &mut Ctx<'_, Self>, prepared: Prepared) -> Result<(), ErrorInfo> {
        let run = self.new_run(ctx);
        self.job = None;
        self.config_map = None;
        self.pods.clear();
        self.pod_failure = None;
        self.results = prepared.results;
        let template = self.template.clone();
        let owner = self.owner.clone();
        let future = api::create(
            self.settings,
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
        let run = self.new_run(ctx);
        let future = api::remove(self.settings, self.namespace.clone(), self.owner.selector());
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
        let (run, watch) = (self.run, self.watch);
        ctx.spawn(async move {
            let item = rest.next().await;
            Output::Observed {
                run,
                watch,
                item,
                rest,
            }
        });
    }

    fn start_watch(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.watching = true;
        self.watch += 1;
        let (run, watch) = (self.run, self.watch);
        let future = api::observe(self.settings, self.namespace.clone(), self.owner.selector());
        ctx.spawn(async move {
            Output::Watching {
                run,
                watch,
                result: future.await,
            }
        });
    }

    /// The API is away or refused: `error` with the reason. After an
    /// outage (or with `recheck`) the component looks for its Job again,
    /// with backoff, until the API answers; the same error is published
    /// once, not at every look.
    fn api_failed(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        what: &str,
        error: &KubeError,
        recheck: bool,
    ) {
        self.watching = false;
        self.api_error = None;
        let info = error.to_error_info(what);
        if !(recheck || error.is_outage()) {
            self.recovering = false;
            ctx.fail(info);
            return;
        }
        let retry_in = self.retry;
        self.retry = (self.retry * 2).min(RETRY_MAX);
        ctx.schedule(retry_in, Timer::LookAgain(self.run));
        let repeated = self.recovering
            && ctx.state() == State::Error
            && self.last_error.as_deref() == Some(info.message.as_str());
        self.recovering = true;
        if !repeated {
            self.last_error = Some(info.message.clone());
            ctx.fail(info.with("retry_in", retry_in.as_secs_f64()));
        }
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
            let error = job_failed(
                &reason,
                self.job.as_deref().unwrap_or_default(),
                failed.message.as_deref(),
            );
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
            self.finish(ctx)?;
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

    /// The Job completed: its results uploaded (if asked for), then its
    /// payload deleted, then `idle`.
    fn finish(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        if let Some(target) = self.results.take() {
            let run = self.run;
            let future = results::upload(
                self.settings,
                self.namespace.clone(),
                self.job.clone().unwrap_or_default(),
                self.pods.clone(),
                std::env::temp_dir().join(format!(
                    "villas-kubernetes-{}-{}-{run}",
                    self.owner.uuid,
                    std::process::id()
                )),
                target,
            );
            ctx.spawn(async move {
                Output::Uploaded {
                    run,
                    result: future.await,
                }
            });
            return Ok(());
        }
        if self.config_map.is_none() {
            return ctx.reach(State::Idle);
        }
        self.remove_config_map(ctx, Removal::Completed);
        Ok(())
    }

    fn remove_config_map(&mut self, ctx: &mut Ctx<'_, Self>, why: Removal) {
        let Some(name) = self.config_map.clone() else {
            return;
        };
        let run = self.run;
        let future = api::remove_config_map(self.settings, self.namespace.clone(), name);
        ctx.spawn(async move {
            Output::Removed {
                run,
                why,
                result: future.await,
            }
        });
    }

    fn look(&mut self, ctx: &mut Ctx<'_, Self>) {
        let run = self.run;
        let future = api::find(self.settings, self.namespace.clone(), self.owner.selector());
        ctx.spawn(async move {
            Output::Looked {
                run,
                result: future.await,
            }
        });
    }

    /// Takes up the state of the component's Job (when the daemon starts,
    /// and when the API answers again after an outage).
    fn take_up(&mut self, ctx: &mut Ctx<'_, Self>, look: Look) -> Result<(), ErrorInfo> {
        self.recovering = false;
        self.last_error = None;
        self.retry = RETRY_FIRST;
        self.api_error = None;
        self.config_map = look.config_map;
        if self.results.is_none() {
            self.results = look
                .payload
                .as_ref()
                .and_then(|p| p.get("results"))
                .and_then(|r| ResultsTarget::parse(r).ok().flatten());
        }
        let watched = matches!(ctx.state(), State::Starting | State::Running);
        let Some(found) = look.found else {
            if watched {
                self.results = None;
                ctx.fail(
                    ErrorInfo::new(
                        ErrorCode::Failed,
                        "the Kubernetes Job was deleted outside the controller",
                    )
                    .with("job", self.job.clone().unwrap_or_default()),
                );
                self.remove_config_map(ctx, Removal::Failed);
                return Ok(());
            }
            self.job = None;
            self.results = None;
            // A start the API failed may have left its payload.
            return self.finish(ctx);
        };
        let Found {
            job,
            failed,
            complete,
            running,
            pods,
        } = found;
        if self.job.as_ref() != Some(&job) {
            tracing::info!(%job, "taking up the state of the component's Job");
        }
        self.job = Some(job.clone());
        for pod in pods {
            if !self.pods.contains(&pod) {
                self.pods.push(pod);
            }
        }
        if let Some((reason, message)) = failed {
            self.results = None;
            self.fail_run(ctx, job_failed(&reason, &job, Some(&message)));
        } else if complete {
            if watched {
                ctx.transition(State::Running)?;
                ctx.transition(State::Stopping)?;
            }
            self.finish(ctx)?;
        } else {
            let target = if running || ctx.state() == State::Running {
                State::Running
            } else {
                State::Starting
            };
            if ctx.state() == target {
                // Confirmed after a failing watch: `api_error` is gone.
                ctx.publish_status();
            }
            ctx.reach(target)?;
            self.start_watch(ctx);
        }
        Ok(())
    }
}

/// The error of a failed Job.
fn job_failed(reason: &str, job: &str, message: Option<&str>) -> ErrorInfo {
    let mut error = ErrorInfo::new(
        ErrorCode::Failed,
        format!("the Kubernetes Job failed: {reason}"),
    )
    .with("reason", reason)
    .with("job", job);
    if let Some(message) = message.filter(|m| !m.is_empty()) {
        error = error.with("detail", message);
    }
    error
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
            Timer::LookAgain(run) if run == self.run && self.recovering => self.look(ctx),
            Timer::PodGrace(run) if run == self.run => {
                if let Some(error) = self.failing.take() {
                    self.fail_run(ctx, error);
                }
            }
            Timer::Outage(run) if run == self.run && self.watching && self.api_error.is_some() => {
                // The watch has failed for `api_grace`: a look tells
                // whether the API is away (then `error`) or the watch only
                // resumed without news (then the state is confirmed).
                self.outage = None;
                self.watching = false;
                self.recovering = true;
                self.look(ctx);
            }
            _ => {}
        }
        Ok(())
    }

    fn on_task(&mut self, ctx: &mut Ctx<'_, Self>, output: Output) -> Result<(), ErrorInfo> {
        match output {
            Output::Looked { run, result } if run == self.run => {
                let expected = ctx.state() == State::Idle && self.job.is_none();
                if !(expected || self.recovering) {
                    return Ok(());
                }
                match result {
                    Ok(look) => self.take_up(ctx, look)?,
                    Err(error) => {
                        tracing::warn!(%error, "looking for the component's Job");
                        let what = if matches!(ctx.state(), State::Starting | State::Running) {
                            format!(
                                "lost the Kubernetes Job (its watch failed for {:?})",
                                self.grace
                            )
                        } else {
                            "could not look for the Kubernetes Job".to_owned()
                        };
                        self.api_failed(ctx, &what, &error, true);
                    }
                }
            }
            Output::Created { run, result } if run == self.run => match result {
                Ok(created) => {
                    self.job = Some(created.job);
                    self.config_map = Some(created.config_map);
                    self.start_watch(ctx);
                    ctx.publish_status();
                }
                Err(error) => {
                    self.api_failed(ctx, "could not create the Kubernetes Job", &error, false);
                }
            },
            Output::Watching { run, watch, result }
                if run == self.run && watch == self.watch && self.watching =>
            {
                match result {
                    Ok(events) => self.next(ctx, events),
                    Err(error) => {
                        self.api_failed(ctx, "could not watch the Kubernetes Job", &error, true);
                    }
                }
            }
            Output::Observed {
                run,
                watch,
                item,
                rest,
            } if run == self.run && watch == self.watch && self.watching => {
                match item {
                    Some(Ok(observed)) => {
                        if self.api_error.take().is_some() {
                            if let Some(timer) = self.outage.take() {
                                ctx.cancel(timer);
                            }
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
                        // Published once per outage, not per retry; after
                        // `api_grace` it is an error.
                        if self.api_error.replace(error.to_string()).is_none() {
                            ctx.publish_status();
                            self.outage = Some(ctx.schedule(self.grace, Timer::Outage(self.run)));
                        }
                    }
                    None => {
                        self.start_watch(ctx);
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
                    ctx.reach(State::Idle)?;
                }
                (_, Err(error)) => {
                    self.api_failed(
                        ctx,
                        "could not delete the Kubernetes objects",
                        &error,
                        false,
                    );
                }
            },
            Output::Uploaded { run, result } if run == self.run => match result {
                Ok(()) => {
                    if self.config_map.is_none() {
                        ctx.reach(State::Idle)?;
                    } else {
                        self.remove_config_map(ctx, Removal::Completed);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "uploading the results");
                    ctx.fail(
                        ErrorInfo::new(
                            ErrorCode::Failed,
                            format!("could not upload the results: {error}"),
                        )
                        .with("job", self.job.clone().unwrap_or_default()),
                    );
                    self.remove_config_map(ctx, Removal::Failed);
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
        if let Some(error) = &self.api_error {
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
    fn outages_are_remote_errors_and_refusals_failures() {
        let api = |code: u16| KubeError::Api {
            code,
            reason: "R".into(),
            message: "m".into(),
        };
        for outage in [
            api(401),
            api(403),
            api(429),
            api(500),
            api(503),
            KubeError::Timeout(Duration::from_secs(1)),
            KubeError::Unreachable("refused".into()),
        ] {
            assert!(outage.is_outage(), "{outage}");
            assert_eq!(outage.to_error_info("x").code, ErrorCode::Remote);
        }
        for refusal in [
            api(404),
            api(409),
            api(422),
            KubeError::Config("none".into()),
        ] {
            assert!(!refusal.is_outage(), "{refusal}");
            assert_eq!(refusal.to_error_info("x").code, ErrorCode::Failed);
        }
        let info = api(409).to_error_info("could not create");
        assert_eq!(info.details["status_code"], 409);
    }

    #[test]
    fn timings_must_be_positive() {
        for bad in [json!(0), json!(-1)] {
            let error = Harness::typed(
                KubernetesKind,
                json!({"job": template(), "api_timeout": bad}),
            )
            .unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidParameters);
            assert!(error.message.contains("api_timeout"), "{}", error.message);
        }
        assert!(
            Harness::typed(KubernetesKind, json!({"job": template(), "api_grace": 0})).is_err()
        );
        assert!(Harness::typed(
            KubernetesKind,
            json!({"job": template(), "api_timeout": 0.5, "api_grace": 2})
        )
        .is_ok());
    }

    #[test]
    fn the_published_schemas_are_the_ones_villasweb_draws() {
        villas_sdk::testing::check_villasweb_schemas(KubernetesKind.into_kind().as_ref()).unwrap();
    }
}
