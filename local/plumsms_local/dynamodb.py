"""The embedded DynamoDB-compatible server (moto, in-process, over real HTTP)."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import boto3
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from plumsms_local import template

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

REGION = "us-east-1"
# moto needs some credentials; they are never checked and never leave the machine.
LOCAL_KEY_ID = "local"
LOCAL_SECRET = "local"  # noqa: S105


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class _Serialized:
    """A WSGI wrapper that runs one request at a time.

    DynamoDB applies each conditional write atomically; moto checks the condition and
    writes without a lock, so two concurrent claims could both win. Serialising the
    requests restores DynamoDB's guarantee (moto is CPU-bound under the GIL anyway).
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with self._lock:
            return list(self._app(environ, start_response))


class EmbeddedDynamoDB:
    """A moto server on 127.0.0.1 that speaks the DynamoDB HTTP API, atomically."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port(host)
        # werkzeug logs every request at INFO; the local stack has its own logs.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        """The URL to give ``AWS_ENDPOINT_URL_DYNAMODB``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> EmbeddedDynamoDB:
        """Start serving in a background thread."""
        app = _Serialized(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self.host, self.port, app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="embedded-dynamodb", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def client(self) -> DynamoDBClient:
        """A boto3 client for this server."""
        return client_for(self.endpoint)


def client_for(endpoint: str) -> DynamoDBClient:
    """A DynamoDB client for ``endpoint`` with throwaway local credentials."""
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=LOCAL_KEY_ID,
        aws_secret_access_key=LOCAL_SECRET,
    )


def create_table(client: DynamoDBClient, table_name: str) -> None:
    """Create the message table exactly as ``template.yaml`` declares it (idempotent)."""
    existing = client.list_tables().get("TableNames", [])
    if table_name in existing:
        return
    definition: dict[str, Any] = template.table_definition(table_name)
    client.create_table(**definition)
    client.get_waiter("table_exists").wait(TableName=table_name)
    ttl = template.ttl_attribute()
    if ttl:
        client.update_time_to_live(
            TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl}
        )
