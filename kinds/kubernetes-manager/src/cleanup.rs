//! Deleting what a deleted component created in the cluster: its Jobs
//! (propagation `Background`, so their pods go too) and its ConfigMaps,
//! found by the label `villas.fein-aachen.org/ic-uuid`. The client comes
//! from `KUBECONFIG`, else the in-cluster service account, with timeouts.

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

async fn client() -> Result<Client, KubeError> {
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
    config.connect_timeout = Some(Duration::from_secs(5));
    config.read_timeout = Some(Duration::from_secs(15));
    config.write_timeout = Some(Duration::from_secs(15));
    Client::try_from(config).map_err(|e| KubeError::Config(e.to_string()))
}

fn gone_is_fine<T>(result: Result<T, kube::Error>) -> Result<(), KubeError> {
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(error) => Err(KubeError::Api(error.to_string())),
    }
}

/// Deletes every Job and ConfigMap of component `uuid` in `namespace`.
pub async fn remove(namespace: String, uuid: String) -> Result<(), KubeError> {
    let client = client().await?;
    let list = ListParams::default().labels(&format!("{LABEL_IC}={uuid}"));
    let jobs: Api<Job> = Api::namespaced(client.clone(), &namespace);
    let found = jobs
        .list(&list)
        .await
        .map_err(|e| KubeError::Api(e.to_string()))?;
    for job in found {
        let name = job.metadata.name.unwrap_or_default();
        gone_is_fine(jobs.delete(&name, &DeleteParams::background()).await)?;
    }
    let maps: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let found = maps
        .list(&list)
        .await
        .map_err(|e| KubeError::Api(e.to_string()))?;
    for map in found {
        let name = map.metadata.name.unwrap_or_default();
        gone_is_fine(maps.delete(&name, &DeleteParams::default()).await)?;
    }
    Ok(())
}

/// Checks that `namespace` exists with a namespaced `get` (what a service
/// account bound to that namespace may do; listing every namespace needs
/// a cluster role).
pub async fn check_namespace(namespace: String) -> Result<(), KubeError> {
    let client = client().await?;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    namespaces
        .get(&namespace)
        .await
        .map(drop)
        .map_err(|e| KubeError::Api(e.to_string()))
}
