"""Read ``template.yaml``: the table definition and the API routes, for tests and the local stack.

The template is the single source of truth: the local gateway serves exactly the routes
its functions declare, and every test table is created from its key schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = PROJECT_ROOT / "template.yaml"
TABLE_RESOURCE = "MessagesTable"


class _CfnLoader(yaml.SafeLoader):
    """A safe loader that keeps CloudFormation short-form tags as plain data."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {f"Fn::{suffix}" if suffix != "Ref" else "Ref": value}


_CfnLoader.add_multi_constructor("!", _tag)


@cache
def load(path: Path = TEMPLATE) -> dict[str, Any]:
    """The parsed template."""
    with path.open(encoding="utf-8") as handle:
        data: dict[str, Any] = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - safe subclass
    return data


def table_definition(table_name: str, path: Path = TEMPLATE) -> dict[str, Any]:
    """``CreateTable`` arguments for the message table, straight from the template."""
    props = load(path)["Resources"][TABLE_RESOURCE]["Properties"]
    definition: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        definition["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    return definition


def ttl_attribute(path: Path = TEMPLATE) -> str | None:
    """The table's TTL attribute name, if TTL is enabled."""
    spec = load(path)["Resources"][TABLE_RESOURCE]["Properties"].get("TimeToLiveSpecification")
    return str(spec["AttributeName"]) if spec and spec.get("Enabled") else None


@dataclass(frozen=True, slots=True)
class Route:
    """One API route a function declares in the template."""

    method: str
    path: str
    function: str
    handler_file: Path
    authorized: bool

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """Path parameters when ``method`` and ``path`` hit this route, else None."""
        if self.method not in {method.upper(), "ANY"}:
            return None
        # "/messages/{id}" -> literal pieces escaped, each {name} a named group.
        pieces = re.split(r"\{(\w+)\+?\}", self.path)
        pattern = "".join(
            re.escape(piece) if index % 2 == 0 else f"(?P<{piece}>[^/]+)"
            for index, piece in enumerate(pieces)
        )
        found = re.fullmatch(pattern, path.rstrip("/") or "/")
        return found.groupdict() if found else None


def routes(path: Path = TEMPLATE) -> list[Route]:
    """Every ``Api`` event of every function, most specific paths first."""
    found: list[Route] = []
    for name, resource in load(path)["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        handler_module = props["Handler"].split(".", 1)[0]
        handler_file = path.parent / props["CodeUri"] / f"{handler_module}.py"
        for event in (props.get("Events") or {}).values():
            if event.get("Type") != "Api":
                continue
            event_props = event["Properties"]
            auth = (event_props.get("Auth") or {}).get("Authorizer")
            found.append(
                Route(
                    method=event_props["Method"].upper(),
                    path=event_props["Path"],
                    function=name,
                    handler_file=handler_file,
                    authorized=auth == "AWS_IAM",
                )
            )
    # Literal segments before parameters, so /messages/export wins over /messages/{id}.
    return sorted(found, key=lambda r: (r.path.count("{"), -len(r.path)))
