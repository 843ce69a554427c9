//! The component SDK: the [`Kind`] trait a lab implements to add a type of
//! infrastructure component, the [`Component`] trait of its instances, and
//! the [`Context`] through which an instance reports transitions, asks for
//! timers and (for managers) creates and deletes components.
//!
//! Kind code never blocks and never touches the bus: it is called by the
//! daemon's actor for its instance, one call at a time, and says what it
//! wants done through the context.

use crate::protocol::{Action, ActionKind, ErrorCode, ErrorInfo, State};
use crate::spec::ComponentSpec;
use serde_json::{Map, Value};
use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

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

/// A token a component chooses to tell its timers apart.
pub type TimerToken = u64;

/// One instance of a kind. Every method runs on the instance's actor; the
/// default implementations refuse the action.
pub trait Component: Send + 'static {
    /// The control actions this instance implements besides `ping` and
    /// `reset` (which every component answers). Other actions are refused
    /// with [`ErrorCode::Unsupported`] before the state changes.
    fn actions(&self) -> &'static [ActionKind];

    /// Checks an action before the state changes (after its parameters
    /// passed the schema): an error refuses it and the state is kept, as
    /// for an action the component does not support. The default admits
    /// everything.
    fn admit(&self, _spec: &ComponentSpec, _action: &Action) -> Result<(), ErrorInfo> {
        Ok(())
    }

    /// `start`: called in state `starting`; report `running` (or `error`)
    /// through the context, now or from a timer.
    fn start(&mut self, ctx: &mut Context<'_>, action: &Action) -> Result<(), ErrorInfo> {
        unsupported(ctx, action)
    }

    /// `stop`: called in state `stopping`; report `idle`.
    fn stop(&mut self, ctx: &mut Context<'_>, action: &Action) -> Result<(), ErrorInfo> {
        unsupported(ctx, action)
    }

    /// `pause`: called in state `pausing`; report `paused`.
    fn pause(&mut self, ctx: &mut Context<'_>, action: &Action) -> Result<(), ErrorInfo> {
        unsupported(ctx, action)
    }

    /// `resume`: called in state `resuming`; report `running`.
    fn resume(&mut self, ctx: &mut Context<'_>, action: &Action) -> Result<(), ErrorInfo> {
        unsupported(ctx, action)
    }

    /// `shutdown`: called in state `shuttingdown`; report `shutdown`.
    fn shutdown(&mut self, ctx: &mut Context<'_>, action: &Action) -> Result<(), ErrorInfo> {
        unsupported(ctx, action)
    }

    /// `reset`: called in state `resetting` after every pending timer was
    /// cancelled; release what runs and report `idle`. The default reports
    /// `idle` at once.
    fn reset(&mut self, ctx: &mut Context<'_>, _action: &Action) -> Result<(), ErrorInfo> {
        ctx.transition(State::Idle)
    }

    /// `create` (managers): parameters were validated against the `create`
    /// schema; create the component through [`Context::manager`].
    fn create(&mut self, ctx: &mut Context<'_>, action: &Action) -> Result<(), ErrorInfo> {
        unsupported(ctx, action)
    }

    /// `delete` (managers): delete through [`Context::manager`].
    fn delete(&mut self, ctx: &mut Context<'_>, action: &Action) -> Result<(), ErrorInfo> {
        unsupported(ctx, action)
    }

    /// A timer asked for with [`Context::schedule`] fired (timers are
    /// cancelled by `reset` and by removal, so a stale one never arrives).
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

    /// The instance is being removed (deleted, or the daemon stops):
    /// release everything it runs. Timers are already cancelled.
    fn on_remove(&mut self) {}
}

fn unsupported(_ctx: &mut Context<'_>, action: &Action) -> Result<(), ErrorInfo> {
    Err(ErrorInfo::new(
        ErrorCode::Unsupported,
        format!("this component does not support {}", action.kind),
    )
    .with("action", action.kind.as_str()))
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

    /// The uuids of the components this manager manages.
    fn managed(&self) -> Vec<String>;
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
    /// Call [`Component::on_timer`] with `token` after `after`, unless
    /// `generation` is stale by then.
    Schedule {
        /// Delay.
        after: Duration,
        /// The component's token.
        token: TimerToken,
        /// The timer generation it belongs to.
        generation: u64,
    },
    /// Run `task` and hand its output to [`Component::on_task`], unless
    /// `generation` is stale by then (the task runs to its end anyway).
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

    /// Asks for [`Component::on_timer`] with `token` after `after`.
    pub fn schedule(&mut self, after: Duration, token: TimerToken) {
        self.effects.push(Effect::Schedule {
            after,
            token,
            generation: self.generation,
        });
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
}
