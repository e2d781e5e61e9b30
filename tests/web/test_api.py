"""The JSON API through the real ASGI app: auth, the read side, every action and every bad
input a user (or an attacker's page) can send."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from looop.act.executor import execute
from looop.act.parse import decision_from_obj
from looop.core.context import Ctx
from looop.human.mailbox import archive, new_ask
from looop.sessions.client import send
from looop.sessions.state import get_session
from looop.views.status import gather_status
from tests.helpers import said, wait_until
from tests.web.conftest import ORIGIN, TOKEN, journal

pytestmark = pytest.mark.timeout(60)


def _ask(ctx: Ctx, options: list[str]) -> str:
    p = ctx.paths
    return str(new_ask(p.asks, p.answers, "w1", "ship it?", None, options, ctx.clock.now())["id"])


# --- auth ---------------------------------------------------------------------------------


def test_no_or_wrong_token_is_401_with_one_json_line(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Cookie": "looop_web_80=nope"}):
        r = client.get("/api/v1/state", headers=headers)
        assert r.status_code == 401
        assert list(r.json()) == ["error"] and "\n" not in r.json()["error"]
    assert client.get("/api/v1/state?token=nope").status_code == 401
    assert client.get("/").status_code == 401  # the page too, with a hint, not the dashboard


def test_token_in_url_becomes_an_httponly_strict_cookie(client: TestClient) -> None:
    r = client.get(f"/?token={TOKEN}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert client.get("/api/v1/state").status_code == 200  # the cookie alone now
    assert client.get("/").status_code == 200


def test_bearer_token_reads_and_acts_without_an_origin(client: TestClient, ctx: Ctx) -> None:
    h = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/api/v1/state", headers=h).status_code == 200
    r = client.post("/api/v1/goals/g1", headers=h, json={"body": "tests pass"})
    assert r.status_code == 200, r.text
    assert ctx.paths.goal("g1").read_text().strip() == "tests pass"


def test_rebound_host_name_is_refused(authed: TestClient) -> None:
    r = authed.get("/api/v1/state", headers={"Host": "evil.example"})
    assert r.status_code == 403 and "Host" in r.json()["error"]


def test_state_change_needs_this_servers_origin(authed: TestClient, ctx: Ctx) -> None:
    for origin in ("http://evil.example", "null", f"{ORIGIN}.evil.example"):
        r = authed.post("/api/v1/goals/g1", json={"body": "x"}, headers={"Origin": origin})
        assert r.status_code == 403, origin
    del authed.headers["Origin"]  # a cookie alone (a form from elsewhere) is not enough
    assert authed.post("/api/v1/goals/g1", json={"body": "x"}).status_code == 403
    assert not ctx.paths.goal("g1").exists()
    assert journal(ctx) == ""


def test_a_get_never_acts(authed: TestClient, ctx: Ctx, worker: str) -> None:
    for path in (f"/api/v1/sessions/{worker}/send", f"/api/v1/sessions/{worker}/kill"):
        assert authed.get(path).status_code in (404, 405)
    assert get_session(ctx.paths.data, worker).alive


# --- reads --------------------------------------------------------------------------------


def test_state_is_status_json(authed: TestClient, ctx: Ctx) -> None:
    got = authed.get("/api/v1/state").json()
    want = json.loads(json.dumps(gather_status(ctx.paths, ctx.env, ctx.clock)))
    assert got.keys() == want.keys()  # one function: `paused` is status's own field now
    assert got["pulse"] == want["pulse"] and got["health"] == "stopped"


def test_sessions_screen_and_log_of_a_live_worker(
    authed: TestClient, ctx: Ctx, worker: str
) -> None:
    send(ctx.paths.data, worker, "hello web\r", False)
    rows = authed.get("/api/v1/sessions").json()
    assert [r["id"] for r in rows] == ["pulse", worker]
    assert {"health", "idle_s", "up_s", "branch", "cost_today_usd"} <= rows[1].keys()

    def screen_has() -> bool:
        shot = authed.get(f"/api/v1/sessions/{worker}/screen").json()
        return any("hello web" in "".join(run["t"] for run in line) for line in shot["lines"])

    wait_until(screen_has, 10, "the typed text on the screen")
    log = authed.get(f"/api/v1/sessions/{worker}/log?tail=5").json()
    assert "hello web" in log["text"]


def test_screen_keeps_colours_as_styled_runs(authed: TestClient, ctx: Ctx, worker: str) -> None:
    send(ctx.paths.data, worker, "\x1b[31mRED\x1b[0m plain\r", False)

    def red() -> bool:
        lines = authed.get(f"/api/v1/sessions/{worker}/screen").json()["lines"]
        return any(r["t"] == "RED" and r.get("fg") == "idx1" for line in lines for r in line)

    wait_until(red, 10, "RED in red")


def test_unknown_ids_are_404(authed: TestClient) -> None:
    for path in (
        "/api/v1/sessions/nope/screen",
        "/api/v1/sessions/nope/log",
        "/api/v1/sessions/..%2Fetc/screen",
        "/api/v1/runs/nope",
        "/api/v1/nothing-here",
    ):
        r = authed.get(path)
        assert r.status_code == 404, path
        assert list(r.json()) == ["error"]


def test_journal_asks_cost_schedules_runs_and_openapi(authed: TestClient, ctx: Ctx) -> None:
    ctx.paths.journal.write_text("- 2026-06-21 10:00 did a thing\n")
    aid = _ask(ctx, ["yes", "no"])
    assert authed.get("/api/v1/journal").json() == [
        {"at": "2026-06-21 10:00", "text": "did a thing", "line": "- 2026-06-21 10:00 did a thing"}
    ]
    asks = authed.get("/api/v1/asks").json()
    rows = [(a["id"], a["status"], a["options"]) for a in asks]
    assert rows == [(aid, "STRANDED", ["yes", "no"])]
    cost = authed.get("/api/v1/cost?days=14").json()
    assert len(cost["daily"]) == 14 and cost["today"] == 0
    assert authed.get("/api/v1/schedules").json() == []
    assert authed.get("/api/v1/runs").json() == []
    spec = authed.get("/api/v1/openapi.json").json()
    assert "/api/v1/asks/{aid}/answer" in spec["paths"] and spec["openapi"].startswith("3.")


def test_nothing_secret_is_served(authed: TestClient, ctx: Ctx) -> None:
    ctx.paths.config.write_text(
        json.dumps(
            {
                "default": "r",
                "runners": {"r": {"tick": "SECRET_TICK_CMD x", "worker": "SECRET_WORKER_CMD"}},
            }
        )
    )
    ctx.env["API_KEY_XYZ"] = "hunter2"  # type: ignore[index]
    for path in ("/api/v1/state", "/api/v1/sessions?all=1", "/api/v1/openapi.json"):
        text = authed.get(path).text
        assert "SECRET_" not in text and "hunter2" not in text, path


# --- actions ------------------------------------------------------------------------------


def test_answer_with_an_option_then_again_is_409(authed: TestClient, ctx: Ctx) -> None:
    aid = _ask(ctx, ["yes", "no"])
    r = authed.post(f"/api/v1/asks/{aid}/answer", json={"answer": "YES"})
    assert r.status_code == 200, r.text
    rec = json.loads((ctx.paths.answers / f"{aid}.json").read_text())
    assert rec["answer"] == "yes"  # stored as the option is spelled, as `looop answer` does
    assert f"web: answered {aid}" in said(ctx.paths.data)
    assert f"answered {aid}" not in journal(ctx)  # an answer is an event, not a move (RULE 1)
    before = journal(ctx)
    again = authed.post(f"/api/v1/asks/{aid}/answer", json={"answer": "no"})
    assert again.status_code == 409 and "already answered" in again.json()["error"]
    assert journal(ctx) == before


def test_answer_outside_the_options_is_refused_and_not_journaled(
    authed: TestClient, ctx: Ctx
) -> None:
    aid = _ask(ctx, ["yes", "no"])
    r = authed.post(f"/api/v1/asks/{aid}/answer", json={"answer": "maybe"})
    assert r.status_code == 400 and "yes, no" in r.json()["error"]
    assert not (ctx.paths.answers / f"{aid}.json").exists() and journal(ctx) == ""


def test_answer_vanished_or_unknown_ask(authed: TestClient, ctx: Ctx) -> None:
    aid = _ask(ctx, [])
    archive(ctx.paths.asks, aid)  # answered elsewhere and archived by the asker
    assert authed.post(f"/api/v1/asks/{aid}/answer", json={"answer": "x"}).status_code == 409
    assert authed.post("/api/v1/asks/w1-99/answer", json={"answer": "x"}).status_code == 404
    assert authed.post("/api/v1/asks/..%2Fx/answer", json={"answer": "x"}).status_code == 404
    assert journal(ctx) == ""


def test_bad_bodies(authed: TestClient, ctx: Ctx) -> None:
    aid = _ask(ctx, [])
    url = f"/api/v1/asks/{aid}/answer"
    big = authed.post(url, content=b'{"answer": "' + b"x" * (70 << 10) + b'"}')
    assert big.status_code == 413 and list(big.json()) == ["error"]
    assert authed.post(url, content=b"not json").status_code == 400
    assert authed.post(url, json=["a"]).status_code == 400
    assert authed.post(url, json={"answer": 3}).status_code == 400
    assert authed.post(url, json={"answer": "  "}).status_code == 400
    assert journal(ctx) == "" and not (ctx.paths.answers / f"{aid}.json").exists()


def test_a_nul_anywhere_in_a_request_is_a_400_and_nothing_is_done(
    authed: TestClient, ctx: Ctx, worker: str
) -> None:
    aid = _ask(ctx, [])
    nul = "a\x00b"
    fields = ("answer", "message", "text", "reason", "body", "prompt", "file", "into", "mode")
    spec = authed.get("/api/v1/openapi.json").json()["paths"]
    posts = [p for p, ops in spec.items() if "post" in ops and "{" in p]
    assert len(posts) >= 10  # every POST the dashboard makes that carries a field
    for path in posts:
        url = path.replace("{aid}", aid).replace("{gid}", "g1")
        url = url.replace("{sid}", worker).replace("{wid}", worker)
        for body in ({f: nul for f in fields}, {"keys": [nul]}, {nul: "x"}):
            r = authed.post(url, json=body)
            assert r.status_code == 400, (url, body, r.text)
            assert "NUL" in r.json()["error"] and "\n" not in r.json()["error"]
    for url in (
        f"/api/v1/sessions/{worker}/tell?x=%00",
        "/api/v1/goals/g%001",
        f"/api/v1/asks/{aid}%00/answer",
    ):
        r = authed.post(url, json={"message": "x", "body": "x", "answer": "x"})
        assert r.status_code == 400 and "NUL" in r.json()["error"], url
    for url in ("/api/v1/state?all=%00", f"/api/v1/sessions/{worker}%00/log", "/static/%00"):
        assert authed.get(url).status_code == 400, url
    assert journal(ctx) == "" and not ctx.paths.goal("g1").exists()
    assert not (ctx.paths.answers / f"{aid}.json").exists() and not list(ctx.paths.tells.glob("*"))


def test_oversized_body_without_a_length_is_cut_off(authed: TestClient, ctx: Ctx) -> None:
    aid = _ask(ctx, [])

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(100):
            yield b"x" * 1024

    r = authed.post(f"/api/v1/asks/{aid}/answer", content=chunks())
    assert r.status_code == 413


def test_tell_send_keys_and_kill_a_worker(authed: TestClient, ctx: Ctx, worker: str) -> None:
    base = f"/api/v1/sessions/{worker}"
    r = authed.post(f"{base}/tell", json={"message": "rebase first"})
    assert r.status_code == 200, r.text
    assert (ctx.paths.tells / f"{r.json()['id']}.json").exists()
    assert authed.post(f"{base}/send", json={"text": "typed-by-web"}).status_code == 200
    assert authed.post(f"{base}/send", json={"text": "no-enter", "enter": False}).status_code == 200
    assert authed.post(f"{base}/keys", json={"keys": ["Enter"]}).status_code == 200
    wait_until(
        lambda: "typed-by-web" in authed.get(f"{base}/log").json()["text"], 10, "the typed text"
    )
    r = authed.post(f"{base}/kill", json={"reason": "runaway"})
    assert r.status_code == 200, r.text
    wait_until(lambda: not get_session(ctx.paths.data, worker).alive, 10, "the worker dead")
    text = journal(ctx)
    for done in ("web: told w1", "web: steer", "web: typed into w1", "web: key w1", "web: kill"):
        assert done in text, done
    steered = [
        json.loads(ln)
        for ln in ctx.paths.events.read_text().splitlines()
        if '"steered"' in ln or '"tell"' in ln
    ]
    assert steered and all(e.get("actor") == "web" for e in steered)
    # a dead worker takes no more input
    assert authed.post(f"{base}/send", json={"text": "x"}).status_code == 409
    assert authed.post(f"{base}/tell", json={"message": "x"}).status_code == 409


def test_actions_on_unknown_workers_are_404_and_leave_no_trace(
    authed: TestClient, ctx: Ctx
) -> None:
    for verb, body in (
        ("tell", {"message": "x"}),
        ("send", {"text": "x"}),
        ("keys", {"keys": ["Enter"]}),
        ("kill", {}),
    ):
        r = authed.post(f"/api/v1/sessions/ghost/{verb}", json=body)
        assert r.status_code == 404, verb
    assert authed.post("/api/v1/sessions/pulse/kill", json={}).status_code == 404
    assert journal(ctx) == ""


def test_write_goal_and_pause_without_a_pulse(authed: TestClient, ctx: Ctx) -> None:
    r = authed.post("/api/v1/goals/ship", json={"body": "v2 is out"})
    assert r.status_code == 200, r.text
    assert ctx.paths.goal("ship").read_text().strip() == "v2 is out"
    assert "web: write-goal" in journal(ctx) or "web: write_goal" in journal(ctx)
    assert authed.post("/api/v1/goals/..%2Fx", json={"body": "x"}).status_code in (400, 404)
    before = journal(ctx)
    r = authed.post("/api/v1/pulse/pause")
    assert r.status_code == 409 and "not running" in r.json()["error"]
    assert journal(ctx) == before


def test_archived_goals_say_why(authed: TestClient, ctx: Ctx) -> None:
    assert authed.get("/api/v1/goals/archived").json() == []
    ctx.paths.goals_archive.mkdir(parents=True)
    (ctx.paths.goals_archive / "old.md").write_text("goal: before reasons\n")
    authed.post("/api/v1/goals/ship", json={"body": "v2 is out"})
    move = decision_from_obj({"action": "archive_goal", "id": "ship", "reason": "superseded"})
    execute(ctx, ctx.knobs(), move, actor="pulse")
    rows = {r["id"]: r for r in authed.get("/api/v1/goals/archived").json()}
    assert rows["ship"]["reason"] == "superseded" and rows["ship"]["headline"] == "v2 is out"
    assert rows["old"]["reason"] == "unsaid"
    assert "archive-goal ship (superseded)" in journal(ctx)


def test_a_repo_workers_branch_is_its_worktrees_and_no_git_is_read(
    authed: TestClient, ctx: Ctx, worker: str
) -> None:
    (ctx.paths.data / "worktrees").mkdir()
    (ctx.paths.data / "worktrees" / f"{worker}.json").write_text('{"branch": "fix/flaky"}')
    (ctx.paths.data / ".git").write_text("gitdir: /nowhere\n")  # read, it would name no branch
    rows = authed.get("/api/v1/sessions").json()
    assert [r["branch"] for r in rows if r["id"] == worker] == ["fix/flaky"]


def test_beats_say_how_each_ended_and_why(authed: TestClient, ctx: Ctx) -> None:
    lines = [
        {"event": "tick_start", "ts": "2026-06-21T10:00:00Z"},
        {"event": "world_unchanged", "ts": "2026-06-21T10:00:01Z"},
        {"event": "tick_start", "ts": "2026-06-21T10:01:00Z"},
        {
            "event": "decided",
            "ts": "2026-06-21T10:01:09Z",
            "action": "start-worker",
            "journal": "start w2 on the flaky test",
            "run_id": "r1",
        },
        {"event": "tick_failed", "ts": "2026-06-21T10:02:00Z", "reason": "runner exit 1"},
    ]
    ctx.paths.events.write_text("".join(json.dumps(x) + "\n" for x in lines) + "{torn\n")
    got = authed.get("/api/v1/beats?limit=5").json()
    assert [(b["outcome"], b["why"]) for b in got] == [
        ("failed", "runner exit 1"),
        ("decided", "start-worker · start w2 on the flaky test"),
        ("skipped", "world unchanged — no AI call"),
    ]
    assert got[1]["run_id"] == "r1"


def test_beats_show_what_status_shows_and_a_crash_after_a_failure_once(
    authed: TestClient, ctx: Ctx
) -> None:
    lines = [
        {"event": "tick_start", "ts": "2026-06-21T10:00:00Z"},
        {"event": "tick_failed", "ts": "2026-06-21T10:00:05Z", "reason": "runner exit 1"},
        {"event": "tick_crash", "ts": "2026-06-21T10:00:06Z", "error": "unwinding"},
        {"event": "tick_start", "ts": "2026-06-21T10:01:00Z"},
        {"event": "decided", "ts": "2026-06-21T10:01:09Z", "action": "noop", "journal": "x"},
        {"event": "tick_crash", "ts": "2026-06-21T10:01:10Z", "error": "disk gone"},
        {"event": "tick_start", "ts": "2026-06-21T10:02:00Z"},
        {"event": "coalescing", "ts": "2026-06-21T10:02:01Z", "secs": 30},
    ]
    ctx.paths.events.write_text("".join(json.dumps(x) + "\n" for x in lines))
    got = authed.get("/api/v1/beats?limit=10").json()
    status_detail = authed.get("/api/v1/state").json()["last_beat"]["detail"]
    assert [(b["outcome"], b["why"]) for b in got] == [
        ("coalescing", status_detail),
        ("failed", "disk gone"),
        ("decided", "noop · x"),
        ("failed", "runner exit 1"),
    ]
    assert "30s" in status_detail


def test_a_dead_sessions_screen_is_sent_once_then_the_stream_ends(
    authed: TestClient, ctx: Ctx, worker: str
) -> None:
    send(ctx.paths.data, worker, "last words\r", False)
    wait_until(
        lambda: "last words" in authed.get(f"/api/v1/sessions/{worker}/log").json()["text"],
        10,
        "the output",
    )
    assert authed.post(f"/api/v1/sessions/{worker}/kill", json={}).status_code == 200
    wait_until(lambda: not get_session(ctx.paths.data, worker).alive, 10, "the worker dead")
    with authed.stream("GET", f"/api/v1/sessions/{worker}/screen/stream") as r:
        body = "".join(r.iter_text())  # returns: the stream ends by itself
    assert body.count("data: {") == 2 and "event: ended" in body
    shot = json.loads(body.split("data: ", 1)[1].split("\n", 1)[0])
    assert shot["alive"] is False
    assert any("last words" in "".join(r["t"] for r in line) for line in shot["lines"])
    # a browser reconnecting with the screen it had is not sent it again
    seen = {"Last-Event-ID": body.split("id: ", 1)[1].split("\n", 1)[0]}
    with authed.stream("GET", f"/api/v1/sessions/{worker}/screen/stream", headers=seen) as r:
        again = "".join(r.iter_text())
    assert again.count("data: {") == 1 and "event: ended" in again


def test_every_answer_refuses_framing_and_foreign_scripts(
    client: TestClient, authed: TestClient
) -> None:
    for r in (client.get("/api/v1/state"), authed.get("/"), authed.get("/static/app.js")):
        assert r.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"


def test_cost_by_worker_runner_and_day(authed: TestClient, ctx: Ctx) -> None:
    from looop.spend.record import append_cost

    now = ctx.clock.now()
    ledger = ctx.paths.cost_ledger
    append_cost(ledger, now, "session", "w1", "claude", 0.5)
    append_cost(ledger, now, "tick", "tick-1", "codex", 0.25)
    append_cost(ledger, now - 3 * 86400, "session", "w1", "claude", 2.0)
    got = authed.get("/api/v1/cost?days=14").json()
    assert got["today"] == 0.75
    assert {g["key"]: g["usd"] for g in got["by_worker"]} == {"w1": 0.5, "(ticks)": 0.25}
    assert {g["key"]: g["usd"] for g in got["by_runner"]} == {"claude": 0.5, "codex": 0.25}
    daily = got["daily"]
    assert len(daily) == 14 and daily[-1]["usd"] == 0.75 and daily[-4]["usd"] == 2.0
    assert sum(d["usd"] for d in daily) == 2.75


def test_a_cost_read_again_is_kept_until_the_ledger_moves(
    authed: TestClient, ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dashboard reads /cost on every redraw: built once per change of the ledger."""
    from looop.spend.days import Held
    from looop.spend.record import append_cost
    from looop.web import reads

    builds: list[int] = []
    real = reads.cost

    def counted(c: Ctx, days: int, held: Held | None = None) -> dict[str, object]:
        builds.append(days)
        return real(c, days, held)

    monkeypatch.setattr(reads, "cost", counted)
    now = ctx.clock.now()
    append_cost(ctx.paths.cost_ledger, now, "session", "w1", "claude", 0.5)
    first = [authed.get("/api/v1/cost?days=14").json() for _ in range(5)]
    assert first[0]["today"] == 0.5 and all(f == first[0] for f in first)
    assert len(builds) <= 2  # once, and once more if that read wrote the day totals
    append_cost(ctx.paths.cost_ledger, now, "session", "w1", "claude", 0.25)
    assert authed.get("/api/v1/cost?days=14").json()["today"] == 0.75


def test_a_cost_read_after_a_new_row_parses_that_row_not_the_home_history(
    authed: TestClient, ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server keeps the day totals it read: a redraw after a beat metered a worker costs
    the new row, not a parse of every day the home ever spent on."""
    from looop.spend import days
    from looop.spend.record import append_cost, append_costs

    now = ctx.clock.now()
    ledger = ctx.paths.cost_ledger
    for back in range(1, 120):  # four months of history, three sources a day
        rows = [(f"w{i}", "claude", 0.01, "m") for i in range(3)]
        append_costs(ledger, now - back * 86400, "session", rows)
    first = authed.get("/api/v1/cost?days=14").json()
    assert first["today"] == 0 and sum(d["usd"] for d in first["daily"]) == pytest.approx(0.39)
    loads: list[str] = []
    parsed: list[bytes] = []
    real_load, real_line = days.load, days._fold_line

    def load(path: str, zone: str) -> days.Days | None:
        loads.append(path)
        return real_load(path, zone)

    def line(d: days.Days, raw: bytes, clock: object) -> None:
        parsed.append(raw)
        real_line(d, raw, clock)  # type: ignore[arg-type]

    monkeypatch.setattr(days, "load", load)
    monkeypatch.setattr(days, "_fold_line", line)
    for n in range(1, 4):
        append_cost(ledger, now, "session", "w1", "claude", 0.5)
        got = authed.get("/api/v1/cost?days=14").json()
        assert got["today"] == 0.5 * n and got["daily"][-1]["usd"] == 0.5 * n
    assert loads == []  # the day totals were never parsed again
    assert len([r for r in parsed if r.strip()]) == 3  # each new row once, no old one


def test_a_run_with_its_output_and_no_server_paths(authed: TestClient, ctx: Ctx) -> None:
    d = ctx.paths.run_dir("tick-20260621-100000")
    d.mkdir(parents=True)
    (d / "prompt.md").write_text("the prompt")
    (d / "output.log").write_text("thinking…\nwrote the decision\n")
    (d / "result.json").write_text(
        json.dumps({"run_id": d.name, "status": "ok", "action": "noop", "journal": "calm"})
    )
    assert [r["run_id"] for r in authed.get("/api/v1/runs").json()] == [d.name]
    got = authed.get(f"/api/v1/runs/{d.name}").json()
    assert got["output_text"] == "thinking…\nwrote the decision\n"
    assert got["summary"] == "noop · calm"
    assert str(ctx.paths.data) not in json.dumps(got)
