//! The Kubernetes API calls of a `simulator/kubernetes` component, as
//! futures its tasks run: the client (`KUBECONFIG`, else the in-cluster
//! service account; every request with timeouts), creating the payload
//! ConfigMap and the Job, deleting what a component created (found by
//! its labels), and the watch of its Job and pods (kube-runtime
//! watchers, which keep the `resourceVersion` and re-list after a
//! `410 Gone`, retrying with backoff).

use futures_util::stream::{BoxStream, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use kube::Client;
use std::time::Duration;
use villas_sdk::{ErrorCode, ErrorInfo};

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a (non-watch) request may wait for an answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

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
}

impl KubeError {
    /// As a published error, with what failed first.
    pub fn to_error_info(&self, what: &str) -> ErrorInfo {
        let info = ErrorInfo::new(ErrorCode::Failed, format!("{what}: {self}"));
        match self {
            KubeError::Api { code, reason, .. } => info
                .with("status_code", *code)
                .with("reason", reason.as_str()),
            KubeError::Config(_) => info.with("reason", "no-configuration"),
            KubeError::Unreachable(_) => info.with("reason", "unreachable"),
        }
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

impl From<kube::Error> for KubeError {
    fn from(error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => KubeError::Api {
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
            other => KubeError::Unreachable(other.to_string()),
        }
    }
}

/// A client from `KUBECONFIG` (else `~/.kube/config`, else the in-cluster
/// service account). `watching`: no read timeout (a watch is quiet for
/// minutes; the watcher's own timeout and backoff bound it).
pub async fn client(watching: bool) -> Result<Client, KubeError> {
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
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    if !watching {
        config.read_timeout = Some(REQUEST_TIMEOUT);
        config.write_timeout = Some(REQUEST_TIMEOUT);
    }
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

/// Deletes what a previous run of the component left (by `selector`),
/// then creates the payload ConfigMap and the Job built from its name.
/// If the Job cannot be created the ConfigMap is deleted again.
pub async fn create(
    namespace: String,
    selector: String,
    config_map: ConfigMap,
    build_job: impl FnOnce(&str) -> Result<Job, String>,
) -> Result<Created, KubeError> {
    let client = client(false).await?;
    remove_all(&client, &namespace, &selector).await?;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let map = maps.create(&PostParams::default(), &config_map).await?;
    let map_name = map.metadata.name.unwrap_or_default();
    let job = match build_job(&map_name) {
        Ok(job) => job,
        Err(error) => {
            let _ = delete_config_map(&client, &namespace, &map_name).await;
            return Err(KubeError::Config(error));
        }
    };
    let jobs: Api<Job> = Api::namespaced(client.clone(), &namespace);
    match jobs.create(&PostParams::default(), &job).await {
        Ok(job) => Ok(Created {
            job: job.metadata.name.unwrap_or_default(),
            config_map: map_name,
        }),
        Err(error) => {
            let _ = delete_config_map(&client, &namespace, &map_name).await;
            Err(error.into())
        }
    }
}

async fn delete_config_map(client: &Client, namespace: &str, name: &str) -> Result<(), KubeError> {
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    match maps.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(error) => {
            let error = KubeError::from(error);
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
pub async fn remove_all(client: &Client, namespace: &str, selector: &str) -> Result<(), KubeError> {
    let list = ListParams::default().labels(selector);
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    for job in jobs.list(&list).await? {
        let name = job.metadata.name.unwrap_or_default();
        if let Err(error) = jobs.delete(&name, &DeleteParams::background()).await {
            let error = KubeError::from(error);
            if !error.is_not_found() {
                return Err(error);
            }
        }
    }
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    for map in maps.list(&list).await? {
        delete_config_map(client, namespace, &map.metadata.name.unwrap_or_default()).await?;
    }
    Ok(())
}

/// [`remove_all`] with a client of its own.
pub async fn remove(namespace: String, selector: String) -> Result<(), KubeError> {
    let client = client(false).await?;
    remove_all(&client, &namespace, &selector).await
}

/// Deletes one ConfigMap (a finished run's payload).
pub async fn remove_config_map(namespace: String, name: String) -> Result<(), KubeError> {
    let client = client(false).await?;
    delete_config_map(&client, &namespace, &name).await
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
pub async fn observe(namespace: String, selector: String) -> Result<Observations, KubeError> {
    let client = client(true).await?;
    let config = watcher::Config::default().labels(&selector);
    let jobs = watcher(
        Api::<Job>::namespaced(client.clone(), &namespace),
        config.clone(),
    )
    .default_backoff()
    .map(|event| {
        event
            .map(|e| Observed::Job(Box::new(e)))
            .map_err(watch_error)
    });
    let pods = watcher(Api::<Pod>::namespaced(client, &namespace), config)
        .default_backoff()
        .map(|event| {
            event
                .map(|e| Observed::Pod(Box::new(e)))
                .map_err(watch_error)
        });
    Ok(futures_util::stream::select(jobs, pods).boxed())
}

fn watch_error(error: watcher::Error) -> KubeError {
    match error {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => e.into(),
        watcher::Error::WatchError(status) => KubeError::Api {
            code: status.code,
            reason: status.reason.clone(),
            message: status.message.clone(),
        },
        other => KubeError::Unreachable(other.to_string()),
    }
}

/// What a previous daemon left of a component: its newest Job.
#[derive(Debug, Clone)]
pub struct Found {
    /// The Job's name.
    pub job: String,
    /// Its payload ConfigMap, if it is still there.
    pub config_map: Option<String>,
    /// The Job's `Failed` condition (reason, message), if it failed.
    pub failed: Option<(String, String)>,
    /// The Job completed.
    pub complete: bool,
}

/// Looks for the objects of a component (a restarted daemon takes up
/// their state).
pub async fn find(namespace: String, selector: String) -> Result<Option<Found>, KubeError> {
    let client = client(false).await?;
    let list = ListParams::default().labels(&selector);
    let jobs: Api<Job> = Api::namespaced(client.clone(), &namespace);
    let found = jobs.list(&list).await?;
    let Some(job) = found
        .items
        .into_iter()
        .max_by_key(|j| j.metadata.creation_timestamp.clone())
    else {
        return Ok(None);
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
    let maps: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let config_map = maps
        .list(&list)
        .await?
        .items
        .into_iter()
        .find_map(|m| m.metadata.name);
    Ok(Some(Found {
        job: job.metadata.name.unwrap_or_default(),
        config_map,
        failed,
        complete,
    }))
}
