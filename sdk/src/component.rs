//! The component SDK's dynamic interface, what the daemon drives: the
//! [`Kind`] trait (a type of infrastructure component), the [`Component`]
//! trait of its instances, and the [`Context`] through which an instance
//! reports transitions, asks for timers and tasks and (for managers)
//! creates and deletes components. Kinds written in Rust are simpler on
//! the typed layer ([`crate::typed`]), which implements these traits.
//!
//! Kind code never blocks and never touches the bus: it is called by the
//! daemon's actor for its instance, one call at a time, and says what it
//! wants done through the context.

use crate::protocol::{Action, ActionKind, ErrorCode, ErrorInfo, State};
use crate::spec::ComponentSpec;
use crate::time::{Clock, TimerId, TimerToken, Timers};
use serde_json::{Map, Value};
use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// A type of infrastructure component (`simulator`/`dummy`, ...): a factory
/// registered with the daemon by its category and type.
pub trait Kind: Send + Sync + 'static {
    /// The category it serves (`simulator`, `gateway`, `manager`).
    fn category(&self) -> &'static str;

    /// The type within the category (`dummy`, `generic`, ...).
    fn type_name(&self) -> &'static str;

    /// JSON schemas by action name, published in every status under
    /// `schema` and used to validate `parameters`. VILLASweb reads exactly
    /// `start` and `create`.
    fn schemas(&self) -> Map<String, Value> {
        Map::new()
    }

    /// Builds an instance from its definition. Refuse definitions the kind
    /// cannot run with an error saying which property is wrong.
    fn build(&self, spec: &ComponentSpec) -> Result<Box<dyn Component>, ErrorInfo>;

    /// The daemon is about to exit and every instance was released
    /// ([`Component::on_remove`]): make sure nothing the kind started
    /// outlives the daemon, waiting at most `grace`. Runs off the actors
    /// (it may block). The default does nothing.
    fn drain(&self, _grace: Duration) {}
}

/// One instance of a kind. Every method runs on the instance's actor, one
/// call at a time.
///
/// This is the dynamic interface the daemon drives (through
/// [`crate::Driver`]); a kind written in Rust is simpler to write on the
/// typed layer ([`crate::typed`]), which implements it.
pub trait Component: Send + 'static {
    /// The control actions this instance carries out besides `ping` and
    /// `reset` (which every component answers): only these reach
    /// [`Component::act`]. Other actions are refused with
    /// [`ErrorCode::Unsupported`] before the state changes.
    fn actions(&self) -> &[ActionKind];

    /// Why an action it does not carry out is refused, if it has more to
    /// say than "not supported" (a stand-in for equipment whose vendor API
    /// is unavailable, say). Still code [`ErrorCode::Unsupported`],
    /// still before the state changes. The default: nothing to add.
    fn unsupported(&self, _action: ActionKind) -> Option<String> {
        None
    }

    /// Checks an action before the state changes (after its parameters
    /// passed the schema): an error refuses it and the state is kept, as
    /// for an action the component does not support. What it returns is
    /// handed to [`Component::act`], so a check's work (parsed
    /// parameters, a resolved path) is done once. Not called for `reset`.
    /// The default admits everything, with nothing to hand on.
    fn admit(&self, _spec: &ComponentSpec, _action: &Action) -> Result<Admitted, ErrorInfo> {
        Ok(Admitted::none())
    }

    /// Carries out one of [`Component::actions`] with what
    /// [`Component::admit`] returned for it. A control action (`start`,
    /// `stop`, `pause`, `resume`, `shutdown`) finds the component in its
    /// transient state (`starting` for `start`): report the next one
    /// (`running`, or `error`) through the context, now or from a timer
    /// or a task. `create` and `delete` (managers) change no state: act
    /// through [`Context::manager`]. An error puts a control action's
    /// component in `error`, and refuses a `create` or `delete`.
    fn act(
        &mut self,
        ctx: &mut Context<'_>,
        action: &Action,
        admitted: Admitted,
    ) -> Result<(), ErrorInfo>;

    /// The instance's actor started (the daemon started, the component was
    /// created, or its actor was rebuilt), after its first status was
    /// published: where an instance that watches something by itself (a
    /// remote API polled by a timer) begins. The default does nothing.
    fn on_start(&mut self, _ctx: &mut Context<'_>) -> Result<(), ErrorInfo> {
        Ok(())
    }

    /// `reset`: called in state `resetting` after every pending timer was
    /// cancelled; release what runs and report `idle`. The default reports
    /// `idle` at once.
    fn reset(&mut self, ctx: &mut Context<'_>, _action: &Action) -> Result<(), ErrorInfo> {
        ctx.transition(State::Idle)
    }

    /// A timer asked for with [`Context::schedule`] fired with the token
    /// given then (timers cancelled by [`Context::cancel`], by `reset` and
    /// by the removal never fire).
    fn on_timer(&mut self, _ctx: &mut Context<'_>, _token: TimerToken) -> Result<(), ErrorInfo> {
        Ok(())
    }

    /// A task started with [`Context::spawn`] completed with `output` (the
    /// value the future returned). Tasks started before a `reset` or the
    /// removal never report.
    fn on_task(&mut self, _ctx: &mut Context<'_>, _output: TaskOutput) -> Result<(), ErrorInfo> {
        Ok(())
    }

    /// Type-specific fields to add to `status`.
    fn status_fields(&self, _fields: &mut Map<String, Value>) {}

    /// Schemas of this instance by action name, replacing the kind's for
    /// those actions (published under `schema` and used to validate
    /// `parameters`), e.g. a start schema given in the instance's
    /// properties. Asked once, when the instance is built. The default:
    /// the kind's.
    fn own_schemas(&self) -> Option<Map<String, Value>> {
        None
    }

    /// The instance is being removed (deleted, or the daemon stops):
    /// release everything it runs. Timers are already cancelled.
    fn on_remove(&mut self) {}
}

/// What [`Component::admit`] hands to [`Component::act`]: any value, or
/// nothing.
#[derive(Default)]
pub struct Admitted(Option<Box<dyn Any + Send>>);

impl std::fmt::Debug for Admitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Admitted(..)"
        } else {
            "Admitted(none)"
        })
    }
}

impl Admitted {
    /// Nothing to hand on.
    pub fn none() -> Self {
        Admitted(None)
    }

    /// Hands `value` on.
    pub fn new<T: Any + Send>(value: T) -> Self {
        Admitted(Some(Box::new(value)))
    }

    /// Whether there is nothing.
    pub fn is_none(&self) -> bool {
        self.0.is_none()
    }

    /// The value, if there is one of type `T`.
    pub fn take<T: Any>(self) -> Option<T> {
        self.0?.downcast::<T>().ok().map(|value| *value)
    }
}

/// What a manager component can ask of the daemon: create and delete the
/// components it manages. Implemented by the daemon's manager actor.
pub trait ManagerOps {
    /// Creates and starts a component managed by this manager; refuses a
    /// uuid that exists anywhere in the daemon, and kinds it does not know.
    fn create(&mut self, spec: ComponentSpec) -> Result<(), ErrorInfo>;

    /// Deletes a component this manager manages: it is stopped, publishes
    /// `gone` once and disappears.
    fn delete(&mut self, uuid: &str) -> Result<(), ErrorInfo>;

    /// The uuids of the components this manager manages (configured,
    /// created, and restored from the state directory), in creation
    /// order: what a manager that mirrors an external list (VILLASnode's
    /// nodes) reconciles against. The default knows none.
    fn managed(&self) -> Vec<String> {
        Vec::new()
    }
}

/// What a task hands back to its component: the future's output, boxed
/// (the component downcasts it to the type it spawned).
pub type TaskOutput = Box<dyn Any + Send>;

/// A future a component asked the daemon to run beside its actor (waiting
/// for a child process, a download): kind code itself never blocks.
pub struct Task(pub Pin<Box<dyn Future<Output = TaskOutput>>>);

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Task")
    }
}

/// Something the driver must do after a call into kind code.
#[derive(Debug)]
pub enum Effect {
    /// Publish a status in this state (with this error).
    Publish {
        /// The state to publish.
        state: State,
        /// The error object, if any.
        error: Option<ErrorInfo>,
    },
    /// Call [`crate::Driver::timer_fired`] with `timer` after `after` (the
    /// driver ignores it if it was cancelled by then).
    Schedule {
        /// Delay.
        after: Duration,
        /// The timer.
        timer: TimerId,
    },
    /// The timer was cancelled: the runtime may drop what it holds for it
    /// (firing it anyway is harmless).
    Cancel {
        /// The timer.
        timer: TimerId,
    },
    /// Run `task` and hand its output to [`crate::Driver::task_done`],
    /// which drops it if `generation` is stale by then (the task runs to
    /// its end anyway).
    Spawn {
        /// The work.
        task: Task,
        /// The generation it belongs to.
        generation: u64,
    },
}

/// The handle kind code gets for the duration of one call.
pub struct Context<'a> {
    pub(crate) state: &'a mut State,
    pub(crate) error: &'a mut Option<ErrorInfo>,
    pub(crate) generation: u64,
    pub(crate) effects: &'a mut Vec<Effect>,
    pub(crate) timers: &'a mut Timers,
    pub(crate) clock: &'a Clock,
    pub(crate) manager: Option<&'a mut dyn ManagerOps>,
    pub(crate) spec: &'a ComponentSpec,
}

impl Context<'_> {
    /// The current state.
    pub fn state(&self) -> State {
        *self.state
    }

    /// The component's definition.
    pub fn spec(&self) -> &ComponentSpec {
        self.spec
    }

    /// The current instant, from the driver's clock (a test's manual clock
    /// under `villas_sdk::testing`): measure time with it, not with
    /// [`Instant::now`], so tests can move it.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Moves to `next` and publishes it; refused (state kept) if the table
    /// does not allow it. Moving to the current state is a no-op.
    pub fn transition(&mut self, next: State) -> Result<(), ErrorInfo> {
        if next == *self.state {
            return Ok(());
        }
        if !self.state.can_become(next) {
            return Err(ErrorInfo::new(
                ErrorCode::InvalidTransition,
                format!("cannot go from {} to {next}", self.state),
            )
            .with("from", self.state.as_str())
            .with("to", next.as_str()));
        }
        *self.state = next;
        if next != State::Error {
            *self.error = None;
        }
        self.effects.push(Effect::Publish {
            state: next,
            error: None,
        });
        Ok(())
    }

    /// Moves to `target` through the shortest chain of transitions the
    /// table allows ([`State::path_to`]), publishing each. Refused (state
    /// kept) if the table has no such chain.
    pub fn reach(&mut self, target: State) -> Result<(), ErrorInfo> {
        let Some(path) = self.state.path_to(target) else {
            return Err(ErrorInfo::new(
                ErrorCode::InvalidTransition,
                format!("cannot go from {} to {target}", self.state),
            )
            .with("from", self.state.as_str())
            .with("to", target.as_str()));
        };
        for next in path {
            self.transition(next)?;
        }
        Ok(())
    }

    /// Moves to `error` with this error object, and publishes it.
    pub fn fail(&mut self, error: ErrorInfo) {
        *self.state = State::Error;
        *self.error = Some(error.clone());
        self.effects.push(Effect::Publish {
            state: State::Error,
            error: Some(error),
        });
    }

    /// Publishes the current status again (e.g. after a type-specific
    /// field changed).
    pub fn publish_status(&mut self) {
        self.effects.push(Effect::Publish {
            state: *self.state,
            error: self.error.clone(),
        });
    }

    /// Asks for [`Component::on_timer`] with `token` after `after`, unless
    /// the timer is cancelled first ([`Context::cancel`], `reset`, the
    /// removal).
    pub fn schedule<T: Any + Send>(&mut self, after: Duration, token: T) -> TimerId {
        let timer = self.timers.add(Box::new(token));
        self.effects.push(Effect::Schedule { after, timer });
        timer
    }

    /// Cancels a timer: it will not fire. `false` if it fired or was
    /// cancelled already (nothing to do).
    pub fn cancel(&mut self, timer: TimerId) -> bool {
        let live = self.timers.cancel(timer);
        if live {
            self.effects.push(Effect::Cancel { timer });
        }
        live
    }

    /// Runs `future` beside the component's actor; its output comes back
    /// through [`Component::on_task`] (unless a `reset` or the removal came
    /// first).
    pub fn spawn<T, F>(&mut self, future: F)
    where
        T: Any + Send,
        F: Future<Output = T> + 'static,
    {
        let task = Task(Box::pin(
            async move { Box::new(future.await) as TaskOutput },
        ));
        self.effects.push(Effect::Spawn {
            task,
            generation: self.generation,
        });
    }

    /// The manager operations, if this component is a manager.
    pub fn manager(&mut self) -> Result<&mut dyn ManagerOps, ErrorInfo> {
        match self.manager.as_deref_mut() {
            Some(ops) => Ok(ops),
            None => Err(ErrorInfo::new(
                ErrorCode::Unsupported,
                "only components of category manager create or delete components",
            )),
        }
    }

    /// The same context for a shorter call (what the typed layer wraps).
    pub(crate) fn reborrow(&mut self) -> Context<'_> {
        Context {
            state: &mut *self.state,
            error: &mut *self.error,
            generation: self.generation,
            effects: &mut *self.effects,
            timers: &mut *self.timers,
            clock: self.clock,
            manager: match self.manager.as_deref_mut() {
                Some(ops) => Some(ops),
                None => None,
            },
            spec: self.spec,
        }
    }
}
