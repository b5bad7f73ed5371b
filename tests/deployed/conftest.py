"""The as-deployed tier: what ``sam build`` ships, run the way Lambda runs it.

One emulated account per session: a moto server (DynamoDB, Secrets Manager, SSM,
EventBridge with rules delivering to SQS), Lambda's Invoke API, the X-Ray daemon's
socket, API Gateway in front of the functions for Plum's callbacks, and the Plum
simulator. Every function runs from ``.aws-sam/deployed-<arch>`` (``make artifacts``) in
fresh python3.13 processes whose path holds only the function, the layer's ``python/``
and the boto3/botocore the Lambda runtime ships, with its environment and IAM policy
resolved from template.yaml.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import secrets
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import boto3
import pytest

from plumsms_local import dynamodb, template
from plumsms_local.simulator.config import Delays, SimulatorConfig
from plumsms_local.simulator.server import PlumSimulator
from plumsms_local.template import PROJECT_ROOT, TEMPLATE

from . import cfn
from .events import ACCOUNT, EventFactory
from .lambda_host import FunctionSpec, Invocation, InvokeApi, LambdaHost, XRayCollector

REGION = "us-east-1"
STACK = "plumsms"
SMS_NUMBER = "+12435678910"
REFUSED_NUMBER = "+19995550999"  # a landline: Plum refuses to queue SMS to it
UNSUBSCRIBED_NUMBER = "+19995550998"  # opted out at Plum (the carrier) already
PLUM_USER, PLUM_PASSWORD = "plum-deployed", "plum-deployed-password"
HOST_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[
    platform.machine().lower()
]
BUILD_DIR = PROJECT_ROOT / ".aws-sam" / f"deployed-{HOST_ARCH}"
RUNTIME_DIR = PROJECT_ROOT / ".aws-sam" / "lambda-runtime"
SAM = PROJECT_ROOT / ".tools-venv" / "bin" / "sam"


def python313() -> str:
    """The python3.13 the artifacts were built for (Lambda's runtime version)."""
    candidates = [os.environ.get("PY313", "")]
    candidates += sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.13*/bin/python3.13"))
    candidates.append(shutil.which("python3.13") or "")
    for candidate in candidates:
        if candidate and subprocess.run([candidate, "-c", "pass"], check=False).returncode == 0:
            return candidate
    pytest.fail("the as-deployed tier needs python3.13 (the Lambda runtime's): pyenv install 3.13")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """The build for this machine's architecture and the runtime's SDK (``make artifacts``)."""
    if not (BUILD_DIR / "template.yaml").exists() or not RUNTIME_DIR.exists():
        subprocess.run(["make", "-s", "artifacts"], cwd=PROJECT_ROOT, check=True)
    return BUILD_DIR


@dataclass
class Response:
    """An API Gateway answer decoded from the function's proxy result."""

    status: int
    headers: dict[str, str]
    body: bytes
    invocation: Invocation

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def to_response(invocation: Invocation) -> Response:
    """What API Gateway makes of a proxy result (502 when the function failed)."""
    result = invocation.result
    if invocation.error or not isinstance(result, dict) or "statusCode" not in result:
        return Response(502, {}, b'{"message": "Internal server error"}', invocation)
    headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name.lower()] = ", ".join(str(v) for v in values)
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    return Response(int(result["statusCode"]), headers, body, invocation)


class Stack:
    """The deployed stack in the emulated account, and ways to drive it."""

    def __init__(self, tmp: Path) -> None:
        self.moto = dynamodb.EmbeddedDynamoDB().start()
        self.endpoint = self.moto.endpoint
        self.xray = XRayCollector()
        self.factory = EventFactory(SAM)
        self.webhook_key = secrets.token_urlsafe(30)
        self._provision()
        self.simulator = PlumSimulator(
            SimulatorConfig(
                username=PLUM_USER,
                password=PLUM_PASSWORD,
                sms_numbers=(SMS_NUMBER,),
                landlines=frozenset({REFUSED_NUMBER}),
                unsubscribed=frozenset({UNSUBSCRIBED_NUMBER}),
                delays=Delays(sent_seconds=0.2, final_seconds=0.3),
            )
        )
        self.simulator.start()
        self.gateway = _Gateway(self)
        self.aws("ssm").put_parameter(
            Name=f"/{STACK}/public-base-url", Value=self.gateway.url, Type="String", Overwrite=True
        )
        self.host = LambdaHost(
            python313(), BUILD_DIR / "PlumSmsLayer" / "python", RUNTIME_DIR, tmp, REGION, ACCOUNT
        )
        names = {self.deployment.refs[f]: f for f in self._function_ids()}
        self.invoke_api = InvokeApi(self.host, names)
        self.definitions = cfn.functions(TEMPLATE, BUILD_DIR / "template.yaml", self.deployment)
        for definition in self.definitions.values():
            self.host.add(self.spec(definition))

    # -- the emulated account -------------------------------------------------------------

    def aws(self, service: str) -> Any:
        """A boto3 client on the emulated account (the test's own, never the function's)."""
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def _function_ids(self) -> list[str]:
        resources = template.load(TEMPLATE)["Resources"]
        return [k for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"]

    def _provision(self) -> None:
        suffix = uuid.uuid4().hex[:8].upper()
        table = f"{STACK}-MessagesTable-{suffix}"
        dynamodb.create_table(self.aws("dynamodb"), table)
        sm = self.aws("secretsmanager")
        key_arn = sm.create_secret(
            Name=f"WebhookKeySecret-{suffix}", SecretString=self.webhook_key
        )["ARN"]
        cursor_arn = sm.create_secret(
            Name=f"CursorKeySecret-{suffix}", SecretString=secrets.token_urlsafe(36)
        )["ARN"]
        self.plum_secret = sm.create_secret(
            Name=f"PlumCredentialsSecret-{suffix}",
            SecretString=json.dumps({"username": PLUM_USER, "password": PLUM_PASSWORD}),
        )["ARN"]
        events = self.aws("events")
        bus = f"{STACK}-sms-status"
        bus_arn = events.create_event_bus(Name=bus)["EventBusArn"]
        sqs = self.aws("sqs")
        self.failed_queue = sqs.create_queue(QueueName=f"FailedSmsQueue-{suffix}")["QueueUrl"]
        self.all_queue = sqs.create_queue(QueueName=f"StatusEvents-{suffix}")["QueueUrl"]

        def arn(url: str) -> str:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            return str(attributes["Attributes"]["QueueArn"])

        # The template's example rule (enabled here), and a catch-all to see every event.
        rule = template.load(TEMPLATE)["Resources"]["FailedSmsExampleRule"]["Properties"]
        events.put_rule(
            Name="failed-sms", EventBusName=bus, EventPattern=json.dumps(rule["EventPattern"])
        )
        events.put_targets(
            Rule="failed-sms",
            EventBusName=bus,
            Targets=[{"Id": "q", "Arn": arn(self.failed_queue)}],
        )
        events.put_rule(
            Name="all", EventBusName=bus, EventPattern=json.dumps({"source": ["plumsms"]})
        )
        events.put_targets(
            Rule="all", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn(self.all_queue)}]
        )
        refs = {
            "MessagesTable": table,
            "WebhookKeySecret": key_arn,
            "PlumCredentialsSecret": self.plum_secret,
            "CursorKeySecret": cursor_arn,
            "StatusEventBus": bus,
        }
        attributes = {
            "MessagesTable.Arn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}",
            "StatusEventBus.Arn": bus_arn,
        }
        for logical in self._function_ids():
            name = f"{STACK}-{logical}-{suffix}"
            refs[logical] = name
            attributes[f"{logical}.Arn"] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        self.table = table
        parameters = {"SmsNumbers": SMS_NUMBER}
        self.deployment = cfn.Deployment(STACK, REGION, ACCOUNT, parameters, refs, attributes)

    def spec(self, definition: cfn.FunctionDefinition, **overrides: str) -> FunctionSpec:
        """How Lambda starts ``definition`` in this account (``overrides`` for one test)."""
        environment = {
            **definition.environment,
            **cfn.lambda_environment(definition, REGION),
            "LAMBDA_TASK_ROOT": str(BUILD_DIR / definition.logical_id),
            # The emulated account's endpoints and credentials; Plum is the simulator.
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ENDPOINT_URL_LAMBDA": self.invoke_api.url,
            "AWS_ACCESS_KEY_ID": "ASIAEMULATED",
            "AWS_SECRET_ACCESS_KEY": "emulated",
            "AWS_SESSION_TOKEN": "emulated",
            "AWS_XRAY_DAEMON_ADDRESS": self.xray.address,
            "PLUM_API_URL": self.simulator.api_url,
            **overrides,
        }
        return FunctionSpec(
            name=definition.logical_id,
            task_root=BUILD_DIR / definition.logical_id,
            handler=definition.handler,
            environment=environment,
            policy=definition.statements,
            timeout=definition.timeout,
            memory=definition.memory,
        )

    # -- driving it -----------------------------------------------------------------------

    def request(self, method: str, url: str, **kw: Any) -> Response:
        """One HTTP request through API Gateway to the function its route names."""
        function, event = self.factory.http(method, url, **kw)
        return to_response(self.host.invoke(function, event))

    def api(self, method: str, url: str, payload: Any = None, **kw: Any) -> Response:
        """A management API call (JSON body when ``payload`` is given)."""
        if payload is None:
            return self.request(method, url, **kw)
        function, event = self.factory.json(method, url, payload, **kw)
        return to_response(self.host.invoke(function, event))

    def inbound(
        self, sender: str, body: str, *, base64_body: bool = False, key: str | None = None
    ) -> Response:
        """Plum's POST of one incoming SMS to the Application URL."""
        fields = {
            "sms_message_id": uuid.uuid4().hex,
            "from": sender,
            "to": SMS_NUMBER,
            "body": body,
            "request_timestamp": "1700000000",
        }
        return self.inbound_fields(fields, base64_body=base64_body, key=key)

    def inbound_fields(
        self, fields: dict[str, str], *, base64_body: bool = False, key: str | None = None
    ) -> Response:
        """Plum's POST with exactly ``fields``."""
        function, event = self.factory.form(
            f"/plum/inbound?key={key or self.webhook_key}", fields, base64_body=base64_body
        )
        return to_response(self.host.invoke(function, event))

    def scheduled(self, function: str) -> Invocation:
        """One run of ``function`` from its EventBridge schedule."""
        rule = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{STACK}-{function}-schedule"
        return self.host.invoke(function, self.factory.schedule(rule))

    def messages(self, **query: str) -> list[dict[str, Any]]:
        """Items of ``GET /messages`` (through the deployed API)."""
        response = self.request("GET", "/messages?" + urlencode(query))
        assert response.status == 200, response.body
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def queue_events(self, queue_url: str) -> list[dict[str, Any]]:
        """Events delivered to an SQS queue by the bus's rules (drained)."""
        sqs = self.aws("sqs")
        found: list[dict[str, Any]] = []
        while True:
            got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            batch = got.get("Messages", [])
            if not batch:
                return found
            for message in batch:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def close(self) -> None:
        self.host.recycle()
        self.invoke_api.stop()
        self.gateway.stop()
        self.simulator.stop()
        self.xray.stop()
        self.moto.stop()


class _Gateway:
    """API Gateway's public URL for Plum's callbacks: HTTP in, proxy events to the functions."""

    def __init__(self, stack: Stack) -> None:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {"Content-Type": self.headers.get("content-type", "")}
                try:
                    response = stack.request("POST", self.path, body=body.decode(), headers=headers)
                    status, data = response.status, response.body
                except LookupError:
                    status, data = 403, b'{"message": "Missing Authentication Token"}'
                gateway.seen.append((self.path, status))
                self.send_response(status)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.seen: list[tuple[str, int]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="session")
def stack(artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The deployed stack, shared by the tier (tests use their own phone numbers)."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        os.environ.pop(name, None)
    deployed = Stack(tmp_path_factory.mktemp("lambda-logs"))
    yield deployed
    deployed.close()


_numbers = iter(range(1000, 9999))


@pytest.fixture
def phone() -> str:
    """A customer number no other test uses."""
    return f"+1999555{next(_numbers):04d}"


def path_of(url: str) -> str:
    """The path of ``url``."""
    return urlsplit(url).path


@pytest.fixture(autouse=True)
def _every_call_is_allowed(request: pytest.FixtureRequest) -> Iterator[None]:
    """A call outside the function's IAM policy fails the test, as it would fail on AWS.

    (The call itself was already refused with AccessDeniedException inside the function.)
    """
    if "stack" not in request.fixturenames or request.node.get_closest_marker("denies_on_purpose"):
        yield
        return
    deployed: Stack = request.getfixturevalue("stack")
    before = {name: len(calls) for name, calls in deployed.host.calls.items()}
    yield
    denied = [
        (name, call["operation"], call["denied"])
        for name, calls in deployed.host.calls.items()
        for call in calls[before.get(name, 0) :]
        if call["denied"]
    ]
    assert not denied, f"calls outside the functions' IAM policies: {denied}"
