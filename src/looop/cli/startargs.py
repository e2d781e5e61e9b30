"""`looop worker start`'s request as the click verb (cli/workers.py) hands it to its move
(cli/startwork.py)."""

from __future__ import annotations


class Start:
    __slots__ = (
        "attempts",
        "branch",
        "budget",
        "command",
        "host",
        "journal",
        "on_budget",
        "prompt",
        "repo",
        "repos",
        "resume",
        "runner",
        "sandbox",
        "steerable",
        "verify",
        "worker_id",
    )

    def __init__(self) -> None:
        self.worker_id = ""
        self.prompt: str | None = None
        self.runner: str | None = None
        self.command: str | None = None
        self.verify: str | None = None
        self.journal: str | None = None
        self.sandbox: str | None = None  # "on" / "off"; None: the config decides
        self.repo: str | None = None  # run it in its own git worktree of this repo
        self.repos: tuple[str, ...] = ()  # several --repo: one worktree of each (click's)
        self.branch: str | None = None
        self.resume = False
        self.steerable = False  # a human lets decisions steer it (act/reach.py)
        self.host: str | None = None  # an SSH host's name (looop host add), or local
        self.budget: float | None = None  # its spend ceiling (USD); click's --budget only
        self.on_budget = "pause"
        self.attempts: int | list[str] | None = None  # --attempts: a count or runners
