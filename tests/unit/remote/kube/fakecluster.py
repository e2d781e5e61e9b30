"""A local stand-in of the few Kubernetes API objects the backend uses, so the OFFICIAL
client runs end to end against it: an HTTP server (Starlette on uvicorn) speaking the REST
endpoints it calls — Jobs (create, read, watch, delete), ConfigMaps and Secrets (create),
pods (list by label, read log) — and the exec websocket (the v4 channel protocol), with a
kubelet stand-in that runs each Job's container as a real local process.

What the stand-in does NOT do (docs/KUBERNETES.md says so too): no scheduling, images,
resource limits, security contexts or TTL collection; init containers (the clones) run only
when a test asks (`FakeCluster(root, inits=True)`), each as a local process; its pod's
paths /looop and /workspace are rewritten to local directories; a bearer token stands for
the kubeconfig's credentials, checked on every request."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

LOOOP = str(Path(sys.executable).with_name("looop"))
TOKEN = "stand-in-token"


def _status(code: int, reason: str, message: str) -> JSONResponse:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return JSONResponse(body, status_code=code)


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _matches(labels: dict[str, str], selector: str) -> bool:
    for part in filter(None, selector.split(",")):
        k, _, v = part.partition("=")
        if labels.get(k) != v:
            return False
    return True


class Pod:
    """One pod the kubelet stand-in runs: its directories, process and log."""

    def __init__(self, root: Path, ns: str, job: dict[str, Any]) -> None:
        self.ns = ns
        self.job_name = job["metadata"]["name"]
        self.name = f"{self.job_name}-{secrets.token_hex(3)}"
        self.labels = dict(job["spec"]["template"]["metadata"]["labels"])
        self.spec = job["spec"]["template"]["spec"]
        self.dir = root / self.name
        self.data = self.dir / "looop"
        self.workspace = self.dir / "workspace"
        for d in (self.data, self.workspace):
            d.mkdir(parents=True)
        self.log = self.dir / "log"
        self.log.touch()
        self.phase = "Pending"
        self.exit_code: int | None = None
        self.end_reason = "Completed"  # what the runtime says ended it (a test: OOMKilled)
        self.proc: subprocess.Popen[bytes] | None = None
        self.env: dict[str, str] = {}
        self.cwd = str(self.workspace)
        self.created = _stamp()

    def local(self, text: str) -> str:
        """The pod's absolute paths, on this machine."""
        for pod_path, here in (("/looop", self.data), ("/workspace", self.workspace)):
            if text == pod_path or text.startswith(pod_path + "/"):
                return str(here) + text[len(pod_path) :]
        return text

    def command(self, argv: list[str]) -> list[str]:
        out = [self.local(a) for a in argv]
        return [LOOOP, *out[1:]] if out and out[0] == "looop" else out

    def obj(self) -> dict[str, Any]:
        c = self.spec["containers"][0]
        state: dict[str, Any]
        if self.phase == "Pending":
            state = {"waiting": {"reason": "ContainerCreating"}}
        elif self.exit_code is None:
            state = {"running": {"startedAt": self.created}}
        else:
            state = {"terminated": {"exitCode": self.exit_code, "reason": self.end_reason}}
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": self.name,
                "namespace": self.ns,
                "labels": self.labels,
                "creationTimestamp": self.created,
            },
            "spec": {"containers": [{"name": c["name"], "image": c["image"]}]},
            "status": {
                "phase": self.phase,
                "containerStatuses": [
                    {
                        "name": c["name"],
                        "image": c["image"],
                        "imageID": "",
                        "ready": self.phase == "Running",
                        "restartCount": 0,
                        "state": state,
                    }
                ],
            },
        }


class FakeCluster:
    """The API server and kubelet stand-ins; `kubeconfig` points the real client at it."""

    def __init__(self, root: Path, inits: bool = False) -> None:
        self.root = root
        self.inits = inits  # run each pod's init containers (its clones) before its worker
        self.lock = threading.Condition()
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: dict[str, Pod] = {}
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}  # (kind, ns, name)
        self.deletes: list[dict[str, Any]] = []
        self.requests: list[str] = []
        self.log_reads: list[dict[str, str]] = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.kubeconfig = root / "kubeconfig"
        self.kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {"name": "c", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}
                    ],
                    "users": [{"name": "u", "user": {"token": TOKEN}}],
                    "contexts": [{"name": "stand-in", "context": {"cluster": "c", "user": "u"}}],
                    "current-context": "stand-in",
                }
            )
        )

    # -- the server ---------------------------------------------------------------------

    def up(self) -> None:
        if self.sock.fileno() < 0:  # brought back after down(): the same port
            self.sock = socket.socket()
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(("127.0.0.1", self.port))
        cfg = uvicorn.Config(self.app(), log_level="warning", ws="wsproto", lifespan="off")
        self.server = uvicorn.Server(cfg)
        sock = self.sock
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]})
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the stand-in API server did not start"
            time.sleep(0.01)

    def down(self) -> None:
        """The API goes away (the network to the cluster cut); pods keep running."""
        assert self.server is not None and self.thread is not None
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()

    def close(self) -> None:
        if self.server is not None and not self.server.should_exit:
            self.down()
        with self.lock:
            pods = list(self.pods.values())
        for pod in pods:
            self._stop(pod, 2)

    def app(self) -> Starlette:
        def authed(fn: Callable[[Request], Any]) -> Callable[[Request], Any]:
            async def wrapped(request: Request) -> Response:
                self.requests.append(f"{request.method} {request.url.path}")
                if request.headers.get("authorization") != f"Bearer {TOKEN}":
                    return _status(401, "Unauthorized", "Unauthorized")
                return await fn(request)  # type: ignore[no-any-return]

            return wrapped

        jobs = "/apis/batch/v1/namespaces/{ns}/jobs"
        pods = "/api/v1/namespaces/{ns}/pods"
        return Starlette(
            routes=[
                Route(jobs, authed(self.create_job), methods=["POST"]),
                Route(jobs, authed(self.list_jobs), methods=["GET"]),
                Route(jobs + "/{name}", authed(self.read_job), methods=["GET"]),
                Route(jobs + "/{name}", authed(self.delete_job), methods=["DELETE"]),
                Route(
                    "/api/v1/namespaces/{ns}/configmaps", authed(self.create_obj), methods=["POST"]
                ),
                Route("/api/v1/namespaces/{ns}/secrets", authed(self.create_obj), methods=["POST"]),
                Route(pods, authed(self.list_pods), methods=["GET"]),
                Route(pods + "/{name}/log", authed(self.pod_log), methods=["GET"]),
                WebSocketRoute(pods + "/{name}/exec", self.exec),
            ]
        )

    # -- jobs --------------------------------------------------------------------------

    def job_obj(self, ns: str, name: str) -> dict[str, Any]:
        job = json.loads(json.dumps(self.jobs[(ns, name)]))
        pod = next((p for p in self.pods.values() if p.job_name == name and p.ns == ns), None)
        conds = []
        if job.get("expired"):
            conds.append({"type": "Failed", "status": "True", "reason": "DeadlineExceeded"})
        elif pod is not None and pod.exit_code is not None:
            kind = "Complete" if pod.exit_code == 0 else "Failed"
            conds.append({"type": kind, "status": "True", "reason": "BackoffLimitExceeded"})
        job["status"] = {"conditions": conds} if conds else {"active": 1}
        return job

    async def create_job(self, request: Request) -> Response:
        ns = request.path_params["ns"]
        body = await request.json()
        name = body["metadata"]["name"]
        with self.lock:
            if (ns, name) in self.jobs:
                return _status(409, "AlreadyExists", f'jobs.batch "{name}" already exists')
            body["metadata"]["uid"] = secrets.token_hex(8)
            body["metadata"]["namespace"] = ns
            body["metadata"]["creationTimestamp"] = _stamp()
            self.jobs[(ns, name)] = body
            pod = Pod(self.root / "pods", ns, body)
            self.pods[pod.name] = pod
            obj = self.job_obj(ns, name)
        threading.Thread(target=self._kubelet, args=(pod,), daemon=True).start()
        return JSONResponse(obj, status_code=201)

    async def read_job(self, request: Request) -> Response:
        ns, name = request.path_params["ns"], request.path_params["name"]
        with self.lock:
            if (ns, name) not in self.jobs:
                return _status(404, "NotFound", f'jobs.batch "{name}" not found')
            return JSONResponse(self.job_obj(ns, name))

    async def list_jobs(self, request: Request) -> Response:
        ns = request.path_params["ns"]
        field = request.query_params.get("fieldSelector", "")
        name = field.removeprefix("metadata.name=")
        if request.query_params.get("watch") not in ("true", "1"):
            with self.lock:
                items = [self.job_obj(n, j) for (n, j) in self.jobs if n == ns]
            return JSONResponse({"apiVersion": "batch/v1", "kind": "JobList", "items": items})
        timeout = float(request.query_params.get("timeoutSeconds", "30"))
        return StreamingResponse(self._watch(ns, name, timeout), media_type="application/json")

    async def _watch(self, ns: str, name: str, timeout: float):  # type: ignore[no-untyped-def]
        """Events for one Job: ADDED, then MODIFIED when it finishes, DELETED when gone."""
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            with self.lock:
                obj = self.job_obj(ns, name) if (ns, name) in self.jobs else None
            if obj is None:
                if last is not None:
                    yield json.dumps({"type": "DELETED", "object": last}) + "\n"
                return
            state = json.dumps(obj["status"], sort_keys=True)
            if state != (json.dumps(last["status"], sort_keys=True) if last else None):
                kind = "ADDED" if last is None else "MODIFIED"
                yield json.dumps({"type": kind, "object": obj}) + "\n"
            last = obj
            await asyncio.sleep(0.05)  # the stand-in's own poll: the client sees events

    async def delete_job(self, request: Request) -> Response:
        ns, name = request.path_params["ns"], request.path_params["name"]
        body = json.loads(await request.body() or b"{}")
        self.deletes.append(body)
        with self.lock:
            if (ns, name) not in self.jobs:
                return _status(404, "NotFound", f'jobs.batch "{name}" not found')
            obj = self.job_obj(ns, name)
            pods = [p for p in self.pods.values() if p.job_name == name and p.ns == ns]
        for pod in pods:  # Foreground: the pods go before the Job
            await run_in_threadpool(self._stop, pod, 15)
        uid = obj["metadata"]["uid"]
        with self.lock:
            for pod in pods:
                self.pods.pop(pod.name, None)
            del self.jobs[(ns, name)]
            for key, o in list(self.objects.items()):
                if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences", [])):
                    del self.objects[key]
        return JSONResponse(obj)

    async def create_obj(self, request: Request) -> Response:
        ns = request.path_params["ns"]
        body = await request.json()
        key = (body["kind"], ns, body["metadata"]["name"])
        with self.lock:
            if key in self.objects:
                return _status(409, "AlreadyExists", f"{key[0]} {key[2]} already exists")
            body["metadata"]["namespace"] = ns
            self.objects[key] = body
            self.lock.notify_all()
        return JSONResponse(body, status_code=201)

    # -- pods --------------------------------------------------------------------------

    async def list_pods(self, request: Request) -> Response:
        ns = request.path_params["ns"]
        sel = request.query_params.get("labelSelector", "")
        with self.lock:
            items = [p.obj() for p in self.pods.values() if p.ns == ns and _matches(p.labels, sel)]
        return JSONResponse({"apiVersion": "v1", "kind": "PodList", "items": items})

    async def pod_log(self, request: Request) -> Response:
        """The log as the API serves it: `follow` streams it on until the pod ends;
        `tailLines`, `limitBytes` and `sinceSeconds` (the stand-in knows only when its log last
        grew: all of it, or nothing) cut it. Each request's query is kept in `log_reads`."""
        q = request.query_params
        self.log_reads.append(dict(q))
        pod = self.pods.get(request.path_params["name"])
        if pod is None:
            return _status(404, "NotFound", "pod not found")
        data = pod.log.read_bytes()
        if "sinceSeconds" in q and pod.log.stat().st_mtime < time.time() - int(q["sinceSeconds"]):
            data = b""
        if "tailLines" in q:
            n = int(q["tailLines"])
            data = b"".join(data.splitlines(keepends=True)[-n:]) if n else b""
        if "limitBytes" in q:
            data = data[: int(q["limitBytes"])]
        if q.get("follow") != "true":
            return Response(data, media_type="text/plain")

        async def more():  # type: ignore[no-untyped-def]
            sent = len(data)
            yield data
            while True:
                ended = pod.exit_code is not None
                now = pod.log.read_bytes()
                if len(now) > sent:
                    yield now[sent:]
                    sent = len(now)
                elif ended:
                    return
                await asyncio.sleep(0.05)  # the stand-in's own poll of the file

        return StreamingResponse(more(), media_type="text/plain")

    async def exec(self, ws: WebSocket) -> None:
        if ws.headers.get("authorization") != f"Bearer {TOKEN}":
            await ws.close(code=4401)
            return
        self.requests.append(f"EXEC {ws.url.path}")
        await ws.accept(subprotocol="v4.channel.k8s.io")
        pod = self.pods.get(ws.path_params["name"])
        argv = ws.query_params.getlist("command")
        if pod is None or pod.phase != "Running" or not argv:
            await ws.send_bytes(
                b"\x03" + json.dumps({"status": "Failure", "message": "no"}).encode()
            )
            await ws.close()
            return
        done = await run_in_threadpool(
            subprocess.run,
            pod.command(argv),
            capture_output=True,
            env=pod.env,
            cwd=pod.cwd,
            timeout=30,
        )
        if done.stdout:
            await ws.send_bytes(b"\x01" + done.stdout)
        if done.stderr:
            await ws.send_bytes(b"\x02" + done.stderr)
        if done.returncode == 0:
            status: dict[str, Any] = {"metadata": {}, "status": "Success"}
        else:
            status = {
                "metadata": {},
                "status": "Failure",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": str(done.returncode)}]},
            }
        await ws.send_bytes(b"\x03" + json.dumps(status).encode())
        await ws.close()

    # -- the kubelet -------------------------------------------------------------------

    def _object(self, kind: str, ns: str, name: str) -> dict[str, Any]:
        """Wait for an object a pod mounts, as a kubelet retries a missing volume."""
        with self.lock:
            assert self.lock.wait_for(lambda: (kind, ns, name) in self.objects, 10), name
            return self.objects[(kind, ns, name)]

    def _env(self, pod: Pod, container: dict[str, Any]) -> dict[str, str]:
        """A container's environment: values, and a Secret's keys (once it exists)."""
        env = {}
        for e in container.get("env", []):
            if "value" in e:
                env[e["name"]] = pod.local(e["value"])
            else:
                ref = e["valueFrom"]["secretKeyRef"]
                secret = self._object("Secret", pod.ns, ref["name"])
                env[e["name"]] = secret["stringData"][ref["key"]]
        return env

    def _init_steps(self, pod: Pod) -> bool:
        """Each init container in turn, as the kubelet runs them; False when one failed (the
        pod then fails, as a restartPolicy Never pod does)."""
        for step in pod.spec.get("initContainers", []) if self.inits else []:
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            env.update(self._env(pod, step))
            Path(env.get("HOME", str(pod.workspace))).mkdir(parents=True, exist_ok=True)
            with open(pod.log, "ab") as log:
                done = subprocess.run(
                    pod.command(step["command"]),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    cwd=pod.workspace,
                    timeout=60,
                )
            if done.returncode != 0:
                with self.lock:
                    pod.exit_code, pod.phase = done.returncode, "Failed"
                    self.lock.notify_all()
                return False
        return True

    def _kubelet(self, pod: Pod) -> None:
        spec = pod.spec
        c = spec["containers"][0]
        if not self._init_steps(pod):
            return
        for vol in spec.get("volumes", []):
            if "configMap" in vol:
                cm = self._object("ConfigMap", pod.ns, vol["configMap"]["name"])
                mount = next(m for m in c["volumeMounts"] if m["name"] == vol["name"])
                where = Path(pod.local(mount["mountPath"]))
                where.mkdir(parents=True, exist_ok=True)
                for item in vol["configMap"]["items"]:
                    (where / item["path"]).write_text(cm["data"][item["key"]])
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **self._env(pod, c)}
        Path(env.get("HOME", str(pod.workspace))).mkdir(parents=True, exist_ok=True)
        pod.env = env
        pod.cwd = pod.local(c.get("workingDir", "/workspace"))
        Path(pod.cwd).mkdir(parents=True, exist_ok=True)
        with open(pod.log, "ab") as log:
            proc = subprocess.Popen(
                pod.command(c["command"]),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=pod.cwd,
                start_new_session=True,
            )
        with self.lock:
            pod.proc = proc
            pod.phase = "Running"
            self.lock.notify_all()
        code = proc.wait()
        with self.lock:
            pod.exit_code = code if code >= 0 else 128 - code
            pod.phase = "Succeeded" if code == 0 else "Failed"
            self.lock.notify_all()

    def _stop(self, pod: Pod, grace: float) -> None:
        """The runtime's stop: SIGTERM to the container's first process, SIGKILL after grace."""
        with self.lock:
            self.lock.wait_for(lambda: pod.proc is not None or pod.phase != "Pending", 10)
            proc = pod.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def expire(self, ns: str, job_name: str) -> None:
        """activeDeadlineSeconds passing: the Job fails as DeadlineExceeded, its pod stopped."""
        with self.lock:
            self.jobs[(ns, job_name)]["expired"] = True
            pods = [p for p in self.pods.values() if p.job_name == job_name]
        for pod in pods:
            self._stop(pod, 2)

    def running(self, job_name: str, timeout: float = 20) -> Pod:
        """The Job's pod once its process runs."""
        with self.lock:
            got = self.lock.wait_for(
                lambda: any(
                    p.job_name == job_name and p.phase != "Pending" for p in self.pods.values()
                ),
                timeout,
            )
            assert got, f"{job_name} never ran"
            return next(p for p in self.pods.values() if p.job_name == job_name)

    def cleanup(self) -> None:
        shutil.rmtree(self.root / "pods", ignore_errors=True)
