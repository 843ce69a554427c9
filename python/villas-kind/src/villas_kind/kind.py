"""What a kind is written against: :class:`Kind` (a type of infrastructure
component, the factory of its instances), :class:`Component` (one instance),
and the values they are given (:class:`ComponentSpec`, :class:`Action`).

The same shape as the Rust SDK's ``Kind`` and ``Component``: kind code never
blocks and never talks to the daemon itself; it reports transitions, asks for
timers and tasks and publishes through its :class:`~villas_kind.Context`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from .protocol import ErrorCode, JsonObject, KindError, State

if TYPE_CHECKING:
    from .context import Context

Outcome = Optional[Awaitable[None]]
"""What a handler returns: ``None`` (a plain ``def``), or an awaitable (an
``async def``) that the SDK awaits before it answers the daemon."""

#: The actions a component may carry out besides ``ping`` and ``reset``, in
#: the order the handshake lists them.
ACTIONS: tuple[str, ...] = ("start", "stop", "pause", "resume", "shutdown", "create", "delete")


@dataclass(frozen=True)
class ComponentSpec:
    """A component's definition, as the daemon checked it: what a kind builds an
    instance from."""

    uuid: str
    """The component's uuid (its instance id on the wire)."""
    category: str
    """``simulator``, ``gateway``, ``manager``, ..."""
    type_name: str
    """The type within the category (the kind's :attr:`Kind.type_name`)."""
    name: str
    """Display name (``"<type> <category>"`` when the definition has none)."""
    realm: str | None
    """The realm the component answers to, if any."""
    properties: JsonObject = field(default_factory=dict)
    """Every property as configured (the identity fields included)."""
    data_dir: Path | None = None
    """The component's own directory, kept across daemon restarts; ``None`` when
    the daemon runs without a state directory (never require it in
    :meth:`Kind.build`)."""


@dataclass(frozen=True)
class Action:
    """A control action, after the daemon checked its parameters against the
    kind's schema for it."""

    name: str
    """``start``, ``stop``, ..., ``reset``."""
    parameters: JsonObject = field(default_factory=dict)
    """The action's parameters (an empty object when none were sent)."""
    model: Any = None
    """``start`` only: where to download the model from, if given."""
    results: Any = None
    """``start`` only: where to upload results to, if given."""


def _unsupported(action: str) -> KindError:
    return KindError(
        f"this component does not support {action}", ErrorCode.UNSUPPORTED, action=action
    )


class Component:
    """One instance of a kind. The SDK calls its methods one at a time (an
    ``async`` handler holds the instance until it returns).

    The actions it carries out are the action methods its class defines
    (:data:`ACTIONS`): a component supports exactly what it implements, and
    the daemon refuses every other action before the state changes. A control
    action (``start``, ``stop``, ``pause``, ``resume``, ``shutdown``) finds the
    component in its transient state (``starting`` for ``start``): report the
    next one (``running``, or ``error``) through the context, now or later
    from a timer or a task. ``create`` and ``delete`` (managers) change no
    state: act through :attr:`Context.manager`.

    Raising :class:`KindError` from an action refuses it: the daemon puts the
    component in ``error`` with that error object. Any other exception does
    too, with code 9 (``crashed``): the instance's timers and tasks are
    cancelled, and the next ``reset`` calls the crashed component's
    :meth:`on_remove` and rebuilds the instance through :meth:`Kind.build`.
    """

    @classmethod
    def actions(cls) -> tuple[str, ...]:
        """The actions this class carries out: the action methods it defines."""
        return tuple(name for name in ACTIONS if getattr(cls, name) is not getattr(Component, name))

    def start(self, ctx: Context, action: Action) -> Outcome:
        """``start`` (state ``starting``): report ``running`` once it runs."""
        raise _unsupported("start")

    def stop(self, ctx: Context, action: Action) -> Outcome:
        """``stop`` (state ``stopping``): report ``idle`` once it stopped."""
        raise _unsupported("stop")

    def pause(self, ctx: Context, action: Action) -> Outcome:
        """``pause`` (state ``pausing``): report ``paused``."""
        raise _unsupported("pause")

    def resume(self, ctx: Context, action: Action) -> Outcome:
        """``resume`` (state ``resuming``): report ``running``."""
        raise _unsupported("resume")

    def shutdown(self, ctx: Context, action: Action) -> Outcome:
        """``shutdown`` (state ``shuttingdown``): report ``shutdown``."""
        raise _unsupported("shutdown")

    def create(self, ctx: Context, action: Action) -> Outcome:
        """``create`` (managers): ``await ctx.manager.create(properties)``."""
        raise _unsupported("create")

    def delete(self, ctx: Context, action: Action) -> Outcome:
        """``delete`` (managers): ``await ctx.manager.delete(uuid)``."""
        raise _unsupported("delete")

    def on_start(self, ctx: Context) -> Outcome:
        """The instance was built: where one that watches something by itself
        (a remote API polled by a timer) begins. Called once per ``build``,
        right after the daemon got the build's answer and the instance's
        first status fields, in state ``idle``, with the full context; the
        events it produces are sent as for any handler, and an exception fails
        the instance as one from :meth:`on_timer` does (``error``, code 9 for
        one that is no :class:`KindError`; the process lives on). Not called
        again after a ``reset``, not even one that rebuilds a crashed
        instance: as the Rust SDK's ``Component::on_start``, which the
        daemon's actor calls when it starts, not on ``reset``. The default
        does nothing."""
        return None

    def reset(self, ctx: Context, action: Action) -> Outcome:
        """``reset`` (state ``resetting``), after every timer and task of the
        instance was cancelled: release what runs and report ``idle``. The
        default reports ``idle`` at once."""
        ctx.transition(State.IDLE)
        return None

    def on_timer(self, ctx: Context, token: Any) -> Outcome:
        """A timer asked for with :meth:`Context.schedule` fired, with the token
        given then. A cancelled timer, or one scheduled before a ``reset``, never
        fires. Annotate ``token`` with the type you schedule."""
        return None

    def on_task(self, ctx: Context, output: Any) -> Outcome:
        """A task started with :meth:`Context.spawn` completed with ``output``.
        One started before a ``reset`` or the removal never reports."""
        return None

    def status_fields(self) -> JsonObject:
        """Type-specific fields of ``status`` (JSON values). Sent to the daemon
        whenever they changed: before every transition and publication, and
        after every call into the component."""
        return {}

    def on_remove(self) -> None:
        """The instance is being removed (deleted, or the kind process stops):
        release everything it runs. Timers and tasks are already cancelled."""


class Kind(ABC):
    """A type of infrastructure component (``simulator``/``dummy``, ...): the
    factory the kind process serves, registered with the daemon by its
    category and type."""

    category: str
    """The category it serves (``simulator``, ``gateway``, ``manager``)."""
    type_name: str
    """The type within the category."""
    component: type[Component]
    """The class of its instances: the actions it defines are the ones served."""

    def schemas(self) -> dict[str, JsonObject]:
        """JSON schemas (draft-07) by action name: published in every status
        under ``schema`` (VILLASweb draws its forms from ``start`` and
        ``create``), and checked by the daemon before an action reaches the
        component. Only actions the component carries out may have one."""
        return {}

    @abstractmethod
    def build(self, spec: ComponentSpec) -> Component:
        """Builds an instance (of :attr:`component`) from its definition. Refuse a
        definition the kind cannot run by raising :class:`KindError` naming the
        property (code 5 unless given)."""

    def actions(self) -> tuple[str, ...]:
        """The actions its instances carry out besides ``ping`` and ``reset``."""
        return self.component.actions()
