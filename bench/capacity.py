"""DynamoDB capacity by DynamoDB's own rules, computed from the items a client really wrote.

``CapacityMeter`` watches a boto3 DynamoDB client (botocore events). Around every write
it reads the touched items before and after (through a second, unwatched client) and
prices the write as DynamoDB documents it:

- item size: attribute names plus values (strings and binary by UTF-8 / byte length,
  numbers about one byte per two significant digits plus one, lists and maps 3 bytes
  plus 1 per element, booleans and nulls 1 byte);
- a write costs 1 WCU per started KB of the larger of the item before and after, at
  least 1; a conditional write that fails costs the same; a transaction costs twice;
- each global secondary index the item is in costs the same rule applied to its index
  entry (table key + index key + projected attributes + 100 bytes): an entry that
  appears is a put, one that disappears a delete, one whose index key changes a delete
  plus a put, one whose projected attributes change an update, and an entry that does
  not change costs nothing;
- reads cost 1 RCU per started 4 KB, halved when eventually consistent: a GetItem by
  the item's size, a BatchGetItem item by item, a Query by the sum of the rows it
  read (index entries for an index), at least 0.5 each.

Beside each write the meter keeps its floor: the same requests against a table without
indexes (base item WCU only, a transaction priced as plain writes). The read floor of a
listing is ``floor_read`` of the items the caller got: one eventually consistent Query
of the base table returning exactly them. Index Queries and BatchGetItem add nothing
to a floor; a GetItem is its own floor.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

KB = 1024
READ_UNIT = 4 * KB
INDEX_ENTRY_OVERHEAD = 100
WRITE_OPERATIONS = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"}
Raw = dict[str, Any]


# -- sizes -------------------------------------------------------------------------------


def number_size(text: str) -> int:
    """Bytes of a DynamoDB number: about one per two significant digits, plus one."""
    digits = str(Decimal(text).normalize()).lstrip("-").replace(".", "").lstrip("0")
    digits = digits.split("E")[0] if "E" in digits else digits
    return math.ceil(max(len(digits), 1) / 2) + 1


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one attribute value in DynamoDB's wire form (``{"S": ...}`` etc.)."""
    [(kind, data)] = value.items()
    if kind == "S":
        return len(str(data).encode("utf-8"))
    if kind == "N":
        return number_size(str(data))
    if kind == "B":
        return len(data)
    if kind in {"BOOL", "NULL"}:
        return 1
    if kind == "SS":
        return sum(len(s.encode("utf-8")) for s in data)
    if kind == "NS":
        return sum(number_size(n) for n in data)
    if kind == "BS":
        return sum(len(b) for b in data)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + value_size(v) for k, v in data.items())
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: Mapping[str, Any]) -> int:
    """Bytes of an item: every attribute's name and value."""
    return sum(len(name.encode("utf-8")) + value_size(v) for name, v in item.items())


def write_units(size: int) -> int:
    """WCU of writing ``size`` bytes: one per started KB, at least one."""
    return max(1, math.ceil(size / KB))


def read_units(size: int, consistent: bool = False) -> float:
    """RCU of reading ``size`` bytes in one request: per started 4 KB, halved if eventual."""
    units = max(1, math.ceil(size / READ_UNIT))
    return units if consistent else units / 2


# -- the table ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Index:
    """A global secondary index as the template declares it."""

    name: str
    key: tuple[str, ...]
    projection: str
    included: tuple[str, ...] = ()

    def entry(self, item: Raw | None, table_key: tuple[str, ...]) -> Raw | None:
        """The index entry of ``item`` (None when the item is not in this sparse index)."""
        if item is None or any(attr not in item for attr in self.key):
            return None
        if self.projection == "ALL":
            return dict(item)
        names = set(table_key) | set(self.key)
        if self.projection == "INCLUDE":
            names |= set(self.included)
        return {k: v for k, v in item.items() if k in names}

    def entry_size(self, entry: Raw) -> int:
        return item_size(entry) + INDEX_ENTRY_OVERHEAD


@dataclass(frozen=True, slots=True)
class Table:
    """The key schema and indexes, from ``template.yaml``'s ``CreateTable`` arguments."""

    key: tuple[str, ...]
    indexes: tuple[Index, ...]

    @classmethod
    def from_definition(cls, definition: Mapping[str, Any]) -> Table:
        indexes = tuple(
            Index(
                name=gsi["IndexName"],
                key=tuple(k["AttributeName"] for k in gsi["KeySchema"]),
                projection=gsi["Projection"]["ProjectionType"],
                included=tuple(gsi["Projection"].get("NonKeyAttributes", [])),
            )
            for gsi in definition.get("GlobalSecondaryIndexes", [])
        )
        return cls(tuple(k["AttributeName"] for k in definition["KeySchema"]), indexes)

    def index(self, name: str) -> Index:
        return next(i for i in self.indexes if i.name == name)

    def index_writes(self, before: Raw | None, after: Raw | None) -> dict[str, int]:
        """WCU per index for an item going from ``before`` to ``after``."""
        costs: dict[str, int] = {}
        for index in self.indexes:
            old, new = index.entry(before, self.key), index.entry(after, self.key)
            units = 0
            if old is None and new is not None:
                units = write_units(index.entry_size(new))
            elif old is not None and new is None:
                units = write_units(index.entry_size(old))
            elif old is not None and new is not None and old != new:
                if any(old.get(k) != new.get(k) for k in index.key):
                    units = write_units(index.entry_size(old)) + write_units(index.entry_size(new))
                else:
                    units = write_units(max(index.entry_size(old), index.entry_size(new)))
            if units:
                costs[index.name] = units
        return costs


# -- the meter ----------------------------------------------------------------------------


@dataclass
class Cost:
    """Capacity one operation consumed, with its base-table-only floor."""

    wcu: float = 0
    rcu: float = 0
    floor_wcu: float = 0
    floor_rcu: float = 0
    all_wcu: float = 0
    """The same writes if every index projected ALL (the design this one replaced)."""
    writes_by: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    """WCU by where they went: ``base`` or an index name."""
    reads_by: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    requests: Counter[str] = field(default_factory=Counter)

    def add(self, other: Cost) -> None:
        self.wcu += other.wcu
        self.rcu += other.rcu
        self.floor_wcu += other.floor_wcu
        self.floor_rcu += other.floor_rcu
        self.all_wcu += other.all_wcu
        for name, units in other.writes_by.items():
            self.writes_by[name] += units
        for name, units in other.reads_by.items():
            self.reads_by[name] += units
        self.requests.update(other.requests)

    def describe(self) -> str:
        """Where the units went, e.g. ``WCU base 2, ByStatus 2; UpdateItem x1``."""
        parts = []
        for unit, spent in (("WCU", self.writes_by), ("RCU", self.reads_by)):
            if spent:
                parts.append(unit + " " + ", ".join(f"{n} {u:g}" for n, u in sorted(spent.items())))
        parts.append(", ".join(f"{n} x{c}" for n, c in sorted(self.requests.items())))
        return "; ".join(parts)


class CapacityMeter:
    """Prices every request a watched client makes; ``measure()`` scopes an operation."""

    def __init__(self, table: Table, table_name: str, raw_client: Any) -> None:
        self.table = table
        self.all_projected = Table(
            table.key, tuple(replace(i, projection="ALL", included=()) for i in table.indexes)
        )
        self.table_name = table_name
        self._raw = raw_client
        self._lock = threading.Lock()
        self._current: Cost | None = None

    def watch(self, client: Any) -> None:
        """Price every call ``client`` makes from now on."""
        events = client.meta.events
        events.register("provide-client-params.dynamodb.*", self._before)
        events.register("after-call.dynamodb.*", self._after)

    @contextmanager
    def measure(self) -> Iterator[Cost]:
        """The cost of what runs inside the block."""
        cost = Cost()
        with self._lock:
            self._current = cost
        try:
            yield cost
        finally:
            with self._lock:
                self._current = None

    # -- event handlers --------------------------------------------------------------

    def _get(self, key: Raw) -> Raw | None:
        found = self._raw.get_item(TableName=self.table_name, Key=key, ConsistentRead=True)
        item: Raw | None = found.get("Item")
        return item

    def _key_of(self, item: Raw) -> Raw:
        return {k: item[k] for k in self.table.key}

    def _written_keys(self, name: str, params: Raw) -> list[tuple[Raw, Raw | None]]:
        """(key, new item for a put) of each item a write request touches."""
        if name == "PutItem":
            return [(self._key_of(params["Item"]), params["Item"])]
        if name in {"UpdateItem", "DeleteItem"}:
            return [(params["Key"], None)]
        touched = []
        for action in params.get("TransactItems", []):
            [(kind, spec)] = action.items()
            if kind == "Put":
                touched.append((self._key_of(spec["Item"]), spec["Item"]))
            elif kind in {"Update", "Delete"}:
                touched.append((spec["Key"], None))
        return touched

    def _before(self, params: Raw, model: Any, context: Raw, **_: Any) -> None:
        if self._current is None:
            return
        context["capacity_cost"] = self._current
        if model.name in WRITE_OPERATIONS:
            touched = self._written_keys(model.name, params)
            context["capacity_writes"] = [(key, new, self._get(key)) for key, new in touched]
        context["capacity_params"] = params

    def _after(self, parsed: Raw, model: Any, context: Raw, **_: Any) -> None:
        cost: Cost | None = context.get("capacity_cost")
        if cost is None:
            return
        name = model.name
        params: Raw = context["capacity_params"]
        priced = Cost()
        priced.requests[name] += 1
        failed = "Error" in parsed and parsed["Error"].get("Code")
        if name in WRITE_OPERATIONS:
            self._price_writes(priced, context["capacity_writes"], bool(failed), name)
        elif name == "GetItem":
            size = item_size(parsed.get("Item") or {})
            units = read_units(size, bool(params.get("ConsistentRead")))
            priced.rcu += units
            priced.reads_by["base"] += units
            priced.floor_rcu += read_units(size)
        elif name == "BatchGetItem":
            self._price_batch_get(priced, params, parsed)
        elif name == "Query":
            self._price_query(priced, params, parsed)
        with self._lock:
            cost.add(priced)

    def _price_writes(
        self,
        priced: Cost,
        writes: list[tuple[Raw, Raw | None, Raw | None]],
        failed: bool,
        name: str,
    ) -> None:
        factor = 2 if name == "TransactWriteItems" else 1
        for key, new, before in writes:
            if failed:
                # A failed condition still reads and charges the item; nothing is written.
                size = item_size(before or new or key)
                priced.wcu += factor * write_units(size)
                priced.floor_wcu += write_units(size)
                priced.all_wcu += factor * write_units(size)
                priced.writes_by["base"] += factor * write_units(size)
                continue
            after = self._get(key)
            size = max(item_size(before or {}), item_size(after or {}))
            units = write_units(size)
            priced.wcu += factor * units
            priced.floor_wcu += units
            priced.writes_by["base"] += factor * units
            for index, index_units in self.table.index_writes(before, after).items():
                priced.wcu += factor * index_units
                priced.writes_by[index] += factor * index_units
            everything = self.all_projected.index_writes(before, after).values()
            priced.all_wcu += factor * (units + sum(everything))

    def _price_batch_get(self, priced: Cost, params: Raw, parsed: Raw) -> None:
        spec = params["RequestItems"].get(self.table_name, {})
        consistent = bool(spec.get("ConsistentRead"))
        asked = len(spec.get("Keys", []))
        got = parsed.get("Responses", {}).get(self.table_name, [])
        left = len(parsed.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys", []))
        for row in got:
            # A projection does not make a read cheaper: the whole item is charged.
            item = self._get(self._key_of(row)) or row
            size = item_size(item)
            priced.rcu += read_units(size, consistent)
            priced.reads_by["base"] += read_units(size, consistent)
        missing = max(0, asked - len(got) - left)
        priced.rcu += missing * read_units(0, consistent)
        priced.reads_by["base"] += missing * read_units(0, consistent)

    def _price_query(self, priced: Cost, params: Raw, parsed: Raw) -> None:
        index_name = params.get("IndexName")
        rows: list[Raw] = parsed.get("Items", [])
        sizes = []
        for row in rows:
            item = self._get(self._key_of(row)) or row
            if index_name:
                entry = self.table.index(index_name).entry(item, self.table.key) or row
                sizes.append(self.table.index(index_name).entry_size(entry))
            else:
                sizes.append(item_size(item))
        scanned = int(parsed.get("ScannedCount", len(rows)))
        total = sum(sizes)
        if rows and scanned > len(rows):
            # Rows a filter dropped were read too: priced at the average row's size.
            total += (scanned - len(rows)) * total // len(rows)
        units = read_units(total, bool(params.get("ConsistentRead")))
        priced.rcu += units
        priced.reads_by[index_name or "base"] += units


def floor_read(items: Iterable[Raw]) -> float:
    """RCU of reading ``items`` from the base table alone, in one eventually consistent Query."""
    return read_units(sum(item_size(i) for i in items))
