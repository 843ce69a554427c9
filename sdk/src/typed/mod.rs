//! The typed layer: a kind written with Rust types instead of JSON maps.
//!
//! - Properties are one serde type ([`TypedKind::Properties`]); the
//!   definition is checked against its generated schema (the error names
//!   the property) and parsed once, before [`TypedKind::build`].
//! - Each action is a method registered in [`TypedComponent::actions`];
//!   its parameters are one serde type whose generated JSON schema is the
//!   one published (draft-07, what VILLASweb draws its forms from) and
//!   checked before the state changes, so schema and parsing cannot
//!   disagree. An action the component did not register is refused
//!   before the state changes; one it registered is always implemented.
//! - A `_checked` registration runs a check before the state changes and
//!   hands its result to the action: work is done once.
//! - Timers carry a value of the component's own type
//!   ([`TypedComponent::Timer`]) and can be cancelled by their
//!   [`TimerId`]; tasks return the component's own output type
//!   ([`TypedComponent::Output`]); neither needs a downcast.
//!
//! [`TypedKind::into_kind`] turns such a kind into the dynamic
//! [`crate::Kind`] the daemon registers.
//!
//! ```
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//! use std::time::Duration;
//! use villas_sdk::typed::{Actions, Ctx, NoProperties, TypedComponent, TypedKind};
//! use villas_sdk::{ComponentSpec, ErrorInfo, State, TimerId};
//!
//! /// `simulator`/`clock`: ticks while it runs.
//! struct ClockKind;
//!
//! impl TypedKind for ClockKind {
//!     const CATEGORY: &'static str = "simulator";
//!     const TYPE_NAME: &'static str = "clock";
//!     type Properties = NoProperties;
//!     type Component = Clock;
//!
//!     fn build(&self, _spec: &ComponentSpec, _: NoProperties) -> Result<Clock, ErrorInfo> {
//!         Ok(Clock { ticks: 0, tick: None })
//!     }
//! }
//!
//! /// `start` parameters (their schema is published as `schema.start`).
//! #[derive(Deserialize, JsonSchema)]
//! struct Start {
//!     /// Seconds between ticks.
//!     #[schemars(range(min = 0.001, max = 3600))]
//!     period: f64,
//! }
//!
//! struct Clock {
//!     ticks: u64,
//!     tick: Option<(TimerId, Duration)>,
//! }
//!
//! /// The clock's only timer.
//! struct Tick;
//!
//! impl Clock {
//!     fn start(&mut self, ctx: &mut Ctx<'_, Self>, start: Start) -> Result<(), ErrorInfo> {
//!         let period = Duration::from_secs_f64(start.period);
//!         self.ticks = 0;
//!         self.tick = Some((ctx.schedule(period, Tick), period));
//!         ctx.transition(State::Running)
//!     }
//!
//!     fn stop(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
//!         if let Some((timer, _)) = self.tick.take() {
//!             ctx.cancel(timer);
//!         }
//!         ctx.transition(State::Idle)
//!     }
//! }
//!
//! impl TypedComponent for Clock {
//!     type Timer = Tick;
//!     type Output = ();
//!
//!     fn actions(actions: &mut Actions<Self>) {
//!         actions.start(Self::start).stop(Self::stop);
//!     }
//!
//!     fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, _: Tick) -> Result<(), ErrorInfo> {
//!         if let Some((timer, period)) = self.tick.as_mut() {
//!             self.ticks += 1;
//!             *timer = ctx.schedule(*period, Tick);
//!             ctx.publish_status();
//!         }
//!         Ok(())
//!     }
//!
//!     fn status_fields(&self, fields: &mut serde_json::Map<String, serde_json::Value>) {
//!         fields.insert("ticks".into(), self.ticks.into());
//!     }
//! }
//!
//! let kind = ClockKind.into_kind(); // an Arc<dyn villas_sdk::Kind>
//! assert!(kind.schemas()["start"]["properties"]["period"].is_object());
//! ```

mod actions;
mod adapter;
pub mod manage;
mod schema;

pub use actions::{Actions, Handler, NoParameters, Parameters};
pub use adapter::Typed;
pub use schema::{schema_for, COMMON_PROPERTIES};

use crate::component::{Context, ManagerOps};
use crate::protocol::{ErrorInfo, State};
use crate::spec::ComponentSpec;
use crate::time::TimerId;
use crate::Kind;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A type of infrastructure component written with typed properties and
/// actions. [`TypedKind::into_kind`] makes it the [`Kind`] the daemon
/// registers.
pub trait TypedKind: Send + Sync + Sized + 'static {
    /// The category it serves (`simulator`, `gateway`, `manager`).
    const CATEGORY: &'static str;

    /// The type within the category (`dummy`, `generic`, ...).
    const TYPE_NAME: &'static str;

    /// The kind's own properties (the [`COMMON_PROPERTIES`] and those set
    /// to `null` are left out before parsing): checked against the schema
    /// generated from the type, then parsed. Use [`NoProperties`] for
    /// none, `#[serde(deny_unknown_fields)]` to refuse typos.
    type Properties: DeserializeOwned + JsonSchema;

    /// Its instances.
    type Component: TypedComponent;

    /// Builds an instance from its definition and its parsed properties.
    /// Refuse definitions the kind cannot run with an error saying which
    /// property is wrong.
    fn build(
        &self,
        spec: &ComponentSpec,
        properties: Self::Properties,
    ) -> Result<Self::Component, ErrorInfo>;

    /// The daemon is about to exit and every instance was released
    /// ([`TypedComponent::on_remove`]): make sure nothing the kind started
    /// outlives the daemon, waiting at most `grace`. Runs off the actors
    /// (it may block). The default does nothing.
    fn drain(&self, _grace: Duration) {}

    /// The kind, as the daemon registers it.
    fn into_kind(self) -> Arc<dyn Kind> {
        Arc::new(Typed::new(self))
    }
}

/// One instance of a [`TypedKind`]. Every method runs on the instance's
/// actor, one call at a time.
pub trait TypedComponent: Send + Sized + 'static {
    /// What its timers carry ([`Ctx::schedule`]); `()` if it has none.
    type Timer: Send + 'static;

    /// What its tasks return ([`Ctx::spawn`]); `()` if it has none.
    type Output: Send + 'static;

    /// Registers the actions it carries out besides `ping` and `reset`
    /// (once per type): `actions.start(Self::start).stop(Self::stop)`.
    /// Others are refused before the state changes.
    fn actions(actions: &mut Actions<Self>);

    /// Why an action it did not register is refused, if it has more to
    /// say than "not supported" (still refused before the state changes,
    /// code `unsupported-action`). The default: nothing to add.
    fn unsupported(&self, _action: crate::ActionKind) -> Option<String> {
        None
    }

    /// The instance's actor started (the daemon started, the component was
    /// created, or its actor was rebuilt), after its first status was
    /// published: where an instance that watches something by itself
    /// begins (schedules its first poll, say). The default does nothing.
    fn on_start(&mut self, _ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        Ok(())
    }

    /// `reset`: called in state `resetting` after every pending timer was
    /// cancelled; release what runs and report `idle`. The default reports
    /// `idle` at once.
    fn reset(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        ctx.transition(State::Idle)
    }

    /// A timer fired (one cancelled, or scheduled before a `reset`, never
    /// does).
    fn on_timer(&mut self, _ctx: &mut Ctx<'_, Self>, _timer: Self::Timer) -> Result<(), ErrorInfo> {
        Ok(())
    }

    /// A task completed (one spawned before a `reset` or the removal never
    /// reports).
    fn on_task(
        &mut self,
        _ctx: &mut Ctx<'_, Self>,
        _output: Self::Output,
    ) -> Result<(), ErrorInfo> {
        Ok(())
    }

    /// Type-specific fields to add to `status`.
    fn status_fields(&self, _fields: &mut Map<String, Value>) {}

    /// Schemas of this instance by action name, replacing the kind's for
    /// those actions (see [`crate::Component::own_schemas`]). The
    /// parameters must still parse into the action's type.
    fn own_schemas(&self) -> Option<Map<String, Value>> {
        None
    }

    /// The instance is being removed (deleted, or the daemon stops):
    /// release everything it runs. Timers are already cancelled.
    fn on_remove(&mut self) {}
}

/// Properties of a kind that has none of its own (every property is
/// accepted and published, as always).
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
pub struct NoProperties {}

/// The handle a typed component gets for the duration of one call: the
/// [`crate::Context`] with its timers and tasks typed.
pub struct Ctx<'a, C> {
    /// The dynamic context.
    inner: Context<'a>,
    /// Timers and task outputs are `C`'s.
    component: PhantomData<fn() -> C>,
}

impl<'a, C: TypedComponent> Ctx<'a, C> {
    pub(crate) fn new(inner: Context<'a>) -> Self {
        Ctx {
            inner,
            component: PhantomData,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.inner.state()
    }

    /// The component's definition.
    pub fn spec(&self) -> &ComponentSpec {
        self.inner.spec()
    }

    /// The current instant (a test's manual clock under
    /// `villas_sdk::testing`): measure time with it.
    pub fn now(&self) -> Instant {
        self.inner.now()
    }

    /// Moves to `next` and publishes it; refused (state kept) if the table
    /// does not allow it. Moving to the current state is a no-op.
    pub fn transition(&mut self, next: State) -> Result<(), ErrorInfo> {
        self.inner.transition(next)
    }

    /// Moves to `target` through the shortest chain of transitions the
    /// table allows ([`State::path_to`]), publishing each: how a component
    /// that mirrors an external object's state follows it. Refused (state
    /// kept) if the table has no such chain.
    pub fn reach(&mut self, target: State) -> Result<(), ErrorInfo> {
        self.inner.reach(target)
    }

    /// Moves to `error` with this error object, and publishes it.
    pub fn fail(&mut self, error: ErrorInfo) {
        self.inner.fail(error);
    }

    /// Publishes the current status again (e.g. after a type-specific
    /// field changed).
    pub fn publish_status(&mut self) {
        self.inner.publish_status();
    }

    /// Asks for [`TypedComponent::on_timer`] with `timer` after `after`,
    /// unless it is cancelled first ([`Ctx::cancel`], `reset`, the
    /// removal).
    pub fn schedule(&mut self, after: Duration, timer: C::Timer) -> TimerId {
        self.inner.schedule(after, timer)
    }

    /// Cancels a timer: it will not fire. `false` if it fired or was
    /// cancelled already.
    pub fn cancel(&mut self, timer: TimerId) -> bool {
        self.inner.cancel(timer)
    }

    /// Runs `future` beside the component's actor (kind code never
    /// blocks); its output comes back through [`TypedComponent::on_task`]
    /// unless a `reset` or the removal came first.
    pub fn spawn<F>(&mut self, future: F)
    where
        F: Future<Output = C::Output> + 'static,
    {
        self.inner.spawn(future);
    }

    /// The manager operations, if this component is a manager.
    pub fn manager(&mut self) -> Result<&mut dyn ManagerOps, ErrorInfo> {
        self.inner.manager()
    }
}
