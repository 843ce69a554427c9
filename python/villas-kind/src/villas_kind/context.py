"""The handle kind code acts through: :class:`Context` (transitions, failures,
publications, timers, tasks, the component's definition) and, for managers,
:class:`Manager` (create and delete components through the daemon).

A context belongs to one instance and lives as long as it does. Use it on
the event loop only: code run by :meth:`Context.run_blocking` in a thread
returns its result instead of touching the context.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NewType, TypeVar

from .kind import ComponentSpec
from .protocol import JsonObject, KindError, State

if TYPE_CHECKING:
    from .instance import Instance

TimerId = NewType("TimerId", int)
"""A timer asked for with :meth:`Context.schedule`, to :meth:`Context.cancel` it."""

T = TypeVar("T")


class Context:
    """What an instance's kind code acts through (the Rust SDK's ``Ctx``)."""

    __slots__ = ("_instance",)

    def __init__(self, instance: Instance) -> None:
        self._instance = instance

    @property
    def state(self) -> State:
        """The current state, as this process knows it (the daemon tells it with
        every action)."""
        return self._instance.state

    @property
    def spec(self) -> ComponentSpec:
        """The component's definition."""
        return self._instance.spec

    @property
    def uuid(self) -> str:
        """The component's uuid."""
        return self._instance.spec.uuid

    @property
    def data_dir(self) -> Path | None:
        """The component's own directory (see :attr:`ComponentSpec.data_dir`)."""
        return self._instance.spec.data_dir

    def transition(self, state: State) -> None:
        """Moves to ``state`` and publishes it. Moving to the current state does
        nothing; a transition the table forbids raises :class:`KindError`
        (code 4) and keeps the state."""
        self._instance.transition(state)

    def fail(self, error: KindError | str) -> None:
        """Moves to ``error`` with this error object (code 1 unless given) and
        publishes it. Only ``reset`` brings the component back."""
        if isinstance(error, str):
            error = KindError(error)
        self._instance.fail(error.to_json())

    def publish_status(self) -> None:
        """Publishes the status again now (say, after a status field changed)."""
        self._instance.publish()

    def schedule(self, after: float, token: Any = None) -> TimerId:
        """Asks for :meth:`Component.on_timer` with ``token`` after ``after``
        seconds, unless the timer is cancelled first (:meth:`cancel`, ``reset``,
        the removal)."""
        return self._instance.schedule(after, token)

    def cancel(self, timer: TimerId) -> bool:
        """Cancels a timer: it will not fire. ``False`` if it fired or was
        cancelled already."""
        return self._instance.cancel(timer)

    def spawn(self, work: Awaitable[Any]) -> None:
        """Runs ``work`` (a coroutine, a future) beside the component; its result
        comes back through :meth:`Component.on_task`, unless a ``reset`` or the
        removal came first (they cancel it). An exception from it fails the
        component as one from a handler does."""
        self._instance.spawn(work)

    def run_blocking(self, function: Callable[..., T], *args: Any) -> Awaitable[T]:
        """Runs blocking code (``function(*args)``) in the kind process's thread
        pool and returns an awaitable of its result: ``await`` it in an
        ``async`` handler, or hand it to :meth:`spawn`. The only way kind code
        should block; the function must not use the context."""
        return self._instance.run_blocking(function, *args)

    @property
    def manager(self) -> Manager:
        """Creating and deleting components, for a component of category
        ``manager``; :class:`KindError` (code 6) for any other."""
        return self._instance.manager()


class Manager:
    """What a manager component asks of the daemon: create and delete the
    components it manages. Each call is a request to the daemon; its refusal
    is raised as :class:`KindError` with the daemon's error object."""

    __slots__ = ("_request",)

    def __init__(self, request: Callable[[JsonObject], Awaitable[None]]) -> None:
        self._request = request

    async def create(self, properties: JsonObject) -> None:
        """Creates and starts a component managed by this manager (refused for a
        uuid that exists anywhere in the daemon, or a kind it does not know)."""
        await self._request({"request": "create", "properties": properties})

    async def delete(self, uuid: str) -> None:
        """Deletes a component this manager manages: it is stopped, publishes
        ``gone`` once and disappears."""
        await self._request({"request": "delete", "uuid": uuid})
