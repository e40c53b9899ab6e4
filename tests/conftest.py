"""Shared test set-up.

Two tiers: pure tests (no root, no kernel) and kernel tests (root, real
loads).  A test may skip only when a *named kernel feature* is missing, with a
reason starting ``kernel feature missing:``.  With ``PUREBPF_STRICT_SKIPS=1``
(set by .ci/run) every other skip -- a missing oracle tool, no root -- is
turned into a failure, so CI never passes by skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, List

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
ALLOWED_SKIP_PREFIX = "kernel feature missing:"


def fixture_objects() -> List[Path]:
    """Every committed fixture object (little- and big-endian)."""
    return sorted((FIXTURES / "obj").glob("*.o"))


def _mounted(path: str) -> bool:
    return subprocess.run(["mountpoint", "-q", path], check=False).returncode == 0


def pytest_sessionstart(session: Any) -> None:
    """Mount tracefs and bpffs when running as root and they are missing."""
    if os.geteuid() != 0 or not shutil.which("mountpoint"):
        return
    for fstype, path in (("tracefs", "/sys/kernel/tracing"), ("bpf", "/sys/fs/bpf")):
        if os.path.isdir(path) and not _mounted(path):
            subprocess.run(["mount", "-t", fstype, fstype, path], check=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Any:
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("PUREBPF_STRICT_SKIPS") != "1" or not report.skipped:
        return
    if hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    if reason.startswith("Skipped: "):
        reason = reason[len("Skipped: "):]
    if reason.startswith(ALLOWED_SKIP_PREFIX):
        return
    report.outcome = "failed"
    report.longrepr = f"unexpected skip in strict mode (only '{ALLOWED_SKIP_PREFIX} ...' may skip): {reason}"
