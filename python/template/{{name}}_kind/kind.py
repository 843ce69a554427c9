"""simulator/{{name}}: counts simulation steps while it runs. Replace the
steps with your simulator; keep the shape.

Kind code never blocks: blocking work goes through `ctx.run_blocking`, long
work through `ctx.spawn` (see the villas-kind README).
"""

from __future__ import annotations

from villas_kind import Action, Component, ComponentSpec, Context, JsonObject, Kind, State, TimerId

#: `start` parameters: the daemon checks them against this schema before the
#: state changes and publishes it as `schema.start` (VILLASweb draws its
#: start form from it).
START_SCHEMA: JsonObject = {
    "type": "object",
    "properties": {
        "period": {
            "type": "number",
            "minimum": 0.001,
            "maximum": 3600,
            "default": 1.0,
            "description": "Seconds between simulation steps",
        },
    },
    "additionalProperties": False,
}


class Step:
    """The simulator's timer: a simulation step is due."""


class Simulator(Component):
    """One simulator/{{name}} component. It carries out the actions it defines
    (start and stop), and ping and reset as every component does."""

    def __init__(self, spec: ComponentSpec) -> None:
        self.spec = spec
        self.steps = 0
        self.period = 1.0
        #: The pending step, while running.
        self.step: TimerId | None = None

    def start(self, ctx: Context, action: Action) -> None:
        self.period = float(action.parameters.get("period", 1.0))
        self.steps = 0
        self.step = ctx.schedule(self.period, Step())
        ctx.transition(State.RUNNING)  # starting -> running

    def stop(self, ctx: Context, action: Action) -> None:
        if self.step is not None:
            ctx.cancel(self.step)
            self.step = None
        ctx.transition(State.IDLE)  # stopping -> idle

    def on_timer(self, ctx: Context, token: Step) -> None:
        self.steps += 1
        self.step = ctx.schedule(self.period, Step())
        ctx.publish_status()

    def reset(self, ctx: Context, action: Action) -> None:
        self.step = None  # the SDK cancelled its timers already
        ctx.transition(State.IDLE)

    def status_fields(self) -> JsonObject:
        return {"steps": self.steps}


class SimulatorKind(Kind):
    """simulator/{{name}}: builds a Simulator per configured component."""

    category = "simulator"
    type_name = "{{name}}"
    component = Simulator

    def schemas(self) -> dict[str, JsonObject]:
        return {"start": START_SCHEMA}

    def build(self, spec: ComponentSpec) -> Simulator:
        return Simulator(spec)
