"""What an open dashboard tab costs `looop web` on a quiet home (issue 56): the page's own
traffic, as app.js makes it: the live events stream held open, the screen of the worker it
shows (the first live one: a real, quiet `cat`) streamed, and the eight views it redraws
(`/api/v1/sessions` asked with the ETag of its last answer) read on each push from the server
and every SAFETY_S, on a home of 30 live workers (the others' supervisors' locks held,
nothing changing); the shown worker's supervisor's CPU is said beside. The server's CPU
seconds an hour, from /proc, against the baseline: a bare Starlette app on uvicorn holding the
same idle stream open (`--floor`); the same server with no tab is said beside it.
LOOOP_BENCH_TAB_SECS (default 120) a window; WINDOWS windows each, interleaved,
min/median/max."""

from __future__ import annotations

import fcntl
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_ledger import TAB, _cpu_s, _env, _serve, _stop  # noqa: E402

WORKERS = 30
SAFETY_S = 60.0  # app.js: setInterval(refreshSoon, 60000)
SOON_S = 0.4  # app.js: refreshSoon()'s wait after a push (a burst is one round of reads)
WINDOWS = 2
SHOWN = "w00"  # the live worker whose screen the page streams
PING_S = 15.0  # the floor's keep-alive comment, as web/streams.py sends


def _request(url: str, path: str) -> urllib.request.Request:
    got = urlsplit(url)
    token = (parse_qs(got.query).get("token") or [""])[0]
    return urllib.request.Request(
        f"{got.scheme}://{got.netloc}{path}", headers={"Authorization": f"Bearer {token}"}
    )


def _get(url: str, path: str, tag: str | None = None) -> str | None:
    """GET path (with If-None-Match when tag); the answer's ETag."""
    req = _request(url, path)
    if tag:
        req.add_header("If-None-Match", tag)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
            got: str | None = r.headers.get("ETag")
            return got
    except urllib.error.HTTPError as e:
        if e.code == 304:
            return tag
        raise


def _events(url: str, stop: threading.Event, pushed: threading.Event, secs: float) -> None:
    """Hold the live stream open; a `data:` line is a push (the page refreshes on it)."""
    with urllib.request.urlopen(_request(url, "/api/v1/events"), timeout=secs + 60) as r:
        while not stop.is_set():
            line = r.readline()
            if not line:
                return
            if line.startswith(b"data:"):
                pushed.set()


def _shown(d: Path) -> int:
    """The worker the page shows: a real, quiet `cat`; its supervisor's pid."""
    from looop.sessions.spawner import spawn

    data = d / "data"
    spawn(data, SHOWN, ["cat"], cwd=data, env=dict(os.environ))
    meta = data / "sessions" / SHOWN / "meta.json"
    for _ in range(200):
        pid = json.loads(meta.read_text()).get("supervisor_pid") if meta.exists() else None
        if isinstance(pid, int):
            return pid
        time.sleep(0.05)
    raise RuntimeError(f"{SHOWN}'s supervisor did not start")


def _end_shown(d: Path) -> None:
    from looop.home.clock import SystemClock
    from looop.sessions.client import kill, wait

    kill(d / "data", SHOWN)
    wait(d / "data", SHOWN, 30, SystemClock())


def _screen(url: str, stop: threading.Event, secs: float) -> None:
    path = f"/api/v1/sessions/{SHOWN}/screen/stream"
    with urllib.request.urlopen(_request(url, path), timeout=secs + 60) as r:
        while not stop.is_set() and r.readline():
            pass


def _quiet_home(d: Path) -> list[int]:
    """29 live-looking workers beside the shown one: meta, a running status and a held
    supervisor lock each."""
    fds = []
    for i in range(1, WORKERS):
        sid = f"w{i:02d}"
        s = d / "data" / "sessions" / sid
        s.mkdir(parents=True)
        meta = {"id": sid, "cmd": ["cat"], "cwd": str(d), "started_at": "2026-11-26T10:00:00Z"}
        (s / "meta.json").write_text(json.dumps(meta))
        status = {"state": "running", "last_change": "2026-11-26T10:00:00Z"}
        (s / "status.json").write_text(json.dumps(status))
        fd = os.open(s / "lock", os.O_CREAT | os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        fds.append(fd)
    return fds


class Window:
    """One window's figures: the server's and the shown worker's supervisor's CPU seconds an
    hour, and the rounds of reads."""

    def __init__(self, cpu_h: float, sup_h: float, rounds: int, pushes: int) -> None:
        self.cpu_h, self.sup_h, self.rounds, self.pushes = cpu_h, sup_h, rounds, pushes


def _window(url: str, pid: int, sup: int, secs: float, tab: bool, views: bool = True) -> Window:
    """The server's CPU seconds an hour over one window, with the tab open or not. The tab
    holds the stream and, when `views`, the shown worker's screen, and reads the views as the
    page does."""
    stop, pushed = threading.Event(), threading.Event()
    live = threading.Thread(target=_events, args=(url, stop, pushed, secs), daemon=True)
    shown = threading.Thread(target=_screen, args=(url, stop, secs), daemon=True)
    if tab:
        live.start()
        if views:
            shown.start()
    time.sleep(1.0)  # the streams settled
    pushed.clear()
    tag: str | None = None
    rounds = pushes = 0
    cpu0, sup0, t0 = _cpu_s(pid), _cpu_s(sup), time.monotonic()
    due = t0 + SAFETY_S
    while (left := t0 + secs - time.monotonic()) > 0:
        woke = pushed.wait(min(left, max(0.0, due - time.monotonic())))
        if time.monotonic() >= t0 + secs:
            break
        if woke:
            pushes += 1
            time.sleep(SOON_S)
            pushed.clear()
        if tab and views:
            rounds += 1
            for path in TAB:
                if path == "/api/v1/sessions":
                    tag = _get(url, path, tag)
                else:
                    _get(url, path)
        due = time.monotonic() + SAFETY_S
    took = time.monotonic() - t0
    cpu, sup_h = (_cpu_s(pid) - cpu0) * 3600 / took, (_cpu_s(sup) - sup0) * 3600 / took
    stop.set()
    return Window(cpu, sup_h, rounds, pushes)


def _spread(xs: list[float]) -> str:
    return f"{min(xs):.2f} / {statistics.median(xs):.2f} / {max(xs):.2f}"


def run() -> list[dict[str, object]]:
    looop = str(Path(sys.executable).parent / "looop")
    secs = float(os.environ.get("LOOOP_BENCH_TAB_SECS", "120"))
    tabs: list[Window] = []
    alone: list[float] = []
    bare: list[float] = []
    with tempfile.TemporaryDirectory() as t:
        d = Path(t)
        env = _env(d)
        fds = _quiet_home(d)
        sup = _shown(d)
        try:
            for _ in range(WINDOWS):
                web, url = _serve([looop, "web", "--port", "0"], env)
                try:
                    for path in TAB:
                        _get(url, path)  # warm: the first read of each view
                    alone.append(_window(url, web.pid, sup, secs, tab=False).cpu_h)
                    tabs.append(_window(url, web.pid, sup, secs, tab=True))
                finally:
                    _stop(web)
                floor, furl = _serve([sys.executable, __file__, "--floor"])
                try:
                    bare.append(_window(furl, floor.pid, sup, secs, True, views=False).cpu_h)
                finally:
                    _stop(floor)
        finally:
            for fd in fds:
                os.close(fd)
            _end_shown(d)
    cpu = [w.cpu_h for w in tabs]
    value, base = statistics.median(cpu), statistics.median(bare)
    return [
        {
            "name": f"an open dashboard tab, quiet home of {WORKERS} workers (server CPU)",
            "value": round(value, 2),
            "min": round(min(cpu), 2),
            "max": round(max(cpu), 2),
            "unit": "CPU-s/h",
            "baseline": round(base, 2),
            "ratio": round(value / base, 2) if base else None,
            "target": "< 5 CPU-s an hour",
            "ok": value < 5.0,
            "note": (
                f"tab: /api/v1/events and a live quiet worker's screen stream held open, and "
                f"the {len(TAB)} views read (/sessions with its ETag) on each push and every "
                f"{SAFETY_S:.0f} s, as app.js does (the worker's supervisor meanwhile "
                f"{_spread([w.sup_h for w in tabs])} CPU-s/h); "
                f"{WINDOWS} windows of {secs:.0f}s, {sum(w.pushes for w in tabs)} pushes and "
                f"{sum(w.rounds for w in tabs)} rounds of reads in all; baseline: a bare "
                f"Starlette app on uvicorn holding the same idle stream (min/median/max "
                f"{_spread(bare)}); `looop web` with no tab {_spread(alone)} CPU-s/h"
            ),
        }
    ]


def floor() -> None:
    """A bare Starlette app on uvicorn serving the live stream's idle traffic: its opening
    and a keep-alive comment every PING_S (the baseline)."""
    import asyncio
    import socket
    from collections.abc import AsyncIterator

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    async def idle() -> AsyncIterator[str]:
        yield "retry: 2000\n\n"
        while True:
            await asyncio.sleep(PING_S)
            yield ": ping\n\n"

    async def events(request: Request) -> Response:
        return StreamingResponse(idle(), media_type="text/event-stream")

    app = Starlette(routes=[Route("/api/v1/events", events)])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print(f"http://127.0.0.1:{sock.getsockname()[1]}/?token=floor", flush=True)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, ws="none", timeout_graceful_shutdown=2
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    if sys.argv[1:] == ["--floor"]:
        floor()
    else:
        for r in run():
            print(r)
