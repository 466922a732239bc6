"""No-op and first-run times of pivot against DVC on the same 300-stage pipeline.

Generates a project of N stages (default 300) reading F data files (default
3,000: each stage reads a directory of F/N files, and every stage from the
tenth on also reads the output of the stage ten before it, so there are
chains and parallel branches). The same stage functions are declared twice:
in ``pipeline.py`` for pivot and in ``dvc.yaml`` for DVC (``cmd: python
stages.py sNNN`` runs the same function). Then, in the same run:

* first full run: ``pivot run`` vs ``dvc repro`` from nothing;
* no-op: ``pivot run`` vs ``dvc repro``, ``pivot status`` vs ``dvc status``
  (best of ``--repeat``), after checking that each really has nothing to do.

Usage::

    uv run python bench/noop.py --dvc /tmp/dvcvenv/bin/dvc
    uv run python bench/noop.py --stages 30 --files 300 --dvc ...   # quicker

DVC is not a dependency of pivot: install it in a throwaway venv
(``python3 -m venv /tmp/dvcvenv && /tmp/dvcvenv/bin/pip install dvc``). Without
``--dvc`` only pivot's figures are printed.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Users have bytecode caches; a shell that disables them would time compilation.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

STAGES_HEADER = '''"""Generated stage functions; `python stages.py sNNN` runs one (for DVC)."""
import sys
from pathlib import Path
from typing import Annotated

from pivot import Dep, Out


def _total(folder: Path) -> int:
    return sum(int(p.read_text()) for p in sorted(folder.iterdir()))

'''


def _stage_def(i: int, lag: int) -> str:
    extra = ""
    body_extra = ""
    if i >= lag:
        extra = f'\n    prev: Annotated[Path, Dep("out/s{i - lag:03d}.txt")],'
        body_extra = " + int(prev.read_text())"
    return f"""
def s{i:03d}(
    raw: Annotated[Path, Dep("data/raw/s{i:03d}")],{extra}
    out: Annotated[Path, Out("out/s{i:03d}.txt")],
) -> None:
    out.write_text(str(_total(raw){body_extra}))
"""


def generate(root: Path, stages: int, files: int, lag: int = 10) -> None:
    """Write the data, stages.py, pipeline.py and dvc.yaml of the benchmark project."""
    per = max(1, files // stages)
    for i in range(stages):
        folder = root / "data" / "raw" / f"s{i:03d}"
        folder.mkdir(parents=True)
        for j in range(per):
            (folder / f"f{j:02d}.txt").write_text(str(i * per + j))
    (root / "out").mkdir()
    src = [STAGES_HEADER]
    src += [_stage_def(i, lag) for i in range(stages)]
    src.append(
        "\n\nif __name__ == '__main__':\n"
        "    name = sys.argv[1]\n"
        "    fn = globals()[name]\n"
        "    i = int(name[1:])\n"
        "    kw = {'raw': Path(f'data/raw/{name}'), 'out': Path(f'out/{name}.txt')}\n"
        f"    if i >= {lag}:\n"
        f"        kw['prev'] = Path(f'out/s{{i - {lag}:03d}}.txt')\n"
        "    fn(**kw)\n"
    )
    (root / "stages.py").write_text("".join(src))
    (root / "pipeline.py").write_text(
        "import stages\nfrom pivot import Pipeline\n\npipeline = Pipeline()\n"
        f"for _i in range({stages}):\n"
        "    pipeline.stage(getattr(stages, f's{_i:03d}'))\n"
    )
    lines = ["stages:"]
    for i in range(stages):
        name = f"s{i:03d}"
        lines += [
            f"  {name}:",
            f"    cmd: {sys.executable} stages.py {name}",
            "    deps:",
            "      - stages.py",
            f"      - data/raw/{name}",
        ]
        if i >= lag:
            lines.append(f"      - out/s{i - lag:03d}.txt")
        lines += ["    outs:", f"      - out/{name}.txt"]
    (root / "dvc.yaml").write_text("\n".join(lines) + "\n")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], cwd: Path) -> tuple[float, str, float]:
    """Wall time of one command (which must succeed), its output, and its CPU time
    (user + system, its children included: on a loaded machine the steadier figure)."""
    cpu = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, env=ENV)
    took = time.perf_counter() - start
    cpu = _children_cpu() - cpu
    if proc.returncode != 0:
        what = " ".join(cmd)
        raise SystemExit(f"{what} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return took, proc.stdout + proc.stderr, cpu


def best(cmd: list[str], cwd: Path, repeat: int, expect: str) -> tuple[float, float]:
    """Best wall time and best CPU time of ``repeat`` runs; each output must contain
    ``expect``."""
    times, cpus = [], []
    for _ in range(repeat):
        took, out, cpu = timed(cmd, cwd)
        if expect not in out:
            raise SystemExit(f"{' '.join(cmd)}: expected {expect!r} in its output:\n{out[-2000:]}")
        times.append(took)
        cpus.append(cpu)
    return min(times), min(cpus)


def _load() -> str:
    """The 1, 5 and 15 minute load averages: how far wall times are from an idle machine's."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stages", type=int, default=300)
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dvc", help="path of a `dvc` executable (see the module docstring)")
    parser.add_argument("--jobs", type=int, default=0, help="pivot --jobs (default: CPU count)")
    parser.add_argument("--keep", action="store_true", help="keep the generated projects")
    args = parser.parse_args()

    pivot = str(Path(sys.executable).with_name("pivot"))
    base = Path(tempfile.mkdtemp(prefix="pivot-bench-noop-"))
    pv, dv = base / "pivot", base / "dvc"
    for root in (pv, dv):
        root.mkdir()
        generate(root, args.stages, args.files)
    env_note = f"{args.stages} stages, {args.files} data files, {os.cpu_count()} CPUs"
    print(f"# bench/noop.py: {env_note}; projects in {base}")

    jobs = ["--jobs", str(args.jobs)] if args.jobs else []
    rows: list[tuple[str, float, float | None]] = []

    first_pivot, _, first_cpu = timed([pivot, "run", *jobs], pv)
    noop_run, noop_run_cpu = best([pivot, "run", *jobs], pv, args.repeat, "everything up to date")
    noop_status, noop_status_cpu = best([pivot, "status"], pv, args.repeat, "everything up to date")

    first_dvc = noop_dvc_run = noop_dvc_status = None
    if args.dvc:
        timed([args.dvc, "init", "--no-scm", "-q"], dv)
        first_dvc, _, _ = timed([args.dvc, "repro"], dv)
        up_to_date = "Data and pipelines are up to date"
        noop_dvc_run, _ = best([args.dvc, "repro"], dv, args.repeat, up_to_date)
        noop_dvc_status, _ = best([args.dvc, "status"], dv, args.repeat, up_to_date)
        for i in (0, args.stages - 1):
            a = (pv / "out" / f"s{i:03d}.txt").read_text()
            b = (dv / "out" / f"s{i:03d}.txt").read_text()
            assert a == b, f"outputs differ for s{i:03d}: {a} vs {b}"

    rows = [
        ("first full run (run / repro)", first_pivot, first_dvc),
        ("no-op run (run / repro)", noop_run, noop_dvc_run),
        ("no-op status (status / status)", noop_status, noop_dvc_status),
    ]
    print(f"{'measure':34} {'pivot':>9} {'dvc':>9} {'pivot/dvc':>10}")
    for label, mine, theirs in rows:
        if theirs is None:
            print(f"{label:34} {mine:8.3f}s {'-':>9} {'-':>10}")
        else:
            print(f"{label:34} {mine:8.3f}s {theirs:8.3f}s {mine / theirs:10.4f}")
    print(
        f"pivot CPU (user + system, best): first run {first_cpu:.3f}s, no-op run "
        f"{noop_run_cpu:.3f}s, no-op status {noop_status_cpu:.3f}s; load {_load()}"
    )
    print("targets: no-op <= 1/5 of DVC (ratio <= 0.2); first run <= 1/20 (ratio <= 0.05)")
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
