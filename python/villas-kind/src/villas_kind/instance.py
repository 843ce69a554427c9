"""The runtime of one instance inside the kind process: its component, the
state as this process knows it, its timers and tasks, the lock that makes
calls into the component one at a time, and the events it sends.

What the Rust SDK's driver does for an instance, minus what the daemon keeps
doing (publishing, the state machine's checks): the daemon is told every
transition, failure and status-field change as an event.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import math
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from . import wire
from .context import Context, Manager, TimerId
from .kind import Action, Component, ComponentSpec, Kind, Outcome
from .protocol import ErrorCode, JsonObject, KindError, State

log = logging.getLogger("villas_kind")

T = TypeVar("T")

Emit = Callable[[JsonObject], object]
"""Sends an event to the daemon."""

Request = Callable[[JsonObject], Awaitable[None]]
"""Sends a request to the daemon and waits for its answer (raising its refusal)."""


def crashed(error: BaseException) -> JsonObject:
    """The error object for an exception kind code did not handle (code 9)."""
    return KindError(
        f"{type(error).__name__}: {error}", ErrorCode.CRASHED, exception=type(error).__name__
    ).to_json()


def build(kind: Kind, spec: ComponentSpec) -> Component:
    """``kind.build(spec)``, checked: :class:`KindError` (code 5 unless given) if
    the kind refuses, or builds something that is not its component."""
    component = kind.build(spec)
    if not isinstance(component, kind.component):
        raise KindError(
            f"{type(kind).__name__}.build returned {type(component).__name__}, "
            f"not a {kind.component.__name__}",
            ErrorCode.CRASHED,
        )
    return component


class Instance:
    """One component instance and everything the process runs for it."""

    def __init__(
        self,
        kind: Kind,
        spec: ComponentSpec,
        component: Component,
        *,
        emit: Emit,
        request: Request,
        executor: Executor,
    ) -> None:
        self.kind = kind
        self.spec = spec
        self.component = component
        #: The state as this process knows it: the daemon sends it with every
        #: action; transitions and failures reported since move it on.
        self.state = State.IDLE
        #: Calls into the component run one at a time, as on the daemon's actor.
        self.lock = asyncio.Lock()
        #: Pending timers; one leaves when it fires or is cancelled.
        self.timers: dict[TimerId, asyncio.TimerHandle] = {}
        #: Spawned work and pending deliveries to the component (cancelled by a
        #: reset and by the removal).
        self.tasks: set[asyncio.Future[Any]] = set()
        #: Bumped by every reset and the removal: results of older work are dropped.
        self.generation = 0
        #: The component raised an exception it did not handle: the next reset
        #: rebuilds it (its state may be half-updated).
        self.poisoned = False
        #: Removed: nothing more is sent for it and nothing more runs.
        self.removed = False
        #: A crashed component is being discarded: what it does is ignored.
        self._discarding = False
        #: The status fields last sent (encoded), to send only changes.
        self._fields_sent: bytes | None = None
        self._timer_ids = itertools.count(1)
        self._emit = emit
        self._request = request
        self._executor = executor
        self.context = Context(self)

    # -- calls into kind code ---------------------------------------------

    async def call(self, what: str, handler: Callable[[], Outcome], default_code: int) -> JsonObject | None:
        """Runs one call into the component (awaiting it if it is async); the
        error object it ended with, if any. Sends changed status fields after."""
        error: JsonObject | None = None
        try:
            outcome = handler()
            if outcome is not None:
                await outcome
        except KindError as refused:
            error = refused.to_json(default_code)
        except asyncio.CancelledError:
            raise
        except Exception as bug:
            log.exception("%s of %s raised", what, self.spec.uuid)
            self._crashed()
            error = crashed(bug)
        self.sync_fields()
        return error

    async def act(self, state: State, action: Action) -> JsonObject | None:
        """Carries out an action the daemon forwarded in ``state``; the error
        object it failed with, if any."""
        async with self.lock:
            self.state = state
            if action.name == "reset":
                self.release()
                if self.poisoned:
                    self._discard_component()
                    try:
                        self.component = build(self.kind, self.spec)
                    except KindError as refused:
                        self.state = State.ERROR
                        return refused.to_json(ErrorCode.INVALID_PARAMETERS)
                    except Exception as bug:
                        log.exception("rebuilding %s raised", self.spec.uuid)
                        self.state = State.ERROR
                        return crashed(bug)
                    self.poisoned = False
                    self._fields_sent = None
            handler = getattr(self.component, action.name)
            error = await self.call(action.name, lambda: handler(self.context, action), ErrorCode.FAILED)
            if error is not None and action.name not in ("create", "delete"):
                self.state = State.ERROR
            return error

    def start(self) -> None:
        """Runs the component's :meth:`~Component.on_start` beside the loop, after
        the build's answer and first fields were sent; it holds the instance
        as any handler does, and comes before the requests read after the
        build. An error from it fails the instance."""
        self._track(asyncio.ensure_future(self._start()))

    async def _start(self) -> None:
        async with self.lock:
            if self.removed:
                return
            error = await self.call("on_start", lambda: self.component.on_start(self.context), ErrorCode.FAILED)
            if error is not None:
                self.fail(error)

    def release(self) -> None:
        """Cancels every timer and task (a reset, the removal, a crash)."""
        self.generation += 1
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()
        tasks, self.tasks = self.tasks, set()
        current = asyncio.current_task()
        for task in tasks:
            if task is not current:
                task.cancel()

    def remove(self) -> None:
        """Releases everything and lets the component release what it runs."""
        self.release()
        self.removed = True
        try:
            self.component.on_remove()
        except Exception:
            log.exception("on_remove of %s raised", self.spec.uuid)

    # -- what the context does ------------------------------------------

    def transition(self, state: State) -> None:
        state = State(state)
        if state == self.state or self._stale("transition"):
            return
        if not self.state.can_become(state):
            raise KindError(
                f"cannot go from {self.state} to {state}",
                ErrorCode.INVALID_TRANSITION,
                **{"from": self.state.value, "to": state.value},
            )
        self.sync_fields()
        self.state = state
        self._emit({"event": "transition", "instance": self.spec.uuid, "state": state.value})

    def fail(self, error: JsonObject) -> None:
        if self._stale("fail"):
            return
        self.sync_fields()
        self.state = State.ERROR
        self._emit({"event": "fail", "instance": self.spec.uuid, "error": error})

    def publish(self) -> None:
        if self._stale("publish_status"):
            return
        self.sync_fields()
        self._emit({"event": "publish", "instance": self.spec.uuid})

    def sync_fields(self) -> None:
        """Sends the component's status fields if they changed since last sent."""
        if self.removed:
            return
        try:
            fields = self.component.status_fields()
            if not isinstance(fields, dict):
                raise TypeError(f"status_fields returned {type(fields).__name__}, not a dict")
            encoded = wire.encode(fields)
        except Exception:
            log.exception("status_fields of %s", self.spec.uuid)
            return
        if encoded != self._fields_sent:
            self._fields_sent = encoded
            self._emit({"event": "fields", "instance": self.spec.uuid, "fields": fields})

    def schedule(self, after: float, token: Any) -> TimerId:
        if not (math.isfinite(after) and after >= 0):
            raise ValueError(f"a timer's delay must be finite and not negative, not {after!r}")
        timer = TimerId(next(self._timer_ids))
        if not self.removed:
            loop = asyncio.get_running_loop()
            self.timers[timer] = loop.call_later(after, self._timer_due, timer, token)
        return timer

    def cancel(self, timer: TimerId) -> bool:
        handle = self.timers.pop(timer, None)
        if handle is None:
            return False
        handle.cancel()
        return True

    def spawn(self, work: Awaitable[Any]) -> None:
        future = asyncio.ensure_future(work)
        if self.removed:
            future.cancel()
            return
        self._track(future)
        future.add_done_callback(functools.partial(self._task_done, generation=self.generation))

    def run_blocking(self, function: Callable[..., T], *args: Any) -> Awaitable[T]:
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, functools.partial(function, *args))

    def manager(self) -> Manager:
        if self.spec.category != "manager":
            raise KindError(
                "only components of category manager create or delete components",
                ErrorCode.UNSUPPORTED,
            )
        return Manager(self._manager_request)

    # -- internals ---------------------------------------------------------

    def _stale(self, what: str) -> bool:
        stale = self.removed or self._discarding
        if stale:
            log.debug("%s of removed instance %s ignored", what, self.spec.uuid)
        return stale

    def _crashed(self) -> None:
        """The component raised what it did not handle: nothing more of it runs
        (as the Rust driver does after a panic) and the next reset rebuilds it."""
        self.poisoned = True
        self.release()

    def _discard_component(self) -> None:
        """Lets the crashed component release what it runs before it is
        replaced; what it does through the context meanwhile is ignored."""
        self._discarding = True
        try:
            self.component.on_remove()
        except Exception:
            log.exception("on_remove of the crashed %s raised", self.spec.uuid)
        finally:
            self._discarding = False

    async def _manager_request(self, body: JsonObject) -> None:
        await self._request({**body, "instance": self.spec.uuid})

    def _track(self, future: asyncio.Future[Any]) -> None:
        self.tasks.add(future)
        future.add_done_callback(self.tasks.discard)

    def _timer_due(self, timer: TimerId, token: Any) -> None:
        if timer in self.timers:
            self._track(asyncio.ensure_future(self._fire(timer, token)))

    async def _fire(self, timer: TimerId, token: Any) -> None:
        async with self.lock:
            if self.timers.pop(timer, None) is None:
                return  # cancelled while it waited for the component
            error = await self.call(
                "on_timer", lambda: self.component.on_timer(self.context, token), ErrorCode.FAILED
            )
            if error is not None:
                self.fail(error)

    def _task_done(self, future: asyncio.Future[Any], generation: int) -> None:
        if future.cancelled():
            return
        future.exception()  # retrieved, so that a dropped failure is not reported as lost
        if generation != self.generation or self.removed:
            return
        self._track(asyncio.ensure_future(self._deliver(future, generation)))

    async def _deliver(self, future: asyncio.Future[Any], generation: int) -> None:
        async with self.lock:
            if generation != self.generation or self.removed:
                return
            failure = future.exception()
            if isinstance(failure, KindError):
                error: JsonObject | None = failure.to_json()
            elif failure is not None:
                log.error("a task of %s raised", self.spec.uuid, exc_info=failure)
                self._crashed()
                error = crashed(failure)
            else:
                output = future.result()
                error = await self.call(
                    "on_task", lambda: self.component.on_task(self.context, output), ErrorCode.FAILED
                )
            if error is not None:
                self.fail(error)
