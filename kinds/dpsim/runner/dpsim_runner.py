"""The DPsim runner of villas-controller's simulator/dpsim kind.

Runs one DPsim simulation (dpsimpy, PyPI package ``dpsim``) as a child
process of the daemon, described by a JSON file (``--config``) that the
daemon writes from the ``start`` parameters. It speaks a line protocol:

- events, one JSON object per line on the original stdout (the CIM library
  prints hundreds of warnings: fd 1 is moved to stderr, which goes to the
  run's log file): ``loaded``, ``running``, ``progress``, ``paused``,
  ``resumed``, ``finished``, ``error``; each with ``time`` (simulated
  seconds) and ``steps`` where they apply.
- commands, one word per line on stdin: ``pause``, ``resume``, ``stop``.
  SIGTERM is a ``stop`` too. A stop finishes the current step and closes the
  loggers (complete CSV files), then reports ``finished`` with
  ``stopped: true``. End of stdin (the daemon is gone) is a stop.

Exit codes: 0 finished (or stopped), 2 the model could not be loaded, 3
dpsimpy is missing, 4 the simulation failed, 64 a bad configuration.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import queue
import signal
import sys
import threading
import time
from datetime import datetime
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any, Callable

EXIT_MODEL = 2
EXIT_NO_DPSIM = 3
EXIT_FAILED = 4
EXIT_CONFIG = 64

# Seconds of wall time between two `progress` events.
PROGRESS_INTERVAL = 0.2


@dataclass
class RunConfig:
    """What to simulate: the `start` parameters, checked by the daemon."""

    name: str
    model_files: list[str]
    log_dir: str
    timestep: float = 1e-3
    duration: float = 1.0
    system_freq: float = 50.0
    domain: str = "SP"
    solver: str = "MNA"
    steady_init: bool = False
    log_level: str = "INFO"
    start_at: float | None = None
    options: dict[str, float] = field(default_factory=dict)

    @staticmethod
    def from_json(data: dict[str, Any]) -> RunConfig:
        """Reads and checks a configuration object."""
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError("name must be a non-empty string")
        files = data.get("model_files")
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise ValueError("model_files must be a list of paths")
        if not files:
            raise ValueError("the model holds no CIM (.xml) file")
        config = RunConfig(name=name, model_files=files, log_dir=str(data.get("log_dir", "logs")))
        for key in ("timestep", "duration", "system_freq"):
            if data.get(key) is not None:
                value = float(data[key])
                if not math.isfinite(value) or value <= 0:
                    raise ValueError(f"{key} must be a positive number")
                setattr(config, key, value)
        domain = data.get("domain") or "SP"
        if domain not in ("SP", "DP", "EMT"):
            raise ValueError(f"unknown solver domain {domain!r}")
        config.domain = domain
        solver = data.get("solver") or ("NRP" if domain == "SP" else "MNA")
        if solver not in ("NRP", "MNA"):
            raise ValueError(f"unknown solver type {solver!r}")
        if solver == "NRP" and domain != "SP":
            raise ValueError("the NRP power flow solves the SP domain only")
        config.solver = solver
        config.steady_init = bool(data.get("steady_init", False))
        config.log_level = str(data.get("log_level") or "INFO")
        config.start_at = start_time(data.get("start_at"), data.get("start_in"), time.time())
        options = data.get("options") or {}
        if not isinstance(options, dict):
            raise ValueError("options must be an object")
        config.options = {str(k): float(v) for k, v in options.items()}
        return config


class Events:
    """The event channel: one JSON object per line, flushed at once."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def emit(self, event: str, **fields: Any) -> None:
        """Writes one event."""
        line = json.dumps({"event": event, **fields})
        with self.lock:
            self.stream.write(line + "\n")
            self.stream.flush()


class Control:
    """Commands from the daemon (stdin, SIGTERM), read by a thread."""

    def __init__(self) -> None:
        self.commands: queue.Queue[str] = queue.Queue()
        self.stopping = threading.Event()

    def push(self, command: str) -> None:
        """Queues a command (`stop` also sets the stop flag at once)."""
        if command == "stop":
            self.stopping.set()
        self.commands.put(command)

    def read_from(self, stream: IO[str]) -> None:
        """Queues every line of `stream`; its end is a stop."""
        for line in stream:
            word = line.strip()
            if word in ("pause", "resume", "stop"):
                self.push(word)
        self.push("stop")

    def pending(self) -> list[str]:
        """The commands queued so far, without waiting."""
        out: list[str] = []
        while True:
            try:
                out.append(self.commands.get_nowait())
            except queue.Empty:
                return out

    def wait(self, timeout: float | None = None) -> str | None:
        """The next command, waiting at most `timeout` seconds."""
        try:
            return self.commands.get(timeout=timeout)
        except queue.Empty:
            return None


def start_time(start_at: Any, start_in: Any, now: float) -> float | None:
    """When a real-time run starts (unix seconds), from DPsim's `start-at`
    (ISO 8601, or DPsim's own `%Y%m%dT%H%M%S`; local time unless it names
    a zone) or `start-in` (seconds from now); None: as fast as possible."""
    if start_at is not None:
        text = str(start_at)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            try:
                moment = datetime.strptime(text, "%Y%m%dT%H%M%S")
            except ValueError:
                raise ValueError(f"start-at {text!r} is not an ISO 8601 date and time") from None
        return moment.timestamp()
    if start_in is not None:
        delay = float(start_in)
        if not math.isfinite(delay) or delay < 0:
            raise ValueError("start-in must be a number of seconds >= 0")
        return now + delay
    return None


def model_files(root: str) -> list[str]:
    """The CIM files of a model: `root` itself or its `.xml` files, recursively."""
    path = Path(root)
    if path.is_file():
        return [str(path)]
    return sorted(str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".xml")


def cim_log_tail(log_dir: str, name: str, lines: int = 20) -> str:
    """The last lines of the CIM reader's log (DPsim puts the load errors there)."""
    for candidate in (Path(log_dir) / f"{name}_CIM.log", Path("logs") / f"{name}_CIM.log"):
        try:
            text = candidate.read_text(errors="replace").splitlines()
        except OSError:
            continue
        return "\n".join(text[-lines:])
    return ""


class Stepper:
    """Steps a started DPsim simulation, obeying the control commands."""

    def __init__(
        self,
        step: Callable[[], float],
        final_time: float,
        events: Events,
        control: Control,
        start_time: float = 0.0,
        pace: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.step = step
        self.final_time = final_time
        self.events = events
        self.control = control
        self.time = start_time
        self.steps = 0
        self.pace = pace
        self.clock = clock
        self.paused = False

    def _obey(self, command: str) -> bool:
        """Applies one command; True when the run must stop."""
        if command == "stop":
            return True
        if command == "pause" and not self.paused:
            self.paused = True
            self.events.emit("paused", time=self.time, steps=self.steps)
        elif command == "resume" and self.paused:
            self.paused = False
            self.events.emit("resumed", time=self.time, steps=self.steps)
        return False

    def run(self) -> bool:
        """Steps until the final time or a stop; True if stopped early."""
        last_progress = self.clock()
        wall_start = self.clock()
        while self.time <= self.final_time:
            for command in self.control.pending():
                if self._obey(command):
                    return True
            while self.paused:
                waited = self.control.wait()
                if waited is not None and self._obey(waited):
                    return True
            if self.control.stopping.is_set():
                return True
            if self.pace is not None:
                due = wall_start + self.time / self.pace
                delay = due - self.clock()
                if delay > 0:
                    waited = self.control.wait(delay)
                    if waited is not None:
                        if self._obey(waited):
                            return True
                        continue
            self.time = self.step()
            self.steps += 1
            now = self.clock()
            if now - last_progress >= PROGRESS_INTERVAL:
                last_progress = now
                self.events.emit("progress", time=self.time, steps=self.steps, final_time=self.final_time)
        return False


def simulate(config: RunConfig, events: Events, control: Control) -> int:
    """Loads the model and runs the simulation; returns the exit code."""
    try:
        # Imported by name: dpsimpy's own stub file does not parse (1.4.0).
        dpsimpy: Any = importlib.import_module("dpsimpy")
    except ImportError as error:
        events.emit("error", stage="import", message=f"dpsimpy cannot be imported by {sys.executable}: {error} (pip install dpsim)")
        return EXIT_NO_DPSIM

    Path(config.log_dir).mkdir(parents=True, exist_ok=True)
    dpsimpy.Logger.set_log_dir(config.log_dir)
    level = {
        "NONE": dpsimpy.LogLevel.off,
        "INFO": dpsimpy.LogLevel.info,
        "DEBUG": dpsimpy.LogLevel.debug,
        "WARN": dpsimpy.LogLevel.warn,
        "ERR": dpsimpy.LogLevel.err,
    }.get(config.log_level, dpsimpy.LogLevel.info)
    domain = getattr(dpsimpy.Domain, config.domain)
    phases = dpsimpy.PhaseType.ABC if config.domain == "EMT" else dpsimpy.PhaseType.Single
    events.emit("loading", files=len(config.model_files))
    try:
        if config.solver == "NRP":
            reader = dpsimpy.CIMReader(config.name, level, level)
            system = reader.loadCIM(config.system_freq, config.model_files, domain, phases, dpsimpy.GeneratorType.PVNode)
        else:
            # DPsim's own examples initialise a dynamic run from a power flow.
            pf_name = f"{config.name}_pf"
            pf_reader = dpsimpy.CIMReader(pf_name, level, level)
            pf_system = pf_reader.loadCIM(config.system_freq, config.model_files, dpsimpy.Domain.SP, dpsimpy.PhaseType.Single, dpsimpy.GeneratorType.PVNode)
            reader = dpsimpy.CIMReader(config.name, level, level)
            system = reader.loadCIM(config.system_freq, config.model_files, domain, phases, dpsimpy.GeneratorType.IdealVoltageSource)
            pf = dpsimpy.Simulation(pf_name, level)
            pf.set_system(pf_system)
            pf.set_time_step(config.timestep)
            pf.set_final_time(config.timestep)
            pf.set_domain(dpsimpy.Domain.SP)
            pf.set_solver(dpsimpy.Solver.NRP)
            pf.run()
            system.init_with_powerflow(pf_system, domain)
    except Exception as error:  # DPsim raises plain RuntimeErrors
        tail = cim_log_tail(config.log_dir, config.name)
        events.emit("error", stage="load", message=f"the model cannot be loaded: {error}", log=tail)
        return EXIT_MODEL
    if not system.nodes:
        events.emit("error", stage="load", message="the model cannot be loaded: it has no topological node")
        return EXIT_MODEL
    events.emit("loaded", nodes=len(system.nodes), components=len(system.components))

    logger = dpsimpy.Logger(config.name)
    for node in system.nodes:
        logger.log_attribute(node.name() + ".V", "v", node)
    sim = dpsimpy.Simulation(config.name, level)
    sim.set_system(system)
    sim.set_time_step(config.timestep)
    sim.set_final_time(config.duration)
    sim.set_domain(domain)
    sim.set_solver(dpsimpy.Solver.NRP if config.solver == "NRP" else dpsimpy.Solver.MNA)
    if config.steady_init:
        sim.do_steady_state_init(True)
    sim.add_logger(logger)

    pace: float | None = None
    if config.start_at is not None:
        # Real time from `start_at` on (DPsim's --start-at / --start-in).
        while not control.stopping.is_set() and time.time() < config.start_at:
            control.stopping.wait(min(0.5, config.start_at - time.time()))
        pace = 1.0
    if control.stopping.is_set():
        events.emit("finished", time=0.0, steps=0, stopped=True)
        return 0
    try:
        sim.start()
        # MNA's start() computes t = 0 already; the power flow's does not.
        first = config.timestep if config.solver == "MNA" else 0.0
        events.emit("running", time=first, steps=0, final_time=config.duration)
        stepper = Stepper(sim.next, config.duration, events, control, start_time=first, pace=pace)
        stopped = stepper.run()
        if stopped or stepper.time <= config.duration:
            sim.stop()
    except Exception as error:
        events.emit("error", stage="run", message=f"the simulation failed: {error}")
        return EXIT_FAILED
    del logger  # closes the CSV file
    events.emit("finished", time=stepper.time, steps=stepper.steps, stopped=stopped)
    return 0


def main(argv: list[str]) -> int:
    """Entry point: `dpsim_runner.py --config run.json`."""
    events = Events(os.fdopen(os.dup(1), "w", buffering=1))
    # Whatever DPsim and the CIM library print goes to the log (stderr).
    os.dup2(2, 1)
    if len(argv) != 3 or argv[1] != "--config":
        events.emit("error", stage="config", message="usage: dpsim_runner.py --config FILE")
        return EXIT_CONFIG
    try:
        config = RunConfig.from_json(json.loads(Path(argv[2]).read_text()))
    except (OSError, ValueError, TypeError) as error:
        events.emit("error", stage="config", message=f"bad run configuration: {error}")
        return EXIT_CONFIG
    control = Control()

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        control.push("stop")

    signal.signal(signal.SIGTERM, on_term)
    threading.Thread(target=control.read_from, args=(sys.stdin,), daemon=True).start()
    return simulate(config, events, control)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
