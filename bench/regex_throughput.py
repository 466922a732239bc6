"""Single-stream regex throughput: pivot's scan path against `grep -E -c`, same file, same run.

pivot's path is the tailer's: 1 MiB chunks, split into complete lines
(partial-line carry-over), then the literal prefilter (`memchr` of the
rarest byte of the pattern's required text over the whole chunk, each hit
checked against the text: pivot.jobs.literal_search) and a per-candidate-line
RE2 match with captures. The same run measures the path without the prefilter
(the RE2 chunk scan finds the candidate lines: what every pattern without a
required literal takes, and what all took before the prefilter). `grep -E -c`
only counts matching lines (no captures), so it is the floor to compare
against; the target is pivot/grep >= 0.5 for every pattern.

Each figure is the best of ``--repeat`` runs, pivot and grep taking turns,
so that a machine shared with other work compares like with like; the load
average is printed with the figures.

    uv run python bench/regex_throughput.py [--mb 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pivot.jobs.patterns import compile_pattern
from pivot.jobs.tail import split_lines

PATTERNS = {
    "alternation": "(CUDA out of memory|OutOfMemoryError)",
    "capture": "epoch ([0-9]+) loss=([0-9.]+)",
    "anchored": "^ERROR .*timeout$",
    "ignorecase": "(?i)cuda out of memory",  # grep gets -i and the pattern without (?i)
}


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float  # user + system: what the scan costs, whatever else shares the machine

    def best(self, other: Timing) -> Timing:
        return Timing(min(self.wall, other.wall), min(self.cpu, other.cpu))


NEVER = Timing(float("inf"), float("inf"))


def make_log(path: Path, megabytes: int) -> int:
    rng = random.Random(7)
    words = [
        "step",
        "data",
        "load",
        "batch",
        "grad",
        "norm",
        "lr",
        "warmup",
        "eval",
        "save",
        "sync",
        "rank",
        "node",
    ]
    lines = 0
    with path.open("w") as fh:
        written = 0
        while written < megabytes * 1_000_000:
            r = rng.random()
            if r < 0.01:
                line = f"epoch {lines} loss={rng.random():.4f} lr=0.001\n"
            elif r < 0.011:
                line = "RuntimeError: CUDA out of memory. Tried to allocate 2 GiB\n"
            elif r < 0.012:
                line = f"ERROR worker {lines} hit a timeout\n"
            else:
                line = " ".join(rng.choice(words) for _ in range(12)) + f" {lines}\n"
            fh.write(line)
            written += len(line)
            lines += 1
    return lines


def pivot_count(path: Path, source: str, *, prefilter: bool = True) -> tuple[int, Timing]:
    pattern = compile_pattern(source)
    if not prefilter:
        pattern.prefilter = None
    started, cpu = time.perf_counter(), time.process_time()
    count = 0
    partial, skipping = b"", False
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            split = split_lines(partial, chunk, skipping=skipping)
            partial, skipping = split.partial, split.skipping
            if split.has_lines:
                count += sum(1 for _ in pattern.scan(split.lines_blob))
    return count, Timing(time.perf_counter() - started, time.process_time() - cpu)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def grep_count(path: Path, source: str) -> tuple[int, Timing]:
    flags = ["-E", "-c"]
    if source.startswith("(?i)"):
        flags, source = [*flags, "-i"], source.removeprefix("(?i)")
    started, cpu = time.perf_counter(), _children_cpu()
    out = subprocess.run(
        ["grep", *flags, source, str(path)], capture_output=True, text=True, check=False,
        env={**os.environ, "LC_ALL": "C"},
    )  # fmt: skip
    return int(out.stdout.strip() or 0), Timing(
        time.perf_counter() - started, _children_cpu() - cpu
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=200, help="size of the log in MB")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, best taken")
    args = parser.parse_args()
    assert shutil.which("grep"), "grep is needed"
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "job.out"
        lines = make_log(log, args.mb)
        size = log.stat().st_size / 1e6
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"log: {size:.0f} MB, {lines:,} lines (page cache warm: read once first)")
        print(f"load average: {load} on {os.cpu_count()} CPUs; best of {args.repeat} runs each")
        log.read_bytes()
        print("MB/s and ratios by wall clock; 'cpu' is the pivot/grep ratio of CPU time")
        print(f"{'pattern':<12} {'matches':>9} {'literal':>22} {'pivot MB/s':>11} {'RE2-only':>9} "
              f"{'grep MB/s':>10} {'pivot/grep':>10} {'RE2-only/grep':>13} {'cpu':>5}")  # fmt: skip
        for name, source in PATTERNS.items():
            t_ours = t_plain = t_grep = NEVER
            for _ in range(args.repeat):
                ours, t = pivot_count(log, source)
                t_ours = t_ours.best(t)
                plain, t = pivot_count(log, source, prefilter=False)
                t_plain = t_plain.best(t)
                theirs, t = grep_count(log, source)
                t_grep = t_grep.best(t)
            assert ours == theirs == plain, f"{name}: pivot {ours}, RE2-only {plain}, grep {theirs}"
            pf = compile_pattern(source).prefilter
            lit = "|".join(x.decode() for x in pf.literals) if pf else "(none)"
            print(
                f"{name:<12} {ours:>9,} {lit[:22]:>22} {size / t_ours.wall:>11.0f} "
                f"{size / t_plain.wall:>9.0f} {size / t_grep.wall:>10.0f} "
                f"{t_grep.wall / t_ours.wall:>10.2f} {t_grep.wall / t_plain.wall:>13.2f} "
                f"{t_grep.cpu / t_ours.cpu:>5.2f}"
            )


if __name__ == "__main__":
    main()
