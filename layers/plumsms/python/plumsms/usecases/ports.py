"""What the use cases need from the outside world, as Protocols (the adapters implement)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from plumsms.domain.guards import PeerState
from plumsms.domain.models import Message, OptOut


class InboundLog(Protocol):
    """The part of the message store the inbound flow uses."""

    def record_inbound(
        self,
        inbound: Message,
        replies: Sequence[Message],
        reply_xml: bytes,
        *,
        opt_out: OptOut | None = None,
        opt_in_number: str | None = None,
        peers: Sequence[PeerState] = (),
    ) -> None:
        """Store all of it atomically, or raise ``DuplicateInbound`` if seen before.

        ``peers`` are written conditional on the revision they were read at; a change in
        between raises ``ConcurrentUpdate`` and nothing is written.
        """

    def peer_states(self, numbers: Iterable[str]) -> dict[str, PeerState]:
        """Opt-out and reply counters of each of ``numbers`` (one batch read)."""

    def earlier_answer(self, message_id: str) -> bytes | None:
        """The XML answered when inbound ``message_id`` was first seen; None if never seen."""


class Clock(Protocol):
    """The current time (injected so tests can fix it)."""

    def __call__(self) -> datetime:
        """Timezone-aware UTC now."""
