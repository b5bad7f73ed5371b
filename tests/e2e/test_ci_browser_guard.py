"""Under ``CI=true`` the browser tests fail when Chromium is missing; elsewhere, left out."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from plumsms_local.template import PROJECT_ROOT

pytestmark = pytest.mark.e2e


def run_page_tests(ci: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CI": ci, "CHROMIUM_PATH": "/nonexistent/chromium"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/e2e/test_web_page.py", "-x", "-q",
         "-p", "no:cacheprovider", "-m", "browser"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_a_missing_browser_fails_under_ci() -> None:
    done = run_page_tests("true")
    assert done.returncode != 0
    assert "no Chromium at /nonexistent/chromium" in done.stdout


def test_a_missing_browser_is_left_out_elsewhere() -> None:
    done = run_page_tests("")
    assert done.returncode == 0, done.stdout[-2000:]
    assert "skipped" in done.stdout
