//! # villas-kind-villas-relay-manager
//!
//! The `manager`/`villas-relay` kind: mirrors one VILLASrelay (VILLASnode's
//! WebSocket relay) through its status API. It polls `GET
//! {api_url}/api/v1` every `poll_interval` (bounded by `timeout`) and
//! creates one `gateway`/`villas-relay` component per session, with the
//! uuid the relay computes for it: MD5(relay uuid's 16 bytes ‖
//! identifier). A session that vanishes keeps its gateway (which leaves
//! `running` by itself), so it comes back under the same uuid. An
//! unreachable, erroring or stalled relay puts the manager in `error`
//! (code 12 `remote-error`), retried with a doubling backoff capped at
//! `backoff_max`; it leaves `error` by itself at the first answer.
//!
//! | manager state | when |
//! |---|---|
//! | `idle` | before the first answer |
//! | `running` | the relay answers (with or without sessions) |
//! | `error` (code 12) | the relay unreachable, stalled past `timeout`, or answering with an error |
//! | `resetting` | `reset`: an immediate poll follows |

mod api;

use api::{ApiError, RelayApi, RelayStatus};
use md5::{Digest, Md5};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::time::Duration;
use villas_sdk::typed::{Actions, Ctx, TypedComponent, TypedKind};
use villas_sdk::{ComponentSpec, ErrorCode, ErrorInfo, State};

/// The `manager`/`villas-relay` kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct VillasRelayManagerKind;

/// Where the relay is when `api_url` is not configured.
pub const DEFAULT_API_URL: &str = "http://localhost:8088";

/// The first retry after a failed poll; doubled up to `backoff_max`.
const BACKOFF_INITIAL: Duration = Duration::from_millis(250);

/// The uuid VILLASrelay gives a session: the MD5 digest of the relay
/// uuid's 16 bytes followed by the identifier, as a uuid (no RFC version
/// bits). `None` if `relay_uuid` is no uuid.
pub fn session_uuid(relay_uuid: &str, identifier: &str) -> Option<String> {
    let relay = uuid::Uuid::parse_str(relay_uuid).ok()?;
    let mut hasher = Md5::new();
    hasher.update(relay.as_bytes());
    hasher.update(identifier.as_bytes());
    let digest: [u8; 16] = hasher.finalize().into();
    Some(uuid::Uuid::from_bytes(digest).hyphenated().to_string())
}

/// The manager's own properties (`api_url`, a common property, is the
/// relay's base URL without `/api/v1`; default `http://localhost:8088`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VillasRelayManagerProperties {
    /// The base URL clients reach the relay's WebSockets at (default
    /// `api_url`): a session's `ws_url` is `api_url_external/<identifier>`.
    pub api_url_external: Option<String>,
    /// Start the relay (`executable`) as a child when the daemon starts.
    #[serde(default)]
    pub autostart: bool,
    /// The relay executable `autostart` runs.
    #[serde(default = "default_executable")]
    pub executable: String,
    /// Seconds between polls.
    #[serde(default = "default_poll_interval")]
    #[schemars(range(min = 0.05, max = 3600))]
    pub poll_interval: f64,
    /// Seconds a request may take.
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 0.05, max = 600))]
    pub timeout: f64,
    /// The longest wait, in seconds, between retries.
    #[serde(default = "default_backoff_max")]
    #[schemars(range(min = 0.05, max = 3600))]
    pub backoff_max: f64,
}

fn default_executable() -> String {
    "villas-relay".into()
}

fn default_poll_interval() -> f64 {
    2.0
}

fn default_timeout() -> f64 {
    1.0
}

fn default_backoff_max() -> f64 {
    5.0
}

impl TypedKind for VillasRelayManagerKind {
    const CATEGORY: &'static str = "manager";
    const TYPE_NAME: &'static str = "villas-relay";
    type Properties = VillasRelayManagerProperties;
    type Component = VillasRelayManager;

    fn build(
        &self,
        spec: &ComponentSpec,
        properties: VillasRelayManagerProperties,
    ) -> Result<VillasRelayManager, ErrorInfo> {
        let api_url = match spec.properties.get("api_url") {
            None | Some(Value::Null) => DEFAULT_API_URL.to_owned(),
            Some(Value::String(url))
                if url.starts_with("http://") || url.starts_with("https://") =>
            {
                url.trim_end_matches('/').to_owned()
            }
            Some(other) => {
                return Err(ErrorInfo::new(
                    ErrorCode::InvalidParameters,
                    format!("api_url must be an http(s) URL, not {other}"),
                )
                .with("property", "api_url"))
            }
        };
        let timeout = Duration::from_secs_f64(properties.timeout);
        let api = RelayApi::new(&api_url, timeout)
            .map_err(|e| ErrorInfo::new(ErrorCode::Failed, format!("no HTTP client: {e}")))?;
        let api_url_external = properties
            .api_url_external
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| api_url.clone());
        Ok(VillasRelayManager {
            api,
            api_url,
            api_url_external,
            interval: Duration::from_secs_f64(properties.poll_interval),
            timeout,
            backoff_max: Duration::from_secs_f64(properties.backoff_max),
            backoff: BACKOFF_INITIAL,
            polling: false,
            last_error: None,
            version: None,
            relay_uuid: None,
            autostart: properties.autostart.then_some(properties.executable),
            child: None,
        })
    }
}

/// One villas-relay manager.
#[derive(Debug)]
pub struct VillasRelayManager {
    /// The relay's API.
    api: RelayApi,
    /// Its base URL.
    api_url: String,
    /// The base of the sessions' `ws_url`.
    api_url_external: String,
    /// Between polls.
    interval: Duration,
    /// Per request.
    timeout: Duration,
    /// Longest wait between retries.
    backoff_max: Duration,
    /// The wait before the next retry.
    backoff: Duration,
    /// A poll is in flight.
    polling: bool,
    /// The message of the `error` last published.
    last_error: Option<String>,
    /// `status.villas_relay_version`.
    version: Option<String>,
    /// The relay's uuid.
    relay_uuid: Option<String>,
    /// `autostart`: the executable to run as a child.
    autostart: Option<String>,
    /// The relay child `autostart` started (killed with the manager).
    child: Option<tokio::process::Child>,
}

/// The manager's timer.
#[derive(Debug)]
pub enum Tick {
    /// Time to poll.
    Poll,
}

/// What its tasks return.
#[derive(Debug)]
pub enum Done {
    /// A poll ended.
    Polled(Result<RelayStatus, ApiError>),
}

impl VillasRelayManager {
    fn retry(&mut self, ctx: &mut Ctx<'_, Self>, error: &ApiError) {
        let after = self.backoff;
        self.backoff = (self.backoff * 2).min(self.backoff_max);
        ctx.schedule(after, Tick::Poll);
        let message = format!("VILLASrelay unreachable: {error}");
        tracing::warn!(api_url = %self.api_url, %error, retry_in = ?after, "VILLASrelay did not answer");
        if ctx.state() != State::Error || self.last_error.as_ref() != Some(&message) {
            self.last_error = Some(message.clone());
            let mut info = ErrorInfo::new(ErrorCode::Remote, message)
                .with("api_url", self.api_url.clone())
                .with("retry_in", after.as_secs_f64());
            if let ApiError::Status { status, .. } = error {
                info = info.with("http_status", *status);
            }
            ctx.fail(info);
        }
    }

    fn reconcile(&mut self, ctx: &mut Ctx<'_, Self>, status: RelayStatus) -> Result<(), ErrorInfo> {
        let mut changed = self.version != status.version || self.relay_uuid != status.uuid;
        self.version = status.version;
        self.relay_uuid = status.uuid;
        let own = ctx.spec().clone();
        let ops = ctx.manager()?;
        let managed: HashSet<String> = ops.managed().into_iter().collect();
        for session in &status.sessions {
            let computed = self
                .relay_uuid
                .as_deref()
                .and_then(|relay| session_uuid(relay, &session.identifier));
            let reported = session
                .json
                .get("uuid")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let Some(uuid) = computed.or(reported) else {
                tracing::warn!(identifier = %session.identifier, "session without a uuid");
                continue;
            };
            if managed.contains(&uuid) {
                continue;
            }
            let spec = self.gateway_spec(&own, &uuid, session);
            match spec.and_then(|spec| ops.create(spec)) {
                Ok(()) => {
                    changed = true;
                    tracing::info!(%uuid, identifier = %session.identifier, "session discovered: gateway created");
                }
                Err(error) => tracing::warn!(%uuid, %error, "gateway not created"),
            }
        }
        self.last_error = None;
        self.backoff = BACKOFF_INITIAL;
        match ctx.state() {
            State::Idle | State::Error | State::Resetting | State::Starting => {
                ctx.reach(State::Running)?;
            }
            _ if changed => ctx.publish_status(),
            _ => {}
        }
        Ok(())
    }

    fn gateway_spec(
        &self,
        own: &ComponentSpec,
        uuid: &str,
        session: &api::Session,
    ) -> Result<ComponentSpec, ErrorInfo> {
        let mut properties = Map::new();
        properties.insert("category".into(), "gateway".into());
        properties.insert("type".into(), "villas-relay".into());
        properties.insert("uuid".into(), uuid.into());
        properties.insert("name".into(), session.identifier.clone().into());
        if let Some(realm) = &own.identity.realm {
            properties.insert("realm".into(), realm.clone().into());
        }
        for key in ["location", "owner"] {
            if let Some(value) = own.properties.get(key) {
                properties.insert(key.into(), value.clone());
            }
        }
        properties.insert("api_url".into(), self.api_url.clone().into());
        properties.insert(
            "ws_url".into(),
            format!("{}/{}", self.api_url_external, session.identifier).into(),
        );
        properties.insert("identifier".into(), session.identifier.clone().into());
        properties.insert("poll_interval".into(), self.interval.as_secs_f64().into());
        properties.insert("timeout".into(), self.timeout.as_secs_f64().into());
        properties.insert("backoff_max".into(), self.backoff_max.as_secs_f64().into());
        ComponentSpec::from_properties(properties).map_err(|e| e.to_error_info())
    }

    /// `autostart`: runs the relay as a child, without waiting for it.
    fn autostart(&mut self) {
        let Some(executable) = &self.autostart else {
            return;
        };
        if self.child.is_some() {
            return;
        }
        let mut command = tokio::process::Command::new(executable);
        command
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        match command.spawn() {
            Ok(child) => {
                tracing::info!(executable = %executable, pid = child.id(), "relay started");
                self.child = Some(child);
            }
            Err(error) => tracing::error!(executable = %executable, %error, "relay not started"),
        }
    }
}

impl TypedComponent for VillasRelayManager {
    type Timer = Tick;
    type Output = Done;

    fn actions(_actions: &mut Actions<Self>) {}

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        self.autostart();
        self.polling = false;
        ctx.schedule(Duration::ZERO, Tick::Poll);
        Ok(())
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, _tick: Tick) -> Result<(), ErrorInfo> {
        if !self.polling {
            self.polling = true;
            let api = self.api.clone();
            ctx.spawn(async move { Done::Polled(api.status().await) });
        }
        Ok(())
    }

    fn on_task(&mut self, ctx: &mut Ctx<'_, Self>, done: Done) -> Result<(), ErrorInfo> {
        let Done::Polled(result) = done;
        self.polling = false;
        match result {
            Ok(status) => {
                ctx.schedule(self.interval, Tick::Poll);
                self.reconcile(ctx, status)
            }
            Err(error) => {
                self.retry(ctx, &error);
                Ok(())
            }
        }
    }

    /// `reset`: `idle`, then a poll at once (`running` at its answer).
    fn reset(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        self.polling = false;
        self.backoff = BACKOFF_INITIAL;
        ctx.transition(State::Idle)?;
        ctx.schedule(Duration::ZERO, Tick::Poll);
        Ok(())
    }

    fn status_fields(&self, fields: &mut Map<String, Value>) {
        fields.insert(
            "villas_relay_version".into(),
            self.version.clone().map_or(Value::Null, Value::String),
        );
        if let Some(uuid) = &self.relay_uuid {
            fields.insert("villas_relay_uuid".into(), uuid.clone().into());
        }
    }

    fn on_remove(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_uuid_of_the_relays_openapi_example() {
        // VILLASnode doc/openapi-relay.yaml: relay 32dd320b-..., session node_1.
        assert_eq!(
            session_uuid("32dd320b-3f86-497f-a77c-f83ecdb55c54", "node_1").as_deref(),
            Some("8c58c29d-db3a-821b-7a4c-c4be5930d751")
        );
    }
}
