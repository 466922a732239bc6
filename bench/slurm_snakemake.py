"""Snakemake with its SLURM executor plugin on bench/slurm_stages.py's pipeline.

The same jobs as rules: ``--independent`` rules writing ``ind/I.txt`` and a
chain of ``--chain`` rules each reading the last, every one a real SLURM job
(``snakemake --executor slurm``), run from a venv the caller names (kept out
of pivot's dependencies; see the module docstring of slurm_stages.py).

Two things this test cluster needs, found in the plugins' source:

- The job runs its rule through ``srun`` (snakemake-executor-plugin-slurm-
  jobstep), started with an environment from which every ``SLURM_*``
  variable but the job's identity was removed, ``SLURM_CONF`` included. On a
  real cluster srun then finds ``/etc/slurm/slurm.conf``; the test cluster
  has only ``SLURM_CONF``, so srun fails with "Could not establish a
  configuration source". The ``srun`` first on the jobs' PATH (sbatch
  passes PATH: the plugin submits with ``--export=ALL``) is a wrapper that
  sets ``SLURM_CONF`` again and execs the real srun: nothing is written
  outside the bench's temp dir.
- The plugin checks job states with ``sacct`` whenever the program exists;
  here it exits 1 ("Slurm accounting storage is disabled": the cluster has
  no slurmdbd), so the jobs never appear to end. ``--slurm-status-command
  squeue`` is the plugin's documented alternative (reliable with the
  cluster's ``MinJobAge=600``), and what pivot uses too.

Everything else is Snakemake's default, in particular its status-check
interval (``--slurm-init-seconds-before-status-checks``, 40 s, growing by
10 s per check that saw no job end); ``init_seconds`` runs it with another.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
import time
from pathlib import Path

COMMANDS = ("sbatch", "squeue", "scontrol", "sacct", "scancel", "sinfo", "srun")


def snakefile(independent: int, chain: int) -> str:
    rules = ["localrules: all", "", "rule all:", "    input:"]
    rules += [f'        "ind/{i}.txt",' for i in range(independent)]
    rules += [f'        "chain/{chain - 1}.txt",', ""]
    resources = "    resources: runtime=5, mem_mb=10"
    for i in range(independent):
        shell = f'    shell: "echo {i} > {{output}}"'
        rules += [f"rule ind{i}:", f'    output: "ind/{i}.txt"', resources, shell, ""]
    for i in range(chain):
        inp = [f'    input: "chain/{i - 1}.txt"'] if i else []
        shell = f'    shell: "cat {{input}} > {{output}}; echo {i} >> {{output}}"' if i else (
            f'    shell: "echo {i} > {{output}}"'
        )  # fmt: skip
        rules += [f"rule chain{i}:", *inp, f'    output: "chain/{i}.txt"', resources, shell, ""]
    return "\n".join(rules)


def wrappers(into: Path, log: Path, conf: Path) -> None:
    """Slurm commands that log each call, then run the real one; srun gets SLURM_CONF back."""
    into.mkdir(parents=True)
    for name in COMMANDS:
        real = shutil.which(name)
        assert real, name
        env = f"SLURM_CONF={conf} " if name == "srun" else ""
        script = into / name
        script.write_text(
            f'#!/bin/sh\nprintf "%s %s\\n" {name} "$(date +%s.%N)" >> {log}\n'
            f'{env}exec {real} "$@"\n'
        )
        script.chmod(0o755)


def run(
    venv: Path,
    workdir: Path,
    env: dict[str, str],
    sizes: tuple[int, int],
    timeout: float,
    init_seconds: int | None,
) -> tuple[float | None, str]:
    """Run the workflow cold; (wall seconds or None if it failed, what to print)."""
    independent, chain = sizes
    workdir.mkdir()
    (workdir / "Snakefile").write_text(snakefile(independent, chain))
    log = workdir / "commands.log"
    wrappers(workdir / "bin", log, Path(env["SLURM_CONF"]))
    env = {**env, "PATH": f"{workdir / 'bin'}:{env['PATH']}"}
    argv = [
        str(venv / "bin" / "snakemake"), "--executor", "slurm", "--jobs", "100",
        "--default-resources", "slurm_partition=debug", "--slurm-status-command", "squeue",
    ]  # fmt: skip
    if init_seconds is not None:
        argv += ["--slurm-init-seconds-before-status-checks", str(init_seconds)]
    start = time.perf_counter()
    try:
        proc: subprocess.CompletedProcess[str] | None = subprocess.run(
            argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout,
            check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        proc = None
    took = time.perf_counter() - start
    interval = f"{init_seconds} s" if init_seconds is not None else "default 40 s"
    label = f"Snakemake (status checks {interval})"
    if proc is None or proc.returncode != 0:
        return None, _failure(label, workdir, proc, took, timeout)
    expected = "".join(f"{i}\n" for i in range(chain))
    got = (workdir / "chain" / f"{chain - 1}.txt").read_text()
    assert got == expected, f"the chain's last output is {got!r}, not {expected!r}"
    calls = [line.split()[0] for line in log.read_text().splitlines()]
    counts = {c: calls.count(c) for c in COMMANDS if calls.count(c)}
    return took, f"{label}: {took:7.2f} s wall; Slurm commands {counts}"


def _failure(
    label: str,
    workdir: Path,
    proc: subprocess.CompletedProcess[str] | None,
    took: float,
    timeout: float,
) -> str:
    fatal = sorted(
        {
            line.strip()
            for log in (workdir / ".snakemake" / "slurm_logs").rglob("*.log")
            for line in log.read_text(errors="replace").splitlines()
            if "fatal" in line or "error:" in line
        }
    )
    seen = f"; its jobs' logs say: {' | '.join(fatal[:3])}" if fatal else ""
    if proc is None:
        return f"{label} did not finish within {timeout:.0f} s{seen}"
    tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
    shown = textwrap.indent(tail, "    ")
    return f"{label} failed (exit {proc.returncode}) after {took:.1f} s{seen}:\n{shown}"
