//! Testing a kind without a daemon (cargo feature `testing`): a
//! [`Harness`] runs one instance under the real [`Driver`] and carries out
//! its effects the way the daemon's actor does, on a virtual clock: timers
//! fire when the test moves the clock, tasks complete when the test polls
//! them, and every published state is collected. A manager gets a
//! [`FakeManager`] that records what it creates and deletes.
//!
//! ```
//! # use villas_sdk::testing::Harness;
//! # use villas_sdk::typed::{Actions, Ctx, NoProperties, TypedComponent, TypedKind};
//! # use villas_sdk::{ActionKind, ComponentSpec, ErrorInfo, State};
//! # use std::time::Duration;
//! # struct WarmUpKind;
//! # impl TypedKind for WarmUpKind {
//! #     const CATEGORY: &'static str = "simulator";
//! #     const TYPE_NAME: &'static str = "warm-up";
//! #     type Properties = NoProperties;
//! #     type Component = WarmUp;
//! #     fn build(&self, _: &ComponentSpec, _: NoProperties) -> Result<WarmUp, ErrorInfo> { Ok(WarmUp) }
//! # }
//! # struct WarmUp;
//! # impl WarmUp {
//! #     fn start(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
//! #         ctx.schedule(Duration::from_secs(5), ());
//! #         Ok(())
//! #     }
//! # }
//! # impl TypedComponent for WarmUp {
//! #     type Timer = ();
//! #     type Output = ();
//! #     fn actions(actions: &mut Actions<Self>) { actions.start(Self::start); }
//! #     fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, _: ()) -> Result<(), ErrorInfo> {
//! #         ctx.transition(State::Running)
//! #     }
//! # }
//! // A kind whose `start` warms up for 5 s before it runs.
//! let mut h = Harness::typed(WarmUpKind, serde_json::json!({})).unwrap();
//! h.act(ActionKind::Start, serde_json::json!({})).unwrap();
//! h.advance(Duration::from_secs(4));
//! assert_eq!(h.states(), [State::Starting]);
//! h.advance(Duration::from_secs(1));
//! assert_eq!(h.states(), [State::Running]);
//! // `pause` was not registered: refused, the state kept.
//! assert!(h.act(ActionKind::Pause, serde_json::json!({})).is_err());
//! assert_eq!(h.state(), State::Running);
//! ```

use crate::component::{Effect, Kind, ManagerOps, Task, TaskOutput};
use crate::driver::{Driver, StatusExtra};
use crate::protocol::{Action, ActionKind, ErrorCode, ErrorInfo, HostInfo, State};
use crate::schema::Schemas;
use crate::spec::ComponentSpec;
use crate::time::{Clock, ManualClock, TimerId};
use crate::typed::TypedKind;
use serde_json::Value;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

/// How many timers [`Harness::settle`] fires at most: a component that
/// keeps scheduling (a periodic tick) never settles.
pub const SETTLE_LIMIT: usize = 10_000;

/// One status the component published.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// Its state.
    pub state: State,
    /// Its error object.
    pub error: Option<ErrorInfo>,
}

/// A timer waiting on the virtual clock.
#[derive(Debug)]
struct PendingTimer {
    /// When it is due.
    due: Instant,
    /// The timer.
    timer: TimerId,
}

/// One component instance under the real driver, with its effects carried
/// out on a virtual clock (see the module docs).
pub struct Harness {
    /// The instance.
    driver: Driver,
    /// The virtual clock the driver reads.
    clock: ManualClock,
    /// Timers not yet fired or cancelled, in the order scheduled.
    timers: Vec<PendingTimer>,
    /// Tasks not yet completed, with their generation.
    tasks: Vec<(u64, Task)>,
    /// Statuses published since the test last took them.
    published: Vec<Published>,
    /// The daemon side of a manager's `create` and `delete`.
    manager: Option<FakeManager>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("driver", &self.driver)
            .field("timers", &self.timers)
            .field("tasks", &self.tasks.len())
            .field("published", &self.published)
            .finish()
    }
}

impl Harness {
    /// An instance of `kind` built from `properties` (a JSON object;
    /// `category` and `type` default to the kind's), in state `idle`. A
    /// manager gets a [`FakeManager`].
    pub fn new(kind: Arc<dyn Kind>, properties: Value) -> Result<Self, ErrorInfo> {
        let mut properties = match properties {
            Value::Object(properties) => properties,
            Value::Null => Default::default(),
            other => {
                return Err(ErrorInfo::new(
                    ErrorCode::InvalidParameters,
                    format!("properties must be an object, not {other}"),
                ))
            }
        };
        properties
            .entry("category")
            .or_insert_with(|| kind.category().into());
        properties
            .entry("type")
            .or_insert_with(|| kind.type_name().into());
        Ok(Self::from_driver(Driver::standalone(kind, properties)?))
    }

    /// [`Harness::new`] for a typed kind.
    pub fn typed<K: TypedKind>(kind: K, properties: Value) -> Result<Self, ErrorInfo> {
        Self::new(kind.into_kind(), properties)
    }

    /// An instance of `kind` from a full definition (with a data
    /// directory, say), its schemas compiled for it alone.
    pub fn from_spec(kind: Arc<dyn Kind>, spec: ComponentSpec) -> Result<Self, ErrorInfo> {
        let schemas = Schemas::compile(kind.schemas())
            .map_err(|e| ErrorInfo::new(ErrorCode::Failed, e.to_string()))?;
        let host = Arc::new(HostInfo::detect("test"));
        let driver = Driver::new(kind, Arc::new(schemas), spec, host, None)?;
        Ok(Self::from_driver(driver))
    }

    /// Runs a driver built elsewhere (with shared schemas, a manager, ...)
    /// on the harness's virtual clock.
    pub fn from_driver(mut driver: Driver) -> Self {
        let clock = ManualClock::default();
        driver.set_clock(Clock::Manual(clock.clone()));
        let manager = (driver.identity().category == "manager").then(FakeManager::default);
        let mut harness = Harness {
            driver,
            clock,
            timers: Vec::new(),
            tasks: Vec::new(),
            published: Vec::new(),
            manager,
        };
        // What the daemon's actor does once it started.
        let mut effects = Vec::new();
        let manager = harness.manager.as_mut().map(|m| m as &mut dyn ManagerOps);
        harness.driver.start(manager, &mut effects);
        harness.apply(effects);
        harness
    }

    /// Carries out an action now (`parameters` a JSON object, or null for
    /// none); timers it schedules wait for the clock. The error is the
    /// refusal or failure, also published.
    pub fn act(&mut self, kind: ActionKind, parameters: Value) -> Result<(), ErrorInfo> {
        let parameters = match parameters {
            Value::Object(parameters) => parameters,
            _ => Default::default(),
        };
        self.handle(&Action::new(kind).with_parameters(parameters))
    }

    /// Carries out an action message now (its `when` is not waited for).
    pub fn handle(&mut self, action: &Action) -> Result<(), ErrorInfo> {
        let mut effects = Vec::new();
        let manager = self.manager.as_mut().map(|m| m as &mut dyn ManagerOps);
        let outcome = self.driver.handle(action, manager, &mut effects);
        self.apply(effects);
        outcome
    }

    /// Carries out an action, then fires every timer until none is left
    /// ([`Harness::settle`]); the states published meanwhile.
    pub fn run(&mut self, kind: ActionKind, parameters: Value) -> Vec<State> {
        let _ = self.act(kind, parameters);
        self.settle();
        self.states()
    }

    /// Moves the virtual clock forward by `by`, firing every timer due
    /// meanwhile at its due time, in order.
    pub fn advance(&mut self, by: Duration) {
        let until = self.clock.now() + by;
        while self.fire_next_due(Some(until)) {}
        self.clock.advance_to(until);
    }

    /// Moves the clock to the next timer and fires it; `false` if none is
    /// pending.
    pub fn fire_next(&mut self) -> bool {
        self.fire_next_due(None)
    }

    /// Fires timers in due order, moving the clock, until none is pending
    /// (at most [`SETTLE_LIMIT`]); how many fired.
    pub fn settle(&mut self) -> usize {
        let mut fired = 0;
        while fired < SETTLE_LIMIT && self.fire_next() {
            fired += 1;
        }
        fired
    }

    fn fire_next_due(&mut self, until: Option<Instant>) -> bool {
        let next = self
            .timers
            .iter()
            .enumerate()
            .filter(|(_, t)| until.is_none_or(|until| t.due <= until))
            .min_by_key(|(index, t)| (t.due, *index))
            .map(|(index, _)| index);
        let Some(index) = next else {
            return false;
        };
        let PendingTimer { due, timer } = self.timers.remove(index);
        self.clock.advance_to(due);
        let mut effects = Vec::new();
        let manager = self.manager.as_mut().map(|m| m as &mut dyn ManagerOps);
        self.driver.timer_fired(timer, manager, &mut effects);
        self.apply(effects);
        true
    }

    /// The pending timers, in the order scheduled, with how long until
    /// each is due.
    pub fn pending_timers(&self) -> Vec<(TimerId, Duration)> {
        let now = self.clock.now();
        self.timers
            .iter()
            .map(|t| (t.timer, t.due.saturating_duration_since(now)))
            .collect()
    }

    /// Fires `timer` now, pending or not: what a runtime that does not
    /// drop cancelled timers does (the driver must ignore a stale one).
    pub fn fire(&mut self, timer: TimerId) {
        self.timers.retain(|t| t.timer != timer);
        let mut effects = Vec::new();
        let manager = self.manager.as_mut().map(|m| m as &mut dyn ManagerOps);
        self.driver.timer_fired(timer, manager, &mut effects);
        self.apply(effects);
    }

    /// Polls every pending task once (a task that is ready at once
    /// completes); how many completed.
    pub fn poll_tasks(&mut self) -> usize {
        let mut cx = TaskContext::from_waker(Waker::noop());
        self.poll_once(&mut cx)
    }

    /// Waits until at least one pending task completes (the tasks run on
    /// the caller's async runtime: a kind whose tasks need tokio is tested
    /// under `#[tokio::test]`); `false` if no task is pending.
    pub async fn next_task(&mut self) -> bool {
        if self.tasks.is_empty() {
            return false;
        }
        poll_fn(|cx| match self.poll_once(cx) {
            0 => Poll::Pending,
            _ => Poll::Ready(true),
        })
        .await
    }

    /// How many tasks are pending.
    pub fn pending_tasks(&self) -> usize {
        self.tasks.len()
    }

    fn poll_once(&mut self, cx: &mut TaskContext<'_>) -> usize {
        let mut done: Vec<(u64, TaskOutput)> = Vec::new();
        self.tasks
            .retain_mut(|(generation, task)| match task.0.as_mut().poll(cx) {
                Poll::Ready(output) => {
                    done.push((*generation, output));
                    false
                }
                Poll::Pending => true,
            });
        let count = done.len();
        for (generation, output) in done {
            let mut effects = Vec::new();
            let manager = self.manager.as_mut().map(|m| m as &mut dyn ManagerOps);
            self.driver
                .task_done(generation, output, manager, &mut effects);
            self.apply(effects);
        }
        count
    }

    /// Carries out effects as the daemon's actor does.
    fn apply(&mut self, effects: Vec<Effect>) {
        let now = self.clock.now();
        for effect in effects {
            match effect {
                Effect::Publish { state, error } => self.published.push(Published { state, error }),
                Effect::Schedule { after, timer } => self.timers.push(PendingTimer {
                    due: now + after,
                    timer,
                }),
                Effect::Cancel { timer } => self.timers.retain(|t| t.timer != timer),
                Effect::Spawn { task, generation } => self.tasks.push((generation, task)),
            }
        }
    }

    /// The states published since the last call (or [`Harness::published`]).
    pub fn states(&mut self) -> Vec<State> {
        self.published().into_iter().map(|p| p.state).collect()
    }

    /// The statuses published since the last call (or [`Harness::states`]).
    pub fn published(&mut self) -> Vec<Published> {
        std::mem::take(&mut self.published)
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.driver.state()
    }

    /// The error that put the component in `error`.
    pub fn error(&self) -> Option<&ErrorInfo> {
        self.driver.error()
    }

    /// The status message the component would publish now, parsed.
    pub fn status(&self) -> Value {
        let body = self.driver.status_json(
            self.driver.state(),
            self.driver.error(),
            StatusExtra::default(),
        );
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    }

    /// The driver (to call it directly).
    pub fn driver(&mut self) -> &mut Driver {
        &mut self.driver
    }

    /// The virtual clock.
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    /// The fake daemon side of a manager (`None` for other categories).
    pub fn manager(&mut self) -> Option<&mut FakeManager> {
        self.manager.as_mut()
    }
}

/// The daemon side of a manager's `create` and `delete`, for tests: keeps
/// the created definitions, refuses a uuid it has (code 7) and deleting one
/// it does not have (code 8), as the daemon does.
#[derive(Debug, Default)]
pub struct FakeManager {
    /// The components created and not deleted, in creation order.
    pub created: Vec<ComponentSpec>,
    /// The uuids deleted, in order.
    pub deleted: Vec<String>,
}

impl ManagerOps for FakeManager {
    fn create(&mut self, spec: ComponentSpec) -> Result<(), ErrorInfo> {
        if self.created.iter().any(|c| c.uuid() == spec.uuid()) {
            return Err(ErrorInfo::new(
                ErrorCode::DuplicateUuid,
                format!("a component with uuid {} exists", spec.uuid()),
            ));
        }
        self.created.push(spec);
        Ok(())
    }

    fn delete(&mut self, uuid: &str) -> Result<(), ErrorInfo> {
        let before = self.created.len();
        self.created.retain(|c| c.uuid() != uuid);
        if self.created.len() == before {
            return Err(ErrorInfo::new(
                ErrorCode::UnknownComponent,
                format!("this manager manages no component {uuid}"),
            ));
        }
        self.deleted.push(uuid.to_owned());
        Ok(())
    }

    fn managed(&self) -> Vec<String> {
        self.created.iter().map(|c| c.uuid().to_owned()).collect()
    }
}

/// Checks that the schemas a kind publishes for the forms VILLASweb draws
/// (`start`, `create`) are ones it can draw: draft-07 objects whose
/// `properties` each say their `type` (or list an `enum`, or are a choice
/// of such), every subschema inlined. The error says what is wrong.
pub fn check_villasweb_schemas(kind: &dyn Kind) -> Result<(), String> {
    let schemas = kind.schemas();
    for (action, schema) in &schemas {
        let text = schema.to_string();
        if text.contains("\"$ref\"") {
            return Err(format!("{action}: subschemas are referenced, not inlined"));
        }
        if !["start", "create"].contains(&action.as_str()) {
            continue;
        }
        if !schema["$schema"]
            .as_str()
            .is_some_and(|s| s.starts_with("http://json-schema.org/draft-07/schema"))
        {
            return Err(format!("{action}: not a draft-07 schema"));
        }
        if schema["type"] != "object" {
            return Err(format!("{action}: not of type object"));
        }
        let Some(properties) = schema["properties"].as_object() else {
            return Err(format!("{action}: no properties"));
        };
        for (name, property) in properties {
            let typed = |schema: &Value| {
                ["type", "enum", "const"]
                    .iter()
                    .any(|key| schema.get(key).is_some())
            };
            let choices = property["oneOf"]
                .as_array()
                .or(property["anyOf"].as_array());
            let drawable = typed(property) || choices.is_some_and(|c| c.iter().all(typed));
            if !drawable {
                return Err(format!("{action}: property {name} has no type"));
            }
        }
    }
    Ok(())
}
