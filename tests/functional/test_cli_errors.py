"""smsctl's one error path and how it finds the stack: ``smsctl: <what>`` on stderr (JSON
with --json), exit 2 for usage, quiet exit 0 when stdout closes after the action, global
options after the command, the URL tried in every connection error, and the state file
``make run`` writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from plumsms_local import state
from plumsms_local.cli import main
from plumsms_local.gateway import LocalGateway
from plumsms_local.template import PROJECT_ROOT

TOKEN = "cli-errors-token-0123456789"
SMS_NUMBER = "+12435678910"
RECIPIENT = "+12125551234"
NOWHERE = "http://127.0.0.1:9/"


@pytest.fixture
def gateway(function_env: dict[str, str]) -> Iterator[LocalGateway]:
    served = LocalGateway(TOKEN, port=0).start()
    yield served
    served.stop()


@pytest.fixture
def state_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No state file unless a test writes one (never the checkout's own)."""
    path = tmp_path / "stack.json"
    monkeypatch.setenv(state.STATE_FILE_VARIABLE, str(path))
    for name in ("SMSCTL_URL", "SMSCTL_SIM_URL", "API_TOKEN", "SMSCTL_FROM"):
        monkeypatch.delenv(name, raising=False)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    stdout = "\n".join(line for line in out.out.splitlines() if not line.startswith('{"level"'))
    return code, stdout, out.err


@pytest.mark.usefixtures("state_path")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["logs", "--since", "next week"], "smsctl: --since/--start: 'next week' is not a time"),
        (["export", "-o", "/missing/dir/x.csv"], "smsctl: --output: the folder /missing/dir"),
        (
            ["schedule", "--to", RECIPIENT, "--from", SMS_NUMBER, "--at", "10m", "x"],
            "smsctl: --at: '10m' is ambiguous",
        ),
        (
            [
                "schedule",
                "--to",
                RECIPIENT,
                "--from",
                SMS_NUMBER,
                "--in",
                "10m",
                "--tz",
                "Mars/X",
                "x",
            ],
            "smsctl: --tz:",
        ),
        (["send", "hello"], "smsctl: the following arguments are required: --to"),
        (["frobnicate"], "smsctl: argument COMMAND: invalid choice: 'frobnicate'"),
    ],
)
def test_usage_mistakes_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    # GIVEN an API nobody listens on: usage is checked before any request
    code, _, err = run(capsys, "--url", NOWHERE, "--token", TOKEN, *argv)
    assert code == 2
    assert err.startswith(message), err
    assert "Traceback" not in err and err.count("\n") == 1


def test_since_yesterday_is_understood(
    gateway: LocalGateway, capsys: pytest.CaptureFixture[str], state_path: Path
) -> None:
    code, _, err = run(
        capsys, "--url", gateway.url, "--token", TOKEN, "logs", "--since", "yesterday"
    )
    assert code == 0, err


def test_with_json_errors_are_json_too(
    gateway: LocalGateway, capsys: pytest.CaptureFixture[str], state_path: Path
) -> None:
    # WHEN an unknown message is asked for, with --json given AFTER the command
    code, out, err = run(
        capsys, "show", uuid.uuid4().hex, "--url", gateway.url, "--token", TOKEN, "--json"
    )
    # THEN the refusal is one JSON object on stderr, and stdout is empty
    assert code == 1
    assert out == ""
    error = json.loads(err)["error"]
    assert error["http_status"] == 404 and error["exit_code"] == 1


def test_json_usage_errors_are_json(capsys: pytest.CaptureFixture[str], state_path: Path) -> None:
    code, _, err = run(capsys, "--json", "logs", "--since", "someday")
    assert code == 2
    assert json.loads(err)["error"]["message"].startswith("--since/--start:")


def test_api_refusals_name_the_flag_not_the_api_field(
    gateway: LocalGateway, capsys: pytest.CaptureFixture[str], state_path: Path
) -> None:
    # GIVEN a time the API refuses (more than a year ahead)
    far = (datetime.now(UTC) + timedelta(days=800)).strftime("%Y-%m-%dT%H:%MZ")
    code, _, err = run(
        capsys, "--url", gateway.url, "--token", TOKEN,
        "schedule", "--to", RECIPIENT, "--from", SMS_NUMBER, "--at", far, "Later",
    )  # fmt: skip
    assert code == 1
    # (the in-process function's own log lines may share stderr here: find ours)
    ours = [line for line in err.splitlines() if line.startswith("smsctl:")]
    assert ours == ["smsctl: --at: is more than one year ahead (HTTP 400)"], err


def test_connection_errors_name_the_url_tried(
    capsys: pytest.CaptureFixture[str], state_path: Path
) -> None:
    code, _, err = run(capsys, "--url", NOWHERE, "logs")
    assert code == 3
    assert err.startswith(f"smsctl: cannot reach the bundle API at {NOWHERE} (")
    assert "the URL came from --url" in err
    code, _, err = run(capsys, "--sim-url", "http://127.0.0.1:9", "inbox")
    assert code == 3
    assert "cannot reach the Plum simulator at http://127.0.0.1:9" in err


def test_without_a_running_stack_the_error_says_how_to_start_one(
    capsys: pytest.CaptureFixture[str], state_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("plumsms_local.cli.common.DEFAULT_API_URL", NOWHERE)
    code, _, err = run(capsys, "logs")
    assert code == 3
    assert f"at {NOWHERE}" in err and "start `make run`" in err


def test_smsctl_finds_the_stack_make_run_wrote_down(
    gateway: LocalGateway,
    capsys: pytest.CaptureFixture[str],
    state_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the state file make run writes (moved ports, generated token)
    state.write(
        state.StackState(api_url=gateway.url, api_token=TOKEN, sms_numbers=[SMS_NUMBER],
                         pid=os.getpid()),
        state_path,
    )  # fmt: skip
    # WHEN smsctl runs with no --url, --token or variables (SMS_NUMBERS neither)
    gateway.warm()  # the functions read SMS_NUMBERS at their cold start; smsctl must not
    monkeypatch.delenv("SMS_NUMBERS")
    code, out, err = run(capsys, "--json", "send", "--to", RECIPIENT, "found you")
    # THEN it reached that stack with its token, from the account's only number
    assert code == 0, err
    assert json.loads(out)["from"] == SMS_NUMBER
    code, out, _ = run(capsys, "numbers")
    assert out.split() == [SMS_NUMBER]


def test_variables_win_over_the_state_file_and_a_dead_stack_is_named(
    capsys: pytest.CaptureFixture[str], state_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    state.write(
        state.StackState(api_url=NOWHERE, api_token=TOKEN, pid=int(dead.stdout)), state_path
    )
    code, _, err = run(capsys, "logs")
    assert code == 3
    assert "no longer running" in err and "make run" in err
    monkeypatch.setenv("SMSCTL_URL", "http://127.0.0.1:7/")
    code, _, err = run(capsys, "logs")
    assert "at http://127.0.0.1:7/" in err and "the URL came from SMSCTL_URL" in err


def test_a_closed_stdout_after_a_send_is_a_quiet_success(
    gateway: LocalGateway, capsys: pytest.CaptureFixture[str], state_path: Path
) -> None:
    # GIVEN `smsctl --json send ... | head -c0`: the reader is gone before smsctl prints
    body = f"sent once {uuid.uuid4().hex}"
    process = subprocess.Popen(
        [sys.executable, "-m", "plumsms_local.cli", "--json", "--url", gateway.url,
         "--token", TOKEN, "send", "--to", RECIPIENT, "--from", SMS_NUMBER, body],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    code = process.wait(timeout=60)
    err = process.stderr.read()
    # THEN the message was sent once, and smsctl says nothing and exits 0 (no retry)
    assert code == 0, err
    assert err == ""
    code, out, _ = run(capsys, "--url", gateway.url, "--token", TOKEN, "--json", "logs")
    assert [m["body"] for m in json.loads(out)["items"]].count(body) == 1


class _CutShort(BaseHTTPRequestHandler):
    """Promises a long export, sends a few bytes, and hangs up."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/csv")
        self.send_header("content-length", "100000")
        self.end_headers()
        self.wfile.write(b"id,type\n")
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        return


def test_a_connection_lost_mid_answer_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], state_path: Path, tmp_path: Path
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CutShort)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        code, _, err = run(capsys, "--url", url, "--token", TOKEN, "export", "-o",
                           str(tmp_path / "x.csv"))  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert code == 3
    assert err.startswith(f"smsctl: cannot reach the bundle API at {url}"), err
    assert "Traceback" not in err
    assert not (tmp_path / "x.csv").exists()  # no half file
