"""`pivot events` shows a SLURM submission as a sentence: job, host, resources."""

from __future__ import annotations

import io

from rich.console import Console

from pivot.cli.event_render import event_table
from pivot.events import pipeline as ev
from pivot.events.base import Event


def _rendered(*events: Event) -> str:
    out = io.StringIO()
    console = Console(file=out, width=400, color_system=None)
    console.print(event_table((i + 1, e.TYPE, e.to_dict()) for i, e in enumerate(events)))
    return out.getvalue()


def test_submitted_and_adopted_read_as_sentences_without_the_run_file() -> None:
    resources = {"host": "gpu", "time": "02:00:00", "mem": "16G", "cpus": 4}
    text = _rendered(
        ev.StageSubmitted(stage="train", job_id="12", host="gpu", resources=resources,
                          run_file="/p/.pivot/slurm/train.ab.json", inputs={"fingerprint": "f"}),
        ev.StageSubmitted(stage="train", job_id="13", host="gpu", resubmit_of="12"),
        ev.StageAdopted(stage="train", job_id="13", host="gpu", submitted_in="0123456789abcdef"),
    )  # fmt: skip
    lines = text.splitlines()
    assert "SLURM job 12 on gpu (02:00:00, 16G, 4 cpus)" in lines[1]
    assert "train.ab.json" not in text and "fingerprint" not in text
    assert "SLURM job 13 on gpu  again for job 12" in lines[2]
    assert (
        "SLURM job 13 on gpu, submitted in wave 0123456789ab by a pivot that was killed"
        in (lines[3])
    )
