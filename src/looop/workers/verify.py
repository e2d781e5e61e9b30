"""Post-conditions: a worker's verify command runs once, on the first beat after it died."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from looop.core import store
from looop.core.config import Knobs
from looop.core.context import Ctx
from looop.sessions import Session


class ShellOutcome(Protocol):
    """What a verify command's run reports (act.shell.ShellResult has this shape)."""

    @property
    def exit_code(self) -> int | None: ...
    @property
    def timed_out(self) -> bool: ...
    @property
    def stdout(self) -> str: ...
    @property
    def stderr(self) -> str: ...


# The runner is handed in by the beat (act.shell.run_shell): workers sit below act.
RunShell = Callable[[Ctx, str, float], ShellOutcome]


def run_pending_verifies(
    ctx: Ctx, knobs: Knobs, sessions: list[Session], run: RunShell
) -> list[str]:
    """Run verify/<id>.cmd for dead workers without a result yet; the rest wait for the next
    beat once this beat's budget is spent. Returns the ids verified."""
    done: list[str] = []
    if not ctx.paths.verify.is_dir():
        return done
    dead = {s.id for s in sessions if not s.alive}
    started = ctx.clock.monotonic()
    timeout = float(knobs.num("verify_timeout_secs"))
    budget = float(knobs.num("verify_beat_budget_secs"))
    for cmd_file in sorted(ctx.paths.verify.glob("*.cmd")):
        wid = cmd_file.stem
        result = ctx.paths.verify / f"{wid}.json"
        if wid not in dead or result.exists():
            continue
        if ctx.clock.monotonic() - started > budget:
            break
        cmd = (store.read_text(cmd_file) or "").strip()
        r = run(ctx, cmd, timeout)
        ok = r.exit_code == 0 and not r.timed_out
        out = (r.stdout + ("\n" + r.stderr if r.stderr else "")).strip()[-2000:]
        store.write_json(
            result,
            {
                "v": 1,
                "ts": int(ctx.clock.now()),
                "cmd": cmd,
                "pass": ok,
                "exit_code": r.exit_code,
                "timed_out": r.timed_out,
                "output": out,
            },
        )
        ctx.events.emit(
            "ok" if ok else "warn",
            "worker.verify",
            f"verify {wid}: {'pass' if ok else 'FAIL'} ({cmd})",
            id=wid,
            passed=ok,
        )
        ctx.events.record("worker_verified", id=wid, passed=ok)
        done.append(wid)
    return done
