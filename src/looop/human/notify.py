"""The `notification` shell hook: tell a human, never block the beat, never splice text in."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
from typing import IO

from looop.core.context import Ctx

# A quoted placeholder is replaced whole, so `'{{message}}'` does not end up single-quoted.
_PLACEHOLDERS = {
    "{{message}}": '"$LOOOP_MESSAGE"',
    "{{id}}": '"$LOOOP_ID"',
}


def render_hook(hook: str) -> str:
    """The hook line with placeholders turned into variable references (the text goes via env)."""
    for placeholder, ref in _PLACEHOLDERS.items():
        for quoted in (f'"{placeholder}"', f"'{placeholder}'"):
            hook = hook.replace(quoted, ref)
        hook = hook.replace(placeholder, ref)
    return hook


def _failed(ctx: Ctx, notify_id: str, why: str) -> None:
    try:
        ctx.events.emit("warn", "notify.failed", f"notification hook failed: {why}", id=notify_id)
        ctx.events.record("notify_failed", id=notify_id, error=why)
    except Exception:
        pass


def _stderr_tail(f: IO[bytes]) -> str:
    try:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 400))
        text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return " ".join(text.split())[-200:]


def _watch(
    ctx: Ctx, proc: subprocess.Popen[bytes], err: IO[bytes], notify_id: str, timeout_s: float
) -> None:
    try:
        try:
            rc = proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            _failed(ctx, notify_id, f"timed out after {timeout_s:g}s and was killed")
            return
        if rc != 0:
            code = 128 - rc if rc < 0 else rc
            tail = _stderr_tail(err)
            _failed(ctx, notify_id, f"exited {code}" + (f": {tail}" if tail else ""))
    except Exception as e:
        _failed(ctx, notify_id, f"{type(e).__name__}: {e}")
    finally:
        err.close()


def fire_hook(ctx: Ctx, hook: str, message: str, notify_id: str, timeout_s: float = 30.0) -> None:
    """Start the hook in the background with LOOOP_MESSAGE/LOOOP_ID set; never raises or waits."""
    try:
        # The environment cannot carry NUL bytes; nothing a human reads needs them.
        extra = {
            "LOOOP_MESSAGE": message.replace("\x00", ""),
            "LOOOP_ID": notify_id.replace("\x00", ""),
        }
        err = tempfile.TemporaryFile(dir=ctx.paths.data)  # noqa: SIM115 — the watcher closes it
        try:
            proc = subprocess.Popen(
                ["bash", "-c", render_hook(hook)],
                cwd=ctx.paths.data,
                env=ctx.child_env(extra),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
        except BaseException:
            err.close()
            raise
        threading.Thread(
            target=_watch,
            args=(ctx, proc, err, notify_id, timeout_s),
            name="looop-notify-hook",
            daemon=True,
        ).start()
    except Exception as e:
        _failed(ctx, notify_id, f"could not start: {e}")
