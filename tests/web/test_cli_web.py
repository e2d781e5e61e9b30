"""`looop web` as a user runs it: one URL on stdout, the token file, the warning for a wide
bind, a real HTTP round trip; and the hot verbs never load the web room."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import clean_env

LOOOP = str(Path(sys.executable).with_name("looop"))


def _start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    env = clean_env(tmp_path, tmp_path / "data", LOOOP_CONFIG=str(tmp_path / "config.json"))
    p = subprocess.Popen(
        [LOOOP, "web", "--port", "0", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert p.stdout is not None
    return p, p.stdout.readline().strip()


def _stop(p: subprocess.Popen[str]) -> str:
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=20)
    return err


@pytest.mark.timeout(60)
def test_web_prints_one_url_that_logs_in(tmp_path: Path) -> None:
    p, url = _start(tmp_path)
    try:
        assert url.startswith("http://127.0.0.1:") and "/?token=" in url
        token = url.split("token=", 1)[1]
        kept = tmp_path / "data" / ".lock" / "web-token"
        assert kept.read_text().strip() == token
        assert kept.stat().st_mode & 0o077 == 0
        base = url.split("/?", 1)[0]
        with pytest.raises(urllib.error.HTTPError) as no:
            urllib.request.urlopen(f"{base}/api/v1/state", timeout=10)
        assert no.value.code == 401
        req = urllib.request.Request(
            f"{base}/api/v1/state", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            assert b'"health"' in r.read()
    finally:
        err = _stop(p)
    assert p.returncode == 0, err
    assert "warn" not in err.lower() and "listening on" not in err
    assert not (tmp_path / "data" / ".lock" / "web.json").exists()


@pytest.mark.timeout(60)
def test_a_wide_host_warns(tmp_path: Path) -> None:
    p, url = _start(tmp_path, "--host", "0.0.0.0")
    err = _stop(p)
    assert "/?token=" in url
    assert "listening on 0.0.0.0" in err and "token" in err


@pytest.mark.timeout(60)
def test_half_a_tls_pair_is_refused_in_one_line(tmp_path: Path) -> None:
    p, url = _start(tmp_path, "--tls-cert", str(tmp_path / "c.pem"))
    _, err = p.communicate(timeout=20)
    assert p.returncode != 0 and url == ""
    assert "--tls-key" in err and "Traceback" not in err


PROBE = """
import sys
from looop.verbs.console import run as main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
sys.stderr.write("\\nMODULES " + repr(sorted(sys.modules)) + "\\n")
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "argv",
    [["status"], ["status", "--json"], ["claim", "x"], ["told", "w1"], ["asks"], ["ask", "--help"]],
)
def test_hot_verbs_load_nothing_of_the_web_room(tmp_path: Path, argv: list[str]) -> None:
    env = clean_env(tmp_path, tmp_path / "data")
    (tmp_path / "data").mkdir()
    r = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], env=env, capture_output=True, text=True, timeout=60
    )
    mods = ast.literal_eval(r.stderr.rsplit("\nMODULES ", 1)[1])
    web = [m for m in mods if m.startswith(("looop.web", "starlette", "uvicorn", "anyio"))]
    assert web == [], f"looop {' '.join(argv)} loads {web}"


@pytest.mark.timeout(90)
def test_tls_serves_https_and_a_secure_cookie(tmp_path: Path) -> None:
    import ssl

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"openssl could not make a test certificate: {made.stderr[-200:]!r}")
    p, url = _start(tmp_path, "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        assert url.startswith("https://127.0.0.1:")
        tls = ssl.create_default_context(cafile=str(cert))
        tls.check_hostname = False  # the test certificate names no host in a SAN

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a: object, **k: object) -> None:
                return None

        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=tls), NoRedirect())
        with pytest.raises(urllib.error.HTTPError) as moved:
            opener.open(url, timeout=10)
        assert moved.value.code == 303
        cookie = moved.value.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie
    finally:
        _stop(p)


@pytest.mark.timeout(60)
def test_events_stream_over_real_http(tmp_path: Path) -> None:
    """A client of /api/v1/events gets what the loop appends after it connected."""
    import json

    p, url = _start(tmp_path)
    try:
        base, token = url.split("/?token=", 1)
        req = urllib.request.Request(
            f"{base}/api/v1/events", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(req, timeout=20) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert stream.readline() == b"retry: 2000\n"
            with open(tmp_path / "data" / "events.jsonl", "a") as f:
                f.write(json.dumps({"event": "tick_start", "ts": "2026-06-21T10:00:00.000Z"}))
                f.write("\n")
            msg: dict[str, object] = {"kind": "changed"}
            while msg.get("kind") == "changed":  # a push to look again, not this line's
                line = b""
                while not line.startswith(b"data: "):
                    line = stream.readline()
                msg = json.loads(line[6:])
        assert msg == {
            "kind": "event",
            "data": {"event": "tick_start", "ts": "2026-06-21T10:00:00.000Z"},
        }
    finally:
        _stop(p)


@pytest.mark.timeout(60)
def test_a_bad_web_config_is_said_in_one_line_and_the_defaults_serve(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"web": {"port": "eighty"}}')
    p, url = _start(tmp_path)
    err = _stop(p)
    assert "/?token=" in url  # --port 0 given on the command line still serves
    assert "web.port" in err and "Traceback" not in err
