"""Suite-wide pytest configuration (the suite's only conftest.py).

Tests that need a real server (SLURM, sshd, PostgreSQL) start it themselves
on loopback. Where the server's programs are missing they are skipped on a
developer machine, but with ``CI=true`` they fail: CI installs everything
(``testkit.require``). Helpers shared between test modules live in the
``testkit`` package, never in this file: a conftest is not a module to import.
"""

from __future__ import annotations

import signal

import pytest


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
