//! The client side of VILLASrelay's status API: `GET {api_url}/api/v1`
//! (the relay answers the same document for every path under `/api/v1`),
//! bounded by the configured timeout.

use serde_json::{Map, Value};
use std::time::Duration;

/// Why the relay did not give an answer to use.
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
    /// The relay answered with an error status.
    #[error("{url}: HTTP {status}")]
    Status {
        /// The request's URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The body is not the relay's document.
    #[error("{url}: unexpected answer: {what}")]
    Unexpected {
        /// The request's URL.
        url: String,
        /// What is wrong.
        what: String,
    },
}

/// One session of the relay.
#[derive(Debug, Clone)]
pub struct Session {
    /// `identifier` (the WebSocket path `/<identifier>`).
    pub identifier: String,
    /// The session's object as the relay lists it.
    pub json: Map<String, Value>,
}

/// The relay's status document.
#[derive(Debug, Clone)]
pub struct RelayStatus {
    /// `version`.
    pub version: Option<String>,
    /// `uuid` (the relay's).
    pub uuid: Option<String>,
    /// `sessions`.
    pub sessions: Vec<Session>,
}

/// A VILLASrelay's status API.
#[derive(Debug, Clone)]
pub struct RelayApi {
    /// `{api_url}/api/v1`.
    url: String,
    /// Every request has the timeout.
    client: reqwest::Client,
}

impl RelayApi {
    /// The relay at `api_url` (without `/api/v1`).
    pub fn new(api_url: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        Ok(RelayApi {
            url: format!("{}/api/v1", api_url.trim_end_matches('/')),
            client,
        })
    }

    /// `GET /api/v1`.
    pub async fn status(&self) -> Result<RelayStatus, ApiError> {
        let url = self.url.clone();
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| transport(&url, &e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(ApiError::Status {
                url,
                status: status.as_u16(),
            });
        }
        let bytes = response.bytes().await.map_err(|e| transport(&url, &e))?;
        let unexpected = |what: &str| ApiError::Unexpected {
            url: url.clone(),
            what: what.to_owned(),
        };
        let Ok(Value::Object(document)) = serde_json::from_slice::<Value>(&bytes) else {
            return Err(unexpected("not a JSON object"));
        };
        let Some(Value::Array(items)) = document.get("sessions") else {
            return Err(unexpected("no sessions list"));
        };
        let mut sessions = Vec::with_capacity(items.len());
        for item in items {
            let Value::Object(json) = item else {
                return Err(unexpected("a session is not an object"));
            };
            let Some(identifier) = json.get("identifier").and_then(Value::as_str) else {
                return Err(unexpected("a session without identifier"));
            };
            sessions.push(Session {
                identifier: identifier.to_owned(),
                json: json.clone(),
            });
        }
        let text = |key: &str| document.get(key).and_then(Value::as_str).map(str::to_owned);
        Ok(RelayStatus {
            version: text("version"),
            uuid: text("uuid"),
            sessions,
        })
    }
}

/// A transport error, with its causes spelled out.
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
