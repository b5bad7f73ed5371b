"""Cold-start wiring: settings, adapters and services, built once per execution environment.

All of the bundle's wiring is here. Adapters and use cases that only some functions
need are imported inside the function that builds them, so a function's cold start
imports only what it uses.

Each function module calls its ``*_function()`` at import time and exports the handler;
tests call the builders with their own settings or inject fakes into the services.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from plumsms import constants as env
from plumsms.adapters.dynamodb.store import DynamoMessageStore
from plumsms.adapters.events import publisher_for
from plumsms.config import Settings
from plumsms.domain.errors import ValidationFailed
from plumsms.domain.phone import normalize
from plumsms.domain.status import ChangePublisher
from plumsms.entrypoints.webhooks import api_handler, api_resolver, status_url, webhook_handler
from plumsms.observability import LambdaHandler, logger, metrics
from plumsms.secrets import SecretValues

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import Response
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

    # Imported where built, not at cold start: each function pays only for its own.
    from plumsms.domain.guards import ReplyLimits
    from plumsms.domain.plum import PlumGateway
    from plumsms.usecases.dispatch import Dispatcher
    from plumsms.usecases.inbound import InboundService
    from plumsms.usecases.ports import Pacer
    from plumsms.usecases.reconcile import Reconciler
    from plumsms.usecases.status import StatusService


def message_store(settings: Settings) -> DynamoMessageStore:
    """The DynamoDB message store (honours ``AWS_ENDPOINT_URL_DYNAMODB``)."""
    retention = timedelta(days=settings.retention_days) if settings.retention_days else None
    return DynamoMessageStore(settings.table_name, retention=retention)


def change_publisher(settings: Settings) -> ChangePublisher:
    """Where status changes go: the ``EVENT_BUS_NAME`` bus, or an in-memory recorder
    when none is set (local runs). Every function that changes a status uses it."""
    return publisher_for(settings.event_bus_name, settings.events_endpoint_url)


class Basics(NamedTuple):
    """What every function is wired from."""

    settings: Settings
    secrets: SecretValues
    store: DynamoMessageStore
    publisher: ChangePublisher


def basics() -> Basics:
    """The settings read from the environment, the secrets they name, the message store
    and the change publisher: what every function builds first."""
    settings = Settings.from_env()
    return Basics(
        settings, SecretValues(settings), message_store(settings), change_publisher(settings)
    )


def _report_hook_error(exc: Exception) -> None:
    metrics.add_metric(name="HookErrors", unit="Count", value=1)
    logger.exception("reply hook failed; falling back to rules", exc_info=exc)


def inbound_service(parts: Basics, function_dir: Path) -> InboundService:
    """The inbound use case with the rules file (relative to the function) and hook loaded;
    the publisher hears of the pending sends an opt-out suppresses."""
    from plumsms.adapters.rules_file import load_hook, load_rules  # noqa: PLC0415
    from plumsms.usecases.inbound import InboundService  # noqa: PLC0415

    settings, secrets, store, publisher = parts
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
    from plumsms.domain.guards import ReplyLimits, default_countries  # noqa: PLC0415

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


def status_service(store: DynamoMessageStore, publisher: ChangePublisher) -> StatusService:
    """The status use case on ``store``'s table."""
    from plumsms.adapters.dynamodb.statuses import DynamoStatusLog  # noqa: PLC0415
    from plumsms.usecases.status import StatusService  # noqa: PLC0415

    return StatusService(log=DynamoStatusLog.from_store(store), publisher=publisher)


def plum_gateway(settings: Settings, secrets: SecretValues) -> Callable[[], PlumGateway]:
    """A provider of the Plum client for the current credentials (``PlumNotConfigured``
    when there are none yet); the use cases call it only when Plum is needed.

    The client is rebuilt only when the credentials change (Secrets Manager values are
    cached by Powertools for ``SECRETS_MAX_AGE_SECONDS``), so a rotated password is
    picked up without a redeploy and a warm function keeps its connection pool.
    """
    from plumsms.adapters.plum.client import PlumClient  # noqa: PLC0415

    clients: dict[tuple[str, str], PlumClient] = {}
    lock = threading.Lock()

    def current() -> PlumGateway:
        credentials = secrets.plum_credentials()
        with lock:
            client = clients.get(credentials)
            if client is None:
                clients.clear()
                client = PlumClient(
                    settings.plum_api_url,
                    *credentials,
                    backoff_factor=settings.plum_retry_backoff_seconds,
                    logger=logger,
                )
                clients[credentials] = client
            return client

    return current


def dispatcher(parts: Basics) -> Dispatcher:
    """The dispatcher as the deployment configures it, publishing what it fails or suppresses."""
    settings, secrets, store, publisher = parts
    from plumsms.adapters.dispatch_trigger import continue_event, dispatch_trigger  # noqa: PLC0415
    from plumsms.adapters.dynamodb.lease import DynamoRunLease  # noqa: PLC0415
    from plumsms.adapters.dynamodb.outbox import DynamoOutbox  # noqa: PLC0415
    from plumsms.adapters.dynamodb.pacing import DynamoSlotBook  # noqa: PLC0415
    from plumsms.usecases.dispatch import (  # noqa: PLC0415
        BookingLead,
        DispatchConfig,
        Dispatcher,
        RateLimiter,
        SharedPacer,
    )

    def result_url(message_id: str) -> str | None:
        return status_url(secrets.public_base_url(), secrets.webhook_key(), message_id)

    rate = settings.send_rate_per_second
    # One run works at a time (the lease); the rate also holds across the hand-over from
    # one run to the next, and past a lapsed lease: every run books in the same book.
    book = DynamoSlotBook(store.table_name, store.client, interval=1 / rate)
    lead = BookingLead()  # the environment's runs learn how fast the book answers

    def pacer() -> Pacer:
        return SharedPacer(RateLimiter(rate), book, lead=lead)

    return Dispatcher(
        outbox=DynamoOutbox(store),
        plum=plum_gateway(settings, secrets),
        result_url=result_url,
        config=DispatchConfig(
            rate_per_second=settings.send_rate_per_second,
            concurrency=settings.send_concurrency,
            max_attempts=settings.send_max_attempts,
        ),
        log=logger,
        publisher=publisher,
        pacer=pacer,
        lease=DynamoRunLease(store.table_name, store.client),
        # A run out of time with messages still due starts the next one (itself, on AWS;
        # the local stack names its dispatcher in SCHEDULED_SEND_FUNCTION).
        successor=dispatch_trigger(
            settings.scheduled_send_function or settings.function_name, continue_event()
        ),
    )


def reconciler(parts: Basics) -> Reconciler:
    """The reconciler: asks Plum about messages stuck in ``queued`` or ``sent``."""
    settings, secrets, store, publisher = parts
    from plumsms.usecases.reconcile import Reconciler  # noqa: PLC0415

    return Reconciler(
        messages=store,
        service=status_service(store, publisher),
        plum=plum_gateway(settings, secrets),
        min_age=timedelta(minutes=settings.reconcile_after_minutes),
        limit=settings.reconcile_max_messages,
        log=logger,
    )


# -- the functions --------------------------------------------------------------------


class Function(NamedTuple):
    """A function module's ``lambda_handler`` and the parts it was wired from."""

    handler: LambdaHandler
    basics: Basics


def inbound_sms_function(module_file: str) -> Function:
    """InboundSmsFunction: the Application URL (``POST /plum/inbound``), with the rules
    file looked up beside the function's module."""
    from plumsms.entrypoints.inbound import answer_inbound  # noqa: PLC0415

    parts = basics()
    service = inbound_service(parts, Path(module_file).parent)
    return _webhook(parts, "/plum/inbound", partial(answer_inbound, service))


def result_url_function() -> Function:
    """ResultUrlFunction: the Result URL (``POST /plum/status``)."""
    from plumsms.entrypoints.status_webhook import answer_status_callback  # noqa: PLC0415

    parts = basics()
    answer = partial(answer_status_callback, status_service(parts.store, parts.publisher))
    return _webhook(parts, "/plum/status", answer)


def _webhook(
    parts: Basics, path: str, answer: Callable[[APIGatewayProxyEvent, str], Response[str]]
) -> Function:
    handler = webhook_handler(parts.settings, path, answer, parts.secrets.webhook_key)
    return Function(handler, parts)


def messages_api_function() -> Function:
    """MessagesApiFunction: sending, the log, its export and web page, the API document."""
    from plumsms.entrypoints import log_api, sending_api  # noqa: PLC0415

    parts = basics()
    app = api_resolver(parts.settings, validation=True)
    app.include_router(
        sending_api.routes_from_settings(parts.settings, parts.store, parts.publisher)
    )
    app.include_router(log_api.routes_from_settings(parts.settings, parts.store, parts.secrets))
    log_api.enable_api_document(app)
    return Function(api_handler(app), parts)


def scheduled_send_function() -> Function:
    """ScheduledSendFunction: the dispatcher, woken by the minute tick, send-now and
    hand-overs."""
    from plumsms.entrypoints.dispatch import dispatch_handler  # noqa: PLC0415

    parts = basics()
    return Function(dispatch_handler(dispatcher(parts)), parts)


def reconciler_function() -> Function:
    """ReconcilerFunction: asks Plum about messages stuck in ``queued`` or ``sent``."""
    from plumsms.entrypoints.status_webhook import reconcile_handler  # noqa: PLC0415

    parts = basics()
    return Function(reconcile_handler(reconciler(parts)), parts)
