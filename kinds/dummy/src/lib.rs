//! # villas-kind-dummy
//!
//! The `simulator`/`dummy` kind: no real simulation, only the timed
//! transitions of the reference's `DummySimulator`, for testing a lab's
//! tooling.
//!
//! Every transient state (`starting`, `stopping`, `pausing`, `resuming`,
//! `resetting`, `shuttingdown`) lasts `transition_delay` seconds (a
//! property, default 1.0 as in the reference). A `start` with parameter
//! `runtime` (seconds) ends the run by itself after that long in `running`
//! (through `stopping` to `idle`), as a finite simulation would; without it
//! the run lasts until `stop`. A pause does not count: after `resume` the
//! run lasts what was left of it.
//!
//! For chaos testing of the supervision tree only, `start` accepts
//! `chaos`: `"panic"` makes the instance panic as soon as it is running,
//! `"fail"` makes it report a failure then (error code 1, `failed`).

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::{Duration, Instant};
use villas_sdk::typed::{Actions, Ctx, TypedComponent, TypedKind};
use villas_sdk::{ComponentSpec, ErrorCode, ErrorInfo, State, TimerId};

/// The longest run a `start` asks for that is honoured, in seconds (a
/// year): longer ones are cut to it.
const LONGEST_RUN: f64 = 365.0 * 86_400.0;

/// The `simulator`/`dummy` kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct DummyKind;

/// The dummy's own properties.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct DummyProperties {
    /// How long every transient state lasts, in seconds (default 1.0, as
    /// in the reference).
    #[serde(default = "default_transition_delay")]
    #[schemars(range(min = 0, max = 86400))]
    pub transition_delay: f64,
}

fn default_transition_delay() -> f64 {
    1.0
}

impl TypedKind for DummyKind {
    const CATEGORY: &'static str = "simulator";
    const TYPE_NAME: &'static str = "dummy";
    type Properties = DummyProperties;
    type Component = Dummy;

    fn build(
        &self,
        _spec: &ComponentSpec,
        properties: DummyProperties,
    ) -> Result<Dummy, ErrorInfo> {
        Ok(Dummy {
            delay: Duration::from_secs_f64(properties.transition_delay),
            runtime: None,
            remaining: None,
            running_since: None,
            run_over: None,
            chaos: None,
        })
    }
}

// `start` parameters (published as `schema.start`: what VILLASweb draws
// its start form from; the field docs are the form's descriptions).
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(extend("default" = {}))]
struct StartParameters {
    /// The run time of the simulation in seconds; absent: run until stopped
    #[schemars(range(min = 0), extend("examples" = [3.0]))]
    runtime: Option<f64>,
    /// Chaos testing only: make the run crash (panic) or fail as soon as it is running
    chaos: Option<Chaos>,
}

/// A fault injected for chaos testing: panic in kind code, or report a
/// failure. (Its variants have no doc comments: those would make the
/// published schema a `oneOf` instead of the plain `enum` a form draws.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Chaos {
    Panic,
    Fail,
}

/// The dummy's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// The transient state is over.
    Settle,
    /// The run's `runtime` is over.
    RunOver,
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
    /// The end of the current running segment, cancelled when the
    /// component leaves `running` before it (so the end of an earlier run
    /// never stops a later one).
    run_over: Option<TimerId>,
    /// The chaos-testing fault to inject once running (`start`'s `chaos`).
    chaos: Option<Chaos>,
}

impl Dummy {
    fn settle_later(&self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        ctx.schedule(self.delay, Timer::Settle);
        Ok(())
    }

    /// Leaves `running`: the end of the segment is cancelled and the time
    /// run so far is taken off what remains.
    fn leave_running(&mut self, ctx: &mut Ctx<'_, Self>) {
        if let Some(timer) = self.run_over.take() {
            ctx.cancel(timer);
        }
        if let (Some(since), Some(left)) = (self.running_since.take(), self.remaining) {
            self.remaining = Some(left.saturating_sub(ctx.now().saturating_duration_since(since)));
        }
    }

    /// Forgets the run.
    fn end_run(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.leave_running(ctx);
        self.runtime = None;
        self.remaining = None;
    }

    fn start(&mut self, ctx: &mut Ctx<'_, Self>, start: StartParameters) -> Result<(), ErrorInfo> {
        self.runtime = start
            .runtime
            .map(|seconds| Duration::from_secs_f64(seconds.clamp(0.0, LONGEST_RUN)));
        self.remaining = self.runtime;
        self.chaos = start.chaos;
        self.settle_later(ctx)
    }

    fn stop(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        self.end_run(ctx);
        self.settle_later(ctx)
    }

    fn pause(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        self.leave_running(ctx);
        self.settle_later(ctx)
    }

    fn resume(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        self.settle_later(ctx)
    }

    fn shutdown(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        self.settle_later(ctx)
    }

    /// The transient state is over: `running` after `starting` and
    /// `resuming` (where the chaos strikes and the end of the run is
    /// scheduled), the settled state otherwise.
    fn settle(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        match ctx.state() {
            State::Starting | State::Resuming => {
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
                    self.running_since = Some(ctx.now());
                    self.run_over = Some(ctx.schedule(left, Timer::RunOver));
                }
                Ok(())
            }
            State::Stopping | State::Resetting => ctx.transition(State::Idle),
            State::Pausing => ctx.transition(State::Paused),
            State::ShuttingDown => ctx.transition(State::Shutdown),
            _ => Ok(()),
        }
    }
}

impl TypedComponent for Dummy {
    type Timer = Timer;
    type Output = ();

    fn actions(actions: &mut Actions<Self>) {
        actions
            .start(Self::start)
            .stop(Self::stop)
            .pause(Self::pause)
            .resume(Self::resume)
            .shutdown(Self::shutdown);
    }

    fn reset(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        self.end_run(ctx);
        self.settle_later(ctx)
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, timer: Timer) -> Result<(), ErrorInfo> {
        match timer {
            Timer::Settle => self.settle(ctx),
            Timer::RunOver if ctx.state() == State::Running => {
                self.run_over = None;
                self.end_run(ctx);
                ctx.transition(State::Stopping)?;
                self.settle_later(ctx)
            }
            Timer::RunOver => Ok(()),
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
    use serde_json::json;
    use villas_sdk::testing::{Harness, Published};
    use villas_sdk::ActionKind;

    fn dummy(delay: f64) -> Harness {
        Harness::typed(DummyKind, json!({"transition_delay": delay})).unwrap()
    }

    #[test]
    fn full_lifecycle() {
        use ActionKind as A;
        use State::*;
        let mut d = dummy(0.0);
        assert_eq!(d.run(A::Start, json!({})), [Starting, Running]);
        assert_eq!(d.run(A::Pause, json!({})), [Pausing, Paused]);
        assert_eq!(d.run(A::Resume, json!({})), [Resuming, Running]);
        assert_eq!(d.run(A::Stop, json!({})), [Stopping, Idle]);
        assert_eq!(
            d.run(A::Start, json!({"runtime": 0.5})),
            [Starting, Running, Stopping, Idle]
        );
        assert_eq!(d.run(A::Shutdown, json!({})), [ShuttingDown, Shutdown]);
        assert_eq!(
            d.run(A::Reset, json!({})),
            [Resetting, Idle],
            "reset leads back from shutdown too"
        );
        assert_eq!(d.run(A::Shutdown, json!({})), [ShuttingDown, Shutdown]);
        assert_eq!(d.run(A::Start, json!({})), [Starting, Running]);
        assert_eq!(d.run(A::Reset, json!({})), [Resetting, Idle]);
    }

    #[test]
    fn every_transient_state_lasts_the_transition_delay() {
        let mut d = dummy(2.0);
        d.act(ActionKind::Start, json!({})).unwrap();
        d.advance(Duration::from_millis(1_999));
        assert_eq!(d.states(), [State::Starting]);
        d.advance(Duration::from_millis(1));
        assert_eq!(d.states(), [State::Running]);
    }

    #[test]
    fn the_end_of_an_earlier_run_never_stops_a_later_one() {
        use State::*;
        let mut d = dummy(0.0);
        d.act(ActionKind::Start, json!({"runtime": 3})).unwrap();
        assert!(d.fire_next(), "the settle timer");
        assert_eq!(d.states(), [Starting, Running]);
        let [(run_over, left)] = d.pending_timers()[..] else {
            panic!("one run-over timer: {:?}", d.pending_timers())
        };
        assert_eq!(left, Duration::from_secs(3));
        assert_eq!(d.run(ActionKind::Stop, json!({})), [Stopping, Idle]);
        assert_eq!(d.run(ActionKind::Start, json!({})), [Starting, Running]);
        // A runtime that fires the first run's end anyway (it was cancelled).
        d.fire(run_over);
        assert_eq!(d.states(), [], "the first run's end stopped the second");
        assert_eq!(d.state(), Running);
    }

    #[test]
    fn a_pause_keeps_what_is_left_of_the_run() {
        use ActionKind::{Pause, Resume, Start};
        use State::*;
        let mut d = dummy(0.0);
        d.act(Start, json!({"runtime": 3})).unwrap();
        d.fire_next();
        d.advance(Duration::from_secs(1));
        assert_eq!(d.states(), [Starting, Running]);
        assert_eq!(d.run(Pause, json!({})), [Pausing, Paused]);
        d.advance(Duration::from_secs(100));
        assert_eq!(d.states(), [], "a pause does not count");
        d.act(Resume, json!({})).unwrap();
        d.fire_next();
        assert_eq!(d.states(), [Resuming, Running]);
        assert_eq!(d.status()["status"]["runtime"], 3.0);
        d.advance(Duration::from_millis(1_999));
        assert_eq!(d.states(), []);
        d.advance(Duration::from_millis(1));
        assert_eq!(d.states(), [Stopping, Idle]);
        assert!(d.status()["status"].get("runtime").is_none());
    }

    #[test]
    fn a_repeated_action_in_progress_is_a_no_op() {
        let mut d = dummy(1.0);
        d.act(ActionKind::Start, json!({})).unwrap();
        assert_eq!(d.states(), [State::Starting]);
        d.act(ActionKind::Start, json!({})).unwrap();
        assert_eq!(d.states(), [], "the duplicate published something");
        assert_eq!(d.pending_timers().len(), 1, "the duplicate scheduled");
        assert_eq!(d.state(), State::Starting);
    }

    #[test]
    fn reset_cancels_pending_timers() {
        let mut d = dummy(1.0);
        d.act(ActionKind::Start, json!({})).unwrap();
        let [(settle, _)] = d.pending_timers()[..] else {
            panic!("no timer")
        };
        d.act(ActionKind::Reset, json!({})).unwrap();
        assert_eq!(d.states(), [State::Starting, State::Resetting]);
        assert!(
            d.pending_timers().iter().all(|(timer, _)| *timer != settle),
            "the reset left the start's timer pending"
        );
        d.fire(settle);
        assert_eq!(d.states(), [], "a timer from before the reset fired");
        assert_eq!(d.state(), State::Resetting);
    }

    #[test]
    fn refusals_keep_the_state_and_bad_parameters_are_errors() {
        let mut d = dummy(0.0);
        let refused = |d: &mut Harness| -> Vec<(State, Option<ErrorCode>)> {
            d.published()
                .into_iter()
                .map(|Published { state, error }| (state, error.map(|e| e.code)))
                .collect()
        };
        assert!(d.act(ActionKind::Stop, json!({})).is_err());
        assert_eq!(
            refused(&mut d),
            [(State::Idle, Some(ErrorCode::InvalidTransition))]
        );
        assert!(d.act(ActionKind::Create, json!({})).is_err());
        assert_eq!(
            refused(&mut d),
            [(State::Idle, Some(ErrorCode::Unsupported))]
        );
        assert_eq!(
            d.run(ActionKind::Start, json!({"runtime": "x"})),
            [State::Error]
        );
        assert_eq!(
            d.error().map(|e| e.code),
            Some(ErrorCode::InvalidParameters)
        );
        assert_eq!(
            d.run(ActionKind::Reset, json!({})),
            [State::Resetting, State::Idle]
        );
        assert!(d.error().is_none());
        assert_eq!(
            d.run(ActionKind::Start, json!({"runtime": null})),
            [State::Error],
            "an optional parameter is not null"
        );
        assert_eq!(
            d.error().map(|e| e.details["path"].clone()),
            Some(json!("/runtime"))
        );
    }

    #[test]
    fn bad_transition_delays_are_refused_at_build() {
        for delay in [json!("soon"), json!(-1), json!(1e9)] {
            let error = Harness::typed(DummyKind, json!({ "transition_delay": delay }))
                .err()
                .unwrap_or_else(|| panic!("{delay} was accepted"));
            assert_eq!(error.code, ErrorCode::InvalidParameters);
            assert!(
                error.message.contains("transition_delay"),
                "{}",
                error.message
            );
        }
        let d = Harness::typed(DummyKind, json!({"transition_delay": null})).unwrap();
        assert_eq!(d.status()["properties"]["transition_delay"], Value::Null);
    }

    #[test]
    fn chaos_panics_or_fails_once_running() {
        let mut d = dummy(0.0);
        assert_eq!(
            d.run(ActionKind::Start, json!({"chaos": "fail"})),
            [State::Starting, State::Running, State::Error]
        );
        assert_eq!(d.error().map(|e| e.code), Some(ErrorCode::Failed));
        d.run(ActionKind::Reset, json!({}));
        assert_eq!(
            d.run(ActionKind::Start, json!({"chaos": "panic"})),
            [State::Starting, State::Running, State::Error]
        );
        assert_eq!(d.error().map(|e| e.code), Some(ErrorCode::Crashed));
        assert_eq!(
            d.run(ActionKind::Reset, json!({})),
            [State::Resetting, State::Idle],
            "reset rebuilds a crashed instance"
        );
    }

    #[test]
    fn status_json_is_what_villasweb_reads() {
        let mut d = dummy(0.0);
        let body = d.status();
        assert_eq!(body["status"]["state"], "idle");
        assert!(body["schema"]["start"]["properties"]["runtime"].is_object());
        assert!(body["status"].get("error").is_none());
        assert!(body["when"].is_number());
        // A simulator reports its last start's model and results at the
        // top level, as the reference does: null before any.
        assert_eq!(body.get("model"), Some(&Value::Null));
        assert_eq!(body.get("results"), Some(&Value::Null));
        assert!(body.get("components").is_none());
        let mut start = villas_sdk::Action::new(ActionKind::Start);
        start.model = Some(json!({"type": "url", "url": "http://m"}));
        d.handle(&start).unwrap();
        d.settle();
        let body = d.status();
        assert_eq!(body["model"]["url"], "http://m");
        assert_eq!(body["results"], Value::Null);
        // A refused start changes nothing.
        let mut refused = villas_sdk::Action::new(ActionKind::Start);
        refused.results = Some(json!({"url": "http://r"}));
        assert!(d.handle(&refused).is_err());
        assert_eq!(d.status()["results"], Value::Null);
    }

    #[test]
    fn the_published_start_schema_is_the_one_villasweb_draws() {
        let kind = DummyKind.into_kind();
        villas_sdk::testing::check_villasweb_schemas(kind.as_ref()).unwrap();
        assert_eq!(
            Value::Object(kind.schemas()),
            json!({"start": {
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
                        "type": "string",
                        "enum": ["panic", "fail"]
                    }
                }
            }})
        );
    }
}
