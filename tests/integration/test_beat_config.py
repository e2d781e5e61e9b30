"""One beat, one config: the file is read once per beat, and an edit mid-beat waits for the next."""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from looop.core import context
from looop.core.context import Ctx
from looop.home.config import Config
from looop.loop.tick import tick
from tests.helpers import events, wire

pytestmark = pytest.mark.timeout(60)

# Run by the runner before it decides: a deny pattern that refuses the move it is about to pick.
_EDIT = """
import json, os, sys
path = os.environ["LOOOP_CONFIG"]
cfg = json.load(open(path))
cfg["shell_policy"] = {"mode": "tripwire", "deny": ["moved"]}
open(path, "w").write(json.dumps(cfg))
"""


def _edit_then_decide(ctx: Ctx, steps: list[dict[str, object]]) -> None:
    """Wire the scripted runner behind a step that rewrites the config mid-beat."""
    wire(ctx, steps)
    editor = ctx.paths.data.parent / "edit_config.py"
    editor.write_text(_EDIT)
    cfg = json.loads(ctx.paths.config.read_text())
    scripted = cfg["runners"]["scripted"]
    scripted["tick"] = f"{shlex.quote(sys.executable)} {shlex.quote(str(editor))} && " + str(
        scripted["tick"]
    )
    ctx.paths.config.write_text(json.dumps(cfg))


def test_a_config_edit_mid_beat_waits_for_the_next_beat(ctx: Ctx) -> None:
    shell = {"action": "run_shell", "cmd": "echo moved > moved.txt", "reason": "move"}
    again = {"action": "run_shell", "cmd": "echo moved > again.txt", "reason": "again"}
    _edit_then_decide(ctx, [{"decision": shell}, {"decision": again}])

    out = tick(ctx)
    # the move ran under the config the beat read, not the deny pattern written meanwhile
    assert out.status == "decided", out.error
    assert (ctx.paths.data / "moved.txt").read_text() == "moved\n"
    assert "moved" in json.loads(ctx.paths.config.read_text())["shell_policy"]["deny"]

    out = tick(ctx, force=True)
    # the next beat reads the edited file: the same kind of move is now refused
    assert out.status == "failed"
    assert "deny pattern `moved` matches" in (out.error or "")
    assert not (ctx.paths.data / "again.txt").exists()


@pytest.mark.parametrize(
    ("decision", "status", "notified"),
    [
        ({"action": "run_shell", "cmd": "true", "reason": "look"}, "decided", None),
        ({"action": "send_notification", "message": "hello", "id": "hi"}, "decided", "hi"),
        ({"action": "run_shell", "cmd": "exit 3", "reason": "fail"}, "failed", "failures"),
    ],
)
def test_a_beat_reads_the_config_once(
    ctx: Ctx,
    monkeypatch: pytest.MonkeyPatch,
    decision: dict[str, object],
    status: str,
    notified: str | None,
) -> None:
    """Sensing, the sessions probe, pricing, the shell policy, the notification hook (the move's
    or the failure alert's) and the knobs share one read."""
    marker = ctx.paths.data.parent / "notified"
    hook = f'echo "$LOOOP_ID" >> {shlex.quote(str(marker))}'
    wire(ctx, [{"decision": decision}], notification=hook, notify_failure_streak=1)
    reads: list[Path] = []
    real = context.load_config

    def counted(path: Path, default: Mapping[str, Any] | None = None) -> Config:
        reads.append(path)
        return real(path, default)

    monkeypatch.setattr(context, "load_config", counted)
    out = tick(ctx)
    assert out.status == status, out.error
    assert reads == [ctx.paths.config]
    if notified is not None:  # the hook came from that one read (it runs in the background)
        assert _wait_for_line(marker) == notified


def _wait_for_line(path: Path, timeout: float = 20.0) -> str:
    """The first line the background hook wrote (polled: its process is not ours to wait on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().endswith("\n"):
            return path.read_text().splitlines()[0]
        time.sleep(0.05)
    raise AssertionError(f"nothing in {path} after {timeout}s")


def test_a_broken_config_is_said_once_where_knobs_are_read(ctx: Ctx) -> None:
    """Ctx.knobs() without a config reads the file: broken, it says so and the defaults stand."""
    ctx.paths.config.write_text("{not json")
    knobs = ctx.knobs()
    assert knobs.values == ctx.default_knobs().values
    assert events(ctx).count("config.warn") == 1
    ctx.knobs()
    assert events(ctx).count("config.warn") == 1  # said once per process, not per read
    line = ctx.events.stream.getvalue()  # type: ignore[attr-defined]
    assert str(ctx.paths.config) in line and "not valid JSON" in line


def test_a_beat_on_a_broken_config_reports_it_as_its_error(ctx: Ctx) -> None:
    """The beat runs on the default knobs and reports the config itself (no extra warning)."""
    ctx.paths.config.write_text("{not json")
    out = tick(ctx)
    assert out.status == "error" and "not valid JSON" in (out.error or "")
    assert "tick.error" in events(ctx) and "config.warn" not in events(ctx)
    assert not ctx.paths.backoff.exists()
