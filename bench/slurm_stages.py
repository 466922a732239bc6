"""SLURM stages: pivot's overhead over bare sbatch, Slurm commands per poll cycle, chain latency.

On a real single-node SLURM started as in the test suite (needs root,
slurm-wlm and munge), one pipeline of ``--independent`` (50) trivial SLURM
stages plus a ``--chain`` (10) of SLURM stages each reading the last, all in
the same `pivot run`. Measured in the same run:

- **pivot**: wall time of `pivot run` (cold: nothing recorded), from the
  command's start to its exit;
- **the floor**: the same jobs (the same batch scripts, running the same
  ``python -m pivot.pipeline.slurm_job`` on the same stages) submitted by a
  shell loop of ``sbatch --wait``: the independent ones at once in the
  background, the chain one after the other beside them, then ``wait``.
  pivot's **overhead per stage** is (pivot - floor) / stages (target <= 0.2 s);
- **Slurm commands per poll cycle**: every sbatch/squeue/scontrol/sacct/
  scancel pivot ran, counted by wrappers first on its PATH; a cycle is one
  ``squeue`` (one host here), so (squeue + scontrol + sacct) / squeue is the
  commands per cycle (target: 1-2);
- **chain latency**: for each link, from the moment the job of the stage
  before wrote its outcome (the file's mtime) to the ``stage.started`` of the
  next (pivot decided and began its sbatch), and to its ``stage.submitted``
  (sbatch returned): p50 and max (target p50 <= 1 s at the default 1 s poll,
  which bounds it: the outcome file is looked for once per cycle);
- **Snakemake** with its SLURM executor plugin, when ``--snakemake VENV``
  names a venv holding it (outside the repo, e.g. ``uv venv
  ~/.cache/pivot-bench/snakemake && VIRTUAL_ENV=~/.cache/pivot-bench/snakemake
  uv pip install snakemake snakemake-executor-plugin-slurm``): the same 60
  jobs as rules, each a real SLURM job, on the same cluster, after pivot and
  the floor; wall time and the ratio pivot/Snakemake. At Snakemake's default
  status-check interval, and again at each ``--snakemake-init-seconds N``
  given (1 is pivot's poll period). What it needs to run on this test
  cluster (an ``srun`` wrapper that gives the job step ``SLURM_CONF`` back,
  ``--slurm-status-command squeue``) and why: bench/slurm_snakemake.py.

Run: ``uv run python bench/slurm_stages.py [--independent 50] [--chain 10]
[--snakemake VENV [--snakemake-init-seconds 1]]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import slurm_snakemake  # noqa: E402  (bench/, beside this file)

from testkit import slurm_cluster  # noqa: E402

PIVOT = str(Path(sys.executable).with_name("pivot"))
COMMANDS = ("sbatch", "squeue", "scontrol", "sacct", "scancel")


def pipeline_text(independent: int, chain: int) -> str:
    lines = [
        "from pathlib import Path",
        "from typing import Annotated",
        "",
        "from pivot import Dep, Out, Pipeline, Slurm",
        "",
        "pipeline = Pipeline()",
        "",
        "",
        "def _one(out: Path, text: str) -> None:",
        "    out.write_text(text)",
        "",
    ]
    for i in range(independent):
        lines += [
            "",
            '@pipeline.stage(slurm=Slurm(time="00:05:00", mem="10M"))',
            f'def ind{i}(out: Annotated[Path, Out("ind/{i}.txt")]) -> None:',
            f'    _one(out, "{i}")',
            "",
        ]
    for i in range(chain):
        dep = f'prev: Annotated[Path, Dep("chain/{i - 1}.txt")], ' if i else ""
        body = f'prev.read_text() + "{i}"' if i else '"0"'
        lines += [
            "",
            '@pipeline.stage(slurm=Slurm(time="00:05:00", mem="10M"))',
            f'def chain{i}({dep}out: Annotated[Path, Out("chain/{i}.txt")]) -> None:',
            f"    _one(out, {body})",
            "",
        ]
    return "\n".join(lines) + "\n"


def wrappers(into: Path, log: Path) -> None:
    """Slurm commands that log each call (name and time), then run the real one."""
    into.mkdir(parents=True)
    for name in COMMANDS:
        real = shutil.which(name)
        assert real, name
        script = into / name
        script.write_text(
            f'#!/bin/sh\nprintf "%s %s\\n" {name} "$(date +%s.%N)" >> {log}\nexec {real} "$@"\n'
        )
        script.chmod(0o755)


def events(project: Path, *types: str) -> list[dict[str, object]]:
    from pivot.events.store import EventStore

    with EventStore.open(str(project / ".pivot/events.db")) as store:
        return [{"type": t, "at": at, **d} for _, t, at, d in _payloads(store, types)]


def _payloads(store: object, types: tuple[str, ...]) -> list[tuple[int, str, float, dict]]:
    out = []
    for seq, topic, _, data in store.read_payloads(types=list(types)):  # type: ignore[attr-defined]
        out.append((seq, topic, float(data.get("at", 0.0)), data))
    return out


def run_pivot(project: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [PIVOT, "run", "--json"], cwd=project, env=env, capture_output=True, text=True,
        timeout=1800, check=False,
    )  # fmt: skip
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"pivot run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return took


def floor_scripts(project: Path, independent: int, chain: int) -> tuple[list[Path], list[Path]]:
    """The same batch scripts pivot submits, for the same stages, in a copy of the project."""
    from pivot.pipeline import slurm_job
    from pivot.pipeline.loader import load_pipeline
    from pivot.pipeline.slurm_resources import sbatch_options
    from pivot.pipeline.stage_log import log_path
    from pivot.pipeline.worker import StageTask

    spec = load_pipeline(project / "pipeline.py", check_deps=False)
    scripts: dict[str, Path] = {}
    for s in spec.stages:
        task = StageTask(
            root=spec.root, stage=s.name, module=s.module, file=s.file, qualname=s.qualname,
            dep_args=dict(s.dep_args), out_args=dict(s.out_args), params=dict(s.params),
        )  # fmt: skip
        run_file = project / ".pivot/slurm" / f"{s.name}.floor.json"
        slurm_job.write_run_file(run_file, task, "floor")
        log_path(spec.root, s.name).parent.mkdir(parents=True, exist_ok=True)
        text = slurm_job.batch_script(task, str(run_file), sbatch_options(s.slurm or {}))
        path = project / "floor" / f"{s.name}.sh"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        scripts[s.name] = path
    return (
        [scripts[f"ind{i}"] for i in range(independent)],
        [scripts[f"chain{i}"] for i in range(chain)],
    )


def run_floor(project: Path, env: dict[str, str], ind: list[Path], chain: list[Path]) -> float:
    loop = ["cd " + json.dumps(str(project))]
    loop += [f"sbatch --wait --quiet {json.dumps(str(p))} >/dev/null &" for p in ind]
    loop.append(
        "( "
        + " && ".join(f"sbatch --wait --quiet {json.dumps(str(p))} >/dev/null" for p in chain)
        + " ) &"
    )
    loop.append("wait")
    start = time.perf_counter()
    subprocess.run(["sh", "-c", "\n".join(loop)], env=env, check=True, timeout=1800)
    return time.perf_counter() - start


def chain_latency(project: Path, chain: int) -> tuple[list[float], list[float]]:
    started = {e["stage"]: float(e["at"]) for e in events(project, "stage.started")}
    submitted = {e["stage"]: float(e["at"]) for e in events(project, "stage.submitted")}
    runs = {str(e["stage"]): str(e["run_file"]) for e in events(project, "stage.submitted")}
    to_start, to_sbatch = [], []
    for i in range(1, chain):
        before = runs[f"chain{i - 1}"].removesuffix(".json") + ".result.json"
        ended = Path(before).stat().st_mtime
        to_start.append(started[f"chain{i}"] - ended)
        to_sbatch.append(submitted[f"chain{i}"] - ended)
    return to_start, to_sbatch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--independent", type=int, default=50)
    parser.add_argument("--chain", type=int, default=10)
    parser.add_argument("--snakemake", type=Path, help="a venv with snakemake and its slurm plugin")
    parser.add_argument("--snakemake-timeout", type=float, default=1500.0)
    parser.add_argument(
        "--snakemake-init-seconds", type=int, action="append", default=[],
        help="also run Snakemake with this --slurm-init-seconds-before-status-checks",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the temporary projects")
    args = parser.parse_args()
    assert slurm_cluster.available(), "needs root and slurm-wlm + munge"
    tmp = Path(tempfile.mkdtemp(prefix="pivot-bench-slurm-"))
    tmp.chmod(0o755)
    cluster = slurm_cluster.start(tmp / "cluster")
    try:
        log = tmp / "commands.log"
        wrappers(tmp / "bin", log)
        env = {**cluster.env, "PATH": f"{tmp / 'bin'}{os.pathsep}{os.environ['PATH']}"}
        project = tmp / "project"
        project.mkdir()
        (project / "pipeline.py").write_text(pipeline_text(args.independent, args.chain))
        stages = args.independent + args.chain
        load = os.getloadavg()[0]
        took = run_pivot(project, env)
        calls = [line.split()[0] for line in log.read_text().splitlines()]
        counts = {c: calls.count(c) for c in COMMANDS}
        to_start, to_sbatch = chain_latency(project, args.chain)

        floor_project = tmp / "floor-project"
        shutil.copytree(
            project, floor_project, ignore=shutil.ignore_patterns(".pivot", "ind", "chain")
        )
        ind, chain = floor_scripts(floor_project, args.independent, args.chain)
        floor = run_floor(floor_project, cluster.env, ind, chain)

        print(f"machine load (1 min) at start: {load:.2f}; {os.cpu_count()} CPUs")
        print(f"{stages} SLURM stages ({args.independent} independent + a chain of {args.chain})")
        print(f"pivot run:               {took:7.2f} s wall")
        print(
            f"floor (sbatch --wait):   {floor:7.2f} s wall  (ratio pivot/floor {took / floor:.2f})"
        )
        print(f"overhead per stage:      {(took - floor) / stages:+7.3f} s  (target <= 0.2 s)")
        cycles = counts["squeue"]
        per_cycle = (counts["squeue"] + counts["scontrol"] + counts["sacct"]) / max(cycles, 1)
        print(f"Slurm commands:          {counts}")
        print(f"poll cycles (squeue):    {cycles}; commands per cycle {per_cycle:.2f} (target 1-2)")
        print(
            "chain latency, job end -> next stage.started: "
            f"p50 {statistics.median(to_start):.3f} s, "
            f"max {max(to_start):.3f} s; -> sbatch returned: p50 "
            f"{statistics.median(to_sbatch):.3f} s, max {max(to_sbatch):.3f} s (target p50 <= 1 s)"
        )
        if args.snakemake:
            sizes = (args.independent, args.chain)
            for n, init in enumerate([None, *args.snakemake_init_seconds]):
                load = os.getloadavg()[0]
                took_sm, line = slurm_snakemake.run(
                    args.snakemake, tmp / f"snakemake{n}", cluster.env, sizes,
                    args.snakemake_timeout, init,
                )  # fmt: skip
                print(f"{line}  (load at its start {load:.2f})")
                if took_sm is not None:
                    print(f"  ratio pivot/Snakemake {took / took_sm:.2f}")
        print(f"machine load (1 min) at the end: {os.getloadavg()[0]:.2f}")
    finally:
        cluster.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")


if __name__ == "__main__":
    main()
