"""Testing a kind without a daemon: :class:`KindProcess` starts the kind's
executable and speaks the daemon's side of the protocol to it over its stdin
and stdout, as the daemon does.

    with KindProcess([sys.executable, "-m", "mykind"]) as kind:
        kind.handshake()
        uuid = kind.build("simulator", "mykind", {"name": "test"})
        assert kind.act(uuid, "start")["ok"]
        kind.wait_state(uuid, "running")
        assert kind.stop() == 0

Every wait has a deadline (``timeout``, 10 s unless given) and raises
:class:`TimeoutError` with what the kind sent and logged meanwhile.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
import uuid as uuids
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

from .protocol import PROTOCOL_VERSION, SDK_VERSION, JsonObject

#: The state the daemon moves a component to before it forwards an action.
TRANSIENT = {
    "start": "starting",
    "stop": "stopping",
    "pause": "pausing",
    "resume": "resuming",
    "shutdown": "shuttingdown",
    "reset": "resetting",
}


class KindProcess:
    """A kind process under test, and the daemon's end of its protocol."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.timeout = timeout
        self.process = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=None if env is None else dict(env),
        )
        #: Everything read from stdout, in order (parsed, or the raw line if it
        #: was not JSON), for the waits to take from.
        self._inbox: queue.Queue[JsonObject | bytes | None] = queue.Queue()
        #: Events and kind requests read but not yet taken by :meth:`next_event`.
        self.events: list[JsonObject] = []
        #: Every event and kind request read so far, taken or not.
        self.history: list[JsonObject] = []
        #: Replies read but not yet taken by :meth:`reply`.
        self._replies: dict[int, JsonObject] = {}
        #: What the daemon would know of each instance: its last state and fields.
        self._states: dict[str, str] = {}
        self._fields: dict[str, JsonObject] = {}
        self._stdout_closed = False
        self._log: list[str] = []
        self._log_changed = threading.Condition()
        self._ids = iter(range(1, 1 << 62))
        assert self.process.stdout is not None and self.process.stderr is not None
        threading.Thread(target=self._read_stdout, args=(self.process.stdout,), daemon=True).start()
        threading.Thread(target=self._read_stderr, args=(self.process.stderr,), daemon=True).start()

    # -- sending -------------------------------------------------------------

    def send(self, message: JsonObject) -> None:
        """Writes one message (a line of JSON) to the kind's stdin."""
        self.send_raw(json.dumps(message).encode() + b"\n")

    def send_raw(self, data: bytes) -> None:
        """Writes bytes as they are to the kind's stdin."""
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def request(self, op: str, **fields: Any) -> JsonObject:
        """Sends request ``op`` and waits for its answer."""
        request_id = next(self._ids)
        self.send({"op": op, "id": request_id, **fields})
        return self.reply(request_id)

    # -- the daemon's requests -----------------------------------------------

    def hello(self, *, protocol: int = PROTOCOL_VERSION, sdk: str = SDK_VERSION, daemon: str = "0.0.0-test") -> JsonObject:
        """The handshake's answer, whatever it is."""
        request_id = next(self._ids)
        self.send({"op": "hello", "id": request_id, "protocol": protocol, "daemon": daemon, "sdk": sdk})
        return self.reply(request_id)

    def handshake(self) -> JsonObject:
        """The handshake, which must succeed: the kind's answer."""
        answer = self.hello()
        if not answer.get("ok"):
            raise AssertionError(f"handshake refused: {answer}")
        return answer

    def build(
        self,
        category: str,
        type_name: str,
        properties: JsonObject | None = None,
        *,
        uuid: str | None = None,
        data_dir: str | None = None,
    ) -> str:
        """Builds an instance, which must succeed: its uuid. The kind sends the
        instance's first fields and runs its ``on_start`` after this answer,
        as under the daemon: their events follow (:meth:`next_event`)."""
        instance = uuid or str(uuids.uuid4())
        answer = self.request(
            "build",
            instance=instance,
            category=category,
            type=type_name,
            properties={"category": category, "type": type_name, "uuid": instance, **(properties or {})},
            data_dir=data_dir,
        )
        if not answer.get("ok"):
            raise AssertionError(f"build refused: {answer}")
        return instance

    def act(
        self,
        instance: str,
        action: str,
        parameters: JsonObject | None = None,
        *,
        state: str | None = None,
        **extra: Any,
    ) -> JsonObject:
        """Forwards an action in the state the daemon would have moved to
        (``starting`` for ``start``); the kind's answer."""
        body: JsonObject = {"action": action, "parameters": parameters or {}, **extra}
        return self.request(
            "act", instance=instance, state=state or TRANSIENT.get(action, "idle"), action=body
        )

    def remove(self, instance: str) -> JsonObject:
        """Removes an instance; the kind's answer."""
        return self.request("remove", instance=instance)

    def answer(self, request_id: int, error: JsonObject | None = None) -> None:
        """Answers a request of the kind (a manager's create or delete)."""
        if error is None:
            self.send({"reply": request_id, "ok": True})
        else:
            self.send({"reply": request_id, "ok": False, "error": error})

    def stop(self, timeout: float | None = None) -> int:
        """``stop``, which must be answered; then waits for the exit: its status."""
        answer = self.request("stop")
        if not answer.get("ok"):
            raise AssertionError(f"stop refused: {answer}")
        return self.wait(timeout)

    def close(self, timeout: float | None = None) -> int:
        """Closes the kind's stdin and waits for it to exit: its status."""
        assert self.process.stdin is not None
        if not self.process.stdin.closed:
            self.process.stdin.close()
        return self.wait(timeout)

    def wait(self, timeout: float | None = None) -> int:
        """Waits for the process to exit: its status."""
        try:
            return self.process.wait(timeout if timeout is not None else self.timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"the kind did not exit; its log:\n{self.log}") from None

    # -- receiving -----------------------------------------------------------

    def reply(self, request_id: int, timeout: float | None = None) -> JsonObject:
        """Waits for the answer to request ``request_id`` (events read meanwhile
        are kept for :meth:`next_event`)."""
        deadline = self._deadline(timeout)
        while request_id not in self._replies:
            self._pull(deadline, f"the answer to request {request_id}")
        return self._replies.pop(request_id)

    def next_event(self, timeout: float | None = None) -> JsonObject:
        """The next event (or request) of the kind not taken yet."""
        deadline = self._deadline(timeout)
        while not self.events:
            self._pull(deadline, "an event")
        return self.events.pop(0)

    def expect(self, predicate: Callable[[JsonObject], bool], what: str, timeout: float | None = None) -> JsonObject:
        """Takes events until one satisfies ``predicate``: that one."""
        deadline = self._deadline(timeout)
        skipped: list[JsonObject] = []
        while True:
            while not self.events:
                self._pull(deadline, f"{what} (events before: {skipped})")
            event = self.events.pop(0)
            if predicate(event):
                return event
            skipped.append(event)

    def wait_state(self, instance: str, state: str, timeout: float | None = None) -> list[str]:
        """Takes events until ``instance`` reports ``state`` (a transition, or a
        failure for ``error``): the states it reported on the way, that one last."""
        states: list[str] = []

        def reached(event: JsonObject) -> bool:
            if event.get("instance") != instance:
                return False
            if event.get("event") == "transition":
                states.append(event["state"])
            elif event.get("event") == "fail":
                states.append("error")
            return bool(states) and states[-1] == state

        self.expect(reached, f"{instance} in state {state}", timeout)
        return states

    def state(self, instance: str) -> str | None:
        """The state ``instance`` reported last, as far as events were read."""
        return self._states.get(instance)

    def fields(self, instance: str) -> JsonObject:
        """The status fields ``instance`` sent last, as far as events were read
        (the daemon publishes these)."""
        return self._fields.get(instance, {})

    def wait_fields(
        self, instance: str, predicate: Callable[[JsonObject], bool], timeout: float | None = None
    ) -> JsonObject:
        """Reads events until the status fields of ``instance`` satisfy
        ``predicate``, and takes every event read so far: those fields."""
        deadline = self._deadline(timeout)
        while not predicate(self.fields(instance)):
            self._pull(deadline, f"status fields of {instance} as wanted (now {self.fields(instance)})")
        self.events.clear()
        return self.fields(instance)

    @property
    def log(self) -> str:
        """What the kind logged on stderr so far."""
        with self._log_changed:
            return "".join(self._log)

    def wait_for_log(self, text: str, timeout: float | None = None) -> str:
        """Waits until the kind logs a line containing ``text``: that line."""
        deadline = self._deadline(timeout)
        with self._log_changed:
            while True:
                for line in self._log:
                    if text in line:
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"the kind did not log {text!r}; its log:\n{''.join(self._log)}")
                self._log_changed.wait(remaining)

    # -- internals -----------------------------------------------------------

    def _deadline(self, timeout: float | None) -> float:
        return time.monotonic() + (timeout if timeout is not None else self.timeout)

    def _pull(self, deadline: float, what: str) -> None:
        if self._stdout_closed:
            raise EOFError(f"the kind closed stdout while waiting for {what}; its log:\n{self.log}")
        try:
            item = self._inbox.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"no {what} from the kind; its log:\n{self.log}") from None
        if item is None:
            self._stdout_closed = True
            raise EOFError(f"the kind closed stdout while waiting for {what}; its log:\n{self.log}")
        if isinstance(item, bytes):
            raise AssertionError(f"the kind wrote a line that is not a JSON object: {item!r}")
        if "reply" in item and isinstance(item["reply"], int):
            self._replies[item["reply"]] = item
            return
        self.events.append(item)
        self.history.append(item)
        instance = item.get("instance")
        if isinstance(instance, str):
            if item.get("event") == "transition":
                self._states[instance] = item["state"]
            elif item.get("event") == "fail":
                self._states[instance] = "error"
            elif item.get("event") == "fields":
                self._fields[instance] = item["fields"]

    def _read_stdout(self, stream: IO[bytes]) -> None:
        for line in stream:
            try:
                message = json.loads(line)
            except ValueError:
                message = None
            self._inbox.put(message if isinstance(message, dict) else line)
        self._inbox.put(None)
        stream.close()

    def _read_stderr(self, stream: IO[bytes]) -> None:
        for line in stream:
            with self._log_changed:
                self._log.append(line.decode(errors="replace"))
                self._log_changed.notify_all()
        stream.close()

    def __enter__(self) -> KindProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except OSError:
                pass  # the kind is gone: what was buffered for it does not matter
