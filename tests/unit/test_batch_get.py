"""BatchGetItem: unprocessed keys are asked again with backoff, never dropped."""

from __future__ import annotations

from typing import Any

import pytest

from plumsms.adapters.dynamodb import sharding
from plumsms.domain.errors import StoreUnavailable

TABLE = "messages"


class ThrottledClient:
    """Answers each BatchGetItem with the first key only; the rest come back unprocessed."""

    def __init__(self, give_up_after: int | None = None) -> None:
        self.requests: list[list[str]] = []
        self.give_up_after = give_up_after

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        spec = RequestItems[TABLE]
        wanted = [key["PK"]["S"] for key in spec["Keys"]]
        self.requests.append(wanted)
        if self.give_up_after is not None and len(self.requests) > self.give_up_after:
            return {"Responses": {TABLE: []}, "UnprocessedKeys": RequestItems}
        first, rest = spec["Keys"][:1], spec["Keys"][1:]
        answer: dict[str, Any] = {"Responses": {TABLE: [dict(key) for key in first]}}
        if rest:
            answer["UnprocessedKeys"] = {TABLE: {**spec, "Keys": rest}}
        return answer


def test_unprocessed_keys_are_retried_with_growing_pauses() -> None:
    # GIVEN a table that processes one key per request
    client = ThrottledClient()
    pauses: list[float] = []
    rows = [{"PK": f"MSG#{i}", "SK": "MSG"} for i in range(3)]
    # WHEN three items are read
    found = sharding.batch_get(client, TABLE, rows, sleep=pauses.append)  # type: ignore[arg-type]
    # THEN every one comes back, the unprocessed ones asked again after a pause each
    assert set(found) == {(f"MSG#{i}", "MSG") for i in range(3)}
    assert client.requests == [["MSG#0", "MSG#1", "MSG#2"], ["MSG#1", "MSG#2"], ["MSG#2"]]
    assert len(pauses) == 2 and pauses[1] >= pauses[0] > 0


def test_keys_still_unprocessed_after_every_round_are_an_error() -> None:
    client = ThrottledClient(give_up_after=0)
    rows = [{"PK": "MSG#1", "SK": "MSG"}]
    with pytest.raises(StoreUnavailable, match="unprocessed"):
        sharding.batch_get(client, TABLE, rows, sleep=lambda _: None)  # type: ignore[arg-type]
    assert len(client.requests) == sharding.MAX_UNPROCESSED_ROUNDS
