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
STREAM = (
    'i=0; while :; do i=$((i+1)); echo "line $i $(date +%s%N)"; sleep 0.02; done # {{prompt_file}}'
)


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
    return rows + kept_alive_rows(looop) + paint_rows(looop)


def _home(d: str) -> dict[str, str]:
    """A home in `d` whose pulse beats every second on a scripted runner (no AI call)."""
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
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": d,
        "LANG": "C.UTF-8",
        "LOOOP_DATA_DIR": str(Path(d) / "data"),
        "LOOOP_CONFIG": str(config),
        "LOOOP_MAX_WORKERS": str(WORKERS + 2),
    }


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
            "name": "GET /api/v1/state under that load (errors, SSE clients fed)",
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
            f"command), run in the no-server windows; {errors} errors, {starved} SSE clients "
            f"without events, {sse_events} events delivered",
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


# --- kept-alive reads against the framework's floor ---------------------------------------

KEPT_ROUNDS = 3
KEPT_REQUESTS = 300  # one client's sequential requests on one connection, a round
KEPT_CLIENTS = 10
KEPT_SECS = 3.0  # the throughput window, a round
FLOOR_PATH = "/api/v1/state"


def kept_alive_rows(looop: str) -> list[dict[str, object]]:
    """The kept-alive rows in a home of their own: the pulse beating every second and
    WORKERS idle workers (`cat`), so the figures are the web face's, not the streaming's."""
    with tempfile.TemporaryDirectory() as d:
        env = _home(d)
        subprocess.run([looop, "up"], env=env, check=True, capture_output=True)
        try:
            for i in range(WORKERS):
                subprocess.run(
                    [looop, "worker", "start", f"k{i}", "--command", "cat # {{prompt_file}}", "go"],
                    env=env,
                    check=True,
                    capture_output=True,
                )
            return _kept_alive(looop, env)
        finally:
            subprocess.run([looop, "down", "--grace", "10"], env=env, capture_output=True)


def _kept_alive(looop: str, env: dict[str, str]) -> list[dict[str, object]]:
    """`/api/v1/state` on kept-alive connections (what a browser does) against the floor: a
    minimal Starlette app on uvicorn (plain h11, the same options `looop web` gives it)
    serving the same bytes. Rounds alternate floor and ours; each has one client's
    sequential requests (latency) and then KEPT_CLIENTS clients at once (throughput), every
    client on one connection it keeps. The load runs in its own process."""
    web, url = _start_web(looop, env)
    try:
        time.sleep(1)  # a beat has passed since the workers started
        body = _fetch_state(url)
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            f.write(body)
            f.flush()
            floor = subprocess.Popen(
                [sys.executable, __file__, "--floor", f.name],
                stdout=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            try:
                assert floor.stdout is not None
                floor_url = floor.stdout.readline().strip()
                lat: dict[str, list[float]] = {"ours": [], "floor": []}
                rps: dict[str, list[float]] = {"ours": [], "floor": []}
                for _ in range(KEPT_ROUNDS):
                    for who, u in (("floor", floor_url), ("ours", url)):
                        one = _kept_load(u, 1, KEPT_REQUESTS, 0.0)
                        lat[who] += one["latencies"]
                        many = _kept_load(u, KEPT_CLIENTS, 0, KEPT_SECS)
                        rps[who].append(many["count"] / many["secs"])
            finally:
                _stop(floor)
        every = _fetch_state(url, "/api/v1/state?all=1")  # served: still answers in full
    finally:
        _stop(web)
    ours_med, floor_med = statistics.median(lat["ours"]), statistics.median(lat["floor"])
    ours_rps, floor_rps = statistics.median(rps["ours"]), statistics.median(rps["floor"])
    lat_ratio = ours_med / floor_med
    rps_ratio = ours_rps / floor_rps
    return [
        {
            "name": f"GET /api/v1/state on a kept-alive connection ({WORKERS} workers)",
            "value": round(ours_med * 1000, 3),
            "min": round(min(lat["ours"]) * 1000, 3),
            "max": round(max(lat["ours"]) * 1000, 3),
            "unit": "ms",
            "baseline": round(floor_med * 1000, 3),
            "ratio": round(lat_ratio, 2),
            "target": "<= 3x the floor",
            "ok": lat_ratio <= 3.0 and b'"health"' in every,
            "note": f"kept-alive: baseline = a minimal Starlette app on uvicorn (h11) serving "
            f"the same {len(body)} bytes, {KEPT_ROUNDS} rounds alternating floor/ours, "
            f"{KEPT_REQUESTS} sequential requests a round on one connection (floor min/max "
            f"{min(lat['floor']) * 1000:.3f}/{max(lat['floor']) * 1000:.3f} ms); throughput: "
            f"{KEPT_CLIENTS} clients on kept connections for {KEPT_SECS:g}s a round (ours "
            f"{_spread_text(rps['ours'])} req/s, floor {_spread_text(rps['floor'])} req/s)",
        },
        {
            "name": f"GET /api/v1/state throughput, {KEPT_CLIENTS} clients on kept-alive "
            "connections",
            "value": round(ours_rps),
            "min": round(min(rps["ours"])),
            "max": round(max(rps["ours"])),
            "unit": "req/s",
            "baseline": round(floor_rps),
            "ratio": round(rps_ratio, 2),
            "target": ">= 0.3x the floor",
            "ok": rps_ratio >= 0.3,
        },
    ]


def _spread_text(xs: list[float]) -> str:
    return f"{min(xs):.0f}/{statistics.median(xs):.0f}/{max(xs):.0f}"


def _fetch_state(url: str, path: str = "/api/v1/state") -> bytes:
    import urllib.request

    got = urlsplit(url)
    token = parse_qs(got.query)["token"][0]
    req = urllib.request.Request(
        f"{got.scheme}://{got.netloc}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return bytes(r.read())


def _kept_load(url: str, clients: int, requests: int, secs: float) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--kept", url, str(clients), str(requests), str(secs)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout))


async def _kept_client(
    host: str, port: int, token: str, requests: int, until: float, out: dict[str, Any]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    req = (
        f"GET {FLOOR_PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()
    n = 0
    try:
        while (n < requests) if requests else (time.monotonic() < until):
            t0 = time.perf_counter()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            size = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    size = int(line[15:])
            body = await reader.readexactly(size)
            if not head.startswith(b"HTTP/1.1 200") or b'"health"' not in body:
                out["errors"] += 1
            out["latencies"].append(time.perf_counter() - t0)
            n += 1
    finally:
        writer.close()


async def _kept(url: str, clients: int, requests: int, secs: float) -> dict[str, Any]:
    got = urlsplit(url)
    host, port = got.hostname or "", got.port or 80
    token = (parse_qs(got.query).get("token") or [""])[0]
    out: dict[str, Any] = {"errors": 0, "latencies": []}
    t0 = time.monotonic()
    await asyncio.gather(
        *(_kept_client(host, port, token, requests, t0 + secs, out) for _ in range(clients))
    )
    out["secs"] = time.monotonic() - t0
    out["count"] = len(out["latencies"])
    if clients > 1:
        del out["latencies"]  # the count is the figure; the list would be large
    return out


def _serve_floor(app: Any) -> None:
    """Serve a bare app on uvicorn at a free local port, its URL printed first."""
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print(f"http://127.0.0.1:{sock.getsockname()[1]}/", flush=True)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", server_header=False, ws="none"
    )
    uvicorn.Server(config).run(sockets=[sock])


def _floor(body_file: str) -> None:
    """The framework's floor: Starlette + uvicorn, one route, the given bytes."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    body = Path(body_file).read_bytes()

    async def state(request: Request) -> Response:
        return Response(body, media_type="application/json")

    app = Starlette(routes=[Route(FLOOR_PATH, state)])
    _serve_floor(app)


# --- the dashboard's paint at 300 workers against a bare page -----------------------------

PAINT_FLEET = 300  # issue 68: the dashboard at 300 workers
PAINT_ROUNDS = 9  # navigations of each page, alternating
PAINT_RATIO = 2.0
# set before any of the page's own scripts run: resolves with the time from navigation start
# (performance.now()) to the frame after the fleet table first holds every row
PAINT_PROBE = """(() => { const want = %d;
  window.__paint = new Promise((done) => {
    const obs = new MutationObserver(() => {
      const t = document.getElementById("fleet");
      if (!t || !t.tBodies[0] || t.tBodies[0].rows.length < want) return;
      obs.disconnect();
      requestAnimationFrame(() => setTimeout(() => done(performance.now()), 0));
    });
    obs.observe(document, { childList: true, subtree: true });
  }); })();"""
PAINTED = "window.__paint.then(arguments[arguments.length - 1])"


def paint_rows(looop: str) -> list[dict[str, object]]:
    """`looop web` on a home of PAINT_FLEET live workers (fake folders copied from a real
    `cat` worker's, their locks held here: bench_scaling's, no supervisors running), in
    headless Chromium (Debian's, driven as tests/web does), against its floor: a bare
    Starlette app on uvicorn serving the page the dashboard drew, as static HTML (its scripts
    taken out), beside the same static files. Each navigation is timed in the page from its
    start to the frame after the fleet's last row exists; the browser's cache is off, so
    each is a first visit; the two pages alternate, round by round."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_busy as busy
    import bench_scaling as scaling

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        live, _done = scaling._templates(root / "tmpl")
        env = busy._home(root / "home")
        env = {k: v for k, v in env.items() if not k.startswith("LOOOP_")}
        env["LOOOP_DATA_DIR"] = str(root / "home" / "data")
        data = Path(env["LOOOP_DATA_DIR"])
        (data / "sessions").mkdir(exist_ok=True)
        fds: list[int] = []
        try:
            for i in range(PAINT_FLEET):
                scaling._fake(data, f"w{i:03d}", live, fds)
            return _paint(looop, env, root, data / "sessions" / "w000" / "meta.json")
        finally:
            for fd in fds:
                os.close(fd)


def _browser() -> Any:
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(shutil.which("chromium"))
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        opts.add_argument(arg)
    opts.add_argument("--window-size=1280,900")
    driver = webdriver.Chrome(service=Service(str(shutil.which("chromedriver"))), options=opts)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    return driver


def _painted(driver: Any, url: str) -> float:
    """ms from the navigation's start to the frame after every row of the fleet is there."""
    driver.get("about:blank")
    driver.get(url)
    return float(driver.execute_async_script(PAINTED))


def _paint(looop: str, env: dict[str, str], root: Path, touch: Path) -> list[dict[str, object]]:
    web, url = _start_web(looop, env)
    driver = None
    floor = None
    try:
        driver = _browser()
        want = PAINT_FLEET + 1  # the pulse's row above the workers'
        driver.execute_cdp_cmd(
            "Page.addScriptToEvaluateOnNewDocument", {"source": PAINT_PROBE % want}
        )
        first = _painted(driver, url)  # logs in (the token, then the cookie): the cold read
        page = driver.execute_script(
            "const d = document.documentElement.cloneNode(true);"
            "for (const s of d.querySelectorAll('script')) s.remove();"
            "return '<!doctype html>\\n' + d.outerHTML;"
        )
        html = root / "floor.html"
        html.write_text(page)
        floor = subprocess.Popen(
            [sys.executable, __file__, "--paint-floor", str(html)],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert floor.stdout is not None
        floor_url = floor.stdout.readline().strip()
        home = url.split("?", 1)[0]
        got: dict[str, list[float]] = {"ours": [], "floor": []}
        for n in range(PAINT_ROUNDS):
            pair = (("floor", floor_url), ("ours", home))
            for who, u in pair if n % 2 else pair[::-1]:
                os.utime(touch)  # a worker's file moved since the last look: rows read anew
                got[who].append(_painted(driver, u))
    finally:
        if driver is not None:
            driver.quit()
        if floor is not None:
            _stop(floor)
        _stop(web)
    ours, base = got["ours"], got["floor"]
    ratio = statistics.median(ours) / statistics.median(base)
    return [
        {
            "name": f"the dashboard's paint at {PAINT_FLEET} workers (headless Chromium, "
            "navigation start to the frame after the fleet's last row)",
            "value": round(statistics.median(ours), 1),
            "min": round(min(ours), 1),
            "max": round(max(ours), 1),
            "unit": "ms",
            "baseline": round(statistics.median(base), 1),
            "ratio": round(ratio, 2),
            "target": f"<= {PAINT_RATIO:g}x a bare Starlette page of the same rows",
            "ok": ratio <= PAINT_RATIO,
            "note": f"paint: {PAINT_FLEET} live workers (fake folders copied from a real `cat` "
            "worker's, their locks held by the bench); baseline = a bare Starlette app on "
            "uvicorn serving the page the dashboard drew as static HTML (scripts taken out, "
            f"{len(page)} bytes) with the same static files; {PAINT_ROUNDS} rounds alternating, "
            "browser cache off, one Chromium; floor min/median/max "
            f"{min(base):.0f}/{statistics.median(base):.0f}/{max(base):.0f} ms; the login "
            f"navigation (the fleet's first read) {first:.0f} ms",
        }
    ]


def _paint_floor(html_file: str) -> None:
    """The floor of the dashboard's paint: one static page, and the package's static files."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    from looop.web.app import STATIC

    body = Path(html_file).read_bytes()

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(body)

    app = Starlette(routes=[Route("/", page), Mount("/static", StaticFiles(directory=STATIC))])
    _serve_floor(app)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--paint-only"]:  # the paint row alone, for a quick look
        for row in paint_rows(str(Path(sys.executable).parent / "looop")):
            print(row)
    elif sys.argv[1:2] == ["--paint-floor"]:
        _paint_floor(sys.argv[2])
    elif sys.argv[1:2] == ["--kept-only"]:  # the kept-alive rows alone, for a quick look
        for row in kept_alive_rows(str(Path(sys.executable).parent / "looop")):
            print(row)
    elif sys.argv[1:2] == ["--load"]:
        print(json.dumps(asyncio.run(_load(sys.argv[2], float(sys.argv[3])))))
    elif sys.argv[1:2] == ["--kept"]:
        n_clients, n_requests, n_secs = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
        print(json.dumps(asyncio.run(_kept(sys.argv[2], n_clients, n_requests, n_secs))))
    elif sys.argv[1:2] == ["--floor"]:
        _floor(sys.argv[2])
    else:
        for row in run():
            print(row)
