"""Job output cannot disable a watcher: an argument it makes unsafe is that match's error."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from pivot.events.store import EventStore

from testkit import slurm_cluster
from testkit.jobs_e2e import Proc, payloads, procs, submit, wait_for  # noqa: F401 - procs: fixture
from testkit.jobs_servers import job_dir, slurm  # noqa: F401 - pytest fixtures

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.timeout(300)]


def test_nul_bytes_and_options_in_captures_fail_the_match_not_the_watcher(
    slurm: slurm_cluster.Cluster, job_dir: Path, procs: list[Proc]
) -> None:
    record = job_dir / "record"
    record.write_text(f'#!/bin/sh\necho "$1" >> {job_dir}/ran.txt\n')
    record.chmod(0o755)
    (job_dir / "pivot.toml").write_text(
        f'[hosts.local]\nenv = {{SLURM_CONF = "{slurm.conf}"}}\n'
        f'[actions.run_command]\nallow = ["{record}"]\n'
    )
    (job_dir / "j.sh").write_text(
        "#!/bin/bash\n"
        f"#SBATCH --output={job_dir}/j-%j.out\n"
        "#WATCHER_BEGIN\n"
        "# name: files\n"
        "# pattern: '^file (.*)$'\n"
        "# max_triggers: 0\n"
        "# max_failures: 1\n"
        "# interval_seconds: 0.5\n"
        "# actions:\n"
        f"#   - type: run_command\n#     params: {{command: '{record} $1'}}\n"
        "#   - type: log_event\n#     params: {message: 'recorded $1'}\n"
        "#WATCHER_END\n"
        "printf 'file a\\0b\\n'\nprintf 'file -rf\\n'\nprintf 'file x\\0\\n'\n"
        "sleep 1\necho 'file ok'\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PIVOT_EVENT_STORE"}
    env["XDG_CONFIG_HOME"] = str(job_dir / "none")
    _, watcher = submit(job_dir, env, "j.sh")
    procs.append(Proc(job_dir, "watchers", "run", "--tick", "0.2", env=env))
    with EventStore.open(job_dir / ".pivot" / "events.db") as store:
        wait_for(
            lambda: any(d["new"] == "completed" for d in payloads(store, "watcher.state_changed")),
            timeout=120,
            what="the job to end",
            store=store,
        )
        wait_for(
            lambda: (
                len(payloads(store, "action.succeeded")) >= 2
                or any(d["new"] == "disabled" for d in payloads(store, "watcher.state_changed"))
            ),
            what="ok's actions",
        )
        assert procs[0].interrupt() == 130
        # Not disabled (max_failures 1): the last line's actions ran.
        states = [d["new"] for d in payloads(store, "watcher.state_changed")]
        assert states == ["completed"], payloads(store, "action.failed")
        failed = payloads(store, "action.failed")
        assert [(d.get("refused"), d["action_type"]) for d in failed] == [(True, "run_command")] * 3
        assert "contains a NUL byte" in failed[0]["error"]
        assert "would be an option" in failed[1]["error"]
        # The actions after a refused one are not run (they may depend on it): recorded so.
        suppressed = payloads(store, "action.suppressed")
        assert [d["action_type"] for d in suppressed] == ["log_event"] * 3
    assert (job_dir / "ran.txt").read_text() == "ok\n"
    assert Counter(d["watcher_id"] for d in failed) == {watcher: 3}
