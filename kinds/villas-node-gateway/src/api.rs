//! The client side of VILLASnode's HTTP API v2 for one node:
//! `GET /api/v2/node/{name}` and `POST /api/v2/node/{name}/{action}`
//! (without a body: VILLASnode refuses one with 400), every request
//! bounded by the configured timeout.

use serde_json::{Map, Value};
use std::time::Duration;

/// Why a request to VILLASnode did not give an answer to use.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No connection, a timeout, a broken body.
    #[error("{url}: {detail}")]
    Transport {
        /// The request's URL.
        url: String,
        /// What went wrong, with its causes (`timed out` for a stall).
        detail: String,
    },
    /// VILLASnode answered with an error status.
    #[error("{url}: HTTP {status}: {text}")]
    Status {
        /// The request's URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// VILLASnode's `error` text (or the body).
        text: String,
    },
    /// The body is not the node object expected.
    #[error("{url}: unexpected answer: {what}")]
    Unexpected {
        /// The request's URL.
        url: String,
        /// What is wrong.
        what: String,
    },
}

/// One node of a VILLASnode.
#[derive(Debug, Clone)]
pub struct NodeApi {
    /// `{api_url}/api/v2/node/{name}`.
    base: String,
    /// Every request has the timeout.
    client: reqwest::Client,
}

impl NodeApi {
    /// The node `name` of the VILLASnode at `api_url`.
    pub fn new(api_url: &str, name: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        Ok(NodeApi {
            base: format!("{}/api/v2/node/{name}", api_url.trim_end_matches('/')),
            client,
        })
    }

    /// `GET /node/{name}`.
    pub async fn get(&self) -> Result<Map<String, Value>, ApiError> {
        let url = self.base.clone();
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|source| transport(&url, &source))?;
        match read(url.clone(), response).await? {
            Value::Object(node) => Ok(node),
            _ => Err(ApiError::Unexpected {
                url,
                what: "not an object".into(),
            }),
        }
    }

    /// `POST /node/{name}/{action}` without a body.
    pub async fn act(&self, action: &str) -> Result<(), ApiError> {
        let url = format!("{}/{action}", self.base);
        let response = self
            .client
            .post(&url)
            .send()
            .await
            .map_err(|source| transport(&url, &source))?;
        read(url, response).await.map(drop)
    }
}

/// A transport error, with its causes spelled out (reqwest's own text
/// leaves them out).
fn transport(url: &str, error: &reqwest::Error) -> ApiError {
    let mut detail = if error.is_timeout() {
        "timed out".to_owned()
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    ApiError::Transport {
        url: url.to_owned(),
        detail,
    }
}

/// The JSON body of a 2xx answer (null if empty), else the error.
async fn read(url: String, response: reqwest::Response) -> Result<Value, ApiError> {
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|source| transport(&url, &source))?;
    let body: Option<Value> = serde_json::from_slice(&bytes).ok();
    if !status.is_success() {
        let text = body
            .as_ref()
            .and_then(|b| b.get("error"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
        return Err(ApiError::Status {
            url,
            status: status.as_u16(),
            text,
        });
    }
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    body.ok_or(ApiError::Unexpected {
        url,
        what: "not JSON".into(),
    })
}
