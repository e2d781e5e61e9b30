"""Workers as Kubernetes Jobs: `workers/backend.Backend` over the official client.

One Job per worker (manifests.py); the session itself runs inside its pod under
`looop pod run`, the PTY supervisor in the foreground, whose stdout is the raw transcript —
so the pod's log is the session's `output.log`. What each verb costs:

- start: create the Job, then its brief ConfigMap and way-home Secret owned by it (deleting
  the Job takes them along); a refusal after the Job was made deletes it again.
- reach: the Job's conditions: Complete/Failed is `over`, a Job that is gone is `over`, and
  an API that cannot be reached (or answers with anything but the Job) is `unreachable` —
  never a dead worker, so nothing is reaped on its account.
- screen / log: the pod's log; the screen is its tail replayed through the sessions room's
  own emulator at the worker's size, as `client.screenshot` does for a dead session.
- send / key: an exec in the worker's container (`looop pod send`), which types the exact
  bytes through the pod's own session socket.
- wait: a watch on the Job; exit status: the container's terminated exitCode.
- kill: delete the Job with propagation Foreground (its pod goes first).
- diff / review: an exec of `looop pod change` in its container, which reads its clones
  with the same review code (podchange.py); a pod whose Job ended has none any more.

The cluster's reads and calls (the client, a Job and its pod, their log, exec, deletion) are
cluster.py's `KubeCluster`, which this class is built on. `check` is `looop host check`'s.
"""

from __future__ import annotations

import base64
import math
import os
import shlex
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from looop.core.context import Ctx
from looop.home.clock import Clock
from looop.home.errors import LooopError
from looop.home.stamps import utc_stamp
from looop.home.textsafe import decode, safe_text, strip_ansi
from looop.remote import hosts as reg
from looop.remote.hosts import KubeHost
from looop.remote.kube import manifests as mf
from looop.remote.kube.cluster import (
    API_TIMEOUT_S,
    KubeCluster,
    Unreachable,
    exit_code_of,
    job_over,
    last_json,
    limit_of,
    load_client,
)
from looop.remote.kube.podchange import pod_diff, pod_review
from looop.remote.kube.target import parse_target
from looop.sessions.client import replayed
from looop.sessions.keys import encode_keys
from looop.sessions.protocol import SHOT_FORMATS
from looop.sessions.state import Session, SessionError
from looop.workers.backend import Reach, T, Ways
from looop.workers.errors import Refused
from looop.workers.polled import Polled
from looop.workers.review import Review

LOG_READ_MAX = 4 * 1024 * 1024  # one log() answer, as read_at reads one chunk
WATCH_SLICE_S = 60  # one watch request; the wait renews it until its own deadline
CLEAR_TIMEOUT_S = 30.0  # a finished Job of a reused id: how long its deletion may take


class StartSpec(NamedTuple):
    """What a Job needs to start one worker's session in its pod."""

    sid: str
    argv: Sequence[str]
    cwd: Path
    env: Mapping[str, str]
    size: tuple[int, int] = (80, 24)


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


class HostedKube(KubeCluster, Polled):
    """Sessions as Jobs in the namespace of one registered host `h`, for the home `data` (its
    hash labels this home's Jobs). A worker found over (reach, wait) or killed is marked over
    in the home's record, as SshBackend does, so load and `ls` agree. `home_url`/`home_token`:
    what the pod reaches the contract through (the web API), None for a pod without the way
    home; `bounds`: the home's worker bounds its Job is made with; `ctx`: the home whose rounds
    a review adds (None: an engine for sessions); `api_client`: one made already (tests)."""

    kind = "kubernetes"

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
        api_client: Any = None,
    ) -> None:
        target, config = parse_target(h.target), kubeconfig_for(h, env)
        super().__init__(target, home=data, kubeconfig=config, api_client=api_client)
        self.host, self.clock, self.ctx = h, clock, ctx
        self.home_url, self.home_token = home_url, home_token
        self.shape_opts = {"bounds": bounds, **h.job_options()}

    # -- the Backend interface ---------------------------------------------------------------

    def start(
        self,
        spec: StartSpec,
        brief: str | None = None,
        repo: str | None = None,
        branch: str | None = None,
        repos: Sequence[str] = (),
    ) -> Session:
        """brief: the prompt file's text (contract + brief), which the argv names where the
        pod mounts it; repos: several, each cloned beside the others (`repo` the first)."""
        shape = self.shape(spec, brief, repo, branch, repos)
        url, token = str(self.home_url), str(self.home_token)
        if shape.with_contract:  # the contract's secret is checked before anything is made
            mf.contract_secret(shape, url, token)
        uid = self._claim_job(shape)
        core = self._core()
        owned: list[tuple[str, Any, dict[str, Any]]] = []  # what the Job owns besides itself
        if shape.brief is not None:
            brief_map = mf.brief_config(shape, uid)
            owned.append(("configmap", core.create_namespaced_config_map, brief_map))
        if shape.with_contract:
            secret = mf.contract_secret(shape, url, token, uid)
            owned.append(("secret", core.create_namespaced_secret, secret))
        for kind, create, body in owned:
            try:
                self._call(f"start worker {spec.sid} ({kind})", create, self.ns, body)
            except SessionError:
                self._delete(spec.sid)  # no half-made worker: the Job goes with what it owns
                raise
        return self._starting(spec.sid, shape)

    def pause(self, sid: str) -> bool:
        raise Refused(
            f"worker {sid} runs in a Kubernetes pod, which looop cannot freeze — "
            f"`looop kill {sid}` stops it"
        )

    def go_on(self, sid: str) -> bool:
        raise Refused(
            f"worker {sid} runs in a Kubernetes pod, which looop never pauses: "
            "it has nothing to go on from"
        )

    def refused(self, sid: str, verb: str, instead: str) -> Refused:
        return Refused(
            f"worker {sid} runs in a Kubernetes Job on host {self.host.name}: `looop {verb}` "
            f"does not reach it — {instead}"
        )

    def resize(self, sid: str, cols: int, rows: int) -> dict[str, Any]:
        raise self.refused(sid, "resize", "its size is fixed when its Job is made")

    def detach(self, sid: str) -> dict[str, Any]:
        raise self.refused(sid, "detach", "a `kubectl exec` ends when you leave it")

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

    def diff(self, sid: str) -> dict[str, Any]:
        """Read in its pod, where its clones are (remote/kube/podchange.py)."""
        return pod_diff(self, sid)

    def review(self, sid: str) -> Review:
        """Read in its pod with this home's rounds, verify and proposal."""
        if self.ctx is None:
            raise Refused(f"worker {sid}'s change is not read by this engine")
        return pod_review(self.ctx, self, sid)

    def change(self, sid: str, ways: Ways[T]) -> T:
        return ways.pod(sid, self)

    def shape(
        self,
        spec: StartSpec,
        brief: str | None,
        repo: str | None,
        branch: str | None,
        repos: Sequence[str] = (),
    ) -> mf.WorkerShape:
        """The worker as the manifests see it."""
        return mf.WorkerShape(
            spec.sid,
            spec.argv,
            home=str(self.home),
            brief=brief,
            env=spec.env,
            size=spec.size,
            repo=repo,
            branch=branch,
            repos=repos,
            with_contract=self.home_url is not None and self.home_token is not None,
            **self.shape_opts,
        )

    def _claim_job(self, shape: mf.WorkerShape) -> str:
        """The new Job's uid; an ended Job of the same id is replaced, a running one refused."""

        def create() -> Any:  # None: a Job of that name exists already
            job = mf.job(shape)
            what = f"start worker {shape.sid}"
            return self._call(what, self._batch().create_namespaced_job, self.ns, job, absent=409)

        made = create()
        if made is None and self._clear_finished(shape.sid):
            made = create()  # the last worker of this id had ended: replaced
        if made is None:
            raise SessionError(
                f"worker {shape.sid} already has a Job {shape.name} in {self.target.url()}: "
                f"`looop kill {shape.sid}` first"
            )
        return str(made.metadata.uid)

    def _starting(self, sid: str, shape: mf.WorkerShape) -> Session:
        now = utc_stamp(self.clock.now())
        cols, rows = shape.size
        return Session(
            id=sid,
            cmd=list(shape.argv),
            state="starting",
            alive=True,
            exit_code=None,
            signaled=False,
            started_at=now,
            last_change=now,
            note=None,
            child_pid=None,
            cols=cols,
            rows=rows,
            output_bytes=0,
            dir=str(self.home / "sessions" / sid),
            label=f"{self.target.url()}/{shape.name}",
        )

    def _clear_finished(self, sid: str) -> bool:
        """A finished Job of this worker id (kept for its TTL) is deleted, so the id can run
        again, as a local start reaps the last session of its id; True once it is gone. A
        Job still running is left alone (False)."""
        job = self.job_for(sid)
        if job is not None and not job_over(job):
            return False
        if job is not None:
            self._delete(sid)
        deadline = self.clock.monotonic() + CLEAR_TIMEOUT_S
        while self.job_for(sid) is not None:  # Foreground: the Job goes once its pod has
            if self.clock.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        return True

    def reach(self, sid: str) -> Reach:
        try:
            job = self.job_for(sid)
        except SessionError:
            return "unreachable"  # a refusal or a lost API: the worker may well be alive
        if job is not None and not job_over(job):
            return "alive"
        self._mark_over(sid)
        return "over"

    def _mark_over(self, sid: str, code: int | None = None) -> None:
        rec = reg.record(self.home, sid)
        if rec is None or rec.get("over"):
            return
        if code is None:
            try:
                code = self.exit_status(sid)
            except SessionError:
                code = None  # its Job is gone: no code left to read
        reg.mark_over(self.home, sid, code)

    def exit_status(self, sid: str) -> int | None:
        """None while it runs; the container's exit code once over; 124 when the cluster
        ended it at its deadline; 137 over with no code recorded (as a supervisor that died).
        Once the Job is gone (killed, or collected by its TTL), the code the home recorded
        when it saw the end, if it saw one."""
        try:
            job = self.job_for(sid)
            if job is None:
                raise SessionError(f"no worker {sid} in {self.target.url()}")
            return exit_code_of(job, self.pod_for(sid)) if job_over(job) else None
        except Unreachable:
            raise
        except SessionError:
            rec = reg.record(self.home, sid) or {}
            if rec.get("over") and type(rec.get("exit_code")) is int:
                return int(rec["exit_code"])
            raise

    def listing(self, timeout_s: float = API_TIMEOUT_S) -> dict[str, dict[str, Any]]:
        """This home's workers in the namespace, in two API calls (Jobs, pods): id ->
        {alive, state, exit_code, started_at}. Unreachable when the API cannot be reached,
        SessionError when it refuses."""
        where = self.target.url()
        home = mf.home_key(str(self.home))
        sel = f"{mf.MANAGED_BY}=looop,{mf.HOME_LABEL}={home}"
        kw: dict[str, Any] = {"label_selector": sel, "_request_timeout": timeout_s}
        jobs = self._call(f"list Jobs in {where}", self._batch().list_namespaced_job, self.ns, **kw)
        pods = self._call(f"list pods in {where}", self._core().list_namespaced_pod, self.ns, **kw)
        newest: dict[str, Any] = {}  # each worker's newest pod (of equals, the first listed)
        made = lambda p: str(p.metadata.creation_timestamp or "")  # noqa: E731
        for p in sorted(pods.items if pods is not None else [], key=made, reverse=True):
            key = (p.metadata.labels or {}).get(mf.WORKER_LABEL)
            if key is not None and (p.metadata.labels or {}).get(mf.HOME_LABEL) == home:
                newest.setdefault(key, p)
        out: dict[str, dict[str, Any]] = {}
        for job in list(jobs.items) if jobs is not None else []:
            meta = job.metadata
            sid = (meta.annotations or {}).get(mf.ID_ANNOTATION)
            if not isinstance(sid, str) or (meta.labels or {}).get(mf.HOME_LABEL) != home:
                continue  # another home's Job, or not one of looop's
            pod = newest.get(mf.worker_key(sid))
            over = job_over(job)
            phase = pod.status.phase if pod is not None and pod.status is not None else None
            stamp = meta.creation_timestamp
            out[sid] = {
                "alive": not over,
                "state": "exited" if over else ("running" if phase == "Running" else "starting"),
                "exit_code": exit_code_of(job, pod) if over else None,
                "limit": limit_of(pod) if over else None,  # the bound it met, if one
                "started_at": utc_stamp(stamp.timestamp()) if hasattr(stamp, "timestamp") else None,
            }
        return out

    def job_ref(self, sid: str) -> str:
        """`job/NAME`: what kubectl exec takes to reach the worker's pod."""
        return f"job/{mf.job_name(sid)}"

    def log(self, sid: str, since: int = 0, raw: bool = False) -> tuple[str, int]:

        if since < 0:
            raise SessionError(f"invalid offset {since}: use a byte offset >= 0")
        data = self.log_from(sid, since, LOG_READ_MAX)
        if not data:
            return "", since
        if self.reach(sid) == "over" and len(data) < LOG_READ_MAX:
            text = decode(data)
            return (text if raw else strip_ansi(text)), since + len(data)
        text, used = safe_text(data, raw)
        return text, since + used

    def offset_at(self, sid: str, when: float) -> int:
        """The whole log's size less what the API's since_seconds returns: offsets here count
        from the log's start."""
        size = self.log_size(sid)
        ago = max(1, math.ceil(self.clock.now() - when))
        return max(0, size - len(self._log_bytes(sid, since_seconds=ago)))

    def screen(self, sid: str, fmt: str = "plain", trim: bool = True) -> dict[str, Any]:
        if fmt not in SHOT_FORMATS:
            raise SessionError(f"unknown screenshot format `{fmt}`: use plain, ansi or json")
        cols, rows = self._size(sid)
        return replayed(self.screen_bytes(sid), cols, rows, fmt, trim)

    def _typed(self, sid: str, data: bytes, newline: bool) -> dict[str, Any]:
        mf.check_sid(sid)
        b64 = base64.b64encode(data).decode()
        cmd = ["looop", "pod", "send", "--id", sid, "--b64", b64]
        if newline:
            cmd.append("--newline")
        got = last_json(self.exec_in(sid, cmd))
        return got if isinstance(got, dict) else {}

    def send(self, sid: str, text: str | bytes, newline: bool = True) -> dict[str, Any]:
        data = text if isinstance(text, bytes) else text.encode("utf-8")
        return self._typed(sid, data, newline)

    def key(self, sid: str, names: Sequence[str]) -> dict[str, Any]:

        return self._typed(sid, encode_keys(names), False)

    def wait(self, sid: str, timeout_s: float | None) -> int:
        """The exit status once the Job is over (watched, not polled); 124 on timeout. A
        watch the network cut is renewed until the deadline: a lost API is not an end."""
        k = self._k()
        deadline = (
            None if timeout_s is None or timeout_s <= 0 else self.clock.monotonic() + timeout_s
        )
        name = mf.job_name(sid)
        while True:
            try:
                code = self.exit_status(sid)
            except Unreachable:
                code = None
            if code is not None:
                self._mark_over(sid, code)
                return code
            left = None if deadline is None else deadline - self.clock.monotonic()
            if left is not None and left <= 0:
                return 124
            slice_s = (
                WATCH_SLICE_S if left is None else max(1, min(WATCH_SLICE_S, int(left + 0.999)))
            )
            w = k.watch.Watch()
            try:
                for ev in w.stream(
                    self._batch().list_namespaced_job,
                    self.ns,
                    field_selector=f"metadata.name={name}",
                    timeout_seconds=slice_s,
                    _request_timeout=slice_s + API_TIMEOUT_S,
                ):
                    if ev.get("type") == "DELETED" or job_over(ev.get("object")):
                        break
            except Exception:
                # a cut connection: the loop reads the Job again, and a deadline still ends it
                if deadline is not None and self.clock.monotonic() >= deadline:
                    return 124
            finally:
                w.stop()

    def kill(self, sid: str) -> dict[str, Any]:
        try:
            found = self._delete(sid)
        except Unreachable:
            raise  # not known to be over: the record stays live
        except SessionError:
            reg.mark_over(self.home, sid, None, "killed")  # no Job: nothing runs it any more
            raise
        reg.mark_over(self.home, sid, None, "killed")
        if not found:
            raise SessionError(f"no worker {sid} in {self.target.url()}")
        return {"ok": True, "killed": sid}

    def restart(self, sid: str) -> dict[str, Any]:
        """A Job's pod is not restarted in place: the pulse owns retries (backoffLimit 0)."""
        raise SessionError(
            f"worker {sid} runs in a Kubernetes Job: it is not restarted in place — kill it "
            "and start it again"
        )


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
