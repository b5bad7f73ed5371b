"""The built artifacts themselves: layer layout, bytecode, pins, size and architecture."""

from __future__ import annotations

import re
import struct
import tomllib
from pathlib import Path

import pytest

from plumsms_local.template import PROJECT_ROOT

from .conftest import BUILD_DIR, HOST_ARCH

DEPLOY_BUILD = PROJECT_ROOT / ".aws-sam" / "build"
LOCK = PROJECT_ROOT / "layers" / "plumsms" / "requirements.lock"
REQUIREMENTS = PROJECT_ROOT / "layers" / "plumsms" / "requirements.txt"
MAX_LAYER_MB = 40
# What the Lambda python3.13 runtime provides; a vendored copy would shadow it.
RUNTIME_PACKAGES = {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six"}
ELF_MACHINE = {"x86_64": 62, "arm64": 183}


def _layer(build: Path) -> Path:
    return build / "PlumSmsLayer" / "python"


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()] = version
    return pins


def _elf_machine(path: Path) -> int:
    """The ELF header's e_machine, read without loading the file."""
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path} is not an ELF file"
    endian = "<" if header[5] == 1 else ">"
    return int(struct.unpack(endian + "H", header[18:20])[0])


def _deploy_arch() -> str:
    config = tomllib.loads((PROJECT_ROOT / "samconfig.toml").read_text())
    overrides = config["default"]["global"]["parameters"]["parameter_overrides"]
    found = re.search(r"Architecture=(\w+)", overrides)
    assert found, "samconfig.toml must set Architecture for build and deploy alike"
    return found.group(1)


@pytest.mark.parametrize("build", [DEPLOY_BUILD, BUILD_DIR], ids=["deploy", "host"])
def test_the_package_is_where_lambda_imports_it(artifacts: Path, build: Path) -> None:
    # GIVEN the layer artifact WHEN Lambda mounts it at /opt THEN /opt/python/plumsms exists
    layer = _layer(build)
    assert (layer / "plumsms" / "__init__.py").is_file()
    assert not (layer / "python").exists(), "python/python/... is never on Lambda's path"
    assert (layer / "plumsms" / "schemas" / "reply.xsd").is_file()


def test_every_module_ships_bytecode_that_is_never_revalidated(artifacts: Path) -> None:
    # /opt is read-only: without .pyc files every cold start compiles every module.
    layer = _layer(DEPLOY_BUILD)
    sources = [p for p in layer.rglob("*.py") if "__pycache__" not in p.parts]
    assert len(sources) > 500
    missing, checked = [], []
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
        if not pyc.exists():
            missing.append(source)
            continue
        flags = struct.unpack("<I", pyc.read_bytes()[4:8])[0]
        checked.append(flags)
    assert not missing, missing[:5]
    # PEP 552: bit 0 = hash-based, bit 1 = check_source; unchecked-hash is exactly 0b01.
    assert set(checked) == {1}


def test_the_lock_pins_every_dependency_and_the_layer_ships_exactly_it(artifacts: Path) -> None:
    lock = _pins(LOCK)
    requirements = _pins(REQUIREMENTS)
    for name, version in requirements.items():
        assert lock.get(name) == version, f"{name} differs between requirements.txt and the lock"
    shipped = {}
    for info in _layer(DEPLOY_BUILD).glob("*.dist-info"):
        name, version = info.name.removesuffix(".dist-info").rsplit("-", 1)
        shipped[re.sub(r"[-_.]+", "-", name).lower()] = version
    assert shipped == lock
    assert not RUNTIME_PACKAGES & set(shipped), "the runtime's SDK must not be vendored"
    assert not (_layer(DEPLOY_BUILD) / "botocore").exists()


def test_unused_data_is_pruned_and_the_layer_fits(artifacts: Path) -> None:
    layer = _layer(DEPLOY_BUILD)
    for unused in (
        "phonenumbers/geodata",
        "phonenumbers/carrierdata",
        "lxml/includes",
        "lxml/html",
    ):
        assert not (layer / unused).exists(), unused
    # What the code does use stays: phone time zones (scheduling) and lxml.etree.
    assert (layer / "phonenumbers" / "tzdata").is_dir()
    assert list((layer / "lxml").glob("etree*.so"))
    size = sum(p.stat().st_size for p in layer.parent.rglob("*") if p.is_file())
    print(f"layer unzipped: {size / 1e6:.1f} MB")
    assert size <= MAX_LAYER_MB * 1e6


def test_the_deploy_build_matches_the_deploy_architecture(artifacts: Path) -> None:
    # GIVEN samconfig's Architecture (read by sam build and sam deploy alike)
    arch = _deploy_arch()
    layer = _layer(DEPLOY_BUILD)
    assert (layer / "plumsms" / "BUILD_ARCH").read_text().strip() == arch
    # THEN every native extension is for that machine (checked in the header, not run)
    extensions = list(layer.rglob("*.so"))
    assert extensions
    wrong = [p for p in extensions if _elf_machine(p) != ELF_MACHINE[arch]]
    assert not wrong, wrong[:3]


def test_the_host_build_is_for_this_machine(artifacts: Path) -> None:
    extensions = list(_layer(BUILD_DIR).rglob("*.so"))
    assert extensions
    assert {_elf_machine(p) for p in extensions} == {ELF_MACHINE[HOST_ARCH]}
    assert (_layer(BUILD_DIR) / "plumsms" / "BUILD_ARCH").read_text().strip() == HOST_ARCH


def test_functions_import_the_layer_and_the_runtime_sdk_only(stack) -> None:  # type: ignore[no-untyped-def]
    layer = str(BUILD_DIR / "PlumSmsLayer" / "python")
    for function in stack.definitions:
        environment = stack.host.cold_start(function)
        origins = environment.modules
        assert origins["plumsms"].startswith(layer), (function, origins)
        assert origins["urllib3"] is None or origins["urllib3"].startswith(layer)
        if origins["botocore"]:
            assert "lambda-runtime" in origins["botocore"], (function, origins)
