"""A local command still running when its event loop stops is killed and reaped first.

The flake this pins down: ``pivot ui`` stopped while the tailer's ``squeue``
was in flight; the loop cancelled it and closed, ``squeue`` exited a moment
later, and asyncio printed "RuntimeError: Event loop is closed" (with a
Traceback) from the subprocess transport's ``__del__``. The script below
stops the loop while a real child runs, then waits for every thread (the
one asyncio keeps per child included), so the message would be printed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import gc, sys, threading, time
from pathlib import Path
from pivot.jobs.ioloop import IoLoop
from pivot.jobs.transport import LocalTransport

marker = Path(sys.argv[1])
io = IoLoop()
t = LocalTransport()
io.submit(t.run(["sh", "-c", f"echo $$ > {marker}.tmp && mv {marker}.tmp {marker}; exec sleep 3"]))
while not marker.exists():
    time.sleep(0.01)
pid = int(marker.read_text())
io.stop()
print("alive" if Path(f"/proc/{pid}").exists() else "reaped")
for th in threading.enumerate():
    if th is not threading.main_thread():
        th.join(30)
gc.collect()
"""


def test_stopping_the_loop_kills_and_reaps_a_running_command(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-X", "dev", "-c", SCRIPT, str(tmp_path / "pid")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr  # no "Event loop is closed", no unclosed transport
    assert r.stdout.strip() == "reaped"
