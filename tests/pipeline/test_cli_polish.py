"""A CLI that reads like a mature tool, through the real `pivot` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testkit.pipeline_project import HEADER, Project, make_project

PIPELINE = (
    HEADER
    + """
@pipeline.stage
def tokenize(src: Annotated[Path, Dep("raw.txt")], out: Annotated[Path, Out("tokens.txt")]) -> None:
    out.write_text(" ".join(src.read_text().split()))

@pipeline.stage
def count(src: Annotated[Path, Dep("tokens.txt")], out: Annotated[Path, Out("count.txt")]) -> None:
    out.write_text(str(len(src.read_text().split())))

@pipeline.stage
def other(out: Annotated[Path, Out("other.txt")]) -> None:
    out.write_text("x")
"""
)


def _project(tmp_path: Path) -> Project:
    project = make_project(tmp_path)
    project.write("pipeline.py", PIPELINE)
    project.write("raw.txt", "a b  c")
    return project


def test_a_mistyped_stage_is_the_same_error_and_exit_2_in_every_command(tmp_path: Path) -> None:
    project = _project(tmp_path)
    project.cli("run")
    expected = (
        "error: unknown stage 'tokenzie'; did you mean 'tokenize'? "
        "(known stages: tokenize, count, other)"
    )
    commands = [
        ("run", "tokenzie"),
        ("run", "--dry-run", "tokenzie"),
        ("status", "tokenzie"),
        ("why", "tokenzie"),
        ("dag", "tokenzie"),
        ("events", "--stage", "tokenzie"),
        ("watch", "tokenzie", "--display", "plain", "--no-standby", "--no-job-watchers"),
    ]
    for args in commands:
        proc = project.cli(*args, ok=False, timeout=60)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert errors == [expected], (args, proc.stderr)
        assert "Traceback" not in proc.stderr + proc.stdout
    # The typo in `pivot watch` is not recorded as a broken pipeline.
    status = json.loads(project.cli("replay", "--json", "-p", "pipeline_status").stdout)
    assert status["projections"]["pipeline_status"]["pipeline_error"] is None
    far = project.cli("status", "zzzzzz", ok=False)
    assert far.stderr == "error: unknown stage 'zzzzzz' (known stages: tokenize, count, other)\n"


def test_dag_of_named_stages_draws_only_what_they_need(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert project.cli("dag", "count").stdout == "tokenize\n  count  <- tokenize\n"
    doc = json.loads(project.cli("dag", "count", "other", "--json").stdout)
    assert doc == {
        "stages": ["tokenize", "count", "other"],
        "edges": [{"from": "tokenize", "to": "count", "paths": ["tokens.txt"]}],
        "runs_on": {"tokenize": "local", "count": "local", "other": "local"},
    }
    mermaid = project.cli("dag", "tokenize", "-F", "mermaid").stdout
    assert mermaid == 'flowchart TD\n    s0["tokenize"]\n'


def test_version_is_the_installed_one(tmp_path: Path) -> None:
    from importlib.metadata import version

    project = make_project(tmp_path)
    for flag in ("--version", "-V"):
        assert project.cli(flag).stdout == f"pivot {version('pivot')}\n"
    assert "--version" in project.cli("--help").stdout


def test_init_starts_a_project_that_runs_and_never_overwrites(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write(".gitignore", "*.pyc")  # no newline at the end: the entry goes on its own line
    out = project.cli("init").stdout
    assert "pipeline.py, params.yaml, pivot.toml, .gitignore" in out
    assert project.read(".gitignore") == (
        "*.pyc\n# pivot: state, stage logs and the event log\n.pivot/\n"
    )
    toml = project.read("pivot.toml")
    assert all(not line or line.startswith("#") for line in toml.splitlines())  # all commented
    ran = project.run_json()
    assert [(s["stage"], s["status"]) for s in ran["stages"]] == [("greet", "succeeded")]
    assert project.read("output/greeting.txt") == "hello, world\n"
    project.write("params.yaml", "greet:\n  name: pivot\n")
    assert project.status() == {"greet": ['param changed: name "world" -> "pivot"']}
    # A second init refuses and changes nothing, not even .gitignore.
    before = {p.name: p.read_bytes() for p in project.root.iterdir() if p.is_file()}
    proc = project.cli("init", ok=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: pipeline.py already exists; pivot init writes nothing")
    assert {p.name: p.read_bytes() for p in project.root.iterdir() if p.is_file()} == before
    # Into a new directory; an existing .pivot/ entry is not added twice.
    (project.root / "sub").mkdir()
    (project.root / "sub" / ".gitignore").write_text("/.pivot\n")
    project.cli("init", "sub")
    assert (project.root / "sub" / ".gitignore").read_text() == "/.pivot\n"
    assert (project.root / "sub" / "pipeline.py").read_text() == project.read("pipeline.py")


def test_params_yaml_mistakes_are_one_line_with_line_and_column(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", PIPELINE.replace("def other(out", "def other(n: int = 1, *, out"))
    project.write("raw.txt", "a b")
    cases = {
        "other:\n  n: a: b\n": (
            "error: params.yaml:2: invalid YAML: mapping values are not allowed here, at column 7"
        ),
        'other:\n  n: "open\n': (
            "error: params.yaml:3: invalid YAML: found unexpected end of stream "
            "(while scanning a quoted scalar), at column 1"
        ),
        "other:\n  n: 1\n  n: 2\n": (
            "error: params.yaml:3: stage 'other': param 'n' is given twice (first at line 2)"
        ),
        "other:\n  n: 1\nother:\n  n: 2\n": (
            "error: params.yaml:3: stage 'other' is given twice (first at line 1)"
        ),
    }
    for text, expected in cases.items():
        project.write("params.yaml", text)
        for command in ("status", "run"):
            proc = project.cli(command, ok=False)
            assert (proc.returncode, proc.stderr) == (2, expected + "\n"), text
    project.write("params.yaml", "other:\n  n: 2\n")
    assert project.status()["other"] == ["never run"]


def _help(project: Project, *command: str) -> str:
    proc = project.cli(*command, "--help")
    return proc.stdout


def test_help_has_no_type_noise_and_nothing_cut_at_80_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    project = _project(tmp_path)
    groups = [(), ("events",), ("watchers",), ("jobs",)]
    commands = [
        ("init",), ("run",), ("status",), ("dag",), ("why",), ("stats",), ("replay",),
        ("watch",), ("events",), ("events", "export"), ("watchers", "add"),
        ("watchers", "test"), ("watchers", "list"), ("jobs", "submit"),
    ]  # fmt: skip
    for command in [*groups, *commands]:
        text = _help(project, *command)
        for noise in ("<bool>", "<list[str]>", "<int", "<str>", "<path>", "[x>=", "\\["):
            assert noise not in text, (command, noise, text)
        assert "{" not in text.splitlines()[0], text  # usage: FILE, not {file}
        for line in text.splitlines():
            assert len(line) <= 80 and line == line.rstrip(), (command, line)
            cut = line.endswith("...") and not line.startswith("Usage:")
            assert "…" not in line and not cut, (command, line)
    watch = _help(project, "watch")
    assert "  --job-watchers / --no-job-watchers\n" in watch  # a long name is whole
    assert "  -j, --jobs N " in watch and "  -d, --display [tui|plain|json] " in watch
    run = _help(project, "run")
    assert run.startswith("Usage: pivot run [OPTIONS] [STAGES]...\n")
    assert "\n  -f, --force " in run and "\n  -p, --pipeline PATH " in run
    export = _help(project, "events", "export")
    assert export.startswith("Usage: pivot events export [OPTIONS] FILE\n")
    events = _help(project, "events")
    assert "--since TIME" in events and "--store LOCATION" in events
    root = _help(project)
    assert "    pivot run                  # bring every stage up to date\n" in root
    assert "\n  -V, --version " in root


LONG = "a_stage_whose_name_is_much_longer_than_any_terminal_column_would_ever_be_" + "x" * 60


def test_piped_output_has_no_padding_and_no_folded_values(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write(
        "pipeline.py",
        HEADER
        + f"""
@pipeline.stage(name="{LONG}")
def long(out: Annotated[Path, Out("long.txt")]) -> None:
    out.write_text("x")
""",
    )
    project.cli("run")
    project.cli("run")
    outputs = {
        args: project.cli(*args).stdout
        for args in [
            ("stats",),
            ("replay", "-p", "pipeline_status"),
            ("events",),
            ("status",),
            ("dag",),
            ("why", LONG),
            ("watchers", "list"),
        ]
    }
    for args, text in outputs.items():
        assert text.strip(), args
        for line in text.splitlines():
            assert line == line.rstrip(), (args, line)  # no trailing padding
    # A long value stays whole on its row, with the rest of the row.
    [row] = [line for line in outputs[("stats",)].splitlines() if LONG in line]
    assert row.split()[:4] == [LONG, "1", "0", "skipped"]
    [row] = [
        line for line in outputs[("replay", "-p", "pipeline_status")].splitlines() if LONG in line
    ]
    assert row.split()[:2] == [LONG, "skipped"]
    # The events table cuts no subject in a pipe: a wave's whole id is there.
    waves = [json.loads(line) for line in project.cli("events", "--json").stdout.splitlines()]
    wave_id = next(r["data"]["wave_id"] for r in waves if r["type"] == "wave.finished")
    assert any(wave_id in line for line in outputs[("events",)].splitlines())
    # Tables are as wide as their widest row, not the 10,000 columns of a pipe.
    widest = max(len(line) for line in outputs[("stats",)].splitlines())
    assert widest < len(LONG) + 100
