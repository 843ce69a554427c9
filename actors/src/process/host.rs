//! The host of one kind process: a thread of its own (with a
//! single-threaded tokio runtime) that starts the process, handshakes,
//! writes the daemon's requests to its stdin with a deadline each, routes
//! its replies and events to the instances' inboxes, logs its stderr, and
//! supervises it: a process that exits, floods or misses a deadline is
//! killed, its instances fail, and it is started again under the restart
//! policy of components ([`crate::ic::policy`]), its live instances built
//! again. At stop: `stop`, SIGTERM, SIGKILL, reaped.

use super::component::{Inbox, Served, Update};
use super::lines::{FloodLimit, Line, LineReader};
use super::{KindProcessSpec, ProcessError};
use crate::ic::policy::{Decision, Exit, RestartTracker};
use serde_json::{Map, Value};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::mpsc;
use villas_sdk::kind_protocol::{self, request, Decoded, Event, KindMessage, MAX_LINE};
use villas_sdk::{Action, ActionKind, ErrorCode, ErrorInfo, State};

/// What an instance (or the daemon) asks of the host.
pub(crate) enum Command {
    /// Build an instance (replacing an older build of the uuid).
    Build {
        uuid: String,
        serial: u64,
        category: &'static str,
        type_name: &'static str,
        properties: Map<String, Value>,
        data_dir: Option<PathBuf>,
        inbox: Arc<Inbox>,
    },
    /// Carry out an action in `state`.
    Act {
        uuid: String,
        serial: u64,
        state: State,
        action: Action,
    },
    /// Remove an instance (ignored if `serial` is not the live build).
    Remove { uuid: String, serial: u64 },
    /// Stop the process within `grace`, then say so.
    Stop {
        grace: Duration,
        done: std::sync::mpsc::Sender<()>,
    },
}

/// The instances' and the daemon's way to the host.
#[derive(Clone)]
pub(crate) struct HostHandle {
    commands: mpsc::UnboundedSender<Command>,
    /// The process's name, for errors.
    name: Arc<str>,
    /// Set by the first stop (every kind of the process drains it).
    stopping: Arc<AtomicBool>,
}

impl HostHandle {
    pub(crate) fn send(&self, command: Command) -> Result<(), ErrorInfo> {
        self.commands.send(command).map_err(|_| {
            ErrorInfo::new(
                ErrorCode::Crashed,
                format!("kind process {} is stopped", self.name),
            )
        })
    }

    /// Stops the process (once, whoever asks first); blocks at most about
    /// `grace`.
    pub(crate) fn stop(&self, grace: Duration) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        let (done, finished) = std::sync::mpsc::channel();
        if self.send(Command::Stop { grace, done }).is_ok() {
            let _ = finished.recv_timeout(grace + Duration::from_secs(1));
        }
    }
}

/// Starts the host thread and the process, handshakes; what it serves.
pub(crate) fn spawn(
    spec: KindProcessSpec,
    daemon_version: String,
) -> Result<(HostHandle, Vec<Served>), ProcessError> {
    let (commands, receiver) = mpsc::unbounded_channel();
    let (ready, started) = std::sync::mpsc::channel();
    let handle = HostHandle {
        commands,
        name: spec.name.clone().into(),
        stopping: Arc::new(AtomicBool::new(false)),
    };
    let wait = spec.request_timeout.max(Duration::from_secs(10)) + Duration::from_secs(5);
    let name = spec.name.clone();
    std::thread::Builder::new()
        .name(format!("kind-{name}"))
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = ready.send(Err(ProcessError::Spawn(error)));
                    return;
                }
            };
            let tracker = RestartTracker::new(spec.restart);
            let host = Host {
                spec,
                daemon_version,
                commands: receiver,
                instances: HashMap::new(),
                removed: std::collections::HashSet::new(),
                queued: VecDeque::new(),
                tracker,
                next_id: 1,
                log_budget: LogBudget::default(),
            };
            runtime.block_on(host.run(ready));
        })
        .map_err(ProcessError::Spawn)?;
    match started.recv_timeout(wait) {
        Ok(Ok(served)) => Ok((handle, served)),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(ProcessError::Handshake(format!(
            "no handshake within {} s",
            wait.as_secs()
        ))),
    }
}

/// An instance the process has (or will have again after a restart).
struct Instance {
    serial: u64,
    category: &'static str,
    type_name: &'static str,
    properties: Map<String, Value>,
    data_dir: Option<PathBuf>,
    inbox: Arc<Inbox>,
}

/// A request of the daemon waiting for its reply.
struct Pending {
    /// What it was, for the deadline's message.
    what: String,
    /// Where its refusal goes: (uuid, serial) of a build or control action.
    instance: Option<(String, u64)>,
    deadline: Instant,
}

/// The running process.
struct Conn {
    child: Child,
    stdin: ChildStdin,
    lines: LineReader<ChildStdout>,
    pending: HashMap<u64, Pending>,
    flood: FloodLimit,
}

/// Why a process stopped serving.
enum Ended {
    /// The daemon stopped it.
    Stopped,
    /// It died or was killed for misbehaving: restart it.
    Failed(ErrorInfo),
}

/// At most 20 protocol warnings per 10 s per process; the rest counted.
#[derive(Default)]
struct LogBudget {
    window: Option<Instant>,
    logged: u32,
    dropped: u64,
}

impl LogBudget {
    fn allow(&mut self, now: Instant) -> bool {
        if self
            .window
            .is_none_or(|start| now.saturating_duration_since(start) >= Duration::from_secs(10))
        {
            if self.dropped > 0 {
                tracing::warn!(
                    dropped = self.dropped,
                    "more kind process protocol errors not logged"
                );
            }
            self.window = Some(now);
            self.logged = 0;
            self.dropped = 0;
        }
        if self.logged < 20 {
            self.logged += 1;
            true
        } else {
            self.dropped += 1;
            false
        }
    }
}

struct Host {
    spec: KindProcessSpec,
    daemon_version: String,
    commands: mpsc::UnboundedReceiver<Command>,
    /// Live instances by uuid.
    instances: HashMap<String, Instance>,
    /// Instances removed (their late events are dropped quietly).
    removed: std::collections::HashSet<String>,
    /// Actions that came while the process was down, for after its restart.
    queued: VecDeque<Command>,
    tracker: RestartTracker,
    next_id: u64,
    log_budget: LogBudget,
}

fn crashed(message: String) -> ErrorInfo {
    ErrorInfo::new(ErrorCode::Crashed, message)
}

impl Host {
    fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    async fn run(mut self, ready: std::sync::mpsc::Sender<Result<Vec<Served>, ProcessError>>) {
        let mut conn = match self.launch().await {
            Ok((conn, served)) => {
                let _ = ready.send(Ok(served));
                conn
            }
            Err(error) => {
                let _ = ready.send(Err(error));
                return;
            }
        };
        loop {
            let ended = self.serve(&mut conn).await;
            let reason = match ended {
                Ended::Stopped => return,
                Ended::Failed(reason) => reason,
            };
            tracing::error!(kind_process = %self.spec.name, error = %reason, "kind process failed");
            Self::kill(&mut conn.child).await;
            self.fail_all(&reason);
            let mut reason = reason;
            conn = loop {
                let decision = self.tracker.on_exit(
                    &Exit::Failed(reason.clone()),
                    Instant::now(),
                    rand::random_range(0.0..1.0),
                );
                match decision {
                    Decision::Restart { after, .. } => {
                        tracing::info!(kind_process = %self.spec.name, ?after, "restarting the kind process");
                        if !self.wait(after).await {
                            return;
                        }
                    }
                    Decision::Nothing | Decision::GiveUp(_) => {
                        let error = crashed(format!(
                            "kind process {} failed too often ({reason}): not restarted",
                            self.spec.name
                        ))
                        .with("kind_process", self.spec.name.clone());
                        tracing::error!(kind_process = %self.spec.name, %error, "giving up");
                        self.fail_all(&error);
                        self.down(error).await;
                        return;
                    }
                }
                match self.launch().await {
                    Ok((conn, _)) => break conn,
                    Err(ProcessError::Incompatible(why)) => {
                        tracing::error!(kind_process = %self.spec.name, reason = %why, "kind process incompatible: not restarted");
                        let error = ErrorInfo::new(
                            ErrorCode::Unsupported,
                            format!("kind process {} is incompatible: {why}", self.spec.name),
                        );
                        self.fail_all(&error);
                        self.down(error).await;
                        return;
                    }
                    Err(error) => reason = crashed(error.to_string()),
                }
            };
            self.rebuild(&mut conn).await;
        }
    }

    /// Starts the process and handshakes.
    async fn launch(&mut self) -> Result<(Conn, Vec<Served>), ProcessError> {
        let spec = &self.spec;
        let mut command = tokio::process::Command::new(&spec.command);
        command
            .args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = &spec.working_dir {
            command.current_dir(dir);
        }
        let mut child = command.spawn().map_err(ProcessError::Spawn)?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(ProcessError::Handshake("no pipes".into()));
        };
        let name = spec.name.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(kind_process = %name, "{line}");
            }
        });
        let mut conn = Conn {
            child,
            stdin,
            lines: LineReader::new(stdout, MAX_LINE),
            pending: HashMap::new(),
            flood: FloodLimit::new(spec.flood_limit),
        };
        let id = self.id();
        let hello = request::hello(id, &self.daemon_version);
        // A process needs time to start (an interpreter, imports): the
        // handshake gets at least 10 s.
        let patience = self.spec.request_timeout.max(Duration::from_secs(10));
        let deadline = Instant::now() + patience;
        if conn.stdin.write_all(&hello).await.is_err() {
            Self::kill(&mut conn.child).await;
            return Err(ProcessError::Handshake(
                "the process closed its stdin".into(),
            ));
        }
        let answer = tokio::time::timeout_at(deadline.into(), async {
            loop {
                match conn.lines.next().await {
                    Line::End => return Err(ProcessError::Handshake("the process exited".into())),
                    Line::TooLong => continue,
                    Line::Text(line) => match kind_protocol::decode(&line) {
                        Ok(Decoded {
                            message: KindMessage::Reply { id: reply, outcome },
                            ..
                        }) if reply == id => return Ok(outcome),
                        _ => continue,
                    },
                }
            }
        })
        .await;
        let outcome = match answer {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(error)) => {
                Self::kill(&mut conn.child).await;
                return Err(error);
            }
            Err(_) => {
                Self::kill(&mut conn.child).await;
                return Err(ProcessError::Handshake(format!(
                    "no answer to hello within {} s",
                    patience.as_secs_f64()
                )));
            }
        };
        let served = match outcome
            .map_err(|refused| refused.message)
            .and_then(|fields| parse_hello(&fields))
        {
            Ok(served) => served,
            Err(why) => {
                Self::kill(&mut conn.child).await;
                return Err(ProcessError::Incompatible(why));
            }
        };
        tracing::info!(kind_process = %self.spec.name, kinds = served.len(), "kind process ready");
        Ok((conn, served))
    }

    /// Builds every live instance again, then carries out what waited.
    async fn rebuild(&mut self, conn: &mut Conn) {
        let live: Vec<(String, u64)> = self
            .instances
            .iter()
            .map(|(uuid, instance)| (uuid.clone(), instance.serial))
            .collect();
        for (uuid, serial) in live {
            let id = self.id();
            let Some(instance) = self.instances.get(&uuid) else {
                continue;
            };
            let line = request::build(
                id,
                &uuid,
                instance.category,
                instance.type_name,
                &instance.properties,
                instance.data_dir.as_deref(),
            );
            let what = format!("build of {uuid}");
            self.send(conn, id, line, what, Some((uuid, serial))).await;
        }
        for command in std::mem::take(&mut self.queued) {
            self.command(conn, command).await;
        }
    }

    async fn send(
        &mut self,
        conn: &mut Conn,
        id: u64,
        line: Vec<u8>,
        what: String,
        instance: Option<(String, u64)>,
    ) {
        conn.pending.insert(
            id,
            Pending {
                what,
                instance,
                deadline: Instant::now() + self.spec.request_timeout,
            },
        );
        // A dead process's stdin fails: its end is seen on stdout.
        let _ = conn.stdin.write_all(&line).await;
    }

    /// Carries out one command while the process runs; `false` at stop.
    async fn command(&mut self, conn: &mut Conn, command: Command) -> bool {
        match command {
            Command::Build {
                uuid,
                serial,
                category,
                type_name,
                properties,
                data_dir,
                inbox,
            } => {
                if let Some(old) = self.instances.get(&uuid) {
                    if old.serial != serial {
                        let id = self.id();
                        self.send(
                            conn,
                            id,
                            request::remove(id, &uuid),
                            format!("remove of {uuid}"),
                            None,
                        )
                        .await;
                    }
                }
                self.removed.remove(&uuid);
                let id = self.id();
                let line = request::build(
                    id,
                    &uuid,
                    category,
                    type_name,
                    &properties,
                    data_dir.as_deref(),
                );
                self.instances.insert(
                    uuid.clone(),
                    Instance {
                        serial,
                        category,
                        type_name,
                        properties,
                        data_dir,
                        inbox,
                    },
                );
                self.send(
                    conn,
                    id,
                    line,
                    format!("build of {uuid}"),
                    Some((uuid, serial)),
                )
                .await;
            }
            Command::Act {
                uuid,
                serial,
                state,
                action,
            } => {
                if self.instances.get(&uuid).is_none_or(|i| i.serial != serial) {
                    return true;
                }
                let id = self.id();
                let line = request::act(id, &uuid, state, &action);
                let control = !matches!(action.kind, ActionKind::Create | ActionKind::Delete);
                self.send(
                    conn,
                    id,
                    line,
                    format!("{} of {uuid}", action.kind),
                    control.then_some((uuid, serial)),
                )
                .await;
            }
            Command::Remove { uuid, serial } => {
                if self
                    .instances
                    .get(&uuid)
                    .is_some_and(|i| i.serial == serial)
                {
                    self.instances.remove(&uuid);
                    self.removed.insert(uuid.clone());
                    let id = self.id();
                    self.send(
                        conn,
                        id,
                        request::remove(id, &uuid),
                        format!("remove of {uuid}"),
                        None,
                    )
                    .await;
                }
            }
            Command::Stop { grace, done } => {
                self.stop(conn, grace).await;
                let _ = done.send(());
                return false;
            }
        }
        true
    }

    /// Serves until the process fails or the daemon stops it.
    async fn serve(&mut self, conn: &mut Conn) -> Ended {
        loop {
            let deadline = conn.pending.values().map(|p| p.deadline).min();
            let sleep = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => {
                        if !self.command(conn, command).await {
                            return Ended::Stopped;
                        }
                    }
                    None => {
                        // Every handle is gone: the daemon is gone.
                        self.stop(conn, Duration::from_secs(3)).await;
                        return Ended::Stopped;
                    }
                },
                line = conn.lines.next() => {
                    if let Some(ended) = self.line(conn, line).await {
                        return ended;
                    }
                }
                () = sleep => {
                    let now = Instant::now();
                    if let Some(late) = conn.pending.values().find(|p| p.deadline <= now) {
                        return Ended::Failed(crashed(format!(
                            "kind process {} did not answer {} within {} s: killed",
                            self.spec.name, late.what, self.spec.request_timeout.as_secs_f64()
                        )));
                    }
                }
            }
        }
    }

    fn warn(&mut self, problem: &str) {
        if self.log_budget.allow(Instant::now()) {
            tracing::warn!(kind_process = %self.spec.name, problem, "bad message from a kind process: refused");
        }
    }

    async fn line(&mut self, conn: &mut Conn, line: Line) -> Option<Ended> {
        let line = match line {
            Line::End => {
                let status = conn.child.wait().await;
                let how = match status {
                    Ok(status) => status.to_string(),
                    Err(error) => error.to_string(),
                };
                return Some(Ended::Failed(crashed(format!(
                    "kind process {} exited ({how})",
                    self.spec.name
                ))));
            }
            Line::TooLong => {
                self.warn("a line over 1 MiB (skipped)");
                return None;
            }
            Line::Text(line) => line,
        };
        if !conn.flood.take(Instant::now()) {
            return Some(Ended::Failed(crashed(format!(
                "kind process {} sent more than {} lines per second: killed",
                self.spec.name, self.spec.flood_limit
            ))));
        }
        let decoded = match kind_protocol::decode(&line) {
            Ok(decoded) => decoded,
            Err(error) => {
                self.warn(&error.message);
                return None;
            }
        };
        if !decoded.unknown.is_empty() {
            let unknown = decoded.unknown.join(", ");
            self.warn(&format!("unknown fields ignored: {unknown}"));
        }
        match decoded.message {
            KindMessage::Reply { id, outcome } => {
                let Some(pending) = conn.pending.remove(&id) else {
                    self.warn(&format!("a reply to {id}, which is no pending request"));
                    return None;
                };
                if let (Err(error), Some((uuid, serial))) = (outcome, pending.instance) {
                    match self.instances.get(&uuid) {
                        Some(instance) if instance.serial == serial => {
                            instance.inbox.push(Update::Failed(error));
                        }
                        _ => {}
                    }
                }
            }
            KindMessage::Event { instance, event } => match self.instances.get(&instance) {
                Some(live) => live.inbox.push(Update::Event(event)),
                // Sent before the process saw the removal (a configuration
                // check builds and drops an instance): not an error.
                None if self.removed.contains(&instance) => {
                    tracing::debug!(kind_process = %self.spec.name, %instance, "event of a removed instance dropped");
                }
                None => {
                    let what = match event {
                        Event::Transition(_) => "transition",
                        Event::Fail(_) => "fail",
                        Event::Fields(_) => "fields",
                        Event::Publish => "publish",
                    };
                    self.warn(&format!("{what} event for unknown instance {instance}"));
                }
            },
            KindMessage::Request { id, name, .. } => {
                let refusal = ErrorInfo::new(
                    ErrorCode::Unsupported,
                    format!("request {name} is not supported by this daemon for kind processes"),
                );
                let _ = conn
                    .stdin
                    .write_all(&request::reply(id, Err(&refusal)))
                    .await;
            }
        }
        None
    }

    /// Tells every live instance that the process failed.
    fn fail_all(&mut self, reason: &ErrorInfo) {
        self.queued.clear();
        for instance in self.instances.values() {
            instance.inbox.push(Update::Failed(reason.clone()));
        }
    }

    /// Waits out a restart backoff, taking commands meanwhile; `false` if
    /// the daemon stopped it.
    async fn wait(&mut self, after: Duration) -> bool {
        let until = tokio::time::Instant::now() + after;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(until) => return true,
                command = self.commands.recv() => match command {
                    None => return false,
                    Some(Command::Stop { done, .. }) => {
                        let _ = done.send(());
                        return false;
                    }
                    Some(command) => self.while_down(command, None),
                }
            }
        }
    }

    /// A command while the process is down: builds and removals are
    /// recorded, actions wait for the restart (or fail at once if there
    /// will be none: `refusal`).
    fn while_down(&mut self, command: Command, refusal: Option<&ErrorInfo>) {
        match command {
            Command::Build {
                uuid,
                serial,
                category,
                type_name,
                properties,
                data_dir,
                inbox,
            } => {
                if let Some(refusal) = refusal {
                    inbox.push(Update::Failed(refusal.clone()));
                }
                self.instances.insert(
                    uuid,
                    Instance {
                        serial,
                        category,
                        type_name,
                        properties,
                        data_dir,
                        inbox,
                    },
                );
            }
            Command::Remove { uuid, serial } => {
                if self
                    .instances
                    .get(&uuid)
                    .is_some_and(|i| i.serial == serial)
                {
                    self.instances.remove(&uuid);
                }
            }
            Command::Act {
                ref uuid, serial, ..
            } => match refusal {
                Some(refusal) => {
                    if let Some(instance) = self.instances.get(uuid).filter(|i| i.serial == serial)
                    {
                        instance.inbox.push(Update::Failed(refusal.clone()));
                    }
                }
                None => self.queued.push_back(command),
            },
            Command::Stop { done, .. } => {
                let _ = done.send(());
            }
        }
    }

    /// The process will not run again: every action fails with `reason`
    /// until the daemon stops.
    async fn down(&mut self, reason: ErrorInfo) {
        while let Some(command) = self.commands.recv().await {
            if let Command::Stop { done, .. } = command {
                let _ = done.send(());
                return;
            }
            self.while_down(command, Some(&reason));
        }
    }

    /// `stop`, then SIGTERM, then SIGKILL, each after a third of `grace`.
    async fn stop(&mut self, conn: &mut Conn, grace: Duration) {
        let third = grace / 3;
        let id = self.id();
        let _ = conn.stdin.write_all(&request::stop(id)).await;
        if Self::exited_within(conn, third).await {
            return;
        }
        if let Some(pid) = conn.child.id().and_then(|pid| i32::try_from(pid).ok()) {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
        if Self::exited_within(conn, third).await {
            return;
        }
        tracing::warn!(kind_process = %self.spec.name, "kind process did not stop: killed");
        Self::kill(&mut conn.child).await;
    }

    /// Reads (and drops) its output until it exits, at most `limit`.
    async fn exited_within(conn: &mut Conn, limit: Duration) -> bool {
        let exited = async {
            while conn.lines.next().await != Line::End {}
            conn.child.wait().await
        };
        matches!(tokio::time::timeout(limit, exited).await, Ok(Ok(_)))
    }

    async fn kill(child: &mut Child) {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

/// The kinds a handshake's reply lists, checked; why not, if it is refused.
fn parse_hello(fields: &Map<String, Value>) -> Result<Vec<Served>, String> {
    let protocol = fields.get("protocol").and_then(Value::as_u64);
    if protocol != Some(kind_protocol::PROTOCOL_VERSION) {
        return Err(format!(
            "the kind speaks kind protocol {protocol:?}, the daemon {}",
            kind_protocol::PROTOCOL_VERSION
        ));
    }
    let sdk = fields.get("sdk").and_then(Value::as_str).unwrap_or("");
    if !kind_protocol::sdk_compatible(sdk, kind_protocol::SDK_VERSION) {
        return Err(format!(
            "the kind was built against SDK {sdk:?}, which does not work with the daemon's SDK {}",
            kind_protocol::SDK_VERSION
        ));
    }
    let Some(Value::Array(kinds)) = fields.get("kinds") else {
        return Err("the handshake lists no kinds".into());
    };
    let mut served = Vec::new();
    for kind in kinds {
        let text = |key: &str| {
            kind.get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let (Some(category), Some(type_name)) = (text("category"), text("type")) else {
            return Err(format!("a kind without category or type: {kind}"));
        };
        let schemas = match kind.get("schemas") {
            Some(Value::Object(schemas)) => schemas.clone(),
            None | Some(Value::Null) => Map::new(),
            Some(_) => return Err(format!("{category}/{type_name}: schemas is not an object")),
        };
        let mut actions = Vec::new();
        for action in kind
            .get("actions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let parsed = action
                .as_str()
                .and_then(|name| name.parse::<ActionKind>().ok())
                .ok_or_else(|| format!("{category}/{type_name}: unknown action {action}"))?;
            actions.push(parsed);
        }
        served.push(Served {
            category: Box::leak(category.to_owned().into_boxed_str()),
            type_name: Box::leak(type_name.to_owned().into_boxed_str()),
            schemas,
            actions,
        });
    }
    if served.is_empty() {
        return Err("the handshake lists no kinds".into());
    }
    Ok(served)
}
