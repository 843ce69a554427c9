"""The Python template and what the daemon's binary embeds of python/.

A project generated from the template (as `villas-controller kind new NAME
--lang python` does, by the rules of embedded-files.txt) passes its own
tests as generated, in a virtual environment of its own with the SDK
installed offline from the embedded files (as `kind install` does), and
type-checks strictly.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import villas_kind

PYTHON = Path(__file__).resolve().parents[1]
EMBEDDED = PYTHON / "embedded-files.txt"

#: What NAME may be (embedded-files.txt).
NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")

#: What is never part of the sources (caches, builds).
SCRATCH = {"__pycache__", ".mypy_cache", ".pytest_cache", "build", "dist"}


def embedded() -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in EMBEDDED.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
        else:
            assert current is not None, f"{line} before a section"
            current.append(line)
    return sections


def files_under(directory: Path) -> set[str]:
    return {
        path.relative_to(PYTHON).as_posix()
        for path in directory.rglob("*")
        if path.is_file() and not SCRATCH & set(path.relative_to(directory).parts) and not path.name.endswith(".egg-info")
    }


def generate(name: str, into: Path) -> Path:
    """Writes the template for ``name`` into ``into/name``: the daemon's rules."""
    if not NAME.fullmatch(name):
        raise ValueError(f"a kind's name must match {NAME.pattern}, not {name!r}")
    project = into / name
    for listed in embedded()["template"]:
        relative = listed.removeprefix("template/").replace("{{name}}", name)
        target = project / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text((PYTHON / listed).read_text().replace("{{name}}", name))
    return project


#: Prints the installed version of each distribution named in argv.
VERSIONS = "import sys, importlib.metadata as m; print(*(m.version(d) for d in sys.argv[1:]))"


def run(argv: list[str | os.PathLike[str]], cwd: Path | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{argv} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_embedded_lists_are_every_file() -> None:
    lists = embedded()
    assert set(lists) == {"sdk", "template"}
    sdk = files_under(PYTHON / "villas-kind")
    needed = {f for f in sdk if f.startswith(("villas-kind/src/", "villas-kind/build_backend/"))}
    needed |= {"villas-kind/pyproject.toml", "villas-kind/README.md"}
    assert sorted(lists["sdk"]) == sorted(needed)
    assert sorted(lists["template"]) == sorted(files_under(PYTHON / "template"))


def test_names_that_are_no_package_are_refused(tmp_path: Path) -> None:
    for bad in ("Clock", "my-clock", "1clock", "", "x" * 65, "clock/../x", "ça"):
        with pytest.raises(ValueError):
            generate(bad, tmp_path)
    # Keywords and standard-library names are fine: the package is NAME_kind.
    for fine in ("class", "json", "tests"):
        assert (generate(fine, tmp_path) / f"{fine}_kind" / "kind.py").exists()


def test_the_template_depends_on_a_range_this_sdk_is_in() -> None:
    text = (PYTHON / "template" / "pyproject.toml").read_text()
    match = re.search(r'"villas-kind>=(\d+)\.(\d+),<(\d+)\.(\d+)"', text)
    assert match is not None
    low, high = (int(match[1]), int(match[2])), (int(match[3]), int(match[4]))
    major, minor, _ = villas_kind.protocol.parse_version(villas_kind.SDK_VERSION)
    # The compatibility rule's range for this SDK: 0.y admits 0.y only, x.y all x.y' >= y.
    assert (low, high) == (((0, minor), (0, minor + 1)) if major == 0 else ((major, minor), (major + 1, 0)))


def test_a_generated_project_passes_its_tests_as_generated(tmp_path: Path) -> None:
    project = generate("tmplcheck", tmp_path)
    assert (project / "tmplcheck_kind" / "__main__.py").exists()
    assert "{{name}}" not in "".join(p.read_text() for p in project.rglob("*") if p.is_file())

    # The kind's own environment, as `kind install` makes it: the SDK from the
    # embedded files alone, with no registry; then the project, whose
    # dependency the SDK satisfies. (This environment's pip does the work,
    # which spares the new environment a pip of its own.)
    sdk = tmp_path / "sdk"
    for listed in embedded()["sdk"]:
        target = sdk / listed.removeprefix("villas-kind/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PYTHON / listed, target)
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    pip: list[str | os.PathLike[str]] = [sys.executable, "-m", "pip", "--python", python]
    run([*pip, "install", "-q", "--no-index", sdk])
    wheels = tmp_path / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels, project])
    (wheel,) = wheels.glob("tmplcheck_kind-0.1.0-*.whl")
    run([*pip, "install", "-q", wheel, "pytest"])  # pytest from a registry
    versions = run([python, "-c", VERSIONS, "villas-kind", "tmplcheck-kind"])
    assert versions.split() == [villas_kind.SDK_VERSION, "0.1.0"]

    tested = run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project)
    assert re.search(r"\b4 passed\b", tested), tested

    # Strict typing, with this environment's mypy and SDK (and its cache, if
    # MYPY_CACHE_DIR names one).
    run([sys.executable, "-m", "mypy"], cwd=project)
