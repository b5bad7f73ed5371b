"""The embedded DynamoDB-compatible server (moto, in-process, over real HTTP)."""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING, Any

import boto3
from moto.server import ThreadedMotoServer

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


class EmbeddedDynamoDB:
    """A moto server on 127.0.0.1 that speaks the DynamoDB HTTP API."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port(host)
        # werkzeug logs every request at INFO; the local stack has its own logs.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address=host, port=self.port, verbose=False)

    @property
    def endpoint(self) -> str:
        """The URL to give ``AWS_ENDPOINT_URL_DYNAMODB``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> EmbeddedDynamoDB:
        """Start serving in a background thread."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop()

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
