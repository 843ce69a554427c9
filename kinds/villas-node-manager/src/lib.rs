//! # villas-kind-villas-node-manager
//!
//! The `manager`/`villas-node` kind: mirrors one VILLASnode (the lab's
//! real-time data gateway) through its HTTP API v2. It polls
//! `GET /api/v2/status` and `GET /api/v2/nodes` every `poll_interval`
//! (each request bounded by `timeout`), creates one `gateway`/`villas-node`
//! component per node (uuid = the node's uuid) and deletes the gateway of
//! a node that disappeared (it publishes `gone`). `reset` is
//! `POST /api/v2/restart`. An unreachable, erroring or stalled VILLASnode
//! puts the manager in `error` (code 12 `remote-error`, with the reason),
//! retried with a doubling backoff capped at `backoff_max`; the manager
//! leaves `error` by itself at the first answer. Nothing here blocks: every
//! request runs as a task beside the manager's actor.
//!
//! | manager state | when |
//! |---|---|
//! | `idle` | before the first answer |
//! | `running` | VILLASnode answers |
//! | `error` (code 12) | VILLASnode unreachable, stalled past `timeout`, or answering with an error |
//! | `resetting` | `reset`: `POST /api/v2/restart` in progress |
//!
//! With `config` or `config_filename` the manager owns a VILLASnode child
//! (`process`): `start` runs it, `pause`/`resume` are SIGSTOP/SIGCONT,
//! `stop` SIGTERM; `autostart` starts it with the manager.

mod api;
mod process;

use api::{Api, ApiError, Snapshot};
use process::{ConfigSource, ProcessSpec, Running};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::time::Duration;
use villas_sdk::typed::{Actions, Ctx, NoParameters, TypedComponent, TypedKind};
use villas_sdk::{Action, ComponentSpec, ErrorCode, ErrorInfo, State};

/// The `manager`/`villas-node` kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct VillasNodeManagerKind;

/// Where VILLASnode's API is when `api_url` is not configured.
pub const DEFAULT_API_URL: &str = "http://localhost:8080";

/// The first retry after a failed poll; doubled up to `backoff_max`.
const BACKOFF_INITIAL: Duration = Duration::from_millis(250);

/// The manager's own properties (`api_url` is a common property: the base
/// URL of VILLASnode, without `/api/v2`; default `http://localhost:8080`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VillasNodeManagerProperties {
    /// The base URL clients reach VILLASnode at (default `api_url`): the
    /// `ws_url` of a websocket node's gateway is `api_url_external/<node>`.
    pub api_url_external: Option<String>,
    /// Start the VILLASnode child process when the daemon starts.
    #[serde(default)]
    pub autostart: bool,
    /// The VILLASnode executable the manager starts.
    #[serde(default = "default_executable")]
    pub executable: String,
    /// VILLASnode's configuration (JSON), written to a file the child is
    /// given. An empty object counts as absent.
    pub config: Option<Map<String, Value>>,
    /// A VILLASnode configuration file (JSON or libconfig, as VILLASnode
    /// reads it itself) given to the child as it is.
    pub config_filename: Option<String>,
    /// Where the child's output goes (default
    /// `villas-node_<date>.log` in the data directory or the working
    /// directory).
    pub log_filename: Option<String>,
    /// Seconds between polls of the API.
    #[serde(default = "default_poll_interval")]
    #[schemars(range(min = 0.05, max = 3600))]
    pub poll_interval: f64,
    /// Seconds a request may take.
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 0.05, max = 600))]
    pub timeout: f64,
    /// The longest wait, in seconds, between retries while VILLASnode does
    /// not answer.
    #[serde(default = "default_backoff_max")]
    #[schemars(range(min = 0.05, max = 3600))]
    pub backoff_max: f64,
}

fn default_executable() -> String {
    "villas-node".into()
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

/// Polling rhythm, shared with the gateways it creates.
#[derive(Debug, Clone, Copy)]
struct Timing {
    /// Between polls.
    interval: Duration,
    /// Per request.
    timeout: Duration,
    /// Longest wait between retries.
    backoff_max: Duration,
}

impl TypedKind for VillasNodeManagerKind {
    const CATEGORY: &'static str = "manager";
    const TYPE_NAME: &'static str = "villas-node";
    type Properties = VillasNodeManagerProperties;
    type Component = VillasNodeManager;

    fn build(
        &self,
        spec: &ComponentSpec,
        properties: VillasNodeManagerProperties,
    ) -> Result<VillasNodeManager, ErrorInfo> {
        let invalid = |key: &str, message: String| {
            ErrorInfo::new(ErrorCode::InvalidParameters, message).with("property", key)
        };
        let api_url = match spec.properties.get("api_url") {
            None | Some(Value::Null) => DEFAULT_API_URL.to_owned(),
            Some(Value::String(url))
                if url.starts_with("http://") || url.starts_with("https://") =>
            {
                url.trim_end_matches('/').to_owned()
            }
            Some(other) => {
                return Err(invalid(
                    "api_url",
                    format!("api_url must be an http(s) URL, not {other}"),
                ))
            }
        };
        let config = properties.config.filter(|c| !c.is_empty());
        if config.is_some() && properties.config_filename.is_some() {
            return Err(invalid(
                "config",
                "set either config or config_filename, not both".into(),
            ));
        }
        let timing = Timing {
            interval: Duration::from_secs_f64(properties.poll_interval),
            timeout: Duration::from_secs_f64(properties.timeout),
            backoff_max: Duration::from_secs_f64(properties.backoff_max),
        };
        let api = Api::new(&api_url, timing.timeout)
            .map_err(|e| ErrorInfo::new(ErrorCode::Failed, format!("no HTTP client: {e}")))?;
        let api_url_external = properties
            .api_url_external
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| api_url.clone());
        let source = match (config, properties.config_filename) {
            (Some(config), _) => Some(ConfigSource::Inline(config)),
            (None, Some(file)) => Some(ConfigSource::File(file.into())),
            (None, None) => None,
        };
        if properties.autostart && source.is_none() {
            return Err(invalid(
                "autostart",
                "autostart needs config or config_filename".into(),
            ));
        }
        let data_dir = spec.data_dir().map(std::path::Path::to_owned);
        let process = source.map(|config| ProcessSpec {
            executable: properties.executable,
            config,
            log: properties
                .log_filename
                .map(Into::into)
                .or_else(|| data_dir.as_ref().map(|d| d.join("villas-node.log"))),
            config_dir: data_dir.unwrap_or_else(std::env::temp_dir),
            tag: spec.uuid().to_owned(),
        });
        Ok(VillasNodeManager {
            process,
            autostart: properties.autostart,
            child: None,
            api,
            api_url,
            api_url_external,
            timing,
            polling: false,
            backoff: BACKOFF_INITIAL,
            last_error: None,
            version: None,
            remote_uuid: None,
        })
    }
}

/// One villas-node manager.
#[derive(Debug)]
pub struct VillasNodeManager {
    /// The VILLASnode child it runs, when it owns one (`config` or
    /// `config_filename` set).
    process: Option<ProcessSpec>,
    /// Start the child when the manager starts.
    autostart: bool,
    /// The child while it runs.
    child: Option<Running>,
    /// VILLASnode's API.
    api: Api,
    /// Its base URL (for the gateways and the error messages).
    api_url: String,
    /// The base of websocket nodes' `ws_url`.
    api_url_external: String,
    /// Polling rhythm.
    timing: Timing,
    /// A poll is in flight (a timer firing meanwhile starts none).
    polling: bool,
    /// The wait before the next retry while VILLASnode does not answer.
    backoff: Duration,
    /// The message of the `error` last published, so that a retry that
    /// fails the same way publishes nothing new.
    last_error: Option<String>,
    /// `status.villas_node_version`: VILLASnode's `/status`.`version`.
    version: Option<String>,
    /// VILLASnode's own uuid (the super-node's), for the status.
    remote_uuid: Option<String>,
}

/// The refusal of a process action by a manager that runs no VILLASnode.
fn not_owned(action: &str) -> ErrorInfo {
    ErrorInfo::new(
        ErrorCode::Unsupported,
        format!(
            "this manager runs no VILLASnode of its own ({action} needs config or config_filename)"
        ),
    )
    .with("action", action)
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
    Polled(Result<Snapshot, ApiError>),
    /// `POST /restart` ended.
    Restarted(Result<(), ApiError>),
    /// The child exited.
    Exited(std::io::Result<std::process::ExitStatus>),
}

impl VillasNodeManager {
    /// Schedules the next poll after `after`.
    fn poll_after(&mut self, ctx: &mut Ctx<'_, Self>, after: Duration) {
        ctx.schedule(after, Tick::Poll);
    }

    /// Schedules a retry after the backoff, which doubles (capped).
    fn retry(&mut self, ctx: &mut Ctx<'_, Self>) -> Duration {
        let after = self.backoff;
        self.backoff = (self.backoff * 2).min(self.timing.backoff_max);
        self.poll_after(ctx, after);
        after
    }

    /// VILLASnode did not answer as it should: `error` with the reason
    /// (published once per distinct reason), and a retry.
    fn unreachable(&mut self, ctx: &mut Ctx<'_, Self>, what: &str, error: &ApiError) {
        let retry_in = self.retry(ctx);
        let message = format!("VILLASnode {what}: {error}");
        tracing::warn!(api_url = %self.api_url, %error, ?retry_in, "VILLASnode did not answer");
        if ctx.state() != State::Error || self.last_error.as_ref() != Some(&message) {
            self.last_error = Some(message.clone());
            let mut info = ErrorInfo::new(ErrorCode::Remote, message)
                .with("api_url", self.api_url.clone())
                .with("retry_in", retry_in.as_secs_f64());
            if let ApiError::Status { status, .. } = error {
                info = info.with("http_status", *status);
            }
            ctx.fail(info);
        }
    }

    /// A poll answered: gateways created for new nodes and deleted for
    /// vanished ones; the manager `running`.
    fn reconcile(&mut self, ctx: &mut Ctx<'_, Self>, snapshot: Snapshot) -> Result<(), ErrorInfo> {
        let mut changed = self.version != snapshot.version || self.remote_uuid != snapshot.uuid;
        self.version = snapshot.version;
        self.remote_uuid = snapshot.uuid;
        let specs: Vec<(String, Result<ComponentSpec, ErrorInfo>)> = snapshot
            .nodes
            .iter()
            .map(|node| {
                let uuid = villas_sdk::spec::canonical_uuid(&node.uuid);
                (uuid, self.gateway_spec(ctx.spec(), node))
            })
            .collect();
        let ops = ctx.manager()?;
        let managed: HashSet<String> = ops.managed().into_iter().collect();
        let current: HashSet<&str> = specs.iter().map(|(uuid, _)| uuid.as_str()).collect();
        for uuid in managed.iter().filter(|u| !current.contains(u.as_str())) {
            match ops.delete(uuid) {
                Ok(()) => {
                    changed = true;
                    tracing::info!(%uuid, "node disappeared: gateway deleted");
                }
                Err(error) => tracing::warn!(%uuid, %error, "gateway not deleted"),
            }
        }
        for (uuid, spec) in specs {
            if managed.contains(&uuid) {
                continue;
            }
            match spec.and_then(|spec| ops.create(spec)) {
                Ok(()) => {
                    changed = true;
                    tracing::info!(%uuid, "node discovered: gateway created");
                }
                Err(error) => tracing::warn!(%uuid, %error, "gateway not created"),
            }
        }
        self.last_error = None;
        self.backoff = BACKOFF_INITIAL;
        match ctx.state() {
            State::Idle | State::Error | State::Resetting | State::Starting | State::Resuming => {
                ctx.reach(State::Running)?;
            }
            _ if changed => ctx.publish_status(),
            _ => {}
        }
        Ok(())
    }

    /// Whether polls wait: its own VILLASnode is paused (its API would
    /// stall) or stopping.
    fn quiet(&self, state: State) -> bool {
        self.process.is_some()
            && self.child.is_some()
            && matches!(state, State::Paused | State::Pausing | State::Stopping)
    }

    /// Whether an unanswered poll is expected: the manager owns a
    /// VILLASnode that does not run (and nothing else answers there).
    fn expects_silence(&self, state: State) -> bool {
        self.process.is_some() && self.child.is_none() && state == State::Idle
    }

    /// Deletes every gateway (the child that served their nodes ended).
    fn delete_gateways(ctx: &mut Ctx<'_, Self>) {
        if let Ok(ops) = ctx.manager() {
            for uuid in ops.managed() {
                let _ = ops.delete(&uuid);
            }
        }
    }

    fn admit_start(&self, _: NoParameters, _: &Action) -> Result<(), ErrorInfo> {
        match (&self.process, &self.child) {
            (None, _) => Err(not_owned("start")),
            (Some(_), Some(_)) => Err(ErrorInfo::new(
                ErrorCode::InvalidTransition,
                "the VILLASnode child runs already",
            )),
            (Some(_), None) => Ok(()),
        }
    }

    fn admit_child(&self, _: NoParameters, action: &Action) -> Result<(), ErrorInfo> {
        match (&self.process, &self.child) {
            (None, _) => Err(not_owned(action.kind.as_str())),
            (Some(_), None) => Err(ErrorInfo::new(
                ErrorCode::InvalidTransition,
                "no VILLASnode child runs",
            )),
            (Some(_), Some(_)) => Ok(()),
        }
    }

    /// `start`: runs the child; `running` once its API answers.
    fn start(&mut self, ctx: &mut Ctx<'_, Self>, (): ()) -> Result<(), ErrorInfo> {
        let Some(process) = &self.process else {
            return Err(not_owned("start"));
        };
        let (running, exited) = process
            .spawn()
            .map_err(|e| ErrorInfo::new(ErrorCode::Failed, e.to_string()))?;
        tracing::info!(pid = running.pid, executable = %process.executable, "VILLASnode started");
        self.child = Some(running);
        self.backoff = BACKOFF_INITIAL;
        ctx.spawn(async move { Done::Exited(exited.await) });
        ctx.schedule(Duration::ZERO, Tick::Poll);
        Ok(())
    }

    /// `stop`: SIGTERM; `idle` once the child exited.
    fn stop(&mut self, _ctx: &mut Ctx<'_, Self>, (): ()) -> Result<(), ErrorInfo> {
        if let Some(child) = &self.child {
            child.terminate();
        }
        Ok(())
    }

    /// `pause`: SIGSTOP.
    fn pause(&mut self, ctx: &mut Ctx<'_, Self>, (): ()) -> Result<(), ErrorInfo> {
        self.signal(nix::sys::signal::Signal::SIGSTOP)?;
        ctx.transition(State::Paused)
    }

    /// `resume`: SIGCONT; `running` once its API answers again.
    fn resume(&mut self, ctx: &mut Ctx<'_, Self>, (): ()) -> Result<(), ErrorInfo> {
        self.signal(nix::sys::signal::Signal::SIGCONT)?;
        ctx.schedule(Duration::ZERO, Tick::Poll);
        Ok(())
    }

    fn signal(&self, signal: nix::sys::signal::Signal) -> Result<(), ErrorInfo> {
        let Some(child) = &self.child else {
            return Err(ErrorInfo::new(
                ErrorCode::Failed,
                "no VILLASnode child runs",
            ));
        };
        child.signal(signal).map_err(|e| {
            ErrorInfo::new(
                ErrorCode::Failed,
                format!("signalling VILLASnode ({signal}): {e}"),
            )
        })
    }

    /// The definition of the gateway of `node`.
    fn gateway_spec(
        &self,
        own: &ComponentSpec,
        node: &api::Node,
    ) -> Result<ComponentSpec, ErrorInfo> {
        let mut properties = Map::new();
        properties.insert("category".into(), "gateway".into());
        properties.insert("type".into(), "villas-node".into());
        properties.insert("uuid".into(), node.uuid.clone().into());
        properties.insert("name".into(), node.name.clone().into());
        if let Some(realm) = &own.identity.realm {
            properties.insert("realm".into(), realm.clone().into());
        }
        for key in ["location", "owner"] {
            if let Some(value) = own.properties.get(key) {
                properties.insert(key.into(), value.clone());
            }
        }
        properties.insert("api_url".into(), self.api_url.clone().into());
        properties.insert("node".into(), node.name.clone().into());
        properties.insert("sub_type".into(), node.node_type.clone().into());
        if node.node_type == "websocket" {
            properties.insert(
                "ws_url".into(),
                format!("{}/{}", self.api_url_external, node.name).into(),
            );
        }
        let mut config = node.json.clone();
        for key in ["name", "uuid", "state", "type"] {
            config.remove(key);
        }
        properties.insert("node_config".into(), Value::Object(config));
        properties.insert(
            "poll_interval".into(),
            self.timing.interval.as_secs_f64().into(),
        );
        properties.insert("timeout".into(), self.timing.timeout.as_secs_f64().into());
        properties.insert(
            "backoff_max".into(),
            self.timing.backoff_max.as_secs_f64().into(),
        );
        ComponentSpec::from_properties(properties).map_err(|e| e.to_error_info())
    }
}

impl TypedComponent for VillasNodeManager {
    type Timer = Tick;
    type Output = Done;

    fn actions(actions: &mut Actions<Self>) {
        actions
            .start_checked(Self::admit_start, Self::start)
            .stop_checked(Self::admit_child, Self::stop)
            .pause_checked(Self::admit_child, Self::pause)
            .resume_checked(Self::admit_child, Self::resume);
    }

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        self.polling = false;
        self.poll_after(ctx, Duration::ZERO);
        if self.autostart && self.child.is_none() && ctx.state() == State::Idle {
            ctx.transition(State::Starting)?;
            self.start(ctx, ())?;
        }
        Ok(())
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, _tick: Tick) -> Result<(), ErrorInfo> {
        if self.quiet(ctx.state()) {
            let interval = self.timing.interval;
            self.poll_after(ctx, interval);
            return Ok(());
        }
        if !self.polling {
            self.polling = true;
            let api = self.api.clone();
            ctx.spawn(async move { Done::Polled(api.poll().await) });
        }
        Ok(())
    }

    fn on_task(&mut self, ctx: &mut Ctx<'_, Self>, done: Done) -> Result<(), ErrorInfo> {
        match done {
            Done::Polled(Ok(snapshot)) => {
                self.polling = false;
                let interval = self.timing.interval;
                self.poll_after(ctx, interval);
                self.reconcile(ctx, snapshot)
            }
            Done::Polled(Err(_))
                if self.quiet(ctx.state()) || self.expects_silence(ctx.state()) =>
            {
                self.polling = false;
                let interval = self.timing.interval;
                self.poll_after(ctx, interval);
                Ok(())
            }
            Done::Polled(Err(error)) if ctx.state() == State::Starting && self.child.is_some() => {
                // Its own child is coming up: not an error yet.
                self.polling = false;
                tracing::debug!(%error, "VILLASnode not answering yet");
                self.retry(ctx);
                Ok(())
            }
            Done::Polled(Err(error)) => {
                self.polling = false;
                self.unreachable(ctx, "unreachable", &error);
                Ok(())
            }
            Done::Exited(status) => {
                self.child = None;
                Self::delete_gateways(ctx);
                let state = ctx.state();
                if matches!(state, State::Stopping | State::Resetting) {
                    return ctx.reach(State::Idle);
                }
                let how = match status {
                    Ok(status) => status.to_string(),
                    Err(error) => error.to_string(),
                };
                Err(ErrorInfo::new(
                    ErrorCode::Failed,
                    format!("VILLASnode exited: {how}"),
                ))
            }
            Done::Restarted(Ok(())) => {
                ctx.transition(State::Idle)?;
                self.poll_after(ctx, Duration::ZERO);
                Ok(())
            }
            Done::Restarted(Err(error)) => {
                self.unreachable(ctx, "restart failed", &error);
                Ok(())
            }
        }
    }

    /// `reset`: `POST /api/v2/restart`; `idle` once VILLASnode accepted
    /// it, then `running` at the next answer.
    fn reset(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        self.polling = false;
        self.backoff = BACKOFF_INITIAL;
        if self.process.is_some() && self.child.is_none() {
            // Nothing runs that could restart.
            ctx.transition(State::Idle)?;
            self.poll_after(ctx, Duration::ZERO);
            return Ok(());
        }
        let api = self.api.clone();
        ctx.spawn(async move { Done::Restarted(api.restart().await) });
        Ok(())
    }

    fn on_remove(&mut self) {
        if let Some(child) = self.child.take() {
            child.terminate();
        }
    }

    fn status_fields(&self, fields: &mut Map<String, Value>) {
        if let Some(child) = &self.child {
            fields.insert("pid".into(), child.pid.into());
        }
        fields.insert(
            "villas_node_version".into(),
            self.version.clone().map_or(Value::Null, Value::String),
        );
        if let Some(uuid) = &self.remote_uuid {
            fields.insert("villas_node_uuid".into(), uuid.clone().into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use villas_sdk::testing::Harness;
    use villas_sdk::ActionKind;

    #[test]
    fn a_manager_without_a_configuration_runs_no_villas_node() {
        let mut manager = Harness::typed(
            VillasNodeManagerKind,
            json!({"api_url": "http://127.0.0.1:9"}),
        )
        .unwrap();
        let refused = manager.act(ActionKind::Start, json!({})).unwrap_err();
        assert_eq!(refused.code, ErrorCode::Unsupported);
        assert_eq!(manager.state(), State::Idle);
        // From idle the table refuses these first.
        for action in [ActionKind::Stop, ActionKind::Pause, ActionKind::Resume] {
            assert!(manager.act(action, json!({})).is_err(), "{action}");
            assert_eq!(manager.state(), State::Idle);
        }
        assert!(manager.act(ActionKind::Shutdown, json!({})).is_err());
    }

    #[test]
    fn definitions_it_cannot_run_are_refused() {
        let refused = |properties| Harness::typed(VillasNodeManagerKind, properties).unwrap_err();
        assert_eq!(
            refused(json!({"autostart": true})).details["property"],
            "autostart"
        );
        assert_eq!(
            refused(json!({"config": {"nodes": {}}, "config_filename": "x.conf"})).details
                ["property"],
            "config"
        );
        assert_eq!(
            refused(json!({"api_url": "ftp://x"})).details["property"],
            "api_url"
        );
        // The reference's example: an empty `config` beside a file.
        Harness::typed(
            VillasNodeManagerKind,
            json!({"config": {}, "config_filename": "x.conf"}),
        )
        .unwrap();
    }

    #[tokio::test]
    async fn retries_double_up_to_backoff_max_and_publish_one_error() {
        // Nothing listens on 127.0.0.1:9: every poll fails at once.
        let mut manager = Harness::typed(
            VillasNodeManagerKind,
            json!({"api_url": "http://127.0.0.1:9"}),
        )
        .unwrap();
        let mut waits = Vec::new();
        for _ in 0..8 {
            assert!(manager.fire_next(), "a poll is always scheduled");
            assert!(manager.next_task().await);
            let pending = manager.pending_timers();
            assert_eq!(pending.len(), 1);
            waits.push(pending[0].1.as_secs_f64());
        }
        assert_eq!(waits, [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]);
        assert_eq!(manager.state(), State::Error);
        let error = manager.error().unwrap();
        assert_eq!(error.code, ErrorCode::Remote);
        assert!(!error.code.is_failure(), "its supervisor leaves it alone");
        // The same reason again and again is published once.
        assert_eq!(manager.states(), [State::Error]);
    }
}
