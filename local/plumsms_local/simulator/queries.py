"""Turn ``sms/status``, ``sms/messages`` and ``sms/conversation`` query strings into filters.

The parameter names are inferred; they come from ``inferred.QUERY_PARAMS`` only.
"""

from __future__ import annotations

from collections.abc import Mapping

from plumsms.domain.errors import ValidationFailed
from plumsms.domain.phone import normalize
from plumsms_local.simulator import inferred
from plumsms_local.simulator.engine import PlumFailure
from plumsms_local.simulator.inferred import QUERY_PARAMS, FailureKind
from plumsms_local.simulator.state import MessageQuery


def _invalid(meaning: str, rule: str) -> PlumFailure:
    name = QUERY_PARAMS[meaning]
    return PlumFailure(
        FailureKind.BAD_REQUEST, inferred.INVALID_PARAMETER_TEMPLATE.format(name=name, rule=rule)
    )


def _integer(params: Mapping[str, str], meaning: str, low: int, high: int | None) -> int | None:
    raw = params.get(QUERY_PARAMS[meaning], "").strip()
    if not raw:
        return None
    rule = f"a whole number from {low}" + (f" to {high}" if high is not None else "")
    try:
        value = int(raw)
    except ValueError as exc:
        raise _invalid(meaning, rule) from exc
    if value < low or (high is not None and value > high):
        raise _invalid(meaning, rule)
    return value


def _choice(params: Mapping[str, str], meaning: str, choices: tuple[str, ...]) -> str | None:
    raw = params.get(QUERY_PARAMS[meaning], "").strip().lower()
    if not raw:
        return None
    if raw not in choices:
        raise _invalid(meaning, "one of " + ", ".join(choices))
    return raw


def _number(params: Mapping[str, str], meaning: str) -> str | None:
    raw = params.get(QUERY_PARAMS[meaning], "").strip()
    if not raw:
        return None
    try:
        return normalize(raw, QUERY_PARAMS[meaning])
    except ValidationFailed as exc:
        raise _invalid(meaning, exc.rule) from exc


def _required_number(params: Mapping[str, str], meaning: str) -> str:
    number = _number(params, meaning)
    if number is None:
        raise _invalid(meaning, "required")
    return number


_PAGING = ("skip", "max", "sort", "start", "end")
_KNOWN = {
    "status": ("message_id",),
    "messages": (*_PAGING, "type", "phone_number", "number_side"),
    "conversation": (*_PAGING, "account_number", "customer_number"),
}


def _only_known(params: Mapping[str, str], service: str) -> None:
    """Refuse a parameter the service does not take: a client whose inferred names drift
    from the simulator's own reading would otherwise see its filters silently ignored."""
    known = {QUERY_PARAMS[meaning] for meaning in _KNOWN[service]}
    for name in params:
        if name not in known:
            raise PlumFailure(
                FailureKind.BAD_REQUEST,
                inferred.INVALID_PARAMETER_TEMPLATE.format(name=name, rule="unknown parameter"),
            )


def message_id(params: Mapping[str, str]) -> str:
    """The ``sms_message_id`` asked for by ``sms/status``."""
    _only_known(params, "status")
    return params.get(QUERY_PARAMS["message_id"], "")


def message_query(params: Mapping[str, str], conversation: bool = False) -> MessageQuery:
    """Parse paging and filters; raises ``PlumFailure`` naming the bad parameter."""
    _only_known(params, "conversation" if conversation else "messages")
    default_sort = (
        inferred.CONVERSATION_DEFAULT_SORT if conversation else inferred.MESSAGES_DEFAULT_SORT
    )
    offset = _integer(params, "skip", 0, None) or 0
    limit = _integer(params, "max", inferred.LIMIT_MIN, inferred.LIMIT_MAX)
    sort = _choice(params, "sort", inferred.SORT_VALUES) or default_sort
    start = _integer(params, "start", 0, None)
    end = _integer(params, "end", 0, None)
    if conversation:
        between = (
            _required_number(params, "account_number"),
            _required_number(params, "customer_number"),
        )
        type_, phone_number, side = "all", None, None
    else:
        between = None
        type_ = _choice(params, "type", inferred.TYPE_VALUES) or "all"
        phone_number = _number(params, "phone_number")
        side = _choice(params, "number_side", inferred.NUMBER_SIDES)
    return MessageQuery(
        offset=offset,
        limit=limit or inferred.DEFAULT_LIMIT,
        sort=sort,
        start=start,
        end=end,
        type=type_,
        phone_number=phone_number,
        number_side=side,
        between=between,
    )
