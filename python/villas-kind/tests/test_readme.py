"""The README's example kind and its test run as written (and type-check)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)


def test_the_example_kind_passes_the_example_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kind, test = python_blocks()
    assert "class ClockKind(Kind)" in kind and "def test_ticks_while_running" in test
    (tmp_path / "clock.py").write_text(kind)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(test, "README.md", "exec"), namespace)
    run = namespace["test_ticks_while_running"]
    assert callable(run)
    run()


def test_the_examples_type_check_strictly(tmp_path: Path) -> None:
    kind, test = python_blocks()
    (tmp_path / "clock.py").write_text(kind)
    (tmp_path / "test_clock.py").write_text(test)
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "clock.py", "test_clock.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
