"""What a worker start is (`StartRequest`), what it gives back (`Started`), and what a start
placed away from home needs from its caller (`Away`: remote/dispatch.py, handed in, since
workers sit below the remote room). Apart from workers/launch.py so every room a start passes
through (act, remote's dispatch, SSH and Kubernetes) reads them without loading the start."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple, Protocol

from looop.sessions.state import Session

if TYPE_CHECKING:
    from looop.core.context import Ctx
    from looop.home.config import Config
    from looop.home.sandboxpolicy import SandboxPolicy


Resumable = tuple[str | None, str | None, str | None]  # resume template, conversation, find
WORKER_SIZE = (120, 40)  # agent TUIs render better than at 80x24; shots stay readable


class StartRequest(NamedTuple):
    """One worker start, as asked and then as worked out: the one value that goes from the
    move through launch, dispatch and the SSH or Kubernetes backend. The first fields are
    what the caller asks; launch fills in the rest (`dataclasses.replace`) once it found the
    runner and placed the worker, so every backend reads the same worked-out start."""

    worker: str  # its id
    brief: str  # what it is asked to do (the prompt file holds the contract, then this)
    runner: str | None = None  # a configured runner's name; None: the config's default
    command: str | None = None  # the caller's own worker line in place of the runner's
    verify: str | None = None  # one shell check run once after it exits
    sandbox: SandboxPolicy | None = None  # its own setting; None: the runner's, else config's
    repo: str | None = None  # run it in its own checkout of this repo (a path or a URL)
    branch: str | None = None  # that checkout's branch (default looop/<id>)
    repos: tuple[str, ...] = ()  # every repo of a worker of several (`repo`: the first)
    resume: bool = False  # `looop up` starts it again on its conversation after a crash
    host: str | None = None  # a registered host, "local", or None: placed
    steerable: bool = False  # a human's opt-in to decisions steering it (act/reach.py)
    decided: bool = False  # the pulse's own move: it may tighten the sandbox, never loosen it
    # worked out by launch before the start goes anywhere
    line: str = ""  # the worker line, {{prompt_file}} still in it
    resumable: Resumable = (None, None, None)  # how a host records it for `looop restart`
    policy: SandboxPolicy | None = None  # the sandbox it runs in, resolved
    mcp: bool = False  # the contract as MCP tools in its CLI's config
    bounds: Mapping[str, int] = MappingProxyType({})  # the home's knobs it is held to
    size: tuple[int, int] = WORKER_SIZE  # its terminal

    def env_additions(self) -> dict[str, str]:
        """What its environment gets on top of the home's, wherever it runs."""
        return {"LOOOP_SESSION_ID": self.worker, "LOOOP_RUNNER": self.runner or ""}


class Started(NamedTuple):
    session: Session
    runner: str
    prompt_file: str


class Away(Protocol):
    """Where a start goes once hosts are registered: remote/dispatch.py, handed in by the
    caller (workers sit below the remote room). `place`: (ctx, id, host, live workers, their
    cap, repo) -> the host's name, or None for here."""

    @property
    def place(self) -> Callable[[Ctx, str, str | None, int, int, str | None], str | None]: ...
    @property
    def start_there(self) -> Callable[[Ctx, str, StartRequest, Config], Started]: ...
