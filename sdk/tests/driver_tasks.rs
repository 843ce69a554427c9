//! The driver's hooks for kinds that do real work: `admit` refuses before
//! the state changes, tasks report back through `on_task` unless a reset
//! came first, and a panicking manager is in `error` until reset.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};
use villas_sdk::{
    Action, ActionKind, Component, ComponentSpec, Context, Driver, Effect, ErrorCode, ErrorInfo,
    Kind, State, TaskOutput,
};

struct Worker;

impl Kind for Worker {
    fn category(&self) -> &'static str {
        "simulator"
    }
    fn type_name(&self) -> &'static str {
        "worker"
    }
    fn build(&self, _spec: &ComponentSpec) -> Result<Box<dyn Component>, ErrorInfo> {
        Ok(Box::new(Job))
    }
}

struct Job;

impl Component for Job {
    fn actions(&self) -> &'static [ActionKind] {
        &[ActionKind::Start, ActionKind::Create]
    }
    fn admit(&self, _spec: &ComponentSpec, action: &Action) -> Result<(), ErrorInfo> {
        if action.parameters.contains_key("forbidden") {
            return Err(ErrorInfo::new(ErrorCode::InvalidParameters, "forbidden"));
        }
        Ok(())
    }
    fn start(&mut self, ctx: &mut Context<'_>, _action: &Action) -> Result<(), ErrorInfo> {
        ctx.spawn(async { 42_u32 });
        Ok(())
    }
    fn on_task(&mut self, ctx: &mut Context<'_>, output: TaskOutput) -> Result<(), ErrorInfo> {
        let value = output.downcast::<u32>().expect("the type spawned");
        assert_eq!(*value, 42);
        ctx.transition(State::Running)
    }
    fn create(&mut self, _ctx: &mut Context<'_>, _action: &Action) -> Result<(), ErrorInfo> {
        panic!("manager bug")
    }
}

fn driver() -> Driver {
    let Value::Object(properties) = json!({"category": "simulator", "type": "worker"}) else {
        unreachable!()
    };
    Driver::standalone(Arc::new(Worker), properties).unwrap()
}

fn action(kind: ActionKind, parameters: Value) -> Action {
    Action::new(kind).with_parameters(parameters.as_object().cloned().unwrap_or_else(Map::new))
}

/// Runs a task that is ready at once.
fn finish(task: villas_sdk::Task) -> TaskOutput {
    let mut future = task.0;
    let mut cx = TaskContext::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the test task is ready at once"),
    }
}

fn take_task(effects: &mut Vec<Effect>) -> (villas_sdk::Task, u64) {
    let index = effects
        .iter()
        .position(|e| matches!(e, Effect::Spawn { .. }))
        .expect("a task was spawned");
    match effects.remove(index) {
        Effect::Spawn { task, generation } => (task, generation),
        _ => unreachable!(),
    }
}

#[test]
fn admit_refuses_before_the_state_changes() {
    let mut d = driver();
    let mut effects = Vec::new();
    let error = d
        .handle(
            &action(ActionKind::Start, json!({"forbidden": 1})),
            None,
            &mut effects,
        )
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidParameters);
    assert_eq!(error.details["action"], "start");
    assert_eq!(d.state(), State::Idle);
    assert!(matches!(
        &effects[..],
        [Effect::Publish {
            state: State::Idle,
            error: Some(_)
        }]
    ));
}

#[test]
fn a_task_reports_back_through_on_task() {
    let mut d = driver();
    let mut effects = Vec::new();
    d.handle(&action(ActionKind::Start, json!({})), None, &mut effects)
        .unwrap();
    assert_eq!(d.state(), State::Starting);
    let (task, generation) = take_task(&mut effects);
    let output = finish(task);
    effects.clear();
    d.task_done(generation, output, &mut effects);
    assert_eq!(d.state(), State::Running);
}

#[test]
fn a_task_started_before_a_reset_never_reports() {
    let mut d = driver();
    let mut effects = Vec::new();
    d.handle(&action(ActionKind::Start, json!({})), None, &mut effects)
        .unwrap();
    let (task, generation) = take_task(&mut effects);
    d.handle(&action(ActionKind::Reset, json!({})), None, &mut effects)
        .unwrap();
    assert_eq!(d.state(), State::Idle);
    effects.clear();
    d.task_done(generation, finish(task), &mut effects);
    assert_eq!(d.state(), State::Idle);
    assert!(effects.is_empty(), "{effects:?}");
}

#[test]
fn a_panicking_manager_operation_puts_the_component_in_error_until_reset() {
    struct Ops;
    impl villas_sdk::ManagerOps for Ops {
        fn create(&mut self, _spec: ComponentSpec) -> Result<(), ErrorInfo> {
            Ok(())
        }
        fn delete(&mut self, _uuid: &str) -> Result<(), ErrorInfo> {
            Ok(())
        }
        fn managed(&self) -> Vec<String> {
            Vec::new()
        }
    }
    let mut d = driver();
    let mut effects = Vec::new();
    let error = d
        .handle(
            &action(ActionKind::Create, json!({})),
            Some(&mut Ops),
            &mut effects,
        )
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::Crashed);
    assert!(error.message.contains("manager bug"), "{}", error.message);
    assert_eq!(d.state(), State::Error);
    d.handle(&action(ActionKind::Reset, json!({})), None, &mut effects)
        .unwrap();
    assert_eq!(d.state(), State::Idle);
}

#[test]
fn fail_puts_the_component_in_error_with_the_given_error() {
    let mut d = driver();
    let mut effects = Vec::new();
    d.fail(
        ErrorInfo::new(ErrorCode::RestartBudgetSpent, "spent"),
        &mut effects,
    );
    assert_eq!(d.state(), State::Error);
    assert_eq!(
        d.error().map(|e| e.code),
        Some(ErrorCode::RestartBudgetSpent)
    );
    assert!(!ErrorCode::RestartBudgetSpent.is_failure());
    assert!(ErrorCode::Crashed.is_failure() && ErrorCode::Failed.is_failure());
}
