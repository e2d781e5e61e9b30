"""The `notification` shell hook: tell a human, never block the beat, never splice text in."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import tempfile
import threading
from typing import IO, Any
from urllib.parse import quote

from looop.core.context import Ctx
from looop.core.webconfig import public_url
from looop.home import store, where
from looop.home.config import Config, need_extra
from looop.home.errors import CorruptState, LooopError
from looop.home.hookline import HookLineError, hook_line
from looop.home.knobs import env_knob
from looop.views.needs import Need, worker_needs
from looop.views.workerrows import OVER_BUDGET


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
    """Start the hook in the background with LOOOP_MESSAGE/LOOOP_ID set; never raises or waits.
    A placeholder that is not a whole shell word (home/hookline) is refused, never run."""
    try:
        line = hook_line(hook)
        # The environment cannot carry NUL bytes; nothing a human reads needs them.
        extra = {
            "LOOOP_MESSAGE": message.replace("\x00", ""),
            "LOOOP_ID": notify_id.replace("\x00", ""),
        }
        err = tempfile.TemporaryFile(dir=ctx.paths.data)  # noqa: SIM115 — the watcher closes it
        try:
            proc = subprocess.Popen(
                ["bash", "-c", line],
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
    except HookLineError as e:
        _failed(ctx, notify_id, f"refused, not run: {e}")
    except Exception as e:
        _failed(ctx, notify_id, f"could not start: {e}")


class _Send(threading.Thread):
    """One apprise send, in a daemon thread so it never holds the beat up. Exactly one of
    notify_delivered / notify_failed is recorded for it: by the thread when the send ends, or
    by `drain` when the process ends first."""

    def __init__(self, ctx: Ctx, urls: list[str], title: str, body: str, notify_id: str) -> None:
        super().__init__(name="looop-notify", daemon=True)
        self.ctx, self.urls, self.notify_id = ctx, urls, notify_id
        self.title, self.body = title, body
        self._settled = threading.Lock()
        self._done = False

    def settle(self, error: str | None) -> None:
        with self._settled:
            if self._done:
                return
            self._done = True
        try:
            if error is None:
                self.ctx.events.record("notify_delivered", id=self.notify_id, urls=len(self.urls))
                return
            self.ctx.events.emit(
                "warn", "notify.failed", f"notification not delivered: {error}", error=error
            )
            self.ctx.events.record("notify_failed", id=self.notify_id, error=error, via="apprise")
        except Exception:
            pass  # a notification must never take anything down

    def run(self) -> None:
        try:
            _apprise_send(self.urls, self.title, self.body)
        except Exception as e:
            self.settle(str(e))
        else:
            self.settle(None)


def _apprise_send(urls: list[str], title: str, body: str) -> None:
    """apprise (and its ~0.2 s import) runs in the _Send thread, never in the beat."""
    apprise = need_extra("notify", "the config's notify_urls")  # ~0.2 s, in this thread

    ap = apprise.Apprise()
    for u in urls:
        if not ap.add(u):
            raise ValueError(f"apprise does not understand the URL {u.split('://')[0]}://…")
    try:
        # each service's own send, here in this daemon thread: Apprise.notify hands them to its
        # pool, whose threads interpreter exit joins, so a hanging endpoint held a one-shot
        # command for the endpoint's whole timeout, past the drain bound
        sent = [service.notify(body=body, title=title) for service in ap]
        if not all(sent):
            raise RuntimeError("apprise reported a failed delivery")
    finally:
        _close_apprise_pools(apprise)


def drain() -> None:
    """At process exit: wait for the sends still on their way, LOOOP_NOTIFY_DRAIN_SECS at most
    for all together (a one-shot `looop tick`/`run`/`ask` would otherwise drop them with its
    daemon threads); record the ones that did not finish as not delivered. Finds them among the
    live threads, so no module keeps a list."""
    sends = [t for t in threading.enumerate() if isinstance(t, _Send)]
    if not sends:
        return
    clock = sends[0].ctx.clock
    bound_s = float(env_knob("notify_drain_secs", sends[0].ctx.env))
    deadline = clock.monotonic() + bound_s
    for t in sends:
        t.join(max(0.0, deadline - clock.monotonic()))
        if t.is_alive():
            t.settle(f"not delivered: the process ended before the send finished ({bound_s:g}s)")


def _close_apprise_pools(apprise: Any) -> None:
    """apprise keeps its worker pools alive after a send; their idle threads would keep the
    pulse from ever being single-threaded again, and sensors start through posix_spawn only in
    a single-threaded process (core/proc). The last notifier thread standing shuts them down
    (apprise makes new ones on its next send). Best effort: other apprise versions lack them."""
    me = threading.current_thread()
    if any(t.name == me.name and t is not me for t in threading.enumerate()):
        return  # another notification is still on its way through the same pools
    module = getattr(apprise, "apprise", None)
    for name in ("_coordinator_executor", "_shared_executor"):
        pool = getattr(module, name, None)
        if pool is None or not hasattr(pool, "shutdown"):
            continue
        try:
            setattr(module, name, None)
            pool.shutdown(wait=True)
        except Exception:
            pass


def web_link(raw: dict[str, Any], kind: str, notify_id: str) -> str | None:
    """The dashboard address of an ask when the config names the web face's public URL
    (`"web": {"url": "https://…"}`). Never the token: a notification service sees the text."""
    url = public_url(raw) if kind == "ask" and notify_id else None
    if url is None:
        return None

    return f"{url.rstrip('/')}/#ask={quote(notify_id, safe='')}"


def notify(
    ctx: Ctx,
    message: str,
    notify_id: str = "",
    kind: str = "notification",
    cfg: Config | None = None,
) -> None:
    """Tell the human: the `notification` hook and every `notify_urls` entry (apprise: ntfy,
    Slack, Telegram, email, desktop, …). In the background, bounded, never raises. `cfg`: the
    beat's config (None reads the file; an unreadable one has no hook to call)."""
    try:
        raw = (cfg if cfg is not None else ctx.config()).raw
    except LooopError:
        return
    link = web_link(raw, kind, notify_id)
    if link:
        message = f"{message}\nopen: {link}"
    hook = raw.get("notification")
    if isinstance(hook, str) and hook.strip():
        fire_hook(ctx, hook, message, notify_id)
    urls = [u for u in raw.get("notify_urls") or [] if isinstance(u, str) and u.strip()]
    if urls:
        title = f"looop · {kind}" + (f" · {notify_id}" if notify_id else "")
        atexit.unregister(drain)  # once per process, however many sends
        atexit.register(drain)
        ctx.events.record("notified", kind=kind, id=notify_id, urls=len(urls))
        _Send(ctx, urls, title, message, notify_id).start()


# ---- Telling the human once as something joins the needs-you queue (home/needs): a worker at
# its CLI's approval prompt or idle at its input box, at its provider's usage limit, paused at
# a bound, or a start held for a usage window; here or on an SSH or Kubernetes host alike. Once
# per entry, never per beat: the queue's refs told are latched in TOLD until they leave the
# queue (entering again tells again). Two kinds are told where they happen, not here: an ask as
# it is made (cli/mailbox, workers/review) and a worker paused at its spend budget
# (loop/workmeter, with what it spent).

TOLD = ".needs-told.json"  # in <data>: the queue's refs the human was told about (latch)
SCREEN = ("approval", "idle", "input")  # the needs-input kinds (a verdict on the screen)


def _told_at_source(n: Need, rows: dict[str, dict[str, Any]]) -> bool:
    """A spend budget's pause is told by the meter as it holds the worker (its spend and
    budget in the words); a bound's pause (disk) is told here."""
    return n.kind == "budget" and (rows.get(n.worker) or {}).get("health") == OVER_BUDGET


def to_tell(data: str, items: list[Need]) -> list[Need]:
    """The items not told yet: latched in TOLD by ref until they leave the queue, so a
    redraw or the next beat never tells again; a lost latch tells once more."""
    path = where.join(data, TOLD)
    try:
        told = store.read_json_object(path) or {}
    except CorruptState:
        told = {}
    now_in = {n.ref: n for n in items}
    new = [n for ref, n in sorted(now_in.items()) if ref not in told]
    keep = {ref: said for ref, said in told.items() if ref in now_in}
    keep.update({n.ref: n.what for n in new})
    if keep != told:
        try:
            if keep:
                store.write_json(path, keep)
            else:
                store.remove(path)
        except OSError:
            pass  # cannot latch: telling again beats staying silent
    return new


def _say(ctx: Ctx, cfg: Config | None, n: Need, row: dict[str, Any]) -> None:
    """One notification (and, for the beat's own verdicts, its event) for a new entry."""
    who = f"{n.worker}@{n.host}" if n.host else n.worker
    if n.kind in SCREEN:
        said = row.get("needs_input")
        msg = f"worker {who} needs input: {said or 'its screen waits'}"
        ctx.events.emit("warn", "worker.needs_input", msg, id=n.worker)
        ctx.events.record("worker_needs_input", id=n.worker, said=said)
        notify(ctx, f"{msg}\nanswer: {n.answer}", n.worker, "needs-input", cfg)
        return
    if n.kind == "limited":
        health = row.get("health")
        msg = f"worker {who} is {health}: it goes on by itself then (looop needs)"
        ctx.events.emit("warn", "worker.limited", msg, id=n.worker)
        ctx.events.record("worker_limited", id=n.worker, health=health)
        notify(ctx, msg, n.worker, "limited", cfg)
        return
    # a bound's pause, a held start: their events were said where they happened
    notify(ctx, f"worker {who}: {n.what}\nanswer: {n.answer}", n.worker, n.kind, cfg)


def tell_needs(ctx: Ctx, cfg: Config | None, rows: list[dict[str, Any]]) -> int:
    """After the beat sensed (`rows`: the fleet as its sys-sessions reading and the held
    starts say it): notify once per entry that joined the queue; how many were told."""
    by_id = {str(r.get("id")): r for r in rows}
    items = [n for n in worker_needs(rows) if not _told_at_source(n, by_id)]
    new = to_tell(str(ctx.paths.data), items)
    for n in new:
        _say(ctx, cfg, n, by_id.get(n.worker) or {})
    return len(new)
