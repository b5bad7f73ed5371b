"""Recovery of stale claims: messages a dispatcher holds past their ``check_after``.

Such a claim belongs to a dispatcher that died, or whose Plum call ended without an
answer (``maybe_sent``). Before anything is sent again, Plum's ``sms/messages`` list is
asked whether it went out: by our ``ref`` in its result URL, else by to/from/body in the
time window around the claim. Found means recorded (``queued``), not found means due
again (or failed, once every attempt is spent).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from plumsms.domain import segments
from plumsms.domain.phone import same_number
from plumsms.domain.plum import (
    PlumError,
    PlumGateway,
    PlumMessageQuery,
    PlumSmsResource,
    Unauthorized,
)
from plumsms.domain.sending import Claim
from plumsms.usecases.dispatch.outcomes import Outcomes
from plumsms.usecases.dispatch.run import DispatchConfig, Run
from plumsms.usecases.ports import Clock, DispatchOutbox

PLUM_PAGE = 1000
"""Messages asked of Plum's list per request."""


def ref_of(url: str | None) -> str | None:
    """Our message id carried in a result URL (its ``ref`` parameter), if any."""
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("ref")
    return values[0] if values else None


def same_body(theirs: str, ours: str) -> bool:
    """True when Plum's listed body is ours (Plum may list a long message as its parts)."""
    return theirs == ours or theirs in segments.split(ours)


@dataclass(frozen=True, slots=True)
class Recovery:
    """Reconciles stale claims with Plum at the start of every run."""

    outbox: DispatchOutbox
    outcomes: Outcomes
    config: DispatchConfig
    clock: Clock
    log: Any

    def recover(self, run: Run) -> None:
        """Take over and reconcile every stale claim while the run may claim."""
        now = self.clock()
        try:
            stale_claims = self.outbox.stale(now, self.config.stale_batch)
        except Exception:
            # The due messages do not depend on these: send them, recover next run.
            run.report.add("errors")
            self.log.exception("listing stale claims failed")
            return
        for stale in stale_claims:
            if not run.may_claim() or not run.plum_ready():
                return
            try:
                claim = self.outbox.take_over(
                    stale, uuid.uuid4().hex, now + self.config.stale_after
                )
                if claim is not None:
                    self._reconcile(run, claim)
            except Exception:
                run.report.add("errors")
                self.log.exception(
                    "reconciling a claim failed", extra={"message_id": stale.message.id}
                )

    def _reconcile(self, run: Run, claim: Claim) -> None:
        now = self.clock()
        try:
            plum_ids = self.find_at_plum(run.plum, claim, now)
        except PlumError as exc:
            self.outcomes.check_later(run, claim, claim.attempts, exc)
            if isinstance(exc, Unauthorized):
                # Every other search would be refused too; the send path stops the same way.
                run.halt("unauthorized")
            return
        if plum_ids:
            run.report.add("reconciled")
            self.outcomes.sent(run, claim, plum_ids)
        elif claim.attempts >= self.config.max_attempts:
            self.outcomes.fail(run, claim, "not sent: Plum did not confirm it after every attempt")
        else:
            # Plum never got it: due again now.
            self.outcomes.retry_now(claim)
            run.report.add("resent")

    def find_at_plum(self, plum: PlumGateway, claim: Claim, now: datetime) -> list[str]:
        """Plum's ids for ``claim``'s message if Plum has it (by ref, else by content)."""
        message = claim.message
        claimed_at = claim.claimed_at or now
        slack = self.config.window_slack
        query = PlumMessageQuery(
            type="outbound",
            number=message.to,
            number_side="customer",
            start=claimed_at - slack,
            end=now + slack,
            sort="asc",
            limit=PLUM_PAGE,
        )
        listed: list[PlumSmsResource] = []
        while True:
            page = plum.messages(query)
            listed += page
            if len(page) < query.limit:
                break
            query = query.model_copy(update={"offset": query.offset + len(page)})
        by_ref = [r.sms_message_id for r in listed if ref_of(r.result_url) == message.id]
        if by_ref:
            return by_ref
        for resource in listed:
            ref = ref_of(resource.result_url)
            if (
                ref is None  # a listed ref of ours was matched above; another's is theirs
                and same_number(resource.to, message.to)
                and same_number(resource.from_, message.from_)
                and same_body(resource.body, message.body)
                and not self.outbox.known_plum_id(resource.sms_message_id)
            ):
                return [resource.sms_message_id]
        return []
