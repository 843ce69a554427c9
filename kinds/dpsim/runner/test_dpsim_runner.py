"""Tests of the DPsim runner's parts that need no DPsim: configuration,
start times, the stepping loop's obedience to pause/resume/stop, the
event channel and the model's files."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest

import dpsim_runner as runner


def base(**extra: object) -> dict[str, object]:
    data: dict[str, object] = {"name": "sim", "model_files": ["a.xml"], "log_dir": "logs"}
    data.update(extra)
    return data


def test_defaults_pick_the_power_flow_for_sp_and_mna_otherwise() -> None:
    assert runner.RunConfig.from_json(base()).solver == "NRP"
    assert runner.RunConfig.from_json(base(domain="EMT")).solver == "MNA"


@pytest.mark.parametrize(
    "bad",
    [
        base(name=""),
        base(model_files=[]),
        base(timestep=0),
        base(duration=float("nan")),
        base(domain="XX"),
        base(domain="DP", solver="NRP"),
        base(options=[1]),
        base(start_at="yesterday"),
    ],
)
def test_bad_configurations_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        runner.RunConfig.from_json(bad)


def test_start_times_read_iso_8601_dpsims_format_and_delays() -> None:
    assert runner.start_time(None, None, 100.0) is None
    assert runner.start_time(None, 5, 100.0) == 105.0
    iso = runner.start_time("2026-12-01T08:00:00+00:00", None, 0.0)
    dpsim = runner.start_time("20261201T080000", None, 0.0)
    assert iso == 1796112000.0
    assert dpsim is not None
    with pytest.raises(ValueError):
        runner.start_time(None, -1, 0.0)


class FakeSim:
    """A simulation whose steps are 0.1 s and that pauses on its 3rd step."""

    def __init__(self, control: runner.Control, commands: list[str]) -> None:
        self.time = 0.0
        self.control = control
        self.commands = commands

    def next(self) -> float:
        self.time = round(self.time + 0.1, 6)
        if self.commands:
            self.control.push(self.commands.pop(0))
        return self.time


def events_of(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_stepper_runs_to_the_final_time() -> None:
    control = runner.Control()
    out = io.StringIO()
    sim = FakeSim(control, [])
    stepper = runner.Stepper(sim.next, 1.0, runner.Events(out), control)
    assert stepper.run() is False
    assert stepper.steps == 11 and stepper.time > 1.0


def test_pause_holds_the_stepping_until_resume() -> None:
    control = runner.Control()
    out = io.StringIO()
    sim = FakeSim(control, ["pause"])
    stepper = runner.Stepper(sim.next, 1.0, runner.Events(out), control)
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(stepper.run()))
    thread.start()
    # The stepper waits for a command while paused: nothing else moves it.
    thread.join(0.3)
    assert thread.is_alive()
    assert sim.time == 0.1
    paused = events_of(out)[-1]
    assert paused["event"] == "paused" and paused["time"] == 0.1
    control.push("resume")
    thread.join(5)
    assert result == [False]
    kinds = [e["event"] for e in events_of(out)]
    assert kinds.index("paused") < kinds.index("resumed")


def test_stop_ends_the_stepping_even_while_paused() -> None:
    control = runner.Control()
    out = io.StringIO()
    sim = FakeSim(control, ["pause"])
    stepper = runner.Stepper(sim.next, 1000.0, runner.Events(out), control)
    threading.Timer(0.2, control.push, args=("stop",)).start()
    assert stepper.run() is True
    assert stepper.steps == 1
    assert [e["event"] for e in events_of(out)] == ["paused"]


def test_end_of_stdin_is_a_stop() -> None:
    control = runner.Control()
    control.read_from(io.StringIO("pause\nbogus\n"))
    assert control.pending() == ["pause", "stop"]
    assert control.stopping.is_set()


def test_model_files_are_the_xml_files_below_the_directory(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("b_EQ.xml", "sub/a_TP.XML", "readme.txt"):
        (tmp_path / name).write_text("x")
    assert runner.model_files(str(tmp_path)) == [str(tmp_path / "b_EQ.xml"), str(tmp_path / "sub/a_TP.XML")]


def test_a_bad_configuration_file_is_an_error_event(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "run.json"
    config.write_text("{}")
    assert runner.main(["dpsim_runner.py", "--config", str(config)]) == runner.EXIT_CONFIG
    event = json.loads(capfd.readouterr().out.strip().splitlines()[-1])
    assert event["event"] == "error" and "name" in event["message"]
