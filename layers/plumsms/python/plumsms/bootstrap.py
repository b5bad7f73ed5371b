"""Cold-start wiring: settings, adapters and services, built once per execution environment.

Each function module calls these at import time and keeps the results; tests call them
with their own settings or inject fakes directly into the services.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from plumsms import constants as env
from plumsms.adapters.dynamodb.store import DynamoMessageStore
from plumsms.adapters.events import publisher_for
from plumsms.adapters.rules_file import load_hook, load_rules
from plumsms.config import Settings
from plumsms.domain.errors import ValidationFailed
from plumsms.domain.guards import ReplyLimits, default_countries
from plumsms.domain.phone import normalize
from plumsms.domain.status import ChangePublisher
from plumsms.entrypoints.webhooks import status_url
from plumsms.observability import logger, metrics
from plumsms.secrets import SecretValues
from plumsms.usecases.inbound import InboundService


def message_store(settings: Settings) -> DynamoMessageStore:
    """The DynamoDB message store (honours ``AWS_ENDPOINT_URL_DYNAMODB``)."""
    retention = timedelta(days=settings.retention_days) if settings.retention_days else None
    return DynamoMessageStore(settings.table_name, retention=retention)


def change_publisher(settings: Settings) -> ChangePublisher:
    """Where status changes go: the ``EVENT_BUS_NAME`` bus, or an in-memory recorder
    when none is set (local runs). Every function that changes a status uses it."""
    return publisher_for(settings.event_bus_name, settings.events_endpoint_url)


def _report_hook_error(exc: Exception) -> None:
    metrics.add_metric(name="HookErrors", unit="Count", value=1)
    logger.exception("reply hook failed; falling back to rules", exc_info=exc)


def inbound_service(
    settings: Settings,
    store: DynamoMessageStore,
    secrets: SecretValues,
    publisher: ChangePublisher,
    function_dir: Path,
) -> InboundService:
    """The inbound use case with the rules file (relative to the function) and hook loaded;
    ``publisher`` hears of the pending sends an opt-out suppresses."""
    rules_path = settings.rules_file
    if rules_path is not None and not rules_path.is_absolute():
        rules_path = function_dir / rules_path
    elif rules_path is None and (function_dir / "rules.yaml").exists():
        rules_path = function_dir / "rules.yaml"

    def build_status_url(ref: str) -> str | None:
        return status_url(secrets.public_base_url(), secrets.webhook_key(), ref)

    return InboundService(
        log=store,
        rules=load_rules(rules_path),
        status_url=build_status_url,
        limits=reply_limits(settings),
        hook=load_hook(settings.reply_hook),
        on_hook_error=_report_hook_error,
        on_opt_out=_suppress_pending_after_opt_out(store, publisher),
    )


def reply_limits(settings: Settings) -> ReplyLimits:
    """The abuse limits of automatic answers, from the settings (docs/security.md).

    A wrong ``SMS_NUMBERS`` entry is left out here (sending reports it where a number is
    needed): inbound must keep working, and the others still count as own numbers.
    """
    own = []
    for raw in settings.sms_numbers:
        try:
            own.append(normalize(raw, env.SMS_NUMBERS))
        except ValidationFailed:
            continue
    return ReplyLimits(
        own_numbers=frozenset(own),
        countries=frozenset(settings.reply_countries) or default_countries(own),
        replies_per_hour=settings.reply_limit_per_hour,
        forwards_per_hour=settings.forward_limit_per_hour,
        repeat_window=timedelta(seconds=settings.repeat_window_seconds),
    )


def _suppress_pending_after_opt_out(
    store: DynamoMessageStore, publisher: ChangePublisher
) -> Callable[[str], None]:
    """The inbound flow's ``on_opt_out``: cancel the number's pending sends (``suppressed``,
    each published as a status change).

    The send stack is imported on the first STOP, not at cold start: most inbound
    invocations never need it, and every cold start would pay for it.
    """
    built: list[Callable[[str], None]] = []

    def on_opt_out(number: str) -> None:
        if not built:
            from plumsms.adapters.dynamodb.outbox import DynamoOutbox  # noqa: PLC0415
            from plumsms.usecases.sending import opt_out_callback  # noqa: PLC0415

            built.append(
                opt_out_callback(
                    DynamoOutbox(store),
                    on_error=_report_suppress_error,
                    publisher=publisher,
                )
            )
        built[0](number)

    return on_opt_out


def _report_suppress_error(exc: Exception) -> None:
    # The dispatcher re-checks opt-outs before each send, so this only delays the status.
    metrics.add_metric(name="SuppressErrors", unit="Count", value=1)
    logger.exception("suppressing pending sends after an opt-out failed", exc_info=exc)
