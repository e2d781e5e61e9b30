"""What a worker start gives back (`Started`), and what a start placed away from home needs
from its caller (`Away`: remote/dispatch.py, handed in, since workers sit below the remote
room). Apart from workers/launch.py so both read without loading the start itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from looop.sessions.state import Session

if TYPE_CHECKING:
    from looop.core.context import Ctx
    from looop.home.config import Config
    from looop.home.sandboxpolicy import SandboxPolicy


@dataclass(frozen=True)
class Started:
    session: Session
    runner: str
    prompt_file: str


class Away(Protocol):
    """Where a start goes once hosts are registered: remote/dispatch.py, handed in by the
    caller (workers sit below the remote room)."""

    def place(
        self,
        ctx: Ctx,
        wid: str,
        host: str | None,
        local_live: int,
        max_workers: int,
        repo: str | None = None,
    ) -> str | None: ...

    def start_there(
        self,
        ctx: Ctx,
        host: str,
        wid: str,
        template: str,
        prompt: str,
        runner: str,
        repo: str | None,
        sandbox: SandboxPolicy | None,
        runner_sandbox: SandboxPolicy | None,
        cfg: Config,
        branch: str | None = None,
        verify: str | None = None,
        resume: tuple[str | None, str | None, str | None] = (None, None, None),
    ) -> Started: ...
