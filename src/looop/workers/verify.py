"""Post-conditions: a worker's verify command runs once, on the first beat after it died.

A worker that ran sandboxed is verified inside its own sandbox, whoever wrote the verify: it
runs the worker's code (a Makefile, a conftest.py, a script), so it gets the worker's walls and
no more (workers/sandbox.verify_argv); where srt cannot run, it fails unrun. Otherwise a
decision's verify runs under shell_policy's sandbox and a human's as configured.

A worker on an SSH host is verified there, in its workspace (workers/ssh/hostverify.py),
once the home has seen it over (its record in hosts/workers/); the result comes home to the
same verify/<id>.json. A host out of reach leaves it pending for a later beat: the host runs
it once and keeps its result until it is fetched."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from looop.core import provenance, store, where
from looop.core.config import Knobs
from looop.core.context import Ctx
from looop.core.errors import LooopError
from looop.core.sandboxpolicy import OFF, SandboxPolicy
from looop.sessions import Session

if TYPE_CHECKING:
    from looop.workers.sandbox import WorkerBox

# What a host may add to the verify timeout before its answer counts as late: starting the
# run and the round trip.
HOST_SLACK_S = 15.0


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


# The runner is handed in by the beat (act.shell.run_shell): workers sit below act. Its last
# argument is the sandbox to run in: shell_policy's, a worker's own, or None: none.
RunShell = Callable[[Ctx, str, float, "SandboxPolicy | WorkerBox | None"], ShellOutcome]
_UNREAD = (
    "not run: a decision's verify runs only under shell_policy's sandbox, and the config "
    "cannot be read; fix the config"
)
_UNREAD_OFF = (
    "not run: a decision's verify the tripwire cannot read was allowed only sandboxed, and "
    "shell_policy's sandbox is off now"
)


def _confined(ctx: Ctx, wid: str, cmd: str, sandbox: SandboxPolicy | None) -> bool:
    """Does this verify run inside run_shell's sandbox? Every one but a human's (core/
    provenance: given at `looop worker start --verify` and unchanged) when it is on."""
    if sandbox is not None and not sandbox.on:
        return False
    return not provenance.by_human(ctx.paths, provenance.VERIFY, wid, store.encode(cmd))


def _worker_box(ctx: Ctx, wid: str) -> WorkerBox | None:
    """The sandbox the worker ran in, if it ran in one: its srt settings are there (a
    sandboxed start writes them) or its start record says so; a record that cannot be read
    counts as sandboxed (fail closed: the box then refuses in one line)."""
    ran = where.sandboxed(str(ctx.paths.data), wid)
    if not ran:
        from looop.workers import resume  # lazy: only a worker's end reads its record
        from looop.workers.launch import WorkerError  # lazy: as above

        if resume.record_path(ctx, wid).exists():
            try:
                rec = resume.read_record(ctx, wid)
                ran = rec is None or rec.sandbox.on
            except WorkerError:
                ran = True
    if not ran:
        return None
    from looop.workers.sandbox import WorkerBox  # lazy: only a sandboxed worker's verify

    return WorkerBox(wid)


def run_pending_verifies(
    ctx: Ctx,
    knobs: Knobs,
    sessions: list[Session],
    run: RunShell,
    sandbox: SandboxPolicy | None = OFF,
) -> list[str]:
    """Run verify/<id>.cmd for dead workers without a result yet; the rest wait for the next
    beat once this beat's budget is spent. Returns the ids verified. `sandbox`: run_shell's
    (shell_policy.sandbox), under which a decision's verify runs; None: the config could not
    be read, and a decision's verify fails unrun."""
    done: list[str] = []
    if not ctx.paths.verify.is_dir():
        return done
    dead = {s.id for s in sessions if not s.alive}
    here = {s.id for s in sessions}
    started = ctx.clock.monotonic()
    timeout = float(knobs.num("verify_timeout_secs"))
    budget = float(knobs.num("verify_beat_budget_secs"))
    far: list[tuple[str, str]] = []  # no session here: maybe a worker on a host
    for cmd_file in sorted(ctx.paths.verify.glob("*.cmd")):
        wid = cmd_file.stem
        if (ctx.paths.verify / f"{wid}.json").exists():
            continue
        if wid not in dead:
            if wid not in here:
                far.append((wid, (store.read_text(cmd_file) or "").strip()))
            continue
        if ctx.clock.monotonic() - started > budget:
            break
        cmd = (store.read_text(cmd_file) or "").strip()
        inside: SandboxPolicy | WorkerBox | None = _worker_box(ctx, wid)
        if inside is None:
            policy = sandbox if _confined(ctx, wid, cmd, sandbox) else OFF
            if policy is None or (
                not policy.on
                and provenance.is_unread(ctx.paths, provenance.VERIFY, wid, store.encode(cmd))
            ):
                why = _UNREAD if policy is None else _UNREAD_OFF
                _record(ctx, wid, cmd, False, None, False, why)
                done.append(wid)
                continue
            inside = policy if policy.on else None
        try:
            r = run(ctx, cmd, timeout, inside)
        except LooopError as e:  # srt cannot run here: one line, and nothing ran
            _record(ctx, wid, cmd, False, None, False, f"not run: {e}")
            done.append(wid)
            continue
        ok = r.exit_code == 0 and not r.timed_out
        out = (r.stdout + ("\n" + r.stderr if r.stderr else "")).strip()[-2000:]
        _record(ctx, wid, cmd, ok, r.exit_code, r.timed_out, out)
        done.append(wid)
    if far and (ctx.paths.data / "hosts" / "workers").is_dir():
        left = budget - (ctx.clock.monotonic() - started)
        done += _run_far(ctx, far, timeout, left, sandbox)
    return done


def _record(
    ctx: Ctx,
    wid: str,
    cmd: str,
    ok: bool,
    exit_code: int | None,
    timed_out: bool,
    output: str,
    host: str | None = None,
) -> None:
    rec: dict[str, Any] = {
        "v": 1,
        "ts": int(ctx.clock.now()),
        "cmd": cmd,
        "pass": ok,
        "exit_code": exit_code,
        "timed_out": timed_out,
        "output": output,
    }
    if host is not None:
        rec["host"] = host
    store.write_json(ctx.paths.verify / f"{wid}.json", rec)
    there = f" on host {host}" if host is not None else ""
    ctx.events.emit(
        "ok" if ok else "warn",
        "worker.verify",
        f"verify {wid}: {'pass' if ok else 'FAIL'}{there} ({cmd})",
        id=wid,
        passed=ok,
    )
    ctx.events.record("worker_verified", id=wid, passed=ok)


def _run_far(
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
    # lazy: only a home with workers on hosts
    from looop.workers.ssh import hosts as reg
    from looop.workers.ssh.hosts import HostError
    from looop.workers.ssh.link import Unreachable, link

    data = ctx.paths.data
    by_host: dict[str, list[tuple[str, str, bool]]] = {}
    done_early: list[str] = []
    for wid, cmd in far:
        rec = reg.record(data, wid)
        if rec is None or not rec.get("over") or not cmd:
            continue  # not a remote worker, or not seen over yet
        if reg.host_kind(data, rec["host"]) == reg.K8S:
            continue  # a Kubernetes start refuses --verify: nothing of ours to run there
        boxed = rec.get("sandboxed") is True  # its host runs the verify in its walls
        if not boxed and _confined(ctx, wid, cmd, sandbox):
            why = (
                f"not run on host {rec['host']}: a decision's verify runs only under "
                "shell_policy's sandbox, which runs on this machine only"
            )
            _record(ctx, wid, cmd, False, None, False, why, rec["host"])
            done_early.append(wid)
            continue
        by_host.setdefault(rec["host"], []).append((wid, cmd, boxed))
    done: list[str] = done_early
    started = ctx.clock.monotonic()
    for host, runs in sorted(by_host.items()):
        wait = min(timeout + HOST_SLACK_S, left - (ctx.clock.monotonic() - started))
        if wait <= 0:
            break
        req = {
            "runs": [{"id": w, "cmd": c, "box": b} for w, c, b in runs],
            "timeout": timeout,
            "wait": wait,
        }
        try:
            got = link(ctx, host).call("verify", req, timeout=wait + HOST_SLACK_S)
        except Unreachable:
            continue  # waits for the host to answer again: a later beat asks once more
        except HostError as e:  # it answered, and cannot run it (no looop, an older one)
            for wid, cmd, _ in runs:
                _record(ctx, wid, cmd, False, None, False, f"host {host}: {e}", host)
                done.append(wid)
            continue
        states = got.get("verify")
        states = states if isinstance(states, dict) else {}
        for wid, cmd, _ in runs:
            st = states.get(wid)
            if not isinstance(st, dict) or st.get("state") != "done":
                continue  # alive again (a new worker of this id), or still running
            code = st.get("exit_code")
            _record(
                ctx,
                wid,
                cmd,
                bool(st.get("pass")),
                code if isinstance(code, int) else None,
                bool(st.get("timed_out")),
                str(st.get("output") or "")[-2000:],
                host,
            )
            done.append(wid)
    return done
