"""The page in a real Chromium (Debian's, driven by Playwright) on a real server and SLURM.

A user creates a watcher from the training-loss template on a running job,
sees its matches arrive live, pauses it, copies it to another job, and
looks at the loss chart; the pipeline tab follows stage events appended by
another process. The screenshots in docs/screenshots/ are taken here
(``PIVOT_UPDATE_SCREENSHOTS=1`` writes them there), so they show the page as it is.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from testkit import slurm_cluster
from testkit.jobs_servers import job_dir, slurm  # noqa: F401 - pytest fixtures
from testkit.require import require
from testkit.screenshots import screenshot_dir
from testkit.ui_server import running_ui, wait_for

CHROMIUM = Path("/usr/bin/chromium")


def _submit(slurm: slurm_cluster.Cluster, job_dir: Path, name: str) -> str:
    script = job_dir / f"{name}.sh"
    script.write_text(
        f"#!/bin/bash\n#SBATCH --job-name={name}\n#SBATCH --output={job_dir}/{name}-%j.out\n"
        'for i in $(seq 1 600); do echo "Epoch $i, Loss: 0.$((900 - i))"; sleep 0.5; done\n'
    )
    out = slurm.run("sbatch", "--parsable", str(script))
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().split(";")[0]


STAGES = """
import sys
from pathlib import Path
from pivot.events.pipeline import StageStarted, StageSucceeded, WaveStarted
from pivot.events.store import EventStore
root = Path(sys.argv[1])
(root / ".pivot" / "logs").mkdir(parents=True, exist_ok=True)
(root / ".pivot" / "logs" / "train.log").write_text("loading data\\n<b>epoch 1</b> done\\n")
with EventStore.open(root / ".pivot" / "events.db") as store:
    store.append([WaveStarted(wave_id="w1", trigger="data change", stages=("train",))])
    store.append([StageStarted(stage="train", correlation_id="w1")])
    store.append([StageSucceeded(stage="train", duration=1.5, correlation_id="w1")])
"""

PLAN_FAILED = """
import sys
from pathlib import Path
from pivot.events.pipeline import WavePlanFailed
from pivot.events.store import EventStore
with EventStore.open(Path(sys.argv[1]) / ".pivot" / "events.db") as store:
    store.append([WavePlanFailed(error="data/mid.txt is a named pipe (FIFO)")])
"""


@pytest.mark.slurm
@pytest.mark.slow
def test_create_from_template_see_matches_live_pause_copy_and_chart(
    slurm: slurm_cluster.Cluster, job_dir: Path
) -> None:
    require(CHROMIUM.exists(), "Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    (job_dir / "pivot.toml").write_text(f'[hosts.local]\nenv = {{SLURM_CONF = "{slurm.conf}"}}\n')
    first, second = _submit(slurm, job_dir, "train"), _submit(slurm, job_dir, "finetune")
    shots = screenshot_dir(job_dir)
    with running_ui(job_dir, "--tick", "0.2") as ui, sync_playwright() as pw:
        wait_for(
            lambda: (
                {first, second} <= {j["job_id"] for j in ui.get("/api/hosts/local/jobs")["jobs"]}
            ),
            what="jobs listed",  # maybe still pending: no output file yet
        )
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(ui.url + "/")
        expect(page.locator(".conn")).to_have_text("● live", timeout=30_000)

        page.get_by_role("button", name="+ New watcher").click()
        form = page.get_by_role("form", name="New watcher")
        form.get_by_label("Running job").select_option(first)
        form.get_by_label("Quick template").select_option("training-loss")
        expect(form.get_by_label("Name", exact=True)).not_to_have_value("", timeout=30_000)
        # The pattern tester shows the job's real output with the matches marked; chosen while
        # the job is pending, it looks again until the file exists (nobody reopens the form).
        expect(form.locator(".tester mark").first).to_contain_text("Epoch", timeout=60_000)
        form.locator("summary", has_text="Advanced").click()
        form.get_by_label("Poll every (s)").fill("0.5")
        form.get_by_label("Max triggers (0 = unlimited)").fill("0")  # every epoch's loss
        page.screenshot(path=str(shots / "ui-create.png"), full_page=True)
        form.get_by_role("button", name="Create watcher").click()

        expect(page.locator("article.card")).to_have_count(1, timeout=30_000)
        wid = page.locator("article.card").get_attribute("data-watcher")
        card = page.locator(f"article[data-watcher='{wid}']")
        expect(card).to_contain_text(first)
        # Matches arrive live (over the WebSocket) and the trigger count climbs.
        expect(card.locator(".triggers")).not_to_have_text("0", timeout=60_000)
        # Three at least before the pause, so the loss chart below has a line to draw.
        expect(card.locator(".triggers")).not_to_have_text(re.compile(r"^[0-2]$"), timeout=60_000)
        page.get_by_role("tab", name="Events").click()
        expect(page.locator("table.events")).to_contain_text("watcher.matched", timeout=30_000)
        page.screenshot(path=str(shots / "ui-events.png"))
        page.get_by_role("tab", name="Watchers").click()

        card.get_by_role("button", name="Pause").click()
        expect(card.locator(".state")).to_have_text("paused", timeout=30_000)
        card.get_by_role("button", name="Copy").click()
        copy_form = page.get_by_role("form", name="New watcher")
        expect(copy_form).to_contain_text("to another job")
        copy_form.get_by_label("Running job").select_option(second)
        copy_form.get_by_role("button", name="Create watcher").click()
        expect(page.locator("article.card")).to_have_count(2, timeout=30_000)
        ids = page.locator("article.card").evaluate_all("cs => cs.map(c => c.dataset.watcher)")
        copy_card = page.locator(f"article[data-watcher='{next(i for i in ids if i != wid)}']")
        expect(copy_card).to_contain_text("(copy)")
        expect(copy_card.locator(".facts")).to_contain_text(second)
        # Edit in place: same card (same id), new name.
        copy_card.get_by_role("button", name="Edit").click()
        edit_form = page.get_by_role("form", name="New watcher")
        edit_form.get_by_label("Name", exact=True).fill("loss on finetune")
        edit_form.get_by_role("button", name="Save").click()
        expect(copy_card.locator(".name")).to_have_text("loss on finetune", timeout=30_000)
        page.get_by_role("button", name="By job").click()
        expect(page.locator("section.group")).to_have_count(2)
        card.locator(".card-head").click()  # expand: captures, actions, the last trigger
        expect(card.locator(".last-match")).to_contain_text("Epoch")
        page.screenshot(path=str(shots / "ui-watchers.png"), full_page=True)

        page.get_by_role("tab", name="Stats").click()
        chart = page.locator("figure.chart").first
        expect(chart).to_contain_text("train_loss", timeout=30_000)
        expect(chart.locator("path.line")).to_have_attribute("d", re.compile(r"^M.*L.*L"))
        page.screenshot(path=str(shots / "ui-stats.png"), full_page=True)

        page.get_by_role("tab", name="Pipeline").click()
        subprocess.run([sys.executable, "-c", STAGES, str(job_dir)], check=True, timeout=60)
        row = page.locator("tr[data-stage='train']")
        expect(row).to_contain_text("succeeded", timeout=30_000)  # pushed live
        row.get_by_role("button", name="Log").click()
        expect(page.locator("pre.output")).to_contain_text("<b>epoch 1</b> done")  # as text
        page.screenshot(path=str(shots / "ui-pipeline.png"), full_page=True)
        # `pivot watch` could not plan a wave: said at the top of the tab, pushed live.
        subprocess.run([sys.executable, "-c", PLAN_FAILED, str(job_dir)], check=True, timeout=60)
        expect(page.get_by_role("alert")).to_contain_text(
            "Wave not planned: data/mid.txt is a named pipe (FIFO)", timeout=30_000
        )

        phone = browser.new_page(viewport={"width": 390, "height": 844})
        phone.goto(ui.url + "/")
        expect(phone.locator("article.card")).to_have_count(2, timeout=30_000)
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        phone.screenshot(path=str(shots / "ui-phone.png"), full_page=True)
        browser.close()
        assert errors == []
    for job in (first, second):
        slurm.run("scancel", job)


def test_the_page_asks_for_the_token_and_takes_it_from_the_address(tmp_path: Path) -> None:
    require(CHROMIUM.exists(), "Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import Dialog, expect, sync_playwright

    (tmp_path / "pivot.toml").write_text("")
    with running_ui(tmp_path, "--no-watchers", token="s3cret") as ui, sync_playwright() as pw:
        hostile = {"job_id": "7", "name": "<img src=x onerror=alert(1)>", "pattern": "x",
                   "actions": [{"type": "cancel_job"}]}  # fmt: skip
        ui.post("/api/watchers", hostile, 201)
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page()
        dialogs: list[str] = []

        def dismiss(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", dismiss)
        page.goto(ui.url + "/")
        page.get_by_label("This server needs its token", exact=False).fill("s3cret")
        page.get_by_role("button", name="Use token").click()
        card = page.locator("article.card")
        expect(card).to_have_count(1, timeout=30_000)
        # The name is shown as text: no element was made from it, no script ran.
        expect(card.locator(".name")).to_have_text("<img src=x onerror=alert(1)>")
        assert card.locator("img").count() == 0
        expect(page.locator(".conn")).to_have_text("● live", timeout=30_000)
        other = browser.new_page()
        other.goto(ui.url + "/#token=s3cret")  # what `pivot ui --open` opens
        expect(other.locator("article.card")).to_have_count(1, timeout=30_000)
        assert "token" not in other.url  # taken out of the address bar
        # Keyboard: the tabs move with the arrow keys, Escape closes the form.
        other.get_by_role("tab", name="Watchers").focus()
        other.keyboard.press("ArrowRight")
        expect(other.get_by_role("tab", name="Events")).to_be_focused()
        expect(other.get_by_role("tab", name="Events")).to_have_attribute("aria-selected", "true")
        other.keyboard.press("ArrowLeft")
        other.get_by_role("button", name="+ New watcher").click()
        other.get_by_label("Name", exact=True).focus()
        other.keyboard.press("Escape")
        expect(other.get_by_role("form", name="New watcher")).to_have_count(0)
        browser.close()
        assert dialogs == []


def test_the_page_reconnects_by_itself_and_misses_nothing(tmp_path: Path) -> None:
    require(CHROMIUM.exists(), "Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    from testkit.slurm_cluster import free_port
    from testkit.ui_server import pivot, start_ui

    (tmp_path / "pivot.toml").write_text("")
    yaml = 'name: "w{n}"\npattern: "x{n}"\nactions:\n  - type: cancel_job\n'
    port = str(free_port())

    def add(n: int) -> None:
        (tmp_path / f"w{n}.yaml").write_text(yaml.format(n=n))
        pivot(tmp_path, "watchers", "add", f"w{n}.yaml", "--job", "5")

    add(1)
    ui = start_ui(tmp_path, "--no-watchers", "--port", port)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(ui.url + "/#/events")
        expect(page.locator(".conn")).to_have_text("● live", timeout=30_000)
        expect(page.locator("table.events tbody tr")).to_have_count(1, timeout=30_000)
        ui.stop()
        expect(page.locator(".conn")).not_to_have_text("● live", timeout=30_000)
        add(2)  # appended while the page is cut off
        ui = start_ui(tmp_path, "--no-watchers", "--port", port)
        try:
            expect(page.locator(".conn")).to_have_text("● live", timeout=30_000)
            add(3)
            rows = page.locator("table.events tbody tr")
            expect(rows).to_have_count(3, timeout=30_000)  # w2 resumed from the log, w3 live
            expect(rows.first).to_contain_text("w3")
            expect(rows.nth(1)).to_contain_text("w2")
        finally:
            browser.close()
            ui.stop()
