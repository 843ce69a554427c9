"""The protocol's vocabulary: the transition table and the error codes agree
with the Rust SDK's source, the SDK compatibility rule, the error object."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from villas_kind import ErrorCode, KindError, State, sdk_compatible
from villas_kind.protocol import parse_version

RUST_SDK = Path(__file__).resolve().parents[3] / "sdk" / "src" / "protocol"


def _camel_to_wire() -> dict[str, str]:
    source = (RUST_SDK / "state.rs").read_text()
    return dict(re.findall(r'State::(\w+) => "(\w+)"', source))


def test_transition_table_is_the_rust_sdks() -> None:
    source = (RUST_SDK / "state.rs").read_text()
    body = source[source.index("pub const fn successors") : source.index("pub fn can_become")]
    rows = re.findall(r"^\s*(\w+) => &\[([\w, ]*)\],", body, re.MULTILINE)
    wire = _camel_to_wire()
    assert len(rows) == len(State) == len(wire)
    for name, successors in rows:
        state = State(wire[name])
        expected = {State(wire[s.strip()]) for s in successors.split(",") if s.strip()}
        assert state.successors() == expected, state
        for other in State:
            assert state.can_become(other) == (other in expected), (state, other)


def test_error_codes_are_the_rust_sdks() -> None:
    source = (RUST_SDK / "error.rs").read_text()
    rust = {name: int(value) for name, value in re.findall(r"^\s*(\w+) = (\d+),", source, re.MULTILINE)}
    camel = {code.name.replace("_", "").lower(): code.value for code in ErrorCode}
    assert {name.lower(): value for name, value in rust.items()} == camel


def test_state_names_are_the_wire_names() -> None:
    assert str(State.SHUTTING_DOWN) == "shuttingdown"
    assert State("running") is State.RUNNING
    with pytest.raises(ValueError):
        State("Running")


@pytest.mark.parametrize(
    ("kind", "daemon", "works"),
    [
        ("0.1.0", "0.1.0", True),
        ("0.1.0", "0.1.7", True),
        ("0.1.3", "0.1.0", True),  # patch levels never matter
        ("0.1.0", "0.2.0", False),  # 0.y: the minor version must be equal
        ("0.2.0", "0.1.0", False),
        ("1.2.0", "1.2.0", True),
        ("1.2.0", "1.5.1", True),  # x >= 1: a newer daemon minor works
        ("1.5.0", "1.2.0", False),  # an older one does not
        ("1.0.0", "2.0.0", False),
        ("2.0.0", "1.9.0", False),
        ("0.1.0", "0.1.0-rc.1", True),
        ("0.1.0", "banana", False),
        ("0.1.0", "0.1", False),
        ("0.1.0", "01.1.0", False),
    ],
)
def test_sdk_compatibility_rule(kind: str, daemon: str, works: bool) -> None:
    assert sdk_compatible(kind, daemon) is works


def test_parse_version() -> None:
    assert parse_version("1.22.333+build.5") == (1, 22, 333)
    with pytest.raises(ValueError):
        parse_version("1.2.3.4")


def test_kind_error_object() -> None:
    error = KindError("bad rack", property="rack")
    assert error.to_json() == {"message": "bad rack", "code": 1, "property": "rack"}
    error.details["message"] = "a detail cannot replace the message"
    assert error.to_json()["message"] == "bad rack"
    assert error.to_json(ErrorCode.INVALID_PARAMETERS)["code"] == 5
    assert KindError("x", ErrorCode.CRASHED).to_json(5)["code"] == 9
