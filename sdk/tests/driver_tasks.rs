//! The driver's hooks for kinds that do real work, through the typed layer
//! and the testing harness: a check refuses before the state changes and
//! hands its result to the action (parameters parsed once), an action the
//! component did not register is refused before the state changes, tasks
//! report back through `on_task` with their own type unless a reset came
//! first, timers carry their own type and can be cancelled, and a
//! panicking manager is in `error` until reset.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};
use std::cell::Cell;
use std::time::Duration;
use villas_sdk::testing::{FakeManager, Harness};
use villas_sdk::typed::{Actions, Ctx, NoProperties, TypedComponent, TypedKind};
use villas_sdk::{
    Action, ActionKind, Admitted, Component, ComponentSpec, Context, Effect, ErrorCode, ErrorInfo,
    Kind, State, TimerId,
};

thread_local! {
    /// How often `start` parameters were parsed on this thread.
    static PARSED: Cell<usize> = const { Cell::new(0) };
}

struct WorkerKind;

impl TypedKind for WorkerKind {
    const CATEGORY: &'static str = "simulator";
    const TYPE_NAME: &'static str = "worker";
    type Properties = WorkerProperties;
    type Component = Job;

    fn build(&self, _spec: &ComponentSpec, properties: WorkerProperties) -> Result<Job, ErrorInfo> {
        Ok(Job {
            answer: properties.answer,
        })
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WorkerProperties {
    #[serde(default)]
    #[schemars(range(max = 100))]
    answer: u32,
}

#[derive(Deserialize, JsonSchema)]
struct StartParameters {
    #[serde(default, deserialize_with = "counted")]
    forbidden: bool,
    #[schemars(range(min = 1))]
    bonus: Option<u32>,
}

/// Counts the parses of `start` parameters.
fn counted<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    PARSED.with(|parsed| parsed.set(parsed.get() + 1));
    bool::deserialize(deserializer)
}

/// What the check of a `start` hands to it.
struct Plan {
    answer: u32,
}

struct Job {
    answer: u32,
}

impl Job {
    fn check_start(&self, start: StartParameters, _: &Action) -> Result<Plan, ErrorInfo> {
        if start.forbidden {
            return Err(ErrorInfo::new(ErrorCode::InvalidParameters, "forbidden"));
        }
        Ok(Plan {
            answer: self.answer + start.bonus.unwrap_or(0),
        })
    }

    fn start(&mut self, ctx: &mut Ctx<'_, Self>, plan: Plan) -> Result<(), ErrorInfo> {
        let answer = plan.answer;
        ctx.spawn(async move { answer });
        Ok(())
    }

    fn create(&mut self, _ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        panic!("manager bug")
    }
}

impl TypedComponent for Job {
    type Timer = ();
    type Output = u32;

    fn actions(actions: &mut Actions<Self>) {
        actions
            .start_checked(Self::check_start, Self::start)
            .create(Self::create);
    }

    fn on_task(&mut self, ctx: &mut Ctx<'_, Self>, answer: u32) -> Result<(), ErrorInfo> {
        self.answer = answer;
        ctx.transition(State::Running)
    }

    fn status_fields(&self, fields: &mut Map<String, Value>) {
        fields.insert("answer".into(), self.answer.into());
    }
}

fn worker() -> Harness {
    Harness::typed(WorkerKind, json!({"answer": 40})).unwrap()
}

#[test]
fn a_check_refuses_before_the_state_changes() {
    let mut h = worker();
    let error = h
        .act(ActionKind::Start, json!({"forbidden": true}))
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidParameters);
    assert_eq!(error.details["action"], "start");
    assert_eq!(h.state(), State::Idle);
    let published = h.published();
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(published[0].state, State::Idle);
    assert!(published[0].error.is_some());
    assert_eq!(h.pending_tasks(), 0);
}

#[test]
fn a_check_hands_its_result_to_the_action_and_parameters_are_parsed_once() {
    let mut h = worker();
    PARSED.with(|parsed| parsed.set(0));
    h.act(ActionKind::Start, json!({"forbidden": false, "bonus": 2}))
        .unwrap();
    assert_eq!(
        PARSED.with(Cell::get),
        1,
        "the parameters were parsed again"
    );
    assert_eq!(h.poll_tasks(), 1);
    assert_eq!(h.states(), [State::Starting, State::Running]);
    assert_eq!(h.status()["status"]["answer"], 42);
}

#[test]
fn parameters_are_checked_against_the_schema_generated_from_their_type() {
    let mut h = worker();
    let schema = &h.status()["schema"]["start"];
    assert_eq!(schema["properties"]["bonus"]["minimum"], 1);
    assert_eq!(schema["properties"]["forbidden"]["type"], "boolean");
    // Refused by the schema: `error`, as for any kind.
    assert_eq!(
        h.run(ActionKind::Start, json!({"bonus": 0})),
        [State::Error]
    );
    assert_eq!(
        h.error().map(|e| e.details["path"].clone()),
        Some(json!("/bonus"))
    );
}

#[test]
fn an_action_that_was_not_registered_is_refused_before_the_state_changes() {
    let mut h = worker();
    for kind in [ActionKind::Stop, ActionKind::Pause, ActionKind::Shutdown] {
        let error = h.act(kind, json!({})).unwrap_err();
        assert_eq!(error.code, ErrorCode::Unsupported, "{kind}");
        assert_eq!(h.state(), State::Idle, "{kind}");
    }
    assert!(h.states().iter().all(|s| *s == State::Idle));
    let kind = WorkerKind.into_kind();
    assert_eq!(
        kind.schemas().keys().collect::<Vec<_>>(),
        ["start"],
        "only what has parameters is published"
    );
}

#[test]
fn properties_are_checked_against_their_schema_then_parsed() {
    let error = Harness::typed(WorkerKind, json!({"answer": 101}))
        .err()
        .unwrap();
    assert_eq!(error.code, ErrorCode::InvalidParameters);
    assert!(
        error.message.starts_with("property answer: "),
        "{}",
        error.message
    );
    let error = Harness::typed(WorkerKind, json!({"anwser": 1}))
        .err()
        .unwrap();
    assert!(error.message.contains("anwser"), "{}", error.message);
    // The common properties are allowed beside a kind's own.
    let h = Harness::typed(
        WorkerKind,
        json!({"answer": null, "name": "w", "location": "lab", "restart": "never"}),
    )
    .unwrap();
    assert_eq!(h.status()["status"]["answer"], 0);
}

#[test]
fn a_task_reports_back_through_on_task() {
    let mut h = worker();
    h.act(ActionKind::Start, json!({})).unwrap();
    assert_eq!(h.state(), State::Starting);
    assert_eq!(h.poll_tasks(), 1);
    assert_eq!(h.state(), State::Running);
}

#[test]
fn a_task_started_before_a_reset_never_reports() {
    let mut h = worker();
    h.act(ActionKind::Start, json!({})).unwrap();
    h.act(ActionKind::Reset, json!({})).unwrap();
    assert_eq!(h.state(), State::Idle);
    h.states();
    assert_eq!(h.poll_tasks(), 1, "the task ran to its end");
    assert_eq!(h.state(), State::Idle);
    assert_eq!(h.states(), [], "the stale task reported");
}

#[test]
fn a_panicking_manager_operation_puts_the_component_in_error_until_reset() {
    let mut h = worker();
    let mut ops = FakeManager::default();
    let mut effects = Vec::new();
    let error = h
        .driver()
        .handle(
            &Action::new(ActionKind::Create),
            Some(&mut ops),
            &mut effects,
        )
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::Crashed);
    assert!(error.message.contains("manager bug"), "{}", error.message);
    assert_eq!(h.state(), State::Error);
    assert_eq!(
        h.run(ActionKind::Reset, json!({})),
        [State::Resetting, State::Idle]
    );
}

#[test]
fn fail_puts_the_component_in_error_with_the_given_error() {
    let mut h = worker();
    let mut effects = Vec::new();
    h.driver().fail(
        ErrorInfo::new(ErrorCode::RestartBudgetSpent, "spent"),
        &mut effects,
    );
    assert_eq!(h.state(), State::Error);
    assert_eq!(
        h.error().map(|e| e.code),
        Some(ErrorCode::RestartBudgetSpent)
    );
    assert!(!ErrorCode::RestartBudgetSpent.is_failure());
    assert!(ErrorCode::Crashed.is_failure() && ErrorCode::Failed.is_failure());
}

/// `simulator`/`ticker`: `start` schedules two named timers and cancels
/// the first; `stop` too, and a panicking `pause` leaves its timers
/// behind.
struct TickerKind;

impl TypedKind for TickerKind {
    const CATEGORY: &'static str = "simulator";
    const TYPE_NAME: &'static str = "ticker";
    type Properties = NoProperties;
    type Component = Ticker;

    fn build(&self, _spec: &ComponentSpec, _: NoProperties) -> Result<Ticker, ErrorInfo> {
        Ok(Ticker { fired: Vec::new() })
    }
}

struct Ticker {
    fired: Vec<&'static str>,
}

impl Ticker {
    fn start(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        let first = ctx.schedule(Duration::from_secs(1), "first");
        ctx.schedule(Duration::from_secs(2), "second");
        assert!(ctx.cancel(first));
        assert!(!ctx.cancel(first), "cancelled twice");
        ctx.transition(State::Running)
    }

    fn pause(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        ctx.schedule(Duration::from_secs(1), "before the panic");
        panic!("pause bug")
    }
}

impl TypedComponent for Ticker {
    type Timer = &'static str;
    type Output = ();

    fn actions(actions: &mut Actions<Self>) {
        actions.start(Self::start).pause(Self::pause);
    }

    fn on_timer(&mut self, _ctx: &mut Ctx<'_, Self>, name: &'static str) -> Result<(), ErrorInfo> {
        self.fired.push(name);
        Ok(())
    }

    fn status_fields(&self, fields: &mut Map<String, Value>) {
        fields.insert("fired".into(), self.fired.clone().into());
    }
}

#[test]
fn a_cancelled_timer_never_fires_and_the_runtime_is_told() {
    let kind = TickerKind.into_kind();
    let mut h = Harness::new(kind, json!({})).unwrap();
    let mut effects = Vec::new();
    h.driver()
        .handle(&Action::new(ActionKind::Start), None, &mut effects)
        .unwrap();
    let scheduled: Vec<TimerId> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Schedule { timer, .. } => Some(*timer),
            _ => None,
        })
        .collect();
    let cancelled: Vec<TimerId> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Cancel { timer } => Some(*timer),
            _ => None,
        })
        .collect();
    assert_eq!(scheduled.len(), 2);
    assert_eq!(cancelled, [scheduled[0]]);
    let mut more = Vec::new();
    h.driver().timer_fired(scheduled[0], None, &mut more);
    h.driver().timer_fired(scheduled[1], None, &mut more);
    h.driver().timer_fired(scheduled[1], None, &mut more);
    assert_eq!(h.status()["status"]["fired"], json!(["second"]));
}

#[test]
fn timers_fire_on_the_virtual_clock_in_order() {
    let mut h = Harness::typed(TickerKind, json!({})).unwrap();
    h.act(ActionKind::Start, json!({})).unwrap();
    assert_eq!(h.pending_timers().len(), 1, "the cancelled one is gone");
    h.advance(Duration::from_millis(1_999));
    assert_eq!(h.status()["status"]["fired"], json!([]));
    h.advance(Duration::from_millis(1));
    assert_eq!(h.status()["status"]["fired"], json!(["second"]));
}

#[test]
fn a_panic_cancels_the_timers_of_the_broken_instance() {
    let mut h = Harness::typed(TickerKind, json!({})).unwrap();
    h.act(ActionKind::Start, json!({})).unwrap();
    let error = h.act(ActionKind::Pause, json!({})).unwrap_err();
    assert_eq!(error.code, ErrorCode::Crashed);
    assert_eq!(h.pending_timers(), [], "timers outlived the panic");
    assert_eq!(h.settle(), 0);
}

/// A component written on the dynamic traits: what `admit` returns is
/// what `act` gets.
struct Plain;

impl Kind for Plain {
    fn category(&self) -> &'static str {
        "simulator"
    }
    fn type_name(&self) -> &'static str {
        "plain"
    }
    fn build(&self, _spec: &ComponentSpec) -> Result<Box<dyn Component>, ErrorInfo> {
        Ok(Box::new(Plain))
    }
}

impl Component for Plain {
    fn actions(&self) -> &[ActionKind] {
        &[ActionKind::Start]
    }
    fn admit(&self, _spec: &ComponentSpec, action: &Action) -> Result<Admitted, ErrorInfo> {
        Ok(Admitted::new(action.parameters.len()))
    }
    fn act(
        &mut self,
        ctx: &mut Context<'_>,
        _action: &Action,
        admitted: Admitted,
    ) -> Result<(), ErrorInfo> {
        match admitted.take::<usize>() {
            Some(2) => ctx.transition(State::Running),
            other => Err(ErrorInfo::new(
                ErrorCode::Failed,
                format!("admitted {other:?}"),
            )),
        }
    }
}

#[test]
fn a_dynamic_component_gets_what_it_admitted() {
    let mut h = Harness::new(std::sync::Arc::new(Plain), Value::Null).unwrap();
    assert_eq!(
        h.run(ActionKind::Start, json!({"a": 1, "b": 2})),
        [State::Starting, State::Running]
    );
    assert!(h.act(ActionKind::Stop, json!({})).is_err());
    assert_eq!(h.state(), State::Running);
}
