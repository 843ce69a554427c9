//! The HTTP API, compatible with the reference's `/api/v1`: the list of
//! components and the controller's status, health, one component's status,
//! and running an action on a component; plus Prometheus metrics at
//! `/metrics` and its OpenAPI document at `/api/v1/openapi.json`, behind
//! optional bearer-token auth (`auth`). It talks to component actors
//! directly, so it works the same on the AMQP and the in-process bus.

pub(crate) mod auth;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpResponse, HttpServer};
use serde::Deserialize;
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use villas_actors::ic::actor::{Execute, Executed, GetStatus};
use villas_actors::ic::directory::Directory;
use villas_actors::invalid::InvalidSetting;
use villas_sdk::protocol::{parse_body, Body, HostInfo};
use villas_sdk::{ErrorCode, ErrorInfo};

/// `[api]` as written in the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApi {
    /// Serve the HTTP API.
    enabled: Option<bool>,
    /// TCP port (0: any free port, logged at start-up).
    port: Option<u16>,
    /// Bind address.
    bind: Option<String>,
    /// File holding the bearer token the API requires (none: no auth).
    token_file: Option<PathBuf>,
    /// Name of an environment variable holding the bearer token.
    token_env: Option<String>,
    /// With a token: `/api/v1/health` answers without it (default true).
    open_health: Option<bool>,
    /// With a token: `/metrics` answers without it (default false).
    open_metrics: Option<bool>,
}

/// The HTTP API's section of the settings, validated here.
#[derive(Debug, Clone)]
pub(crate) struct ApiSettings {
    /// Where to listen.
    pub(crate) listen: SocketAddr,
    /// Bearer-token authentication (`None`: the API is open).
    pub(crate) auth: Option<auth::ApiAuth>,
}

impl ApiSettings {
    /// Validates the `api` section (reading the token); `None`: the API
    /// is disabled.
    pub(crate) fn from_raw(raw: RawApi) -> Result<Option<ApiSettings>, InvalidSetting> {
        if !raw.enabled.unwrap_or(true) {
            return Ok(None);
        }
        let bind = raw.bind.as_deref().unwrap_or("127.0.0.1");
        let ip: IpAddr = bind
            .parse()
            .map_err(|_| InvalidSetting::new("api.bind", format!("not an IP address: {bind:?}")))?;
        let token = auth::load_token(raw.token_file.as_deref(), raw.token_env.as_deref())
            .map_err(|e| InvalidSetting::new(e.key, e.message))?;
        Ok(Some(ApiSettings {
            listen: SocketAddr::new(ip, raw.port.unwrap_or(8089)),
            auth: token.map(|token| auth::ApiAuth {
                token,
                open_health: raw.open_health.unwrap_or(true),
                open_metrics: raw.open_metrics.unwrap_or(false),
            }),
        }))
    }
}

/// What the handlers need.
#[derive(Clone)]
pub(crate) struct ApiState {
    /// Every component.
    pub(crate) directory: Directory,
    /// The daemon's uuid.
    pub(crate) uuid: String,
    /// Host facts.
    pub(crate) host: Arc<HostInfo>,
    /// When the daemon started.
    pub(crate) started: Instant,
    /// `amqp` or `local`.
    pub(crate) bus: &'static str,
    /// The metrics served at `/metrics`.
    pub(crate) metrics: Arc<villas_metrics::Metrics>,
    /// Bearer-token auth (`None`: open).
    pub(crate) auth: Option<auth::ApiAuth>,
}

/// The OpenAPI document served at `/api/v1/openapi.json`; it describes
/// exactly [`ROUTES`] (checked by the tests).
pub(crate) const OPENAPI: &str = include_str!("openapi.json");

/// Declares every route once: [`ROUTES`] (what the OpenAPI document must
/// describe) and the function that registers them.
macro_rules! routes {
    ($($method:ident $path:literal => $handler:path),* $(,)?) => {
        /// Every route the API serves: (method, path).
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        fn configure(config: &mut web::ServiceConfig) {
            $(config.route($path, web::$method().to($handler));)*
        }
    };
}

routes! {
    get "/api/v1" => index,
    get "/api/v1/" => index,
    get "/api/v1/health" => health,
    get "/api/v1/openapi.json" => openapi,
    get "/api/v1/component/{uuid}" => get_component,
    post "/api/v1/component/{uuid}" => post_component,
    get "/metrics" => metrics,
}

/// Binds the API and starts serving it on the current actix system.
/// Returns the handle to stop it and the address actually bound.
pub(crate) fn serve(
    listen: SocketAddr,
    state: ApiState,
) -> std::io::Result<(ServerHandle, SocketAddr)> {
    let auth = web::Data::new(state.auth.clone());
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(auth.clone())
            .app_data(web::PayloadConfig::new(1 << 20))
            .wrap(actix_web::middleware::from_fn(auth::require_token))
            .configure(configure)
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(2)
    .bind(listen)?;
    let bound = server.addrs().first().copied().unwrap_or(listen);
    let server = server.run();
    let handle = server.handle();
    actix::spawn(server);
    Ok((handle, bound))
}

async fn index(state: web::Data<ApiState>) -> HttpResponse {
    let components = state.directory.uuids();
    let kernel: serde_json::Value =
        serde_json::from_str(state.host.kernel.get()).unwrap_or_default();
    HttpResponse::Ok().json(json!({
        "components": components,
        "status": {
            "uuid": state.uuid,
            "version": state.host.version,
            "uptime": state.started.elapsed().as_secs_f64(),
            "host": state.host.host,
            "kernel": kernel,
            "bus": state.bus,
        }
    }))
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(OPENAPI)
}

/// Streams the scrape chunk by chunk (see `villas_metrics::Scrape`):
/// each chunk (a few hundred ICs, well under a millisecond) is encoded
/// when the connection can take it, so neither the worker nor the
/// allocator ever holds the whole body of thousands of ICs.
async fn metrics(state: web::Data<ApiState>) -> HttpResponse {
    match state.metrics.scrape() {
        Ok(scrape) => HttpResponse::Ok()
            .content_type(villas_metrics::CONTENT_TYPE)
            .streaming(futures_util::stream::iter(scrape.map(|chunk| {
                chunk.map(web::Bytes::from).inspect_err(|error| {
                    tracing::error!(%error, "cannot render the metrics; scrape aborted");
                })
            }))),
        Err(error) => {
            tracing::error!(%error, "cannot render the metrics");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &ErrorInfo::new(ErrorCode::Failed, error.to_string()),
            )
        }
    }
}

fn error_response(status: StatusCode, error: &ErrorInfo) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": error }))
}

fn lookup(state: &ApiState, uuid: &str) -> Option<actix::Addr<villas_actors::ic::actor::IcActor>> {
    state
        .directory
        .lookup(&villas_sdk::spec::canonical_uuid(uuid))
}

fn not_found(uuid: &str) -> HttpResponse {
    error_response(
        StatusCode::NOT_FOUND,
        &ErrorInfo::new(
            ErrorCode::UnknownComponent,
            format!("no component with uuid {uuid:?}"),
        ),
    )
}

/// 400 for a refused or failed action, or a malformed one: the
/// component's status with the error where the bus publishes it
/// (`status.error`), and also as `error` (ours) and as `exception` (the
/// reference's shape) at the top level.
fn refusal(status: &[u8], error: &ErrorInfo) -> HttpResponse {
    let mut body =
        serde_json::from_slice::<serde_json::Value>(status).unwrap_or_else(|_| json!({}));
    if let Some(object) = body.as_object_mut() {
        if let Some(status) = object.get_mut("status").and_then(|s| s.as_object_mut()) {
            status.insert("error".into(), json!(error));
        }
        object.insert("error".into(), json!(error));
        object.insert(
            "exception".into(),
            json!({"msg": error.message, "args": [error.message]}),
        );
    }
    HttpResponse::BadRequest().json(body)
}

fn json_bytes(body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body)
}

fn unavailable() -> HttpResponse {
    error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &ErrorInfo::new(ErrorCode::Failed, "the component is stopping"),
    )
}

/// 400 for a body that is no valid action: refused like a refused action
/// (the component's state is kept; over HTTP nothing is published).
async fn malformed(
    addr: &actix::Addr<villas_actors::ic::actor::IcActor>,
    error: &ErrorInfo,
) -> HttpResponse {
    match addr.send(GetStatus).await {
        Ok(status) => refusal(&status, error),
        Err(_) => unavailable(),
    }
}

async fn get_component(state: web::Data<ApiState>, uuid: web::Path<String>) -> HttpResponse {
    let Some(addr) = lookup(&state, &uuid) else {
        return not_found(&uuid);
    };
    match addr.send(GetStatus).await {
        Ok(body) => json_bytes(body),
        Err(_) => unavailable(),
    }
}

async fn post_component(
    state: web::Data<ApiState>,
    uuid: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let Some(addr) = lookup(&state, &uuid) else {
        return not_found(&uuid);
    };
    let action = match parse_body(&body) {
        Body::Action(action) => action,
        Body::Invalid(error) => return malformed(&addr, &error.to_error_info()).await,
        Body::NotAnAction => {
            let error = ErrorInfo::new(ErrorCode::MalformedMessage, "the body has no \"action\"");
            return malformed(&addr, &error).await;
        }
    };
    tracing::info!(uuid = %uuid, action = %action.kind, "action via HTTP API");
    match addr.send(Execute(action)).await {
        Ok(Executed {
            status,
            error: None,
        }) => json_bytes(status),
        Ok(Executed {
            status,
            error: Some(error),
        }) => refusal(&status, &error),
        Err(_) => unavailable(),
    }
}
