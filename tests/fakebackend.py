"""A `Backend` that only records what it is asked, to prove a verb or a move reaches a worker
through the one lookup (`backend_for`) rather than deciding local or remote itself."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from looop.workers.backend import Reach
from looop.workers.review import Review, Verify


class FakeBackend:
    kind = "fake"

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def start(self, spec: Any) -> Any:
        raise NotImplementedError

    def reach(self, sid: str) -> Reach:
        self.calls.append(("reach", sid))
        return "alive"

    def look(self, sid: str) -> Reach:
        self.calls.append(("look", sid))
        return "alive"

    def known(self, sid: str) -> None:
        self.calls.append(("known", sid))

    def output(self, sid: str, since: int | None, most: int) -> tuple[int, int, bytes]:
        self.calls.append(("output", sid, since, most))
        return 0, 0, b""

    def diff(self, sid: str) -> dict[str, Any]:
        self.calls.append(("diff", sid))
        return {"id": sid, "diff": "fake diff", "cut": False}

    def review(self, sid: str) -> Review:
        self.calls.append(("review", sid))
        return Review(
            wid=sid, repo="/src/app", branch=f"looop/{sid}", base="a" * 40, tip="b" * 40,
            commits=(), files=(), verify=Verify("none"), summary="", summary_from="",
            uncommitted=None, moved=False, rounds=(), since_last=(),
        )  # fmt: skip

    def resize(self, sid: str, cols: int, rows: int) -> dict[str, Any]:
        self.calls.append(("resize", sid, cols, rows))
        return {"cols": cols, "rows": rows}

    def detach(self, sid: str) -> dict[str, Any]:
        self.calls.append(("detach", sid))
        return {"detached": True, "clients": 1}

    def attach(
        self, sid: str, passthrough: bool, env: Mapping[str, str], detach_keys: str = ""
    ) -> int:
        self.calls.append(("attach", sid, passthrough))
        return 0

    def screen(self, sid: str, fmt: str = "plain", trim: bool = True) -> dict[str, Any]:
        self.calls.append(("screen", sid, fmt, trim))
        return {"text": "fake screen", "cursor": [0, 0], "size": [80, 24]}

    def log(self, sid: str, since: int = 0, raw: bool = False) -> tuple[str, int]:
        self.calls.append(("log", sid, since, raw))
        return "", since

    def offset_at(self, sid: str, when: float) -> int:
        self.calls.append(("offset_at", sid, when))
        return 0

    def send(self, sid: str, text: str | bytes, newline: bool = True) -> dict[str, Any]:
        self.calls.append(("send", sid, text, newline))
        return {"sent": len(text), "offset": 0}

    def key(self, sid: str, names: Sequence[str]) -> dict[str, Any]:
        self.calls.append(("key", sid, list(names)))
        return {"sent": len(names), "offset": 0}

    def wait(self, sid: str, timeout_s: float | None) -> int:
        self.calls.append(("wait", sid, timeout_s))
        return 3

    def kill(self, sid: str) -> dict[str, Any]:
        self.calls.append(("kill", sid))
        return {"killed": sid}

    def restart(self, sid: str) -> dict[str, Any]:
        self.calls.append(("restart", sid))
        return {"restarting": sid}

    def exit_status(self, sid: str) -> int | None:
        return None

    def pause(self, sid: str) -> bool:
        self.calls.append(("pause", sid))
        return True

    def go_on(self, sid: str) -> bool:
        self.calls.append(("go_on", sid))
        return True
