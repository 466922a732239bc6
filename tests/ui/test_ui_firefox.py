"""The page's main scenario in Firefox: Debian's firefox-esr over WebDriver BiDi.

Playwright's Firefox build cannot be downloaded here; firefox-esr speaks
WebDriver BiDi itself, and puppeteer-core (the page's devDependency, no
browser download) drives it (`tests/ui/firefox_scenario.mjs`): on a real
`pivot ui` and a real SLURM job, the page goes live, a watcher is created
from the training-loss template, its matches arrive over the WebSocket, and
it is paused. With CI=true a missing Firefox, Node or puppeteer-core fails.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from testkit import slurm_cluster
from testkit.jobs_servers import job_dir, slurm  # noqa: F401 - pytest fixtures
from testkit.require import require
from testkit.screenshots import screenshot_dir
from testkit.ui_server import running_ui, wait_for

FIREFOX = Path("/usr/bin/firefox-esr")
FRONTEND = Path(__file__).parents[2] / "src" / "ui" / "frontend"
SCENARIO = Path(__file__).with_name("firefox_scenario.mjs")


def _submit(slurm: slurm_cluster.Cluster, job_dir: Path) -> str:
    script = job_dir / "train.sh"
    script.write_text(
        f"#!/bin/bash\n#SBATCH --job-name=train\n#SBATCH --output={job_dir}/train-%j.out\n"
        'for i in $(seq 1 600); do echo "Epoch $i, Loss: 0.$((900 - i))"; sleep 0.5; done\n'
    )
    out = slurm.run("sbatch", "--parsable", str(script))
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().split(";")[0]


@pytest.mark.slurm
@pytest.mark.slow
def test_create_from_template_see_matches_live_and_pause_in_firefox(
    slurm: slurm_cluster.Cluster, job_dir: Path
) -> None:
    require(FIREFOX.exists(), "Debian's firefox-esr (apt-get install firefox-esr)")
    node = shutil.which("node")
    require(node is not None, "Node (to run puppeteer-core)")
    require((FRONTEND / "node_modules" / "puppeteer-core").is_dir(),
            "puppeteer-core (npm ci in src/ui/frontend)")  # fmt: skip
    assert node is not None
    (job_dir / "pivot.toml").write_text(f'[hosts.local]\nenv = {{SLURM_CONF = "{slurm.conf}"}}\n')
    job = _submit(slurm, job_dir)
    shots = screenshot_dir(job_dir)
    try:
        with running_ui(job_dir, "--tick", "0.2") as ui:
            wait_for(lambda: job in {j["job_id"] for j in ui.get("/api/hosts/local/jobs")["jobs"]},
                     what="job running")  # fmt: skip
            r = subprocess.run(
                [node, str(SCENARIO), ui.url, job, str(FRONTEND), str(shots / "ui-firefox.png")],
                capture_output=True, text=True, timeout=600, check=False,
                env={"PATH": "/usr/bin:/bin", "HOME": str(job_dir)},
            )  # fmt: skip
            steps = [line.removeprefix("step: ") for line in r.stdout.splitlines()
                     if line.startswith("step: ")]  # fmt: skip
            assert r.returncode == 0, r.stdout + r.stderr
            assert steps == ["live", "template rendered, matches highlighted", "watcher visible",
                             "live match arrived", "paused", "done"]  # fmt: skip
            [watcher] = ui.get("/api/watchers")["watchers"]
            assert watcher["job_id"] == job
            assert watcher["state"] == "paused"
            assert watcher["trigger_count"] > 0
    finally:
        slurm.run("scancel", job)
