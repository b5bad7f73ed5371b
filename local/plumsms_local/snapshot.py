"""``LOCAL_DATA_FILE``: the local stack's data kept in one JSON file between runs.

The file holds every item of the table in DynamoDB's own JSON shape (the one
``ExportTableToPointInTime`` writes: Binary values base64 encoded, numbers as strings),
and the stack's generated secrets, so the API token and the webhook key (which stored
Result URLs carry) stay the same from one run to the next.

Writes are atomic: the snapshot goes to a temporary file beside the target, is flushed
to disk, then renamed over it, so a crash in the middle of a save leaves the previous
file whole. ``PeriodicSaver`` saves every few seconds, so a killed stack loses at most
one interval of data; a clean stop saves once more.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("plumsms.local.snapshot")

FORMAT_VERSION = 2
DEFAULT_SAVE_INTERVAL = 3.0
"""Seconds between saves (``LOCAL_SAVE_INTERVAL_SECONDS``): what a kill can lose at most."""

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]


class SnapshotError(Exception):
    """The data file cannot be read (the message says which file and why)."""


@dataclass
class Snapshot:
    """What the data file holds."""

    items: list[Item] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)


# -- attribute values <-> JSON -------------------------------------------------------------


def encode_value(value: AttributeValue) -> Any:
    """One low-level attribute value as JSON (Binary values base64 encoded)."""
    (kind, data), *rest = value.items()
    if rest:
        raise ValueError(f"an attribute value has one type, not {sorted(value)}")
    if kind == "B":
        return {"B": base64.b64encode(bytes(data)).decode("ascii")}
    if kind == "BS":
        return {"BS": [base64.b64encode(bytes(b)).decode("ascii") for b in data]}
    if kind == "M":
        return {"M": {k: encode_value(v) for k, v in data.items()}}
    if kind == "L":
        return {"L": [encode_value(v) for v in data]}
    return {kind: data}  # S, N, SS, NS, BOOL, NULL are JSON already


def decode_value(value: Any) -> AttributeValue:
    """The inverse of ``encode_value``."""
    (kind, data), *rest = value.items()
    if rest:
        raise ValueError(f"an attribute value has one type, not {sorted(value)}")
    if kind == "B":
        return {"B": base64.b64decode(data)}
    if kind == "BS":
        return {"BS": [base64.b64decode(b) for b in data]}
    if kind == "M":
        return {"M": {k: decode_value(v) for k, v in data.items()}}
    if kind == "L":
        return {"L": [decode_value(v) for v in data]}
    return {kind: data}


def encode_item(item: Item) -> dict[str, Any]:
    """An item as JSON."""
    return {name: encode_value(value) for name, value in item.items()}


def decode_item(data: dict[str, Any]) -> Item:
    """An item from JSON."""
    return {name: decode_value(value) for name, value in data.items()}


# -- the file --------------------------------------------------------------------------------


def dumps(snapshot: Snapshot) -> bytes:
    """The file's bytes for ``snapshot``."""
    document = {
        "format": FORMAT_VERSION,
        "secrets": snapshot.secrets,
        "items": [encode_item(item) for item in snapshot.items],
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def read(path: Path) -> Snapshot:
    """Read ``path``; an empty snapshot if it does not exist."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Snapshot()
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        document = json.loads(raw)
        if isinstance(document, list):  # the first format: a bare list of items
            return Snapshot(items=[decode_item(i) for i in document])
        return Snapshot(
            items=[decode_item(i) for i in document.get("items", [])],
            secrets={str(k): str(v) for k, v in (document.get("secrets") or {}).items()},
        )
    except (ValueError, AttributeError, TypeError) as exc:
        raise SnapshotError(f"{path}: not a plumsms data file ({exc})") from exc


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one rename; on any failure the old file stays."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o600)  # it holds the local API token and webhook key
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


# -- the table -------------------------------------------------------------------------------


def scan_items(client: Any, table_name: str) -> list[Item]:
    """Every item of the table (a developer convenience; the product never scans)."""
    items: list[Item] = []
    for page in client.get_paginator("scan").paginate(TableName=table_name, ConsistentRead=True):
        items.extend(page["Items"])
    return items


def put_items(client: Any, table_name: str, items: list[Item]) -> None:
    """Write ``items`` with BatchWriteItem, retrying unprocessed ones."""
    for start in range(0, len(items), 25):
        chunk = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        request: dict[str, Any] = {table_name: chunk}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


class PeriodicSaver:
    """Saves the table and the secrets to ``path`` every ``interval`` seconds.

    A save whose bytes equal the last one written is skipped, so an idle stack does not
    rewrite the file. ``save()`` may also be called directly (the final save at exit).
    """

    def __init__(
        self,
        path: Path,
        collect: Callable[[], Snapshot],
        interval: float = DEFAULT_SAVE_INTERVAL,
    ) -> None:
        self.path = path
        self.collect = collect
        self.interval = interval
        self._last: bytes | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="snapshot", daemon=True)

    def save(self) -> bool:
        """Save now; True if the file was written."""
        with self._lock:
            snapshot = self.collect()
            data = dumps(snapshot)
            if data == self._last:
                return False
            write_atomically(self.path, data)
            self._last = data
            log.debug("saved %d items to %s", len(snapshot.items), self.path)
            return True

    def start(self) -> PeriodicSaver:
        """Save in the background every interval."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the background saves (call ``save()`` for a last one)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.save()
            except Exception:
                # The next interval tries again; the previous file is still whole.
                log.exception("saving %s failed", self.path)
