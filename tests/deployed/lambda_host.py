"""The Lambda service, emulated for the built artifacts: execution environments as fresh
python3.13 processes, asynchronous Invoke, and the X-Ray daemon's UDP socket.

Each execution environment is one process that handles one event at a time; a function
gets a new environment whenever all of its environments are busy, as Lambda scales out.
Environments share nothing but what AWS would share: the emulated account and Plum.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

BOOTSTRAP = Path(__file__).parent / "runtime" / "bootstrap.py"
INIT_TIMEOUT_SECONDS = 60


class InitError(RuntimeError):
    """The function failed its Init phase (e.g. ``Runtime.ImportModuleError``)."""

    def __init__(self, function: str, error: dict[str, Any]) -> None:
        super().__init__(f"{function}: {error['errorType']}: {error['errorMessage']}")
        self.error = error


@dataclass
class Invocation:
    """What one invocation returned, and every AWS call it made."""

    result: Any
    error: dict[str, Any] | None
    calls: list[dict[str, Any]]
    duration_ms: float
    request_id: str

    def denied(self) -> list[dict[str, Any]]:
        """Calls the function's policy did not allow."""
        return [c for c in self.calls if c["denied"]]


@dataclass
class FunctionSpec:
    """One function as the template and the build define it."""

    name: str
    task_root: Path
    handler: str
    environment: dict[str, str]
    policy: list[dict[str, Any]]
    timeout: float
    memory: int


class Environment:
    """One execution environment: a python3.13 process holding the function's module."""

    def __init__(self, spec: FunctionSpec, host: LambdaHost) -> None:
        self.spec = spec
        self.host = host
        config = {
            "task_root": str(spec.task_root),
            "layer_dir": str(host.layer_dir),
            "runtime_dir": str(host.runtime_dir),
            "script_dir": str(BOOTSTRAP.parent),
            "handler": spec.handler,
            "policy": spec.policy,
            "region": host.region,
            "account": host.account,
        }
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        env = {
            **spec.environment,
            "EMULATOR_CONFIG": json.dumps(config),
            "EMULATOR_FDS": f"{to_child_r},{from_child_w}",
        }
        self.log_path = host.log_dir / f"{spec.name}-{uuid.uuid4().hex[:8]}.log"
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [host.python, "-I", "-S", "-B", str(BOOTSTRAP)],
            env=env,
            cwd=spec.task_root,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(to_child_r, from_child_w),
        )
        log.close()
        os.close(to_child_r)
        os.close(from_child_w)
        self._requests = os.fdopen(to_child_w, "w", encoding="utf-8")
        self._answers = os.fdopen(from_child_r, "r", encoding="utf-8")
        init = self._read(INIT_TIMEOUT_SECONDS)
        self.init_ms: float = init["init_ms"]
        self.init_calls: list[dict[str, Any]] = init["calls"]
        host.record(spec.name, init["calls"])
        if "error" in init:
            self.close()
            raise InitError(spec.name, init["error"])
        self.modules: list[str] = init["modules"]

    def _read(self, timeout: float) -> dict[str, Any]:
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(self._answers.readline()))
        reader.start()
        reader.join(timeout)
        if not box or not box[0]:
            self.process.kill()
            raise TimeoutError(f"{self.spec.name}: no answer (see {self.log_path})")
        answer: dict[str, Any] = json.loads(box[0])
        return answer

    def invoke(self, event: dict[str, Any], timeout: float | None = None) -> Invocation:
        """Run one event through the handler, as one Lambda invocation; ``timeout`` starts
        its context's countdown lower than the function's (an invocation near its end)."""
        request_id = str(uuid.uuid4())
        root = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
        trace_id = f"Root={root};Parent={uuid.uuid4().hex[:16]};Sampled=1"
        request = {
            "event": event,
            "trace_id": trace_id,
            "context": {
                "request_id": request_id,
                "timeout": self.spec.timeout if timeout is None else timeout,
                "arn": f"arn:aws:lambda:{self.host.region}:{self.host.account}:function:"
                + self.spec.environment["AWS_LAMBDA_FUNCTION_NAME"],
            },
        }
        self._requests.write(json.dumps(request) + "\n")
        self._requests.flush()
        answer = self._read(self.spec.timeout + 30)
        self.host.record(self.spec.name, answer["calls"])
        return Invocation(
            result=answer.get("result"),
            error=answer.get("error"),
            calls=answer["calls"],
            duration_ms=answer["duration_ms"],
            request_id=request_id,
        )

    def close(self) -> None:
        """End the process (Lambda's Shutdown phase)."""
        for stream in (self._requests, self._answers):
            with contextlib.suppress(OSError):
                stream.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class _Pool:
    idle: list[Environment] = field(default_factory=list)
    all: list[Environment] = field(default_factory=list)


class LambdaHost:
    """Runs functions from their built artifacts; keeps every AWS call each one made."""

    def __init__(
        self,
        python: str,
        layer_dir: Path,
        runtime_dir: Path,
        log_dir: Path,
        region: str,
        account: str,
    ) -> None:
        self.python = python
        self.layer_dir = layer_dir
        self.runtime_dir = runtime_dir
        self.log_dir = log_dir
        self.region = region
        self.account = account
        self.specs: dict[str, FunctionSpec] = {}
        self.calls: dict[str, list[dict[str, Any]]] = {}
        self._pools: dict[str, _Pool] = {}
        self._lock = threading.Lock()

    def add(self, spec: FunctionSpec) -> None:
        """Make ``spec`` invocable (environments start on first use)."""
        self.specs[spec.name] = spec
        self._pools[spec.name] = _Pool()
        self.calls.setdefault(spec.name, [])

    def record(self, function: str, calls: list[dict[str, Any]]) -> None:
        """Keep ``calls`` for the least-privilege report."""
        with self._lock:
            self.calls.setdefault(function, []).extend(calls)

    def invoke(
        self, function: str, event: dict[str, Any], timeout: float | None = None
    ) -> Invocation:
        """Invoke synchronously on an idle environment, or a new one (a cold start)."""
        pool = self._pools[function]
        with self._lock:
            environment = pool.idle.pop() if pool.idle else None
        if environment is None:
            environment = Environment(self.specs[function], self)
            with self._lock:
                pool.all.append(environment)
        try:
            return environment.invoke(event, timeout)
        finally:
            with self._lock:
                pool.idle.append(environment)

    def cold_start(self, function: str) -> Environment:
        """A new environment of ``function`` (its init measured), kept for invocations."""
        environment = Environment(self.specs[function], self)
        with self._lock:
            self._pools[function].all.append(environment)
            self._pools[function].idle.append(environment)
        return environment

    def recycle(self, function: str | None = None) -> None:
        """End environments (all, or one function's): the next invoke is a cold start."""
        with self._lock:
            names = [function] if function else list(self._pools)
            doomed = []
            for name in names:
                doomed.extend(self._pools[name].all)
                self._pools[name] = _Pool()
        for environment in doomed:
            environment.close()

    def logs(self, function: str) -> str:
        """Everything the function's environments wrote (its CloudWatch log group)."""
        return "".join(
            path.read_text(encoding="utf-8", errors="replace")
            for path in sorted(self.log_dir.glob(f"{function}-*.log"))
        )


class InvokeApi:
    """Lambda's Invoke API on 127.0.0.1, for ``AWS_ENDPOINT_URL_LAMBDA``.

    ``InvocationType=Event`` answers 202 at once and runs the event in the background,
    as Lambda's asynchronous invoke does; the runs are kept for the tests to wait on.
    """

    def __init__(self, host: LambdaHost, names: dict[str, str]) -> None:
        self.host = host
        self.names = names  # physical function name -> logical name
        self.runs: list[tuple[str, threading.Thread, list[Invocation]]] = []
        self.requests: list[dict[str, Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                payload = json.loads(self.rfile.read(length) or b"{}")
                name = self.path.split("/functions/", 1)[1].split("/", 1)[0]
                name = name.rsplit(":", 1)[-1]
                kind = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
                api.requests.append({"function": name, "type": kind, "payload": payload})
                logical = api.names.get(name)
                if logical is None:
                    self._send(404, {"Type": "User", "message": f"Function not found: {name}"})
                    return
                if kind == "Event":
                    api.start(logical, payload)
                    self.send_response(202)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                invocation = api.host.invoke(logical, payload)
                self._send(200, invocation.result)

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        """The endpoint URL."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self, function: str, event: dict[str, Any]) -> None:
        """Run ``event`` asynchronously."""
        out: list[Invocation] = []
        thread = threading.Thread(target=lambda: out.append(self.host.invoke(function, event)))
        thread.start()
        self.runs.append((function, thread, out))

    def wait(self, timeout: float = 60) -> list[Invocation]:
        """Wait for every asynchronous run started so far; their results."""
        done: list[Invocation] = []
        for _, thread, out in list(self.runs):
            thread.join(timeout)
            done.extend(out)
        return done

    def stop(self) -> None:
        """Close the socket."""
        self._server.shutdown()
        self._server.server_close()


class XRayCollector:
    """The X-Ray daemon's UDP socket: keeps every segment document the functions send."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.datagrams: list[bytes] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """``AWS_XRAY_DAEMON_ADDRESS``."""
        return f"127.0.0.1:{self._socket.getsockname()[1]}"

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.datagrams.append(self._socket.recv(65536))
            except TimeoutError:
                continue
            except OSError:
                return

    def segments(self) -> list[dict[str, Any]]:
        """Every segment document received (header line stripped)."""
        found = []
        for datagram in list(self.datagrams):
            _, _, body = datagram.partition(b"\n")
            try:
                found.append(json.loads(body))
            except ValueError:
                continue
        return found

    def stop(self) -> None:
        """Close the socket."""
        self._stopping.set()
        self._thread.join()
        self._socket.close()


def wait_until(check: Callable[[], Any], timeout: float = 20, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
