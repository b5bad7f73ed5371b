"""Print the Lambda architecture the layer is built for (arm64 or x86_64).

One setting for build and deploy: the ``Architecture`` override in samconfig.toml's
``parameter_overrides`` (global, so ``sam build`` and ``sam deploy`` read the same), else
the template's default. Standard library only: it runs before any virtualenv exists.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path


def architecture(root: Path) -> str:
    """The architecture samconfig.toml sets, or the template's default."""
    config = tomllib.loads((root / "samconfig.toml").read_text(encoding="utf-8"))
    for section in ("global", "build", "deploy"):
        overrides = config.get("default", {}).get(section, {}).get("parameters", {})
        found = re.search(r"\bArchitecture=(\w+)", str(overrides.get("parameter_overrides", "")))
        if found:
            return found.group(1)
    template = (root / "template.yaml").read_text(encoding="utf-8")
    default = re.search(r"^  Architecture:\n(?:    .*\n)*?    Default: (\w+)", template, re.M)
    return default.group(1) if default else "arm64"


if __name__ == "__main__":
    sys.stdout.write(architecture(Path(sys.argv[1] if len(sys.argv) > 1 else ".")) + "\n")
