//! Optional bearer-token authentication of the HTTP API: the token comes
//! from a file or an environment variable (`api.token_file`,
//! `api.token_env`), is compared in constant time, and a request without
//! it, or with another, gets 401 with `WWW-Authenticate: Bearer`. Health
//! and metrics can be left open (`api.open_health`, `api.open_metrics`);
//! the OpenAPI document is always open.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The secret; never printed (its `Debug` is redacted).
#[derive(Clone)]
pub(crate) struct BearerToken(Arc<str>);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(***)")
    }
}

impl BearerToken {
    /// Whether `given` is the token, in time independent of where they
    /// differ.
    pub(crate) fn matches(&self, given: &str) -> bool {
        self.0.as_bytes().ct_eq(given.as_bytes()).into()
    }
}

/// Who may call the API without the token.
#[derive(Debug, Clone)]
pub(crate) struct ApiAuth {
    /// The token every other request must carry.
    pub(crate) token: BearerToken,
    /// `GET /api/v1/health` answers without it.
    pub(crate) open_health: bool,
    /// `GET /metrics` answers without it.
    pub(crate) open_metrics: bool,
}

/// A token that cannot be loaded: the settings key and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenError {
    /// `api.token_file` or `api.token_env`.
    pub(crate) key: &'static str,
    /// What is wrong.
    pub(crate) message: String,
}

/// Loads the token from `file` (surrounding whitespace trimmed) or from
/// the environment variable named `env`; `None` when neither is set.
pub(crate) fn load_token(
    file: Option<&Path>,
    env: Option<&str>,
) -> Result<Option<BearerToken>, TokenError> {
    let (key, text) = match (file, env) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(TokenError {
                key: "api.token_env",
                message: "set api.token_file or api.token_env, not both".into(),
            })
        }
        (Some(path), None) => (
            "api.token_file",
            std::fs::read_to_string(path).map_err(|e| TokenError {
                key: "api.token_file",
                message: format!("cannot read {}: {e}", path.display()),
            })?,
        ),
        (None, Some(name)) => (
            "api.token_env",
            std::env::var(name).map_err(|_| TokenError {
                key: "api.token_env",
                message: format!("the environment variable {name:?} is not set (or not UTF-8)"),
            })?,
        ),
    };
    let token = text.trim();
    if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TokenError {
            key,
            message: "the token must be non-empty and contain no whitespace".into(),
        });
    }
    Ok(Some(BearerToken(token.into())))
}

/// The health path (open unless `api.open_health` is false).
pub(crate) const HEALTH_PATH: &str = "/api/v1/health";
/// The metrics path (open if `api.open_metrics` is true).
pub(crate) const METRICS_PATH: &str = "/metrics";
/// The OpenAPI document's path (always open).
pub(crate) const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// Middleware: lets a request through if no token is configured, its path
/// is open, or it carries `Authorization: Bearer <token>`; else 401.
pub(crate) async fn require_token(
    auth: web::Data<Option<ApiAuth>>,
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(auth) = auth.as_ref().as_ref() else {
        return Ok(next.call(request).await?.map_into_left_body());
    };
    let path = request.path();
    let open = path == OPENAPI_PATH
        || (auth.open_health && path == HEALTH_PATH)
        || (auth.open_metrics && path == METRICS_PATH);
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer);
    let refusal = match given {
        _ if open => None,
        Some(token) if auth.token.matches(token) => None,
        Some(_) => Some(("invalid_token", "the bearer token is wrong")),
        None => Some(("", "this API needs an Authorization: Bearer token")),
    };
    match refusal {
        None => Ok(next.call(request).await?.map_into_left_body()),
        Some((code, message)) => {
            tracing::warn!(path = %request.path(), peer = ?request.peer_addr(), "HTTP API request refused: {message}");
            let response = unauthorized(code, message);
            Ok(request.into_response(response).map_into_right_body())
        }
    }
}

/// The credentials of `Bearer <token>` (scheme case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn unauthorized(code: &str, message: &str) -> HttpResponse {
    let challenge = if code.is_empty() {
        "Bearer realm=\"villas-controller\"".to_owned()
    } else {
        format!("Bearer realm=\"villas-controller\", error=\"{code}\"")
    };
    HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, challenge))
        .json(json!({"error": {"kind": "unauthorized", "message": message, "msg": message}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
    }

    #[test]
    fn tokens_compare_whole() {
        let token = BearerToken("s3cret".into());
        assert!(token.matches("s3cret"));
        assert!(!token.matches("s3cre"));
        assert!(!token.matches("s3cretx"));
        assert!(!token.matches(""));
        assert_eq!(format!("{token:?}"), "BearerToken(***)");
    }

    #[test]
    fn loading() {
        let dir = std::env::temp_dir().join(format!("villas-token-{}", std::process::id()));
        std::fs::write(&dir, "  tok-en\n").unwrap();
        let token = load_token(Some(&dir), None).unwrap().unwrap();
        assert!(token.matches("tok-en"));
        std::fs::write(&dir, "a b").unwrap();
        assert_eq!(
            load_token(Some(&dir), None).unwrap_err().key,
            "api.token_file"
        );
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(
            load_token(Some(&dir), None).unwrap_err().key,
            "api.token_file"
        );
        assert!(load_token(None, None).unwrap().is_none());
        let missing = load_token(None, Some("VILLAS_TEST_SURELY_UNSET_VARIABLE")).unwrap_err();
        assert_eq!(missing.key, "api.token_env");
        assert!(load_token(Some(&dir), Some("X")).is_err());
    }
}
