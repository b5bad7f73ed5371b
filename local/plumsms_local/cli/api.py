"""HTTP client for the bundle's management API: bearer token locally, SigV4 on AWS."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

import urllib3

from plumsms_local.cli.errors import ApiError, Unreachable, UsageError

__all__ = ["ApiClient", "ApiError", "Unreachable"]

_TIMEOUT = urllib3.Timeout(connect=3.0, read=30.0)
OnUnreachable = Callable[[str, Exception], Unreachable]


class ApiClient:
    """A small JSON client for the management API."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        sigv4: bool | None = None,
        pool: urllib3.PoolManager | None = None,
        on_unreachable: OnUnreachable | None = None,
    ) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.token = token
        host = urlsplit(self.base_url).hostname or ""
        self.sigv4 = sigv4 if sigv4 is not None else ".execute-api." in host
        self._pool = pool or urllib3.PoolManager(timeout=_TIMEOUT, retries=False)
        self._on_unreachable = on_unreachable or (
            lambda url, exc: Unreachable("the bundle API", url, type(exc).__name__)
        )

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> urllib3.BaseHTTPResponse:
        """Send one request; raise ``ApiError`` for 4xx/5xx, ``Unreachable`` if no answer."""
        url = self.base_url + path.lstrip("/")
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if params:
            url += "?" + urlencode(params)
        data = json.dumps(body).encode() if body is not None else None
        all_headers = {"accept": "application/json", **(headers or {})}
        if data is not None:
            all_headers["content-type"] = "application/json"
        if self.sigv4:
            all_headers = _sign(method, url, data, all_headers)
        elif self.token:
            all_headers["authorization"] = f"Bearer {self.token}"
        try:
            response = self._pool.request(
                method, url, body=data, headers=all_headers, preload_content=False
            )
        except urllib3.exceptions.HTTPError as exc:
            raise self._on_unreachable(self.base_url, exc) from exc
        if response.status >= 400:
            raise _api_error(response.status, response.read())
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request and decode its JSON answer."""
        response = self.request(method, path, **kwargs)
        payload = response.read()
        return json.loads(payload) if payload else None


def _api_error(status: int, payload: bytes) -> ApiError:
    try:
        data = json.loads(payload)
    except ValueError:
        return ApiError(status, payload[:200].decode("utf-8", "replace") or "request failed")
    if not isinstance(data, dict):
        return ApiError(status, str(data))
    message = str(data.get("message") or data.get("error") or data)
    field, rule = data.get("field"), data.get("rule")
    if rule and str(rule) not in message:
        message = f"{message}: {rule}"  # e.g. where a missing token comes from
    return ApiError(status, message, str(field) if field else None, str(rule) if rule else None)


def _sign(method: str, url: str, data: bytes | None, headers: dict[str, str]) -> dict[str, str]:
    """Sign with the caller's AWS credentials for an IAM-authorised API Gateway."""
    import boto3  # noqa: PLC0415 - only deployed stacks need AWS credentials
    from botocore.auth import SigV4Auth  # noqa: PLC0415
    from botocore.awsrequest import AWSRequest  # noqa: PLC0415

    session = boto3.Session()
    credentials = session.get_credentials()
    if credentials is None:
        raise UsageError("SigV4 signing needs AWS credentials (aws configure / AWS_PROFILE)")
    host = urlsplit(url).hostname or ""
    region = host.split(".")[2] if ".execute-api." in host else (session.region_name or "us-east-1")
    request = AWSRequest(method=method, url=url, data=data, headers=headers)
    SigV4Auth(credentials, "execute-api", region).add_auth(request)
    return dict(request.headers.items())
