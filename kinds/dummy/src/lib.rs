//! The `dummy` simulator: no real simulation, only the timed transitions of
//! the reference's `DummySimulator`, for testing a lab's tooling.
//!
//! Every transient state (`starting`, `stopping`, `pausing`, `resuming`,
//! `resetting`, `shuttingdown`) lasts `transition_delay` seconds (a
//! property, default 1.0 as in the reference). A `start` with parameter
//! `runtime` (seconds) ends the run by itself after that long in `running`
//! (through `stopping` to `idle`), as a finite simulation would; without it
//! the run lasts until `stop`.
//!
//! For chaos testing of the supervision tree only, `start` accepts
//! `chaos`: `"panic"` makes the instance panic as soon as it is running,
//! `"fail"` makes it report a failure then (error code 1, `failed`).

use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};
use villas_sdk::{
    Action, ActionKind, Component, ComponentSpec, Context, ErrorCode, ErrorInfo, Kind, State,
    TimerToken,
};

/// The `simulator`/`dummy` kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct DummyKind;

/// Timer: the transient state is over.
const SETTLE: TimerToken = 1;
/// Timers above this one end a run; each run segment gets a fresh token so
/// that the end of an earlier run (or of the time before a pause) never
/// stops a later one.
const RUN_OVER_BASE: TimerToken = 1;

impl Kind for DummyKind {
    fn category(&self) -> &'static str {
        "simulator"
    }

    fn type_name(&self) -> &'static str {
        "dummy"
    }

    fn schemas(&self) -> Map<String, Value> {
        let mut schemas = Map::new();
        schemas.insert(
            "start".into(),
            json!({
                "$schema": "http://json-schema.org/draft-07/schema",
                "type": "object",
                "default": {},
                "properties": {
                    "runtime": {
                        "description": "The run time of the simulation in seconds; absent: run until stopped",
                        "type": "number",
                        "minimum": 0,
                        "examples": [3.0]
                    },
                    "chaos": {
                        "description": "Chaos testing only: make the run crash (panic) or fail as soon as it is running",
                        "enum": ["panic", "fail"]
                    }
                }
            }),
        );
        schemas
    }

    fn build(&self, spec: &ComponentSpec) -> Result<Box<dyn Component>, ErrorInfo> {
        let delay = match spec.properties.get("transition_delay") {
            None | Some(Value::Null) => 1.0,
            Some(value) => value
                .as_f64()
                .filter(|d| d.is_finite() && *d >= 0.0 && *d <= 86_400.0)
                .ok_or_else(|| {
                    ErrorInfo::new(
                        ErrorCode::InvalidParameters,
                        "property transition_delay must be a number of seconds between 0 and 86400",
                    )
                })?,
        };
        Ok(Box::new(Dummy {
            delay: Duration::from_secs_f64(delay),
            runtime: None,
            remaining: None,
            running_since: None,
            run_over: RUN_OVER_BASE,
            chaos: None,
        }))
    }
}

/// One dummy simulator.
#[derive(Debug)]
pub struct Dummy {
    /// How long each transient state lasts.
    delay: Duration,
    /// The current run's length, from `start`'s `runtime`.
    runtime: Option<Duration>,
    /// What is left of the run (less than `runtime` after a pause).
    remaining: Option<Duration>,
    /// When the current running segment began.
    running_since: Option<Instant>,
    /// The token of the one run-over timer that is still valid.
    run_over: TimerToken,
    /// The chaos-testing fault to inject once running (`start`'s `chaos`).
    chaos: Option<Chaos>,
}

/// A fault injected for chaos testing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chaos {
    /// Panic in kind code.
    Panic,
    /// Report a failure.
    Fail,
}

impl Dummy {
    fn settle_later(&self, ctx: &mut Context<'_>) -> Result<(), ErrorInfo> {
        ctx.schedule(self.delay, SETTLE);
        Ok(())
    }

    /// Leaves `running`: the pending run-over timer no longer counts and
    /// the time run so far is taken off what remains.
    fn leave_running(&mut self) {
        self.run_over += 1;
        if let (Some(since), Some(left)) = (self.running_since.take(), self.remaining) {
            self.remaining = Some(left.saturating_sub(since.elapsed()));
        }
    }

    /// Forgets the run.
    fn end_run(&mut self) {
        self.leave_running();
        self.runtime = None;
        self.remaining = None;
    }
}

impl Component for Dummy {
    fn actions(&self) -> &'static [ActionKind] {
        &[
            ActionKind::Start,
            ActionKind::Stop,
            ActionKind::Pause,
            ActionKind::Resume,
            ActionKind::Shutdown,
        ]
    }

    fn start(&mut self, ctx: &mut Context<'_>, action: &Action) -> Result<(), ErrorInfo> {
        self.runtime = action
            .parameters
            .get("runtime")
            .and_then(Value::as_f64)
            .filter(|r| r.is_finite() && *r >= 0.0)
            .map(|r| Duration::from_secs_f64(r.min(365.0 * 86_400.0)));
        self.remaining = self.runtime;
        self.chaos = match action.parameters.get("chaos").and_then(Value::as_str) {
            Some("panic") => Some(Chaos::Panic),
            Some("fail") => Some(Chaos::Fail),
            _ => None,
        };
        self.settle_later(ctx)
    }

    fn stop(&mut self, ctx: &mut Context<'_>, _action: &Action) -> Result<(), ErrorInfo> {
        self.end_run();
        self.settle_later(ctx)
    }

    fn pause(&mut self, ctx: &mut Context<'_>, _action: &Action) -> Result<(), ErrorInfo> {
        self.leave_running();
        self.settle_later(ctx)
    }

    fn resume(&mut self, ctx: &mut Context<'_>, _action: &Action) -> Result<(), ErrorInfo> {
        self.settle_later(ctx)
    }

    fn shutdown(&mut self, ctx: &mut Context<'_>, _action: &Action) -> Result<(), ErrorInfo> {
        self.settle_later(ctx)
    }

    fn reset(&mut self, ctx: &mut Context<'_>, _action: &Action) -> Result<(), ErrorInfo> {
        self.end_run();
        self.settle_later(ctx)
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, token: TimerToken) -> Result<(), ErrorInfo> {
        match (token, ctx.state()) {
            (token, State::Running) if token == self.run_over && token > RUN_OVER_BASE => {
                self.end_run();
                ctx.transition(State::Stopping)?;
                self.settle_later(ctx)
            }
            (SETTLE, State::Starting | State::Resuming) => {
                ctx.transition(State::Running)?;
                match self.chaos {
                    Some(Chaos::Panic) => panic!("chaos: the dummy simulation crashed"),
                    Some(Chaos::Fail) => {
                        return Err(ErrorInfo::new(
                            ErrorCode::Failed,
                            "chaos: the dummy simulation failed",
                        ))
                    }
                    None => {}
                }
                if let Some(left) = self.remaining {
                    self.run_over += 1;
                    self.running_since = Some(Instant::now());
                    ctx.schedule(left, self.run_over);
                }
                Ok(())
            }
            (SETTLE, State::Stopping | State::Resetting) => ctx.transition(State::Idle),
            (SETTLE, State::Pausing) => ctx.transition(State::Paused),
            (SETTLE, State::ShuttingDown) => ctx.transition(State::Shutdown),
            _ => Ok(()),
        }
    }

    fn status_fields(&self, fields: &mut Map<String, Value>) {
        if let Some(runtime) = self.runtime {
            fields.insert("runtime".into(), runtime.as_secs_f64().into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use villas_sdk::{Driver, Effect};

    fn driver(delay: f64) -> Driver {
        let properties =
            json!({"category": "simulator", "type": "dummy", "transition_delay": delay});
        Driver::standalone(
            Arc::new(DummyKind),
            properties.as_object().cloned().unwrap(),
        )
        .unwrap()
    }

    /// Runs an action, then fires every timer it scheduled (in order) until
    /// none is left; returns the published states.
    fn run(driver: &mut Driver, action: Action) -> Vec<State> {
        let mut effects = Vec::new();
        let _ = driver.handle(&action, None, &mut effects);
        let mut states = Vec::new();
        while !effects.is_empty() {
            let mut next = Vec::new();
            for effect in effects.drain(..) {
                match effect {
                    Effect::Publish { state, .. } => states.push(state),
                    Effect::Schedule {
                        token, generation, ..
                    } => driver.timer_fired(generation, token, &mut next),
                    Effect::Spawn { .. } => unreachable!("the dummy spawns no task"),
                }
            }
            effects = next;
        }
        states
    }

    fn action(kind: ActionKind, parameters: Value) -> Action {
        Action::new(kind).with_parameters(parameters.as_object().cloned().unwrap_or_default())
    }

    #[test]
    fn full_lifecycle() {
        let mut d = driver(0.0);
        use State::*;
        assert_eq!(
            run(&mut d, action(ActionKind::Start, json!({}))),
            [Starting, Running]
        );
        assert_eq!(
            run(&mut d, action(ActionKind::Pause, json!({}))),
            [Pausing, Paused]
        );
        assert_eq!(
            run(&mut d, action(ActionKind::Resume, json!({}))),
            [Resuming, Running]
        );
        assert_eq!(
            run(&mut d, action(ActionKind::Stop, json!({}))),
            [Stopping, Idle]
        );
        assert_eq!(
            run(&mut d, action(ActionKind::Start, json!({"runtime": 0.5}))),
            [Starting, Running, Stopping, Idle]
        );
        assert_eq!(
            run(&mut d, action(ActionKind::Shutdown, json!({}))),
            [ShuttingDown, Shutdown]
        );
        assert_eq!(
            run(&mut d, action(ActionKind::Reset, json!({}))),
            [Resetting, Idle],
            "reset leads back from shutdown too"
        );
        assert_eq!(
            run(&mut d, action(ActionKind::Shutdown, json!({}))),
            [ShuttingDown, Shutdown]
        );
        assert_eq!(
            run(&mut d, action(ActionKind::Start, json!({}))),
            [Starting, Running]
        );
        assert_eq!(
            run(&mut d, action(ActionKind::Reset, json!({}))),
            [Resetting, Idle]
        );
    }

    #[test]
    fn the_end_of_an_earlier_run_never_stops_a_later_one() {
        use State::*;
        let mut d = driver(0.0);
        let mut effects = Vec::new();
        d.handle(
            &action(ActionKind::Start, json!({"runtime": 3})),
            None,
            &mut effects,
        )
        .unwrap();
        let mut timers = Vec::new();
        // Fire the settle timer only, keep the run-over timer for later.
        let mut pending = effects;
        let mut run_over = None;
        while let Some(effect) = pending.pop() {
            if let Effect::Schedule {
                token, generation, ..
            } = effect
            {
                if token == SETTLE {
                    d.timer_fired(generation, token, &mut pending);
                } else {
                    run_over = Some((generation, token));
                }
            }
        }
        assert_eq!(d.state(), Running);
        let (generation, token) = run_over.expect("a run-over timer");
        assert_eq!(
            run(&mut d, action(ActionKind::Stop, json!({}))),
            [Stopping, Idle]
        );
        assert_eq!(
            run(&mut d, action(ActionKind::Start, json!({}))),
            [Starting, Running]
        );
        d.timer_fired(generation, token, &mut timers);
        assert!(
            timers.is_empty(),
            "the first run's end stopped the second: {timers:?}"
        );
        assert_eq!(d.state(), Running);
    }

    #[test]
    fn a_repeated_action_in_progress_is_a_no_op() {
        let mut d = driver(1.0);
        let mut effects = Vec::new();
        d.handle(&action(ActionKind::Start, json!({})), None, &mut effects)
            .unwrap();
        let before = effects.len();
        d.handle(&action(ActionKind::Start, json!({})), None, &mut effects)
            .unwrap();
        assert_eq!(
            effects.len(),
            before,
            "the duplicate published or scheduled something"
        );
        assert_eq!(d.state(), State::Starting);
    }

    #[test]
    fn reset_cancels_pending_timers() {
        let mut d = driver(1.0);
        let mut effects = Vec::new();
        let _ = d.handle(&action(ActionKind::Start, json!({})), None, &mut effects);
        let Some(Effect::Schedule {
            token, generation, ..
        }) = effects.pop()
        else {
            panic!("no timer")
        };
        let mut reset = Vec::new();
        let _ = d.handle(&action(ActionKind::Reset, json!({})), None, &mut reset);
        let mut stale = Vec::new();
        d.timer_fired(generation, token, &mut stale);
        assert!(
            stale.is_empty(),
            "a timer from before the reset fired: {stale:?}"
        );
        assert_eq!(d.state(), State::Resetting);
    }

    #[test]
    fn refusals_keep_the_state_and_bad_parameters_are_errors() {
        let mut d = driver(0.0);
        let mut effects = Vec::new();
        let _ = d.handle(&action(ActionKind::Stop, json!({})), None, &mut effects);
        assert!(
            matches!(&effects[..], [Effect::Publish { state: State::Idle, error: Some(e) }] if e.code == ErrorCode::InvalidTransition)
        );
        effects.clear();
        let _ = d.handle(&action(ActionKind::Create, json!({})), None, &mut effects);
        assert!(
            matches!(&effects[..], [Effect::Publish { state: State::Idle, error: Some(e) }] if e.code == ErrorCode::Unsupported)
        );
        assert_eq!(
            run(&mut d, action(ActionKind::Start, json!({"runtime": "x"}))),
            [State::Error]
        );
        assert_eq!(
            d.error().map(|e| e.code),
            Some(ErrorCode::InvalidParameters)
        );
        assert_eq!(
            run(&mut d, action(ActionKind::Reset, json!({}))),
            [State::Resetting, State::Idle]
        );
        assert!(d.error().is_none());
    }

    #[test]
    fn bad_transition_delay_is_refused_at_build() {
        let mut properties = Map::new();
        properties.insert("category".into(), "simulator".into());
        properties.insert("type".into(), "dummy".into());
        properties.insert("transition_delay".into(), "soon".into());
        let spec = ComponentSpec::from_properties(properties).unwrap();
        assert!(DummyKind.build(&spec).is_err());
    }

    #[test]
    fn status_json_is_what_villasweb_reads() {
        let d = driver(0.0);
        let status = |d: &Driver| -> Value {
            serde_json::from_slice(&d.status_json(d.state(), None, Default::default())).unwrap()
        };
        let body = status(&d);
        assert_eq!(body["status"]["state"], "idle");
        assert!(body["schema"]["start"]["properties"]["runtime"].is_object());
        assert!(body["status"].get("error").is_none());
        assert!(body["when"].is_number());
        // A simulator reports its last start's model and results at the
        // top level, as the reference does: null before any.
        assert_eq!(body.get("model"), Some(&Value::Null));
        assert_eq!(body.get("results"), Some(&Value::Null));
        assert!(body.get("components").is_none());
        let mut d = d;
        let mut start = action(ActionKind::Start, json!({}));
        start.model = Some(json!({"type": "url", "url": "http://m"}));
        run(&mut d, start);
        let body = status(&d);
        assert_eq!(body["model"]["url"], "http://m");
        assert_eq!(body["results"], Value::Null);
        // A refused start changes nothing.
        let mut refused = action(ActionKind::Start, json!({}));
        refused.results = Some(json!({"url": "http://r"}));
        run(&mut d, refused);
        assert_eq!(status(&d)["results"], Value::Null);
    }
}
