"""``python -m plumsms_local.simulator``: serve the Plum DEV simulator until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from plumsms.domain.errors import ConfigurationError
from plumsms_local.simulator.config import SimulatorConfig
from plumsms_local.simulator.server import PlumSimulator

DEFAULT_PORT = 8700
logger = logging.getLogger("plumsms_local.simulator")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, read the environment, serve; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m plumsms_local.simulator",
        description="Local simulator of Plum DEV's SMS API (configured by environment).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (8700; 0 = any)")
    parser.add_argument("--log-level", default="INFO", help="DEBUG shows numbers and bodies")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = SimulatorConfig.from_env()
    except ConfigurationError as exc:
        logger.error("bad configuration: %s", exc)
        return 2
    simulator = PlumSimulator(config, host=args.host, port=args.port)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    base_url = simulator.start()
    logger.info(
        "Plum API at %s/ws/ (user %s), admin at %s/sim/", base_url, config.username, base_url
    )
    try:
        stop.wait()
    finally:
        simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
