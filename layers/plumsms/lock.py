"""Print requirements.lock: requirements.txt resolved for the Lambda runtime, fully pinned.

Resolved by pip for python3.13 on manylinux (the runtime, not the build host), then
every package the runtime already provides is left out: boto3 and botocore must come
from the runtime as a matching pair, with their own dependencies.
Usage: ``make lock`` (writes layers/plumsms/requirements.lock).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six"}
HEADER = "\n".join(
    line
    for line in (HERE / "requirements.lock").read_text(encoding="utf-8").splitlines()
    if line.startswith("#")
)


def resolve() -> dict[str, str]:
    """Name -> version of everything requirements.txt needs on the runtime."""
    with tempfile.TemporaryDirectory() as target:
        subprocess.run(  # noqa: S603
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-compile",
                "--only-binary=:all:",
                "--implementation",
                "cp",
                "--python-version",
                "3.13",
                "--platform",
                "manylinux_2_28_x86_64",
                "--platform",
                "manylinux2014_x86_64",
                "--target",
                target,
                "-r",
                str(HERE / "requirements.txt"),
            ],
            check=True,
        )
        found = {}
        for info in Path(target).glob("*.dist-info"):
            name, version = info.name.removesuffix(".dist-info").rsplit("-", 1)
            found[re.sub(r"[-_.]+", "-", name).lower()] = version
    return {k: v for k, v in found.items() if k not in RUNTIME_PROVIDED}


if __name__ == "__main__":
    pins = resolve()
    lines = [f"{name}=={pins[name]}" for name in sorted(pins)]
    sys.stdout.write(HEADER + "\n" + "\n".join(lines) + "\n")
