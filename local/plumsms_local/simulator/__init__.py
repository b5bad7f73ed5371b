"""A local simulator of Plum DEV's SMS platform (never deployed).

Plum's REST API under ``/ws/``, simulated phones and admin routes under ``/sim/``;
see ``docs/simulator.md``.
"""

from __future__ import annotations

from plumsms_local.simulator.client import SimulatorClient, SimulatorError
from plumsms_local.simulator.config import Delays, Faults, SimulatorConfig
from plumsms_local.simulator.engine import Simulator
from plumsms_local.simulator.server import PlumSimulator

__all__ = [
    "Delays",
    "Faults",
    "PlumSimulator",
    "Simulator",
    "SimulatorClient",
    "SimulatorConfig",
    "SimulatorError",
]
