"""``Slurm(...)``: what a stage asks of SLURM, checked, merged with defaults, as sbatch options.

A stage declared ``@pipeline.stage(slurm=Slurm(time="02:00:00", mem="16G"))``
runs as a SLURM job. Every value ends up on an ``#SBATCH --key=value`` line
of the job's script, so each must be a single sbatch token: the rules below
refuse anything else at definition time, naming the stage and the line of the
``Slurm(...)`` call, rather than letting sbatch (or a shell) read it later.

* ``time``: a Slurm time limit, ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``,
  ``D-HH:MM``, ``D-HH:MM:SS`` (``"02:00:00"``, ``"1-00:00:00"``), or an int
  of minutes. ``"2h"`` is refused.
* ``mem``: a size, a number with an optional unit ``K``, ``M``, ``G`` or
  ``T`` (``"16G"``, ``"500M"``), or an int of megabytes. ``"16 GB"`` is refused.
* ``cpus`` (``--cpus-per-task``): an int >= 1. ``gpus``: an int >= 0 or
  ``"TYPE:N"``. ``partition``, ``account``, ``qos``: names.
* ``host``: ``local`` (sbatch here) or a ``[hosts.NAME]`` of ``pivot.toml``.
* ``extra``: any other option, ``{"constraint": "a100", "exclusive": True}``;
  the options pivot sets itself (output, chdir, job name...) and those with
  a field of their own are refused there.

Defaults come from ``[slurm]`` in ``pivot.toml`` (same keys); a stage's own
value wins, ``extra`` tables are merged key by key. This module is imported
by every ``pipeline.py`` that uses ``Slurm``: keep it light.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import Any

__all__ = [
    "FIELDS",
    "Slurm",
    "check_fields",
    "describe",
    "merge",
    "placement",
    "sbatch_options",
]

FIELDS = ("time", "mem", "cpus", "gpus", "partition", "account", "qos", "host", "extra")

# field -> the sbatch option it becomes
_OPTION = {
    "time": "time",
    "mem": "mem",
    "cpus": "cpus-per-task",
    "gpus": "gpus",
    "partition": "partition",
    "account": "account",
    "qos": "qos",
}
# Set by pivot for every job (its log, its directory, its name, how it is
# submitted): a stage may not change them through ``extra``.
_PIVOTS_OWN = frozenset(
    {"output", "error", "chdir", "job-name", "wrap", "parsable", "input", "export-file"}
)
_SHORT_OPTIONS = {"t": "time", "c": "cpus-per-task", "G": "gpus", "p": "partition", "A": "account"}

_TIME = re.compile(
    r"[0-9]+(?::[0-9]{1,2}){0,2}"  # MM, MM:SS, HH:MM:SS
    r"|[0-9]+-[0-9]{1,2}(?::[0-9]{1,2}){0,2}"  # D-HH, D-HH:MM, D-HH:MM:SS
    r"|UNLIMITED|INFINITE"
)
_MEM = re.compile(r"[0-9]+[KMGTkmgt]?")
_GPUS = re.compile(r"[A-Za-z0-9_.-]+(?::[0-9]+)?")
_NAME = re.compile(r"[A-Za-z0-9_.,:+@-]+")
_OPTION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
# One sbatch token: no whitespace, quotes, backslashes or control characters.
_VALUE = re.compile(r"[^\s\"'\\\x00-\x1f\x7f-\x9f\u2028\u2029]+")


class Slurm:
    """What a stage asks of SLURM: ``@pipeline.stage(slurm=Slurm(time="02:00:00", mem="16G"))``.

    Every field is optional; what is not given comes from ``[slurm]`` in
    ``pivot.toml`` or Slurm's own defaults. Values are checked when the stage
    is declared (a mistake names the stage and this call's line).
    """

    __slots__ = ("fields", "file", "line", "unknown")

    def __init__(
        self,
        *,
        time: str | int | None = None,
        mem: str | int | None = None,
        cpus: int | None = None,
        gpus: int | str | None = None,
        partition: str | None = None,
        account: str | None = None,
        qos: str | None = None,
        host: str | None = None,
        extra: Mapping[str, str | int | bool] | None = None,
        **unknown: object,
    ) -> None:
        given = {
            "time": time,
            "mem": mem,
            "cpus": cpus,
            "gpus": gpus,
            "partition": partition,
            "account": account,
            "qos": qos,
            "host": host,
            "extra": dict(extra) if isinstance(extra, Mapping) else extra,
        }
        self.fields: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        # Unknown keywords are kept, not raised, so the stage decorator can
        # name the stage in its error (a TypeError here could not).
        self.unknown = dict(unknown)
        caller = sys._getframe(1)
        self.file, self.line = caller.f_code.co_filename, caller.f_lineno

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.fields.items())
        return f"Slurm({inner})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Slurm) and (self.fields, self.unknown) == (
            other.fields,
            other.unknown,
        )

    def __hash__(self) -> int:
        return hash(repr(self))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_one(key: str, value: object) -> Any:  # noqa: PLR0911, PLR0912 - one rule per field
    """``value`` as stored for ``key``; ValueError saying what is wrong."""
    if key == "time":
        if _is_int(value) and int(value) > 0:  # type: ignore[call-overload]
            return str(value)
        if isinstance(value, str) and _TIME.fullmatch(value):
            return value
        raise ValueError(
            f"time {value!r} is not a Slurm time limit: use MM, HH:MM:SS or D-HH:MM:SS "
            "(e.g. '02:00:00', '1-00:00:00') or an int of minutes"
        )
    if key == "mem":
        if _is_int(value) and int(value) >= 0:  # type: ignore[call-overload]
            return str(value)
        if isinstance(value, str) and _MEM.fullmatch(value):
            return value.upper()
        raise ValueError(
            f"mem {value!r} is not a Slurm size: a number with an optional unit "
            "K, M, G or T and no space (e.g. '16G', '500M'), or an int of megabytes"
        )
    if key == "cpus":
        if _is_int(value) and int(value) >= 1:  # type: ignore[call-overload]
            return value
        raise ValueError(f"cpus {value!r} must be an int of at least 1")
    if key == "gpus":
        if _is_int(value) and int(value) >= 0:  # type: ignore[call-overload]
            return value
        if isinstance(value, str) and _GPUS.fullmatch(value):
            return value
        raise ValueError(f"gpus {value!r} must be an int of at least 0 or 'TYPE:N' (e.g. 'a100:2')")
    if key in ("partition", "account", "qos", "host"):
        if isinstance(value, str) and _NAME.fullmatch(value):
            return value
        raise ValueError(f"{key} {value!r} must be a name (letters, digits, '_', '.', '-')")
    if key == "extra":
        return _check_extra(value)
    raise ValueError(f"unknown field {key!r}")  # pragma: no cover - callers check names


def _check_extra(value: object) -> dict[str, str | bool]:
    if not isinstance(value, Mapping):
        raise ValueError(f"extra must be a mapping of sbatch option -> value, not {value!r}")  # noqa: TRY004 - one error type for every field
    out: dict[str, str | bool] = {}
    for raw_key, v in value.items():
        key = str(raw_key).lstrip("-")
        key = _SHORT_OPTIONS.get(key, key)
        if not _OPTION_NAME.fullmatch(key):
            raise ValueError(f"extra: {raw_key!r} is not an sbatch option name")
        if key in _PIVOTS_OWN:
            raise ValueError(f"extra: --{key} is set by pivot for every job and cannot be changed")
        own = next((f for f, opt in _OPTION.items() if opt == key), None)
        if own is not None:
            raise ValueError(f"extra: --{key} has a field of its own: use Slurm({own}=...)")
        if v is True:
            out[key] = True  # a flag: #SBATCH --exclusive
            continue
        text = str(v) if _is_int(v) or isinstance(v, str) else None
        if text is None or not _VALUE.fullmatch(text):
            raise ValueError(
                f"extra: --{key}={v!r} is not a single sbatch value "
                "(empty, or has whitespace, quotes, backslashes or control characters)"
            )
        out[key] = text
    return out


def check_fields(fields: Mapping[str, object]) -> dict[str, Any]:
    """The checked, normalised form of ``Slurm(...)`` fields or a ``[slurm]`` table.

    Raises ValueError with a message naming the field, for an unknown field
    (with the known ones) or a bad value.
    """
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key not in FIELDS:
            raise ValueError(f"unknown field {key!r} (known: {', '.join(FIELDS)})")
        out[key] = _check_one(key, value)
    return out


def merge(declared: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """A stage's resources: its own checked fields over the ``[slurm]`` defaults.

    ``host`` is always set (``local`` unless given); ``extra`` merges key by key.
    """
    out = {**defaults, **declared}
    extra = {**dict(defaults.get("extra", {})), **dict(declared.get("extra", {}))}
    if extra:
        out["extra"] = extra
    else:
        out.pop("extra", None)
    out.setdefault("host", "local")
    return {k: out[k] for k in FIELDS if k in out}


def sbatch_options(resources: Mapping[str, Any]) -> list[str]:
    """``--key=value`` options (flags as ``--key``) for merged, checked resources."""
    options: list[str] = []
    for field, option in _OPTION.items():
        value = resources.get(field)
        if value is None or (field == "gpus" and value == 0):
            continue
        options.append(f"--{option}={value}")
    for key, value in dict(resources.get("extra", {})).items():
        options.append(f"--{key}" if value is True else f"--{key}={value}")
    return options


def placement(
    declared: Mapping[str, Mapping[str, Any] | None],
    executor: str | None,
    defaults: Mapping[str, Any],
) -> dict[str, dict[str, Any]]:
    """Which stages run on SLURM, with what: stage -> resources.

    ``declared`` maps each stage to its merged resources (None: a local
    stage). ``executor`` None keeps the declarations; ``"local"`` runs
    everything locally; ``"slurm"`` sends every stage to SLURM, a local one
    with the ``[slurm]`` defaults.
    """
    if executor == "local":
        return {}
    if executor == "slurm":
        return {n: dict(r) if r is not None else merge({}, defaults) for n, r in declared.items()}
    if executor is not None:
        raise ValueError(f"unknown executor {executor!r} (local, slurm)")
    return {n: dict(r) for n, r in declared.items() if r is not None}


def describe(resources: Mapping[str, Any]) -> str:
    """Where and with what a stage runs, for `pivot status` and `pivot dag`: ``slurm@local
    (02:00:00, 16G, 4 cpus, 1 gpu, gpu)``."""
    parts: list[str] = []
    if "time" in resources:
        parts.append(str(resources["time"]))
    if "mem" in resources:
        parts.append(str(resources["mem"]))
    if "cpus" in resources:
        parts.append(f"{resources['cpus']} cpu{'s' if resources['cpus'] != 1 else ''}")
    gpus = resources.get("gpus")
    if gpus not in (None, 0):
        parts.append(f"{gpus} gpu{'s' if gpus != 1 else ''}")
    parts += [str(resources[k]) for k in ("partition", "account", "qos") if k in resources]
    where = f"slurm@{resources.get('host', 'local')}"
    return f"{where} ({', '.join(parts)})" if parts else where
