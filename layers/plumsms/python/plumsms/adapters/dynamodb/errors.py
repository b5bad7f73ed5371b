"""Turn botocore errors into the domain's exceptions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from plumsms.domain.errors import StoreUnavailable


@contextmanager
def store_errors(operation: str) -> Iterator[None]:
    """Re-raise DynamoDB failures as ``StoreUnavailable`` (no AWS detail reaches callers)."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "Unknown")
        raise StoreUnavailable(f"{operation} failed ({code})") from exc
    except BotoCoreError as exc:
        raise StoreUnavailable(f"{operation} failed ({type(exc).__name__})") from exc


def condition_failed(exc: ClientError, in_transaction: slice | None = None) -> bool:
    """True when a write was refused by its condition: a single write's, or (with
    ``in_transaction``) the condition of one of those items of a cancelled transaction."""
    code = exc.response.get("Error", {}).get("Code")
    if code == "ConditionalCheckFailedException":
        return True
    if code != "TransactionCanceledException" or in_transaction is None:
        return False
    reasons: Any = exc.response.get("CancellationReasons", [])
    return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons[in_transaction])
