"""simulator/{{name}} driven as the daemon drives it: its process is started
and spoken to over stdin and stdout (villas_kind.testing)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from villas_kind.testing import KindProcess

PROJECT = Path(__file__).resolve().parents[1]


def start_kind() -> KindProcess:
    return KindProcess([sys.executable, "-m", "{{name}}_kind"], cwd=PROJECT)


def test_serves_simulator_{{name}}() -> None:
    with start_kind() as kind:
        answer = kind.handshake()
        assert answer["name"] == "{{name}}"
        (served,) = answer["kinds"]
        assert (served["category"], served["type"]) == ("simulator", "{{name}}")
        assert served["actions"] == ["start", "stop"]
        assert "period" in served["schemas"]["start"]["properties"]
        assert kind.stop() == 0


def test_steps_while_running_until_stopped() -> None:
    with start_kind() as kind:
        kind.handshake()
        uuid = kind.build("simulator", "{{name}}", {"name": "test"})
        assert kind.act(uuid, "start", {"period": 0.01})["ok"]
        assert kind.wait_state(uuid, "running") == ["running"]
        kind.wait_fields(uuid, lambda fields: fields["steps"] >= 3)
        assert kind.act(uuid, "stop")["ok"]
        assert kind.wait_state(uuid, "idle") == ["idle"]
        assert kind.act(uuid, "pause")["error"]["code"] == 6, "not an action it defines"
        assert kind.stop() == 0


def test_reset_leads_back_to_idle() -> None:
    with start_kind() as kind:
        kind.handshake()
        uuid = kind.build("simulator", "{{name}}")
        assert kind.act(uuid, "start", {"period": 0.01})["ok"]
        assert kind.act(uuid, "reset")["ok"]
        assert kind.wait_state(uuid, "idle")[-1] == "idle"
        assert kind.close() == 0


def test_the_manifest_matches_the_package() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with open(PROJECT / "villas-kind.toml", "rb") as file:
        manifest = tomllib.load(file)
    with open(PROJECT / "pyproject.toml", "rb") as file:
        project = tomllib.load(file)["project"]
    from {{name}}_kind import __version__

    assert manifest["name"] == "{{name}}"
    assert manifest["version"] == project["version"] == __version__
    assert manifest["command"] == ["python", "-m", "{{name}}_kind"]
