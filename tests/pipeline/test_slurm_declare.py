"""Declaring SLURM stages: ``Slurm(...)``, ``[slurm]`` defaults, definition errors, status/dag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pivot.pipeline.slurm_resources import check_fields, describe, merge, sbatch_options

from testkit.pipeline_project import HEADER, make_project

SLURM_HEADER = HEADER.replace(
    "from pivot import Dep, Out, Pipeline", "from pivot import Dep, Out, Pipeline, Slurm"
)

PIPELINE = (
    SLURM_HEADER
    + """

@pipeline.stage
def prep(out: Annotated[Path, Out("a.txt")]) -> None:
    out.write_text("a")


@pipeline.stage(slurm=Slurm(time="02:00:00", mem="16G", cpus=4, gpus=1, partition="gpu"))
def train(a: Annotated[Path, Dep("a.txt")], out: Annotated[Path, Out("b.txt")]) -> None:
    out.write_text(a.read_text())
"""
)


@pytest.mark.parametrize(
    ("fields", "options"),
    [
        ({"time": "02:00:00", "mem": "16G"}, ["--time=02:00:00", "--mem=16G"]),
        ({"time": "1-00:00:00", "cpus": 4}, ["--time=1-00:00:00", "--cpus-per-task=4"]),
        ({"time": 90, "mem": 2048}, ["--time=90", "--mem=2048"]),
        ({"mem": "500m", "gpus": "a100:2"}, ["--mem=500M", "--gpus=a100:2"]),
        ({"gpus": 0, "qos": "short"}, ["--qos=short"]),
        (
            {"extra": {"constraint": "a100", "exclusive": True, "--nodes": 1}},
            ["--constraint=a100", "--exclusive", "--nodes=1"],
        ),
    ],
)
def test_fields_become_sbatch_options(fields: dict[str, object], options: list[str]) -> None:
    assert sbatch_options(check_fields(fields)) == options


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"time": "2h"}, "time '2h' is not a Slurm time limit"),
        ({"time": "02:00:00 "}, "is not a Slurm time limit"),
        ({"time": 0}, "is not a Slurm time limit"),
        ({"mem": "16 GB"}, "mem '16 GB' is not a Slurm size"),
        ({"mem": "16GB"}, "is not a Slurm size"),
        ({"cpus": 0}, "cpus 0 must be an int of at least 1"),
        ({"cpus": True}, "must be an int"),
        ({"partition": "gpu\n#SBATCH --x"}, "partition 'gpu\\n#SBATCH --x' must be a name"),
        ({"account": "a b"}, "must be a name"),
        ({"memory": "1G"}, "unknown field 'memory' (known: time, mem,"),
        ({"extra": {"output": "/tmp/x"}}, "--output is set by pivot"),
        ({"extra": {"t": "1"}}, "--time has a field of its own: use Slurm(time=...)"),
        ({"extra": {"comment": "a b"}}, "is not a single sbatch value"),
        ({"extra": {"comment": "$(reboot)'"}}, "is not a single sbatch value"),
        ({"extra": {"bad option": "x"}}, "is not an sbatch option name"),
        ({"extra": ["x"]}, "extra must be a mapping"),
    ],
)
def test_bad_fields_say_what_is_wrong(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_fields(fields)
    assert message in str(caught.value)


def test_declared_fields_win_over_defaults_and_extra_merges() -> None:
    defaults = check_fields({"time": "01:00:00", "partition": "cpu", "extra": {"a": "1", "b": "2"}})
    declared = check_fields({"partition": "gpu", "extra": {"b": "3"}})
    got = merge(declared, defaults)
    assert got == {
        "time": "01:00:00",
        "partition": "gpu",
        "host": "local",
        "extra": {"a": "1", "b": "3"},
    }
    assert describe(got) == "slurm@local (01:00:00, gpu)"
    assert describe(merge({}, {})) == "slurm@local"


def test_status_and_dag_say_where_each_stage_runs(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", PIPELINE)
    where = "slurm@local (02:00:00, 16G, 4 cpus, 1 gpu, gpu)"
    status = project.cli("status").stdout.splitlines()
    assert status[0].split() == ["prep", "local", "stale:", "never", "run"]
    assert status[1].startswith(f"train  {where}  stale:")
    doc = json.loads(project.cli("status", "--json").stdout)
    assert [s["runs_on"] for s in doc["stages"]] == ["local", where]
    assert project.cli("dag").stdout == f"prep\n  train  [{where}]  <- prep\n"
    graph = json.loads(project.cli("dag", "--json").stdout)
    assert graph["runs_on"] == {"prep": "local", "train": where}
    assert f'["train<br/>{where}"]' in project.cli("dag", "-F", "mermaid").stdout


def test_defaults_come_from_pivot_toml(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", PIPELINE)
    project.write(
        "pivot.toml",
        """
        [slurm]
        time = "00:10:00"
        account = "proj1"
        mem = "1G"
        """,
    )
    doc = json.loads(project.cli("dag", "--json").stdout)
    assert doc["runs_on"]["train"] == "slurm@local (02:00:00, 16G, 4 cpus, 1 gpu, gpu, proj1)"


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        ('Slurm(time="2h")', "stage 'train': Slurm(...): time '2h' is not a Slurm time limit"),
        ('Slurm(mem="16 GB")', "stage 'train': Slurm(...): mem '16 GB' is not a Slurm size"),
        ('Slurm(memory="16G")', "stage 'train': Slurm(...): unknown field 'memory' (known:"),
        (
            'Slurm(host="gpu")',
            "stage 'train': Slurm(host='gpu'): unknown host 'gpu': add a [hosts.gpu] table",
        ),
        ('{"time": "1"}', "stage 'train': slurm= takes Slurm(...), not dict"),
    ],
)
def test_mistakes_are_definition_errors_naming_stage_and_line(
    tmp_path: Path, declaration: str, message: str
) -> None:
    project = make_project(tmp_path)
    text = (
        SLURM_HEADER
        + f"""

@pipeline.stage(
    name="train",
    slurm={declaration},
)
def fit(out: Annotated[Path, Out("b.txt")]) -> None:
    out.write_text("b")
"""
    )
    project.write("pipeline.py", text)
    text = project.read("pipeline.py")
    for command in ("status", "run", "dag"):
        proc = project.cli(command, ok=False)
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr
        line = _line_of(text, "slurm=") if "takes" not in message else _line_of(text, "@pipeline")
        if "takes" in message:
            assert proc.stderr.startswith("error: pipeline.py:"), proc.stderr
        else:
            assert proc.stderr.startswith(f"error: pipeline.py:{line}: "), proc.stderr
        assert message in proc.stderr, proc.stderr
        assert len(proc.stderr.splitlines()) == 1


def test_a_known_host_is_accepted_and_a_bad_slurm_table_is_an_error(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", PIPELINE.replace('partition="gpu"', 'partition="gpu", host="hpc"'))
    project.write("pivot.toml", '[hosts.hpc]\nhostname = "login.example.org"\n')
    doc = json.loads(project.cli("dag", "--json").stdout)
    assert doc["runs_on"]["train"].startswith("slurm@hpc (")
    project.write("pivot.toml", '[hosts.hpc]\nhostname = "x"\n\n[slurm]\nmem = "2 G"\n')
    proc = project.cli("status", ok=False)
    assert proc.returncode == 2
    assert "pivot.toml:5: [slurm]: mem '2 G' is not a Slurm size" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_placement_follows_the_executor_chosen() -> None:
    from pivot.pipeline.slurm_resources import placement

    declared = {"prep": None, "train": {"time": "01:00:00", "host": "local"}}
    defaults = {"time": "00:10:00"}
    assert placement(declared, None, defaults) == {"train": {"time": "01:00:00", "host": "local"}}
    assert placement(declared, "local", defaults) == {}
    assert placement(declared, "slurm", defaults) == {
        "prep": {"time": "00:10:00", "host": "local"},
        "train": {"time": "01:00:00", "host": "local"},
    }
    with pytest.raises(ValueError, match="unknown executor 'cloud'"):
        placement(declared, "cloud", defaults)


def test_executor_slurm_to_a_host_pivot_toml_lacks_is_exit_2(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write(
        "pipeline.py",
        HEADER + '\n\n@pipeline.stage\ndef prep(out: Annotated[Path, Out("a.txt")]) -> None:\n'
        '    out.write_text("a")\n',
    )
    project.write("pivot.toml", '[slurm]\nhost = "nope"\n')
    proc = project.cli("run", "--executor", "slurm", ok=False)
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: stage 'prep' would run on host 'nope' ([slurm] host), which pivot.toml "
        "does not define: add a [hosts.nope] table\n"
    )
    assert not (project.root / "a.txt").exists()
    project.cli("run", "--executor", "local")  # the same pipeline, here
    assert project.read("a.txt") == "a"
