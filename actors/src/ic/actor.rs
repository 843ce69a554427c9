//! The IC actor: one per component instance, wrapping the SDK's
//! [`Driver`]. It carries out actions (now, or later when `when` lies in
//! the future), publishes status on every change, on `ping` and as a
//! heartbeat, and runs the kind's timers. A component of category
//! `manager` additionally supervises the components it manages
//! ([`Children`]): it creates their actors, owns their addresses and
//! definitions, and removes them. It is also their supervisor: it hears
//! of every failure, finished run, operator reset and actor death of its
//! components and restarts them through `reset` after a backoff, within a
//! restart budget (`crate::ic::events`, `crate::ic::policy`).

use crate::directory::Directory;
use crate::ic::events::{self, ChildEvent, ChildEventKind, GiveUp, Outcome, Restart};
use crate::ic::policy::{Exit, Supervised, SupervisionSpec};
use crate::kinds::KindRegistry;
use crate::ports::{Inbound, Publisher};
use actix::prelude::*;
use indexmap::IndexMap;
use serde_json::Map;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use villas_sdk::protocol::{unix_now, HostInfo};
use villas_sdk::{
    Action, ActionKind, ComponentSpec, Driver, Effect, ErrorCode, ErrorInfo, Headers, ManagerOps,
    State, StatusExtra,
};

/// What every component actor shares.
pub struct ActorEnv {
    /// The kinds components can be built from.
    pub kinds: KindRegistry,
    /// The daemon-wide directory (routing, duplicate check).
    pub directory: Directory,
    /// Where statuses go.
    pub publisher: Publisher,
    /// Host facts for every status.
    pub host: Arc<HostInfo>,
    /// Status heartbeat period.
    pub heartbeat: Duration,
    /// Set when the daemon stops: actors dropped from then on are not
    /// reported to their supervisors as deaths.
    pub stopping: AtomicBool,
    /// The state directory: data directories, created components.
    pub store: crate::store::Store,
    /// Configured components waiting for their manager's actor to start.
    pub configured: crate::placement::PendingComponents,
    /// The daemon's metrics (each IC takes its handle from it).
    pub metrics: Arc<villas_metrics::Metrics>,
}

/// Delivers a bus message (shared by every component it addresses).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Deliver(pub Arc<Inbound>);

/// Carries out an action for the HTTP API.
#[derive(Message)]
#[rtype(result = "Executed")]
pub struct Execute(pub Action);

/// What an [`Execute`] did.
#[derive(Debug, MessageResponse)]
pub struct Executed {
    /// The status right after the action.
    pub status: Vec<u8>,
    /// The refusal or failure, if the action was not carried out.
    pub error: Option<ErrorInfo>,
}

/// Returns the current status message.
#[derive(Message)]
#[rtype(result = "Vec<u8>")]
pub struct GetStatus;

/// Deletes the component: stops what it runs, publishes `gone`, stops.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Remove;

/// The daemon stops: release what the component runs (a manager stops its
/// components first) and publish the final state, `shutdown`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retire;

/// The actor of one component.
pub struct IcActor {
    /// The component under the protocol's state machine.
    driver: Driver,
    /// Its status headers, shared by every publication.
    headers: Arc<Headers>,
    /// The shared environment.
    env: Arc<ActorEnv>,
    /// The components it manages, if it is a manager.
    children: Option<Children>,
    /// Reused buffer for the driver's effects.
    effects: Vec<Effect>,
    /// The last state published, to log transitions once.
    published: State,
    /// Where failures, finished runs and operator resets are reported.
    supervisor: Option<Recipient<ChildEvent>>,
    /// The last `start` carried out, re-issued by a restart.
    last_start: Option<Action>,
    /// A supervisor restart asked for a `start` once `idle` is reached.
    start_when_idle: bool,
    /// The run in progress ends because it was asked to (`stop`, `reset`,
    /// `shutdown`), not by itself.
    ending_on_request: bool,
    /// Restarts by the supervisor since the actor was built (published as
    /// `restarts` once non-zero).
    restarts: u64,
    /// The IC's metrics (state set, actions, restarts).
    metrics: villas_metrics::IcMetrics,
    /// Removed or stopped on purpose: the drop guard stays silent.
    retired: bool,
    /// The error to start in (set for a component rebuilt after its actor
    /// died), published instead of the start-up `idle`.
    failure: Option<ErrorInfo>,
}

impl IcActor {
    /// Builds a component's actor, starts it and enters it in the
    /// directory. Refuses unknown kinds, invalid definitions and uuids that
    /// exist already.
    pub fn spawn(
        env: &Arc<ActorEnv>,
        spec: ComponentSpec,
        managed_by: Option<String>,
        supervisor: Option<Recipient<ChildEvent>>,
    ) -> Result<Addr<IcActor>, ErrorInfo> {
        Self::spawn_inner(env, spec, managed_by, supervisor, None)
    }

    /// Builds and starts the actor; with `failure`, its first status is
    /// `error` with it (a component rebuilt after its actor died).
    fn spawn_inner(
        env: &Arc<ActorEnv>,
        spec: ComponentSpec,
        managed_by: Option<String>,
        supervisor: Option<Recipient<ChildEvent>>,
        failure: Option<ErrorInfo>,
    ) -> Result<Addr<IcActor>, ErrorInfo> {
        if env.directory.contains(spec.uuid()) {
            return Err(ErrorInfo::new(
                ErrorCode::DuplicateUuid,
                format!("a component with uuid {} already exists", spec.uuid()),
            )
            .with("uuid", spec.uuid()));
        }
        let registered = env
            .kinds
            .get(&spec.identity.category, &spec.identity.kind)?;
        let identity = spec.identity.clone();
        let children = (identity.category == "manager").then(|| Children {
            own_uuid: identity.uuid.clone(),
            env: env.clone(),
            managed: IndexMap::new(),
            supervised: Supervised::default(),
            own_addr: None,
        });
        let mut spec = spec;
        env.store.attach_data_dir(&mut spec)?;
        let driver = Driver::new(
            registered.kind.clone(),
            registered.schemas.clone(),
            spec,
            env.host.clone(),
            managed_by,
        )
        .inspect_err(|_| env.store.discard_unused(&identity.uuid))?;
        let metrics = env.metrics.ic(driver.spec());
        let actor = IcActor {
            metrics,
            headers: Arc::new(identity.headers()),
            driver,
            env: env.clone(),
            children,
            effects: Vec::new(),
            published: State::Idle,
            supervisor,
            last_start: None,
            start_when_idle: false,
            ending_on_request: false,
            restarts: 0,
            retired: false,
            failure,
        };
        let addr = actor.start();
        if let Err(duplicate) = env.directory.insert(identity, addr.clone()) {
            addr.do_send(Retire);
            return Err(ErrorInfo::new(
                ErrorCode::DuplicateUuid,
                duplicate.to_string(),
            ));
        }
        Ok(addr)
    }

    fn uuid(&self) -> &str {
        &self.driver.identity().uuid
    }

    /// Carries out an action now, or schedules it if `when` is ahead;
    /// returns the refusal or failure (also published).
    fn act(&mut self, action: &Action, ctx: &mut Context<Self>) -> Result<(), ErrorInfo> {
        if let Some(delay) = Driver::delay_of(action, unix_now()) {
            tracing::info!(uuid = self.uuid(), action = %action.kind, ?delay, "action scheduled");
            let mut due = action.clone();
            due.when = None;
            ctx.run_later(delay, move |actor, ctx| {
                // A refusal then is published (and logged) like any other.
                let _ = actor.act(&due, ctx);
            });
            return Ok(());
        }
        tracing::debug!(uuid = self.uuid(), action = %action.kind, "action");
        let manager = self.children.as_mut().map(|c| c as &mut dyn ManagerOps);
        let started = std::time::Instant::now();
        let outcome = self.driver.handle(action, manager, &mut self.effects);
        if outcome.is_ok() {
            self.note_accepted(action);
        }
        self.apply(ctx);
        self.metrics
            .action(action.kind, outcome.is_ok(), started.elapsed());
        outcome
    }

    /// Remembers what the supervisor needs of an accepted operator action.
    fn note_accepted(&mut self, action: &Action) {
        match action.kind {
            ActionKind::Start => {
                let mut start = action.clone();
                start.when = None;
                self.last_start = Some(start);
                self.ending_on_request = false;
                self.start_when_idle = false;
            }
            ActionKind::Reset => {
                self.ending_on_request = true;
                self.start_when_idle = false;
                self.tell_supervisor(ChildEventKind::OperatorReset);
            }
            ActionKind::Stop | ActionKind::Shutdown => self.ending_on_request = true,
            _ => {}
        }
    }

    fn tell_supervisor(&self, event: ChildEventKind) {
        if let Some(supervisor) = &self.supervisor {
            supervisor.do_send(ChildEvent {
                uuid: self.uuid().to_owned(),
                event,
            });
        }
    }

    /// Reports transitions the supervisor acts on, and starts again after
    /// a supervisor's reset when asked to.
    fn on_transition(
        &mut self,
        from: State,
        to: State,
        error: Option<&ErrorInfo>,
        ctx: &mut Context<Self>,
    ) {
        match to {
            State::Error => {
                if let Some(error) = error.filter(|e| e.code.is_failure()) {
                    self.start_when_idle = false;
                    self.tell_supervisor(ChildEventKind::Exited(Exit::Failed(error.clone())));
                }
            }
            State::Idle if self.start_when_idle => {
                self.start_when_idle = false;
                ctx.notify(StartAgain);
            }
            State::Idle
                if !self.ending_on_request
                    && matches!(
                        from,
                        State::Running | State::Stopping | State::Paused | State::Pausing
                    ) =>
            {
                self.tell_supervisor(ChildEventKind::Exited(Exit::Completed));
            }
            _ => {}
        }
    }

    /// Publishes and schedules what the driver asked for.
    fn apply(&mut self, ctx: &mut Context<Self>) {
        let mut effects = std::mem::take(&mut self.effects);
        for effect in effects.drain(..) {
            match effect {
                Effect::Publish { state, error } => self.publish(state, error.as_ref(), ctx),
                Effect::Spawn { task, generation } => {
                    ctx.spawn(task.0.into_actor(self).map(move |output, actor, ctx| {
                        actor
                            .driver
                            .task_done(generation, output, &mut actor.effects);
                        actor.apply(ctx);
                    }));
                }
                Effect::Schedule {
                    after,
                    token,
                    generation,
                } => {
                    ctx.run_later(after, move |actor, ctx| {
                        actor
                            .driver
                            .timer_fired(generation, token, &mut actor.effects);
                        actor.apply(ctx);
                    });
                }
            }
        }
        self.effects = effects;
    }

    fn publish(&mut self, state: State, error: Option<&ErrorInfo>, ctx: &mut Context<Self>) {
        if state != self.published {
            let from = self.published;
            self.metrics.state_changed(from, state);
            tracing::info!(uuid = self.uuid(), %from, to = %state, "state transition");
            self.published = state;
            self.on_transition(from, state, error, ctx);
        }
        if let Some(error) = error {
            tracing::warn!(uuid = self.uuid(), state = %state, %error, "error published");
        }
        let body = self.status(state, error);
        self.env.publisher.publish(self.headers.clone(), body);
    }

    fn status(&self, state: State, error: Option<&ErrorInfo>) -> Vec<u8> {
        let components: Option<Vec<&str>> = self.children.as_ref().map(Children::uuids);
        let fields = (self.restarts > 0).then(|| {
            let mut fields = Map::new();
            fields.insert("restarts".into(), self.restarts.into());
            fields
        });
        let extra = StatusExtra {
            fields,
            components: components.as_deref(),
        };
        self.driver.status_json(state, error, extra)
    }
}

impl Actor for IcActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(children) = self.children.as_mut() {
            // Its configured components (so that its first status lists
            // them), then those created earlier and stored.
            children.own_addr = Some(ctx.address());
            for configured in children.env.configured.take(&children.own_uuid) {
                let uuid = configured.spec.uuid().to_owned();
                if let Err(error) = children.add(configured.spec, configured.supervision) {
                    tracing::error!(%uuid, %error, "configured component not created");
                }
            }
            for spec in children.env.store.take_restored(&children.own_uuid) {
                let uuid = spec.uuid().to_owned();
                if let Err(error) = children.create(spec) {
                    tracing::error!(%uuid, %error, "stored component not created");
                }
            }
        }
        self.published = self.driver.state();
        match self.failure.take() {
            Some(error) => self.driver.fail(error, &mut self.effects),
            None => self.driver.publish_current(&mut self.effects),
        }
        self.apply(ctx);
        // Spread heartbeats over half a period so that many components do
        // not publish in bursts; the first comes no sooner than half a
        // period after the start-up status.
        let period = self.env.heartbeat;
        let offset = period.mul_f64(rand::random_range(0.5..1.0));
        ctx.run_later(offset, move |_, ctx| {
            ctx.run_interval(period, |actor, ctx| {
                actor.driver.publish_current(&mut actor.effects);
                actor.apply(ctx);
            });
        });
    }
}

impl Handler<Deliver> for IcActor {
    type Result = ();

    fn handle(&mut self, Deliver(message): Deliver, ctx: &mut Context<Self>) {
        match message.as_ref() {
            // A refusal or failure is published (and logged) by `apply`.
            Ok(action) => {
                let _ = self.act(action, ctx);
            }
            Err(error) => {
                self.driver.refuse(error.to_error_info(), &mut self.effects);
                self.apply(ctx);
            }
        }
    }
}

impl Handler<Execute> for IcActor {
    type Result = Executed;

    fn handle(&mut self, Execute(action): Execute, ctx: &mut Context<Self>) -> Self::Result {
        let outcome = self.act(&action, ctx);
        Executed {
            status: self.status(self.driver.state(), self.driver.error()),
            error: outcome.err(),
        }
    }
}

impl Handler<GetStatus> for IcActor {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.status(self.driver.state(), self.driver.error()))
    }
}

impl Handler<Remove> for IcActor {
    type Result = ();

    fn handle(&mut self, _: Remove, ctx: &mut Context<Self>) {
        if let Some(children) = self.children.as_mut() {
            children.remove_all();
        }
        self.driver.remove(&mut self.effects);
        self.retired = true;
        self.apply(ctx);
        ctx.stop();
    }
}

impl Handler<Retire> for IcActor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Retire, _: &mut Context<Self>) -> Self::Result {
        let children: Vec<Addr<IcActor>> = self
            .children
            .as_ref()
            .map(|c| c.managed.values().cloned().collect())
            .unwrap_or_default();
        let stopped =
            futures_util::future::join_all(children.into_iter().map(|child| child.send(Retire)));
        self.retired = true;
        Box::pin(stopped.into_actor(self).map(|_, actor, ctx| {
            actor.driver.release();
            // Every component's final state, simulators' too (issue 5).
            actor
                .driver
                .force_state(State::Shutdown, &mut actor.effects);
            actor.apply(ctx);
            ctx.stop();
        }))
    }
}

/// Internal: start again after a supervisor's reset reached `idle`.
#[derive(Message)]
#[rtype(result = "()")]
struct StartAgain;

impl Handler<StartAgain> for IcActor {
    type Result = ();

    fn handle(&mut self, _: StartAgain, ctx: &mut Context<Self>) {
        let Some(start) = self.last_start.clone() else {
            return;
        };
        tracing::info!(uuid = self.uuid(), "starting again after the restart");
        if let Err(error) = self.act(&start, ctx) {
            tracing::warn!(uuid = self.uuid(), %error, "start after the restart refused");
        }
    }
}

impl Handler<Restart> for IcActor {
    type Result = ();

    fn handle(&mut self, Restart { start, expected }: Restart, ctx: &mut Context<Self>) {
        if self.driver.state() != expected {
            tracing::info!(uuid = self.uuid(), state = %self.driver.state(), "restart dropped: the component moved on during the backoff");
            return;
        }
        self.restarts += 1;
        self.metrics.restarted();
        self.ending_on_request = true;
        let manager = self.children.as_mut().map(|c| c as &mut dyn ManagerOps);
        let outcome =
            self.driver
                .handle(&Action::new(ActionKind::Reset), manager, &mut self.effects);
        // Set after the reset's own transitions: a reset that reaches
        // `idle` at once has published it already.
        let idle_now = self.driver.state() == State::Idle;
        self.start_when_idle = start && outcome.is_ok() && !idle_now;
        self.apply(ctx);
        match outcome {
            Ok(()) if start && idle_now => ctx.notify(StartAgain),
            Ok(()) => {}
            Err(error) => tracing::error!(uuid = self.uuid(), %error, "restart: reset refused"),
        }
    }
}

impl Handler<GiveUp> for IcActor {
    type Result = ();

    fn handle(&mut self, GiveUp(error): GiveUp, ctx: &mut Context<Self>) {
        self.start_when_idle = false;
        self.driver.fail(error, &mut self.effects);
        self.apply(ctx);
    }
}

impl Handler<ChildEvent> for IcActor {
    type Result = ();

    fn handle(&mut self, ChildEvent { uuid, event }: ChildEvent, _: &mut Context<Self>) {
        let Some(children) = self.children.as_mut() else {
            return;
        };
        let outcome = match event {
            ChildEventKind::OperatorReset => {
                children.supervised.clear(&uuid);
                Outcome::Handled
            }
            ChildEventKind::Escalated(reason) => Outcome::Escalate(reason),
            ChildEventKind::Exited(exit) => match children.managed.get(&uuid) {
                Some(child) => events::on_exit(
                    &mut children.supervised,
                    &uuid,
                    &exit,
                    child.clone().recipient(),
                    child.clone().recipient(),
                ),
                None => Outcome::Handled,
            },
            ChildEventKind::ActorDied { spec, managed_by } => {
                children.respawn(*spec, managed_by);
                Outcome::Handled
            }
        };
        if let Outcome::Escalate(reason) = outcome {
            self.tell_supervisor(ChildEventKind::Escalated(reason));
        }
    }
}

impl Drop for IcActor {
    fn drop(&mut self) {
        if self.retired || self.env.stopping.load(Ordering::Relaxed) {
            return;
        }
        tracing::error!(uuid = self.uuid(), "component actor stopped unexpectedly");
        self.tell_supervisor(ChildEventKind::ActorDied {
            spec: Box::new(self.driver.spec().clone()),
            managed_by: self.driver.managed_by().map(str::to_owned),
        });
    }
}

/// The components a manager supervises.
pub struct Children {
    /// The manager's uuid (their `managed_by`).
    own_uuid: String,
    /// The shared environment.
    env: Arc<ActorEnv>,
    /// uuid -> actor, in creation order.
    managed: IndexMap<String, Addr<IcActor>>,
    /// The restart history of each of them.
    supervised: Supervised,
    /// The manager's own address (set when its actor starts): the
    /// supervisor its components report to.
    own_addr: Option<Addr<IcActor>>,
}

impl Children {
    /// The uuids of the components it manages, in creation order, for its
    /// status (borrowed: nothing is copied but the pointers).
    fn uuids(&self) -> Vec<&str> {
        self.managed.keys().map(String::as_str).collect()
    }

    fn remove_all(&mut self) {
        for (uuid, child) in self.managed.drain(..) {
            if let Err(error) = self.env.store.deleted(&uuid) {
                tracing::error!(%uuid, %error, "definition not removed");
            }
            self.env.directory.remove(&uuid);
            child.do_send(Remove);
        }
    }
}

impl Children {
    /// Rebuilds a component whose actor died, in `error` with the reason;
    /// its supervision then resets it like any failed component.
    fn respawn(&mut self, spec: ComponentSpec, managed_by: Option<String>) {
        let uuid = spec.uuid().to_owned();
        if !self.managed.contains_key(&uuid) {
            return;
        }
        self.env.directory.remove(&uuid);
        let supervisor = self.own_addr.clone().map(Addr::recipient);
        let failure = ErrorInfo::new(
            ErrorCode::Crashed,
            "the component's actor stopped unexpectedly; it was rebuilt from its definition",
        );
        match IcActor::spawn_inner(&self.env, spec, managed_by, supervisor, Some(failure)) {
            Ok(addr) => {
                self.managed.insert(uuid, addr);
            }
            Err(error) => {
                tracing::error!(%uuid, %error, "component could not be rebuilt");
                self.managed.shift_remove(&uuid);
                self.supervised.remove(&uuid);
            }
        }
    }
}

impl Children {
    /// Creates a component (stored unless configured) under this manager
    /// and supervises it with `supervision`.
    fn add(&mut self, spec: ComponentSpec, supervision: SupervisionSpec) -> Result<(), ErrorInfo> {
        let uuid = spec.uuid().to_owned();
        let durable = spec.clone();
        let is_manager = spec.identity.category == "manager";
        let supervisor = self.own_addr.clone().map(Addr::recipient);
        let addr = IcActor::spawn(&self.env, spec, Some(self.own_uuid.clone()), supervisor)?;
        if let Err(error) = self.env.store.created(&durable, &self.own_uuid) {
            self.env.directory.remove(&uuid);
            addr.do_send(Remove);
            return Err(error.into());
        }
        tracing::info!(%uuid, manager = %self.own_uuid, "component created");
        self.supervised
            .insert(uuid.clone(), supervision, is_manager);
        self.managed.insert(uuid, addr);
        Ok(())
    }
}

impl ManagerOps for Children {
    fn create(&mut self, spec: ComponentSpec) -> Result<(), ErrorInfo> {
        let supervision = SupervisionSpec::from_properties(&spec.properties)?;
        self.add(spec, supervision)
    }

    fn delete(&mut self, uuid: &str) -> Result<(), ErrorInfo> {
        // A client's text is echoed cut (a uuid is far shorter).
        let uuid: &str = &villas_sdk::protocol::action::echo(uuid);
        let canonical = villas_sdk::spec::canonical_uuid(uuid);
        if self.managed.contains_key(&canonical) {
            self.env.store.deleted(&canonical)?;
        }
        let Some(child) = self.managed.shift_remove(&canonical) else {
            return Err(ErrorInfo::new(
                ErrorCode::UnknownComponent,
                format!("this manager manages no component with uuid {uuid:?}"),
            )
            .with("uuid", uuid));
        };
        self.env.directory.remove(&canonical);
        self.supervised.remove(&canonical);
        child.do_send(Remove);
        tracing::info!(uuid = %canonical, manager = %self.own_uuid, "component deleted");
        Ok(())
    }

    fn managed(&self) -> Vec<String> {
        self.managed.keys().cloned().collect()
    }
}

/// Test only: makes the actor panic outside kind code, as a bug in the
/// daemon would.
#[cfg(test)]
#[derive(Message)]
#[rtype(result = "()")]
struct PanicForTest;

#[cfg(test)]
impl Handler<PanicForTest> for IcActor {
    type Result = ();

    fn handle(&mut self, _: PanicForTest, _: &mut Context<Self>) {
        panic!("test: the actor itself panicked");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::{PendingComponents, Placement};
    use crate::store::{StateSettings, Store};

    /// A manager whose dummy's actor dies: the manager rebuilds it from its
    /// definition, in `error`, and resets it; the manager lives on.
    #[actix::test]
    async fn a_dead_component_actor_is_rebuilt_by_its_manager_and_reset() {
        let kinds = KindRegistry::new(crate::builtin_kinds()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let manager = "6b5f6f2c-8a44-4d8a-9a3e-0d2b6f0b7a01";
        let child = "6b5f6f2c-8a44-4d8a-9a3e-0d2b6f0b7a02";
        let components = serde_json::json!([{
            "category": "simulator", "type": "dummy", "uuid": child,
            "transition_delay": 0.01, "restart_backoff": {"initial": 0.01, "max": 0.02},
        }]);
        let entries = serde_json::from_value(components).unwrap();
        let placement = Placement::from_config(manager, entries, &kinds).unwrap();
        let state = StateSettings::from_config(Some(dir.path().into()), None, None).unwrap();
        let store = Store::open(&state, &placement).unwrap();
        let (publisher, mut outbox) = Publisher::channel();
        let metrics = villas_metrics::Metrics::new(&villas_metrics::BuildInfo {
            version: "test".into(),
            profile: "debug",
        })
        .unwrap();
        let env = Arc::new(ActorEnv {
            kinds,
            directory: Directory::new(),
            publisher,
            host: Arc::new(HostInfo::detect("test")),
            heartbeat: Duration::from_secs(3600),
            stopping: AtomicBool::new(false),
            store,
            metrics: Arc::new(metrics),
            configured: PendingComponents::new(placement.components),
        });
        let top = IcActor::spawn(&env, placement.root.spec, Some(manager.into()), None).unwrap();
        let mut states = Vec::new();
        let mut next_state = async || loop {
            match outbox.recv().await {
                Some(crate::ports::Outgoing::Status { headers, body })
                    if headers.uuid.as_deref() == Some(child) =>
                {
                    let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    return status["status"]["state"].as_str().unwrap().to_owned();
                }
                Some(_) => continue,
                None => panic!("outbox closed"),
            }
        };
        states.push(next_state().await);
        let first = env.directory.lookup(child).unwrap();
        first.do_send(PanicForTest);
        for _ in 0..3 {
            states.push(next_state().await);
        }
        assert_eq!(states, ["idle", "error", "resetting", "idle"]);
        let rebuilt = env.directory.lookup(child).unwrap();
        assert!(!rebuilt.eq(&first), "the same actor answered");
        assert!(top.connected(), "the manager died too");
        assert!(rebuilt.send(GetStatus).await.is_ok());
    }
}
