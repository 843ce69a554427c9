//! # villas-kind-villas-relay-gateway
//!
//! The `gateway`/`villas-relay` kind: one session of a VILLASrelay,
//! created by its `manager`/`villas-relay` (uuid = the session's uuid as
//! the relay computes it, `name` = the identifier, `ws_url` =
//! `api_url_external/<identifier>`). It reads the relay's status every
//! `poll_interval` and is `running` while the session exists, `idle` once
//! it vanished (it comes back with the same uuid when a client connects
//! again). The relay unreachable, stalled or erroring: `error`, code 12
//! `remote-error`, left by itself at the next answer. A session cannot be
//! controlled: every action but `ping` and `reset` (back to `idle`, then
//! the session's state at the next read) is refused with the state kept.
//! `status.connections` is the number of the session's clients.

mod api;

use api::{ApiError, RelayApi, RelayStatus};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::Duration;
use villas_sdk::typed::{Actions, Ctx, TypedComponent, TypedKind};
use villas_sdk::{ComponentSpec, ErrorCode, ErrorInfo, State};

/// The `gateway`/`villas-relay` kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct VillasRelayGatewayKind;

/// The first retry after a failed read; doubled up to `backoff_max`.
const BACKOFF_INITIAL: Duration = Duration::from_millis(250);

/// The gateway's own properties (`api_url`, a common property, is the
/// relay's base URL; the manager sets it).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VillasRelayGatewayProperties {
    /// The session's identifier (its WebSocket path).
    pub identifier: String,
    /// Seconds between reads.
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

fn default_poll_interval() -> f64 {
    2.0
}

fn default_timeout() -> f64 {
    1.0
}

fn default_backoff_max() -> f64 {
    5.0
}

impl TypedKind for VillasRelayGatewayKind {
    const CATEGORY: &'static str = "gateway";
    const TYPE_NAME: &'static str = "villas-relay";
    type Properties = VillasRelayGatewayProperties;
    type Component = VillasRelayGateway;

    fn build(
        &self,
        spec: &ComponentSpec,
        properties: VillasRelayGatewayProperties,
    ) -> Result<VillasRelayGateway, ErrorInfo> {
        let Some(api_url) = spec.properties.get("api_url").and_then(Value::as_str) else {
            return Err(ErrorInfo::new(
                ErrorCode::InvalidParameters,
                "api_url (the relay's base URL) is required",
            )
            .with("property", "api_url"));
        };
        let api = RelayApi::new(api_url, Duration::from_secs_f64(properties.timeout))
            .map_err(|e| ErrorInfo::new(ErrorCode::Failed, format!("no HTTP client: {e}")))?;
        Ok(VillasRelayGateway {
            api,
            identifier: properties.identifier,
            interval: Duration::from_secs_f64(properties.poll_interval),
            backoff_max: Duration::from_secs_f64(properties.backoff_max),
            backoff: BACKOFF_INITIAL,
            polling: false,
            connections: None,
        })
    }
}

/// One relay session's gateway.
#[derive(Debug)]
pub struct VillasRelayGateway {
    /// The relay's API.
    api: RelayApi,
    /// The session's identifier.
    identifier: String,
    /// Between reads.
    interval: Duration,
    /// Longest wait between retries.
    backoff_max: Duration,
    /// The wait before the next retry.
    backoff: Duration,
    /// A read is in flight.
    polling: bool,
    /// The session's clients, as last read (`None`: no session).
    connections: Option<usize>,
}

/// The gateway's timer.
#[derive(Debug)]
pub enum Tick {
    /// Time to read the relay.
    Poll,
}

/// What its tasks return.
#[derive(Debug)]
pub enum Done {
    /// A read ended.
    Polled(Result<RelayStatus, ApiError>),
}

impl TypedComponent for VillasRelayGateway {
    type Timer = Tick;
    type Output = Done;

    fn actions(_actions: &mut Actions<Self>) {}

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
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
                self.backoff = BACKOFF_INITIAL;
                ctx.schedule(self.interval, Tick::Poll);
                let before = self.connections;
                self.connections = status
                    .sessions
                    .iter()
                    .find(|s| s.identifier == self.identifier)
                    .map(|s| {
                        s.json
                            .get("connections")
                            .and_then(Value::as_array)
                            .map_or(0, Vec::len)
                    });
                let target = if self.connections.is_some() {
                    State::Running
                } else {
                    State::Idle
                };
                if target != ctx.state() {
                    ctx.reach(target)?;
                } else if before != self.connections {
                    ctx.publish_status();
                }
            }
            Err(error) => {
                let after = self.backoff;
                self.backoff = (self.backoff * 2).min(self.backoff_max);
                ctx.schedule(after, Tick::Poll);
                if ctx.state() != State::Error {
                    ctx.fail(
                        ErrorInfo::new(
                            ErrorCode::Remote,
                            format!("VILLASrelay unreachable: {error}"),
                        )
                        .with("identifier", self.identifier.clone())
                        .with("retry_in", after.as_secs_f64()),
                    );
                }
            }
        }
        Ok(())
    }

    /// `reset`: `idle`, then the session's state at the next read.
    fn reset(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        self.polling = false;
        self.backoff = BACKOFF_INITIAL;
        self.connections = None;
        ctx.transition(State::Idle)?;
        ctx.schedule(Duration::ZERO, Tick::Poll);
        Ok(())
    }

    fn status_fields(&self, fields: &mut Map<String, Value>) {
        fields.insert("identifier".into(), self.identifier.clone().into());
        fields.insert(
            "connections".into(),
            self.connections.map_or(Value::from(0), Value::from),
        );
    }
}
