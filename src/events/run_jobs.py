"""The SLURM jobs of stage runs, as the log tells them (a pure fold, for `pivot why`).

A stage run on SLURM has one job (``stage.submitted``), or the job a killed
pivot left for it (``stage.adopted``, naming the wave that submitted it), and
one more per resubmission by a watcher (``stage.submitted`` with
``resubmit_of``). ``stage.job_state`` says what Slurm said of each. A run is
identified by its wave (the events' ``correlation_id``) and its stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pivot.events import pipeline as ev
from pivot.events.store import Recorded

__all__ = ["JOB_TYPES", "RunJobs"]

JOB_TYPES: tuple[str, ...] = (ev.StageSubmitted.TYPE, ev.StageAdopted.TYPE, ev.StageJobState.TYPE)


@dataclass
class RunJobs:
    """Per (wave id, stage): its jobs in submission order, as plain data."""

    runs: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, rec: Recorded) -> None:
        """Fold one event (others are ignored)."""
        e = rec.event
        if isinstance(e, ev.StageSubmitted | ev.StageAdopted):
            again = e.resubmit_of if isinstance(e, ev.StageSubmitted) else ""
            adopted_from = e.submitted_in if isinstance(e, ev.StageAdopted) else ""
            how = "adopted" if isinstance(e, ev.StageAdopted) else "submitted"
            self.runs.setdefault((e.correlation_id, e.stage), []).append(
                {
                    "job_id": e.job_id,
                    "host": e.host,
                    "how": "resubmitted" if again else how,
                    "resubmit_of": again,
                    "submitted_in": adopted_from,
                    "state": "",
                    "exit_code": "",
                    "seq": rec.seq,
                    "at": e.at,
                }
            )
        elif isinstance(e, ev.StageJobState):
            for job in self.runs.get((e.correlation_id, e.stage), ()):
                if job["job_id"] == e.job_id:
                    job["state"], job["exit_code"] = e.state, e.exit_code
        elif isinstance(e, ev.StageFailed) and e.job_id and e.job_state:
            # How the job ended, also when no poll saw it end (it wrote its outcome).
            for job in self.runs.get((e.correlation_id, e.stage), ()):
                if job["job_id"] == e.job_id:
                    job["state"], job["exit_code"] = e.job_state, e.exit_code

    def of(self, wave_id: str, stage: str) -> list[dict[str, Any]]:
        """The jobs of one stage run (empty: it did not run on SLURM)."""
        return [dict(job) for job in self.runs.get((wave_id, stage), ())]
