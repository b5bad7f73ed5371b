"""Events of the shapes ``sam local generate-event`` produces, filled in per request.

The base shapes come from SAM CLI itself (``apigateway aws-proxy`` and ``cloudwatch
scheduled-event``), generated once per session, so the tier drives the functions with
exactly what API Gateway and EventBridge hand Lambda.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from plumsms_local import template

ACCOUNT = "123456789012"
STAGE = "v1"


def generate(sam: Path, *args: str) -> dict[str, Any]:
    """One ``sam local generate-event`` answer."""
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    out = subprocess.run(
        [str(sam), "local", "generate-event", *args],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    data: dict[str, Any] = json.loads(out)
    return data


class EventFactory:
    """API Gateway REST proxy events for the template's routes, and scheduled events."""

    def __init__(self, sam: Path) -> None:
        self.proxy = generate(
            sam,
            "apigateway",
            "aws-proxy",
            "--stage",
            STAGE,
            "--account-id",
            ACCOUNT,
            "--method",
            "GET",
            "--path",
            "x",
            "--resource",
            "/x",
            "--body",
            "",
        )
        self.scheduled = generate(sam, "cloudwatch", "scheduled-event")
        self.routes = template.routes()

    def http(
        self,
        method: str,
        url: str,
        *,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        base64_body: bool = False,
        base_path: str = "",
        iam_user: str | None = "arn:aws:iam::123456789012:user/ops",
    ) -> tuple[str, dict[str, Any]]:
        """(function logical id, event) for ``method url`` as API Gateway would route it.

        ``base_path`` is a custom domain's base-path mapping: API Gateway then keeps it in
        ``path`` while ``resource`` stays the route's own.
        """
        parts = urlsplit(url)
        for route in self.routes:
            params = route.match(method, parts.path)
            if params is not None:
                break
        else:
            raise LookupError(f"no route for {method} {parts.path}")
        event = copy.deepcopy(self.proxy)
        query = parse_qs(parts.query, keep_blank_values=True)
        all_headers = {**event["headers"], **(headers or {})}
        raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
        now = datetime.now(UTC)
        event.update(
            {
                "resource": route.path,
                "path": f"/{base_path.strip('/')}{parts.path}" if base_path else parts.path,
                "httpMethod": method,
                "headers": all_headers,
                "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
                "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
                "multiValueQueryStringParameters": query or None,
                "pathParameters": params or None,
                "stageVariables": None,
                "isBase64Encoded": bool(base64_body),
                "body": None
                if raw is None
                else (base64.b64encode(raw).decode() if base64_body else raw.decode("utf-8")),
            }
        )
        context = event["requestContext"]
        context.update(
            {
                "resourcePath": route.path,
                "httpMethod": method,
                "path": f"/{STAGE}{parts.path}",
                "requestId": str(uuid.uuid4()),
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "requestTimeEpoch": int(now.timestamp() * 1000),
            }
        )
        if route.authorized and iam_user:
            context["identity"].update(
                {
                    "userArn": iam_user,
                    "user": "AIDAEXAMPLE",
                    "accountId": ACCOUNT,
                    "caller": "AIDAEXAMPLE",
                    "accessKey": "AKIAEXAMPLE",
                }
            )
        return route.function, event

    def form(
        self, url: str, fields: dict[str, str], *, base64_body: bool = False
    ) -> tuple[str, dict[str, Any]]:
        """A form POST, as Plum sends its webhooks (API Gateway may base64 the body)."""
        return self.http(
            "POST",
            url,
            body=urlencode(fields),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            base64_body=base64_body,
        )

    def json(self, method: str, url: str, payload: Any, **kw: Any) -> tuple[str, dict[str, Any]]:
        """A JSON request."""
        headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
        return self.http(method, url, body=json.dumps(payload), headers=headers, **kw)

    def schedule(self, rule_arn: str) -> dict[str, Any]:
        """An EventBridge scheduled event from ``rule_arn``."""
        event = copy.deepcopy(self.scheduled)
        event.update(
            {
                "id": str(uuid.uuid4()),
                "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "resources": [rule_arn],
            }
        )
        return event
