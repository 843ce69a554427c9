"""The vocabulary of the VILLAScontroller protocol that kind code uses.

Component states and the transition table, the error codes and the error
object (:class:`KindError`), and the kind process protocol's version and the
SDK compatibility rule checked in the handshake. These mirror the Rust SDK
(``villas_sdk::protocol``) value for value.
"""

from __future__ import annotations

import re
from enum import Enum, IntEnum
from typing import Any

#: The kind process protocol this SDK speaks (``protocol`` in the handshake).
PROTOCOL_VERSION = 1

#: This SDK's version, sent as ``sdk`` in the handshake. It moves in lock-step
#: with the Rust SDK (``villas-sdk``): the same version means the same protocol
#: features, so the compatibility rule compares like with like.
SDK_VERSION = "0.1.0"

JsonObject = dict[str, Any]
"""A JSON object as :func:`json.loads` returns it."""


class State(str, Enum):
    """The state of an infrastructure component, as published in ``status.state``."""

    IDLE = "idle"
    STARTING = "starting"
    RUNNING = "running"
    PAUSING = "pausing"
    PAUSED = "paused"
    RESUMING = "resuming"
    STOPPING = "stopping"
    RESETTING = "resetting"
    SHUTTING_DOWN = "shuttingdown"
    SHUTDOWN = "shutdown"
    ERROR = "error"
    GONE = "gone"

    def successors(self) -> frozenset[State]:
        """The states this state may move to (the protocol's transition table)."""
        return _SUCCESSORS[self]

    def can_become(self, next_state: State) -> bool:
        """Whether the table allows ``self -> next_state``."""
        return next_state in _SUCCESSORS[self]

    def __str__(self) -> str:
        return self.value


def _row(*states: State) -> frozenset[State]:
    return frozenset(states)


_S = State
# The reference's table plus `shutdown -> resetting` (docs/protocol.md), as
# `State::successors` in the Rust SDK.
_SUCCESSORS: dict[State, frozenset[State]] = {
    _S.IDLE: _row(_S.STARTING, _S.SHUTTING_DOWN, _S.RESETTING, _S.ERROR, _S.GONE),
    _S.STARTING: _row(_S.RUNNING, _S.RESETTING, _S.ERROR, _S.GONE),
    _S.RUNNING: _row(_S.PAUSING, _S.STOPPING, _S.RESETTING, _S.ERROR, _S.GONE),
    _S.PAUSING: _row(_S.PAUSED, _S.RESETTING, _S.ERROR, _S.GONE),
    _S.PAUSED: _row(_S.RESUMING, _S.STOPPING, _S.RESETTING, _S.ERROR, _S.GONE),
    _S.RESUMING: _row(_S.RUNNING, _S.RESETTING, _S.ERROR, _S.GONE),
    _S.STOPPING: _row(_S.IDLE, _S.RESETTING, _S.ERROR, _S.GONE),
    _S.RESETTING: _row(_S.IDLE, _S.RESETTING, _S.ERROR, _S.GONE),
    _S.SHUTTING_DOWN: _row(_S.SHUTDOWN, _S.ERROR, _S.GONE),
    _S.SHUTDOWN: _row(_S.STARTING, _S.RESETTING, _S.ERROR, _S.GONE),
    _S.ERROR: _row(_S.RESETTING, _S.ERROR, _S.GONE),
    _S.GONE: _row(),
}
del _S


class ErrorCode(IntEnum):
    """Why an error was published: the ``code`` of the error object."""

    FAILED = 1
    """The component itself failed (a kind reported an error)."""
    MALFORMED_MESSAGE = 2
    """A message was not a JSON object with well-typed fields."""
    UNKNOWN_ACTION = 3
    """The action names no action of the protocol."""
    INVALID_TRANSITION = 4
    """The transition is not in the table."""
    INVALID_PARAMETERS = 5
    """Parameters or properties were refused."""
    UNSUPPORTED = 6
    """The component does not carry this action out."""
    DUPLICATE_UUID = 7
    """``create`` named a uuid that exists already."""
    UNKNOWN_COMPONENT = 8
    """No such component (instance)."""
    CRASHED = 9
    """The kind's code raised an exception it did not handle."""
    TOO_LARGE = 10
    """A message exceeded the size limit (the daemon's)."""
    RESTART_BUDGET_SPENT = 11
    """The supervisor stopped restarting the component (the daemon's)."""
    REMOTE = 12
    """The external system the component drives is unreachable, stalled or
    answered with an error; the component retries by itself (no failure its
    supervisor acts on)."""


class KindError(Exception):
    """An error object of the protocol, raised by kind code to refuse or fail.

    Raised from :meth:`Kind.build` it refuses the definition (code 5 unless
    given); from an action, a timer or a task it puts the component in
    ``error`` (code 1 unless given). ``details`` become extra fields of the
    error object (the property that is wrong, the path that is missing).
    """

    def __init__(self, message: str, code: int | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details: JsonObject = details

    def to_json(self, default_code: int = ErrorCode.FAILED) -> JsonObject:
        """The error object on the wire: ``{"message", "code", ...details}``."""
        body: JsonObject = {
            key: value for key, value in self.details.items() if key not in ("message", "code")
        }
        body["message"] = self.message
        body["code"] = int(self.code if self.code is not None else default_code)
        return body

    def __repr__(self) -> str:
        return f"KindError({self.message!r}, code={self.code!r})"


_VERSION = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:[-+][0-9A-Za-z.+-]*)?$")


def parse_version(text: str) -> tuple[int, int, int]:
    """``major.minor.patch`` of a semantic version (a pre-release or build suffix is
    accepted and ignored); :class:`ValueError` if ``text`` is not one."""
    match = _VERSION.match(text)
    if match is None:
        raise ValueError(f"not a semantic version: {text!r}")
    return int(match[1]), int(match[2]), int(match[3])


def sdk_compatible(kind_sdk: str, daemon_sdk: str) -> bool:
    """The SDK compatibility rule: a kind built against SDK ``x.y.z`` works with a
    daemon whose SDK is ``x'.y'.z'`` when ``x == x'`` and ``y <= y'`` for
    ``x >= 1``; for ``x == 0``, when ``y == y'`` (semver as Cargo reads it).
    A version that does not parse is incompatible."""
    try:
        kind_major, kind_minor, _ = parse_version(kind_sdk)
        daemon_major, daemon_minor, _ = parse_version(daemon_sdk)
    except ValueError:
        return False
    if kind_major != daemon_major:
        return False
    if kind_major == 0:
        return kind_minor == daemon_minor
    return kind_minor <= daemon_minor
