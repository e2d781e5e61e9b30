"""Every field of a worker start (`StartRequest`) reaches each backend it can go to: a start
through launch and dispatch, caught where it leaves the home — the SSH satellite's `spawn`
request, the Kubernetes Job's shape — with each field set to a value of its own. A field
added to StartRequest without saying where it goes fails here."""

from __future__ import annotations

import json
from typing import Any

import pytest

from looop.core.context import Ctx
from looop.home.sandboxpolicy import SandboxPolicy
from looop.remote import bounds, dispatch
from looop.remote import hosts as reg
from looop.remote.kube.backend import HostedKube, StartSpec
from looop.remote.ssh.backend import as_session, spawn_request
from looop.workers.errors import WorkerError
from looop.workers.launch import start_worker
from looop.workers.started import WORKER_SIZE, StartRequest

# the fields a start on a host refuses in one line (they cover workers on this machine)
HERE_ONLY = {"resume", "steerable"}
SEVERAL = {"repos"}  # several repositories in one worker: paths on an SSH host (checked below)


def _home(ctx: Ctx) -> None:
    cfg = {
        "default": "sh",
        "runners": {
            "sh": {"worker": "sh {{prompt_file}}"},
            "other": {"worker": "x {{prompt_file}}"},
        },
        "web": {"url": "https://home.example:8443"},
        "mcp": {"worker_tools": True},
        "sandbox": "off",
    }
    ctx.paths.config.write_text(json.dumps(cfg))
    reg.add(ctx.paths.data, "h1", "ssh://u@h1.example", 0)
    k = reg.kube_host(ctx.paths.data, "k1", "k8s://ctx/ns", image="ghcr.io/example/looop:t")
    reg.save(ctx.paths.data, k)


def _asked(host: str, **kw: Any) -> StartRequest:
    """A start with every asked field given a value of its own."""
    return StartRequest(
        worker="w7",
        brief="BRIEF-7 do the thing",
        runner="sh",
        command="sh CMD-7 {{prompt_file}}",
        repo="https://example.com/r7.git",
        branch="b7",
        host=host,
        **kw,
    )


def _ssh_start(ctx: Ctx, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    caught: dict[str, Any] = {}

    def start_remote(
        c: Ctx, host: str, req: StartRequest, prompt: str, contract: str | None = None
    ) -> Any:
        caught.update(host=host, spawn=spawn_request(req, prompt, contract), req=req)
        tree = {"wid": req.worker, "repo": "/r", "branch": "b7", "base": "0", "path": "/t"}
        tree |= {"common": "/r/.git", "gitdir": "/r/.git/worktrees/w7"}
        return as_session(c.paths.data, host, {"id": req.worker, "alive": True}), [tree]

    monkeypatch.setattr(dispatch, "start_remote", start_remote)
    policy = SandboxPolicy(True, domains=("d7.example",))
    req = _asked("h1", verify="test -e V7", sandbox=policy)
    start_worker(ctx, ctx.knobs(), req, away=dispatch)  # type: ignore[arg-type]
    return caught


def test_every_field_of_a_start_reaches_the_ssh_satellite(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    _home(ctx)
    got = _ssh_start(ctx, monkeypatch)
    spawn, req = got["spawn"], got["req"]
    knobs = ctx.knobs()
    reaches = {
        "worker": spawn["id"] == "w7" and spawn["env"]["LOOOP_SESSION_ID"] == "w7",
        "brief": "BRIEF-7 do the thing" in spawn["prompt"],
        "runner": spawn["env"]["LOOOP_RUNNER"] == "sh",
        "command": "CMD-7" in spawn["line"] and "{{prompt_file}}" in spawn["line"],
        # kept at home: workers/verify.py runs it once the worker is over
        "verify": (ctx.paths.verify / "w7.cmd").read_text() == "test -e V7\n",
        "sandbox": req.policy == SandboxPolicy(True, domains=("d7.example",)),
        "repo": spawn["repo"] == "https://example.com/r7.git",
        "branch": spawn["branch"] == "b7",
        "host": got["host"] == "h1",
        "decided": req.decided is False,  # a human's start: its sandbox as asked
        "line": spawn["line"] == "sh CMD-7 {{prompt_file}}",
        "resumable": spawn.get("resume") is None,  # its own command: no conversation to name
        "policy": req.policy.on and req.policy.domains == ("d7.example",),
        "mcp": spawn.get("mcp") is True,
        "bounds": spawn["bounds"] == bounds.sent(knobs),
        "size": spawn["size"] == list(WORKER_SIZE),
    }
    names = set(StartRequest._fields)
    assert names - HERE_ONLY - SEVERAL == set(reaches), "a field of StartRequest has no check here"
    assert [k for k, ok in reaches.items() if not ok] == []


def test_every_field_of_a_start_reaches_the_kubernetes_job(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("kubernetes")
    _home(ctx)
    caught: dict[str, Any] = {}

    start_in_job = dispatch._start_in_job

    def caught_req(c: Ctx, h: reg.KubeHost, req: StartRequest, brief: str, cfg: Any) -> Any:
        caught.update(req=req)
        return start_in_job(c, h, req, brief, cfg)

    def start(b: HostedKube, spec: StartSpec, brief: str, *more: Any) -> Any:
        caught.update(shape=b.shape(spec, brief, *more), url=b.home_url)
        return as_session(b.home, b.host.name, {"id": spec.sid, "alive": True})

    monkeypatch.setattr(dispatch, "_start_in_job", caught_req)
    monkeypatch.setattr(HostedKube, "start", start)
    two = ("https://example.com/r7.git", "https://example.com/r8.git")
    start_worker(ctx, ctx.knobs(), _asked("k1", repos=two), away=dispatch)  # type: ignore[arg-type]
    shape, req = caught["shape"], caught["req"]
    reaches = {
        "worker": shape.sid == "w7" and shape.env["LOOOP_SESSION_ID"] == "w7",
        "brief": "BRIEF-7 do the thing" in shape.brief,
        "runner": shape.env["LOOOP_RUNNER"] == "sh",
        "command": "CMD-7" in " ".join(shape.argv),
        "repo": shape.repo == "https://example.com/r7.git",
        "branch": shape.branch == "b7",
        "host": req.host == "k1" and caught["url"] == "https://home.example:8443",
        "decided": req.decided is False,
        # the brief named where the pod mounts it
        "line": any(a.endswith("/w7.md") for a in shape.argv),
        "mcp": req.mcp is True,
        "policy": req.policy is not None and not req.policy.on,
        "bounds": dict(shape.bounds) == bounds.sent(ctx.knobs()),
        "size": tuple(shape.size) == WORKER_SIZE,
        # each cloned beside the other, the brief naming where
        "repos": shape.checkouts == (("r7", two[0]), ("r8", two[1]))
        and f"`r8/`: a clone of {two[1]}" in shape.brief,
    }
    # a pod is its own wall and runs no verify: each refused in one line (below)
    refused = {"verify", "sandbox", "resumable"}
    names = set(StartRequest._fields)
    assert names - HERE_ONLY - refused == set(reaches), "a field has no check here"
    assert [k for k, ok in reaches.items() if not ok] == []
    reg.mark_over(ctx.paths.data, "w7", 0)  # its Job ended: each start below is its own
    for kw in ({"verify": "true"}, {"sandbox": SandboxPolicy(True)}):
        with pytest.raises(WorkerError) as e:
            start_worker(ctx, ctx.knobs(), _asked("k1", **kw), away=dispatch)  # type: ignore[arg-type]
        assert "\n" not in str(e.value) and "host k1" in str(e.value)


@pytest.mark.parametrize("flag", sorted(HERE_ONLY))
def test_a_start_on_a_host_refuses_what_covers_this_machine_only(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch, flag: str
) -> None:
    _home(ctx)
    with pytest.raises(WorkerError, match=f"--{flag} covers workers on this machine only"):
        start_worker(ctx, ctx.knobs(), _asked("h1", **{flag: True}), away=dispatch)  # type: ignore[arg-type]
    assert reg.record(ctx.paths.data, "w7") is None


def test_several_repo_paths_reach_the_ssh_satellite_as_repos(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    _home(ctx)
    caught: dict[str, Any] = {}

    def start_remote(
        c: Ctx, host: str, req: StartRequest, prompt: str, contract: str | None = None
    ) -> Any:
        caught.update(spawn=spawn_request(req, prompt, contract))
        trees = []
        for name in ("app", "lib"):
            tree = {"wid": "w7", "repo": f"/src/{name}", "branch": "b7", "base": "0"}
            tree |= {"path": f"/sat/checkouts/w7/{name}", "common": f"/src/{name}/.git"}
            trees.append(tree | {"gitdir": f"/src/{name}/.git/worktrees/w7", "part": name})
        return as_session(c.paths.data, host, {"id": "w7", "alive": True}), trees

    monkeypatch.setattr(dispatch, "start_remote", start_remote)
    two = ("/src/app", "/src/lib")
    req = _asked("h1", repos=two)
    start_worker(ctx, ctx.knobs(), req._replace(repo=two[0]), away=dispatch)  # type: ignore[arg-type]
    spawn = caught["spawn"]
    assert spawn["repo"] == "/src/app" and spawn["repos"] == list(two), spawn
    assert spawn["contract"] and "**Your worktrees**" not in spawn["contract"]  # the host adds it
    kept = (ctx.paths.prompts / "w7.md").read_text()  # the home's copy names both, and where
    assert "/sat/checkouts/w7" in kept
    for name in ("app", "lib"):
        assert f"`{name}/`: a git worktree of /src/{name}, on branch `b7`" in kept


@pytest.mark.parametrize(
    ("host", "repos", "said"),
    [
        ("k1", ("https://example.com/r7.git", "/src/lib"), "local path"),
        ("k1", ("https://example.com/r7.git", "https://u:p@example.com/r8.git"), "credentials"),
        ("h1", ("/src/app", "https://example.com/r8.git"), "is a URL — clone it there first"),
        ("h1", ("/src/app", "https://u:secret@example.com/r8.git"), "credentials"),
    ],
)
def test_several_repos_a_host_cannot_take_are_refused_in_one_line(
    ctx: Ctx, host: str, repos: tuple[str, ...], said: str
) -> None:
    _home(ctx)
    req = _asked(host, repos=repos)._replace(repo=repos[0])
    with pytest.raises(WorkerError) as e:
        start_worker(ctx, ctx.knobs(), req, away=dispatch)  # type: ignore[arg-type]
    text = str(e.value)
    assert "\n" not in text and said in text, text
    assert reg.record(ctx.paths.data, "w7") is None
