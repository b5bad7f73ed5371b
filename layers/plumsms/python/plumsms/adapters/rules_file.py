"""Load the rules file (JSON or YAML) and the optional user hook, with clear errors."""

from __future__ import annotations

import importlib
import json
from collections.abc import Sequence
from pathlib import Path

import yaml
from pydantic import ValidationError

from plumsms.domain.errors import ConfigurationError
from plumsms.domain.models import InboundSms, Reply
from plumsms.domain.rules import ReplyHook, RulesConfig


def load_rules(path: Path | None) -> RulesConfig:
    """Read and validate the rules file; no file means no automatic replies."""
    if path is None:
        return RulesConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"RULES_FILE {path}: cannot be read ({exc.strerror})") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"RULES_FILE {path}: not valid JSON/YAML ({exc})") from exc
    try:
        return RulesConfig.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'rules'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigurationError(f"RULES_FILE {path}: {problems}") from exc


def load_hook(dotted: str | None) -> ReplyHook | None:
    """Import ``package.module:function``; its answers are validated as replies."""
    if not dotted:
        return None
    module_name, _, attribute = dotted.partition(":")
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"REPLY_HOOK {dotted}: cannot be imported ({exc})") from exc
    if not callable(target):
        raise ConfigurationError(f"REPLY_HOOK {dotted}: is not callable")

    def hook(inbound: InboundSms) -> Sequence[Reply] | None:
        answer = target(inbound)
        if answer is None:
            return None
        return [r if isinstance(r, Reply) else Reply.model_validate(r) for r in answer]

    return hook
