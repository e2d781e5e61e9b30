"""The web face beside the rest: an ask's notification links to it when the config names its
public URL, and `looop up --web` runs it as its own process that can die and come back while
the pulse beats on, never noticing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.human.notify import notify, web_link
from tests.helpers import clean_env, wait_until

LOOOP = str(Path(sys.executable).with_name("looop"))


def test_the_link_is_the_asks_dashboard_address_without_the_token() -> None:
    raw = {"web": {"url": "https://loop.example.net/"}}
    assert web_link(raw, "ask", "w1-3") == "https://loop.example.net/#ask=w1-3"
    assert web_link(raw, "notification", "w1-3") is None  # only asks link
    assert web_link({}, "ask", "w1-3") is None  # no web face configured
    for bad in ({"web": "x"}, {"web": {"url": "javascript:alert(1)"}}, {"web": {"url": 3}}):
        assert web_link(bad, "ask", "w1-3") is None


@pytest.mark.timeout(30)
def test_an_asks_notification_carries_the_link(ctx: Ctx) -> None:
    got = ctx.paths.data / "message.txt"
    ctx.paths.config.write_text(
        json.dumps(
            {
                "notification": f'printf %s "$LOOOP_MESSAGE" > {got}',
                "web": {"url": "https://loop.example.net"},
            }
        )
    )
    notify(ctx, "w1 asks: ship it?", "w1-1", "ask")
    wait_until(lambda: got.exists() and got.read_text(), 10, "the hook's message")
    assert got.read_text().splitlines() == [
        "w1 asks: ship it?",
        "open: https://loop.example.net/#ask=w1-1",
    ]


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LOOOP, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _status(env: dict[str, str]) -> dict[str, object]:
    out = json.loads(_cli(env, "status", "--json").stdout)
    assert isinstance(out, dict)
    return out


@pytest.mark.timeout(120)
def test_up_web_survives_its_own_crash_and_down_stops_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "config.json"
    runner = f"{sys.executable} -m looop.demo.runner --script {tmp_path / 'script.json'}"
    (tmp_path / "script.json").write_text(json.dumps([{"action": "noop"}] * 50))
    config.write_text(
        json.dumps(
            {
                "default": "s",
                "runners": {"s": {"tick": runner, "worker": "cat"}},
                "max_daily_usd": 0,
                "interval": 1,
                "web": {"port": 0},  # 8765 may be the user's own dashboard
            }
        )
    )
    env = clean_env(tmp_path, data, LOOOP_CONFIG=str(config))
    try:
        up = _cli(env, "up", "--web")
        assert up.returncode == 0, up.stderr
        line = next(ln for ln in up.stdout.splitlines() if ln.startswith("web started"))
        url = line.split(" · ", 1)[1]
        token = url.split("token=", 1)[1]
        base = url.split("/?", 1)[0]
        req = urllib.request.Request(
            f"{base}/api/v1/state", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            assert json.load(r)["pulse"]["running"] is True
        pulse_pid = _status(env)["pulse"]["pid"]  # type: ignore[index]
        web_pid = json.loads((data / ".lock" / "web.json").read_text())["pid"]
        log = data / ".lock" / "web.log"
        assert log.stat().st_mode & 0o077 == 0
        assert f"{base}/" in log.read_text() and token not in log.read_text()  # no token logged

        os.kill(web_pid, signal.SIGKILL)  # the server crashes
        wait_until(lambda: not Path(f"/proc/{web_pid}").exists(), 10, "the server gone")
        st = _status(env)
        assert st["pulse"]["running"] is True and st["pulse"]["pid"] == pulse_pid  # type: ignore[index]

        again = _cli(env, "up", "--web")  # ... and comes back, the same token
        assert "web started" in again.stdout, again.stdout + again.stderr
        assert again.stdout.strip().endswith(f"token={token}")
        assert _status(env)["pulse"]["pid"] == pulse_pid  # type: ignore[index]
        running = _cli(env, "up", "--web").stdout  # the ways back to the link with its token
        assert "web already running" in running and running.strip().endswith(f"token={token}")
        new_base = running.strip().rsplit(" · ", 1)[1].split("/?", 1)[0]
        assert _cli(env, "web", "--url").stdout == f"{new_base}/?token={token}\n"
        assert token not in log.read_text()

        # pause and resume the pulse from the web, as `down --keep-workers` / `up` do
        new_url = again.stdout.strip().rsplit(" · ", 1)[1].split("/?", 1)[0]
        assert (
            _cli(
                env, "worker", "start", "k1", "--command", "sleep 600 # {{prompt_file}}", "go"
            ).returncode
            == 0
        )

        def post(path: str) -> dict[str, object]:
            req = urllib.request.Request(
                f"{new_url}/api/v1{path}",
                data=b"{}",
                method="POST",
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=60) as r:
                got = json.load(r)
            assert isinstance(got, dict)
            return got

        assert post("/pulse/pause")["ok"] is True
        st = _status(env)
        assert st["pulse"]["running"] is False  # type: ignore[index]
        assert [w["id"] for w in st["workers"] if w["alive"]] == ["k1"]  # type: ignore[attr-defined, index]
        assert post("/pulse/resume")["ok"] is True
        assert _status(env)["pulse"]["running"] is True  # type: ignore[index]
        journal = (data / "journal.md").read_text()
        assert "web: paused the pulse" in journal and "web: resumed the pulse" in journal
    finally:
        down = _cli(env, "down")
    assert "web stopped" in down.stdout, down.stdout + down.stderr
    assert not (data / ".lock" / "web.json").exists()
    gone = _cli(env, "web", "--url")  # no server: one line saying how to start one
    assert gone.returncode != 0 and gone.stdout == ""
    assert "no web server serves this data dir" in gone.stderr and "Traceback" not in gone.stderr


@pytest.mark.timeout(120)
def test_down_leaves_a_separately_started_web_alone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "config.json"
    runner = f"{sys.executable} -m looop.demo.runner --script {tmp_path / 'script.json'}"
    (tmp_path / "script.json").write_text(json.dumps([{"action": "noop"}] * 50))
    config.write_text(
        json.dumps(
            {
                "default": "s",
                "runners": {"s": {"tick": runner, "worker": "cat"}},
                "max_daily_usd": 0,
                "web": {"port": 0},
            }
        )
    )
    env = clean_env(tmp_path, data, LOOOP_CONFIG=str(config))
    up = _cli(env, "up")
    assert "pulse started" in up.stdout, up.stdout + up.stderr
    web = subprocess.Popen([LOOOP, "web"], env=env, stdout=subprocess.DEVNULL)
    try:
        wait_until(lambda: _cli(env, "web", "--url").returncode == 0, 60, "the web server")
        down = _cli(env, "down")
        assert "pulse stopped" in down.stdout, down.stdout + down.stderr
        assert "web stopped" not in down.stdout and f"left web (pid {web.pid})" in down.stdout
        assert web.poll() is None and _cli(env, "web", "--url").returncode == 0
    finally:
        web.terminate()
        web.wait(timeout=30)
