"""The kind process: :func:`serve` speaks the kind process protocol on stdin and
stdout for a list of kinds, on one asyncio event loop, until the daemon says
``stop`` or closes stdin.

One :class:`Server` per process: the handshake, the daemon's requests
(``build``, ``act``, ``remove``, ``ping``, ``stop``) dispatched to the
instances, the answers, the manager requests the kind sends the daemon, and
the release of every instance at the end.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from . import wire
from .instance import Instance, build, crashed
from .kind import ACTIONS, Component, ComponentSpec, Kind
from .protocol import PROTOCOL_VERSION, SDK_VERSION, ErrorCode, JsonObject, KindError, sdk_compatible

log = logging.getLogger("villas_kind")

#: How long a manager waits for the daemon to answer its create or delete.
REQUEST_TIMEOUT = 30.0

#: At the end, how long cancelled work gets to unwind before the process exits.
UNWIND_GRACE = 1.0

#: The exit status after SIGTERM or SIGINT (128 + SIGTERM, as a shell reports it).
EXIT_TERMINATED = 128 + signal.SIGTERM


def check_kinds(kinds: Iterable[Kind]) -> dict[tuple[str, str], Kind]:
    """The kinds by (category, type), checked: a programming error in them
    (no kinds, a duplicate, a schema for an action the component does not
    carry out) raises :class:`ValueError` before anything is served."""
    by_name: dict[tuple[str, str], Kind] = {}
    for kind in kinds:
        what = type(kind).__name__
        for attribute in ("category", "type_name"):
            value = getattr(kind, attribute, None)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{what}.{attribute} must be a non-empty string, not {value!r}")
        component = getattr(kind, "component", None)
        if not (isinstance(component, type) and issubclass(component, Component)):
            raise ValueError(f"{what}.component must be a Component subclass, not {component!r}")
        served = set(kind.actions())
        if not served <= set(ACTIONS):
            raise ValueError(f"{what}.actions() lists {sorted(served - set(ACTIONS))}, which are no actions a kind carries out")
        for action, schema in kind.schemas().items():
            if action not in served:
                raise ValueError(f"{what} has a schema for {action!r}, which {component.__name__} does not carry out")
            if not isinstance(schema, dict):
                raise ValueError(f"{what}'s schema for {action!r} is not a JSON object")
        key = (kind.category, kind.type_name)
        if key in by_name:
            raise ValueError(f"two kinds serve {key[0]}/{key[1]}")
        by_name[key] = kind
    if not by_name:
        raise ValueError("a kind process serves at least one kind")
    return by_name


def describe(kind: Kind) -> JsonObject:
    """A kind as the handshake lists it."""
    return {
        "category": kind.category,
        "type": kind.type_name,
        "schemas": kind.schemas(),
        "actions": list(kind.actions()),
    }


class _LogLimit:
    """At most ``burst`` warnings per ``window`` seconds; the rest are counted and
    summed up once the window ends (a flood of bad lines must not flood the log)."""

    def __init__(self, burst: int = 20, window: float = 10.0) -> None:
        self._burst = burst
        self._window = window
        self._start = -window
        self._count = 0
        self._dropped = 0

    def warn(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._start >= self._window:
            if self._dropped:
                log.warning("%d more protocol errors not logged", self._dropped)
            self._start, self._count, self._dropped = now, 0, 0
        if self._count < self._burst:
            self._count += 1
            log.warning(message, *args)
        else:
            self._dropped += 1


class Server:
    """The protocol loop of one kind process."""

    def __init__(
        self,
        kinds: Sequence[Kind],
        *,
        name: str,
        version: str,
        writer: wire.LineWriter,
        executor: Executor,
    ) -> None:
        self._kinds = check_kinds(kinds)
        self._name = name
        self._version = version
        self._writer = writer
        self._executor = executor
        #: The instances by uuid.
        self._instances: dict[str, Instance] = {}
        #: Requests of the daemon being carried out (``act``, ``remove``).
        self._working: set[asyncio.Task[None]] = set()
        #: Requests of the kind (a manager's) waiting for the daemon's answer.
        self._pending: dict[int, asyncio.Future[wire.Reply]] = {}
        self._request_ids = itertools.count(1)
        self._greeted = False
        #: Set when the process is to end: ``stop``, a refused handshake,
        #: SIGTERM, the daemon's end of stdout gone.
        self._done = asyncio.Event()
        self._exit_status = 0
        self._errors = _LogLimit()
        #: How many bad messages came in (the daemon counts its side).
        self.protocol_errors = 0

    # -- the loop ------------------------------------------------------------

    async def run(self, lines: wire.LineReader) -> int:
        """Serves until ``stop``, the end of stdin or :meth:`finish`; the exit
        status."""
        done = asyncio.ensure_future(self._done.wait())
        try:
            while True:
                read = asyncio.ensure_future(lines.read_line())
                await asyncio.wait({read, done}, return_when=asyncio.FIRST_COMPLETED)
                if not read.done():
                    read.cancel()
                    break
                line = read.result()
                if line is None:
                    log.info("stdin closed: exiting")
                    break
                if isinstance(line, wire.TooLong):
                    self._bad(f"a line over {wire.MAX_LINE} bytes (skipped)")
                    continue
                self._handle(line)
                if self._done.is_set():
                    break
        finally:
            done.cancel()
            await self._release_all()
        return self._exit_status

    def finish(self, status: int) -> None:
        """Ends the loop with this exit status (SIGTERM, the daemon gone)."""
        if not self._done.is_set():
            self._exit_status = status
            self._done.set()

    def _handle(self, line: bytes) -> None:
        try:
            message = wire.decode(line)
        except wire.ProtocolError as error:
            self._bad(error.message)
            if error.request_id is not None:
                self._reply(error.request_id, error.to_json())
            return
        if isinstance(message, wire.Reply):
            self._on_reply(message)
        elif isinstance(message, wire.Hello):
            self._hello(message)
        elif isinstance(message, wire.Stop):
            self._stop(message)  # honoured even before the handshake: the daemon can always stop a kind
        elif not self._greeted:
            self._bad(f"{type(message).__name__.lower()} before the handshake")
            self._reply(message.id, _error("the handshake (hello) comes first", ErrorCode.MALFORMED_MESSAGE))
        elif isinstance(message, wire.Build):
            self._build(message)
        elif isinstance(message, wire.Act):
            self._act(message)
        elif isinstance(message, wire.Remove):
            self._remove(message)
        elif isinstance(message, wire.Ping):
            self._reply(message.id)

    def _bad(self, problem: str) -> None:
        self.protocol_errors += 1
        self._errors.warn("protocol error from the daemon: %s", problem)

    # -- requests of the daemon ------------------------------------------

    def _hello(self, hello: wire.Hello) -> None:
        if self._greeted:
            self._bad("a second hello")
            self._reply(hello.id, _error("the handshake is done already", ErrorCode.MALFORMED_MESSAGE))
            return
        refusal = None
        if hello.protocol != PROTOCOL_VERSION:
            refusal = f"the daemon speaks kind protocol {hello.protocol}, this kind {PROTOCOL_VERSION}"
        elif not sdk_compatible(SDK_VERSION, hello.sdk):
            refusal = (
                f"this kind was built against SDK {SDK_VERSION}, "
                f"which does not work with the daemon's SDK {hello.sdk}"
            )
        if refusal is not None:
            log.error("handshake refused: %s", refusal)
            self._reply(hello.id, _error(refusal, ErrorCode.UNSUPPORTED))
            self.finish(1)
            return
        self._greeted = True
        log.info(
            "serving %s to daemon %s (SDK %s)",
            ", ".join(f"{c}/{t}" for c, t in self._kinds),
            hello.daemon,
            hello.sdk,
        )
        self._reply(
            hello.id,
            None,
            protocol=PROTOCOL_VERSION,
            name=self._name,
            version=self._version,
            sdk=SDK_VERSION,
            kinds=[describe(kind) for kind in self._kinds.values()],
        )

    def _build(self, request: wire.Build) -> None:
        if request.instance in self._instances:
            self._reply(
                request.id,
                _error(f"instance {request.instance} exists already", ErrorCode.DUPLICATE_UUID),
            )
            return
        kind = self._kinds.get((request.category, request.type_name))
        if kind is None:
            self._reply(
                request.id,
                _error(f"this process serves no {request.category}/{request.type_name}", ErrorCode.UNSUPPORTED),
            )
            return
        properties = request.properties
        name = properties.get("name")
        realm = properties.get("realm")
        spec = ComponentSpec(
            uuid=request.instance,
            category=request.category,
            type_name=request.type_name,
            name=name if isinstance(name, str) else f"{request.type_name} {request.category}",
            realm=realm if isinstance(realm, str) else None,
            properties=properties,
            data_dir=request.data_dir,
        )
        try:
            component = build(kind, spec)
        except KindError as refused:
            self._reply(request.id, refused.to_json(ErrorCode.INVALID_PARAMETERS))
            return
        except Exception as bug:
            log.exception("build of %s raised", request.instance)
            self._reply(request.id, crashed(bug))
            return
        instance = Instance(
            kind, spec, component, emit=self._writer.send, request=self._request, executor=self._executor
        )
        self._instances[request.instance] = instance
        self._reply(request.id)
        # What the daemon's actor does once it started an in-process
        # instance: its first fields, then its on_start hook.
        instance.sync_fields()
        instance.start()

    def _act(self, request: wire.Act) -> None:
        instance = self._instances.get(request.instance)
        if instance is None:
            self._reply(request.id, _unknown_instance(request.instance))
            return
        name = request.action.name
        if name != "reset" and name not in instance.kind.actions():
            known = name in ACTIONS or name == "ping"
            self._reply(
                request.id,
                _error(
                    f"this component does not support {name}" if known else f"unknown action {name!r}",
                    ErrorCode.UNSUPPORTED if known else ErrorCode.UNKNOWN_ACTION,
                    action=name,
                ),
            )
            return
        self._work(request.id, lambda: instance.act(request.state, request.action))

    def _remove(self, request: wire.Remove) -> None:
        instance = self._instances.pop(request.instance, None)
        if instance is None:
            self._reply(request.id, _unknown_instance(request.instance))
            return

        async def remove() -> None:
            async with instance.lock:
                instance.remove()

        self._work(request.id, remove)

    def _stop(self, request: wire.Stop) -> None:
        log.info("stop: releasing %d instance(s)", len(self._instances))
        self._release_now()
        self._reply(request.id)
        self.finish(0)

    # -- requests of the kind --------------------------------------------

    async def _request(self, body: JsonObject) -> None:
        """Sends a request to the daemon and waits for its answer; its refusal
        (or none in :data:`REQUEST_TIMEOUT`) is raised as :class:`KindError`."""
        request_id = next(self._request_ids)
        answer: asyncio.Future[wire.Reply] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = answer
        try:
            if not self._writer.send({"request": body["request"], "id": request_id, **body}):
                raise KindError(f"could not send {body['request']} to the daemon")
            reply = await asyncio.wait_for(answer, REQUEST_TIMEOUT)
        except asyncio.TimeoutError:
            raise KindError(f"the daemon did not answer {body['request']} within {REQUEST_TIMEOUT:g} s") from None
        finally:
            self._pending.pop(request_id, None)
        if not reply.ok:
            error = dict(reply.error or {})
            message = error.pop("message", None) or error.pop("msg", None) or f"{body['request']} refused"
            code = error.pop("code", None)
            raise KindError(str(message), code if isinstance(code, int) else ErrorCode.FAILED, **error)

    def _on_reply(self, reply: wire.Reply) -> None:
        answer = self._pending.pop(reply.reply, None)
        if answer is None:
            self._bad(f"a reply to {reply.reply}, which is no request of this process")
        elif not answer.done():
            answer.set_result(reply)

    # -- answers and the end -----------------------------------------------

    def _reply(self, request_id: int, error: JsonObject | None = None, **fields: Any) -> None:
        if error is None:
            sent = self._writer.send({"reply": request_id, "ok": True, **fields})
        else:
            sent = self._writer.send({"reply": request_id, "ok": False, "error": error})
        if not sent and not self._writer.closed:
            # What the kind put in it cannot be sent: the request still gets its one answer.
            self._writer.send(
                {
                    "reply": request_id,
                    "ok": False,
                    "error": _error("the answer could not be sent (not JSON, or too long)", ErrorCode.CRASHED),
                }
            )

    def _work(self, request_id: int, work: Callable[[], Awaitable[JsonObject | None]]) -> None:
        """Carries out a request beside the loop and answers it when done."""

        async def answer() -> None:
            try:
                error = await work()
            except asyncio.CancelledError:
                raise
            except Exception as bug:
                log.exception("request %d raised", request_id)
                error = crashed(bug)
            self._reply(request_id, error)

        task = asyncio.ensure_future(answer())
        self._working.add(task)
        task.add_done_callback(self._working.discard)

    def _release_now(self) -> None:
        """Cancels every request being carried out and removes every instance."""
        for task in self._working:
            task.cancel()
        for answer in self._pending.values():
            answer.cancel()
        instances, self._instances = self._instances, {}
        for instance in instances.values():
            instance.remove()

    async def _release_all(self) -> None:
        self._release_now()
        unwinding = set(self._working)
        if unwinding:
            await asyncio.wait(unwinding, timeout=UNWIND_GRACE)


def _error(message: str, code: int, **details: Any) -> JsonObject:
    return KindError(message, code, **details).to_json()


def _unknown_instance(uuid: str) -> JsonObject:
    return _error(f"no instance {uuid}", ErrorCode.UNKNOWN_COMPONENT, instance=uuid)


async def run(
    kinds: Sequence[Kind],
    *,
    name: str,
    version: str,
    stdin_fd: int,
    stdout_fd: int,
    executor: Executor,
    handle_signals: bool = False,
) -> int:
    """Serves ``kinds`` on these file descriptors (pipes) until ``stop`` or the
    end of input; the exit status. :func:`serve` is the usual entry point."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    source = os.fdopen(stdin_fd, "rb", buffering=0, closefd=False)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), source)
    server: Server | None = None

    def gone() -> None:
        if server is not None:
            server.finish(0)

    writer = wire.LineWriter(stdout_fd, on_closed=gone)
    server = Server(kinds, name=name, version=version, writer=writer, executor=executor)
    if handle_signals:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, server.finish, EXIT_TERMINATED)
    try:
        return await server.run(wire.LineReader(reader))
    finally:
        if handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
        transport.close()


def serve(kinds: Sequence[Kind], *, name: str, version: str, log_level: int = logging.INFO) -> int:
    """Serves ``kinds`` on stdin and stdout as a kind process until the daemon
    says ``stop`` or closes stdin; the exit status (``raise SystemExit(serve(...))``).

    ``name`` and ``version`` are the kind package's, reported in the
    handshake. Logging goes to stderr (the daemon logs each line); so does
    anything printed, because stdout carries the protocol alone.
    """
    check_kinds(kinds)
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, level=log_level, format="%(levelname)s %(name)s: %(message)s")
    # The protocol gets private copies of stdin and stdout; fd 0 reads nothing
    # and fd 1 (print, stray writes of libraries) goes to stderr, the log.
    sys.stdout.flush()
    stdin_fd, stdout_fd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    executor = ThreadPoolExecutor(thread_name_prefix="villas-kind")
    try:
        status = asyncio.run(
            run(
                kinds,
                name=name,
                version=version,
                stdin_fd=stdin_fd,
                stdout_fd=stdout_fd,
                executor=executor,
                handle_signals=True,
            )
        )
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + UNWIND_GRACE
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if stuck:
        # Blocking work still runs: exit anyway, a kind process never outlives its daemon.
        log.warning("exiting with %d blocking call(s) still running", len(stuck))
        logging.shutdown()
        sys.stderr.flush()
        os._exit(status)
    return status
