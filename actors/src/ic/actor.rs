//! The IC actor: one per component instance, wrapping the SDK's
//! [`Driver`]. It carries out actions (now, or later when `when` lies in
//! the future), publishes status on every change, on `ping` and as a
//! heartbeat, runs the kind's timers and tasks, and does all of it inside
//! a tracing span carrying the component's uuid, so kind code's log lines
//! name their component. It is a supervised child: it reports failures,
//! finished runs, operator resets and (from its drop guard) its own death
//! to its supervisor, and carries out the supervisor's `Restart` and
//! `GiveUp` (its bookkeeping is `RestartState`). A component of
//! category `manager` is also a supervisor: it owns its components'
//! actors through a `Supervisor`.

use super::children::{OnDeath, Supervisor};
use super::events::{ChildEvent, ChildEventKind, GiveUp, Outcome, Restart, SupervisedBy};
use super::restart::{AfterTransition, RestartState};
use crate::ic::directory::Directory;
use crate::kinds::KindRegistry;
use crate::placement::PendingComponents;
use crate::ports::{Inbound, Publisher};
use crate::store::Store;
use actix::prelude::*;
use serde_json::Map;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;
use villas_sdk::protocol::{unix_now, HostInfo};
use villas_sdk::{
    Action, ActionKind, ComponentSpec, Driver, Effect, ErrorCode, ErrorInfo, Headers, ManagerOps,
    State, StatusExtra, TimerId,
};

/// The daemon's services every component actor shares.
pub struct Shared {
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
    /// Set once the daemon stops.
    pub stopping: Stopping,
    /// The state directory: data directories, created components.
    pub store: Store,
    /// Configured components waiting for their manager's actor to start.
    pub configured: PendingComponents,
    /// The daemon's metrics (each IC takes its handle from it).
    pub metrics: Arc<villas_metrics::Metrics>,
}

/// The daemon's stop has begun: from then on an actor that stops is no
/// death to report (its supervisor is stopping too). Set once, never
/// cleared.
#[derive(Debug, Default)]
pub struct Stopping(AtomicBool);

impl Stopping {
    /// The stop begins.
    pub fn begin(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether the stop has begun.
    pub fn begun(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
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

/// The daemon stops: release what the component runs (a manager retires
/// its components first) and publish the final state, `shutdown`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retire;

/// The actor of one component.
pub struct IcActor {
    /// The component under the protocol's state machine.
    driver: Driver,
    /// Its status headers, shared by every publication.
    headers: Arc<Headers>,
    /// The daemon's shared services.
    shared: Arc<Shared>,
    /// The components it manages, if it is a manager.
    children: Option<Supervisor>,
    /// Reused buffer for the driver's effects.
    effects: Vec<Effect>,
    /// The kind's pending timers, so that a cancelled one is dropped
    /// rather than kept until it would have fired.
    timers: HashMap<TimerId, SpawnHandle>,
    /// The last state published, to log transitions once.
    published: State,
    /// Where failures, finished runs and operator resets are reported.
    supervisor: Option<Recipient<ChildEvent>>,
    /// Reports its supervisor could not take (its actor had died), sent
    /// once the rebuilt one takes over ([`SupervisedBy`]).
    unreported: Vec<ChildEventKind>,
    /// What the supervisor needs remembered (last start, restarts, ...).
    restart: RestartState,
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
        shared: &Arc<Shared>,
        spec: ComponentSpec,
        managed_by: Option<String>,
        supervisor: Option<Recipient<ChildEvent>>,
    ) -> Result<Addr<IcActor>, ErrorInfo> {
        Self::build(shared, spec, managed_by, supervisor, None, None)
    }

    /// Builds again a component whose actor died: it starts in `error`
    /// with `failure`; a manager takes back the components it supervised.
    pub(crate) fn rebuild(
        shared: &Arc<Shared>,
        spec: ComponentSpec,
        managed_by: Option<String>,
        supervisor: Option<Recipient<ChildEvent>>,
        failure: ErrorInfo,
        children: Option<Supervisor>,
    ) -> Result<Addr<IcActor>, ErrorInfo> {
        Self::build(
            shared,
            spec,
            managed_by,
            supervisor,
            Some(failure),
            children,
        )
    }

    fn build(
        shared: &Arc<Shared>,
        spec: ComponentSpec,
        managed_by: Option<String>,
        supervisor: Option<Recipient<ChildEvent>>,
        failure: Option<ErrorInfo>,
        children: Option<Supervisor>,
    ) -> Result<Addr<IcActor>, ErrorInfo> {
        if shared.directory.contains(spec.uuid()) {
            return Err(ErrorInfo::new(
                ErrorCode::DuplicateUuid,
                format!("a component with uuid {} already exists", spec.uuid()),
            )
            .with("uuid", spec.uuid()));
        }
        let registered = shared
            .kinds
            .get(&spec.identity.category, &spec.identity.type_name)?;
        let identity = spec.identity.clone();
        let children = match children {
            Some(children) => Some(children),
            None => (identity.category == "manager")
                .then(|| Supervisor::new(identity.uuid.clone(), shared.clone(), OnDeath::Rebuild)),
        };
        let mut spec = spec;
        shared.store.attach_data_dir(&mut spec)?;
        let driver = Driver::new(
            registered.kind.clone(),
            registered.schemas.clone(),
            spec,
            shared.host.clone(),
            managed_by,
        )
        .inspect_err(|_| shared.store.discard_unused(&identity.uuid))?;
        let metrics = shared.metrics.ic(driver.spec());
        let actor = IcActor {
            metrics,
            headers: Arc::new(identity.headers()),
            driver,
            shared: shared.clone(),
            children,
            effects: Vec::new(),
            timers: HashMap::new(),
            published: State::Idle,
            supervisor,
            unreported: Vec::new(),
            restart: RestartState::default(),
            retired: false,
            failure,
        };
        let addr = actor.start();
        if let Err(duplicate) = shared.directory.insert(identity, addr.clone()) {
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

    /// `ic{uuid=...}`, entered whenever the actor works (each handler,
    /// timer and task), so that every log line, kind code's included,
    /// names its component. Made per use rather than kept: a span kept by
    /// each of 10,000 actors costs about 5 MB, one made per message about
    /// 0.4 µs.
    fn span(&self) -> tracing::Span {
        tracing::info_span!("ic", uuid = %self.uuid())
    }

    /// Carries out an action now, or schedules it if `when` is ahead;
    /// returns the refusal or failure (also published).
    fn act(&mut self, action: &Action, ctx: &mut Context<Self>) -> Result<(), ErrorInfo> {
        if let Some(delay) = Driver::delay_of(action, unix_now()) {
            tracing::info!(uuid = self.uuid(), action = %action.kind, ?delay, "action scheduled");
            let mut due = action.clone();
            due.when = None;
            ctx.run_later(delay, move |actor, ctx| {
                let _span = actor.span().entered();
                // A refusal then is published (and logged) like any other.
                let _ = actor.act(&due, ctx);
            });
            return Ok(());
        }
        tracing::debug!(uuid = self.uuid(), action = %action.kind, "action");
        let manager = self.children.as_mut().map(|c| c as &mut dyn ManagerOps);
        let started = std::time::Instant::now();
        let outcome = self.driver.handle(action, manager, &mut self.effects);
        if outcome.is_ok() && self.restart.on_accepted(action) {
            self.tell_supervisor(ChildEventKind::OperatorReset);
        }
        self.apply(ctx);
        self.metrics
            .action(action.kind, outcome.is_ok(), started.elapsed());
        outcome
    }

    /// Reports to the supervisor; kept for later if its actor is gone
    /// (a rebuilt supervisor takes over with [`SupervisedBy`]).
    fn tell_supervisor(&mut self, event: ChildEventKind) {
        match &self.supervisor {
            Some(supervisor) if supervisor.connected() => supervisor.do_send(ChildEvent {
                uuid: self.uuid().to_owned(),
                event,
            }),
            Some(_) => self.unreported.push(event),
            None => {}
        }
    }

    /// Publishes and schedules what the driver asked for.
    fn apply(&mut self, ctx: &mut Context<Self>) {
        let mut effects = std::mem::take(&mut self.effects);
        for effect in effects.drain(..) {
            match effect {
                Effect::Publish { state, error } => self.publish(state, error.as_ref(), ctx),
                Effect::Spawn { task, generation } => {
                    let task = task.0.instrument(self.span());
                    ctx.spawn(task.into_actor(self).map(move |output, actor, ctx| {
                        let _span = actor.span().entered();
                        actor
                            .driver
                            .task_done(generation, output, &mut actor.effects);
                        actor.apply(ctx);
                    }));
                }
                Effect::Schedule { after, timer } => {
                    let handle = ctx.run_later(after, move |actor, ctx| {
                        let _span = actor.span().entered();
                        actor.timers.remove(&timer);
                        actor.driver.timer_fired(timer, &mut actor.effects);
                        actor.apply(ctx);
                    });
                    self.timers.insert(timer, handle);
                }
                Effect::Cancel { timer } => {
                    if let Some(handle) = self.timers.remove(&timer) {
                        ctx.cancel_future(handle);
                    }
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
            match self.restart.on_transition(from, state, error) {
                AfterTransition::Nothing => {}
                AfterTransition::Report(exit) => {
                    self.tell_supervisor(ChildEventKind::Exited(exit));
                }
                AfterTransition::StartAgain => ctx.notify(StartAgain),
            }
        }
        if let Some(error) = error {
            tracing::warn!(uuid = self.uuid(), state = %state, %error, "error published");
        }
        let body = self.status(state, error);
        self.shared.publisher.publish(self.headers.clone(), body);
    }

    fn status(&self, state: State, error: Option<&ErrorInfo>) -> Vec<u8> {
        let components: Option<Vec<&str>> = self.children.as_ref().map(Supervisor::uuids);
        let restarts = self.restart.restarts();
        let fields = (restarts > 0).then(|| {
            let mut fields = Map::new();
            fields.insert("restarts".into(), restarts.into());
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
        let _span = self.span().entered();
        if let Some(children) = self.children.as_mut() {
            let rebuilt = !children.uuids().is_empty();
            children.started(ctx.address().recipient());
            if !rebuilt {
                // Its configured components (so that its first status
                // lists them), then those created earlier and stored.
                let own = self.driver.identity().uuid.clone();
                for configured in self.shared.configured.take(&own) {
                    let uuid = configured.spec.uuid().to_owned();
                    if let Err(error) = children.add(configured.spec, configured.supervision) {
                        tracing::error!(%uuid, %error, "configured component not created");
                    }
                }
                for spec in self.shared.store.take_restored(&own) {
                    let uuid = spec.uuid().to_owned();
                    if let Err(error) = children.create(spec) {
                        tracing::error!(%uuid, %error, "stored component not created");
                    }
                }
            }
        }
        self.published = self.driver.state();
        match self.failure.take() {
            Some(error) => self.driver.fail(error, &mut self.effects),
            None => {
                self.driver.publish_current(&mut self.effects);
                self.driver.start_up(&mut self.effects);
            }
        }
        self.apply(ctx);
        // Spread heartbeats over half a period so that many components do
        // not publish in bursts; the first comes no sooner than half a
        // period after the start-up status.
        let period = self.shared.heartbeat;
        let offset = period.mul_f64(rand::random_range(0.5..1.0));
        ctx.run_later(offset, move |_, ctx| {
            ctx.run_interval(period, |actor, ctx| {
                let _span = actor.span().entered();
                actor.driver.publish_current(&mut actor.effects);
                actor.apply(ctx);
            });
        });
    }
}

impl Handler<Deliver> for IcActor {
    type Result = ();

    fn handle(&mut self, Deliver(message): Deliver, ctx: &mut Context<Self>) {
        let _span = self.span().entered();
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
        let _span = self.span().entered();
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
        let _span = self.span().entered();
        MessageResult(self.status(self.driver.state(), self.driver.error()))
    }
}

impl Handler<Remove> for IcActor {
    type Result = ();

    fn handle(&mut self, _: Remove, ctx: &mut Context<Self>) {
        let _span = self.span().entered();
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
        let children = self
            .children
            .as_ref()
            .map(Supervisor::actors)
            .unwrap_or_default();
        let retired =
            futures_util::future::join_all(children.into_iter().map(|child| child.send(Retire)));
        self.retired = true;
        Box::pin(retired.into_actor(self).map(|_, actor, ctx| {
            let _span = actor.span().entered();
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
        let _span = self.span().entered();
        let Some(start) = self.restart.last_start().cloned() else {
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
        let _span = self.span().entered();
        if self.driver.state() != expected {
            tracing::info!(uuid = self.uuid(), state = %self.driver.state(), "restart dropped: the component moved on during the backoff");
            return;
        }
        self.restart.restarting();
        self.metrics.restarted();
        let manager = self.children.as_mut().map(|c| c as &mut dyn ManagerOps);
        let outcome =
            self.driver
                .handle(&Action::new(ActionKind::Reset), manager, &mut self.effects);
        // Decided before the reset's own transitions are published: a
        // reset that reaches `idle` at once starts again right away.
        let idle_now = self.driver.state() == State::Idle;
        let start_now = self.restart.restarted(start, outcome.is_ok(), idle_now);
        self.apply(ctx);
        if start_now {
            ctx.notify(StartAgain);
        }
        if let Err(error) = outcome {
            tracing::error!(uuid = self.uuid(), %error, "restart: reset refused");
        }
    }
}

impl Handler<GiveUp> for IcActor {
    type Result = ();

    fn handle(&mut self, GiveUp(error): GiveUp, ctx: &mut Context<Self>) {
        let _span = self.span().entered();
        self.restart.gave_up();
        self.driver.fail(error, &mut self.effects);
        self.apply(ctx);
    }
}

impl Handler<SupervisedBy> for IcActor {
    type Result = ();

    fn handle(&mut self, SupervisedBy(supervisor): SupervisedBy, _: &mut Context<Self>) {
        let _span = self.span().entered();
        tracing::info!(uuid = self.uuid(), "reporting to the rebuilt manager");
        self.supervisor = Some(supervisor);
        for event in std::mem::take(&mut self.unreported) {
            self.tell_supervisor(event);
        }
    }
}

impl Handler<ChildEvent> for IcActor {
    type Result = ();

    fn handle(&mut self, event: ChildEvent, _: &mut Context<Self>) {
        let _span = self.span().entered();
        let Some(children) = self.children.as_mut() else {
            return;
        };
        if let Outcome::Escalate(reason) = children.handle(event) {
            self.tell_supervisor(ChildEventKind::Escalated(reason));
        }
    }
}

impl Drop for IcActor {
    fn drop(&mut self) {
        if self.retired || self.shared.stopping.begun() {
            return;
        }
        let _span = self.span().entered();
        tracing::error!(uuid = self.uuid(), "component actor stopped unexpectedly");
        let event = ChildEventKind::ActorDied {
            spec: Box::new(self.driver.spec().clone()),
            managed_by: self.driver.managed_by().map(str::to_owned),
            children: self.children.take().map(Box::new),
        };
        self.tell_supervisor(event);
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
    use crate::ports::{Outbox, Outgoing};
    use crate::store::{StateSettings, Store};
    use serde_json::{json, Value};
    use villas_sdk::TypedKind;

    /// The root manager's uuid (the daemon's) in these tests.
    const ROOT: &str = "6b5f6f2c-8a44-4d8a-9a3e-0d2b6f0b7a00";

    /// A daemon's IC tree without a transport: the shared services for
    /// `components` (configuration entries) placed under [`ROOT`], and
    /// the outbox their statuses go to.
    struct Tree {
        shared: Arc<Shared>,
        root: ComponentSpec,
        outbox: Outbox,
        _dir: tempfile::TempDir,
    }

    impl Tree {
        fn new(components: Value) -> Tree {
            let kinds = KindRegistry::new([
                villas_kind_dummy::DummyKind.into_kind(),
                villas_kind_generic_manager::GenericManagerKind.into_kind(),
            ])
            .unwrap();
            let dir = tempfile::tempdir().unwrap();
            let entries = serde_json::from_value(components).unwrap();
            let placement = Placement::from_config(ROOT, entries, &kinds).unwrap();
            let state = StateSettings::from_config(Some(dir.path().into()), None, None).unwrap();
            let store = Store::open(&state, &placement).unwrap();
            let (publisher, outbox) = Publisher::channel();
            let metrics = villas_metrics::Metrics::new(&villas_metrics::BuildInfo {
                version: "test".into(),
                profile: "debug",
            })
            .unwrap();
            let shared = Arc::new(Shared {
                kinds,
                directory: Directory::new(),
                publisher,
                host: Arc::new(HostInfo::detect("test")),
                heartbeat: Duration::from_secs(3600),
                stopping: Stopping::default(),
                store,
                metrics: Arc::new(metrics),
                configured: PendingComponents::new(placement.components),
            });
            Tree {
                shared,
                root: placement.root.spec,
                outbox,
                _dir: dir,
            }
        }

        /// Starts the root manager (unsupervised) and the tree below it.
        fn start(&self) -> Addr<IcActor> {
            IcActor::spawn(&self.shared, self.root.clone(), Some(ROOT.into()), None).unwrap()
        }

        /// The next status `uuid` publishes (bounded wait).
        async fn next_status(&mut self, uuid: &str) -> Value {
            let wait = async {
                loop {
                    match self.outbox.recv().await {
                        Some(Outgoing::Status { headers, body })
                            if headers.uuid.as_deref() == Some(uuid) =>
                        {
                            return serde_json::from_slice::<Value>(&body).unwrap();
                        }
                        Some(_) => continue,
                        None => panic!("outbox closed"),
                    }
                }
            };
            tokio::time::timeout(Duration::from_secs(10), wait)
                .await
                .unwrap_or_else(|_| panic!("no status of {uuid} within 10 s"))
        }

        /// The states `uuid` publishes next, `count` of them.
        async fn next_states(&mut self, uuid: &str, count: usize) -> Vec<String> {
            let mut states = Vec::new();
            for _ in 0..count {
                let status = self.next_status(uuid).await;
                states.push(status["status"]["state"].as_str().unwrap().to_owned());
            }
            states
        }

        fn actor(&self, uuid: &str) -> Addr<IcActor> {
            self.shared.directory.lookup(uuid).unwrap()
        }
    }

    /// Test only: makes the actor panic outside kind code, as a bug in
    /// the daemon would.
    #[derive(Message)]
    #[rtype(result = "()")]
    struct PanicForTest;

    impl Handler<PanicForTest> for IcActor {
        type Result = ();

        fn handle(&mut self, _: PanicForTest, _: &mut Context<Self>) {
            panic!("test: the actor itself panicked");
        }
    }

    /// A manager whose dummy's actor dies: the manager rebuilds it from its
    /// definition, in `error`, and resets it; the manager lives on.
    #[actix::test]
    async fn a_dead_component_actor_is_rebuilt_by_its_manager_and_reset() {
        let child = "6b5f6f2c-8a44-4d8a-9a3e-0d2b6f0b7a02";
        let mut tree = Tree::new(json!([{
            "category": "simulator", "type": "dummy", "uuid": child,
            "transition_delay": 0.01, "restart_backoff": {"initial": 0.01, "max": 0.02},
        }]));
        let top = tree.start();
        assert_eq!(tree.next_states(child, 1).await, ["idle"]);
        let first = tree.actor(child);
        first.do_send(PanicForTest);
        assert_eq!(
            tree.next_states(child, 3).await,
            ["error", "resetting", "idle"]
        );
        let rebuilt = tree.actor(child);
        assert!(!rebuilt.eq(&first), "the same actor answered");
        assert!(top.connected(), "the manager died too");
        assert!(rebuilt.send(GetStatus).await.is_ok());
    }

    /// A manager whose own actor dies is rebuilt by its manager; the
    /// components it managed stay its own: it lists them, and it still
    /// supervises them (a failure of one is reset).
    #[actix::test]
    async fn a_rebuilt_manager_keeps_supervising_its_components() {
        let manager = "6b5f6f2c-8a44-4d8a-9a3e-0d2b6f0b7a10";
        let child = "6b5f6f2c-8a44-4d8a-9a3e-0d2b6f0b7a11";
        let mut tree = Tree::new(json!([
            {
                "category": "manager", "type": "generic", "uuid": manager,
                "restart_backoff": {"initial": 0.01, "max": 0.02},
            },
            {
                "category": "simulator", "type": "dummy", "uuid": child, "manager": manager,
                "transition_delay": 0.01, "restart_backoff": {"initial": 0.01, "max": 0.02},
            },
        ]));
        let _top = tree.start();
        assert_eq!(tree.next_states(child, 1).await, ["idle"]);

        tree.actor(manager).do_send(PanicForTest);
        let mut states = Vec::new();
        let mut last = Value::Null;
        while states.last().map(String::as_str) != Some("idle") {
            last = tree.next_status(manager).await;
            states.push(last["status"]["state"].as_str().unwrap().to_owned());
        }
        assert_eq!(states, ["error", "resetting", "idle"]);
        assert_eq!(last["components"], json!([child]));

        // The child's failure reaches the rebuilt manager, which resets it.
        let start = json!({"action": "start", "parameters": {"chaos": "fail"}});
        let villas_sdk::protocol::Body::Action(start) =
            villas_sdk::protocol::parse_body(start.to_string().as_bytes())
        else {
            panic!("not an action")
        };
        tree.actor(child).do_send(Deliver(Arc::new(Ok(start))));
        assert_eq!(
            tree.next_states(child, 5).await,
            ["starting", "running", "error", "resetting", "idle"]
        );
    }
}
