"""A host's sessions behind the `Backend` interface, for the views of workers away from home
(the web view, `looop watch`) without SSH: a second sessions root read through the very
`LocalBackend` a home uses, which can be made to stop answering or to answer slowly."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.workers import polled
from looop.workers.backend import LocalBackend, Reach
from looop.workers.review import Review
from tests.clocks import FixedClock


class FarHost:
    """`down` makes it stop answering, as a host cut off does (reach says unreachable, every
    other call fails); `gate`, cleared, holds every call until it is set again (a slow host)."""

    kind = "fake"

    def __init__(self, root: Path, ctx: Ctx | None = None) -> None:
        # `ctx`: the host's own home (its data dir `root`), whose workers' changes it reads
        self.inner = LocalBackend(root, FixedClock(), ctx)
        self.down = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self.calls: list[str] = []

    def _check(self, op: str) -> None:
        self.calls.append(op)
        self.gate.wait(30)
        if self.down.is_set():
            raise LooopError("host far does not answer: Connection timed out")

    def start(self, spec: Any) -> Any:
        raise NotImplementedError

    def reach(self, sid: str) -> Reach:
        self.calls.append("reach")
        if self.down.is_set():
            return "unreachable"
        return self.inner.reach(sid)

    def look(self, sid: str) -> Reach:
        return self.reach(sid)  # a far worker is known by the home's record of it

    def known(self, sid: str) -> None:
        self.calls.append("known")  # by the home's record: the host is not asked

    def output(self, sid: str, since: int | None, most: int) -> tuple[int, int, bytes]:
        return polled.Polled.output(self, sid, since, most)  # type: ignore[arg-type]

    def diff(self, sid: str) -> dict[str, Any]:
        self._check("diff")
        return self.inner.diff(sid)

    def review(self, sid: str) -> Review:
        self._check("review")
        return self.inner.review(sid)

    def change(self, sid: str, ways: Any) -> Any:
        # a host this home does not know: the change is read as here, which says where it works
        return ways.here(sid)

    def tail(self, sid: str, lines: int | None, raw: bool, grep: str | None) -> str:
        return polled.tail(self, sid, lines, raw, grep)  # type: ignore[arg-type]

    def screen(self, sid: str, fmt: str = "plain", trim: bool = True) -> dict[str, Any]:
        self._check("screen")
        return self.inner.screen(sid, fmt, trim)

    def log(self, sid: str, since: int = 0, raw: bool = False) -> tuple[str, int]:
        self._check("log")
        return self.inner.log(sid, since, raw)

    def send(self, sid: str, text: str | bytes, newline: bool = True) -> dict[str, Any]:
        self._check("send")
        return self.inner.send(sid, text, newline)

    def key(self, sid: str, names: Sequence[str]) -> dict[str, Any]:
        self._check("key")
        return self.inner.key(sid, names)

    def wait(self, sid: str, timeout_s: float | None) -> int:
        self._check("wait")
        return self.inner.wait(sid, timeout_s)

    def kill(self, sid: str) -> dict[str, Any]:
        self._check("kill")
        return self.inner.kill(sid)

    def exit_status(self, sid: str) -> int | None:
        self._check("exit_status")
        return self.inner.exit_status(sid)
