//! The client side of VILLASnode's HTTP API v2 that the manager uses:
//! `GET /api/v2/status`, `GET /api/v2/nodes`, `POST /api/v2/restart`,
//! every request bounded by the configured timeout.

use serde_json::Value;
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
    /// The body is not the JSON expected.
    #[error("{url}: unexpected answer: {what}")]
    Unexpected {
        /// The request's URL.
        url: String,
        /// What is wrong.
        what: String,
    },
}

/// A VILLASnode's API v2.
#[derive(Debug, Clone)]
pub struct Api {
    /// `{api_url}/api/v2`.
    base: String,
    /// Shared connection pool; every request has the timeout.
    client: reqwest::Client,
}

/// One node as `/api/v2/nodes` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// `name`.
    pub name: String,
    /// `uuid`.
    pub uuid: String,
    /// `type` (`websocket`, ...).
    pub node_type: String,
    /// The whole object.
    pub json: serde_json::Map<String, Value>,
}

/// What one poll learnt.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// `/status`.`version`.
    pub version: Option<String>,
    /// `/status`.`uuid`.
    pub uuid: Option<String>,
    /// `/nodes`.
    pub nodes: Vec<Node>,
}

impl Api {
    /// A client of the VILLASnode at `api_url` (without `/api/v2`).
    pub fn new(api_url: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        Ok(Api {
            base: format!("{}/api/v2", api_url.trim_end_matches('/')),
            client,
        })
    }

    /// `GET /status` and `GET /nodes`.
    pub async fn poll(&self) -> Result<Snapshot, ApiError> {
        let status = self.get("/status").await?;
        let nodes = self.get("/nodes").await?;
        let url = format!("{}/nodes", self.base);
        let Value::Array(items) = nodes else {
            return Err(ApiError::Unexpected {
                url,
                what: "not a list".into(),
            });
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let Value::Object(json) = item else {
                return Err(ApiError::Unexpected {
                    url,
                    what: "a node is not an object".into(),
                });
            };
            let text = |key: &str| json.get(key).and_then(Value::as_str).map(str::to_owned);
            let (Some(name), Some(uuid)) = (text("name"), text("uuid")) else {
                return Err(ApiError::Unexpected {
                    url,
                    what: "a node without name or uuid".into(),
                });
            };
            let node_type = text("type").unwrap_or_default();
            out.push(Node {
                name,
                uuid,
                node_type,
                json,
            });
        }
        let text = |key: &str| status.get(key).and_then(Value::as_str).map(str::to_owned);
        Ok(Snapshot {
            version: text("version"),
            uuid: text("uuid"),
            nodes: out,
        })
    }

    /// `POST /restart` without a body: VILLASnode restarts with its
    /// configuration.
    pub async fn restart(&self) -> Result<(), ApiError> {
        let url = format!("{}/restart", self.base);
        let response = self
            .client
            .post(&url)
            .send()
            .await
            .map_err(|source| transport(&url, &source))?;
        read(url, response).await.map(drop)
    }

    async fn get(&self, path: &str) -> Result<Value, ApiError> {
        let url = format!("{}{path}", self.base);
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|source| transport(&url, &source))?;
        read(url, response).await
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
