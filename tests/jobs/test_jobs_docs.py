"""The watcher docs are run: every YAML example parses, every config key is documented."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from pivot.jobs import config
from pivot.jobs.definition import WatcherDefinition, parse_watchers
from pivot.jobs.embedded import watcher_blocks
from pivot.pipeline.slurm_resources import FIELDS

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _blocks(page: str, lang: str) -> list[str]:
    text = (DOCS / page).read_text()
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def test_every_yaml_example_is_a_valid_watcher() -> None:
    blocks = _blocks("watchers.md", "yaml")
    assert len(blocks) >= 4
    for block in blocks:
        assert parse_watchers(block, "docs/watchers.md")


def test_the_embedded_script_example_parses() -> None:
    [script] = [b for b in _blocks("watchers.md", "bash") if "#WATCHER_BEGIN" in b]
    [w] = watcher_blocks(script, "docs")
    assert w.actions[0].type == "resubmit"


def test_every_yaml_key_is_documented_with_its_default() -> None:
    text = (DOCS / "watchers.md").read_text()
    for name, f in WatcherDefinition.__dataclass_fields__.items():
        assert f"| `{name}` |" in text, name


def test_configuration_page_lists_every_key_and_its_example_loads(tmp_path: Path) -> None:
    text = (DOCS / "configuration.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.M))
    schema = (
        set(config._HOST_KEYS) | set(config._SMTP_KEYS) | set(config._WATCHERS_KEYS)
        | {"allow", "url"} | config._OTHERS | set(FIELDS)
    )  # fmt: skip
    assert documented == schema
    [example] = _blocks("configuration.md", "toml")
    (tmp_path / "pivot.toml").write_text(example)
    loaded = config.load_config(tmp_path, user_file=tmp_path / "none.toml")
    assert loaded.hosts["cluster"].hostname == "login.hpc.example.org"
    assert loaded.smtp.to == ("ana@example.org",)
    assert tomllib.loads(example)["watchers"]["action_timeout_seconds"] == 120
    assert loaded.slurm == {
        "time": "01:00:00",
        "account": "proj42",
        "extra": {"constraint": "skylake"},
    }
