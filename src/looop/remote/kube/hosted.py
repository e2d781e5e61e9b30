"""A registered Kubernetes host (`looop host add NAME k8s://CONTEXT/NAMESPACE --image …`) as
the home uses it: a `KubeBackend` built from the host's record that keeps the home's record
of each worker (`hosts/workers/<id>.json`) in step, the start that writes that record before
the Job exists, the way home a pod is handed, `host check`, and the `kubectl exec` line for
`attach`. The registry itself is remote/hosts.py (both kinds live there)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from looop.core.context import Ctx
from looop.core.procstat import is_web
from looop.core.webconfig import public_url
from looop.home import store
from looop.home.clock import Clock
from looop.home.errors import CorruptState, LooopError
from looop.home.paths import Paths
from looop.remote import hosts as reg
from looop.remote.hosts import KubeHost
from looop.remote.kube import manifests as mf
from looop.remote.kube.backend import KubeBackend
from looop.remote.kube.cluster import Unreachable, load_client
from looop.sessions.state import Session, SessionError
from looop.workers.backend import Reach, StartSpec
from looop.workers.errors import Refused
from looop.workers.started import StartRequest


def kubeconfig_for(h: KubeHost, env: Mapping[str, str] | None) -> str | None:
    """The host's own kubeconfig, else the one the home's environment names ($KUBECONFIG,
    then ~/.kube/config), as kubectl picks it; None (env unknown): the client's default."""
    if h.kubeconfig is not None:
        return h.kubeconfig
    if env is None:
        return None
    if env.get("KUBECONFIG"):
        return env["KUBECONFIG"]
    home = env.get("HOME")
    return os.path.join(home, ".kube", "config") if home else None


class HostedKube(KubeBackend):
    """KubeBackend for one registered host. A worker found over (reach, wait) or killed is
    marked over in the home's record, as SshBackend does, so load and `ls` agree."""

    def __init__(
        self,
        data: Path,
        h: KubeHost,
        clock: Clock,
        env: Mapping[str, str] | None,
        home_url: str | None = None,
        home_token: str | None = None,
        bounds: Mapping[str, int] | None = None,
        ctx: Ctx | None = None,
    ) -> None:
        super().__init__(
            h.target,
            home=data,
            clock=clock,
            kubeconfig=kubeconfig_for(h, env),
            home_url=home_url,
            home_token=home_token,
            ctx=ctx,
            bounds=bounds,
            **h.job_options(),
        )
        self.data = data
        self.host = h

    def _mark_over(self, sid: str, code: int | None = None) -> None:
        rec = reg.record(self.data, sid)
        if rec is None or rec.get("over"):
            return
        if code is None:
            try:
                code = self.exit_status(sid)
            except SessionError:
                code = None  # its Job is gone: no code left to read
        reg.mark_over(self.data, sid, code)

    def exit_status(self, sid: str) -> int | None:
        """As KubeBackend's; once the Job is gone (killed, or collected by its TTL), the code
        the home recorded when it saw the end, if it saw one."""
        try:
            return super().exit_status(sid)
        except Unreachable:
            raise
        except SessionError:
            rec = reg.record(self.data, sid)
            code = rec.get("exit_code") if rec is not None and rec.get("over") else None
            if type(code) is int:
                return code
            raise

    def reach(self, sid: str) -> Reach:
        got = super().reach(sid)
        if got == "over":
            self._mark_over(sid)
        return got

    def wait(self, sid: str, timeout_s: float | None) -> int:
        code = super().wait(sid, timeout_s)
        if code != 124:
            self._mark_over(sid, code)
        return code

    def kill(self, sid: str) -> dict[str, Any]:
        try:
            got = super().kill(sid)
        except Unreachable:
            raise  # not known to be over: the record stays live
        except SessionError:
            reg.mark_over(self.data, sid, None, "killed")  # no Job: nothing runs it any more
            raise
        reg.mark_over(self.data, sid, None, "killed")
        return got

    def place(self) -> str:
        return f"on host {self.host.name}"

    def attach(
        self, sid: str, passthrough: bool, env: Mapping[str, str], detach_keys: str = ""
    ) -> int:
        line = self.attach_line(sid) + (" --passthrough" if passthrough else "")
        line += f" --detach-keys {detach_keys}" if detach_keys else ""
        raise Refused(
            f"worker {sid} runs in a Kubernetes pod on host {self.host.name}: attach with `{line}`"
        )

    def attach_line(self, sid: str) -> str:
        """The command that reaches the live session from this terminal (no API call)."""
        argv = ["kubectl"]
        if self.host.kubeconfig is not None:
            argv += ["--kubeconfig", self.host.kubeconfig]
        if self.target.context:
            argv += ["--context", self.target.context]
        argv += ["-n", self.ns, "exec", "-it", self.job_ref(sid), "-c", mf.CONTAINER]
        return shlex.join([*argv, "--", "looop", "attach", sid])


# the way home


def web_runtime_url(paths: Paths) -> str | None:
    """The URL a running `looop web` of this data dir listens at: its runtime record
    (`.lock/web.json`, which web/server.py writes), believed only while its pid is still a
    `looop web`."""
    try:
        rec = store.read_json_object(paths.lock_dir / "web.json")
    except (CorruptState, OSError):
        return None
    if rec is None:
        return None
    pid, url = rec.get("pid"), rec.get("url")
    if type(pid) is not int or not isinstance(url, str) or not url.startswith("http"):
        return None
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return None
    return url if is_web(cmdline) else None


def way_home(paths: Paths, raw_config: dict[str, Any], wid: str) -> str:
    """The URL a pod speaks its contract to: the config's `web.url`, else a running
    `looop web`'s; neither is a refusal in one line."""
    url = public_url(raw_config) or web_runtime_url(paths)
    if url is None:
        raise LooopError(
            f"worker {wid}: a Kubernetes worker needs the way home — set `web.url` in the "
            "config to the address its pod reaches this home's web API at, or run `looop web`"
        )
    return url


# start


def precheck(
    h: KubeHost,
    data: Path,
    req: StartRequest,
    argv: Sequence[str],
    env: Mapping[str, str],
    brief: str,
    url: str,
    clock: Clock,
) -> None:
    """Every input of the worker's Job checked (one line each) and the client present,
    before the home writes anything. `argv` and `env`: its line and environment as the pod
    runs them; `brief`: the prompt file's text."""
    mf.contract_secret(
        worker_shape(h, data, req, argv, env, brief, clock), url, "lw1.checked-shape-only"
    )
    load_client()


def worker_shape(
    h: KubeHost,
    data: Path,
    req: StartRequest,
    argv: Sequence[str],
    env: Mapping[str, str],
    brief: str,
    clock: Clock,
) -> mf.WorkerShape:
    """The worker's Job as the manifests see it (precheck checks it; HostedKube makes it)."""
    spec = StartSpec(req.worker, argv, Path(mf.WORKSPACE), env, req.size)
    b = HostedKube(data, h, clock, None, bounds=req.bounds)
    return b.shape(spec, brief, None, req.repo, req.branch, req.repos)


def start_job(
    data: Path,
    clock: Clock,
    home_env: Mapping[str, str],
    h: KubeHost,
    req: StartRequest,
    argv: Sequence[str],
    env: Mapping[str, str],
    brief: str,
    url: str,
    token: str,
) -> Session:
    """Create the worker's Job (precheck's inputs, and the contract's token), its record
    written first (remote/hosts.starting)."""
    b = HostedKube(data, h, clock, home_env, url, token, req.bounds)
    wid, runner = req.worker, req.runner or ""
    spec = StartSpec(wid, argv, Path(mf.WORKSPACE), env, req.size)
    with reg.starting(data, wid, h.name, runner):
        try:
            s = b.start(spec, brief=brief, repo=req.repo, branch=req.branch, repos=req.repos)
        except LooopError as e:
            raise SessionError(f"worker {wid} did not start on host {h.name}: {e}") from None
    reg.write_record(data, wid, h.name, started_at=s.started_at, runner=runner, over=False)
    return s


# host check


def check(data: Path, h: KubeHost, clock: Clock, env: Mapping[str, str] | None) -> dict[str, Any]:
    """The context loads, the API answers, this namespace's Jobs can be listed: a dict to
    print, or one line (LooopError) naming the step that failed."""
    b = HostedKube(data, h, clock, env)
    load_client()
    try:
        b._api()  # the kubeconfig and its context
    except SessionError as e:
        raise LooopError(f"host {h.name}: {e}") from None
    try:
        mine = b.listing()
    except Unreachable as e:
        raise LooopError(f"host {h.name} does not answer: {e}") from None
    except SessionError as e:
        raise LooopError(f"host {h.name} refuses: {e}") from None
    return {
        "host": h.name,
        "kind": h.kind,
        "ok": True,
        "target": h.target,
        "context": b.target.context or "(current)",
        "namespace": b.ns,
        "workers": len(mine),
        "live": sum(1 for r in mine.values() if r["alive"]),
    }
