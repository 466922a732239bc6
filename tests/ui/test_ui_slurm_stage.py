"""The page shows where each stage runs and its SLURM job, live, from a real `pivot run`.

A stage runs as a real job of the suite's single-node SLURM while a real
`pivot ui` serves the page: the REST API and the WebSocket name the job,
and Debian's Chromium (driven by Playwright) shows it in the pipeline view
while it runs and once it ended, without a reload.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testkit import slurm_cluster
from testkit.jobs_servers import slurm  # noqa: F401 - pytest fixture
from testkit.pipeline_project import HEADER, PIVOT, Project
from testkit.require import require
from testkit.ui_server import UiServer, receive_until, running_ui, wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
WAITER = (
    HEADER.replace("from pivot import Dep, Out, Pipeline", "from pivot import Out, Pipeline, Slurm")
    + """
import time


@pipeline.stage(slurm=Slurm(time="00:10:00"))
def slow(out: Annotated[Path, Out("a.txt")]) -> None:
    while not Path("go").exists():
        time.sleep(0.1)
    out.write_text("done")


@pipeline.stage
def here(out: Annotated[Path, Out("b.txt")]) -> None:
    out.write_text("local")
"""
)


@pytest.fixture
def project(slurm: slurm_cluster.Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    monkeypatch.setenv("SLURM_CONF", str(slurm.conf))
    root = Path(tempfile.mkdtemp(prefix="pivot-ui-slurm-"))  # jobs run as root: 0755
    root.chmod(0o755)
    project = Project(root)
    project.write("pipeline.py", WAITER)
    yield project


def _stage(ui: UiServer, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        (s for s in ui.get("/api/pipeline")["stages"] if s["name"] == name), {}
    )
    return found


def test_the_pipeline_view_follows_a_real_slurm_job_live(project: Project) -> None:
    require(CHROMIUM.exists(), "Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    run: subprocess.Popen[str] | None = None
    with running_ui(project.root) as ui, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(ui.url + "/")
        page.get_by_role("tab", name="Pipeline").click()
        with ui.ws("/ws/pipeline") as conn:
            run = subprocess.Popen(
                [*PIVOT, "run"], cwd=project.root, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            try:
                got = receive_until(
                    conn,
                    lambda m: m.get("job", {}).get("state") == "running",
                    timeout=120,
                )
                job = got[-1]["job"]["job_id"]
                submitted = [m for m in got if m.get("event", {}).get("type") == "stage.submitted"]
                assert [(m["stage"], m["job"]["job_id"]) for m in submitted] == [("slow", job)]
                # REST: the projection the page loads says the same.
                slow = wait_for(
                    lambda: (s := _stage(ui, "slow")).get("job", {}) and s, what="the job"
                )
                assert (slow["executor"], slow["host"]) == ("slurm", "local")
                assert (slow["job"]["job_id"], slow["job"]["state"]) == (job, "running")
                row = page.locator("tr[data-stage='slow']")
                expect(row.locator("td.job")).to_contain_text(job, timeout=30_000)
                expect(row.locator("td.job")).to_contain_text("running", timeout=30_000)
                expect(row.locator("td.runs-on")).to_have_text("slurm@local")
                (project.root / "go").write_text("")
                _, err = run.communicate(timeout=120)
                assert run.returncode == 0, err
            finally:
                if run.poll() is None:
                    run.kill()
        expect(row).to_contain_text("succeeded", timeout=30_000)  # pushed live, no reload
        expect(row.locator("td.job")).to_contain_text(job)
        local = page.locator("tr[data-stage='here']")
        expect(local.locator("td.runs-on")).to_have_text("local", timeout=30_000)
        expect(local.locator("td.job")).to_have_text("")
        over = _stage(ui, "slow")["job"]
        assert (over["job_id"], over["ended"]) == (job, True)
        assert _stage(ui, "here")["executor"] == "local" and _stage(ui, "here")["job"] is None
        page.reload()  # what a fresh load shows: the same, from the REST API
        page.get_by_role("tab", name="Pipeline").click()
        expect(page.locator("tr[data-stage='slow'] td.job")).to_contain_text(job, timeout=30_000)
        browser.close()
        assert errors == []
