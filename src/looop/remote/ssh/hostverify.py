"""A remote worker's verify, run on its host once it is over (the satellite's `verify` op),
in the worker's workspace; the home brings the result home (run_far, into the same
verify/<id>.json a worker here gets: workers/verify.py).

Once, across links that drop: each worker's run has a folder `<satellite>/verify/<id>/`
with `req.json` (written when the run starts), `lock` (held by the run while it lives),
`pid` and, once it is done, `result.json` (written whole). The run is a process of its own
session (`python -m looop.remote.ssh.hostverify DIR`), so an ssh connection that drops
mid-run never cuts it:

- asked again after the run ended: the stored result, never a second run;
- asked while it runs (the last asker gave up, or its link dropped): it is waited on;
- a run that died without a result (the host went down under it) is not started again: its
  result says so, as a failure.

A new worker of the same id ends the last one's run and removes its folder (`forget`)."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from looop.core.context import Ctx
from looop.core.pool import Pool, Run
from looop.core.proc import Kind, Tail, spawn
from looop.core.procs import Containment
from looop.home import locks, store
from looop.home.clock import Clock, SystemClock
from looop.home.errors import CorruptState, LooopError
from looop.home.sandboxpolicy import SandboxPolicy
from looop.home.sessionfiles import remove_tree
from looop.home.where import sandboxed
from looop.remote import hosts as reg
from looop.remote import untrusted
from looop.remote.hosts import HostError
from looop.remote.ssh import boxed
from looop.remote.ssh.link import Unreachable, link
from looop.sandbox import worker as sbx
from looop.sessions.state import SessionError, get_session, validate_id
from looop.workers import treerecord
from looop.workers.boxed import verify_argv
from looop.workers.verify import confined, record

DIR = "verify"
TAIL_CHARS = 4000
_TAIL_BYTES = TAIL_CHARS * 4
OUTPUT_CHARS = 2000  # what the home keeps of a verify's output (workers/verify.py)
EXIT_GRACE_S = 0.5
POLL_S = 0.1
MAX_WAIT_S = 600.0
CUT = (
    "the verify run on this host ended without a result (the host went down under it?) — "
    "not run again"
)


def run_dir(root: Path, sid: str) -> Path:
    return root / DIR / sid


def workspace(ctx: Ctx, sid: str, room: Path | None = None) -> Path:
    """Where the worker ran: its worktree or clone while it has one, else `room` (a boxed
    worker's: its room's work/) or work/<id>."""
    tree = treerecord.load(ctx, sid)
    if tree is not None and not tree.removed:
        return Path(tree.path)
    return room if room is not None else ctx.paths.data / "work" / sid


def stored(d: Path) -> dict[str, Any] | None:
    try:
        return store.read_json_object(d / "result.json")
    except (CorruptState, OSError):
        return None


def _pid(d: Path) -> int | None:
    raw = (store.read_text(d / "pid") or "").strip()
    return int(raw) if raw.isdecimal() else None


def forget(root: Path, sid: str) -> None:
    """The last worker of this id is gone for good: a run of its verify still going is
    ended (its whole group), its folder removed."""
    d = run_dir(root, sid)
    if not d.is_dir():
        return
    pid = _pid(d)
    if pid is not None and locks.flock_held(d / "lock"):
        try:
            os.killpg(pid, signal.SIGKILL)  # it leads its own session: the group is its own
        except (ProcessLookupError, PermissionError):
            pass
    remove_tree(os.fspath(d))


def _alive(root: Path, sid: str) -> bool:
    try:
        return get_session(root, sid).alive
    except SessionError:
        return False


def _begin(ctx: Ctx, sid: str, cmd: str, timeout_s: float, box: bool = False) -> dict[str, Any]:
    """The state of `sid`'s verify, its run started when it is due and never started yet.
    `box`: the home knows the worker ran sandboxed (its verify never runs outside the box)."""
    root = ctx.paths.data
    if _alive(root, sid):
        return {"state": "alive"}
    d = run_dir(root, sid)
    got = stored(d)
    if got is not None:
        return {"state": "done", **got}
    fd = locks.try_flock(d / "lock")
    if fd is None:
        return {"state": "running"}  # a run in flight holds it
    try:
        got = stored(d)
        if got is not None:
            return {"state": "done", **got}
        if (d / "req.json").exists():  # started once, and died without a result
            return {"state": "done", **_store(d, cmd, None, False, CUT)}
        where = workspace(ctx, sid)
        env = {k: v for k, v in ctx.env.items() if not k.startswith("LOOOP_")}
        env.update(LOOOP_DATA_DIR=str(root), LOOOP_SESSION_ID=sid, LOOOP_WORKSPACE=str(where))
        boxed: dict[str, Any] = {}
        if box or sandboxed(str(root), sid):  # it ran inside srt here: so does its verify
            try:
                argv, env, where = _in_box(ctx, sid, cmd, env)
            except LooopError as e:
                store.write_json(d / "req.json", {"v": 1, "cmd": cmd, "cwd": str(where)})
                return {"state": "done", **_store(d, cmd, None, False, str(e))}
            boxed = {"argv": argv}
        store.write_json(
            d / "req.json",
            {"v": 1, "cmd": cmd, "cwd": str(where), "timeout": timeout_s, **boxed},
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "looop.remote.ssh.hostverify", str(d)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=str(root),
            pass_fds=(fd,),  # the run holds the lock for as long as it lives
            start_new_session=True,  # a dropped link (or a ^C) never cuts it
        )
        store.atomic_write(d / "pid", f"{proc.pid}\n", durable=False)
    finally:
        os.close(fd)
    return {"state": "running"}


def _in_box(
    ctx: Ctx, sid: str, cmd: str, env: dict[str, str]
) -> tuple[list[str], dict[str, str], Path]:
    """A sandboxed worker's verify as at home (workers/boxed.verify_argv: its walls built again
    from its start record), run in its workspace; srt itself starts in the data dir."""

    where = workspace(ctx, sid, Path(sbx.room(ctx, sid)) / "work")
    env["LOOOP_WORKSPACE"] = str(where)
    line = f"cd -- {shlex.quote(str(where))} || exit 1; {cmd}"
    argv, child = verify_argv(ctx, sbx.WorkerBox(sid), line, boxed.srt_env(env))
    return argv, child, where


def _store(d: Path, cmd: str, code: int | None, timed_out: bool, output: str) -> dict[str, Any]:
    result = {
        "cmd": cmd,
        "pass": code == 0 and not timed_out,
        "exit_code": code,
        "timed_out": timed_out,
        "output": output.strip()[-OUTPUT_CHARS:],
    }
    store.write_json(d / "result.json", result)
    return result


def verify(ctx: Ctx, req: dict[str, Any]) -> dict[str, Any]:
    """The `verify` op: {"runs": [{"id", "cmd"}…], "timeout": s, "wait": s} -> each id's
    state (alive | running | done with its result), waiting up to `wait` s for runs to end."""
    runs, timeout, wait = req.get("runs"), req.get("timeout"), req.get("wait", 0)
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        raise LooopError("a verify needs runs: [{id, cmd}]")
    if not isinstance(timeout, int | float) or not isinstance(wait, int | float):
        raise LooopError("a verify needs a timeout and a wait in seconds")
    asked: dict[str, str] = {}
    boxes: set[str] = set()
    for r in runs:
        sid, cmd = r.get("id"), r.get("cmd")
        if not isinstance(sid, str) or not isinstance(cmd, str) or not cmd.strip():
            raise LooopError("each verify run needs an id and a command")
        asked[validate_id(sid)] = cmd.strip()
        if r.get("box") is True:
            boxes.add(sid)
    out = {sid: _begin(ctx, sid, cmd, float(timeout), sid in boxes) for sid, cmd in asked.items()}
    clock = ctx.clock
    end = clock.monotonic() + min(max(0.0, float(wait)), MAX_WAIT_S)
    while any(s["state"] == "running" for s in out.values()) and clock.monotonic() < end:
        time.sleep(POLL_S)
        for sid, s in out.items():
            if s["state"] == "running":
                got = stored(run_dir(ctx.paths.data, sid))
                if got is not None:
                    out[sid] = {"state": "done", **got}
                elif not locks.flock_held(run_dir(ctx.paths.data, sid) / "lock"):
                    out[sid] = _begin(ctx, sid, asked[sid], float(timeout), sid in boxes)
    return {"verify": out}


# -- the home's side: verifies of workers on SSH hosts, brought home (workers/verify.py)

# What a host may add to the verify timeout before its answer counts as late: starting the
# run and the round trip.
HOST_SLACK_S = 15.0


def run_far(
    ctx: Ctx,
    far: list[tuple[str, str]],
    timeout: float,
    left: float,
    sandbox: SandboxPolicy | None,
) -> list[str]:
    """Verifies of workers on SSH hosts that the home has seen over: one call per host, all
    its due workers at once, waiting at most what is left of the beat's budget (a run not
    done by then is asked again next beat: the host never runs it twice). A decision's verify
    that would run sandboxed here fails unrun there (srt's walls for run_shell are this
    machine's), unless the worker ran sandboxed there: then its host runs it in the worker's
    own walls, whoever wrote it, as a sandboxed worker's verify runs here."""
    done: list[str] = []
    by_host = _by_host(ctx, far, sandbox, done)
    started = ctx.clock.monotonic()
    for host, runs in sorted(by_host.items()):
        wait = min(timeout + HOST_SLACK_S, left - (ctx.clock.monotonic() - started))
        if wait <= 0:
            break
        done += _verify_on(ctx, host, runs, timeout, wait)
    return done


def _by_host(
    ctx: Ctx, far: list[tuple[str, str]], sandbox: SandboxPolicy | None, done: list[str]
) -> dict[str, list[tuple[str, str, bool]]]:
    """The verifies to ask each host for (worker, command, in its walls); one refused here
    (sandboxed by policy, not by its worker) is recorded failed and added to done."""
    data = ctx.paths.data
    by_host: dict[str, list[tuple[str, str, bool]]] = {}
    for wid, cmd in far:
        rec = reg.record(data, wid)
        if rec is None or not rec.get("over") or not cmd:
            continue  # not a remote worker, or not seen over yet
        if reg.host_kind(data, rec["host"]) == reg.K8S:
            continue  # a Kubernetes start refuses --verify: nothing of ours to run there
        boxed = rec.get("sandboxed") is True  # its host runs the verify in its walls
        if not boxed and confined(ctx, wid, cmd, sandbox):
            why = (
                f"not run on host {rec['host']}: a decision's verify runs only under "
                "shell_policy's sandbox, which runs on this machine only"
            )
            record(ctx, wid, cmd, False, None, False, why, rec["host"])
            done.append(wid)
            continue
        by_host.setdefault(rec["host"], []).append((wid, cmd, boxed))
    return by_host


def _verify_on(
    ctx: Ctx, host: str, runs: list[tuple[str, str, bool]], timeout: float, wait: float
) -> list[str]:
    """One call to host for all its runs; the workers whose verify finished (or cannot run
    there), each recorded."""
    done: list[str] = []
    req = {"runs": [{"id": w, "cmd": c, "box": b} for w, c, b in runs], "timeout": timeout}
    req["wait"] = wait
    try:
        got = link(ctx, host).call("verify", req, timeout=wait + HOST_SLACK_S)
    except Unreachable:
        return done  # waits for the host to answer again: a later beat asks once more
    except HostError as e:  # it answered, and cannot run it (no looop, an older one)
        for wid, cmd, _ in runs:
            record(ctx, wid, cmd, False, None, False, f"host {host}: {e}", host)
            done.append(wid)
        return done
    states = got.get("verify")
    states = states if isinstance(states, dict) else {}
    for wid, cmd, _ in runs:
        st = states.get(wid)
        if not isinstance(st, dict) or st.get("state") != "done":
            continue  # alive again (a new worker of this id), or still running
        passed, timed_out = bool(st.get("pass")), bool(st.get("timed_out"))
        code, out = untrusted.exit_code(st.get("exit_code")), str(st.get("output") or "")
        record(ctx, wid, cmd, passed, code, timed_out, out[-OUTPUT_CHARS:], host)
        done.append(wid)
    return done


# -- the run itself, in a process of its own ------------------------------------------------


def run(d: Path, env: dict[str, str], clock: Clock) -> dict[str, Any]:
    """Run req.json's command once, as run_shell does at home (bash -c, a deadline, the
    process group killed, nothing it started left behind, bounded tails) in its cwd; the
    result written whole."""
    req = store.read_json_object(d / "req.json") or {}
    cmd, cwd, timeout = str(req.get("cmd", "")), str(req.get("cwd", "")), req.get("timeout")
    limit = float(timeout) if isinstance(timeout, int | float) else 0.0
    if not os.path.isdir(cwd):
        return _store(d, cmd, None, False, f"the worker's workspace {cwd} is gone")
    given = req.get("argv")
    boxed = isinstance(given, list) and bool(given) and all(isinstance(a, str) for a in given)
    argv: list[str] = [str(a) for a in given] if boxed and given else ["bash", "-c", cmd]
    here = d.parent.parent if boxed else Path(cwd)  # srt starts in the data dir, as at home
    with Containment(clock) as contain:
        token = contain.token()
        started = clock.monotonic()
        try:
            proc = spawn(argv, cwd=here, env=env, contain=contain, token=token)
        except OSError as e:
            return _store(d, cmd, None, False, f"cannot run bash: {e.strerror}")
        deadline = started + limit if limit > 0 else None
        one = Run(proc, deadline, Tail(_TAIL_BYTES), Tail(_TAIL_BYTES), started=started)
        pool = Pool(clock, EXIT_GRACE_S, kill_orphans=False)
        try:
            pool.add(one)
            for _ in pool.finished():
                pass
        finally:
            pool.abandon()
        contain.close()
    ended = one.exit()
    timed_out = ended.kind is Kind.TIMEOUT
    out, err = one.out.text(TAIL_CHARS), one.err.text(TAIL_CHARS)
    text = out + ("\n" + err if err else "")
    if timed_out:
        text += f"\nlooop: the verify ran past its {limit:g}s and was killed"
    return _store(d, cmd, None if timed_out else ended.code, timed_out, text)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        return 2
    run(Path(argv[0]), dict(os.environ), SystemClock())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
