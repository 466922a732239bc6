"""`pivot ui`'s API against a real server process, a real store and the real SLURM.

The server is the CLI (`pivot ui --port 0`) in its own process; watchers
are created over HTTP, hosted by that server, and watch a real Slurm job.
Events appended by other processes (`pivot watchers add` in a subprocess)
must reach a WebSocket, in order, none lost across a reconnect.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from pivot.ui.app import routes
from pivot.ui.openapi import openapi

from testkit import slurm_cluster
from testkit.jobs_servers import job_dir, slurm  # noqa: F401 - pytest fixtures
from testkit.pgserver import postgres_url  # noqa: F401 - pytest fixture
from testkit.ui_server import pivot, receive_until, running_ui, start_ui, wait_for

LOSS = {
    "name": "Training Loss Tracker",
    "pattern": r"epoch (\d+) loss=([0-9.]+)",
    "captures": ["epoch", "loss"],
    "interval_seconds": 0.5,
    "max_triggers": 0,
    "rate_limit_per_minute": 1000,
    "actions": [{"type": "store_metric", "params": {"name": "loss", "value": "$loss"}}],
}


def _project(slurm: slurm_cluster.Cluster, root: Path) -> Path:
    (root / "pivot.toml").write_text(f'[hosts.local]\nenv = {{SLURM_CONF = "{slurm.conf}"}}\n')
    return root


def _submit(slurm: slurm_cluster.Cluster, job_dir: Path, name: str, epochs: int = 400) -> str:
    script = job_dir / f"{name}.sh"
    script.write_text(
        f"#!/bin/bash\n#SBATCH --job-name={name}\n#SBATCH --output={job_dir}/{name}-%j.out\n"
        f'for i in $(seq 1 {epochs}); do echo "epoch $i loss=0.$((1000 - i))"; sleep 0.3; done\n'
    )
    out = slurm.run("sbatch", "--parsable", str(script))
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().split(";")[0]


@pytest.mark.slurm
@pytest.mark.slow
def test_watchers_crud_and_control_on_a_real_job(
    slurm: slurm_cluster.Cluster, job_dir: Path
) -> None:
    project = _project(slurm, job_dir)
    job = _submit(slurm, job_dir, "train")
    with running_ui(project, "--tick", "0.2") as ui:
        assert ui.get("/api/status")["hosting_watchers"] is True
        jobs = wait_for(lambda: ui.get("/api/hosts/local/jobs")["jobs"], what="the job listed")
        assert job in [j["job_id"] for j in jobs]
        created = ui.post("/api/watchers", {"job_id": job, "hostname": "local", **LOSS}, 201)
        wid = created["id"]
        assert (created["job_id"], created["state"], created["captures"]) == (
            job, "active", ["epoch", "loss"])  # fmt: skip
        # The server hosts the watchers: the real job's lines become metrics.
        series = wait_for(
            lambda: ui.get(f"/api/watchers/{wid}/metrics")["series"].get("loss", [])[2:],
            what="three losses stored",
        )
        assert all(0 < p["value"] < 1 for p in series)
        listed = ui.get("/api/watchers")
        assert listed["count"] == 1 and listed["watchers"][0]["id"] == wid
        assert listed["watchers"][0]["trigger_count"] >= 3
        assert listed["watchers"][0]["last_trigger"]["matched_text"].startswith("epoch ")
        assert ui.get(f"/api/jobs/{job}/watchers")["count"] == 1
        assert ui.get("/api/jobs/999999/watchers")["count"] == 0
        output = wait_for(lambda: ui.get(f"/api/hosts/local/jobs/{job}/output"), what="output")
        assert "epoch 1 loss=0.999" in output["text"]

        assert ui.post(f"/api/watchers/{wid}/pause")["state"] == "paused"
        assert ui.get("/api/watchers", state="paused")["count"] == 1
        assert ui.get("/api/watchers", state="active")["count"] == 0
        assert ui.post(f"/api/watchers/{wid}/resume")["state"] == "active"

        fired = ui.post(f"/api/watchers/{wid}/trigger", {"text": "epoch 7 loss=0.25"})
        assert fired["success"] is True and fired["timer_mode"] is False
        assert fired["matches"][0]["captures"] == {"epoch": "7", "loss": "0.25"}
        wait_for(
            lambda: any(p["value"] == 0.25 for p in
                        ui.get(f"/api/watchers/{wid}/metrics")["series"]["loss"]),
            what="the triggered value stored",
        )  # fmt: skip

        events = ui.get("/api/watchers/events", watcher_id=wid, limit=5)
        assert events["count"] == 5
        seqs = [e["seq"] for e in events["events"]]
        assert seqs == sorted(seqs, reverse=True)  # newest first
        by_job = ui.get("/api/watchers/events", job_id=job, limit=1000)["events"]
        assert {e["job_id"] for e in by_job} == {job}
        assert any(e["type"] == "watcher.matched" and e["captured_vars"] for e in by_job)

        stats = ui.get("/api/watchers/stats")
        assert stats["total_watchers"] == 1
        assert stats["watchers_by_state"] == {"active": 1}
        assert stats["events_by_action"]["store_metric"]["success"] >= 4
        assert stats["top_watchers"][0]["watcher_id"] == wid
        assert stats["events_last_hour"] > 0

        # Edit: same id, a new definition; the job stays.
        edited = ui.http.put(f"/api/watchers/{wid}", json={**LOSS, "name": "loss (edited)",
                                                           "interval_seconds": 2})  # fmt: skip
        assert edited.status_code == 200, edited.text
        assert (edited.json()["id"], edited.json()["name"]) == (wid, "loss (edited)")
        assert edited.json()["changed"] is True and edited.json()["interval_seconds"] == 2
        assert ui.get(f"/api/watchers/{wid}")["name"] == "loss (edited)"
        moved = ui.http.put(f"/api/watchers/{wid}", json={**LOSS, "job_id": str(int(job) + 1000)})
        assert (moved.status_code, moved.json()["field"]) == (422, "job_id")
        # Copy to another job: a new watcher with the same definition.
        other = _submit(slurm, job_dir, "other")
        copied = ui.post(f"/api/watchers/{wid}/copy", {"job_id": other}, 201)
        assert copied["id"] != wid and copied["job_id"] == other
        assert copied["name"] == "loss (edited)" and copied["pattern"] == LOSS["pattern"]
        wait_for(lambda: ui.get(f"/api/watchers/{copied['id']}")["trigger_count"] > 0,
                 what="the copy matches the other job's output")  # fmt: skip
        ui.http.delete(f"/api/watchers/{copied['id']}")
        slurm.run("scancel", other)

        removed = ui.http.delete(f"/api/watchers/{wid}")
        assert removed.status_code == 200 and removed.json()["state"] == "removed"
        assert ui.http.get(f"/api/watchers/{wid}").status_code == 404
        assert ui.get("/api/watchers")["count"] == 0
        assert ui.get("/api/watchers", state="removed")["count"] == 2  # and the copy
    slurm.run("scancel", job)


def _bad(ui: Any, method: str, path: str, body: Any = None, raw: bytes | None = None,
         **params: Any) -> tuple[int, str | None, str]:  # fmt: skip
    headers = {"Content-Type": "application/json"} if raw is not None else None
    r = ui.http.request(method, path, json=body if raw is None else None, content=raw,
                        params=params or None, headers=headers)  # fmt: skip
    data = r.json()
    return r.status_code, data.get("field"), data["error"]


def test_every_bad_request_is_a_4xx_naming_the_field(tmp_path: Path) -> None:
    (tmp_path / "pivot.toml").write_text("")
    good = {"job_id": "42", **LOSS}
    with running_ui(tmp_path, "--no-watchers") as ui:
        wid = ui.post("/api/watchers", good, 201)["id"]
        corpus: list[tuple[tuple[int, str | None], str, str, Any]] = [
            ((422, "pattern"), "POST", "/api/watchers", {**good, "pattern": "(unclosed"}),
            ((422, "pattern"), "POST", "/api/watchers", {**good, "pattern": r"(a)\1"}),
            ((422, "pattern"), "POST", "/api/watchers", {**good, "pattern": "x" * 1001}),
            ((422, "condition"), "POST", "/api/watchers",
             {**good, "condition": "().__class__.__bases__[0].__subclasses__()"}),
            ((422, "condition"), "POST", "/api/watchers",
             {**good, "condition": "__import__('os').system('id')"}),
            ((422, "condition"), "POST", "/api/watchers", {**good, "condition": "1 < " * 200}),
            ((422, "actions"), "POST", "/api/watchers", {**good, "actions": [{"type": "rm_rf"}]}),
            ((422, "actions"), "POST", "/api/watchers", {**good, "actions": []}),
            ((422, "actions"), "POST", "/api/watchers", {**good, "actions": [
                {"type": "log_event", "params": {"message": "x" * 11_000}}]}),
            ((422, "actions"), "POST", "/api/watchers", {**good, "actions": [
                {"type": "log_event", "params": {"message": "$nosuch"}}]}),
            ((422, "name"), "POST", "/api/watchers", {k: v for k, v in good.items()
                                                     if k != "name"}),
            ((422, "job_id"), "POST", "/api/watchers", {k: v for k, v in good.items()
                                                       if k != "job_id"}),
            ((422, "job_id"), "POST", "/api/watchers", {**good, "job_id": "12; rm -rf /"}),
            ((422, "hostname"), "POST", "/api/watchers", {**good, "hostname": "nowhere"}),
            ((422, "interval_seconds"), "POST", "/api/watchers", {**good, "interval_seconds": -1}),
            ((422, "colour"), "POST", "/api/watchers", {**good, "colour": "red"}),
            ((400, "body"), "POST", "/api/watchers", [1, 2]),
            ((404, "id"), "GET", "/api/watchers/nosuch", None),
            ((404, "id"), "POST", "/api/watchers/nosuch/pause", None),
            ((404, "id"), "POST", "/api/watchers/nosuch/resume", None),
            ((404, "id"), "POST", "/api/watchers/nosuch/trigger", None),
            ((404, "id"), "DELETE", "/api/watchers/nosuch", None),
            ((404, "id"), "PUT", "/api/watchers/nosuch", {"name": "x"}),
            ((422, "pattern"), "PUT", f"/api/watchers/{wid}", {**LOSS, "pattern": "(a"}),
            ((422, "colour"), "PUT", f"/api/watchers/{wid}", {**LOSS, "colour": "red"}),
            ((400, "body"), "PUT", f"/api/watchers/{wid}", [1]),
            ((404, "id"), "POST", "/api/watchers/nosuch/copy", {"job_id": "5"}),
            ((422, "job_id"), "POST", f"/api/watchers/{wid}/copy", {}),
            ((422, "name"), "POST", f"/api/watchers/{wid}/copy", {"job_id": "5", "name": "x"}),
            ((404, "id"), "GET", "/api/watchers/nosuch/metrics", None),
            ((409, None), "POST", f"/api/watchers/{wid}/resume", None),
            ((422, "text"), "POST", f"/api/watchers/{wid}/trigger", {"text": "no match here"}),
            ((422, "text"), "POST", f"/api/watchers/{wid}/trigger", {"text": 5}),
            ((404, "watcher_id"), "GET", "/api/watchers/events?watcher_id=nosuch", None),
            ((400, "limit"), "GET", "/api/watchers?limit=many", None),
            ((400, "limit"), "GET", "/api/watchers?limit=%C2%B2", None),  # '²'.isdigit()
            ((422, "job_id"), "POST", "/api/watchers", {**good, "job_id": "\u00b2"}),
            ((400, "job_id"), "GET", "/api/hosts/local/jobs/%C2%B2/output", None),
            ((400, "limit"), "GET", "/api/watchers/events?limit=0", None),
            ((400, "state"), "GET", "/api/watchers?state=asleep", None),
            ((404, "hostname"), "GET", "/api/hosts/nowhere/jobs", None),
            ((400, "job_id"), "GET", "/api/hosts/local/jobs/abc/output", None),
            ((404, None), "GET", "/api/pipeline/stages/..%2F..%2Fetc/log", None),
            ((400, "stage"), "GET", "/api/pipeline/stages/..passwd/log", None),
            ((400, "stage"), "GET", "/api/pipeline/stages/a%20b/log", None),
            ((404, "stage"), "GET", "/api/pipeline/stages/train/log", None),
            ((404, "name"), "POST", "/api/templates/nosuch/render", {"values": {}}),
            ((422, "values.memory"), "POST", "/api/templates/oom-resubmit/render",
             {"values": {"memory": "lots"}}),
            ((422, "values"), "POST", "/api/templates/progress/render", {"values": {"x": "1"}}),
            ((400, "values"), "POST", "/api/templates/progress/render", {"values": [1]}),
            ((422, "pattern"), "POST", "/api/watchers/check", {**good, "pattern": "(a"}),
            ((404, None), "GET", "/api/nosuch", None),
            ((405, None), "PATCH", "/api/watchers", None),
        ]  # fmt: skip
        for (status, field), method, path, body in corpus:
            got = _bad(ui, method, path, body)
            assert got[:2] == (status, field), (method, path, body, got)
            assert got[2] and "Traceback" not in got[2]
        status, field, error = _bad(ui, "POST", "/api/watchers", raw=b"{not json")
        assert (status, field) == (400, "body") and "not valid JSON" in error
        # What a page of another site could send without a preflight, or under a
        # rebound DNS name, is refused before it reaches the API.
        as_text = ui.http.post("/api/watchers", content=json.dumps(good),
                               headers={"Content-Type": "text/plain"})  # fmt: skip
        assert (as_text.status_code, as_text.json()["field"]) == (415, "content-type")
        for headers in ({"Origin": "http://evil.example"}, {"Host": "evil.example:80"},
                        {"Origin": "null"}):  # fmt: skip
            r = ui.http.post("/api/watchers", json=good, headers=headers)
            assert (r.status_code, r.json()["field"]) == (403, "origin"), headers
        with pytest.raises(InvalidStatus) as cross_site:
            ui.ws("/ws/watchers", origin="http://evil.example").close()
        assert cross_site.value.response.status_code == 403
        with ui.ws("/ws/watchers", origin=ui.url) as conn:
            assert json.loads(conn.recv(timeout=30))["type"] == "hello"
        with ui.ws("/ws/watchers?after=%C2%B2") as conn, pytest.raises(ConnectionClosed) as bad:
            conn.recv(timeout=30)
        assert bad.value.rcvd is not None and bad.value.rcvd.code == 1008
        assert ui.get("/api/watchers")["count"] == 1  # nothing bad was added


def test_one_host_of_the_watchers_a_second_ui_stands_by_and_takes_over(tmp_path: Path) -> None:
    (tmp_path / "pivot.toml").write_text("")
    first = start_ui(tmp_path, "--tick", "0.2")
    try:
        assert first.get("/api/status")["hosting_watchers"] is True
        with running_ui(tmp_path, "--tick", "0.2") as second:
            status = second.get("/api/status")
            assert (status["hosting_watchers"], status["watchers_standby"]) == (False, True)
            first.stop()
            wait_for(lambda: second.get("/api/status")["hosting_watchers"], what="the takeover")
    finally:
        first.stop()


def test_a_token_guards_every_api_and_websocket_request(tmp_path: Path) -> None:
    (tmp_path / "pivot.toml").write_text("")
    refused = pivot(tmp_path, "ui", "--host", "0.0.0.0", "--port", "0", ok=False)
    assert refused.returncode == 1 and "without a token" in refused.stderr
    # The page sends the token as a WebSocket subprotocol and in the address's
    # #fragment: a '/', '=' (base64), space or '&' there breaks the page's live
    # updates, so such a token is refused up front, saying which character.
    for bad in ("ab/cd", "abc=", "a b", "a&b", "é"):
        cmd = pivot(tmp_path, "ui", "--port", "0", "--token", bad, ok=False)
        assert cmd.returncode == 1 and cmd.stderr.startswith("error: the token may only"), bad
    with running_ui(tmp_path, "--no-watchers", token="s3cret") as ui:
        assert ui.get("/api/watchers")["count"] == 0
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            for path in ("/api/watchers", "/api/watchers/stats", "/api/pipeline"):
                r = httpx.get(ui.url + path, headers=headers)
                assert r.status_code == 401 and r.json()["field"] == "authorization"
        r = httpx.post(ui.url + "/api/watchers", json={"job_id": "1", **LOSS})
        assert r.status_code == 401
        assert httpx.get(ui.url + "/openapi.json").status_code == 200  # the schema is public
        with pytest.raises(InvalidStatus) as refused_ws:
            ui.ws("/ws/watchers", token="wrong").close()
        assert refused_ws.value.response.status_code == 401
        with ui.ws("/ws/watchers") as conn:  # the header
            assert json.loads(conn.recv(timeout=30))["type"] == "hello"
        with ui.ws("/ws/watchers", token="", subprotocols=["pivot", "bearer.s3cret"]) as conn:
            assert conn.subprotocol == "pivot"  # the browser's way
            assert json.loads(conn.recv(timeout=30))["type"] == "hello"


WATCHER_YAML = """\
name: from another process {n}
pattern: "never matches {n}"
actions:
  - type: log_event
    params: {{message: hi}}
"""


def _add_from_another_process(project: Path, n: int, job: str = "77") -> str:
    (project / f"w{n}.yaml").write_text(WATCHER_YAML.format(n=n))
    out = pivot(project, "watchers", "add", f"w{n}.yaml", "--job", job, "--json").stdout
    wid: str = json.loads(out)["watchers"][0]["id"]
    return wid


def test_websocket_pushes_what_another_process_appends_and_resumes_without_loss(
    tmp_path: Path,
) -> None:
    (tmp_path / "pivot.toml").write_text("")
    pivot(tmp_path, "watchers", "add", "--help")  # nothing recorded yet: the store is created
    with running_ui(tmp_path, "--no-watchers") as ui:
        with ui.ws("/ws/watchers") as conn, ui.ws("/ws/watchers/78") as other_job:
            hello = json.loads(conn.recv(timeout=30))
            assert hello["type"] == "hello"
            assert json.loads(other_job.recv(timeout=30))["type"] == "hello"
            wid = _add_from_another_process(tmp_path, 1)
            got = receive_until(conn, lambda m: m["type"] == "watcher_state_change")
            assert got[0]["type"] == "watcher_event"
            assert got[0]["event"]["type"] == "watcher.created"
            assert got[0]["event"]["watcher_id"] == wid and got[0]["job_id"] == "77"
            assert got[-1] == {"type": "watcher_state_change", "channel": "watchers",
                               "seq": got[0]["seq"], "job_id": "77", "watcher_id": wid,
                               "state": "active"}  # fmt: skip
            last_seen = got[-1]["seq"]
            pivot(tmp_path, "watchers", "pause", wid)
            paused = receive_until(conn, lambda m: m["type"] == "watcher_state_change")
            assert paused[-1]["state"] == "paused"
            last_seen = paused[-1]["seq"]
            # The job-78 channel saw nothing of job 77.
            wid78 = _add_from_another_process(tmp_path, 2, job="78")
            mine = receive_until(other_job, lambda m: m["type"] == "watcher_state_change")
            assert {m["job_id"] for m in mine} == {"78"} and mine[-1]["watcher_id"] == wid78
        # Disconnected: other processes go on appending.
        missed = [_add_from_another_process(tmp_path, n) for n in range(3, 6)]
        pivot(tmp_path, "watchers", "rm", missed[0])
        with ui.ws(f"/ws/watchers?after={last_seen}") as conn:
            hello = json.loads(conn.recv(timeout=30))
            assert hello["type"] == "hello" and hello["replay_after"] == last_seen
            replayed = receive_until(conn, lambda m: m.get("state") == "removed", timeout=30)
            live_wid = _add_from_another_process(tmp_path, 9)
            live = receive_until(conn, lambda m: m.get("watcher_id") == live_wid and
                                 m["type"] == "watcher_state_change")  # fmt: skip
        seqs = [m["seq"] for m in replayed + live]
        assert seqs == sorted(seqs) and seqs[0] > last_seen
        created = [
            m["event"]["watcher_id"]
            for m in replayed + live
            if m["type"] == "watcher_event" and m["event"]["type"] == "watcher.created"
        ]
        assert created == [wid78, *missed, live_wid]  # every one, once, in order  # fmt: skip
        assert replayed[-1]["watcher_id"] == missed[0]


def test_openapi_lists_exactly_the_routes() -> None:
    from starlette.routing import Route

    schema = openapi()
    documented = {(p, m.upper()) for p, ops in schema["paths"].items() for m in ops}
    served = {
        (r.path, m)
        for r in routes()
        if isinstance(r, Route) and r.path.startswith("/api/")
        for m in (r.methods or set()) - {"HEAD"}
    }
    assert documented == served


def test_templates_render_and_warnings_come_from_the_cli_s_catalogue(tmp_path: Path) -> None:
    from pivot.jobs.templates import templates

    (tmp_path / "pivot.toml").write_text("")
    with running_ui(tmp_path, "--no-watchers") as ui:
        listed = ui.get("/api/templates")
        assert [t["name"] for t in listed["templates"]] == [t.name for t in templates()]
        # The form's action types and parameters are the parser's, not a copy.
        from pivot.jobs.action_spec import ACTION_PARAMS

        actions = {a["type"]: {p["name"]: (p["required"], p["kind"]) for p in a["params"]}
                   for a in listed["actions"]}  # fmt: skip
        assert {t: set(ps) for t, ps in actions.items()} == {
            t: set(ps) for t, ps in ACTION_PARAMS.items()}  # fmt: skip
        assert actions["notify_slack"]["channel"] == (False, "string")
        assert actions["run_command"]["timeout_seconds"] == (False, "number")
        assert actions["resubmit"]["modifications"] == (False, "object")
        assert actions["store_metric"]["value"] == (True, "string")
        loss = next(t for t in listed["templates"] if t["name"] == "training-loss")
        assert {p["name"] for p in loss["params"]} == {"pattern", "metric"}
        rendered = ui.post("/api/templates/training-loss/render", {"values": {"metric": "loss"}})
        definition = rendered["definition"]
        assert definition["actions"][0]["type"] == "store_metric"
        body = {"job_id": "4242", **definition,
                "actions": [*definition["actions"], {"type": "run_command",
                            "params": {"command": "rm -rf $(date +%s)"}}]}  # fmt: skip
        checked = ui.post("/api/watchers/check", body)
        fields = {w["field"] for w in checked["warnings"]}
        assert "actions[1].run_command" in fields  # not on the allowlist, shell syntax
        assert fields & {"job", "host"}  # Slurm does not know job 4242, or is not there
        assert all(w["fix"] for w in checked["warnings"])
        assert ui.get("/api/watchers")["count"] == 0  # a check adds nothing
        created = ui.post("/api/watchers", body, 201)
        assert {w["field"] for w in created["warnings"]} == fields


@pytest.mark.postgres
def test_on_postgresql_another_process_s_watcher_is_pushed_and_listed(
    tmp_path: Path,
    postgres_url: str,
) -> None:
    (tmp_path / "pivot.toml").write_text(f'event_store = "{postgres_url}"\n')
    with running_ui(tmp_path, "--no-watchers") as ui:
        assert ui.get("/api/status")["store_kind"] == "postgresql"
        with ui.ws("/ws/watchers") as conn:
            assert json.loads(conn.recv(timeout=30))["type"] == "hello"
            wid = _add_from_another_process(tmp_path, 1)
            got = receive_until(conn, lambda m: m["type"] == "watcher_state_change")
            assert got[-1]["watcher_id"] == wid
        assert [w["id"] for w in ui.get("/api/watchers")["watchers"]] == [wid]


@pytest.mark.slurm
@pytest.mark.slow
def test_an_edit_keeps_the_watcher_its_id_and_read_position(
    slurm: slurm_cluster.Cluster, job_dir: Path
) -> None:
    """PUT /api/watchers/{id} is `pivot watchers edit`: the same watcher goes on
    from where it was in the job's output, so lines it already handled do not
    run its (new) actions again, as a fresh watcher reading from the start would."""
    project = _project(slurm, job_dir)
    job = _submit(slurm, job_dir, "edited")
    with running_ui(project, "--tick", "0.2") as ui:
        wid = ui.post("/api/watchers", {"job_id": job, **LOSS}, 201)["id"]
        wait_for(lambda: ui.get(f"/api/watchers/{wid}/metrics")["series"].get("loss", [])[3:],
                 what="four losses stored")  # fmt: skip
        new = {**LOSS, "name": "Epochs",
               "actions": [{"type": "store_metric", "params": {"name": "epoch",
                                                                "value": "$epoch"}}]}  # fmt: skip
        r = ui.http.put(f"/api/watchers/{wid}", json={"job_id": job, "hostname": "local", **new})
        assert r.status_code == 200, r.text
        assert (r.json()["id"], r.json()["name"], r.json()["job_id"]) == (wid, "Epochs", job)
        assert ui.get("/api/watchers")["count"] == 1
        epochs = wait_for(
            lambda: ui.get(f"/api/watchers/{wid}/metrics")["series"].get("epoch", [])[1:],
            what="epochs stored by the edited watcher",
        )
        assert min(p["value"] for p in epochs) > 4  # it did not read the output again
        same = ui.http.put(f"/api/watchers/{wid}", json=new)
        assert same.status_code == 200 and same.json()["changed"] is False
        for body, field in (({**new, "job_id": "999999"}, "job_id"),
                            ({**new, "pattern": "(a"}, "pattern")):  # fmt: skip
            bad = ui.http.put(f"/api/watchers/{wid}", json=body)
            assert (bad.status_code, bad.json().get("field")) == (422, field), bad.text
        assert ui.http.put("/api/watchers/nosuch", json=new).status_code == 404
    slurm.run("scancel", job)


def _strict(text: str | bytes) -> Any:
    """JSON as a browser's JSON.parse reads it: NaN and Infinity are not JSON."""

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in a JSON body (JSON.parse would throw): {text[:300]!r}")

    return json.loads(text, parse_constant=refuse)


def test_a_nan_metric_is_null_in_every_answer_and_push(tmp_path: Path) -> None:
    """A diverged loss (`loss=nan`) is stored as it is; the page's answers and
    pushes say null for it instead of failing (500) or sending NaN."""
    (tmp_path / "pivot.toml").write_text("")
    diverging = {"job_id": "42", "name": "loss", "pattern": r"loss=(\S+)", "captures": ["loss"],
                 "actions": [{"type": "store_metric",
                              "params": {"name": "loss", "value": "$loss"}}]}  # fmt: skip
    with running_ui(tmp_path, "--no-watchers") as ui:
        wid = ui.post("/api/watchers", diverging, 201)["id"]
        with ui.ws("/ws/watchers") as conn:
            assert _strict(conn.recv(timeout=30))["type"] == "hello"
            for text in ("loss=0.5", "loss=nan", "loss=inf"):
                assert ui.post(f"/api/watchers/{wid}/trigger", {"text": text})["success"]
            pushed: list[dict[str, Any]] = []
            while len(pushed) < 3:
                msg = _strict(conn.recv(timeout=30))
                if msg["type"] == "watcher_event" and msg["event"]["type"] == "metric.stored":
                    pushed.append(msg)
        for path in (f"/api/watchers/{wid}/metrics", f"/api/watchers/{wid}", "/api/watchers",
                     "/api/watchers/events", "/api/watchers/stats"):  # fmt: skip
            r = ui.http.get(path)
            assert r.status_code == 200, (path, r.text)
            doc = _strict(r.content)
            if path.endswith("/metrics"):
                assert [p["value"] for p in doc["series"]["loss"]] == [0.5, None, None]


def test_what_the_page_changes_is_recorded_as_done_by_the_page(tmp_path: Path) -> None:
    (tmp_path / "pivot.toml").write_text("")
    with running_ui(tmp_path, "--no-watchers") as ui:
        wid = ui.post("/api/watchers", {"job_id": "42", **LOSS}, 201)["id"]
        ui.post(f"/api/watchers/{wid}/pause")
        ui.post(f"/api/watchers/{wid}/resume")
        assert ui.http.put(f"/api/watchers/{wid}", json={**LOSS, "name": "x"}).status_code == 200
        assert ui.http.delete(f"/api/watchers/{wid}").status_code == 200
    out = pivot(tmp_path, "events", "--json").stdout
    actors = {e["type"]: e["actor"] for e in map(json.loads, out.splitlines())}
    assert actors == {"watcher.created": "ui", "watcher.paused": "ui", "watcher.resumed": "ui",
                      "watcher.edited": "ui", "watcher.removed": "ui"}  # fmt: skip


def test_a_port_in_use_or_an_unknown_host_is_one_line_exit_1(tmp_path: Path) -> None:
    import socket

    (tmp_path / "pivot.toml").write_text("")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = pivot(tmp_path, "ui", "--no-watchers", "--port", str(port), ok=False)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert r.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use"]  # fmt: skip
    r = pivot(tmp_path, "ui", "--no-watchers", "--host", "nosuch.invalid", "--token", "t",
              ok=False)  # fmt: skip
    assert r.returncode == 1 and r.stderr.startswith("error: cannot listen on nosuch.invalid:")
    server = start_ui(tmp_path, "--no-watchers")
    server.stop()  # Ctrl-C
    assert server.proc.returncode == 130


def test_a_host_nothing_answers_on_is_a_502_naming_it(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once closed
    (tmp_path / "pivot.toml").write_text(
        f"[hosts.cluster]\nhostname = '127.0.0.1'\nport = {port}\nconnect_timeout = 5\n"
    )
    with running_ui(tmp_path, "--no-watchers") as ui:
        for path in ("/api/hosts/cluster/jobs", "/api/hosts/cluster/jobs/42/output"):
            status, field, error = _bad(ui, "GET", path)
            assert (status, field) == (502, "hostname"), (path, error)
            assert error.startswith("cannot reach cluster: "), (path, error)


def test_a_queued_job_s_stage_log_is_empty_until_slurm_creates_its_file(tmp_path: Path) -> None:
    # .pivot/logs/STAGE.log names the job's file before Slurm makes it (the job is
    # queued): the log is empty then, as docs/slurm-stages.md says, not "no log".
    (tmp_path / "pivot.toml").write_text("")
    logs = tmp_path / ".pivot" / "logs"
    (logs / "jobs").mkdir(parents=True)
    (logs / "train.log").symlink_to(Path("jobs") / "train.41.log")
    (logs / "escape.log").symlink_to(Path("..") / ".." / "nowhere.log")
    with running_ui(tmp_path, "--no-watchers") as ui:
        got = ui.get("/api/pipeline/stages/train/log")
        assert (got["text"], got["size"], got["waiting"]) == ("", 0, True)
        (logs / "jobs" / "train.41.log").write_text("epoch 1\n")
        got = ui.get("/api/pipeline/stages/train/log")
        assert (got["text"], got["waiting"]) == ("epoch 1\n", False)
        # a dangling link out of the logs' folder is no job's file: still no log
        assert _bad(ui, "GET", "/api/pipeline/stages/escape/log")[:2] == (404, "stage")
        assert _bad(ui, "GET", "/api/pipeline/stages/nosuch/log")[:2] == (404, "stage")


def test_a_pending_job_s_output_not_made_yet_is_empty_and_says_it_does_not_exist(
    tmp_path: Path,
) -> None:
    # A queued job's --output names a file Slurm makes when the job starts: a dangling
    # symlink, or nothing at all. Its output is "none yet" (200), not an error.
    from pivot.events.jobs import JobSeen
    from pivot.events.store import EventStore

    (tmp_path / "pivot.toml").write_text("")
    (tmp_path / ".pivot").mkdir()
    link, later = tmp_path / "train-41.out", tmp_path / "not-yet.out"
    link.symlink_to(tmp_path / "jobs" / "41.out")
    store = EventStore.open(tmp_path / ".pivot" / "events.db")
    store.append([JobSeen(host="local", job_id="41", state="pending", stdout=str(link),
                          actor="test"),
                  JobSeen(host="local", job_id="42", state="pending", stdout=str(later),
                          actor="test")])  # fmt: skip
    store.close()
    with running_ui(tmp_path, "--no-watchers") as ui:
        for job in ("41", "42"):
            got = ui.get(f"/api/hosts/local/jobs/{job}/output")
            assert (got["text"], got["size"], got["exists"]) == ("", 0, False), job
        (tmp_path / "jobs").mkdir()
        (tmp_path / "jobs" / "41.out").write_text("epoch 1\n")
        got = ui.get("/api/hosts/local/jobs/41/output")
        assert (got["text"], got["exists"]) == ("epoch 1\n", True)
