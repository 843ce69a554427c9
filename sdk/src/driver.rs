//! The state machine every component runs under, whatever its kind: turns
//! actions into checked transitions, validates parameters, calls the kind
//! (catching its panics), and produces the status messages to publish.
//! Transport-free and synchronous, so kinds can be tested with it directly.

use crate::component::{Admitted, Component, Context, Effect, Kind, ManagerOps, TaskOutput};
use crate::protocol::status::{raw_json, unix_now};
use crate::protocol::{
    Action, ActionKind, ErrorCode, ErrorInfo, HostInfo, Identity, State, StatusBody, StatusMessage,
};
use crate::schema::Schemas;
use crate::spec::ComponentSpec;
use crate::time::{Clock, TimerId, Timers};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the daemon adds to a component's status besides what the driver
/// and the kind know.
#[derive(Debug, Default)]
pub struct StatusExtra<'a> {
    /// More `status` fields (a supervisor's `restarts`, say).
    pub fields: Option<Map<String, Value>>,
    /// A manager's components (uuids): published as `components` at the
    /// top level of the message, where the reference puts them, and in
    /// `status`.
    pub components: Option<&'a [&'a str]>,
}

/// The `model` and `results` of a simulator's last accepted `start`.
#[derive(Debug, Default)]
struct LastStart {
    /// The action's `model`.
    model: Option<Value>,
    /// The action's `results`.
    results: Option<Value>,
}

/// A component instance under the protocol's state machine.
pub struct Driver {
    /// The kind, kept to rebuild the instance after it panicked.
    kind: Arc<dyn Kind>,
    /// The instance's definition.
    spec: ComponentSpec,
    /// The kind's instance.
    component: Box<dyn Component>,
    /// The kind's compiled schemas, shared by all its instances.
    schemas: Arc<Schemas>,
    /// Facts shared by every status of the daemon.
    host: Arc<HostInfo>,
    /// The uuid of the managing manager.
    managed_by: Option<String>,
    /// `properties`, serialised once.
    properties: Box<RawValue>,
    /// Current state.
    state: State,
    /// The error that put the component in `error`.
    error: Option<ErrorInfo>,
    /// When the component (re)started, for `uptime`.
    started: Instant,
    /// Where the time comes from (the system's clock but in tests).
    clock: Clock,
    /// The timers that may still fire; cleared by `reset`, a panic and
    /// the removal.
    timers: Timers,
    /// Task generation: bumped by `reset`, a panic and the removal so that
    /// the output of a task spawned before is dropped.
    generation: u64,
    /// The instance panicked: rebuild it from the kind on `reset`.
    crashed: bool,
    /// The refusal or failure of the action being handled, returned by
    /// [`Driver::handle`].
    outcome: Option<ErrorInfo>,
    /// A simulator's last accepted `start` (`None` for other categories):
    /// its status reports `model` and `results` at the top level, as the
    /// reference's simulators do.
    last_start: Option<LastStart>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("uuid", &self.spec.identity.uuid)
            .field("state", &self.state)
            .finish()
    }
}

impl Driver {
    /// Builds an instance of `kind` in state `idle`.
    pub fn new(
        kind: Arc<dyn Kind>,
        schemas: Arc<Schemas>,
        spec: ComponentSpec,
        host: Arc<HostInfo>,
        managed_by: Option<String>,
    ) -> Result<Self, ErrorInfo> {
        let component = build_guarded(kind.as_ref(), &spec)?;
        let schemas = match component.own_schemas() {
            None => schemas,
            Some(own) => {
                let mut all = kind.schemas();
                all.extend(own);
                Arc::new(Schemas::compile(all).map_err(|error| {
                    ErrorInfo::new(ErrorCode::InvalidParameters, error.to_string())
                        .with("action", error.action.as_str())
                })?)
            }
        };
        let properties = raw_json(&spec.published_properties());
        let last_start = (spec.identity.category == "simulator").then(LastStart::default);
        Ok(Driver {
            kind,
            spec,
            component,
            schemas,
            host,
            managed_by,
            properties,
            state: State::Idle,
            error: None,
            started: Instant::now(),
            clock: Clock::System,
            timers: Timers::default(),
            generation: 0,
            crashed: false,
            outcome: None,
            last_start,
        })
    }

    /// Checks that `kind` accepts the definition `spec` by building an
    /// instance (under the same panic guard as every build) and dropping
    /// it: what a configuration check does before anything runs.
    pub fn check(kind: &dyn Kind, spec: &ComponentSpec) -> Result<(), ErrorInfo> {
        build_guarded(kind, spec).map(drop)
    }

    /// The actions an instance of `kind` built from `spec` carries out
    /// besides ping and reset (`None` if it cannot be built): what a kind
    /// process lists in its handshake.
    pub fn check_actions(kind: &dyn Kind, spec: &ComponentSpec) -> Option<Vec<ActionKind>> {
        build_guarded(kind, spec)
            .ok()
            .map(|component| component.actions().to_vec())
    }

    /// An instance of `kind` built from raw properties, with its schemas
    /// compiled for it alone and no manager: what a lab's unit tests of its
    /// own kind need (the daemon shares compiled schemas between instances).
    pub fn standalone(
        kind: Arc<dyn Kind>,
        properties: Map<String, Value>,
    ) -> Result<Self, ErrorInfo> {
        let schemas = Schemas::compile(kind.schemas())
            .map_err(|e| ErrorInfo::new(ErrorCode::Failed, e.to_string()))?;
        let spec = ComponentSpec::from_properties(properties).map_err(|e| e.to_error_info())?;
        Self::new(
            kind,
            Arc::new(schemas),
            spec,
            Arc::new(HostInfo::detect("test")),
            None,
        )
    }

    /// Reads the time from `clock` from now on (a test's manual clock);
    /// `uptime` counts from now.
    pub fn set_clock(&mut self, clock: Clock) {
        self.started = clock.now();
        self.clock = clock;
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The error that put the component in `error`, if it is there.
    pub fn error(&self) -> Option<&ErrorInfo> {
        self.error.as_ref()
    }

    /// The component's definition.
    pub fn spec(&self) -> &ComponentSpec {
        &self.spec
    }

    /// The uuid of the managing manager.
    pub fn managed_by(&self) -> Option<&str> {
        self.managed_by.as_deref()
    }

    /// The component's addressing identity.
    pub fn identity(&self) -> &Identity {
        &self.spec.identity
    }

    /// How long to wait before carrying out `action`: `Some` when its
    /// `when` lies in the future.
    pub fn delay_of(action: &Action, now_unix: f64) -> Option<Duration> {
        let when = action.when?;
        let delay = when - now_unix;
        (delay > 0.001).then(|| Duration::from_secs_f64(delay.min(365.0 * 86_400.0)))
    }

    /// Carries out an action now. Everything to publish or schedule is
    /// appended to `effects`. Returns the error if the action was refused
    /// (state kept) or failed (state `error`); both are also published.
    pub fn handle(
        &mut self,
        action: &Action,
        manager: Option<&mut dyn ManagerOps>,
        effects: &mut Vec<Effect>,
    ) -> Result<(), ErrorInfo> {
        self.outcome = None;
        if self.state == State::Gone {
            return Err(ErrorInfo::new(
                ErrorCode::UnknownComponent,
                "the component was deleted",
            ));
        }
        match action.kind {
            ActionKind::Ping => self.publish_current(effects),
            ActionKind::Create | ActionKind::Delete => self.manage(action, manager, effects),
            kind => self.control(kind, action, manager, effects),
        }
        self.outcome.take().map_or(Ok(()), Err)
    }

    fn manage(
        &mut self,
        action: &Action,
        manager: Option<&mut dyn ManagerOps>,
        effects: &mut Vec<Effect>,
    ) {
        if manager.is_none() || !self.component.actions().contains(&action.kind) {
            return self.refuse(
                ErrorInfo::new(
                    ErrorCode::Unsupported,
                    format!(
                        "{} is only for components of category manager; {} is a {}",
                        action.kind, self.spec.identity.uuid, self.spec.identity.category
                    ),
                )
                .with("action", action.kind.as_str()),
                effects,
            );
        }
        if let Err(error) = self
            .schemas
            .validate(action.kind.as_str(), &action.parameters)
        {
            return self.refuse(error, effects);
        }
        let admitted = match self.admit(action) {
            Ok(admitted) => admitted,
            Err(error) => return self.refuse(error, effects),
        };
        let result = self.call(manager, effects, |component, ctx| {
            component.act(ctx, action, admitted)
        });
        match result {
            Ok(()) => self.publish_current(effects),
            // A panicking manager is no longer trusted: `error` until reset.
            Err(error) if error.code == ErrorCode::Crashed => self.set_error(error, effects),
            Err(error) => self.refuse(error, effects),
        }
    }

    fn control(
        &mut self,
        kind: ActionKind,
        action: &Action,
        manager: Option<&mut dyn ManagerOps>,
        effects: &mut Vec<Effect>,
    ) {
        let transient = match kind {
            ActionKind::Start => State::Starting,
            ActionKind::Stop => State::Stopping,
            ActionKind::Pause => State::Pausing,
            ActionKind::Resume => State::Resuming,
            ActionKind::Shutdown => State::ShuttingDown,
            _ => State::Resetting,
        };
        let is_reset = kind == ActionKind::Reset;
        if !is_reset && !self.component.actions().contains(&kind) {
            return self.refuse(
                ErrorInfo::new(
                    ErrorCode::Unsupported,
                    self.component.unsupported(kind).unwrap_or_else(|| {
                        format!(
                            "a {} {} does not support {kind}",
                            self.spec.identity.type_name, self.spec.identity.category
                        )
                    }),
                )
                .with("action", kind.as_str()),
                effects,
            );
        }
        // The same action again while it is being carried out (VILLASweb
        // publishes every action twice; a broker may redeliver): nothing to
        // do, nothing to publish. A repeated `reset` restarts the reset.
        if self.state == transient && !is_reset {
            return;
        }
        if !self.state.can_become(transient) {
            return self.refuse(
                ErrorInfo::new(
                    ErrorCode::InvalidTransition,
                    format!("cannot {kind} in state {}", self.state),
                )
                .with("action", kind.as_str())
                .with("from", self.state.as_str())
                .with("to", transient.as_str()),
                effects,
            );
        }
        if let Err(error) = self.schemas.validate(kind.as_str(), &action.parameters) {
            self.set_error(error, effects);
            return;
        }
        let admitted = if is_reset {
            Admitted::none()
        } else {
            match self.admit(action) {
                Ok(admitted) => admitted,
                Err(error) => return self.refuse(error, effects),
            }
        };
        if is_reset {
            self.generation += 1;
            self.cancel_timers(effects);
            self.started = self.clock.now();
            if self.crashed {
                match build_guarded(self.kind.as_ref(), &self.spec) {
                    Ok(component) => {
                        self.component = component;
                        self.crashed = false;
                    }
                    Err(error) => {
                        self.set_error(error, effects);
                        return;
                    }
                }
            }
        }
        if let (ActionKind::Start, Some(last)) = (kind, self.last_start.as_mut()) {
            last.model = action.model.clone();
            last.results = action.results.clone();
        }
        self.state = transient;
        self.error = None;
        effects.push(Effect::Publish {
            state: transient,
            error: None,
        });
        if let Err(error) = self.call(manager, effects, |component, ctx| {
            if is_reset {
                component.reset(ctx, action)
            } else {
                component.act(ctx, action, admitted)
            }
        }) {
            self.set_error(error, effects);
        }
    }

    /// Asks the component to admit `action` (its panic is a refusal too).
    fn admit(&self, action: &Action) -> Result<Admitted, ErrorInfo> {
        let (component, spec) = (&self.component, &self.spec);
        catch_unwind(AssertUnwindSafe(|| component.admit(spec, action)))
            .unwrap_or_else(|panic| {
                Err(ErrorInfo::new(
                    ErrorCode::Failed,
                    format!(
                        "checking the action panicked: {}",
                        panic_message(panic.as_ref())
                    ),
                ))
            })
            .map_err(|error| error.with("action", action.kind.as_str()))
    }

    /// Cancels every live timer (`reset`, a panic).
    fn cancel_timers(&mut self, effects: &mut Vec<Effect>) {
        effects.extend(
            self.timers
                .clear()
                .into_iter()
                .map(|timer| Effect::Cancel { timer }),
        );
    }

    /// The instance's actor started: lets the kind begin what it watches
    /// by itself ([`Component::on_start`]); its error puts the component
    /// in `error`. `manager` as for [`Driver::handle`].
    pub fn start(&mut self, manager: Option<&mut dyn ManagerOps>, effects: &mut Vec<Effect>) {
        if self.state == State::Gone {
            return;
        }
        if let Err(error) = self.call(manager, effects, |component, ctx| component.on_start(ctx)) {
            self.set_error(error, effects);
        }
    }

    /// A timer fired: passes its token to the kind unless the timer was
    /// cancelled (or fired) before. `manager` as for [`Driver::handle`]:
    /// a manager's timer may create and delete components.
    pub fn timer_fired(
        &mut self,
        timer: TimerId,
        manager: Option<&mut dyn ManagerOps>,
        effects: &mut Vec<Effect>,
    ) {
        if self.state == State::Gone {
            return;
        }
        let Some(token) = self.timers.take(timer) else {
            return;
        };
        if let Err(error) = self.call(manager, effects, |component, ctx| {
            component.on_timer(ctx, token)
        }) {
            self.set_error(error, effects);
        }
    }

    /// A task spawned by the component completed: passes its output on
    /// unless it is stale. `manager` as for [`Driver::timer_fired`].
    pub fn task_done(
        &mut self,
        generation: u64,
        output: TaskOutput,
        manager: Option<&mut dyn ManagerOps>,
        effects: &mut Vec<Effect>,
    ) {
        if generation != self.generation || self.state == State::Gone {
            return;
        }
        if let Err(error) = self.call(manager, effects, |component, ctx| {
            component.on_task(ctx, output)
        }) {
            self.set_error(error, effects);
        }
    }

    /// Puts the component in `error` with `error` from outside the kind
    /// (its supervisor gave up restarting it, say), and publishes it.
    pub fn fail(&mut self, error: ErrorInfo, effects: &mut Vec<Effect>) {
        if self.state != State::Gone {
            self.set_error(error, effects);
        }
    }

    /// Publishes the current state with a refusal's error; the state is kept.
    pub fn refuse(&mut self, error: ErrorInfo, effects: &mut Vec<Effect>) {
        self.outcome = Some(error.clone());
        effects.push(Effect::Publish {
            state: self.state,
            error: Some(error),
        });
    }

    /// Publishes the current status.
    pub fn publish_current(&self, effects: &mut Vec<Effect>) {
        effects.push(Effect::Publish {
            state: self.state,
            error: self.error.clone(),
        });
    }

    /// Removes the instance: everything it runs is released, timers are
    /// cancelled, and `gone` is published exactly once.
    pub fn remove(&mut self, effects: &mut Vec<Effect>) {
        if self.state == State::Gone {
            return;
        }
        self.release();
        self.state = State::Gone;
        self.error = None;
        effects.push(Effect::Publish {
            state: State::Gone,
            error: None,
        });
    }

    /// Releases what the instance runs and cancels its timers, because the
    /// daemon stops (the actor then publishes the final `shutdown`).
    pub fn release(&mut self) {
        self.generation += 1;
        self.timers.clear();
        let component = &mut self.component;
        if catch_unwind(AssertUnwindSafe(|| component.on_remove())).is_err() {
            self.crashed = true;
        }
    }

    /// Forces a state without the table (used for a manager's final
    /// `shutdown` when the daemon stops).
    pub fn force_state(&mut self, state: State, effects: &mut Vec<Effect>) {
        if self.state != state && self.state != State::Gone {
            self.state = state;
            effects.push(Effect::Publish { state, error: None });
        }
    }

    /// Serialises a status message in `state` with `error`, adding what
    /// the daemon knows (`extra`).
    pub fn status_json(
        &self,
        state: State,
        error: Option<&ErrorInfo>,
        extra: StatusExtra<'_>,
    ) -> Vec<u8> {
        let mut fields = Map::new();
        let component = &self.component;
        if !self.crashed {
            let _ = catch_unwind(AssertUnwindSafe(|| component.status_fields(&mut fields)));
        }
        if let Some(more) = extra.fields {
            fields.extend(more);
        }
        let message = StatusMessage {
            status: StatusBody {
                state,
                version: &self.host.version,
                uptime: self
                    .clock
                    .now()
                    .saturating_duration_since(self.started)
                    .as_secs_f64(),
                host: &self.host.host,
                kernel: &self.host.kernel,
                managed_by: self.managed_by.as_deref(),
                error,
                components: extra.components,
                fields: &fields,
            },
            properties: &self.properties,
            schema: self.schemas.published(),
            when: unix_now(),
            components: extra.components,
            model: self.last_start.as_ref().map(|last| last.model.as_ref()),
            results: self.last_start.as_ref().map(|last| last.results.as_ref()),
        };
        // Serialising borrowed strings, numbers and raw JSON into a Vec
        // cannot fail.
        serde_json::to_vec(&message).unwrap_or_default()
    }

    fn set_error(&mut self, error: ErrorInfo, effects: &mut Vec<Effect>) {
        self.outcome = Some(error.clone());
        self.state = State::Error;
        self.error = Some(error.clone());
        effects.push(Effect::Publish {
            state: State::Error,
            error: Some(error),
        });
    }

    /// Calls kind code with a context, turning a panic into an error.
    fn call<F>(
        &mut self,
        manager: Option<&mut dyn ManagerOps>,
        effects: &mut Vec<Effect>,
        f: F,
    ) -> Result<(), ErrorInfo>
    where
        F: FnOnce(&mut dyn Component, &mut Context<'_>) -> Result<(), ErrorInfo>,
    {
        let component = &mut self.component;
        let mut ctx = Context {
            state: &mut self.state,
            error: &mut self.error,
            generation: self.generation,
            effects,
            timers: &mut self.timers,
            clock: &self.clock,
            manager: match manager {
                Some(ops) => Some(ops),
                None => None,
            },
            spec: &self.spec,
        };
        match catch_unwind(AssertUnwindSafe(|| f(component.as_mut(), &mut ctx))) {
            Ok(result) => result,
            Err(panic) => {
                self.crashed = true;
                self.generation += 1;
                self.cancel_timers(effects);
                Err(ErrorInfo::new(
                    ErrorCode::Crashed,
                    format!("component panicked: {}", panic_message(panic.as_ref())),
                ))
            }
        }
    }
}

fn build_guarded(kind: &dyn Kind, spec: &ComponentSpec) -> Result<Box<dyn Component>, ErrorInfo> {
    match catch_unwind(AssertUnwindSafe(|| kind.build(spec))) {
        Ok(result) => result,
        Err(panic) => Err(ErrorInfo::new(
            ErrorCode::Crashed,
            format!(
                "building the component panicked: {}",
                panic_message(panic.as_ref())
            ),
        )),
    }
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}
