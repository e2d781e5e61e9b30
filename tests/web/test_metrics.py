"""GET /metrics through the real ASGI app, read back with prometheus_client's own parser:
the numbers are what the home did (real beats with the scripted runner), the guard holds,
and the Grafana dashboard in deploy/ asks only for names the endpoint serves."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.human.mailbox import new_ask
from looop.loop.tick import tick
from looop.sessions.client import wait
from looop.spend.record import append_cost
from looop.views.status import gather_status
from looop.web.app import build_app
from looop.web.auth import Guard
from looop.web.metrics import BEAT_BUCKETS, DECIDE_BUCKETS, tally
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.clocks import FixedClock
from tests.helpers import stop_sessions, wire
from tests.web.conftest import ORIGIN, TOKEN

pytestmark = pytest.mark.timeout(120)
DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana-looop.json"
METRICS_TOKEN = "m" * 40
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient, token: str = TOKEN) -> tuple[Samples, set[str]]:
    r = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    names: set[str] = set()
    for fam in text_string_to_metric_families(r.text):
        # the names a query can ask for, sampled now or not (a label set may have no series yet)
        names |= {fam.name + x for x in SUFFIXES.get(fam.type, ("",))}
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
            names.add(s.name)
    return samples, names


def one(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def _sensor(ctx: Ctx) -> Path:
    ctx.paths.sensors.mkdir(parents=True, exist_ok=True)
    (ctx.paths.data / "ci").write_text("0")
    p = ctx.paths.sensor("ci")
    p.write_text('#!/usr/bin/env bash\nprintf \'{"signal":{"v":"%s"}}\' "$(cat ci)"\n')
    p.chmod(0o755)
    return ctx.paths.data / "ci"


def test_beats_decides_skips_and_failures_are_what_the_home_did(
    client: TestClient, ctx: Ctx, clock: FixedClock
) -> None:
    ci = _sensor(ctx)
    wire(
        ctx,
        [
            {"decision": {"action": "noop", "reason": "seen"}},
            {"exit": 3, "stderr": "boom"},
            {"no_decision": True},
        ],
    )
    before, _ = scrape(client)
    assert one(before, "looop_beats_total") == 0
    statuses = [tick(ctx).status]  # decided
    clock.advance(60)
    statuses.append(tick(ctx).status)  # world unchanged: skipped
    ci.write_text("1")
    clock.advance(60)
    statuses.append(tick(ctx).status)  # the runner crashes
    ci.write_text("2")
    clock.advance(3600)  # past the backoff
    statuses.append(tick(ctx, force=True, override_backoff=True).status)  # no decision written
    s, _ = scrape(client)
    assert one(s, "looop_beats_total") == 4
    assert one(s, "looop_decides_total") == statuses.count("decided") + 2 == 3
    assert one(s, "looop_beats_skipped_total") == 1
    assert one(s, "looop_beat_outcomes_total", outcome="decided") == 1
    assert one(s, "looop_beat_outcomes_total", outcome="skipped") == 1
    assert one(s, "looop_beat_outcomes_total", outcome="failed") == 2
    assert one(s, "looop_beat_failures_total", cause="tick.failed") == 1
    assert one(s, "looop_beat_failures_total", cause="tick.no_decision") == 1
    assert one(s, "looop_beat_duration_seconds_count") == 4
    assert one(s, "looop_beat_duration_seconds_bucket", le="+Inf") == 4
    assert one(s, "looop_decide_duration_seconds_count") == 3
    st = gather_status(ctx.paths, ctx.env, clock)
    assert one(s, "looop_failing_streak") == st["failing_streak"] == 2
    assert one(s, "looop_pulse_up") == 0  # beats ran in the foreground: no pulse


def test_durations_come_from_the_records_times() -> None:
    recs = [
        {"event": "tick_start", "ts": "2026-01-01T00:00:00.000Z"},
        {"event": "world_unchanged", "ts": "2026-01-01T00:00:00.250Z"},
        {"event": "tick_start", "ts": "2026-01-01T00:01:00.000Z"},
        {"event": "decide_start", "ts": "2026-01-01T00:01:01.000Z"},
        {"event": "tick_failed", "ts": "2026-01-01T00:01:31.000Z", "code": "tick.failed"},
        {"event": "tick_crash", "ts": "2026-01-01T00:01:31.500Z"},  # the failure unwinding
        {"event": "tick_start", "ts": "2026-01-01T00:02:00.000Z"},  # still running
    ]
    t = tally(recs)
    assert t.beats == 3 and t.decides == 1
    assert (t.beat_s.count, t.beat_s.total, t.decide_s.count, t.decide_s.total) == (2, 31.25, 1, 30)
    # 0.25 s lands in the 0.25 bucket (le is inclusive), 31 s past 30 s; 30 s in the 30 bucket
    assert t.beat_s.counts[BEAT_BUCKETS.index(0.25)] == 1
    assert t.beat_s.counts[BEAT_BUCKETS.index(60.0)] == 1
    assert t.decide_s.counts[DECIDE_BUCKETS.index(30.0)] == 1
    assert t.outcomes == {"skipped": 1, "failed": 1} and t.failures == {"tick.failed": 1}


def test_spend_by_source_asks_and_breakers(client: TestClient, ctx: Ctx, clock: FixedClock) -> None:
    wire(ctx, [], max_daily_usd=1)
    now = clock.now()
    append_cost(ctx.paths.cost_ledger, now, "tick", "r1", "scripted", 0.75)
    append_cost(ctx.paths.cost_ledger, now, "worker", "w1", "claude", 0.5)
    append_cost(ctx.paths.cost_ledger, now, "worker", "w2", "claude", 0.25)
    with ctx.paths.cost_ledger.open("a") as f:  # a row naming its source (fleet spend)
        ts = json.loads(ctx.paths.cost_ledger.read_text().splitlines()[0])["ts"]
        f.write(json.dumps({"cost_usd": 2.0, "id": "w3", "source": "fleet", "ts": ts}) + "\n")
    p = ctx.paths
    new_ask(p.asks, p.answers, "w1", "ship it?", None, [], now)
    clock.advance(30)
    new_ask(p.asks, p.answers, "w2", "and this?", None, [], clock.now())
    clock.advance(60)
    s, _ = scrape(client)
    assert one(s, "looop_spend_usd_total", source="tick") == 0.75
    assert one(s, "looop_spend_usd_total", source="worker") == 0.75
    assert one(s, "looop_spend_usd_total", source="fleet") == 2.0
    assert one(s, "looop_asks_pending") == 2
    assert one(s, "looop_asks_oldest_age_seconds") == 90
    assert one(s, "looop_breaker_open", breaker="budget") == 1  # 3.5 spent of 1
    assert one(s, "looop_breaker_open", breaker="decide_cap") == 0


def test_workers_by_health_and_hosts_as_the_last_beat_saw_them(
    client: TestClient, ctx: Ctx, worker: str
) -> None:
    wire(ctx, [{"decision": {"action": "noop", "reason": "seen"}}])
    tick(ctx)
    snap = json.loads((ctx.paths.data / "snapshots" / "sys-sessions.json").read_text())
    (mine,) = [w for w in snap["signal"] if w["id"] == worker]
    s, _ = scrape(client)
    assert one(s, "looop_workers", health=mine["health"]) == 1
    # a far host's reachability as the probe records it (remote/engine.with_hosts)
    snap["detail"]["hosts"] = [
        {"name": "local", "reachable": True},
        {"name": "gpu1", "kind": "ssh", "reachable": False},
    ]
    (ctx.paths.data / "snapshots" / "sys-sessions.json").write_text(json.dumps(snap))
    s, _ = scrape(client)
    assert one(s, "looop_host_reachable", host="local") == 1
    assert one(s, "looop_host_reachable", host="gpu1") == 0


# --- the guard ------------------------------------------------------------------------------


@pytest.fixture
def metered(ctx: Ctx, guard: Guard) -> Iterator[TestClient]:
    """The app with a read-only metrics token in a file the config names."""
    (ctx.paths.config.parent / "metrics.token").write_text(METRICS_TOKEN + "\n")
    wire(ctx, [], web={"metrics_token_file": "metrics.token"})
    with TestClient(build_app(ctx, guard), base_url=ORIGIN) as c:
        yield c


def test_metrics_need_a_token_and_the_metrics_token_opens_nothing_else(
    client: TestClient, metered: TestClient
) -> None:
    for c in (client, metered):
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    scrape(client)  # the web token reads it
    scrape(metered)
    scrape(metered, METRICS_TOKEN)
    h = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    assert metered.get("/api/v1/state", headers=h).status_code == 401
    assert metered.post("/api/v1/pulse/pause", headers=h).status_code == 401
    assert metered.post("/metrics", headers=h).status_code == 405
    assert metered.get("/metrics", headers={**h, "Host": "evil.example"}).status_code == 403
    assert client.get("/metrics", headers=h).status_code == 401  # no token file: not a token


def test_a_short_or_missing_metrics_token_file_is_one_line_naming_the_key(
    ctx: Ctx, guard: Guard
) -> None:
    wire(ctx, [], web={"metrics_token_file": "missing.token"})
    with pytest.raises(LooopError, match=r"web\.metrics_token_file.*cannot read"):
        build_app(ctx, guard)
    (ctx.paths.config.parent / "short.token").write_text("abc\n")
    wire(ctx, [], web={"metrics_token_file": "short.token"})
    with pytest.raises(LooopError, match=r"web\.metrics_token_file.*at least 32"):
        build_app(ctx, guard)


# --- the dashboard --------------------------------------------------------------------------


def _exprs(obj: object) -> Iterator[str]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "expr" and isinstance(v, str):
                yield v
            else:
                yield from _exprs(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _exprs(v)


def test_every_metric_the_dashboard_asks_for_is_served(client: TestClient, ctx: Ctx) -> None:
    wire(ctx, [{"decision": {"action": "noop", "reason": "seen"}}])
    tick(ctx)
    _, served = scrape(client)
    exprs = list(_exprs(json.loads(DASHBOARD.read_text())))
    asked = {n for e in exprs for n in re.findall(r"\blooop_[a-z_]+", e)}
    assert len(exprs) >= 8 and asked
    assert asked <= served, (
        f"the dashboard asks for names /metrics does not serve: {asked - served}"
    )
    assert {"looop_beats_total", "looop_spend_usd_total", "looop_workers"} <= served


def test_appended_records_count_on_a_half_line_waits_and_a_rotation_counts_afresh(
    client: TestClient, ctx: Ctx
) -> None:
    ev = ctx.paths.events

    def beat(n: int) -> str:
        return (
            json.dumps({"event": "tick_start", "ts": f"2026-01-01T00:{n:02d}:00.000Z"})
            + "\n"
            + json.dumps({"event": "world_unchanged", "ts": f"2026-01-01T00:{n:02d}:01.000Z"})
            + "\n"
        )

    ev.write_text(beat(0) + beat(1))
    s, _ = scrape(client)
    assert one(s, "looop_beats_total") == 2
    whole = beat(2)
    with ev.open("a") as f:  # a record still being written: not counted yet
        f.write(whole[:30])
    s, _ = scrape(client)
    assert one(s, "looop_beats_total") == 2
    with ev.open("a") as f:
        f.write(whole[30:])
    s, _ = scrape(client)
    assert one(s, "looop_beats_total") == one(s, "looop_beats_skipped_total") == 3
    assert one(s, "looop_beat_duration_seconds_sum") == 3.0
    ev.rename(ev.with_name(ev.name + ".1"))  # rotated as eventlog does it, then a new file
    ev.write_text(beat(3))
    s, _ = scrape(client)
    assert one(s, "looop_beats_total") == 4 and one(s, "looop_beats_skipped_total") == 4


def test_workers_are_counted_by_their_outcome(client: TestClient, ctx: Ctx) -> None:
    """Real workers end (exit 0, exit 1, verify failed); one beat records them, /metrics
    counts them per outcome, every outcome listed."""
    wire(ctx, [{"decision": {"action": "noop"}}] * 3)
    before, _ = scrape(client)
    assert one(before, "looop_worker_outcomes_total", outcome="exited") == 0
    for wid, line, verify in (
        ("a", "exit 0", None),
        ("b", "exit 1", None),
        ("c", "exit 0", "false"),
    ):
        req = StartRequest(wid, "x", command=f"{line} # {{{{prompt_file}}}}", verify=verify)
        start_worker(ctx, ctx.knobs(), req)
    try:
        for wid in ("a", "b", "c"):
            wait(ctx.paths.data, wid, 30, ctx.clock)
        tick(ctx)
        s, _ = scrape(client)
        assert one(s, "looop_worker_outcomes_total", outcome="exited") == 1
        assert one(s, "looop_worker_outcomes_total", outcome="failed") == 1
        assert one(s, "looop_worker_outcomes_total", outcome="failed_verify") == 1
        assert one(s, "looop_worker_outcomes_total", outcome="landed") == 0
        tick(ctx)  # recorded once: a second beat counts nothing more
        again, _ = scrape(client)
        assert one(again, "looop_worker_outcomes_total", outcome="exited") == 1
    finally:
        stop_sessions(ctx.paths.data)


def test_a_scrape_reads_the_running_sums_not_the_homes_every_day(
    client: TestClient, ctx: Ctx, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A year of spend: a scrape's looop_spend_usd reads a small part of what the whole
    history's day totals hold, and says the same sums."""
    from looop.home import store
    from looop.home.stamps import utc_stamp
    from tests.helpers import cost_report

    data = ctx.paths.data
    (data / "cost").mkdir(parents=True, exist_ok=True)
    files: dict[str, list[str]] = {}
    now = clock.now()
    for i in range(365 * 6):
        ts = utc_stamp(now - 365 * 86400 + i * 14400)
        kind = "tick" if i % 3 == 0 else "worker"
        row = {"cost_usd": 0.01, "id": f"w{i % 5}", "kind": kind, "runner": "c", "ts": ts}
        files.setdefault(ts[:7], []).append(json.dumps(row) + "\n")
    last = max(files)
    for month, lines in files.items():
        path = ctx.paths.cost_ledger if month == last else data / "cost" / f"{month}.jsonl"
        path.write_text("".join(lines))
    read: list[int] = []
    real = store.read_text

    def counted(path: object) -> str | None:
        text = real(path)  # type: ignore[arg-type]
        if ".cost-days" in str(path):
            read.append(len(text or ""))
        return text

    assert cost_report(ctx.paths, clock, "all")["calls"] == 365 * 6  # the totals built
    monkeypatch.setattr(store, "read_text", counted)
    cost_report(ctx.paths, clock, "all")
    whole = sum(read)
    read.clear()
    s, _ = scrape(client)
    assert one(s, "looop_spend_usd_total", source="tick") == pytest.approx(365 * 2 * 0.01)
    assert one(s, "looop_spend_usd_total", source="worker") == pytest.approx(365 * 4 * 0.01)
    assert 0 < sum(read) <= whole / 4
