//! Deleting what a deleted component created in the cluster: its Jobs
//! (propagation `Background`, so their pods go too) and its ConfigMaps,
//! found by the label `villas.fein-aachen.org/ic-uuid`; and the check of
//! the manager's namespace. The client comes from `KUBECONFIG`, else the
//! in-cluster service account, every request bounded by `api_timeout`.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams};
use kube::Client;
use std::time::Duration;

/// The label the simulator kind puts on every object of a component.
const LABEL_IC: &str = "villas.fein-aachen.org/ic-uuid";

/// A failed Kubernetes call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KubeError {
    /// No configuration.
    #[error("no Kubernetes configuration: {0}")]
    Config(String),
    /// The API answered with an error status, or could not be reached.
    #[error("Kubernetes API error: {0}")]
    Api(String),
}

async fn client(timeout: Duration) -> Result<Client, KubeError> {
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
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    // The timeout counts from the request, not from when its pooled
    // connection went idle.
    config.reset_reader_on_write = true;
    Client::try_from(config).map_err(|e| KubeError::Config(e.to_string()))
}

/// The error, a timeout named as such.
fn api_error(error: &kube::Error, timeout: Duration) -> KubeError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        let timed_out = cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut);
        if timed_out || cause.to_string().contains("timed out") {
            return KubeError::Api(format!("no answer within {timeout:?}"));
        }
        source = cause.source();
    }
    KubeError::Api(error.to_string())
}

fn gone_is_fine<T>(result: Result<T, kube::Error>, timeout: Duration) -> Result<(), KubeError> {
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(error) => Err(api_error(&error, timeout)),
    }
}

/// Deletes every Job and ConfigMap of component `uuid` in `namespace`.
pub async fn remove(namespace: String, uuid: String, timeout: Duration) -> Result<(), KubeError> {
    let client = client(timeout).await?;
    let list = ListParams::default().labels(&format!("{LABEL_IC}={uuid}"));
    let jobs: Api<Job> = Api::namespaced(client.clone(), &namespace);
    let found = jobs.list(&list).await.map_err(|e| api_error(&e, timeout))?;
    for job in found {
        let name = job.metadata.name.unwrap_or_default();
        gone_is_fine(
            jobs.delete(&name, &DeleteParams::background()).await,
            timeout,
        )?;
    }
    let maps: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let found = maps.list(&list).await.map_err(|e| api_error(&e, timeout))?;
    for map in found {
        let name = map.metadata.name.unwrap_or_default();
        gone_is_fine(maps.delete(&name, &DeleteParams::default()).await, timeout)?;
    }
    Ok(())
}

/// Checks that `namespace` exists with a namespaced `get` (what a service
/// account bound to that namespace may do; listing every namespace needs
/// a cluster role).
pub async fn check_namespace(namespace: String, timeout: Duration) -> Result<(), KubeError> {
    let client = client(timeout).await?;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    namespaces
        .get(&namespace)
        .await
        .map(drop)
        .map_err(|e| api_error(&e, timeout))
}
