//! The results of a completed Job, uploaded when the `start` named a
//! `results` URL: the Job object (`job.json`, with its final status) and
//! the log of each of its pods (`logs/<pod>.log`), zipped and sent with
//! `PUT` by `villas_sdk::transfer` (as the other simulators' run
//! directories are).

use crate::api::{self, KubeError, Settings};
use std::path::PathBuf;
use villas_sdk::transfer::{self, ResultsTarget, TransferError};

/// Why the results were not uploaded.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// Reading the Job or its pods' logs failed.
    #[error("reading the Job's results: {0}")]
    Kube(#[from] KubeError),
    /// Writing the files or the upload failed.
    #[error("{0}")]
    Transfer(#[from] TransferError),
}

/// Collects the results of Job `job` (its pods `pods`) into `dir` and
/// uploads them to `target`; `dir` is removed afterwards.
pub async fn upload(
    settings: Settings,
    namespace: String,
    job: String,
    pods: Vec<String>,
    dir: PathBuf,
    target: ResultsTarget,
) -> Result<(), ResultsError> {
    let collected = collect(settings, namespace, job, pods, dir.clone()).await;
    let result = match collected {
        Ok(()) => transfer::upload(dir.clone(), target)
            .await
            .map_err(ResultsError::from),
        Err(error) => Err(error),
    };
    let _ = tokio::fs::remove_dir_all(&dir).await;
    result
}

async fn collect(
    settings: Settings,
    namespace: String,
    job: String,
    pods: Vec<String>,
    dir: PathBuf,
) -> Result<(), ResultsError> {
    let (object, logs) = api::results(settings, namespace, job, pods).await?;
    let logs_dir = dir.join("logs");
    tokio::fs::create_dir_all(&logs_dir)
        .await
        .map_err(TransferError::from)?;
    let text = serde_json::to_vec_pretty(&object).unwrap_or_default();
    tokio::fs::write(dir.join("job.json"), text)
        .await
        .map_err(TransferError::from)?;
    for (pod, log) in logs {
        tokio::fs::write(logs_dir.join(format!("{pod}.log")), log)
            .await
            .map_err(TransferError::from)?;
    }
    Ok(())
}
