"""The bundled example (examples/quickstart) runs, reports, and draws its graph."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from testkit.pipeline_project import Project

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quickstart"


def test_quickstart_example(tmp_path: Path) -> None:
    root = tmp_path / "quickstart"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".pivot", "__pycache__"))
    # Outputs of a run in the source tree (they are .gitignored) must not leak in.
    shutil.rmtree(root / "reports", ignore_errors=True)
    (root / "data/clean.csv").unlink(missing_ok=True)
    project = Project(root)
    dry = project.cli("run", "--dry-run").stdout.splitlines()
    assert dry[0] == "clean: would run (never run)"
    assert project.ran() == ["clean", "stats", "histogram", "report"]
    assert "6 rows" in project.read("reports/summary.md")  # params.yaml: threshold 0.3
    assert project.cli("status").stdout.strip().endswith("everything up to date")
    assert project.cli("run").stdout.strip().startswith("everything up to date")
    mermaid = project.cli("dag", "--format", "mermaid").stdout
    assert mermaid.startswith("flowchart TD")
    assert '    s0 -->|"data/clean.csv"| s1' in mermaid
    graph = json.loads(project.cli("dag", "--json").stdout)
    assert graph["stages"] == ["clean", "stats", "histogram", "report"]
    assert {"from": "stats", "to": "report", "paths": ["reports/stats.json"]} in graph["edges"]
    dry_json = json.loads(project.cli("run", "--dry-run", "--json").stdout)
    assert dry_json == {
        "ok": True,
        "stages": [
            {"stage": s, "stale": False, "reasons": []}
            for s in ("clean", "stats", "histogram", "report")
        ],
    }
