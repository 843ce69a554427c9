"""Fixtures: the probe kind process (tests/probe_kind.py), driven through its
stdin and stdout as the daemon drives it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from villas_kind.testing import KindProcess

HERE = Path(__file__).resolve().parent
PROBE = [sys.executable, str(HERE / "probe_kind.py")]


@pytest.fixture
def kind() -> Iterator[KindProcess]:
    """The probe kind process, handshake not done yet."""
    with KindProcess(PROBE, timeout=10.0) as process:
        yield process


@pytest.fixture
def probe(kind: KindProcess) -> KindProcess:
    """The probe kind process after its handshake."""
    kind.handshake()
    return kind
