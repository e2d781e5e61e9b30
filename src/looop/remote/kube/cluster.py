"""One namespace of one Kubernetes cluster as a worker backend reads it: the official client
(imported only when this engine is used; without the extra the first use says
`pip install 'looop[k8s]'` in one line), one API call with its timeout and its one-line
refusal, a worker's Job and newest pod, the pod's log, an exec in its container, the Job's
deletion, and how a finished Job reads (over, its exit status). `HostedKube` (backend.py)
is built on it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from looop.home import jsonio
from looop.home.config import need_extra
from looop.remote import untrusted
from looop.remote.kube import manifests as mf
from looop.remote.kube.target import KubeTarget
from looop.sessions.state import SessionError
from looop.workers.errors import HostUnreachable

SIZE_MAX = 10_000  # a terminal's columns or rows
API_TIMEOUT_S = 15.0  # one API call; a cluster slower than this reads as unreachable
EXEC_TIMEOUT_S = 30.0
SCREEN_LINES = 5000  # a screen's replay: the log's last lines (a TUI redraws within them)
SCREEN_BYTES = 16 * 1024 * 1024  # ... and at most this much of them
FOLLOWED = (API_TIMEOUT_S, 600.0)  # a followed log quiet this long is asked again


def load_client() -> Any:
    """The `kubernetes` package, or the one line that says how to get it."""
    return need_extra("k8s", "the kubernetes backend", SessionError)


def is_true(conditions: Any, kind: str) -> Any:
    for c in conditions or ():
        if c.type == kind and c.status == "True":
            return c
    return None


class KubeCluster:
    """The worker Jobs of one home (`home`, the data dir: its hash labels them) in one
    namespace of one kubeconfig context; `api_client`: one made already (tests)."""

    def __init__(
        self, target: KubeTarget, *, home: Path, kubeconfig: str | None, api_client: Any
    ) -> None:
        self.target = target
        self.home = home
        self.kubeconfig = kubeconfig
        self._api_client = api_client
        self._follows: dict[str, Followed] = {}

    @property
    def ns(self) -> str:
        return self.target.namespace

    def _k(self) -> Any:
        return load_client()

    def _api(self) -> Any:
        """One ApiClient for this backend, from the user's kubeconfig and context."""
        if self._api_client is None:
            k = self._k()
            try:
                self._api_client = k.config.new_client_from_config(
                    config_file=self.kubeconfig,
                    context=self.target.context or None,
                    persist_config=False,
                )
            except Exception as e:  # the client's config errors are of several kinds
                raise SessionError(
                    f"cannot use kubeconfig context '{self.target.context or '(current)'}': "
                    f"{one_line(e)}"
                ) from None
        return self._api_client

    def _batch(self) -> Any:
        return self._k().client.BatchV1Api(self._api())

    def _core(self) -> Any:
        return self._k().client.CoreV1Api(self._api())

    def _call(
        self, what: str, fn: Callable[..., Any], *args: Any, absent: int = 404, **kw: Any
    ) -> Any:
        """One API call: a refusal is a SessionError naming it; `absent` (404: not found; a
        create's 409: there already) is None."""
        k = self._k()
        kw.setdefault("_request_timeout", API_TIMEOUT_S)
        try:
            return fn(*args, **kw)
        except k.client.exceptions.ApiException as e:
            if e.status == absent:
                return None
            raise SessionError(f"{what}: {api_reason(e)}") from None
        except Exception as e:  # urllib3's connection errors: the cluster is out of reach
            raise Unreachable(f"{what}: cannot reach {self.target.url()}: {one_line(e)}") from None

    def job_for(self, sid: str) -> Any:
        return self._call(
            f"read worker {sid}", self._batch().read_namespaced_job, mf.job_name(sid), self.ns
        )

    def pod_for(self, sid: str) -> Any:
        pods = self._call(
            f"list worker {sid}'s pod",
            self._core().list_namespaced_pod,
            self.ns,
            label_selector=mf.selector(sid, str(self.home)),
        )
        items = list(pods.items) if pods is not None else []
        if not items:
            return None
        return max(items, key=lambda p: str(p.metadata.creation_timestamp or ""))

    def _log_bytes(self, sid: str, **query: Any) -> bytes:
        """The pod's log as `query` (the API's tail_lines, limit_bytes, since_seconds) asks."""
        resp = self._log_response(sid, self._pod_named(sid), **query)
        if resp is None:
            return b""
        data = resp.data
        return data if isinstance(data, bytes) else str(data).encode()

    def _pod_named(self, sid: str) -> str:
        pod = self.pod_for(sid)
        if pod is None:
            raise SessionError(
                f"no pod for worker {sid} in {self.target.url()} (none yet, or collected)"
            )
        return str(pod.metadata.name)

    def _log_response(self, sid: str, pod: str, **query: Any) -> Any:
        return self._call(
            f"read worker {sid}'s log",
            self._core().read_namespaced_pod_log,
            pod,
            self.ns,
            container=mf.CONTAINER,
            _preload_content=False,
            **query,
        )

    def screen_bytes(self, sid: str) -> bytes:
        """The log's end a screen is drawn from: its last lines, never the whole log."""
        return self._log_bytes(sid, tail_lines=SCREEN_LINES, limit_bytes=SCREEN_BYTES)

    def log_from(self, sid: str, since: int, most: int) -> bytes:
        """The log from byte `since`: read once, then kept current by one `follow` stream
        (started once a reader caught up asks again), never read whole per poll."""
        f = self._follows.get(sid)
        if f is None or (since == 0 and not f.running()):  # from the start: read afresh
            pod = self._pod_named(sid)
            f = self._follows[sid] = Followed(pod, self._log_bytes(sid))
        elif since >= f.size() and not f.running() and not f.ended:
            if f.caught_up:
                f.start(self._log_response(sid, f.pod, follow=True, _request_timeout=FOLLOWED))
            f.caught_up = True
        return f.read(since, most)

    def log_size(self, sid: str) -> int:
        """The log's length now: read whole once (as `log_from` 0), then kept by its follow."""
        self.log_from(sid, 0, 0)
        return self._follows[sid].size()

    def _size(self, sid: str) -> tuple[int, int]:
        job = self.job_for(sid)
        spelled = ""
        if job is not None:
            spelled = (job.metadata.annotations or {}).get(mf.SIZE_ANNOTATION, "")
        cols, _, rows = spelled.partition("x")
        # the Job's annotation is outside input: a real size only ('²' is a digit to isdigit)
        if all(len(n) <= 5 and n.isascii() and n.isdigit() for n in (cols, rows)):
            c, r = untrusted.count(int(cols), SIZE_MAX), untrusted.count(int(rows), SIZE_MAX)
            if c and r:
                return c, r
        return 80, 24

    def exec_in(self, sid: str, command: Sequence[str], timeout: float = EXEC_TIMEOUT_S) -> str:
        """Run `command` in the worker's container; its stdout, or one line why not."""
        k = self._k()
        pod = self.pod_for(sid)
        if pod is None or pod.status is None or pod.status.phase != "Running":
            raise SessionError(f"worker {sid} is not running in {self.target.url()}")
        try:
            ws = k.stream.stream(
                self._core().connect_get_namespaced_pod_exec,
                pod.metadata.name,
                self.ns,
                container=mf.CONTAINER,
                command=list(command),
                stdin=False,
                stdout=True,
                stderr=True,
                tty=False,
                _preload_content=False,
            )
        except Exception as e:
            raise Unreachable(f"exec in worker {sid}: {one_line(e)}") from None
        try:
            ws.run_forever(timeout=timeout)
            out, err = ws.read_stdout() or "", ws.read_stderr() or ""
            code = ws.returncode
        except Exception as e:
            raise Unreachable(f"exec in worker {sid}: {one_line(e)}") from None
        finally:
            ws.close()
        if code != 0:
            said = one_line(err.strip().splitlines()[-1] if err.strip() else f"exit {code}")
            raise SessionError(f"worker {sid}: {said}")
        return str(out)

    def _delete(self, sid: str) -> bool:
        """Delete the worker's Job, its pod first (Foreground); False when there was none."""
        k = self._k()
        body = k.client.V1DeleteOptions(propagation_policy="Foreground")
        got = self._call(
            f"kill worker {sid}",
            self._batch().delete_namespaced_job,
            mf.job_name(sid),
            self.ns,
            body=body,
        )
        return got is not None


def job_over(job: Any) -> bool:
    st = getattr(job, "status", None)  # a watch's event may carry no Job
    conds = st.conditions if st is not None else None
    return bool(is_true(conds, "Complete") or is_true(conds, "Failed"))


def exit_code_of(job: Any, pod: Any) -> int:
    """A finished Job's exit status: 124 at its deadline, else the worker container's
    exitCode, else 137 (over with no code recorded)."""
    st = job.status
    failed = is_true(st.conditions if st is not None else None, "Failed")
    if failed is not None and failed.reason == "DeadlineExceeded":
        return 124  # the stuck backstop: what the container said when killed is moot
    for cs in (pod.status.container_statuses or ()) if pod is not None and pod.status else ():
        if cs.name == mf.CONTAINER and cs.state is not None and cs.state.terminated is not None:
            code = untrusted.exit_code(cs.state.terminated.exit_code)  # the pod's word: bounded
            return 137 if code is None else code
    return 137


def limit_of(pod: Any) -> str | None:
    """The bound a finished pod met: `memory` (its worker container OOMKilled at its
    limits.memory), `disk` (evicted past its ephemeral-storage limit), else None."""
    st = pod.status if pod is not None else None
    if st is None:
        return None
    if st.reason == "Evicted" and "ephemeral" in str(st.message or ""):
        return "disk"
    for cs in st.container_statuses or ():
        ended = cs.state.terminated if cs.state is not None else None
        if cs.name == mf.CONTAINER and ended is not None and ended.reason == "OOMKilled":
            return "memory"
    return None


class Followed:
    """One pod's log as far as read: the first read, then what its follow stream (a thread,
    which drops the bytes already held) adds."""

    def __init__(self, pod: str, first: bytes) -> None:
        self.pod, self.buf, self.caught_up = pod, bytearray(first), False
        self.ended = False  # the stream closed: its container is over, all of it is here
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def size(self) -> int:
        with self.lock:
            return len(self.buf)

    def read(self, since: int, most: int) -> bytes:
        with self.lock:
            return bytes(self.buf[since : since + most])

    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self, resp: Any) -> None:
        if resp is not None:
            self.thread = threading.Thread(target=self._pump, args=(resp,), daemon=True)
            self.thread.start()

    def _pump(self, resp: Any) -> None:
        skip = self.size()
        try:
            for chunk in resp.stream(64 * 1024, decode_content=False):
                drop = min(skip, len(chunk))
                skip -= drop
                with self.lock:
                    self.buf += chunk[drop:]
            self.ended = True
        except Exception:  # a cut stream: the next caught-up read starts another
            pass
        finally:
            resp.release_conn()


class Unreachable(SessionError, HostUnreachable):
    """The cluster's API cannot be reached: not an answer about the worker."""


def last_json(out: str) -> Any:
    """An exec's answer: its output's last line as JSON (None: none, or not JSON)."""
    try:
        return jsonio.loads(out.strip().splitlines()[-1]) if out.strip() else None
    except ValueError:
        return None


def one_line(e: BaseException | str) -> str:
    text = " ".join(str(e).split())
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= 200 else text[:197] + "..."


def api_reason(e: Any) -> str:
    """An ApiException as one line: the Status message when the server sent one."""
    try:
        msg = jsonio.loads(e.body).get("message")
    except (TypeError, ValueError, AttributeError):
        msg = None
    return one_line(f"{e.status} {msg or e.reason}")
