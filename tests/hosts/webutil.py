"""`looop web` on the lab's home data dir, a real process, called as a script calls it."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.hosts.conftest import LOOOP, Home
from tests.hosts.util import home_env


class Web:
    """`looop web` on the home data dir, called as a script calls it (Bearer, no Origin)."""

    def __init__(self, base: str, token: str, url: str = "") -> None:
        self.base, self.token, self.url = base, token, url

    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 60
    ) -> tuple[int, Any]:
        req = urllib.request.Request(
            f"{self.base}/api/v1{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def first_screen(self, wid: str) -> dict[str, Any]:
        req = urllib.request.Request(
            f"{self.base}/api/v1/sessions/{wid}/screen/stream",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        with urllib.request.urlopen(req, timeout=60) as r:
            for raw in r:
                line = raw.decode()
                if line.startswith("data: {"):
                    return dict(json.loads(line[6:]))
        raise AssertionError("the screen stream ended without a screen")


@contextmanager
def serve(data: Path) -> Iterator[Web]:
    """`looop web` of the home at `data`, with its URL (which carries the token) and token."""
    p = subprocess.Popen(
        [str(LOOOP), "web", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=home_env(data),
        cwd=str(data.parent),
        start_new_session=True,
    )
    try:
        assert p.stdout is not None
        url = p.stdout.readline().strip()
        m = re.match(r"(http://[^/]+)/\?token=(\S+)$", url)
        assert m, (url, p.stderr.read() if p.poll() is not None and p.stderr else "")
        yield Web(m.group(1), m.group(2), url)
    finally:
        p.terminate()
        p.communicate(timeout=30)


@pytest.fixture(name="web")
def web_server(home: Home) -> Iterator[Web]:
    """The server, with its URL (which carries the token) and token."""
    with serve(home.data) as web:
        yield web
