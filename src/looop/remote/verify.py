"""The verify of a worker on an SSH host, brought home: the host runs it once in the
worker's workspace (remote/ssh/hostverify.py) after the home has seen the worker over, and
keeps its result until the home fetches it into the same verify/<id>.json a worker here gets
(workers/verify.py). The beat hands `run_far` to workers/verify.run_pending_verifies."""

from __future__ import annotations

from looop.core.context import Ctx
from looop.home.sandboxpolicy import SandboxPolicy
from looop.remote import hosts as reg
from looop.remote import untrusted
from looop.remote.hosts import HostError
from looop.remote.ssh.link import Unreachable, link
from looop.workers.verify import confined, record

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
    req = {
        "runs": [{"id": w, "cmd": c, "box": b} for w, c, b in runs],
        "timeout": timeout,
        "wait": wait,
    }
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
        code = st.get("exit_code")
        record(
            ctx,
            wid,
            cmd,
            bool(st.get("pass")),
            untrusted.exit_code(code),
            bool(st.get("timed_out")),
            str(st.get("output") or "")[-2000:],
            host,
        )
        done.append(wid)
    return done
