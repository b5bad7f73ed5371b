"""Queries over the message log, independent of how the store serves them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from plumsms.domain.models import Message, MessageType, UtcDatetime
from plumsms.domain.paging import LogPosition
from plumsms.domain.phone import E164

MAX_PAGE_SIZE = 1000
SCHEDULED = "scheduled"
Sort = Literal["created_at", "send_at"]


SEND_AT_SORT_RULE = "send_at lists pending sends only: give status=scheduled and no other filter"


class MessageQuery(BaseModel):
    """Filters, order and page size for listing messages; ``after`` resumes a listing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    number: E164 | None = None
    type: MessageType | None = None
    status: str | None = Field(default=None, min_length=1, max_length=32)
    start: UtcDatetime | None = None
    end: UtcDatetime | None = None
    order: Literal["asc", "desc"] = "desc"
    sort: Sort = "created_at"
    """``send_at``: pending sends (status ``scheduled``, no other filter) by due time."""
    limit: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE)
    after: LogPosition | None = None
    """The position of the last item already returned."""

    @model_validator(mode="after")
    def _range(self) -> MessageQuery:
        if self.start and self.end and self.start > self.end:
            raise ValueError("start must not be after end")
        if self.sort == "send_at" and (
            self.status != SCHEDULED or self.number or self.type or self.start or self.end
        ):
            raise ValueError(SEND_AT_SORT_RULE)
        return self

    def filters(self) -> dict[str, str | None]:
        """The filter part (everything but position and size), to bind a cursor to it."""
        return {
            "number": self.number,
            "type": self.type.value if self.type else None,
            "status": self.status,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "order": self.order,
            # Only when asked for: cursors issued before sorting existed stay valid.
            **({"sort": self.sort} if self.sort != "created_at" else {}),
        }


@dataclass(frozen=True, slots=True)
class Page:
    """One page of messages and where the next page starts (None: no more)."""

    items: list[Message]
    next_position: LogPosition | None
    items_read: int = 0
    """How many items the store read to fill the page (for cost benchmarks)."""
