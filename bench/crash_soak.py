"""Crash soak: `kill -9` pivot at random moments, restart it at once, check nothing broke.

Pipeline part (``--part pipeline``, the default): on a copy of
examples/quickstart and on a pipeline with slow stages, ``--rounds`` times
(100 by default) each: change an input, start `pivot run` or `pivot watch`
(chosen at random), `kill -9` it at a random moment, and start the next
round at once. Then one `pivot run` to the end, and:

- **concurrent executions of one stage** (target 0): each slow stage writes
  a marker with its pid and start time while it runs and logs any live
  marker of the same stage it finds (the example's stages are not
  instrumented; it checks the rest);
- **processes left** (target 0): every process whose working directory is
  inside a soak project, once the last run is over; and how long the
  processes of each killed pivot (snapshot taken just before the kill)
  took to be gone (target: under 1 s), loky's resource trackers apart
  (they run no stage, and clean up after the workers before they exit);
- **events lost or duplicated** (target 0): every ``wave.started`` closed by
  exactly one ``wave.finished`` or ``wave.interrupted``; every stage run by a
  wave ended exactly once;
- **outputs** equal to those of a fresh `pivot run --force` in a copy;
- **`pivot replay --verify`** exit status 0.

Watchers part (``--part watchers``): two `pivot watchers run` compete for
one project's job watchers over ``--jobs`` real SLURM jobs (a single-node
cluster started as in the test suite), each printing ``--lines`` lines
``step N``; every line's watcher runs an allowed command that appends ``job
step pid`` to a file. At random moments one of the two (the host or the
standby, at random) is killed with SIGKILL and restarted at once, up to
``--rounds`` times while the jobs run. Then:

- **actions executed twice** (target 0), from the file the command appends to;
- **lines skipped** and **lines matched twice** (target 0), from the log;
- **recorded as run but not run** (target 0);
- actions interrupted: an intent recorded whose result was not, because its
  host was killed (reported as interrupted, not run again: at most once);
- **takeover time** after a kill of the host (p50 and max), next to the
  standby's look period (1 s), the named peer: a standby on this machine
  sees at once that the holder's process is gone, so one period is the most
  a takeover should cost (the lease's ttl applies to a host on another machine).

Run: ``uv run python bench/crash_soak.py [--rounds 100] [--seed 1] [--part pipeline|watchers]``
(``--part watchers [--jobs 20] [--lines 60]``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PIVOT = str(Path(sys.executable).with_name("pivot"))

SLOW = '''
import os
import subprocess
import time
from pathlib import Path
from typing import Annotated

from pivot import Dep, Out, Pipeline

pipeline = Pipeline()


def _start_of(pid: int) -> str:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return ""
    return "" if fields[0] in "ZX" else fields[19]


def _work(stage: str, seconds: float, text: str) -> str:
    """The stage's body: a marker while it runs, a child process, some sleeping."""
    markers = Path("markers")
    markers.mkdir(exist_ok=True)
    me = markers / f"{stage}.{os.getpid()}"
    me.write_text(_start_of(os.getpid()))
    for other in markers.glob(f"{stage}.*"):
        pid = int(other.name.rsplit(".", 1)[1])
        try:
            started = other.read_text()
        except FileNotFoundError:  # that run just ended
            continue
        if pid != os.getpid() and started and _start_of(pid) == started:
            with open("overlaps.log", "a") as f:
                f.write(f"{stage}: {os.getpid()} ran while {pid} still ran\\n")
    subprocess.Popen(["sleep", "60"])  # left running: must end with the stage
    time.sleep(seconds)
    me.unlink()
    return f"{stage}({text.strip()})"


@pipeline.stage
def first(src: Annotated[Path, Dep("data/in.txt")], out: Annotated[Path, Out("work/a.txt")]):
    out.write_text(_work("first", 0.3, src.read_text()))


@pipeline.stage
def left(src: Annotated[Path, Dep("work/a.txt")], out: Annotated[Path, Out("work/b.txt")]) -> None:
    out.write_text(_work("left", 0.6, src.read_text()))


@pipeline.stage
def right(src: Annotated[Path, Dep("work/a.txt")], out: Annotated[Path, Out("work/c.txt")]) -> None:
    out.write_text(_work("right", 0.4, src.read_text()))


@pipeline.stage
def last(
    b: Annotated[Path, Dep("work/b.txt")],
    c: Annotated[Path, Dep("work/c.txt")],
    out: Annotated[Path, Out("work/d.txt")],
) -> None:
    out.write_text(_work("last", 0.3, b.read_text() + c.read_text()))
'''


# -- processes ----------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _named(pid: int) -> tuple[int, str] | None:
    """(pid, start time) of a live process: a name that survives pid reuse."""
    fields = _stat(pid)
    return None if fields is None or fields[0] in {"Z", "X"} else (pid, fields[19])


def _command(pid: int) -> str:
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    return " ".join(w.decode(errors="replace") for w in words if w)[:80]


def _alive(proc: tuple[int, str]) -> bool:
    return _named(proc[0]) == proc


def _descendants(root: int) -> set[tuple[int, str]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found: set[tuple[int, str]] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            named = _named(child)
            if named is not None and named not in found:
                found.add(named)
                todo.append(child)
    return found


def _inside(folder: Path) -> list[int]:
    """Live processes whose working directory is in ``folder``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cwd = Path(os.readlink(f"/proc/{entry}/cwd"))
        except OSError:
            continue
        if cwd.is_relative_to(folder) and _named(int(entry)) is not None:
            found.append(int(entry))
    return found


class DeathTimer:
    """Measures, in the background, how long each killed pivot's processes take to go."""

    def __init__(self) -> None:
        self.times: list[float] = []  # workers, guards, loaders, what stages started
        self.last: list[str] = []  # the command of the last of those to go, per kill
        self.tracker_times: list[float] = []  # loky's resource trackers
        self.threads: list[threading.Thread] = []

    def watch(self, procs: set[tuple[int, str]], killed_at: float) -> None:
        names = {p: _command(p[0]) for p in procs}
        # The trackers run no stage: once the workers are gone they clean up
        # what those left (/dev/shm) and exit, so they are timed apart.
        trackers = {p for p in procs if "resource_tracker" in names[p]}
        self._poll(procs - trackers, killed_at, names, self.times, self.last)
        self._poll(trackers, killed_at, names, self.tracker_times, [])

    def _poll(
        self,
        procs: set[tuple[int, str]],
        killed_at: float,
        names: dict[tuple[int, str], str],
        times: list[float],
        lasts: list[str],
    ) -> None:
        def poll() -> None:
            alive = set(procs)
            last = ""
            while alive and time.monotonic() - killed_at < 60:
                gone = {p for p in alive if not _alive(p)}
                if gone == alive:
                    last = names[next(iter(gone))]
                alive -= gone
                time.sleep(0.002)
            times.append(time.monotonic() - killed_at)
            lasts.append(last)

        t = threading.Thread(target=poll, daemon=True)
        t.start()
        self.threads.append(t)

    def join(self) -> None:
        for t in self.threads:
            t.join(70)


# -- one project ----------------------------------------------------------------


class Soak:
    """One project: rounds of start, kill -9, restart; then the checks."""

    def __init__(self, name: str, root: Path, mutate: Callable[[random.Random], None]) -> None:
        self.name, self.root, self.mutate = name, root, mutate
        self.timer = DeathTimer()
        self.modes: dict[str, int] = {"run": 0, "watch": 0}
        self.notes = 0
        self.logs = root.parent / f"{name}-stderr"
        self.logs.mkdir()

    def round(self, rng: random.Random, index: int, window: float) -> None:
        self.mutate(rng)
        mode = rng.choice(["run", "watch"])
        self.modes[mode] += 1
        args = [PIVOT, "run"] if mode == "run" else [PIVOT, "watch", "--display", "json"]
        with (self.logs / f"{index:04d}.txt").open("w") as err:
            proc = subprocess.Popen(
                args,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
        deadline = time.monotonic() + rng.uniform(0, window)
        below: set[tuple[int, str]] = set()
        while time.monotonic() < deadline and proc.poll() is None:
            below |= _descendants(proc.pid)
            time.sleep(0.01)
        below |= _descendants(proc.pid)
        proc.kill()
        self.timer.watch(below, time.monotonic())
        proc.wait()

    def finish(self) -> dict[str, Any]:
        final = subprocess.run(
            [PIVOT, "run"], cwd=self.root, capture_output=True, text=True, check=False
        )
        self.timer.join()
        self.notes = sum(
            "note: stopped" in p.read_text() for p in self.logs.iterdir()
        ) + final.stderr.count("note: stopped")
        deadline = time.monotonic() + 5
        while _inside(self.root) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = _inside(self.root)
        verify = subprocess.run(
            [PIVOT, "replay", "--verify"],
            cwd=self.root,
            capture_output=True,
            text=True,
            check=False,
        )
        overlaps = self.root / "overlaps.log"
        return {
            "project": self.name,
            "rounds": sum(self.modes.values()),
            "modes": self.modes,
            "final_run_status": final.returncode,
            "concurrent_stage_runs": len(overlaps.read_text().splitlines())
            if overlaps.exists()
            else 0,
            "processes_left": len(left),
            "slowest_death_s": round(max(self.timer.times, default=0.0), 3),
            "median_death_s": round(sorted(self.timer.times)[len(self.timer.times) // 2], 3)
            if self.timer.times
            else 0.0,
            "slowest_to_go": self.timer.last[self.timer.times.index(max(self.timer.times))]
            if self.timer.times
            else "",
            "kills_over_1s": sum(t > 1.0 for t in self.timer.times),
            "slowest_tracker_exit_s": round(max(self.timer.tracker_times, default=0.0), 3),
            "leftovers_stopped_by_the_run_lock": self.notes,
            **self._events(),
            "outputs_equal_fresh_run": self._compare(),
            "replay_verify_status": verify.returncode,
        }

    def _events(self) -> dict[str, int]:
        from pivot.events import pipeline as ev
        from pivot.events.store import EventStore

        closes: dict[str, int] = {}
        interrupted = 0
        runs: dict[tuple[str, str], list[str]] = {}
        with EventStore.open(str(self.root / ".pivot" / "events.db")) as store:
            for r in store.read():
                e = r.event
                if isinstance(e, ev.WaveStarted):
                    closes.setdefault(e.wave_id, 0)
                elif isinstance(e, ev.WaveFinished | ev.WaveInterrupted):
                    closes[e.wave_id] = closes.get(e.wave_id, 0) + 1
                    interrupted += isinstance(e, ev.WaveInterrupted)
                elif isinstance(
                    e, ev.StageStarted | ev.StageSucceeded | ev.StageFailed | ev.StageCancelled
                ):
                    runs.setdefault((e.correlation_id, e.stage), []).append(e.TYPE)
        started = [k for k, v in runs.items() if "stage.started" in v]
        return {
            "waves": len(closes),
            "waves_interrupted": interrupted,
            "waves_never_closed": sum(1 for n in closes.values() if n == 0),
            "waves_closed_twice": sum(1 for n in closes.values() if n > 1),
            "stage_runs": len(started),
            "stage_runs_never_ended": sum(1 for k in started if len(runs[k]) < 2),
            "stage_runs_ended_twice": sum(1 for k in started if len(runs[k]) > 2),
        }

    def _compare(self) -> bool:
        fresh = self.root.parent / f"{self.name}-fresh"
        shutil.copytree(
            self.root, fresh, ignore=shutil.ignore_patterns(".pivot", "markers", "overlaps.log")
        )
        subprocess.run([PIVOT, "run", "--force"], cwd=fresh, capture_output=True, check=True)
        outs = _outputs(self.root)
        return bool(outs) and outs == _outputs(fresh)


_NOT_OUTPUTS = {".pivot", "markers", "overlaps.log", "__pycache__"}


def _outputs(root: Path) -> dict[str, bytes]:
    """Every file of the project but pivot's state and the soak's own markers."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not _NOT_OUTPUTS & set(p.relative_to(root).parts)
    }


# -- the parts --------------------------------------------------------------------


def soak_pipeline(rounds: int, rng: random.Random, tmp: Path) -> list[dict[str, Any]]:
    """The pipeline half: quickstart and the slow pipeline, ``rounds`` kills each."""
    quick = tmp / "quickstart"
    shutil.copytree(
        REPO / "examples" / "quickstart", quick, ignore=shutil.ignore_patterns(".pivot")
    )
    raw = (quick / "data" / "raw.csv").read_text().splitlines()

    def mutate_quick(r: random.Random) -> None:
        rows = [raw[0], *r.sample(raw[1:], k=max(1, len(raw) - 2))]
        (quick / "data" / "raw.csv").write_text("\n".join(rows) + "\n")

    slow = tmp / "slow"
    (slow / "data").mkdir(parents=True)
    (slow / "pipeline.py").write_text(textwrap.dedent(SLOW).lstrip())
    (slow / "data" / "in.txt").write_text("0\n")

    def mutate_slow(r: random.Random) -> None:
        (slow / "data" / "in.txt").write_text(f"{r.randrange(10**6)}\n")

    results = []
    for soak in (Soak("quickstart", quick, mutate_quick), Soak("slow", slow, mutate_slow)):
        # Kill moments span one whole `pivot run` as long as it takes on this
        # machine now (start-up included), measured first.
        soak.mutate(rng)
        t0 = time.monotonic()
        subprocess.run([PIVOT, "run"], cwd=soak.root, capture_output=True, check=True)
        window = 1.2 * (time.monotonic() - t0)
        started = time.monotonic()
        for i in range(rounds):
            soak.round(rng, i, window)
        result = soak.finish()
        result["kill_window_s"] = round(window, 2)
        result["wall_s"] = round(time.monotonic() - started, 1)
        results.append(result)
    return results


# -- watchers: two runners, kill -9 -------------------------------------------------


def _watchers_project(root: Path, conf: Path, lines: int, delay: float) -> dict[str, str]:
    record = root / "record"
    # One write(2) per line with O_APPEND: lines of concurrent runs never mix.
    record.write_text(f'#!/bin/sh\necho "$1 $2 $PPID" >> {root}/ran.txt\n')
    record.chmod(0o755)
    (root / "jobs").mkdir()
    (root / "pivot.toml").write_text(
        f'[hosts.local]\nenv = {{SLURM_CONF = "{conf}"}}\n'
        f'[actions.run_command]\nallow = ["{record}"]\n'
    )
    (root / "steps.sh").write_text(
        "#!/bin/bash\n"
        f"#SBATCH --output={root}/jobs/steps-%j.out\n"
        "#WATCHER_BEGIN\n"
        "# name: steps\n"
        "# pattern: '^step (\\d+)$'\n"
        "# max_triggers: 0\n"
        "# rate_limit_per_minute: 10000\n"
        "# interval_seconds: 0.5\n"
        "# actions:\n"
        "#   - type: run_command\n"
        f"#     params: {{command: '{record} ${{JOB_ID}} $1'}}\n"
        "#WATCHER_END\n"
        f'for i in $(seq 1 {lines}); do echo "step $i"; sleep {delay}; done\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "PIVOT_EVENT_STORE"}
    env["XDG_CONFIG_HOME"] = str(root / "no-user-config")
    return env


def _runner(root: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PIVOT, "watchers", "run", "--tick", "0.2"], cwd=root, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def _payloads(store: Any, type_name: str) -> list[dict[str, Any]]:
    return [d for _, _, _, d in store.read_payloads(types=[type_name])]


def _wait(cond: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def soak_watchers(args: argparse.Namespace, rng: random.Random, tmp: Path) -> list[dict[str, Any]]:
    """The watchers half: two `pivot watchers run` over real jobs, killed -9 at random."""
    sys.path.insert(0, str(REPO / "tests"))
    from pivot.events.store import EventStore
    from pivot.jobs.host_lease import HostLease

    from testkit import slurm_cluster

    if not slurm_cluster.available():
        raise SystemExit("the watchers part needs root and a local SLURM (slurmctld, slurmd)")
    top = tmp / "watchers"
    top.mkdir()
    for folder in (tmp, top):
        folder.chmod(0o755)  # munged and the jobs (as root) must reach it
    cluster = slurm_cluster.start(top / "cluster")
    root = top / "project"
    root.mkdir()
    root.chmod(0o755)
    try:
        env = _watchers_project(root, cluster.conf, args.lines, args.delay)
        store = EventStore.open(root / ".pivot" / "events.db")
        lease = HostLease(store.backend)  # only to read who holds it
        runners = [_runner(root, env), _runner(root, env)]
        jobs: list[str] = []
        for _ in range(args.jobs):
            r = subprocess.run(
                [PIVOT, "jobs", "submit", "steps.sh", "--json"], cwd=root, env=env,
                capture_output=True, text=True, timeout=120, check=True,
            )  # fmt: skip
            jobs.append(str(json.loads(r.stdout)["job_id"]))
        watcher_ids = {d["watcher_id"] for d in _payloads(store, "watcher.created")}

        def completed() -> bool:
            done = {
                d["watcher_id"]
                for d in _payloads(store, "watcher.state_changed")
                if d["new"] == "completed"
            }
            return watcher_ids <= done

        kills: list[tuple[float, bool]] = []  # (when, was the host)
        ready: list[float] = []  # host kills while the other one was standing by already
        started = time.monotonic()
        while not completed() and len(kills) < args.rounds:
            time.sleep(rng.uniform(0.3, args.max_gap))
            holder = lease.read()
            index = rng.randrange(2)
            victim = runners[index]
            was_host = holder is not None and holder.pid == victim.pid
            other = runners[1 - index].pid
            standing = {d["pid"] for d in _payloads(store, "watchers.standing_by")}
            if was_host and other in standing:
                ready.append(time.time())
            victim.kill()
            victim.wait()
            kills.append((time.time(), was_host))
            runners[index] = _runner(root, env)  # restarted at once
        _wait(completed, 600, "every watcher to complete")
        _wait(
            lambda: (
                sum(
                    len(_payloads(store, t))
                    for t in ("action.succeeded", "action.failed", "action.interrupted")
                )
                >= len(_payloads(store, "action.requested"))
            ),
            120,
            "every intent to settle",
        )
        elapsed = time.monotonic() - started
        for p in runners:
            p.send_signal(signal.SIGINT)
        for p in runners:
            p.wait(120)

        expected = Counter((j, i) for j in jobs for i in range(1, args.lines + 1))
        job_of = {d["watcher_id"]: d["job_id"] for d in _payloads(store, "watcher.created")}
        matched = Counter(
            (job_of[d["watcher_id"]], int(d["line"].split()[1]))
            for d in _payloads(store, "watcher.matched")
        )
        ran_path = root / "ran.txt"
        ran = Counter(
            (job, int(step))
            for job, step, _pid in (
                line.split() for line in ran_path.read_text().splitlines() if line.strip()
            )
        )
        requested = {
            d["action_id"]: (d["job_id"], int(d["params"]["argv"][2]))
            for d in _payloads(store, "action.requested")
        }
        succeeded = {requested[d["action_id"]] for d in _payloads(store, "action.succeeded")}
        interrupted = _payloads(store, "action.interrupted")
        takeovers = _takeover_times(store, [t for t, host in kills if host])
        # Killed while the other had not finished starting (itself restarted a
        # moment ago): the takeover waits for that start-up too.
        warm = _takeover_times(store, ready)
        period = min(1.0, lease.renew_every)  # how often a standby looks
        lease_ttl = lease.ttl

        result = {
            "project": "watchers",
            "jobs": args.jobs,
            "lines": sum(expected.values()),
            "seconds": round(elapsed, 1),
            "kills": len(kills),
            "kills_of_the_host": sum(h for _, h in kills),
            "actions_executed_twice": sum(1 for n in ran.values() if n > 1),
            "lines_skipped": sum(1 for k in expected if k not in matched),
            "lines_matched_twice": sum(1 for n in matched.values() if n > 1),
            "recorded_as_run_but_not_run": len(succeeded - set(ran)),
            "actions_interrupted": len(interrupted),
            "actions_run": sum(ran.values()),
            "intents": len(requested),
            "takeover_p50_s": round(statistics.median(takeovers), 3) if takeovers else None,
            "takeover_max_s": round(max(takeovers), 3) if takeovers else None,
            "takeover_standing_by_p50_s": round(statistics.median(warm), 3) if warm else None,
            "takeover_standing_by_max_s": round(max(warm), 3) if warm else None,
            "kills_of_the_host_with_a_standby": len(warm),
            # Hosts that kept their lease but lapsed past ttl/2 (a slow machine)
            # and started again from the log.
            "lease_lapses": sum(
                1
                for d in _payloads(store, "watchers.hosting_stopped")
                if str(d.get("reason", "")).startswith("the lease lapsed")
            ),
            "standby_look_period_s": period,
            "lease_ttl_s": lease_ttl,
        }
        store.close()
    finally:
        cluster.stop()
    return [result]


def _takeover_times(store: Any, host_kills: list[float]) -> list[float]:
    """Seconds from each kill of the host to the next `watchers.hosting_started`."""
    starts = sorted(
        d["at"] for d in _payloads(store, "watchers.hosting_started") if d.get("reason")
    )
    out: list[float] = []
    for killed in host_kills:
        later = [s for s in starts if s >= killed]
        if later:
            out.append(later[0] - killed)
    return out


def _judge_pipeline(results: list[dict[str, Any]]) -> list[str]:
    """Print the pipeline half's summary; the projects that failed a check."""
    worst = max(r["slowest_death_s"] for r in results)
    trackers = max(r["slowest_tracker_exit_s"] for r in results)
    load = os.getloadavg()
    print(
        f"slowest death of a killed pivot's workers and stage processes: {worst:.3f} s "
        f"({worst / 1.0:.2f} x the 1 s target); its resource trackers gone after at most "
        f"{trackers:.3f} s; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} "
        f"on {os.cpu_count()} CPUs"
    )
    return [
        r["project"]
        for r in results
        if r["concurrent_stage_runs"]
        or r["processes_left"]
        or r["waves_never_closed"]
        or r["waves_closed_twice"]
        or r["stage_runs_never_ended"]
        or r["stage_runs_ended_twice"]
        or not r["outputs_equal_fresh_run"]
        or r["replay_verify_status"]
        or r["final_run_status"]
    ]


def _judge_watchers(results: list[dict[str, Any]]) -> list[str]:
    """Print the watchers half's summary; the runs that failed a check."""
    load = os.getloadavg()
    for r in results:
        print(
            f"{r['kills']} kill -9 ({r['kills_of_the_host']} of the host) over {r['jobs']} jobs, "
            f"{r['lines']} lines: actions executed twice {r['actions_executed_twice']}, lines "
            f"skipped {r['lines_skipped']}, matched twice {r['lines_matched_twice']} (targets 0); "
            f"{r['actions_interrupted']} interrupted (not run again); "
            f"{r['lease_lapses']} lease lapse(s)"
        )
        if r["takeover_p50_s"] is not None:
            p50, period = r["takeover_p50_s"], r["standby_look_period_s"]
            print(
                f"takeover after kill -9 of the host: p50 {p50:.2f} s, max "
                f"{r['takeover_max_s']:.2f} s ({p50 / period:.2f} x the standby's "
                f"{period:.0f} s look period)"
            )
        if r["takeover_standing_by_p50_s"] is not None:
            p50, period = r["takeover_standing_by_p50_s"], r["standby_look_period_s"]
            print(
                f"  of them, {r['kills_of_the_host_with_a_standby']} with the other already "
                f"standing by: p50 {p50:.2f} s, max {r['takeover_standing_by_max_s']:.2f} s "
                f"({p50 / period:.2f} x the look period)"
            )
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs")
    return [
        r["project"]
        for r in results
        if r["actions_executed_twice"]
        or r["lines_skipped"]
        or r["lines_matched_twice"]
        or r["recorded_as_run_but_not_run"]
    ]


Part = Callable[[argparse.Namespace, random.Random, Path], list[dict[str, Any]]]
PARTS: dict[str, tuple[Part, Callable[[list[dict[str, Any]]], list[str]]]] = {
    "pipeline": (lambda args, rng, tmp: soak_pipeline(args.rounds, rng, tmp), _judge_pipeline),
    "watchers": (soak_watchers, _judge_watchers),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100, help="kills per project (default 100)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--part", choices=sorted(PARTS), default="pipeline")
    w = parser.add_argument_group("watchers part")
    w.add_argument("--jobs", type=int, default=20, help="real SLURM jobs, one watcher each")
    w.add_argument("--lines", type=int, default=60, help="lines `step N` each job prints")
    w.add_argument("--delay", type=float, default=0.5, help="seconds between a job's lines")
    w.add_argument("--max-gap", type=float, default=2.0, help="longest pause between kills (s)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    run, judge = PARTS[args.part]
    with tempfile.TemporaryDirectory(prefix="pivot-soak-") as tmp:
        results = run(args, rng, Path(tmp))
    for result in results:
        print(json.dumps(result))
    bad = judge(results)
    if bad:
        print(f"FAILED: {', '.join(bad)}")
        raise SystemExit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
