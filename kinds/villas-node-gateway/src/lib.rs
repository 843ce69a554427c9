//! # villas-kind-villas-node-gateway
//!
//! The `gateway`/`villas-node` kind: one node of a VILLASnode, created by
//! its `manager`/`villas-node` (uuid = the node's uuid, `managed_by` = the
//! manager). It reads its node (`GET /api/v2/node/{name}`) every
//! `poll_interval` and follows the node's state by the table below,
//! publishing VILLASnode's own state name beside it as
//! `status.node_state`. `start`, `stop`, `pause`, `resume` and `reset` are
//! `POST /api/v2/node/{name}/{start|stop|pause|resume|restart}` without a
//! body, confirmed by re-reading the node: a node that does not reach the
//! action's state (a node type whose `pause` does nothing, say) puts the
//! gateway in `error` with the reason, never in a state it did not reach.
//! Errors of VILLASnode (unreachable, stalled, refusing) are `error` code
//! 12 `remote-error`; the next poll that reads the node brings the
//! gateway back to the node's state. `shutdown` is refused.

mod api;

use api::{ApiError, NodeApi};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::Duration;
use villas_sdk::typed::{Actions, Ctx, TypedComponent, TypedKind};
use villas_sdk::{ComponentSpec, ErrorCode, ErrorInfo, State};

/// The `gateway`/`villas-node` kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct VillasNodeGatewayKind;

/// The first retry after a failed poll; doubled up to `backoff_max`.
const BACKOFF_INITIAL: Duration = Duration::from_millis(250);

/// VILLASnode's node state names (`common/lib/common.cpp`
/// `stateToString`; `prepared` prints as the empty string) and the
/// protocol state a gateway publishes for each.
pub const STATE_TABLE: &[(&str, State)] = &[
    ("initialized", State::Idle),
    ("parsed", State::Idle),
    ("checked", State::Idle),
    ("", State::Idle),
    ("stopped", State::Idle),
    ("pending-connect", State::Starting),
    ("running", State::Running),
    ("connected", State::Running),
    ("paused", State::Paused),
    ("destroyed", State::Shutdown),
];

/// The protocol state of a VILLASnode node state name (`None`: a name
/// VILLASnode does not have).
pub fn protocol_state(node_state: &str) -> Option<State> {
    STATE_TABLE
        .iter()
        .find(|(name, _)| *name == node_state)
        .map(|(_, state)| *state)
}

/// The gateway's own properties (`api_url`, a common property, is the
/// VILLASnode's base URL; the manager sets it).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VillasNodeGatewayProperties {
    /// The node's name in VILLASnode.
    #[schemars(regex(pattern = r"^[a-z0-9_-]{2,32}$"))]
    pub node: String,
    /// The node's type (`websocket`, `udp`, ...).
    pub sub_type: Option<String>,
    /// The node's object as VILLASnode lists it (its configuration).
    pub node_config: Option<Value>,
    /// Seconds between reads of the node.
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

impl TypedKind for VillasNodeGatewayKind {
    const CATEGORY: &'static str = "gateway";
    const TYPE_NAME: &'static str = "villas-node";
    type Properties = VillasNodeGatewayProperties;
    type Component = VillasNodeGateway;

    fn build(
        &self,
        spec: &ComponentSpec,
        properties: VillasNodeGatewayProperties,
    ) -> Result<VillasNodeGateway, ErrorInfo> {
        let Some(api_url) = spec.properties.get("api_url").and_then(Value::as_str) else {
            return Err(ErrorInfo::new(
                ErrorCode::InvalidParameters,
                "api_url (VILLASnode's base URL) is required",
            )
            .with("property", "api_url"));
        };
        let timeout = Duration::from_secs_f64(properties.timeout);
        let api = NodeApi::new(api_url, &properties.node, timeout)
            .map_err(|e| ErrorInfo::new(ErrorCode::Failed, format!("no HTTP client: {e}")))?;
        Ok(VillasNodeGateway {
            api,
            node: properties.node,
            interval: Duration::from_secs_f64(properties.poll_interval),
            backoff_max: Duration::from_secs_f64(properties.backoff_max),
            backoff: BACKOFF_INITIAL,
            polling: false,
            acting: false,
            node_state: None,
        })
    }
}

/// One gateway.
#[derive(Debug)]
pub struct VillasNodeGateway {
    /// Its node's API.
    api: NodeApi,
    /// The node's name.
    node: String,
    /// Between polls.
    interval: Duration,
    /// Longest wait between retries.
    backoff_max: Duration,
    /// The wait before the next retry.
    backoff: Duration,
    /// A poll is in flight.
    polling: bool,
    /// An action is in flight: polls record the node's state but do not
    /// move the gateway's.
    acting: bool,
    /// VILLASnode's state name of the node, as last read
    /// (`status.node_state`).
    node_state: Option<String>,
}

/// The gateway's timer.
#[derive(Debug)]
pub enum Tick {
    /// Time to read the node.
    Poll,
}

/// The node actions, by their VILLASnode name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `start`.
    Start,
    /// `stop`.
    Stop,
    /// `pause`.
    Pause,
    /// `resume`.
    Resume,
    /// `restart` (the gateway's `reset`).
    Restart,
}

impl Verb {
    fn as_str(self) -> &'static str {
        match self {
            Verb::Start => "start",
            Verb::Stop => "stop",
            Verb::Pause => "pause",
            Verb::Resume => "resume",
            Verb::Restart => "restart",
        }
    }

    /// The protocol state the action must lead to (a restart: whatever
    /// the node is in then).
    fn target(self) -> Option<State> {
        match self {
            Verb::Start | Verb::Resume => Some(State::Running),
            Verb::Stop => Some(State::Idle),
            Verb::Pause => Some(State::Paused),
            Verb::Restart => None,
        }
    }
}

/// What its tasks return.
#[derive(Debug)]
pub enum Done {
    /// A read of the node ended.
    Polled(Result<Map<String, Value>, ApiError>),
    /// An action and the read after it ended.
    Acted(Verb, Result<Map<String, Value>, ApiError>),
}

impl VillasNodeGateway {
    fn act(&mut self, ctx: &mut Ctx<'_, Self>, verb: Verb) -> Result<(), ErrorInfo> {
        self.acting = true;
        let api = self.api.clone();
        ctx.spawn(async move {
            let result = match api.act(verb.as_str()).await {
                Ok(()) => api.get().await,
                Err(error) => Err(error),
            };
            Done::Acted(verb, result)
        });
        Ok(())
    }

    fn start(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        self.act(ctx, Verb::Start)
    }

    fn stop(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        self.act(ctx, Verb::Stop)
    }

    fn pause(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        self.act(ctx, Verb::Pause)
    }

    fn resume(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        self.act(ctx, Verb::Resume)
    }

    /// Records the node's state name; its protocol state, or the error
    /// for a name VILLASnode does not have.
    fn observe(&mut self, node: &Map<String, Value>) -> Result<State, ErrorInfo> {
        let raw = node
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let state = protocol_state(&raw);
        self.node_state = Some(raw.clone());
        state.ok_or_else(|| {
            ErrorInfo::new(
                ErrorCode::Remote,
                format!(
                    "node {} is in state {raw:?}, which VILLASnode does not have",
                    self.node
                ),
            )
            .with("node_state", raw)
        })
    }

    fn remote_error(&self, what: String, error: &ApiError) -> ErrorInfo {
        let mut info = ErrorInfo::new(ErrorCode::Remote, format!("{what}: {error}"))
            .with("node", self.node.clone());
        if let ApiError::Status { status, text, .. } = error {
            info = info
                .with("http_status", *status)
                .with("villas_node_error", text.clone());
        }
        info
    }

    fn polled(&mut self, ctx: &mut Ctx<'_, Self>, result: Result<Map<String, Value>, ApiError>) {
        self.polling = false;
        match result {
            Ok(node) => {
                self.backoff = BACKOFF_INITIAL;
                ctx.schedule(self.interval, Tick::Poll);
                let before = self.node_state.clone();
                let observed = self.observe(&node);
                if self.acting {
                    return;
                }
                match observed {
                    Ok(state) if state != ctx.state() => {
                        if let Err(error) = ctx.reach(state) {
                            ctx.fail(error);
                        }
                    }
                    Ok(_) if before != self.node_state => ctx.publish_status(),
                    Ok(_) => {}
                    Err(error) => ctx.fail(error),
                }
            }
            Err(error) => {
                let after = self.backoff;
                self.backoff = (self.backoff * 2).min(self.backoff_max);
                ctx.schedule(after, Tick::Poll);
                if self.acting {
                    return;
                }
                let info = self.remote_error(format!("reading node {}", self.node), &error);
                if ctx.state() != State::Error {
                    ctx.fail(info.with("retry_in", after.as_secs_f64()));
                }
            }
        }
    }

    fn acted(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        verb: Verb,
        result: Result<Map<String, Value>, ApiError>,
    ) -> Result<(), ErrorInfo> {
        self.acting = false;
        let node = match result {
            Ok(node) => node,
            Err(error) => {
                ctx.fail(
                    self.remote_error(
                        format!("VILLASnode did not {} node {}", verb.as_str(), self.node),
                        &error,
                    )
                    .with("action", verb.as_str()),
                );
                return Ok(());
            }
        };
        let reached = self.observe(&node)?;
        match verb.target() {
            None => ctx.reach(reached),
            Some(target) if target == reached => ctx.transition(target),
            // Connecting: the polls see it through.
            Some(State::Running) if reached == State::Starting && verb == Verb::Start => Ok(()),
            Some(target) => {
                let raw = self.node_state.clone().unwrap_or_default();
                ctx.fail(
                    ErrorInfo::new(
                        ErrorCode::Remote,
                        format!(
                            "after {} node {} is {raw:?} ({reached}), not {target}",
                            verb.as_str(),
                            self.node
                        ),
                    )
                    .with("action", verb.as_str())
                    .with("node_state", raw),
                );
                Ok(())
            }
        }
    }
}

impl TypedComponent for VillasNodeGateway {
    type Timer = Tick;
    type Output = Done;

    fn actions(actions: &mut Actions<Self>) {
        actions
            .start(Self::start)
            .stop(Self::stop)
            .pause(Self::pause)
            .resume(Self::resume);
    }

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        self.polling = false;
        ctx.schedule(Duration::ZERO, Tick::Poll);
        Ok(())
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, _tick: Tick) -> Result<(), ErrorInfo> {
        if !self.polling {
            self.polling = true;
            let api = self.api.clone();
            ctx.spawn(async move { Done::Polled(api.get().await) });
        }
        Ok(())
    }

    fn on_task(&mut self, ctx: &mut Ctx<'_, Self>, done: Done) -> Result<(), ErrorInfo> {
        match done {
            Done::Polled(result) => {
                self.polled(ctx, result);
                Ok(())
            }
            Done::Acted(verb, result) => self.acted(ctx, verb, result),
        }
    }

    /// `reset`: `POST /api/v2/node/{name}/restart`, then the node's state.
    fn reset(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        // The reset cancelled the pending poll and drops a poll in flight.
        self.polling = false;
        self.backoff = BACKOFF_INITIAL;
        ctx.schedule(self.interval, Tick::Poll);
        self.act(ctx, Verb::Restart)
    }

    fn status_fields(&self, fields: &mut Map<String, Value>) {
        fields.insert("node".into(), self.node.clone().into());
        fields.insert(
            "node_state".into(),
            self.node_state.clone().map_or(Value::Null, Value::String),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_villas_node_state_has_a_protocol_state() {
        for name in [
            "initialized",
            "parsed",
            "checked",
            "",
            "running",
            "stopped",
            "pending-connect",
            "connected",
            "paused",
            "destroyed",
        ] {
            assert!(protocol_state(name).is_some(), "{name}");
        }
        assert_eq!(protocol_state("connected"), Some(State::Running));
        assert_eq!(protocol_state("stopped"), Some(State::Idle));
        assert_eq!(protocol_state("bogus"), None);
    }
}
