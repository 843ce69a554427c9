//! The Kubernetes API calls of a `simulator/kubernetes` component, as
//! futures its tasks run: the client (`KUBECONFIG`, else the in-cluster
//! service account; every request bounded by `api_timeout`), creating
//! the payload ConfigMap and the Job (a `409` on a generated name is
//! retried with a new one), deleting what a component created (found by
//! its labels), reading its pods' logs, and the watch of its Job and pods
//! (kube-runtime watchers, which keep the `resourceVersion` and re-list
//! after a `410 Gone`, retrying with backoff; each watch call ends after
//! `api_timeout`, so a stalled API shows as an error, not as silence).

use futures_util::stream::{BoxStream, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use kube::Client;
use serde_json::Value;
use std::time::Duration;
use villas_sdk::{ErrorCode, ErrorInfo};

/// How many times a create whose generated name was taken (`409`) is
/// tried in all, each time with a new name.
pub const CREATE_ATTEMPTS: usize = 3;

/// A failed Kubernetes call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KubeError {
    /// No configuration: neither `KUBECONFIG` nor an in-cluster service
    /// account.
    #[error("no Kubernetes configuration: {0}")]
    Config(String),
    /// The API answered with an error status.
    #[error("Kubernetes API error {code} {reason}: {message}")]
    Api {
        /// HTTP status code.
        code: u16,
        /// The `Status` reason (`NotFound`, `Forbidden`, ...).
        reason: String,
        /// The `Status` message.
        message: String,
    },
    /// The API could not be reached or answered something unreadable.
    #[error("Kubernetes API unreachable: {0}")]
    Unreachable(String),
    /// The API did not answer within `api_timeout`.
    #[error("Kubernetes API did not answer within {0:?}")]
    Timeout(Duration),
}

impl KubeError {
    /// As a published error, with what failed first: code 12
    /// `remote-error` for an API that is away ([`Self::is_outage`]),
    /// `failed` for a request it refused.
    pub fn to_error_info(&self, what: &str) -> ErrorInfo {
        let code = if self.is_outage() {
            ErrorCode::Remote
        } else {
            ErrorCode::Failed
        };
        let info = ErrorInfo::new(code, format!("{what}: {self}"));
        match self {
            KubeError::Api { code, reason, .. } => info
                .with("status_code", *code)
                .with("reason", reason.as_str()),
            KubeError::Config(_) => info.with("reason", "no-configuration"),
            KubeError::Unreachable(_) => info.with("reason", "unreachable"),
            KubeError::Timeout(_) => info.with("reason", "timeout"),
        }
    }

    /// The API is away rather than refusing this request: unreachable,
    /// stalled, refusing the credentials (401, 403) or failing itself
    /// (408, 429, 5xx). Such errors end when the API answers again.
    pub fn is_outage(&self) -> bool {
        match self {
            KubeError::Unreachable(_) | KubeError::Timeout(_) => true,
            KubeError::Api { code, .. } => matches!(code, 401 | 403 | 408 | 429) || *code >= 500,
            KubeError::Config(_) => false,
        }
    }

    fn is_conflict(&self) -> bool {
        matches!(self, KubeError::Api { code: 409, .. })
    }

    /// `410 Gone`: a watch's `resourceVersion` is too old (the watcher
    /// lists again).
    pub fn is_expired(&self) -> bool {
        matches!(self, KubeError::Api { code: 410, .. })
    }

    fn is_not_found(&self) -> bool {
        matches!(self, KubeError::Api { code: 404, .. })
    }
}

/// A kube error, the timeout it ran under saying what a timeout was.
fn classify(error: kube::Error, timeout: Duration) -> KubeError {
    match error {
        kube::Error::Api(status) => KubeError::Api {
            code: status.code,
            reason: status.reason.clone(),
            message: status.message.clone(),
        },
        other => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&other);
            while let Some(error) = source {
                let timed_out = error
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut);
                if timed_out || error.to_string().contains("timed out") {
                    return KubeError::Timeout(timeout);
                }
                source = error.source();
            }
            KubeError::Unreachable(other.to_string())
        }
    }
}

/// How the API is talked to.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The longest wait for a connection, and for each answer.
    pub timeout: Duration,
}

impl Settings {
    /// How long each watch call lasts (the server ends it, and the watcher
    /// watches again from its `resourceVersion`).
    fn watch_seconds(self) -> u32 {
        u32::try_from(self.timeout.as_secs().max(1)).unwrap_or(u32::MAX)
    }

    fn error(self, error: kube::Error) -> KubeError {
        classify(error, self.timeout)
    }
}

/// A client from `KUBECONFIG` (else `~/.kube/config`, else the in-cluster
/// service account). Every read waits at most `settings.timeout`
/// (`watching`: the watch call's own length more, as the server ends a
/// quiet watch only then).
pub async fn client(settings: Settings, watching: bool) -> Result<Client, KubeError> {
    // The daemon links both of rustls' providers, so none is the default
    // until one is installed (an error only says one was already).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = kube::Config::infer()
        .await
        .map_err(|e| KubeError::Config(e.to_string()))?;
    // kube retries 429/503/504 up to 15 times with delays growing to
    // minutes: an answer is wanted now (the component shows it and
    // retries on its own terms).
    config.default_retry = false;
    config.connect_timeout = Some(settings.timeout);
    let read = if watching {
        settings.timeout + Duration::from_secs(u64::from(settings.watch_seconds()))
    } else {
        settings.timeout
    };
    config.read_timeout = Some(read);
    config.write_timeout = Some(settings.timeout);
    // The timeout counts from the request, not from when its pooled
    // connection went idle.
    config.reset_reader_on_write = true;
    Client::try_from(config).map_err(|e| KubeError::Config(e.to_string()))
}

/// What a `start` created.
#[derive(Debug, Clone)]
pub struct Created {
    /// The Job's name.
    pub job: String,
    /// The payload ConfigMap's name.
    pub config_map: String,
}

/// Creates `object`; a `409` (its generated name was taken) is retried
/// with a new name, [`CREATE_ATTEMPTS`] times in all.
async fn create_named<K>(api: &Api<K>, object: &K, settings: Settings) -> Result<K, KubeError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let generated = object.meta().generate_name.is_some() && object.meta().name.is_none();
    let mut attempt = 1;
    loop {
        match api.create(&PostParams::default(), object).await {
            Ok(created) => return Ok(created),
            Err(error) => {
                let error = settings.error(error);
                if !(generated && error.is_conflict() && attempt < CREATE_ATTEMPTS) {
                    return Err(error);
                }
                tracing::info!(%error, attempt, "generated name taken: trying another");
                attempt += 1;
            }
        }
    }
}

/// Deletes what a previous run of the component left (by `selector`),
/// then creates the payload ConfigMap and the Job built from its name.
/// If the Job cannot be created the ConfigMap is deleted again.
pub async fn create(
    settings: Settings,
    namespace: String,
    selector: String,
    config_map: ConfigMap,
    build_job: impl FnOnce(&str) -> Result<Job, String>,
) -> Result<Created, KubeError> {
    let client = client(settings, false).await?;
    remove_all(settings, &client, &namespace, &selector).await?;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let map = create_named(&maps, &config_map, settings).await?;
    let map_name = map.metadata.name.unwrap_or_default();
    let job = match build_job(&map_name) {
        Ok(job) => job,
        Err(error) => {
            let _ = delete_config_map(settings, &client, &namespace, &map_name).await;
            return Err(KubeError::Config(error));
        }
    };
    let jobs: Api<Job> = Api::namespaced(client.clone(), &namespace);
    match create_named(&jobs, &job, settings).await {
        Ok(job) => Ok(Created {
            job: job.metadata.name.unwrap_or_default(),
            config_map: map_name,
        }),
        Err(error) => {
            let _ = delete_config_map(settings, &client, &namespace, &map_name).await;
            Err(error)
        }
    }
}

async fn delete_config_map(
    settings: Settings,
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<(), KubeError> {
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    match maps.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(error) => {
            let error = settings.error(error);
            if error.is_not_found() {
                Ok(())
            } else {
                Err(error)
            }
        }
    }
}

/// Deletes every Job (with background propagation: its pods go too) and
/// every ConfigMap labelled `selector`; what is gone already is fine.
pub async fn remove_all(
    settings: Settings,
    client: &Client,
    namespace: &str,
    selector: &str,
) -> Result<(), KubeError> {
    let list = ListParams::default().labels(selector);
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    for job in jobs.list(&list).await.map_err(|e| settings.error(e))? {
        let name = job.metadata.name.unwrap_or_default();
        if let Err(error) = jobs.delete(&name, &DeleteParams::background()).await {
            let error = settings.error(error);
            if !error.is_not_found() {
                return Err(error);
            }
        }
    }
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    for map in maps.list(&list).await.map_err(|e| settings.error(e))? {
        let name = map.metadata.name.unwrap_or_default();
        delete_config_map(settings, client, namespace, &name).await?;
    }
    Ok(())
}

/// [`remove_all`] with a client of its own.
pub async fn remove(
    settings: Settings,
    namespace: String,
    selector: String,
) -> Result<(), KubeError> {
    let client = client(settings, false).await?;
    remove_all(settings, &client, &namespace, &selector).await
}

/// Deletes one ConfigMap (a finished run's payload).
pub async fn remove_config_map(
    settings: Settings,
    namespace: String,
    name: String,
) -> Result<(), KubeError> {
    let client = client(settings, false).await?;
    delete_config_map(settings, &client, &namespace, &name).await
}

/// The Job `job` (as JSON) and the logs of `pods` (those gone already
/// are left out), by pod name.
pub async fn results(
    settings: Settings,
    namespace: String,
    job: String,
    pods: Vec<String>,
) -> Result<(Value, Vec<(String, String)>), KubeError> {
    let client = client(settings, false).await?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), &namespace);
    let object = match jobs.get(&job).await {
        Ok(object) => serde_json::to_value(object).unwrap_or_default(),
        Err(error) => {
            let error = settings.error(error);
            if !error.is_not_found() {
                return Err(error);
            }
            Value::Null
        }
    };
    let api: Api<Pod> = Api::namespaced(client, &namespace);
    let mut logs = Vec::with_capacity(pods.len());
    for pod in pods {
        match api.logs(&pod, &LogParams::default()).await {
            Ok(text) => logs.push((pod, text)),
            Err(error) => {
                let error = settings.error(error);
                if !error.is_not_found() {
                    return Err(error);
                }
            }
        }
    }
    Ok((object, logs))
}

/// What the watch of a component's objects reports.
#[derive(Debug)]
pub enum Observed {
    /// A Job event.
    Job(Box<watcher::Event<Job>>),
    /// A pod event.
    Pod(Box<watcher::Event<Pod>>),
}

/// The events of a component's Job and pods, errors included (the
/// watchers retry with backoff after each).
pub type Observations = BoxStream<'static, Result<Observed, KubeError>>;

/// Watches the Jobs and pods labelled `selector` in `namespace`.
pub async fn observe(
    settings: Settings,
    namespace: String,
    selector: String,
) -> Result<Observations, KubeError> {
    let client = client(settings, true).await?;
    let config = watcher::Config::default()
        .labels(&selector)
        .timeout(settings.watch_seconds());
    let jobs = watcher(
        Api::<Job>::namespaced(client.clone(), &namespace),
        config.clone(),
    )
    .default_backoff()
    .map(move |event| {
        event
            .map(|e| Observed::Job(Box::new(e)))
            .map_err(|e| watch_error(e, settings))
    });
    let pods = watcher(Api::<Pod>::namespaced(client, &namespace), config)
        .default_backoff()
        .map(move |event| {
            event
                .map(|e| Observed::Pod(Box::new(e)))
                .map_err(|e| watch_error(e, settings))
        });
    Ok(futures_util::stream::select(jobs, pods).boxed())
}

fn watch_error(error: watcher::Error, settings: Settings) -> KubeError {
    match error {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => settings.error(e),
        watcher::Error::WatchError(status) => KubeError::Api {
            code: status.code,
            reason: status.reason.clone(),
            message: status.message.clone(),
        },
        other => KubeError::Unreachable(other.to_string()),
    }
}

/// What the cluster holds of a component: its newest Job, in what state.
#[derive(Debug, Clone)]
pub struct Found {
    /// The Job's name.
    pub job: String,
    /// The Job's `Failed` condition (reason, message), if it failed.
    pub failed: Option<(String, String)>,
    /// The Job completed.
    pub complete: bool,
    /// A pod of the Job runs.
    pub running: bool,
    /// The Job's pods.
    pub pods: Vec<String>,
}

/// What the cluster holds of a component (a restarted daemon, or one
/// the API was away from, takes up the state of its Job).
#[derive(Debug, Clone, Default)]
pub struct Look {
    /// Its newest Job, if any.
    pub found: Option<Found>,
    /// Its payload ConfigMap, if one is there.
    pub config_map: Option<String>,
    /// The action that ConfigMap holds (its `results`, for the upload).
    pub payload: Option<Value>,
}

/// Looks for the objects of a component.
pub async fn find(
    settings: Settings,
    namespace: String,
    selector: String,
) -> Result<Look, KubeError> {
    let client = client(settings, false).await?;
    let list = ListParams::default().labels(&selector);
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let map = maps
        .list(&list)
        .await
        .map_err(|e| settings.error(e))?
        .items
        .into_iter()
        .max_by_key(|m| m.metadata.creation_timestamp.clone());
    let payload = map
        .as_ref()
        .and_then(|m| m.data.as_ref())
        .and_then(|d| d.get(crate::job::PAYLOAD_KEY))
        .and_then(|text| serde_json::from_str(text).ok());
    let config_map = map.and_then(|m| m.metadata.name);
    let jobs: Api<Job> = Api::namespaced(client.clone(), &namespace);
    let found = jobs.list(&list).await.map_err(|e| settings.error(e))?;
    let Some(job) = found
        .items
        .into_iter()
        .max_by_key(|j| j.metadata.creation_timestamp.clone())
    else {
        return Ok(Look {
            found: None,
            config_map,
            payload,
        });
    };
    let condition = |kind: &str| {
        job.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == kind && c.status == "True"))
            .cloned()
    };
    let failed = condition("Failed").map(|c| {
        (
            c.reason.unwrap_or_else(|| "Failed".into()),
            c.message.unwrap_or_default(),
        )
    });
    let complete = condition("Complete").is_some();
    let name = job.metadata.name.unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(client, &namespace);
    let pods = pods
        .list(&ListParams::default().labels(&format!("job-name={name}")))
        .await
        .map_err(|e| settings.error(e))?
        .items;
    let running = pods
        .iter()
        .any(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"));
    Ok(Look {
        found: Some(Found {
            job: name,
            failed,
            complete,
            running,
            pods: pods.into_iter().filter_map(|p| p.metadata.name).collect(),
        }),
        config_map,
        payload,
    })
}
