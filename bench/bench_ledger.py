"""Spend reads at 1k, 100k and 1M ledger rows: what `looop cost week`, `looop cost all` and the
web's `/api/v1/cost` cost as the ledger grows (they should not grow with it), and what an open
dashboard tab costs `looop web` on a 100k-row home.

Each home holds a year of rows as looop leaves them: a file per past month under `cost/`
(rotate.py) and the current month in `cost.jsonl`, rows spread over 30 workers. The first read
of a home builds its day totals (once, untimed, as a user's first `looop cost` after the
upgrade does). Then, interleaved round by round: `looop cost week` as a whole command against
`python -c pass` (the same venv's python); a GET of `/api/v1/cost?days=14` from `looop web`
against the same body served by a bare Starlette app (bench_web.py --floor), a row appended
before each (a beat that metered a worker), so each answer is built anew. The tab: every
read the dashboard's refresh makes, once a second (a pulse beating every second redraws it
that often), for LOOOP_BENCH_TAB_SECS (default 60), the server's CPU seconds counted from
/proc."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

HERE = Path(__file__).resolve().parent
SIZES = [1_000, 100_000, 1_000_000]
ROUNDS = 9
END = 1_782_000_000.0  # 2026-06-21T00:00:00Z: a year of rows up to here
YEAR = 365 * 86400.0
TAB = [
    "/api/v1/state",
    "/api/v1/sessions",
    "/api/v1/asks",
    "/api/v1/goals",
    "/api/v1/schedules",
    "/api/v1/cost?days=14",
    "/api/v1/beats?limit=12",
    "/api/v1/journal?tail=60",
]


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _seed(data: Path, rows: int) -> None:
    """`rows` rows evenly over the year before END, each month's in its own file."""
    (data / "cost").mkdir(parents=True)
    step = YEAR / rows
    files: dict[str, list[str]] = {}
    now_month = _stamp(END - 1)[:7]
    for i in range(rows):
        t = END - YEAR + i * step
        ts = _stamp(t)
        row = {
            "cost_usd": round(0.001 + (i % 97) / 10000, 6),
            "id": f"w{i % 30}",
            "kind": "session" if i % 5 else "tick",
            "model": "claude-sonnet-4-5",
            "runner": "claude",
            "ts": ts,
        }
        files.setdefault(ts[:7], []).append(json.dumps(row, separators=(",", ":")) + "\n")
    for month, lines in files.items():
        path = data / "cost.jsonl" if month == now_month else data / "cost" / f"{month}.jsonl"
        path.write_text("".join(lines))


def _env(d: Path) -> dict[str, str]:
    config = d / "config.json"
    config.write_text(json.dumps({"max_daily_usd": 0}))
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(d),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "LOOOP_DATA_DIR": str(d / "data"),
        "LOOOP_CONFIG": str(config),
    }


def _time(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def _serve(cmd: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    p = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert p.stdout is not None
    return p, p.stdout.readline().strip()


def _stop(p: subprocess.Popen[str]) -> None:
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    p.wait(20)


def _get(url: str, path: str) -> tuple[bytes, float]:
    got = urlsplit(url)
    token = (parse_qs(got.query).get("token") or [""])[0]
    req = urllib.request.Request(
        f"{got.scheme}://{got.netloc}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as r:
        body = bytes(r.read())
    return body, time.perf_counter() - t0


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ms(xs: list[float]) -> dict[str, float]:
    return {
        "value": round(statistics.median(xs) * 1000, 2),
        "min": round(min(xs) * 1000, 2),
        "max": round(max(xs) * 1000, 2),
    }


def _home_rows(looop: str, d: Path, rows: int) -> tuple[list[dict[str, object]], str]:
    """The timed rows of one home; the web's URL is returned stopped (the tab row's own)."""
    env = _env(d)
    _seed(d / "data", rows)
    t0 = time.perf_counter()
    subprocess.run([looop, "cost", "all"], env=env, capture_output=True, check=True)
    build = time.perf_counter() - t0
    base, week, alls = [], [], []
    for _ in range(ROUNDS):
        base.append(_time([sys.executable, "-c", "pass"], env))
        week.append(_time([looop, "cost", "week"], env))
    from looop.home.clock import SystemClock
    from looop.spend.report import reports_at

    for _ in range(ROUNDS):
        t1 = time.perf_counter()
        reports_at(str(d / "data"), SystemClock("UTC"), [("all", "worker")])
        alls.append(time.perf_counter() - t1)
    web, url = _serve([looop, "web", "--port", "0"], env)
    try:
        body, _ = _get(url, "/api/v1/cost?days=14")
        with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as f:
            f.write(body)
        floor, furl = _serve([sys.executable, str(HERE / "bench_web.py"), "--floor", f.name])
        ours, bare = [], []
        row = '{"cost_usd":0.01,"id":"w1","kind":"session","runner":"claude","ts":"%s"}\n'
        try:
            for _ in range(ROUNDS * 2):
                bare.append(_get(furl, "/api/v1/state")[1])
                # a row first, as a beat that metered a worker leaves: the answer is built anew
                with open(d / "data" / "cost.jsonl", "a") as led:
                    led.write(row % _stamp(END - 60))
                ours.append(_get(url, "/api/v1/cost?days=14")[1])
        finally:
            _stop(floor)
            os.unlink(f.name)
    finally:
        _stop(web)
    n = f"{rows // 1000}k" if rows < 1_000_000 else f"{rows // 1_000_000}M"
    w, b, a, o, fl = _ms(week), _ms(base), _ms(alls), _ms(ours), _ms(bare)
    out: list[dict[str, object]] = [
        {
            "name": f"looop cost week, {n} rows",
            **w,
            "unit": "ms",
            "baseline": b["value"],
            "ratio": round(w["value"] / b["value"], 2),
            "target": "<= 8x python -c pass; flat",
            "ok": w["value"] <= 8 * b["value"],
        },
        {
            "name": f"cost report all (in process), {n} rows",
            **a,
            "unit": "ms",
            "baseline": None,
            "ratio": None,
            "target": "< 100 ms; flat",
            "ok": a["value"] < 100,
        },
        {
            "name": f"GET /api/v1/cost?days=14, {n} rows",
            **o,
            "unit": "ms",
            "baseline": fl["value"],
            "ratio": round(o["value"] / fl["value"], 2),
            "target": "<= 30x a bare Starlette app; flat",
            "ok": o["value"] <= 30 * fl["value"],
        },
    ]
    print(f"  ({n}: day totals built once in {build:.1f}s)", flush=True)
    return out, n


def _cpu_per_min(web: subprocess.Popen[str], url: str, reads: list[str], secs: float) -> float:
    """The server's CPU seconds a minute while `reads` are made once a second."""
    cpu0, t0 = _cpu_s(web.pid), time.monotonic()
    while time.monotonic() < t0 + secs:
        tick = time.monotonic()
        for path in reads:
            _get(url, path)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    return (_cpu_s(web.pid) - cpu0) * 60 / (time.monotonic() - t0)


def _tab(looop: str, d: Path, secs: float) -> list[dict[str, object]]:
    env = _env(d)
    web, url = _serve([looop, "web", "--port", "0"], env)
    try:
        for path in TAB:
            _get(url, path)  # warm: the first read of each view
        cost = _cpu_per_min(web, url, ["/api/v1/cost?days=14"], secs)
        tab = _cpu_per_min(web, url, TAB, secs)
    finally:
        _stop(web)
    row = {"unit": "CPU-s/min", "baseline": None, "ratio": None, "target": "< 1 CPU-s a minute"}
    return [
        {
            "name": "a dashboard tab's cost reads, 100k rows (once a second)",
            "value": round(cost, 2),
            **row,
            "ok": cost < 1.0,
        },
        {
            "name": "a dashboard tab's every read, 100k rows (once a second)",
            "value": round(tab, 2),
            **row,
            "ok": tab < 1.0,
            "note": (
                f"ledger: {ROUNDS} interleaved rounds per row; homes of a year of rows (a file a "
                "month), the day totals built once first; flat = the 1M home at most 2x the "
                "100k one (as a ratio to the same rounds' baseline where it has one); "
                f"the tab rows: {secs:.0f}s each, the second with all {len(TAB)} views"
            ),
        },
    ]


def run() -> list[dict[str, object]]:
    looop = str(Path(sys.executable).parent / "looop")
    secs = float(os.environ.get("LOOOP_BENCH_TAB_SECS", "60"))
    rows: list[dict[str, object]] = []
    for size in SIZES:
        with tempfile.TemporaryDirectory() as t:
            got, _ = _home_rows(looop, Path(t), size)
            rows += got
            if size == 100_000:
                tab = _tab(looop, Path(t), secs)

    # flat: the day totals grow with days x sources, which a year of 30 workers fills by 100k
    # rows; the 1M home may cost no more than twice the 100k one — as a ratio to its own
    # baseline where it has one (measured in the same interleaved rounds, so a machine that
    # grew busy between the two homes moves both), else in ms
    def cost(r: dict[str, object]) -> float:
        v = r["ratio"] if r.get("ratio") is not None else r["value"]
        assert isinstance(v, float)
        return v

    mid = {str(r["name"]).rsplit(",", 1)[0]: r for r in rows[3:6]}
    for r in rows[6:]:
        small = mid[str(r["name"]).rsplit(",", 1)[0]]
        floor = 0.0 if r.get("ratio") is not None else 1.0
        r["ok"] = bool(r["ok"]) and cost(r) <= 2 * max(cost(small), floor)
    return [*rows, *tab]


if __name__ == "__main__":
    for r in run():
        print(r)
