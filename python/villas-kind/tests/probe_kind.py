"""A kind process for the SDK's tests: ``simulator/probe`` does, on ``start``,
whatever its ``mode`` parameter says (report running now or later, refuse,
crash, fail later, await blocking work, spawn a task, ...);
``manager/probe`` creates and deletes components through the daemon.

Run as ``python probe_kind.py``.
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Any

from villas_kind import (
    Action,
    Component,
    ComponentSpec,
    Context,
    JsonObject,
    Kind,
    KindError,
    Outcome,
    State,
    TimerId,
    serve,
)

#: Builds per uuid, across rebuilds (a reset after a crash builds anew).
BUILDS: dict[str, int] = {}

#: on_start calls per uuid, across rebuilds.
ON_STARTS: dict[str, int] = {}


class Probe(Component):
    def __init__(self, spec: ComponentSpec) -> None:
        self.spec = spec
        self.starts = 0
        #: Timer tokens in the order they fired.
        self.fired: list[str] = []
        self.tick: TimerId | None = None
        self.cancelled: list[bool] = []
        self.never = asyncio.Event()
        #: Kept to misuse it once removed (the SDK must send nothing then).
        self.ctx: Context | None = None
        #: What the fields say besides the counters (a test sets it).
        self.extra: JsonObject = {}

    def start(self, ctx: Context, action: Action) -> Outcome:
        self.ctx = ctx
        self.starts += 1
        mode = action.parameters.get("mode", "now")
        if mode == "now":
            ctx.transition(State.RUNNING)
        elif mode == "later":
            token = str(action.parameters.get("token", "running"))
            ctx.schedule(float(action.parameters["after"]), token)
        elif mode == "tick":
            self.tick = ctx.schedule(float(action.parameters["period"]), "tick")
            ctx.transition(State.RUNNING)
        elif mode == "cancel":
            # A cancelled timer due before a live one never fires.
            early = ctx.schedule(0.0, "cancelled")
            ctx.schedule(0.02, "live")
            self.cancelled.append(ctx.cancel(early))
            self.cancelled.append(ctx.cancel(early))
            ctx.transition(State.RUNNING)
        elif mode == "refuse":
            raise KindError("no start today", 5, parameter="mode")
        elif mode == "crash":
            ctx.schedule(0.02, "fail")  # never fires: a crash cancels the instance's timers
            raise RuntimeError("probe crashed")
        elif mode == "fail_later":
            ctx.schedule(0.01, "fail")
            ctx.transition(State.RUNNING)
        elif mode == "bad_transition":
            ctx.transition(State.PAUSED)
        elif mode == "async":
            return self._start_async(ctx)
        elif mode == "task":
            ctx.spawn(ctx.run_blocking(sum, [1, 2, 3]))
        elif mode == "task_fails":
            ctx.spawn(self._fail_soon())
            ctx.transition(State.RUNNING)
        elif mode == "hang":
            return self._hang()
        elif mode == "block":
            ctx.spawn(ctx.run_blocking(time.sleep, 60))
            ctx.transition(State.RUNNING)
        elif mode == "print":
            print("printed by the probe")
            ctx.transition(State.RUNNING)
        elif mode == "nan":
            self.extra = {"bad": math.nan}
            ctx.transition(State.RUNNING)
        elif mode == "manager":
            ctx.manager  # noqa: B018 - raises: a simulator is no manager
        return None

    def on_start(self, ctx: Context) -> Outcome:
        """What the ``on_start`` property says: ``watch`` (a field, ``starting``
        now, ``running`` from a timer), ``crash``, ``refuse``."""
        ON_STARTS[self.spec.uuid] = ON_STARTS.get(self.spec.uuid, 0) + 1
        mode = self.spec.properties.get("on_start")
        if mode == "watch":
            self.extra = {"watching": True}
            ctx.transition(State.STARTING)
            ctx.schedule(0.0, "running-watched")
        elif mode == "crash":
            ctx.schedule(0.02, "fail")  # never fires: a crash cancels the instance's timers
            raise RuntimeError("on_start crashed")
        elif mode == "refuse":
            raise KindError("nothing to watch", 5, property="on_start")
        return None

    async def _start_async(self, ctx: Context) -> None:
        total = await ctx.run_blocking(sum, [1, 2, 3])
        self.extra = {"blocking": total}
        ctx.transition(State.RUNNING)

    async def _fail_soon(self) -> None:
        await asyncio.sleep(0)
        raise KindError("the task failed", 1, stage="task")

    async def _hang(self) -> None:
        await self.never.wait()

    def stop(self, ctx: Context, action: Action) -> None:
        if self.tick is not None:
            self.cancelled.append(ctx.cancel(self.tick))
            self.tick = None
        ctx.transition(State.IDLE)

    def pause(self, ctx: Context, action: Action) -> None:
        ctx.transition(State.PAUSED)

    def on_timer(self, ctx: Context, token: str) -> None:
        self.fired.append(token)
        if token.startswith("running"):
            ctx.transition(State.RUNNING)
        elif token == "tick":
            self.tick = ctx.schedule(0.01, "tick")
            ctx.publish_status()
        elif token == "fail":
            ctx.fail(KindError("the probe failed", 1, stage="timer"))

    def on_task(self, ctx: Context, output: int) -> None:
        self.extra = {"task": output}
        ctx.transition(State.RUNNING)

    def status_fields(self) -> JsonObject:
        return {
            "starts": self.starts,
            "fired": self.fired,
            "cancelled": self.cancelled,
            "builds": BUILDS[self.spec.uuid],
            **self.extra,
            # Only for instances that test on_start (the others' fields stay as they were).
            **({"on_starts": ON_STARTS.get(self.spec.uuid, 0)} if "on_start" in self.spec.properties else {}),
        }

    def on_remove(self) -> None:
        if self.spec.data_dir is not None:
            (self.spec.data_dir / "removed").write_text("removed\n")
        if self.ctx is not None:
            self.ctx.fail("failed while being removed")  # must not reach the daemon


class ProbeKind(Kind):
    category = "simulator"
    type_name = "probe"
    component = Probe

    def schemas(self) -> dict[str, JsonObject]:
        return {"start": {"type": "object", "properties": {"mode": {"type": "string"}}}}

    def build(self, spec: ComponentSpec) -> Probe:
        if spec.properties.get("refuse"):
            raise KindError("property 'refuse' is set", property="refuse")
        if spec.properties.get("crash"):
            raise ZeroDivisionError("build crashed")
        BUILDS[spec.uuid] = BUILDS.get(spec.uuid, 0) + 1
        return Probe(spec)


class Boss(Component):
    async def create(self, ctx: Context, action: Action) -> None:
        await ctx.manager.create(action.parameters)

    async def delete(self, ctx: Context, action: Action) -> None:
        await ctx.manager.delete(str(action.parameters["uuid"]))


class BossKind(Kind):
    category = "manager"
    type_name = "probe"
    component = Boss

    def build(self, spec: ComponentSpec) -> Boss:
        return Boss()


if __name__ == "__main__":
    raise SystemExit(serve([ProbeKind(), BossKind()], name="probe", version="1.2.3"))
