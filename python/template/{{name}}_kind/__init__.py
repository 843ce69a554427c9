"""simulator/{{name}}: a kind for VILLAScontroller, served by its own process
(`python -m {{name}}_kind`)."""

from .kind import Simulator, SimulatorKind

__version__ = "0.1.0"

__all__ = ["Simulator", "SimulatorKind", "__version__"]
