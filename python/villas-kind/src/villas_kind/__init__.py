"""The Python SDK for VILLAScontroller kinds that run in their own process.

A kind process serves one or more kinds (types of infrastructure component)
to the daemon over its stdin and stdout (docs/kind-protocol.md). Write a
:class:`Kind` and its :class:`Component`, then hand the kinds to
:func:`serve` in the package's ``__main__``::

    raise SystemExit(serve([ClockKind()], name="clock", version="0.1.0"))

The shape is the Rust SDK's (``villas_sdk``): the component reports
transitions, failures and status fields and asks for timers and tasks
through its :class:`Context`; the daemon keeps the IC's actor, the bus and
the state machine's checks. :mod:`villas_kind.testing` drives a kind process
as the daemon would, for a kind's tests.
"""

from .context import Context, Manager, TimerId
from .kind import ACTIONS, Action, Component, ComponentSpec, Kind, Outcome
from .protocol import (
    PROTOCOL_VERSION,
    SDK_VERSION,
    ErrorCode,
    JsonObject,
    KindError,
    State,
    sdk_compatible,
)
from .server import serve

__version__ = SDK_VERSION

__all__ = [
    "ACTIONS",
    "PROTOCOL_VERSION",
    "SDK_VERSION",
    "Action",
    "Component",
    "ComponentSpec",
    "Context",
    "ErrorCode",
    "JsonObject",
    "Kind",
    "KindError",
    "Manager",
    "Outcome",
    "State",
    "TimerId",
    "__version__",
    "sdk_compatible",
    "serve",
]
