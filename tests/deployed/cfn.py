"""What CloudFormation and SAM make of template.yaml, for one emulated deployment.

Resolves the intrinsic functions the template uses (Ref, Fn::GetAtt, Fn::Sub, Fn::If,
Fn::Equals, Fn::Not) against the physical names and ARNs of the emulated account, merges
the Globals into each function the way SAM does, and adds what Lambda itself puts in a
function's environment. Deliberately small: an intrinsic it does not know fails loudly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plumsms_local import template as source_template

NO_VALUE = object()


@dataclass
class Deployment:
    """Parameters and physical resources of one emulated stack."""

    stack_name: str
    region: str
    account: str
    parameters: dict[str, str] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    """Logical id -> what ``Ref`` returns (a name or an ARN)."""
    attributes: dict[str, str] = field(default_factory=dict)
    """``Logical.Attribute`` -> what ``Fn::GetAtt`` returns."""

    def pseudo(self) -> dict[str, Any]:
        return {
            "AWS::StackName": self.stack_name,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }


class Resolver:
    """Evaluates intrinsic functions of ``template`` for ``deployment``."""

    def __init__(self, template: dict[str, Any], deployment: Deployment) -> None:
        self.template = template
        self.deployment = deployment
        defaults = {
            name: str(spec.get("Default", ""))
            for name, spec in template.get("Parameters", {}).items()
        }
        self.parameters = {**defaults, **deployment.parameters}
        self.conditions = {
            name: self._truth(body) for name, body in template.get("Conditions", {}).items()
        }

    def _truth(self, body: Any) -> bool:
        if "Fn::Equals" in body:
            left, right = (self.resolve(v) for v in body["Fn::Equals"])
            return bool(left == right)
        if "Fn::Not" in body:
            return not self._truth(body["Fn::Not"][0])
        if "Condition" in body:
            return bool(self.conditions[body["Condition"]])
        raise ValueError(f"unsupported condition {body}")

    def ref(self, name: str) -> Any:
        pseudo = self.deployment.pseudo()
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.deployment.refs:
            return self.deployment.refs[name]
        raise KeyError(f"Ref {name}: no physical resource in the emulated account")

    def get_att(self, logical: str, attribute: str) -> Any:
        key = f"{logical}.{attribute}"
        if key not in self.deployment.attributes:
            raise KeyError(f"GetAtt {key}: not provided by the emulated account")
        return self.deployment.attributes[key]

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic function evaluated (NoValue entries dropped)."""
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.get_att(logical, attribute)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::If":
                name, when_true, when_false = arg
                return self.resolve(when_true if self.conditions[name] else when_false)
            if key.startswith("Fn::"):
                raise ValueError(f"unsupported intrinsic {key}")
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _sub(self, arg: Any) -> str:
        text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in extra:
                return str(self.resolve(extra[name]))
            if "." in name and not name.startswith("AWS::"):
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!]+)\}", one, text)


@dataclass
class FunctionDefinition:
    """One function as deployed: environment, role statements, limits."""

    logical_id: str
    physical_name: str
    handler: str
    environment: dict[str, str]
    statements: list[dict[str, Any]]
    timeout: float
    memory: int
    log_level: str | None


def functions(
    template_path: Path, built_template_path: Path, deployment: Deployment
) -> dict[str, FunctionDefinition]:
    """Every ``AWS::Serverless::Function``, with Globals merged as SAM merges them."""
    template = source_template.load(template_path)
    resolver = Resolver(template, deployment)
    globals_ = template.get("Globals", {}).get("Function", {})
    built = source_template.load(built_template_path)
    found: dict[str, FunctionDefinition] = {}
    for logical, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        variables = {
            **globals_.get("Environment", {}).get("Variables", {}),
            **props.get("Environment", {}).get("Variables", {}),
        }
        environment = {k: str(v) for k, v in resolver.resolve(variables).items()}
        statements: list[dict[str, Any]] = []
        for policy in props.get("Policies", []):
            if not isinstance(policy, dict) or "Statement" not in policy:
                raise ValueError(f"{logical}: only inline statements are understood")
            statements.extend(resolver.resolve(policy["Statement"]))
        # Policies attached to the role SAM generates (``<Function>Role``) apply too.
        for attached in template["Resources"].values():
            if attached.get("Type") == "AWS::IAM::Policy" and {"Ref": f"{logical}Role"} in (
                attached["Properties"].get("Roles", [])
            ):
                statements.extend(
                    resolver.resolve(attached["Properties"]["PolicyDocument"]["Statement"])
                )
        logging = {**globals_.get("LoggingConfig", {}), **props.get("LoggingConfig", {})}
        level = resolver.resolve(logging.get("ApplicationLogLevel")) if logging else None
        built_props = built["Resources"][logical]["Properties"]
        found[logical] = FunctionDefinition(
            logical_id=logical,
            physical_name=deployment.refs.get(logical, f"{deployment.stack_name}-{logical}"),
            handler=built_props["Handler"],
            environment=environment,
            statements=statements,
            timeout=float(props.get("Timeout", globals_.get("Timeout", 3))),
            memory=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
            log_level=str(level) if level else None,
        )
    return found


def lambda_environment(definition: FunctionDefinition, region: str) -> dict[str, str]:
    """The variables the Lambda service adds for a function (documented reserved names)."""
    env = {
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": definition.physical_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(definition.memory),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{definition.physical_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "emulated",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "_HANDLER": definition.handler,
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PATH": "/usr/local/bin:/usr/bin/:/bin",
    }
    if definition.log_level:
        env["AWS_LAMBDA_LOG_LEVEL"] = definition.log_level
    return env


def placeholder_deployment(template_path: Path, stack_name: str = "plumsms") -> Deployment:
    """A deployment whose every resource has a made-up physical name (for import timings)."""
    region, account = "us-east-1", "123456789012"
    refs: dict[str, str] = {}
    attributes: dict[str, str] = {}
    for logical, resource in source_template.load(template_path)["Resources"].items():
        kind = resource["Type"]
        name = f"{stack_name}-{logical}-PLACEHOLDER"
        if kind == "AWS::SecretsManager::Secret":
            refs[logical] = f"arn:aws:secretsmanager:{region}:{account}:secret:{name}-AbCdEf"
        else:
            refs[logical] = name
        service = kind.split("::")[1].lower()
        attributes[f"{logical}.Arn"] = f"arn:aws:{service}:{region}:{account}:{name}"
    return Deployment(stack_name, region, account, {}, refs, attributes)
