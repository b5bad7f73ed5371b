"""The documentation's examples, run as written against a stack on moved ports.

Shell blocks are read from the Markdown: each ``smsctl`` / ``$S`` command is run with
bash; ``#    text`` lines under a command are output it must print; a trailing
``# smsctl: ...`` comment means the command is refused with that message. Only what
cannot run here is adapted: placeholders (``<id>``, ``3f2a...``) get a real id, ``tail``
stops after one poll, ``ui`` opens no browser window, and deployed-stack lines are left out.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from plumsms_local.dynamodb import free_port
from plumsms_local.template import PROJECT_ROOT
from tests.e2e.local_stack import spawn_stack, stack_env

pytestmark = pytest.mark.e2e

SMSCTL = str(Path(sys.executable).parent / "smsctl")
_COMMENT = re.compile(r"\s{2,}#\s?(.*)$")
_PLACEHOLDERS = re.compile(r"<id>|\b[0-9a-f]{4}\.\.\.|\b8f9d203676cf4afe96bc7039d047057f\b")


@dataclass
class Example:
    command: str
    expected: list[str] = field(default_factory=list)
    refusal: str | None = None
    source: str = ""


def shell_examples(path: Path, heading: str | None = None) -> list[Example]:
    """The commands of every ``sh``/``bash`` block (under ``heading`` if given)."""
    text = path.read_text(encoding="utf-8")
    if heading is not None:
        start = text.index(heading)
        end = text.find("\n## ", start + len(heading))
        text = text[start : end if end > 0 else None]
    examples: list[Example] = []
    for block in re.findall(r"```(?:sh|bash)\n(.*?)```", text, flags=re.S):
        if block.startswith("curl "):  # one command, its JSON spread over lines
            examples.append(Example(command=block.strip(), source=f"{path.name}: curl"))
            continue
        after_command = False
        for line in block.replace("\\\n", " ").splitlines():
            stripped = line.strip()
            if after_command and stripped.startswith("#    "):
                examples[-1].expected.append(stripped[1:].strip().lstrip("<- ").strip())
                continue
            after_command = stripped.startswith(("$S ", "smsctl "))
            if not after_command:
                continue
            comment = _COMMENT.search(stripped)
            note = comment.group(1) if comment else ""
            examples.append(
                Example(
                    command=_COMMENT.sub("", stripped),
                    refusal=note if note.startswith("smsctl:") else None,
                    source=f"{path.name}: {stripped}",
                )
            )
    return examples


@dataclass
class Stack:
    process: subprocess.Popen[str]
    env: dict[str, str]
    workdir: Path

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", command],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def pending_id(self) -> str:
        done = self.run(f"{SMSCTL} --json scheduled")
        items = json.loads(done.stdout)["items"]
        if items:
            return str(items[0]["id"])
        made = self.run(f"{SMSCTL} --json schedule --to +12125550123 --in 1h 'an example'")
        return str(json.loads(made.stdout)["id"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """make run with its shipped rules, on ports that are not the defaults."""
    state_dir = tmp_path_factory.mktemp("doc-stack")
    env = stack_env(
        **{
            "PORT": str(free_port()),
            "SIM_PORT": str(free_port()),
            "LOCAL_STATE_FILE": str(state_dir / "stack.json"),
            "DISPATCH_INTERVAL_SECONDS": "0.5",
            "SIM_DELAY_SENT_SECONDS": "0.05",
            "SIM_DELAY_FINAL_SECONDS": "0.05",
        }
    )
    process = spawn_stack(env, quiet=True)
    deadline = time.monotonic() + 60
    while not (state_dir / "stack.json").exists():
        assert time.monotonic() < deadline and process.poll() is None, "make run did not start"
        time.sleep(0.2)
    # smsctl gets only what a person's second terminal has: the state file's location.
    smsctl_env = {k: v for k, v in env.items() if k not in {"PORT", "SIM_PORT"}}
    yield Stack(process, smsctl_env, state_dir)
    process.terminate()
    process.wait(timeout=30)


def adapt(example: Example, stack: Stack) -> str | None:
    command = example.command
    if "execute-api" in command:
        return None  # a deployed stack
    command = command.replace("$S ", f"{SMSCTL} ", 1)
    if command.startswith("smsctl "):
        command = SMSCTL + command[len("smsctl") :]
    if _PLACEHOLDERS.search(command):
        command = _PLACEHOLDERS.sub(stack.pending_id(), command)
    if re.search(r" tail\b", command):
        command += " --polls 1 --interval 0.2"
    if re.search(r" ui\b", command):
        command += " --no-browser"
    return command


def run_examples(stack: Stack, examples: list[Example]) -> None:
    assert examples
    for example in examples:
        command = adapt(example, stack)
        if command is None:
            continue
        done = stack.run(command)
        output = done.stdout + done.stderr
        if example.refusal:
            assert done.returncode != 0, example.source
            assert example.refusal in done.stderr, (example.source, done.stderr)
            continue
        assert done.returncode == 0, (example.source, output)
        assert "Traceback" not in output, example.source
        for expected in example.expected:
            assert expected in done.stdout, (example.source, expected, done.stdout)


def test_the_readme_tour_works_as_written_on_moved_ports(stack: Stack) -> None:
    run_examples(stack, shell_examples(PROJECT_ROOT / "README.md", "## Five-minute tour"))


def test_the_smsctl_examples_of_docs_sending_work(stack: Stack) -> None:
    run_examples(stack, [e for e in shell_examples(PROJECT_ROOT / "docs/sending.md")
                         if e.command.startswith("smsctl ")])  # fmt: skip


def test_the_curl_example_of_docs_sending_works(stack: Stack) -> None:
    saved = json.loads((stack.workdir / "stack.json").read_text())
    curl = [e for e in shell_examples(PROJECT_ROOT / "docs/sending.md") if e.command[:4] == "curl"]
    assert curl and shutil.which("curl")
    env = {**stack.env, "URL": saved["api_url"].rstrip("/"), "API_TOKEN": saved["api_token"]}
    done = subprocess.run(["bash", "-c", curl[0].command], env=env, capture_output=True,
                          text=True, timeout=30, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["status"] == "scheduled" and answer["schedule"]["recurrence"]["count"] == 5


def test_the_smsctl_examples_of_docs_log_work(stack: Stack) -> None:
    run_examples(stack, [e for e in shell_examples(PROJECT_ROOT / "docs/log.md")
                         if e.command.startswith("smsctl ")])  # fmt: skip
