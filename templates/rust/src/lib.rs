//! `simulator/{{name}}`: counts simulation steps while it runs. Replace the
//! steps with your simulator; keep the shape.
//!
//! Kind code never blocks: long work goes through `ctx.spawn` (a task whose
//! output comes back in `on_task`), waits through `ctx.schedule` (a timer
//! whose value comes back in `on_timer`). See the villas-sdk documentation
//! (`villas_sdk::typed`).

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::Duration;
use villas_sdk::typed::{Actions, Ctx, NoProperties, TypedComponent, TypedKind};
use villas_sdk::{ComponentSpec, ErrorInfo, State, TimerId};

/// `simulator/{{name}}`: builds a [`Simulator`] per component.
#[derive(Debug, Default, Clone, Copy)]
pub struct SimulatorKind;

impl TypedKind for SimulatorKind {
    const CATEGORY: &'static str = "simulator";
    const TYPE_NAME: &'static str = "{{name}}";
    type Properties = NoProperties;
    type Component = Simulator;

    fn build(&self, _spec: &ComponentSpec, _: NoProperties) -> Result<Simulator, ErrorInfo> {
        Ok(Simulator::default())
    }
}

/// `start` parameters: the daemon checks them against the schema generated
/// from this type before the state changes, and publishes it as
/// `schema.start` (VILLASweb draws its start form from it).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("default" = {}))]
pub struct Start {
    /// Seconds between simulation steps
    #[serde(default = "default_period")]
    #[schemars(range(min = 0.001, max = 3600))]
    pub period: f64,
}

fn default_period() -> f64 {
    1.0
}

/// The simulator's timer: a simulation step is due.
#[derive(Debug, Clone, Copy)]
pub struct Step;

/// One `simulator/{{name}}` component. It carries out the actions it
/// registers (start and stop), and ping and reset as every component does.
#[derive(Debug, Default)]
pub struct Simulator {
    /// Steps done in the current run.
    steps: u64,
    /// The pending step and the period, while running.
    step: Option<(TimerId, Duration)>,
}

impl Simulator {
    fn start(&mut self, ctx: &mut Ctx<'_, Self>, start: Start) -> Result<(), ErrorInfo> {
        let period = Duration::from_secs_f64(start.period);
        self.steps = 0;
        self.step = Some((ctx.schedule(period, Step), period));
        ctx.transition(State::Running) // starting -> running
    }

    fn stop(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        if let Some((timer, _)) = self.step.take() {
            ctx.cancel(timer);
        }
        ctx.transition(State::Idle) // stopping -> idle
    }
}

impl TypedComponent for Simulator {
    type Timer = Step;
    type Output = ();

    fn actions(actions: &mut Actions<Self>) {
        actions.start(Self::start).stop(Self::stop);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, _: Step) -> Result<(), ErrorInfo> {
        if let Some((timer, period)) = self.step.as_mut() {
            self.steps += 1;
            *timer = ctx.schedule(*period, Step);
            ctx.publish_status();
        }
        Ok(())
    }

    fn reset(&mut self, ctx: &mut Ctx<'_, Self>) -> Result<(), ErrorInfo> {
        self.step = None; // the SDK cancelled its timers already
        ctx.transition(State::Idle)
    }

    fn status_fields(&self, fields: &mut Map<String, Value>) {
        fields.insert("steps".into(), self.steps.into());
    }
}
