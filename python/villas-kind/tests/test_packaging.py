"""Packaging: the SDK's version is the Rust SDK's, and the in-tree backend
builds a complete wheel and sdist with the standard library alone."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import re
import sys
import tarfile
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

import villas_kind

PROJECT = Path(__file__).resolve().parents[1]
REPOSITORY = PROJECT.parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def backend() -> ModuleType:
    spec = importlib.util.spec_from_file_location("villas_kind_build", PROJECT / "build_backend" / "villas_kind_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_versions_move_in_lock_step() -> None:
    with open(PROJECT / "pyproject.toml", "rb") as file:
        python = tomllib.load(file)["project"]["version"]
    cargo = (REPOSITORY / "Cargo.toml").read_text()
    workspace = cargo[cargo.index("[workspace.package]") :]
    match = re.search(r'^version = "([^"]+)"', workspace, re.MULTILINE)
    assert match is not None
    assert python == villas_kind.SDK_VERSION == villas_kind.__version__ == match[1]


def test_the_wheel_holds_the_package_and_true_metadata(tmp_path: Path) -> None:
    name = backend().build_wheel(str(tmp_path))
    assert name == f"villas_kind-{villas_kind.SDK_VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(tmp_path / name) as wheel:
        names = set(wheel.namelist())
        package = {
            p.relative_to(PROJECT / "src").as_posix()
            for p in (PROJECT / "src" / "villas_kind").iterdir()
            if p.is_file() and p.suffix in (".py", ".typed")
        }
        dist_info = f"villas_kind-{villas_kind.SDK_VERSION}.dist-info"
        assert names == package | {f"{dist_info}/{f}" for f in ("METADATA", "WHEEL", "RECORD")}
        assert "villas_kind/py.typed" in names
        metadata = wheel.read(f"{dist_info}/METADATA").decode()
        for line in ("Name: villas-kind", f"Version: {villas_kind.SDK_VERSION}", "Requires-Python: >=3.10", "License: Apache-2.0"):
            assert line in metadata.splitlines()
        assert "## A kind" in metadata, "the README is the description"
        for row in wheel.read(f"{dist_info}/RECORD").decode().splitlines():
            path, digest, size = row.split(",")
            if path.endswith("RECORD"):
                continue
            data = wheel.read(path)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert (digest, int(size)) == (f"sha256={expected}", len(data)), path


def test_the_wheel_is_reproducible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    build = backend().build_wheel
    first = (tmp_path / "a" / build(str(tmp_path / "a"))).read_bytes()
    second = (tmp_path / "b" / build(str(tmp_path / "b"))).read_bytes()
    assert first == second


def test_the_sdist_builds_again(tmp_path: Path) -> None:
    name = backend().build_sdist(str(tmp_path))
    stem = f"villas_kind-{villas_kind.SDK_VERSION}"
    with tarfile.open(tmp_path / name) as sdist:
        names = set(sdist.getnames())
    for needed in ("pyproject.toml", "README.md", "PKG-INFO", "build_backend/villas_kind_build.py", "src/villas_kind/py.typed"):
        assert f"{stem}/{needed}" in names


def test_the_editable_wheel_points_at_the_source(tmp_path: Path) -> None:
    name = backend().build_editable(str(tmp_path))
    with zipfile.ZipFile(tmp_path / name) as wheel:
        (pth,) = [n for n in wheel.namelist() if n.endswith(".pth")]
        assert wheel.read(pth).decode().strip() == str(PROJECT / "src")
