"""`GET /metrics`: the loop in the Prometheus text format, read from the files looop already
writes (events.jsonl, cost.jsonl, the asks, the breakers' state, the last beat's fleet
snapshot) at scrape time by one Collector per app: no global registry, no counter kept in
memory, so a restarted `looop web` serves the same numbers.

Counters count what events.jsonl (and its one rotated file, events.jsonl.1) still holds: a
rotation past the size cap reads to Prometheus as a counter reset, which rate() handles.

Guarded by the web token, or by a read-only metrics token (the config's
`web.metrics_token_file`: a file holding it, as Prometheus's own `credentials_file`) that
opens this one path and nothing else."""

from __future__ import annotations

import bisect
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import CollectorRegistry
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from looop.core.context import Ctx
from looop.core.readings import read_reading
from looop.home import jsonio, store
from looop.home.boxfolder import pending_asks
from looop.home.config import load_config
from looop.home.errors import LooopError
from looop.home.stamps import parse_utc
from looop.spend.days import NONE, day_totals
from looop.views.beatlog import BEAT_ENDS, ends_beat
from looop.views.outcomes import TABLE
from looop.views.status import gather_status
from looop.web.cache import stat_of
from looop.web.requestguard import METRICS_PATH

# seconds; a skipped beat takes well under one, a decide tens of seconds to minutes
BEAT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
DECIDE_BUCKETS = (1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0)
# beat-ending records that are a failure, and the record field that names its cause
FAILED = {"failed", "error"}
MIN_TOKEN = 32  # a metrics token shorter than this is refused as guessable
SPANS = ("today", "week")
BREAKERS = ("budget", "unmetered", "decide_cap")  # status's spend: budget, unmetered, decides
C, G = CounterMetricFamily, GaugeMetricFamily
# Every family a scrape serves but the two histograms: (kind, its labels comma-separated, help)
# the savings families: each span's field (home/savings.savings_view)
SAVED = {"looop_decides_made": "decides", "looop_beats_skipped_span": "skipped",
         "looop_saved_usd": "saved_usd"}  # fmt: skip
WINDOWS = "looop_usage_window_"  # accounts at their provider's usage limit (home/usagewindows)
FAMILIES: dict[str, tuple[type[CounterMetricFamily | GaugeMetricFamily], str, str]] = {
    "looop_beats": (C, "", "Beats started."),
    "looop_beats_skipped": (C, "", "Beats that ended with the world unchanged (no AI call)."),
    "looop_decides": (C, "", "Decide runs started."),
    "looop_beat_outcomes": (C, "outcome", "Beats by how they ended."),
    "looop_worker_outcomes": (C, "outcome", "Workers by the outcome recorded when they ended; a "
                              "later landing counts once more under landed."),
    "looop_beat_failures": (C, "cause", "Beats that ended failed or in error, by cause."),
    "looop_pulse_up": (G, "", "1 while a pulse holds the beat lock."),
    "looop_failing_streak": (G, "", "Beats failed in a row (the backoff's count)."),
    "looop_breaker_open": (G, "breaker", "1 while a breaker stops decides: the daily budget, an "
                           "unmetered runner, the hourly decide cap."),
    # what the gate saved (home/savings.savings_view, as status shows it)
    "looop_decides_made": (G, "span", "Decides made, by span."),
    "looop_beats_skipped_span": (G, "span", "Beats that skipped the model, by span."),
    "looop_saved_usd": (G, "span", "Dollars the skipped beats saved (each priced at the "
                        "trailing median decide cost)."),
    WINDOWS + "reset_timestamp_seconds": (G, "runner,account", "When an account (runner and "
                                          "credentials) at its usage limit resets (unix seconds)."),
    WINDOWS + "held_starts": (G, "runner,account", "Worker starts held as scheduled for the "
                              "account's reset."),
    WINDOWS + "stopped_workers": (G, "runner,account", "Workers stopped on the account's "
                                  "limit, continued at its reset."),
    "looop_spend_usd": (C, "source", "Spend on the cost ledger, by source."),
    "looop_asks_pending": (G, "", "Asks with no answer yet."),
    "looop_asks_oldest_age_seconds": (G, "", "How long the oldest pending ask has waited (0 "
                                      "with none)."),
    "looop_workers": (G, "health", "Workers by health, as of the last beat."),
    "looop_host_reachable": (G, "host", "1 when a worker host answered the last beat's look, 0 "
                             "when it did not."),
}  # fmt: skip


class Histogram:
    """Counts per bucket (not cumulative), kept as durations arrive: a scrape pays for the
    buckets, not for every beat on file."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: past every bound (+Inf only)
        self.total = 0.0

    def add(self, v: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, v)] += 1
        self.total += v

    @property
    def count(self) -> int:
        return sum(self.counts)


@dataclass
class Tally:
    """What the events files say, fed their records in the order written; it can be fed on
    from where it stopped (a beat left open at the end of one read closes in the next)."""

    beats: int = 0
    decides: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    ends: dict[str, int] = field(default_factory=dict)  # workers by their outcome
    failures: dict[str, int] = field(default_factory=dict)
    beat_s: Histogram = field(default_factory=lambda: Histogram(BEAT_BUCKETS))
    decide_s: Histogram = field(default_factory=lambda: Histogram(DECIDE_BUCKETS))
    started: float | None = None  # the open beat's start, None between beats
    decide_at: float | None = None
    outcome: str = ""

    def feed(self, records: Iterable[dict[str, Any]]) -> Tally:
        for rec in records:
            self._one(rec)
        return self

    def _one(self, rec: dict[str, Any]) -> None:
        ev = rec["event"]
        if ev == "tick_start":
            self.beats += 1
            self.started, self.decide_at, self.outcome = _ts(rec), None, ""
            return
        if ev == "worker_ended":  # a worker's outcome (views/outcomes.py); a landing recounts
            got = rec.get("outcome")
            if isinstance(got, str) and got in TABLE:
                self.ends[got] = self.ends.get(got, 0) + 1
            return
        if ev == "decide_start":
            self.decides += 1
            self.decide_at = _ts(rec)
            return
        # a second end of one beat (a crash after its failure) is not counted again
        if not ends_beat(ev, self.outcome) or self.outcome:
            return
        self.outcome = outcome = BEAT_ENDS[ev]
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if outcome in FAILED:
            cause = _cause(rec)
            self.failures[cause] = self.failures.get(cause, 0) + 1
        ended = _ts(rec)
        if ended is not None and self.started is not None:
            self.beat_s.add(max(0.0, ended - self.started))
        if ended is not None and self.decide_at is not None:
            self.decide_s.add(max(0.0, ended - self.decide_at))
        self.started = self.decide_at = None


def _lines(text: bytes) -> Iterator[dict[str, Any]]:
    for line in text.decode("utf-8", "replace").splitlines():
        try:
            rec = jsonio.loads(line)
        except (ValueError, RecursionError):
            continue  # a corrupt line: not counted
        if isinstance(rec, dict) and isinstance(rec.get("event"), str):
            yield rec


def _whole_lines(path: str, offset: int) -> tuple[bytes, int]:
    """The file's complete lines from `offset` on, and the offset after them (a line still
    being appended is read next time)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            got = f.read()
    except OSError:
        return b"", offset
    end = got.rfind(b"\n") + 1
    return got[:end], offset + end


def _ts(rec: dict[str, Any]) -> float | None:
    raw = rec.get("ts")
    return parse_utc(raw) if isinstance(raw, str) else None


def _cause(rec: dict[str, Any]) -> str:
    """A failed beat's cause: tick_failed's code (tick.failed, tick.no_decision, tick.crash),
    else the record's own name (tick_error, tick_crash, tick_unrecorded, guard_corrupt)."""
    code = rec.get("code")
    return code if isinstance(code, str) and code else str(rec["event"])


def tally(records: Iterable[dict[str, Any]]) -> Tally:
    return Tally().feed(records)


def _histogram(name: str, doc: str, h: Histogram) -> Metric:
    seen = list(accumulate(h.counts))
    buckets = [(repr(b), float(n)) for b, n in zip(h.bounds, seen, strict=False)]
    return HistogramMetricFamily(
        name, doc, buckets=[*buckets, ("+Inf", float(seen[-1]))], sum_value=h.total
    )


class LoopCollector:
    """One app's collector: reads the home's files at every scrape. The events tally is
    kept: events.jsonl.1 then events.jsonl are counted whole once, then only what was appended
    since (a rotation, seen as a new rotated file or live inode, counts afresh)."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()  # two scrapes at once share one tally
        # (the rotated file's stat, the live file's inode, how far it was read, the tally)
        self._kept: tuple[object, int, int, Tally] | None = None

    def _tally(self) -> Tally:
        ev = os.fspath(self.ctx.paths.events)
        with self._lock:
            rotated = stat_of(ev + ".1")
            try:
                live = os.stat(ev)
                ino, size = live.st_ino, live.st_size
            except OSError:
                ino, size = 0, 0
            kept = self._kept
            if kept is not None and kept[0] == rotated and kept[1] == ino and size >= kept[2]:
                t, offset = kept[3], kept[2]
            else:
                t, offset = Tally(), 0
                t.feed(_lines(_whole_lines(ev + ".1", 0)[0]))
            more, offset = _whole_lines(ev, offset)
            t.feed(_lines(more))
            self._kept = (rotated, ino, offset, t)
            return t

    def describe(self) -> Iterable[Metric]:
        return []  # unchecked registry: what a scrape yields is read from the files then

    def collect(self) -> Iterable[Metric]:
        t = self._tally()
        for name, got in self._values(t).items():
            kind, labels, doc = FAMILIES[name]
            if not labels:
                yield kind(name, doc, value=got)
                continue
            m = kind(name, doc, labels=labels.split(","))
            for at, v in got:  # a label's value, or a tuple of one per label
                m.add_metric(list(at) if isinstance(at, tuple) else [at], v)
            yield m
        yield _histogram("looop_beat_duration_seconds", "A beat's time from its start to the "
                         "record that ended it.", t.beat_s)  # fmt: skip
        yield _histogram("looop_decide_duration_seconds", "A decide's time from the runner's "
                         "start to the end of its beat.", t.decide_s)  # fmt: skip

    def _values(self, t: Tally) -> dict[str, Any]:
        """Each family's value (no labels) or its (labels, value) rows, by name (FAMILIES)."""
        c = self.ctx
        st = gather_status(c.paths, c.env, c.clock)
        spend, saved, windows = st["spend"], st["savings"], st["windows"]
        breakers: list[tuple[str, int]] = []
        if spend is not None and "error" not in spend:
            b = spend["budget"], spend["unmetered"], spend["decides"]
            breakers = [(n, int(x["open"])) for n, x in zip(BREAKERS, b, strict=True)]
        asks = pending_asks(os.fspath(c.paths.data))
        stamps = [float(a["ts"]) for a in asks if isinstance(a.get("ts"), (int, float))]
        now = c.clock.now()
        return {
            "looop_beats": t.beats,
            "looop_beats_skipped": t.outcomes.get("skipped", 0),
            "looop_decides": t.decides,
            "looop_beat_outcomes": [
                (n, t.outcomes.get(n, 0)) for n in sorted(set(BEAT_ENDS.values()))
            ],
            "looop_worker_outcomes": [(n, t.ends.get(n, 0)) for n in TABLE],
            "looop_beat_failures": sorted(t.failures.items()),
            "looop_pulse_up": int(st["pulse_alive"]),
            "looop_failing_streak": st["failing_streak"],
            "looop_breaker_open": breakers,
            **{name: [(s, saved[s][key]) for s in SPANS] for name, key in SAVED.items()},
            WINDOWS + "reset_timestamp_seconds": [
                ((w["runner"], w["who"]), w["until"]) for w in windows
            ],
            **{
                WINDOWS + name: [((w["runner"], w["who"]), len(w[key])) for w in windows]
                for name, key in (("held_starts", "held"), ("stopped_workers", "stopped"))
            },
            "looop_spend_usd": self._spend(),
            "looop_asks_pending": len(asks),
            "looop_asks_oldest_age_seconds": max(0.0, now - min(stamps, default=now)),
            **self._fleet(),
        }

    def _spend(self) -> list[tuple[str, float]]:
        """cost.jsonl summed by its rows' source (`source`, else `kind`: tick, worker)."""
        by: dict[str, int] = {}
        try:  # the day totals' running sums: a scrape reads no ledger and no day
            sums = day_totals(os.fspath(self.ctx.paths.data), self.ctx.clock, since=NONE).sums
        except LooopError:
            sums = {}
        for (kind, source), (micros, _) in sums.items():
            src = source or kind or "unknown"
            by[src] = by.get(src, 0) + micros
        return [(src, round(usd / 1_000_000, 6)) for src, usd in sorted(by.items())]

    def _fleet(self) -> dict[str, Any]:
        """Workers by health and hosts by reachability as of the last beat's look (the
        sys-sessions reading): a scrape never waits on a remote host."""
        rec = read_reading(os.fspath(self.ctx.paths.snapshots), "sys-sessions")
        signal = rec.signal if isinstance(rec.value, dict) else None
        by: dict[str, int] = {}
        for w in signal if isinstance(signal, list) else []:
            if isinstance(w, dict) and w.get("id") != "pulse":
                h = str(w.get("health") or "unknown")
                by[h] = by.get(h, 0) + 1
        hosts = rec.detail.get("hosts") if isinstance(rec.detail, dict) else None
        reach = [
            (h["name"], int(h.get("reachable") is True))
            for h in (hosts if isinstance(hosts, list) else [])
            if isinstance(h, dict) and isinstance(h.get("name"), str)
        ]
        return {"looop_workers": sorted(by.items()), "looop_host_reachable": reach}


def metrics_token(ctx: Ctx) -> str | None:
    """The read-only metrics token from the file `web.metrics_token_file` names; None when
    the config names none. A file that cannot be read or holds too short a token is an error
    naming the key."""
    try:
        raw = load_config(ctx.paths.config).raw
    except LooopError:
        return None  # the config's own error is `looop web`'s to report
    web = raw.get("web")  # its other keys are `looop web`'s to judge (it serves on without them)
    where = web.get("metrics_token_file") if isinstance(web, dict) else None
    if where is None:
        return None
    if not isinstance(where, str) or not where:
        raise LooopError("config key 'web.metrics_token_file' must be a file's path")
    path = os.path.join(os.path.dirname(os.fspath(ctx.paths.config)), os.path.expanduser(where))
    try:
        text = store.read_text(path)
    except OSError as e:
        text, why = None, e.strerror
    else:
        why = "no such file"
    if text is None:
        raise LooopError(f"config key 'web.metrics_token_file': cannot read {path}: {why}")
    token = text.strip()
    if len(token) < MIN_TOKEN:
        raise LooopError(
            f"config key 'web.metrics_token_file': {path} must hold a token of at least "
            f"{MIN_TOKEN} characters (e.g. `openssl rand -hex 32 > {path}`)"
        )
    return token


def route(ctx: Ctx) -> Route:
    """GET /metrics, read by this app's own collector (the guard, web/requestguard.py, lets
    the metrics token through to it and nothing else)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LoopCollector(ctx))

    async def serve(request: Request) -> Response:
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})

    return Route(METRICS_PATH, serve, methods=["GET"])
