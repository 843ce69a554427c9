"""The PEP 517 build backend of villas-kind (PEP 660 for editable installs):
the standard library only, so that pip installs the SDK from its source with
no registry at all (``pip install --no-index python/villas-kind``), as the
daemon's ``kind install`` does for every Python kind it installs.

It builds this one project: the package under ``src/villas_kind`` (pure
Python, ``py3-none-any``) with the metadata of ``pyproject.toml``'s
``[project]`` table; a key it does not know there is an error rather than
metadata silently left out. Archives are reproducible (entries sorted,
timestamps from ``SOURCE_DATE_EPOCH`` or 1980-01-01).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 gets tomli as a build requirement
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src"

#: The [project] keys this backend turns into metadata.
KNOWN_KEYS = {
    "name",
    "version",
    "description",
    "readme",
    "requires-python",
    "license",
    "keywords",
    "classifiers",
    "urls",
    "dependencies",
    "optional-dependencies",
}

#: What goes into the sdist besides the package.
SDIST_EXTRAS = ("pyproject.toml", "README.md", "build_backend", "tests")


def _project() -> dict[str, Any]:
    with open(ROOT / "pyproject.toml", "rb") as file:
        project: dict[str, Any] = tomllib.load(file)["project"]
    unknown = set(project) - KNOWN_KEYS
    if unknown:
        raise ValueError(f"villas_kind_build does not handle [project] keys {sorted(unknown)}")
    return project


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _metadata(project: dict[str, Any]) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
    ]
    if "description" in project:
        lines.append(f"Summary: {project['description']}")
    if "keywords" in project:
        lines.append(f"Keywords: {','.join(project['keywords'])}")
    license_ = project.get("license")
    if isinstance(license_, dict) and "text" in license_:
        lines.append(f"License: {license_['text']}")
    elif license_ is not None:
        raise ValueError("license must be {text = ...}")
    lines += [f"Classifier: {c}" for c in project.get("classifiers", [])]
    lines += [f"Project-URL: {label}, {url}" for label, url in project.get("urls", {}).items()]
    if "requires-python" in project:
        lines.append(f"Requires-Python: {project['requires-python']}")
    lines += [f"Requires-Dist: {r}" for r in project.get("dependencies", [])]
    for extra, requirements in project.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        for requirement in requirements:
            if ";" in requirement:
                raise ValueError(f"markers in optional dependencies are not handled: {requirement}")
            lines.append(f'Requires-Dist: {requirement}; extra == "{extra}"')
    body = ""
    if "readme" in project:
        if not isinstance(project["readme"], str) or not project["readme"].endswith(".md"):
            raise ValueError("readme must be the path of a Markdown file")
        lines.append("Description-Content-Type: text/markdown")
        body = (ROOT / project["readme"]).read_text(encoding="utf-8")
    return "\n".join(lines) + "\n\n" + body


def _stamp() -> int:
    """The archives' timestamp: ``SOURCE_DATE_EPOCH``, not before 1980 (zip's epoch)."""
    return max(int(os.environ.get("SOURCE_DATE_EPOCH", "315532800")), 315532800)


def _package_files() -> list[tuple[str, bytes]]:
    files = []
    for path in sorted((SOURCE / "villas_kind").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files.append((path.relative_to(SOURCE).as_posix(), path.read_bytes()))
    return files


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _write_wheel(wheel_directory: str, files: list[tuple[str, bytes]]) -> str:
    project = _project()
    stem = f"{_normalized(project['name'])}-{project['version']}"
    dist_info = f"{stem}.dist-info"
    files = files + [
        (f"{dist_info}/METADATA", _metadata(project).encode()),
        (
            f"{dist_info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: villas_kind_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
    ]
    record = [_record_line(name, data) for name, data in files] + [f"{dist_info}/RECORD,,"]
    files.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode()))
    filename = f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(Path(wheel_directory) / filename, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in files:
            entry = zipfile.ZipInfo(name, date_time=time.gmtime(_stamp())[:6])
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(entry, data)
    return filename


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    return []


def get_requires_for_build_sdist(config_settings: dict[str, Any] | None = None) -> list[str]:
    return []


def get_requires_for_build_editable(config_settings: dict[str, Any] | None = None) -> list[str]:
    return []


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    """The wheel: the package and its metadata."""
    return _write_wheel(wheel_directory, _package_files())


def build_editable(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    """An editable wheel: a ``.pth`` file that puts ``src`` on the path."""
    project = _project()
    pth = f"__editable__.{_normalized(project['name'])}-{project['version']}.pth"
    return _write_wheel(wheel_directory, [(pth, f"{SOURCE}\n".encode())])


def build_sdist(sdist_directory: str, config_settings: dict[str, Any] | None = None) -> str:
    """The source distribution: the project as it is in the repository."""
    project = _project()
    stem = f"{_normalized(project['name'])}-{project['version']}"
    paths = [ROOT / extra for extra in SDIST_EXTRAS] + [SOURCE]
    members: list[Path] = []
    for path in paths:
        if path.is_dir():
            members += [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        elif path.exists():
            members.append(path)
    filename = f"{stem}.tar.gz"
    with tarfile.open(Path(sdist_directory) / filename, "w:gz", format=tarfile.PAX_FORMAT) as sdist:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(f"{stem}/{name}")
            info.size, info.mtime, info.mode = len(data), _stamp(), 0o644
            sdist.addfile(info, io.BytesIO(data))

        for path in sorted(members):
            add(path.relative_to(ROOT).as_posix(), path.read_bytes())
        add("PKG-INFO", _metadata(project).encode())
    return filename
