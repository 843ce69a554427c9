"""The kind process protocol on the wire: newline-delimited JSON lines in
(:class:`LineReader`) and out (:class:`LineWriter`, :func:`encode`), and every
daemon message decoded into a typed value (:func:`decode`) or refused with a
:class:`ProtocolError` saying what was wrong with it.

What is refused (docs/kind-protocol.md, "Bad messages"): a line over 1 MiB,
a line that is not a JSON object, an unknown ``op``, a missing or mistyped
field. Unknown fields are ignored, so that a newer daemon may add fields
(a ``when`` in ``act.action``, say) without breaking older kinds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import select
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from .kind import Action
from .protocol import ErrorCode, JsonObject, State

log = logging.getLogger("villas_kind")

#: The longest line either side accepts, in bytes (without its newline).
MAX_LINE = 1 << 20


def encode(value: Any) -> bytes:
    """``value`` as compact JSON (UTF-8); :class:`ValueError` or
    :class:`TypeError` if it is not JSON (NaN, a set, an object)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


class TooLong:
    """What :meth:`LineReader.read_line` returns for a line over the limit (the
    line itself is skipped)."""

    def __repr__(self) -> str:
        return "TooLong"


TOO_LONG = TooLong()


class LineReader:
    """Lines from a stream, each at most ``limit`` bytes: a longer one is
    skipped to its end and reported once as :data:`TOO_LONG`."""

    def __init__(self, reader: asyncio.StreamReader, limit: int = MAX_LINE) -> None:
        self._reader = reader
        self._limit = limit
        self._buffer = bytearray()
        #: How far the buffer was searched for a newline already.
        self._searched = 0
        #: Inside a line that was too long: drop bytes up to its newline.
        self._skipping = False

    async def read_line(self) -> bytes | TooLong | None:
        """The next line (without its newline), :data:`TOO_LONG`, or ``None`` at
        the end of the stream. A last line without a newline counts."""
        while True:
            end = self._buffer.find(b"\n", self._searched)
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                self._searched = 0
                if self._skipping:
                    self._skipping = False
                    continue
                return TOO_LONG if len(line) > self._limit else line
            if len(self._buffer) > self._limit:
                if not self._skipping:
                    self._skipping = True
                    self._buffer.clear()
                    self._searched = 0
                    return TOO_LONG
                self._buffer.clear()
            self._searched = len(self._buffer)
            chunk = await self._reader.read(1 << 16)
            if not chunk:
                if self._buffer and not self._skipping:
                    line = bytes(self._buffer)
                    self._buffer.clear()
                    return line
                return None
            self._buffer += chunk


class LineWriter:
    """Writes messages as lines to a file descriptor (the daemon reads them as
    they come). Once the other end is gone, writes are dropped and
    ``on_closed`` is called once."""

    def __init__(self, fd: int, on_closed: Callable[[], None] = lambda: None) -> None:
        self._fd = fd
        self._on_closed = on_closed
        self.closed = False

    def send(self, message: JsonObject) -> bool:
        """Writes ``message`` as one line; ``False`` if it cannot be sent (not
        JSON, or over :data:`MAX_LINE`, which the daemon would refuse: logged)
        or the other end is gone."""
        try:
            line = encode(message) + b"\n"
        except (TypeError, ValueError) as error:
            log.error("cannot send %s: not JSON (%s)", _describe(message), error)
            return False
        if len(line) > MAX_LINE + 1:
            log.error("cannot send %s: %d bytes, over the limit of %d", _describe(message), len(line) - 1, MAX_LINE)
            return False
        return self.write(line)

    def write(self, data: bytes) -> bool:
        """Writes raw bytes; ``False`` if the other end is gone."""
        if self.closed:
            return False
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._fd, view)
            except BlockingIOError:
                # The descriptor is shared with a non-blocking one (a tty or a
                # socket on stdin and stdout): wait until it takes more.
                select.select([], [self._fd], [])
                continue
            except OSError as error:
                self.closed = True
                log.warning("the daemon's end of the protocol is gone: %s", error)
                self._on_closed()
                return False
            view = view[written:]
        return True


def _describe(message: JsonObject) -> str:
    for key in ("event", "reply", "request"):
        if key in message:
            return f"{key} {message[key]!r}"
    return "a message"


class ProtocolError(Exception):
    """A daemon message that cannot be carried out: why, and the request's id if
    it could be read (the request is then answered with this error)."""

    def __init__(self, message: str, request_id: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id

    def to_json(self) -> JsonObject:
        """The error object to answer the request with."""
        return {"message": self.message, "code": int(ErrorCode.MALFORMED_MESSAGE)}


@dataclass(frozen=True)
class Hello:
    """``hello``: the handshake, the first message."""

    id: int
    protocol: int
    daemon: str
    sdk: str


@dataclass(frozen=True)
class Build:
    """``build``: make an instance."""

    id: int
    instance: str
    category: str
    type_name: str
    properties: JsonObject
    data_dir: Path | None


@dataclass(frozen=True)
class Act:
    """``act``: carry out an action (the daemon moved the component to ``state``)."""

    id: int
    instance: str
    state: State
    action: Action


@dataclass(frozen=True)
class Remove:
    """``remove``: release an instance and forget it."""

    id: int
    instance: str


@dataclass(frozen=True)
class Ping:
    """``ping``: are you there?"""

    id: int


@dataclass(frozen=True)
class Stop:
    """``stop``: release everything, answer, exit 0."""

    id: int


@dataclass(frozen=True)
class Reply:
    """The daemon's answer to a request of the kind (a manager's create/delete)."""

    reply: int
    ok: bool
    error: JsonObject | None


Message = Union[Hello, Build, Act, Remove, Ping, Stop, Reply]
"""A daemon message."""


class _Fields:
    """Reads the fields of one message, refusing the wrong type of each."""

    def __init__(self, body: JsonObject, what: str, request_id: int | None) -> None:
        self.body = body
        self.what = what
        self.request_id = request_id

    def refuse(self, problem: str) -> ProtocolError:
        return ProtocolError(f"{self.what}: {problem}", self.request_id)

    def get(self, key: str, kind: str, check: Callable[[Any], bool], optional: bool = False) -> Any:
        if key not in self.body:
            if optional:
                return None
            raise self.refuse(f"field {key!r} is missing")
        value = self.body[key]
        if optional and value is None:
            return None
        if not check(value):
            raise self.refuse(f"field {key!r} must be {kind}, not {_json_type(value)}")
        return value

    def string(self, key: str) -> str:
        value: str = self.get(key, "a string", lambda v: isinstance(v, str))
        return value

    def integer(self, key: str) -> int:
        value: int = self.get(key, "an integer >= 0", _is_id)
        return value

    def obj(self, key: str) -> JsonObject:
        value: JsonObject = self.get(key, "an object", lambda v: isinstance(v, dict))
        return value

    def optional_obj(self, key: str) -> JsonObject | None:
        value: JsonObject | None = self.get(key, "an object", lambda v: isinstance(v, dict), optional=True)
        return value

    def only(self, *known: str) -> None:
        """Ignores fields besides ``known`` (logged at debug level): a newer
        daemon may send fields this SDK does not know yet."""
        unknown = sorted(set(self.body) - set(known))
        if unknown:
            log.debug("%s: ignoring unknown field(s) %s", self.what, ", ".join(map(repr, unknown)))


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**64


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode(line: bytes) -> Message:
    """One daemon message, checked field by field; :class:`ProtocolError` if it
    is not one (with the request id when it could be read)."""
    try:
        body = json.loads(line, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise ProtocolError(f"not JSON: {error}") from None
    if not isinstance(body, dict):
        raise ProtocolError(f"not a JSON object but {_json_type(body)}")
    if "reply" in body:
        fields = _Fields(body, "reply", None)
        fields.only("reply", "ok", "error")
        return Reply(
            fields.integer("reply"),
            fields.get("ok", "a boolean", lambda v: isinstance(v, bool)),
            fields.optional_obj("error"),
        )
    request_id = body.get("id") if _is_id(body.get("id")) else None
    op = body.get("op")
    if not isinstance(op, str):
        raise ProtocolError("neither a request (op) nor a reply", request_id)
    fields = _Fields(body, op, request_id)
    decoder = _DECODERS.get(op)
    if decoder is None:
        raise ProtocolError(f"unknown op {op!r}", request_id)
    return decoder(fields)


def _hello(fields: _Fields) -> Hello:
    fields.only("op", "id", "protocol", "daemon", "sdk")
    return Hello(fields.integer("id"), fields.integer("protocol"), fields.string("daemon"), fields.string("sdk"))


def _build(fields: _Fields) -> Build:
    fields.only("op", "id", "instance", "category", "type", "properties", "data_dir")
    data_dir: str | None = fields.get("data_dir", "a string or null", lambda v: isinstance(v, str), optional=True)
    properties = fields.obj("properties")
    return Build(
        fields.integer("id"),
        fields.string("instance"),
        fields.string("category"),
        fields.string("type"),
        properties,
        Path(data_dir) if data_dir else None,
    )


def _act(fields: _Fields) -> Act:
    fields.only("op", "id", "instance", "state", "action")
    state = fields.string("state")
    try:
        parsed = State(state)
    except ValueError:
        raise fields.refuse(f"unknown state {state!r}") from None
    body = fields.obj("action")
    action = _Fields(body, "act: action", fields.request_id)
    action.only("action", "parameters", "model", "results")
    return Act(
        fields.integer("id"),
        fields.string("instance"),
        parsed,
        Action(
            action.string("action"),
            action.optional_obj("parameters") or {},
            body.get("model"),
            body.get("results"),
        ),
    )


def _remove(fields: _Fields) -> Remove:
    fields.only("op", "id", "instance")
    return Remove(fields.integer("id"), fields.string("instance"))


def _ping(fields: _Fields) -> Ping:
    fields.only("op", "id")
    return Ping(fields.integer("id"))


def _stop(fields: _Fields) -> Stop:
    fields.only("op", "id")
    return Stop(fields.integer("id"))


_DECODERS: dict[str, Callable[[_Fields], Message]] = {
    "hello": _hello,
    "build": _build,
    "act": _act,
    "remove": _remove,
    "ping": _ping,
    "stop": _stop,
}
