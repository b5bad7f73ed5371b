"""Print the CloudFormation template SAM makes of template.yaml (run by the tools venv).

Code locations become S3 URIs first, as ``sam package`` makes them; everything else is
SAM's own transform, so the tests check what CloudFormation would be asked to create.
"""

from __future__ import annotations

import json
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


def main(path: str) -> None:
    with open(path, encoding="utf-8") as handle:
        template = yaml_parse(handle.read())
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if key in props:
                props[key] = "s3://artifacts/code.zip"
    sys.stdout.write(json.dumps(transform(template, {}, _NoManagedPolicies())))


if __name__ == "__main__":
    main(sys.argv[1])
