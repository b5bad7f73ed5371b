"""The running stack's address card: ``make run`` writes it, ``smsctl`` reads it.

``make run`` writes the URLs it serves, the API token and the SMS numbers to
``.local-data/stack.json`` in the checkout (``LOCAL_STATE_FILE`` moves it) and removes
it when it stops, so ``smsctl`` finds the stack whatever ``PORT`` and ``SIM_PORT`` were.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from plumsms_local.snapshot import write_atomically
from plumsms_local.template import PROJECT_ROOT

STATE_FILE_VARIABLE = "LOCAL_STATE_FILE"
DEFAULT_STATE_FILE = PROJECT_ROOT / ".local-data" / "stack.json"


@dataclass
class StackState:
    """What smsctl needs to talk to a running local stack."""

    api_url: str
    api_token: str
    sim_url: str | None = None
    sms_numbers: list[str] = field(default_factory=list)
    pid: int = 0


def state_file(env: Mapping[str, str] | None = None) -> Path:
    """Where the state file lives (``LOCAL_STATE_FILE``, else ``.local-data/stack.json``)."""
    env = os.environ if env is None else env
    raw = env.get(STATE_FILE_VARIABLE)
    return Path(raw) if raw else DEFAULT_STATE_FILE


def write(state: StackState, path: Path) -> None:
    """Write the state file (mode 600: it holds the API token)."""
    write_atomically(path, json.dumps(asdict(state), indent=2).encode() + b"\n")


def read(path: Path) -> StackState | None:
    """The state file's contents; None if it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return StackState(
            api_url=str(data["api_url"]),
            api_token=str(data["api_token"]),
            sim_url=str(data["sim_url"]) if data.get("sim_url") else None,
            sms_numbers=[str(n) for n in data.get("sms_numbers") or []],
            pid=int(data.get("pid") or 0),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove(path: Path, pid: int) -> None:
    """Remove the state file if it is still the one process ``pid`` wrote."""
    current = read(path)
    if current is not None and current.pid == pid:
        path.unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a state file outlives a killed stack)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
