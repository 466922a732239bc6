"""Workers are born outside the terminal's process group, so Ctrl-C never reaches a starting one."""

from __future__ import annotations

import os

from pivot.pipeline.local_executor import LocalExecutor


def _ids() -> tuple[int, int, int]:
    return os.getpid(), os.getsid(0), os.getpgrp()


def test_stage_pool_workers_lead_a_session_of_their_own() -> None:
    pool = LocalExecutor(1)
    try:
        pid, sid, pgid = pool.call(_ids).result(timeout=120)
    finally:
        pool.close()
    assert pid != os.getpid()
    assert sid == pid and pgid == pid
    assert sid != os.getsid(0)


def test_watch_workers_lead_a_session_of_their_own() -> None:
    workers = LocalExecutor(1, standby=False)
    try:
        pids = workers.restart()
        for pid in pids:
            assert os.getsid(pid) == pid
            assert os.getpgid(pid) == pid
        assert os.getsid(0) not in {os.getsid(p) for p in pids}
        pid, sid, _ = workers.call(_ids).result(timeout=120)
        assert pid in pids and sid == pid
    finally:
        workers.close()
