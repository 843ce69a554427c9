"""The kind process: `python -m {{name}}_kind` (the daemon runs it as
villas-kind.toml says) serves simulator/{{name}} on stdin and stdout."""

from villas_kind import serve

from . import __version__
from .kind import SimulatorKind


def main() -> int:
    return serve([SimulatorKind()], name="{{name}}", version=__version__)


if __name__ == "__main__":
    raise SystemExit(main())
