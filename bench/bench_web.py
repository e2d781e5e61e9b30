"""The web face under load beside a beating pulse: 50 live-event (SSE) clients and 20 state
reads a second against `looop web` on loopback, while the pulse beats every second and 10
workers stream output. Rounds alternate, pair by pair: a window with no web server at all (the
baseline) and a window of the same length with the server under that load.

Figures: how late each beat starts against the wake time the pulse recorded (pulse_sleep's
stamp + its secs -> tick_start), the server's RSS sampled every second, and the state reads'
latency against `looop status --json` run as a command over the same data dir (interleaved).

LOOOP_BENCH_WEB_SECS sets the loaded time in all (default 60, the figure the web face is held
to; a shorter run is for a quick look). The load runs in its own process (`python
bench/bench_web.py --load`), so the bench's own interpreter never competes with the server's
event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

SSE_CLIENTS = 50
READS_PER_S = 20
WORKERS = 10
ROUNDS = 2
# a worker that streams: a line every 20 ms (50 lines/s each, 500 across the fleet)
STREAM = 'i=0; while :; do i=$((i+1)); echo "line $i $(date +%s%N)"; sleep 0.02; done'


def _ts(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _delays(events: Path, start: float, end: float) -> list[float]:
    """Seconds each beat started after its recorded wake time, for beats starting in
    [start, end)."""
    out: list[float] = []
    wake: float | None = None
    for line in events.read_text().splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        ev = r.get("event")
        if ev == "pulse_sleep":
            wake = _ts(r["ts"]) + float(r["secs"])
        elif ev == "tick_start" and wake is not None:
            t = _ts(r["ts"])
            if start <= t < end:
                out.append(max(0.0, t - wake))
            wake = None
    return out


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cli(looop: str, args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([looop, *args], env=env, capture_output=True, check=True)
    return time.perf_counter() - t0


def _start_web(looop: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    p = subprocess.Popen(
        [looop, "web", "--port", "0"],
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


def run() -> list[dict[str, object]]:
    looop = str(Path(sys.executable).parent / "looop")
    total = float(os.environ.get("LOOOP_BENCH_WEB_SECS", "60"))
    window = total / ROUNDS
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "data"
        config = Path(d) / "config.json"
        script = Path(d) / "script.json"
        script.write_text(json.dumps([{"action": "noop"}] * 1000))
        runner = f"{sys.executable} -m looop.demo.runner --script {script}"
        config.write_text(
            json.dumps(
                {
                    "default": "s",
                    "runners": {"s": {"tick": runner, "worker": "cat"}},
                    "max_daily_usd": 0,
                    "interval": 1,
                }
            )
        )
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": d,
            "LANG": "C.UTF-8",
            "LOOOP_DATA_DIR": str(data),
            "LOOOP_CONFIG": str(config),
            "LOOOP_MAX_WORKERS": str(WORKERS + 2),
        }
        subprocess.run([looop, "up"], env=env, check=True, capture_output=True)
        try:
            for i in range(WORKERS):
                subprocess.run(
                    [looop, "worker", "start", f"s{i}", "--command", STREAM, "go"],
                    env=env,
                    check=True,
                    capture_output=True,
                )
            time.sleep(2)  # the pulse's first (deciding) beat is past
            rows = _rounds(looop, env, data, window)
        finally:
            subprocess.run([looop, "down", "--grace", "10"], env=env, capture_output=True)
    return rows


def _rounds(looop: str, env: dict[str, str], data: Path, window: float) -> list[dict[str, object]]:
    events = data / "events.jsonl"
    base_delays: list[float] = []
    web_delays: list[float] = []
    rss: list[int] = []
    loads: list[dict[str, Any]] = []
    cli_reads: list[float] = []
    for _ in range(ROUNDS):
        # baseline: no web server; `looop status --json` reads the same state meanwhile
        t0 = time.time()
        while time.time() < t0 + window:
            cli_reads.append(_cli(looop, ["status", "--json"], env))
            time.sleep(4 / READS_PER_S)  # a few a second: the CLI's figure
        base_delays += _delays(events, t0, time.time())
        # ours: the server under load for the same length of time
        web, url = _start_web(looop, env)
        try:
            load = subprocess.Popen(
                [sys.executable, __file__, "--load", url, str(window)],
                stdout=subprocess.PIPE,
                text=True,
            )
            t1 = time.time()
            while load.poll() is None:
                rss.append(_rss_kb(web.pid))
                time.sleep(1)
            out, _ = load.communicate()
            loads.append(json.loads(out))
            web_delays += _delays(events, t1, time.time())
        finally:
            _stop(web)
    lat = [x for r in loads for x in r["latencies"]]
    errors = sum(r["errors"] for r in loads)
    starved = sum(r["sse_without_events"] for r in loads)
    sse_events = sum(r["sse_events"] for r in loads)
    wmax, bmax = max(web_delays), max(base_delays)
    rows = [
        {
            "name": f"beat delay while the web face serves {SSE_CLIENTS} SSE clients + "
            f"{READS_PER_S} state reads/s ({WORKERS} workers streaming)",
            "value": round(wmax * 1000, 1),
            "min": round(min(web_delays) * 1000, 1),
            "max": round(wmax * 1000, 1),
            "unit": "ms (max)",
            "baseline": round(bmax * 1000, 1),
            "ratio": round(wmax / bmax, 2) if bmax else None,
            "target": "<= 100 ms",
            "ok": wmax <= 0.100,
            "note": (
                f"web load: {ROUNDS} rounds of {window:g}s loaded / {window:g}s with no server, "
                f"alternating ({len(web_delays)} beats under load, median delay "
                f"{statistics.median(web_delays) * 1000:.1f} ms; baseline {len(base_delays)} "
                f"beats, median {statistics.median(base_delays) * 1000:.1f} ms); "
                f"LOOOP_BENCH_WEB_SECS={window * ROUNDS:g}"
            ),
        },
        {
            "name": "web server RSS under that load (sampled each second)",
            "value": round(max(rss) / 1024, 1),
            "min": round(min(r for r in rss if r) / 1024, 1),
            "max": round(max(rss) / 1024, 1),
            "unit": "MB (max)",
            "baseline": None,
            "ratio": None,
            "target": "<= 150 MB",
            "ok": max(rss) <= 150 * 1024,
        },
        {
            "name": f"GET /api/v1/state under that load ({errors} errors, {starved} SSE "
            f"clients without events, {sse_events} events delivered)",
            "value": round(statistics.median(lat) * 1000, 1),
            "min": round(min(lat) * 1000, 1),
            "max": round(max(lat) * 1000, 1),
            "unit": "ms",
            "baseline": round(statistics.median(cli_reads) * 1000, 1),
            "ratio": round(statistics.median(lat) / statistics.median(cli_reads), 2),
            "target": "no error; every SSE client fed; median <= `looop status --json`",
            "ok": errors == 0
            and starved == 0
            and statistics.median(lat) <= statistics.median(cli_reads),
            "note": "state reads: baseline = `looop status --json` (the same data as a "
            "command), run in the no-server windows",
        },
    ]
    return rows


# --- the load generator (its own process) ------------------------------------------------


async def _request(
    host: str, port: int, path: str, token: str
) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    return status, reader, writer


async def _sse(host: str, port: int, token: str, until: float, got: list[int]) -> None:
    status, reader, writer = await _request(host, port, "/api/v1/events", token)
    n = 0
    try:
        if status != 200:
            got.append(-1)
            return
        while time.monotonic() < until:
            try:
                line = await asyncio.wait_for(reader.readline(), until - time.monotonic())
            except TimeoutError:
                break
            if not line:
                break
            if line.startswith(b"data: "):
                n += 1
    finally:
        writer.close()
        got.append(n)


async def _reads(host: str, port: int, token: str, until: float, out: dict[str, Any]) -> None:
    async def one() -> None:
        t0 = time.perf_counter()
        try:
            status, reader, writer = await _request(host, port, "/api/v1/state", token)
            body = await reader.read()
            writer.close()
            if status != 200 or b'"health"' not in body:
                out["errors"] += 1
                return
        except OSError:
            out["errors"] += 1
            return
        out["latencies"].append(time.perf_counter() - t0)

    tasks = []
    nxt = time.monotonic()
    while nxt < until:
        tasks.append(asyncio.create_task(one()))
        nxt += 1 / READS_PER_S
        await asyncio.sleep(max(0.0, nxt - time.monotonic()))
    await asyncio.gather(*tasks)


async def _load(url: str, secs: float) -> dict[str, Any]:
    got_url = urlsplit(url)
    host, port = got_url.hostname or "", got_url.port or 80
    token = parse_qs(got_url.query)["token"][0]
    until = time.monotonic() + secs
    got: list[int] = []
    out: dict[str, Any] = {"errors": 0, "latencies": []}
    await asyncio.gather(
        *(_sse(host, port, token, until, got) for _ in range(SSE_CLIENTS)),
        _reads(host, port, token, until, out),
    )
    out["sse_events"] = sum(max(0, n) for n in got)
    out["sse_without_events"] = sum(1 for n in got if n <= 0)
    out["errors"] += sum(1 for n in got if n < 0)
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["--load"]:
        print(json.dumps(asyncio.run(_load(sys.argv[2], float(sys.argv[3])))))
    else:
        for row in run():
            print(row)
