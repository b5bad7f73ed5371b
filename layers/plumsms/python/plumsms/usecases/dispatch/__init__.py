"""The dispatcher: send every due message exactly once, under a per-sender rate limit.

One run (an EventBridge tick, or a direct call for a send due now) at a time: a run
takes the dispatcher's lease first. One that finds it held leaves the holder a request
for one more pass and ends (``coalesced``); the holder makes that pass before letting
go. So one run sends at any moment, at ``concurrency`` sends in flight, and no two runs
race for the same due messages. The holder:

1. Reconcile stale claims: a message held in ``sending`` past its ``check_after``
   belongs to a dispatcher that died, or whose Plum call ended without an answer
   (``maybe_sent``). Plum's ``sms/messages`` list is asked whether it went out (by our
   ``ref`` in its result URL, else by to/from/body in the time window) before anything
   is sent again: found means recorded, not found means due again.
2. Page through the ``Due`` index, oldest first, queued per sender (the next page is
   read as soon as a sender with slots runs dry). One sender at a time, each in due
   order: skip (``suppressed``) if the recipient opted out; book the sender's next
   rate-limit slot (so each sender's sends reach Plum evenly paced); claim it with a
   conditional update (two dispatchers never both win); at its slot, call Plum's
   ``sms/queue`` with the result URL ``.../plum/status?key=...&ref=<id>``; record
   Plum's id (``queued``). Sends run on a thread pool; no slot is booked past the
   Lambda's remaining time less ``stop_margin``, so no claim is abandoned by a timeout.
   A run that will stop with messages still due starts the next run a few seconds
   before it stops claiming (the hand-over); that run waits for the lease and takes it
   the moment this one lets go, so a campaign neither idles until the next tick nor
   leaves a gap in any sender's pace.
3. Errors: transient ones retry later with exponential backoff and jitter, up to
   ``max_attempts``, then ``failed``; permanent ones are ``failed`` with Plum's reason;
   Plum's unsubscribed-recipient error also records a local opt-out and suppresses
   that number's pending messages; refused credentials stop the run (nothing is
   counted against the messages). A store error is one message's problem: it is
   counted (``errors``) and the run goes on with the next one.
4. Plum's credentials are read only when a message is to be sent or a stale claim
   checked: a run with nothing to do never needs them. Unset credentials (a fresh
   deploy) stop the run before any claim (``stopped`` ``not_configured``): the
   messages stay due, nothing is failed.

Every final status the dispatcher writes (``failed``, ``suppressed``) goes to the
change publisher, as Plum's callbacks do for the statuses after ``queued``.

A recurring message's next occurrence is created (with a derived id, so at most once)
when the current one is sent or has failed for good.

The package, one concern a module: ``run`` (tuning, report, the state a run's threads
share), ``loop`` (the lease, claiming, sending, the hand-over), ``feed`` (the due messages
queued per sender), ``pacing`` (the rate limit), ``outcomes``
(what a claim becomes once Plum answered), ``recovery`` (stale claims). Its ports
(``DispatchOutbox``, ``Pacer``, ``SlotBook``, ``RunLease``) are in
``plumsms.usecases.ports``; its wiring in ``plumsms.bootstrap``.
"""

from __future__ import annotations

from plumsms.usecases.dispatch.loop import Dispatcher
from plumsms.usecases.dispatch.outcomes import PLUM_OPT_OUT_KEYWORD
from plumsms.usecases.dispatch.pacing import BookingLead, RateLimiter, SharedPacer
from plumsms.usecases.dispatch.run import (
    COALESCED,
    NOT_CONFIGURED,
    DispatchConfig,
    DispatchReport,
)

__all__ = [
    "COALESCED",
    "NOT_CONFIGURED",
    "PLUM_OPT_OUT_KEYWORD",
    "BookingLead",
    "DispatchConfig",
    "DispatchReport",
    "Dispatcher",
    "RateLimiter",
    "SharedPacer",
]
