"""A small pipeline: clean a CSV, summarise it two ways, merge the summaries.

    clean ──> stats ──────┐
          └─> histogram ──┴─> report

Run it with `pivot run`, ask `pivot status`, edit lib/measures.py or
params.yaml and run again: only what depends on the edit runs.
"""

import json
from pathlib import Path
from typing import Annotated

from lib.measures import bucket, mean, normalise_name

from pivot import Dep, Out, Pipeline

pipeline = Pipeline()


@pipeline.stage
def clean(
    raw: Annotated[Path, Dep("data/raw.csv")],
    out: Annotated[Path, Out("data/clean.csv")],
    threshold: float = 0.5,
) -> None:
    """Keep rows whose score reaches the threshold, with tidy names."""
    rows = [line.split(",") for line in raw.read_text().splitlines()[1:] if line.strip()]
    kept = [
        (normalise_name(name), float(score)) for name, score in rows if float(score) >= threshold
    ]
    out.write_text("name,score\n" + "".join(f"{n},{s}\n" for n, s in kept))
    print(f"kept {len(kept)} of {len(rows)} rows (threshold {threshold})")


def _scores(path: Path) -> list[float]:
    return [float(line.split(",")[1]) for line in path.read_text().splitlines()[1:]]


@pipeline.stage
def stats(
    clean: Annotated[Path, Dep("data/clean.csv")],
    out: Annotated[Path, Out("reports/stats.json")],
) -> None:
    """Count and mean of the scores."""
    scores = _scores(clean)
    out.write_text(json.dumps({"count": len(scores), "mean": round(mean(scores), 4)}) + "\n")


@pipeline.stage
def histogram(
    clean: Annotated[Path, Dep("data/clean.csv")],
    out: Annotated[Path, Out("reports/histogram.txt")],
    buckets: int = 4,
) -> None:
    """A text histogram of the scores."""
    counts = [0] * buckets
    for score in _scores(clean):
        counts[bucket(score, buckets)] += 1
    out.write_text("".join(f"{i}/{buckets} {'#' * n}\n" for i, n in enumerate(counts)))


@pipeline.stage(name="report")
def write_report(
    stats: Annotated[Path, Dep("reports/stats.json")],
    histogram: Annotated[Path, Dep("reports/histogram.txt")],
    out: Annotated[Path, Out("reports/summary.md")],
) -> None:
    """Merge both summaries into one Markdown page."""
    numbers = json.loads(stats.read_text())
    out.write_text(
        f"# Scores\n\n{numbers['count']} rows, mean {numbers['mean']}\n\n"
        f"```\n{histogram.read_text()}```\n"
    )
