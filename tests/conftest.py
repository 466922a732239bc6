"""Suite-wide helpers.

Tests that need a real server (SLURM, sshd, PostgreSQL) start it themselves
on loopback. Where the server's programs are missing they are skipped on a
developer machine, but with ``CI=true`` they fail: CI installs everything.
"""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(available: bool, what: str) -> None:
    """Skip (developer machine) or fail (CI) when ``what`` is not available."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not available", pytrace=False)
    pytest.skip(f"{what} is not available on this machine")
