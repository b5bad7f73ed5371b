"""The documentation's self-contained Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

from plumsms.domain.models import InboundSms
from plumsms_local.template import PROJECT_ROOT


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


def test_the_simulator_example_runs() -> None:
    # GIVEN the "From Python" example of docs/simulator.md (nothing listens on :3000 here,
    # so its Application URL answers nothing: the example must not depend on it)
    [example] = python_blocks(PROJECT_ROOT / "docs" / "simulator.md")
    namespace: dict[str, object] = {}
    exec(compile(example, "docs/simulator.md", "exec"), namespace)
    # THEN it ran to its end: HELP reached the phone from the carrier
    assert namespace["answer"]["source"] == "carrier"  # type: ignore[index]


def test_the_reply_hook_example_answers_orders_and_passes_the_rest() -> None:
    [example] = python_blocks(PROJECT_ROOT / "docs" / "inbound.md")
    namespace: dict[str, object] = {}
    exec(compile(example, "docs/inbound.md", "exec"), namespace)
    hook = namespace["on_inbound"]
    order = InboundSms.model_validate(
        {"sms_message_id": "a" * 32, "to": "+12435678910", "from": "+19998881234",
         "body": "order 42"}
    )  # fmt: skip
    assert hook(order) == [  # type: ignore[operator]
        {"to": "+19998881234", "from": "+12435678910", "body": "Order 42 is on its way"}
    ]
    assert hook(order.model_copy(update={"body": "hi"})) is None  # type: ignore[operator]
