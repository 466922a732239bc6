"""Suite-wide helpers.

Tests that need a real server (SLURM, sshd, PostgreSQL) start it themselves
on loopback. Where the server's programs are missing they are skipped on a
developer machine, but with ``CI=true`` they fail: CI installs everything.
"""

from __future__ import annotations

import os
import signal

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(available: bool, what: str) -> None:
    """Skip (developer machine) or fail (CI) when ``what`` is not available."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not available", pytrace=False)
    pytest.skip(f"{what} is not available on this machine")


def pytest_configure(config: pytest.Config) -> None:
    """Give the processes tests start the SIGINT a terminal's foreground job has.

    A shell starts a background job (``pytest ... &`` in a script, CI runners)
    with SIGINT ignored, and an ignored signal stays ignored across ``exec``:
    every ``pivot watch`` a test starts would then ignore the Ctrl-C the test
    sends it and time out. A handler, unlike ``SIG_IGN``, is reset to the
    default by ``exec``, so installing Python's own restores a terminal's
    behaviour for the children.
    """
    del config
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
