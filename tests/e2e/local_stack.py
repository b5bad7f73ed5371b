"""Start ``plumsms-local`` as a person's ``make run`` does: this Python, from the checkout,
with none of the bundle's own settings inherited from the test process."""

from __future__ import annotations

import os
import subprocess
import sys

from plumsms_local.template import PROJECT_ROOT

INHERITED_SETTINGS = (
    "API_TOKEN",
    "WEBHOOK_KEY",
    "SMS_NUMBERS",
    "RULES_FILE",
    "SMSCTL_URL",
    "SMSCTL_SIM_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "PLUM_API_URL",
    "LOG_LEVEL",
)
"""Variables a test run may carry that would point the stack elsewhere or change it."""


def stack_env(**variables: str) -> dict[str, str]:
    """This process's environment less ``INHERITED_SETTINGS``, plus ``variables``."""
    env = {name: value for name, value in os.environ.items() if name not in INHERITED_SETTINGS}
    return env | {"PYTHONUNBUFFERED": "1"} | variables


def spawn_stack(env: dict[str, str], *args: str, quiet: bool = False) -> subprocess.Popen[str]:
    """``python -m plumsms_local.stack ARGS``; its output on ``stdout`` (merged), or
    discarded when ``quiet``."""
    output = subprocess.DEVNULL if quiet else subprocess.PIPE
    return subprocess.Popen(
        [sys.executable, "-m", "plumsms_local.stack", *args],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.DEVNULL if quiet else subprocess.STDOUT,
        text=True,
    )
