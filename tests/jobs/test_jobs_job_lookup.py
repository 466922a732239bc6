"""The squeue -> scontrol -> sacct fallback and the poll schedule, as pure decisions.

No threads, no processes: each decision takes a command's outcome as plain
data. ``query_jobs`` is driven with a runner that answers from a table (the
real commands run against the real Slurm in test_jobs_slurm_e2e.py).
"""

from __future__ import annotations

import asyncio

from pivot.jobs.job_lookup import (
    CommandOutcome,
    Runner,
    after_sacct,
    after_scontrol,
    after_squeue,
    query_jobs,
)
from pivot.jobs.schedule import host_interval, reconnect_delay, watcher_due

SQUEUE = "7|RUNNING|train|ana|7|N/A\n8|PENDING|eval|ana|8|N/A\n"
SCONTROL_9 = (
    "JobId=9 JobName=old UserId=ana(1000) JobState=COMPLETED ExitCode=0:0 WorkDir=/w "
    "Command=/w/job.sh StdOut=/w/%j.out StdErr=/w/%j.err"
)


def test_squeue_settles_seen_listed_jobs_and_asks_scontrol_of_the_rest() -> None:
    step = after_squeue(["7", "8", "9"], {"7", "9"}, CommandOutcome(0, SQUEUE))
    assert step.failure == ""
    assert {j: i.state for j, i in step.infos.items()} == {"7": "running", "8": "pending"}
    assert step.ask == ("8", "9")  # 8: never seen (its paths); 9: no longer listed


def test_with_ask_ended_a_job_squeue_lists_ended_is_asked_of_scontrol_for_its_exit_code() -> None:
    out = CommandOutcome(0, "7|RUNNING|train|ana|7|N/A\n9|FAILED|old|ana|9|N/A\n")
    assert after_squeue(["7", "9"], {"7", "9"}, out).ask == ()
    assert after_squeue(["7", "9"], {"7", "9"}, out, ask_ended=True).ask == ("9",)
    table = {"squeue": out, "scontrol": CommandOutcome(0, SCONTROL_9)}
    calls: list[str] = []
    answer = asyncio.run(
        query_jobs("c", run_table(table, calls), ["7", "9"], {"7", "9"}, ask_ended=True)
    )
    assert calls == ["squeue", "scontrol"]
    assert (answer.infos["9"].state, answer.infos["9"].exit_code) == ("completed", "0:0")


def test_a_failing_squeue_ends_the_query_and_guesses_no_end() -> None:
    down = after_squeue(["7"], {"7"}, CommandOutcome(error="cluster: cannot connect: refused"))
    assert (down.failure, down.infos, down.ask) == ("squeue: cluster: cannot connect: refused",
                                                    {}, ())  # fmt: skip
    broken = after_squeue(["7"], {"7"}, CommandOutcome(1, "", "slurm_load_jobs error: timeout\n"))
    assert broken.failure == "squeue exited 1: slurm_load_jobs error: timeout"
    assert broken.ask == ()


def test_squeue_saying_the_only_job_is_unknown_is_an_answer() -> None:
    step = after_squeue(
        ["9"], {"9"}, CommandOutcome(1, "", "slurm_load_jobs error: Invalid job id")
    )
    assert (step.failure, step.infos, step.ask) == ("", {}, ("9",))


def test_scontrol_answers_and_failures() -> None:
    found = after_scontrol("9", CommandOutcome(0, SCONTROL_9))
    assert found.infos["9"].stdout == "/w/9.out" and found.infos["9"].ended
    gone = after_scontrol(
        "9", CommandOutcome(1, "", "slurm_load_jobs error: Invalid job id specified")
    )
    assert (gone.failure, gone.infos) == ("", {})
    failed = after_scontrol("9", CommandOutcome(1, "", "Socket timed out"))
    assert failed.failure == "scontrol exited 1: Socket timed out"


def test_sacct_without_accounting_says_do_not_ask_again() -> None:
    off = after_sacct(["9"], CommandOutcome(1, "", "Slurm accounting storage is disabled\n"))
    assert off.sacct_unavailable and off.failure.startswith("job(s) 9 unknown")
    found = after_sacct(["9", "10"], CommandOutcome(0, "9|FAILED|old|1:0\n11|COMPLETED|x|0:0\n"))
    assert {j: i.state for j, i in found.infos.items()} == {"9": "failed"}


def run_table(table: dict[str, CommandOutcome], calls: list[str]) -> Runner:
    async def run(argv: list[str]) -> CommandOutcome:
        calls.append(argv[0])
        return table[argv[0]]

    return run


def test_the_whole_chain_records_each_command_and_details_of_jobs_first_seen() -> None:
    calls: list[str] = []
    table = {
        "squeue": CommandOutcome(0, "7|RUNNING|train|ana|7|N/A\n"),
        "scontrol": CommandOutcome(1, "", "Invalid job id specified"),
        "sacct": CommandOutcome(1, "", "accounting storage is disabled"),
    }
    answer = asyncio.run(
        query_jobs("c", run_table(table, calls), ["7", "9"], {"7", "9"}, sacct_ok=True)
    )
    assert calls == ["squeue", "scontrol", "sacct"]  # 7 settled by squeue; 9 asked on
    assert set(answer.infos) == {"7"} and answer.details == {}
    assert [w for w, _ in answer.lookups] == ["squeue", "scontrol", "sacct"]
    assert [bool(f) for _, f in answer.lookups] == [False, False, True]
    assert answer.sacct_unavailable
    calls.clear()
    again = asyncio.run(
        query_jobs("c", run_table(table, calls), ["7", "9"], {"7", "9"}, sacct_ok=False)
    )
    assert calls == ["squeue", "scontrol"]  # accounting is not asked again
    assert not again.sacct_unavailable


def test_a_job_seen_for_the_first_time_brings_its_details() -> None:
    table = {"squeue": CommandOutcome(0, ""), "scontrol": CommandOutcome(0, SCONTROL_9)}
    answer = asyncio.run(query_jobs("c", run_table(table, []), ["9"], set()))
    assert answer.details["9"].stdout == "/w/9.out"
    assert answer.infos["9"].state == "completed"


def test_schedule() -> None:
    assert host_interval([30, 0.5, 5]) == 0.5
    assert host_interval([30], poll_seconds=2) == 2
    assert watcher_due(None, 10.0) and watcher_due(10.0, 10.0) and not watcher_due(10.5, 10.0)
    assert watcher_due(99.0, 10.0, force=True)
    assert [reconnect_delay(n, 60) for n in (1, 2, 3, 7, 8)] == [1, 2, 4, 60, 60]


def test_a_job_the_log_knows_ended_is_asked_of_squeue_only() -> None:
    # Its final state is in the log already: scontrol and sacct would say it again,
    # every cycle for as long as it is watched (a watcher added after the job ended).
    gone = CommandOutcome(0, "7|RUNNING|train|ana|7|N/A\n")
    assert after_squeue(["7", "9"], {"7", "9"}, gone, ended={"9"}).ask == ()
    listed = CommandOutcome(0, "7|RUNNING|train|ana|7|N/A\n9|FAILED|old|ana|9|N/A\n")
    assert after_squeue(["7", "9"], {"7", "9"}, listed, ask_ended=True, ended={"9"}).ask == ()
    table = {"squeue": gone, "scontrol": CommandOutcome(1, "", "Invalid job id specified"),
             "sacct": CommandOutcome(0, "9|FAILED|old|1:0\n")}  # fmt: skip
    calls: list[str] = []
    for _ in range(3):
        answer = asyncio.run(query_jobs("c", run_table(table, calls), ["7", "9"], {"7", "9"},
                                        ask_ended=True, ended={"9"}))  # fmt: skip
        assert [w for w, _ in answer.lookups] == ["squeue"]
    assert calls == ["squeue"] * 3
