"""Turn botocore errors into the domain's exceptions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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
