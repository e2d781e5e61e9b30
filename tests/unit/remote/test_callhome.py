"""The worker side of the contract away from home: the retry loop the SSH shim and the pod's
`$LOOOP_BIN` share (remote/shim.py), and what each HTTP answer means to the pod's client
(remote/shim.py)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from looop.remote import callhome
from looop.remote.callhome import PENDING, Pending, Refused, call, request
from looop.remote.kube import podrun

pytestmark = [pytest.mark.timeout(60), pytest.mark.process]  # real processes


class Clock:
    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def _run(
    argv: list[str], attempts: Sequence[dict[str, object] | Refused | Pending | None], clock: Clock
) -> tuple[int, str, str, int]:
    it: Iterator[dict[str, object] | Refused | Pending | None] = iter(attempts)
    tries = 0

    def once() -> dict[str, object] | Refused | Pending | None:
        nonlocal tries
        tries += 1
        clock.t += 0.01
        return next(it, None)

    out, err = io.StringIO(), io.StringIO()
    code = call(argv, once, "home", out=out, err=err, monotonic=clock.monotonic, sleep=clock.sleep)
    return code, out.getvalue(), err.getvalue(), tries


def test_retries_until_answered_and_says_so_once() -> None:
    answer = {"out": "blue\n", "err": "looop: waiting\n", "code": 0}
    code, out, err, tries = _run(["ask"], [None, None, PENDING, None, answer], Clock())
    assert (code, out, tries) == (0, "blue\n", 5)
    assert err == "looop: the home is out of reach; retrying until it answers\nlooop: waiting\n"


def test_pending_asks_again_at_once() -> None:
    clock = Clock()
    code, _, err, _ = _run(["claim", "x"], [PENDING, PENDING, {"out": "", "code": 1}], clock)
    assert code == 1 and err == ""
    assert sum(clock.slept) < 1  # no retry pause after a long poll


def test_a_refusal_is_one_line_and_its_code_with_no_retry() -> None:
    code, out, err, tries = _run(["told"], [Refused("the home refused\nthis", 3)], Clock())
    assert (code, out, err, tries) == (3, "", "looop: the home refused this\n", 1)


def test_every_verb_but_ask_gives_up() -> None:
    code, _, err, tries = _run(["cost", "report"], [], Clock())
    assert code == 75 and err.splitlines()[-1].startswith("looop: the home does not answer")
    assert 100 < tries < 200  # about one a second for the two minutes
    answer = {"out": "late\n", "code": 0}
    code, out, _, _ = _run(["ask"], [None] * 1000 + [answer], Clock())  # ~17 minutes
    assert (code, out) == (0, "late\n")


def test_the_request_carries_stdin_only_for_a_dash() -> None:
    req = json.loads(request(["tell", "w2", "-"], "pw1", "key-1", io.StringIO("hi")))
    assert req == {
        "v": 1,
        "key": "key-1",
        "worker": "pw1",
        "argv": ["tell", "w2", "-"],
        "stdin": "hi",
    }
    req = json.loads(request(["told"], "pw1", "key-1", io.StringIO("unread")))
    assert req["stdin"] is None


@pytest.mark.parametrize(
    ("status", "body", "want"),
    [
        (200, b'{"out": "x", "err": "", "code": 4}', {"out": "x", "err": "", "code": 4}),
        (200, b'{"out": "x"', None),  # cut mid-answer: ask again
        (200, b"[]", None),
        (202, b'{"pending": true}', PENDING),
        (500, b"", None),
        (502, b"bad gateway", None),
        (429, b"", None),
        (400, b'{"error": "no verb"}', ("the home refused the request: no verb", 2)),
        (413, b'{"error": "over 64 KiB"}', ("the home refused the request: over 64 KiB", 2)),
        (401, b'{"error": "not pw1s"}', ("the home refused this worker: not pw1s", 3)),
        (403, b'{"error": "over"}', ("the home refused this worker: over", 3)),
        (404, b"<html>", ("serves no contract", 3)),
        (418, b"", ("HTTP 418", 3)),
    ],
)
def test_what_each_http_answer_means(status: int, body: bytes, want: object) -> None:
    got = callhome.outcome(status, body, "https://home.example")
    if isinstance(want, tuple):
        assert isinstance(got, Refused) and want[0] in got.line and got.code == want[1]
    else:
        assert got == want


def _shim(tmp_path: Path, real: str) -> Path:
    return podrun.contract_shim(tmp_path / "pod", real)


def _pod(shim: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", "/bin"), "LOOOP_SESSION_ID": "pw1"}
    return subprocess.run(
        [str(shim), *argv], env={**base, **env}, capture_output=True, text=True, timeout=30
    )


def test_without_a_way_home_the_home_verbs_refuse_and_the_rest_run_in_the_pod(
    tmp_path: Path,
) -> None:
    fake = tmp_path / "pod-looop"
    fake.write_text('#!/bin/sh\necho "pod looop: $*"\n')
    fake.chmod(0o755)
    shim = _shim(tmp_path, str(fake))
    assert shim.read_text().startswith(f"#!{sys.executable}\n")
    for verb in ("ask", "claim", "unclaim", "cost"):
        r = _pod(shim, verb, "x", LOOOP_HOME_URL="https://home.example")  # no token
        assert r.returncode == 3 and r.stdout == ""
        assert r.stderr.count("\n") == 1 and "cannot reach the home from this pod" in r.stderr
    for argv in (["told"], ["tell", "w2", "hi"], ["flag", "pw1"], ["kill", "pw1"]):
        r = _pod(shim, *argv)
        assert r.returncode == 0 and r.stdout == f"pod looop: {' '.join(argv)}\n"


@pytest.mark.parametrize(
    ("url", "ca", "says"),
    [
        ("ftp://home.example", "", "not an http(s) URL"),
        ("https://home.example:99999", "", "not a URL"),
        ("home.example", "", "not an http(s) URL"),
        ("https://home.example", "/nonexistent/ca.pem", "LOOOP_HOME_CA"),
    ],
)
def test_a_bad_way_home_is_one_line(tmp_path: Path, url: str, ca: str, says: str) -> None:
    shim = _shim(tmp_path, "/bin/false")
    env = {"LOOOP_HOME_URL": url, "LOOOP_HOME_TOKEN": "lw1.x"}
    if ca:
        env["LOOOP_HOME_CA"] = ca
    r = _pod(shim, "told", **env)
    assert r.returncode == 3 and says in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_a_boxs_proxy_url_is_read_as_srt_writes_it() -> None:
    """srt's user name is base64 with its `=` escaped: the door's credentials are the decoded
    ones, as the filter compares them (a wrong decoding is a 407 for every verb)."""
    import binascii

    from looop.remote.boxdoor import Proxy

    url = "http://srt.aEN3Wm9nLWJISnl1TzVOLVZYOTg4Zw%3D%3D:a6525e87538b@localhost:3128"
    p = Proxy({"HTTP_PROXY": url})
    assert (p.host, p.port) == ("localhost", 3128)
    sent = binascii.a2b_base64(p.auth.removeprefix("Basic ")).decode()
    assert sent == "srt.aEN3Wm9nLWJISnl1TzVOLVZYOTg4Zw==:a6525e87538b"
    for bad in ("", "socks5://u:t@h:1", "http://h:1", "http://u:t@h", "http://u:t@h:port"):
        with pytest.raises(ValueError, match="no proxy to reach looop's door"):
            Proxy({"HTTP_PROXY": bad})
