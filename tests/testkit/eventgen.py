"""Hypothesis strategies: random but plausible event sequences of every domain."""

from __future__ import annotations

from hypothesis import strategies as st

from pivot.events import actors, jobs
from pivot.events import pipeline as pl
from pivot.events import watchers as wt
from pivot.events.base import Event

STAGES = st.sampled_from(["prep", "train", "eval"])
WATCHERS = st.sampled_from(["w1", "w2", "w3"])
ACTIONS = st.sampled_from(["cancel", "notify", "resubmit"])
ACTION_IDS = st.sampled_from(["a1", "a2", "a3", "a4"])
WAVES = st.sampled_from(["wave1", "wave2"])
STATES = st.sampled_from(["active", "paused", "triggered", "completed", "disabled"])
JOB_IDS = st.sampled_from(["11", "12", ""])
HOSTS = st.sampled_from(["local", "gpu"])
TEXT = st.text(alphabet="abc xyz:=", max_size=8)
# Times spread over a few hours, so "last hour" buckets get pruned too.
AT = st.floats(min_value=1.7e9, max_value=1.7e9 + 4 * 3600, allow_nan=False)


def _ev(cls: type[Event], **fields: st.SearchStrategy[object]) -> st.SearchStrategy[Event]:
    return st.builds(cls, at=AT, correlation_id=WAVES, **fields)


EVENTS: st.SearchStrategy[Event] = st.one_of(
    _ev(pl.StageQueued, stage=STAGES, reasons=st.lists(TEXT, max_size=2).map(tuple)),
    _ev(pl.StageStarted, stage=STAGES, executor=st.sampled_from(["", "local", "slurm"])),
    _ev(pl.StageSubmitted, stage=STAGES, job_id=JOB_IDS, host=HOSTS, resubmit_of=JOB_IDS),
    _ev(pl.StageAdopted, stage=STAGES, job_id=JOB_IDS, host=HOSTS, submitted_in=WAVES),
    _ev(
        pl.StageJobState,
        stage=STAGES,
        job_id=JOB_IDS,
        host=HOSTS,
        state=st.sampled_from(["pending", "running", "completed", "failed", "cancelled"]),
        exit_code=st.sampled_from(["", "0:0", "3:0"]),
    ),
    _ev(pl.StageSucceeded, stage=STAGES, duration=st.floats(0, 100), job_id=JOB_IDS),
    _ev(
        pl.StageFailed,
        stage=STAGES,
        error=TEXT,
        duration=st.floats(0, 100),
        job_id=JOB_IDS,
        job_state=st.sampled_from(["", "failed", "out_of_memory"]),
    ),
    _ev(pl.StageSkipped, stage=STAGES, reason=TEXT),
    _ev(pl.StageCancelled, stage=STAGES, reason=TEXT),
    _ev(pl.WaveStarted, wave_id=WAVES, trigger=st.just("change"), stages=st.just(("train",))),
    _ev(pl.WaveFinished, wave_id=WAVES, succeeded=st.integers(0, 3)),
    _ev(pl.WaveInterrupted, wave_id=WAVES, stages=st.lists(STAGES, max_size=2).map(tuple)),
    _ev(pl.PipelineReloaded, removed=st.lists(STAGES, max_size=1).map(tuple)),
    _ev(pl.PipelineInvalid, error=TEXT, file=st.just("pipeline.py"), line=st.integers(1, 9)),
    _ev(wt.WatcherCreated, watcher_id=WATCHERS, name=TEXT, job_id=st.just("42")),
    _ev(
        wt.WatcherMatched,
        watcher_id=WATCHERS,
        match_id=TEXT,
        line=TEXT,
        captures=st.dictionaries(st.sampled_from(["loss", "step"]), TEXT, max_size=2),
    ),
    _ev(wt.ActionRequested, watcher_id=WATCHERS, action_id=ACTION_IDS, action_type=ACTIONS),
    _ev(wt.ActionSucceeded, watcher_id=WATCHERS, action_id=ACTION_IDS, action_type=ACTIONS),
    _ev(
        wt.ActionFailed, watcher_id=WATCHERS, action_id=ACTION_IDS, action_type=ACTIONS, error=TEXT
    ),
    _ev(wt.ActionSuppressed, watcher_id=WATCHERS, action_type=ACTIONS, reason=TEXT),
    _ev(wt.WatcherStateChanged, watcher_id=WATCHERS, old=STATES, new=STATES),
    _ev(wt.WatcherPaused, watcher_id=WATCHERS),
    _ev(wt.WatcherResumed, watcher_id=WATCHERS),
    _ev(wt.WatcherRemoved, watcher_id=WATCHERS),
    _ev(
        wt.VariablesCaptured,
        watcher_id=WATCHERS,
        variables=st.dictionaries(st.just("loss"), TEXT, max_size=1),
    ),
    _ev(wt.MetricStored, watcher_id=WATCHERS, name=st.just("loss"), value=st.floats(0, 9)),
    _ev(jobs.JobEnded, host=st.just("local"), job_id=st.just("42"), state=st.just("FAILED")),
    _ev(actors.ActorStarted, name=TEXT),
)

SEQUENCES = st.lists(EVENTS, max_size=60)
