"""What an open dashboard tab costs `looop web` on a quiet home (issue 56): the page's own
traffic, every 5 s the eight views it redraws (`/api/v1/sessions` asked with the ETag of its
last answer, as app.js does) with the live events stream held open, on a home of 30 live
workers (their supervisors' locks held, nothing changing). The server's CPU seconds an hour,
from /proc, against the same server left alone with no tab for as long (the baseline).
LOOOP_BENCH_TAB_SECS (default 60) a window; two windows each, min/median/max."""

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
POLL_S = 5.0  # app.js: setInterval(refreshSoon, 5000)
WINDOWS = 2


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


def _events(url: str, stop: threading.Event, secs: float) -> None:
    with urllib.request.urlopen(_request(url, "/api/v1/events"), timeout=secs + 60) as r:
        while not stop.is_set() and r.readline():
            pass


def _quiet_home(d: Path) -> list[int]:
    """30 live-looking workers: meta, a running status and a held supervisor lock each."""
    fds = []
    for i in range(WORKERS):
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


def _window(url: str, pid: int, secs: float, tab: bool) -> float:
    """The server's CPU seconds an hour over one window, with the tab open or not."""
    stop = threading.Event()
    live = threading.Thread(target=_events, args=(url, stop, secs), daemon=True)
    if tab:
        live.start()
    time.sleep(1.0)  # the stream settled
    tag: str | None = None
    cpu0, t0 = _cpu_s(pid), time.monotonic()
    while time.monotonic() < t0 + secs:
        tick = time.monotonic()
        if tab:
            for path in TAB:
                if path == "/api/v1/sessions":
                    tag = _get(url, path, tag)
                else:
                    _get(url, path)
        time.sleep(max(0.0, POLL_S - (time.monotonic() - tick)))
    stop.set()
    return (_cpu_s(pid) - cpu0) * 3600 / (time.monotonic() - t0)


def run() -> list[dict[str, object]]:
    looop = str(Path(sys.executable).parent / "looop")
    secs = float(os.environ.get("LOOOP_BENCH_TAB_SECS", "60"))
    tabs: list[float] = []
    alone: list[float] = []
    with tempfile.TemporaryDirectory() as t:
        d = Path(t)
        env = _env(d)
        fds = _quiet_home(d)
        try:
            for _ in range(WINDOWS):
                web, url = _serve([looop, "web", "--port", "0"], env)
                try:
                    for path in TAB:
                        _get(url, path)  # warm: the first read of each view
                    alone.append(_window(url, web.pid, secs, tab=False))
                    tabs.append(_window(url, web.pid, secs, tab=True))
                finally:
                    _stop(web)
        finally:
            for fd in fds:
                os.close(fd)
    value, base = statistics.median(tabs), statistics.median(alone)
    return [
        {
            "name": f"an open dashboard tab, quiet home of {WORKERS} workers (server CPU)",
            "value": round(value, 2),
            "min": round(min(tabs), 2),
            "max": round(max(tabs), 2),
            "unit": "CPU-s/h",
            "baseline": round(base, 2),
            "ratio": round(value / base, 2) if base else None,
            "target": "< 5 CPU-s an hour",
            "ok": value < 5.0,
            "note": (
                f"tab: the page's polls every {POLL_S:.0f} s (the {len(TAB)} views, /sessions "
                f"with its ETag) and /api/v1/events held open, {WINDOWS} windows of {secs:.0f}s; "
                "baseline: the same server with no tab, as long"
            ),
        }
    ]


if __name__ == "__main__":
    for r in run():
        print(r)
