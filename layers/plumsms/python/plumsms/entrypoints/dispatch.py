"""ScheduledSendFunction's wiring: the dispatcher over the outbox and Plum, and its report.

The Plum client (the reconciler uses the same provider) is rebuilt only when the
credentials change (Secrets Manager values are cached by Powertools for
``SECRETS_MAX_AGE_SECONDS``), so a rotated password is picked up without a redeploy
and a warm function keeps its connection pool.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from plumsms.adapters.dynamodb.outbox import DynamoOutbox
from plumsms.adapters.dynamodb.pacing import DynamoSlotBook
from plumsms.adapters.dynamodb.store import DynamoMessageStore
from plumsms.adapters.plum.client import PlumClient
from plumsms.config import Settings
from plumsms.domain.plum import PlumGateway
from plumsms.domain.status import ChangePublisher
from plumsms.entrypoints.webhooks import status_url
from plumsms.observability import logger, metrics
from plumsms.secrets import NOT_CONFIGURED_WARNING, SecretValues
from plumsms.usecases.dispatch import NOT_CONFIGURED, DispatchConfig, Dispatcher, DispatchReport
from plumsms.usecases.pacing import Pacer, RateLimiter, SharedPacer

_METRICS = {
    "sent": "MessagesSent",
    "reconciled": "SendsReconciled",
    "resent": "SendsResent",
    "retried": "SendRetries",
    "to_check": "SendsToCheck",
    "failed": "SendFailures",
    "suppressed": "SendsSuppressed",
    "lost_race": "ClaimsLost",
    "errors": "DispatchErrors",
}


def plum_gateway(settings: Settings, secrets: SecretValues) -> Callable[[], PlumGateway]:
    """A provider of the Plum client for the current credentials (``PlumNotConfigured``
    when there are none yet); the use cases call it only when Plum is needed."""
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


def dispatcher_from_settings(
    settings: Settings,
    store: DynamoMessageStore,
    secrets: SecretValues,
    publisher: ChangePublisher,
) -> Dispatcher:
    """The dispatcher as the deployment configures it, publishing what it fails or suppresses."""

    def result_url(message_id: str) -> str | None:
        return status_url(secrets.public_base_url(), secrets.webhook_key(), message_id)

    rate = settings.send_rate_per_second
    # The rate holds across concurrent runs: every run books its sends in the same book.
    book = DynamoSlotBook(store.table_name, store.client, interval=1 / rate)

    def pacer() -> Pacer:
        return SharedPacer(RateLimiter(rate), book)

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
    )


def observe_dispatch(report: DispatchReport, event: dict[str, Any]) -> dict[str, Any]:
    """Metrics and one log line for a run; the handler's JSON result."""
    summary = report.as_dict()
    for name, metric in _METRICS.items():
        if report[name]:
            metrics.add_metric(name=metric, unit="Count", value=report[name])
    if report.stopped == NOT_CONFIGURED:
        logger.warning(NOT_CONFIGURED_WARNING)
    logger.info(
        "dispatch run finished",
        extra={
            "trigger": event.get("detail-type") or event.get("source") or "direct",
            **summary,
        },
    )
    return summary
