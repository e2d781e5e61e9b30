"""`looop worker start`'s plain spellings read without click: the start they ask for (Start),
or None for anything click should word. The face (verbs/worker.py) and the click verb's
move (cli/startwork.py) share it."""

from __future__ import annotations

_OPTS = {
    "--runner": "runner",
    "--command": "command",
    "--verify": "verify",
    "--repo": "repo",
    "--branch": "branch",
    "--host": "host",
    "--journal": "journal",
    "-j": "journal",
}
# flag -> the `sandbox` field it sets
_FLAGS = {"--sandbox": "on", "--no-sandbox": "off"}
RESUME_FLAG = "--resume"  # `looop up` starts it again on its conversation after a crash
STEERABLE_FLAG = "--steerable"  # decisions may steer it though it is less contained


class Start:
    __slots__ = (
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


def parse_fast(argv: list[str]) -> Start | None:
    """`worker start ID [PROMPT] [--runner R] [--command C] [--verify V] [-j J]
    [--sandbox | --no-sandbox] [--repo PATH] [--branch NAME] [--resume] [--steerable]
    [--host NAME]`, options in
    any order, `--opt=value` too; None sends everything else to click."""
    if len(argv) < 2 or argv[0] not in ("worker", "w") or argv[1] != "start":
        return None
    start = Start()
    seen: set[str] = set()
    positional: list[str] = []
    i, rest = 0, argv[2:]
    while i < len(rest):
        tok = rest[i]
        name, value = tok, None
        if tok.startswith("--") and "=" in tok:
            name, value = tok.split("=", 1)
        if tok == RESUME_FLAG:
            if start.resume:
                return None
            start.resume = True
        elif tok == STEERABLE_FLAG:
            if start.steerable:
                return None
            start.steerable = True
        elif tok in _FLAGS:
            if "sandbox" in seen:
                return None  # both flags, or one twice: click words it
            seen.add("sandbox")
            start.sandbox = _FLAGS[tok]
        elif name in _OPTS:
            if value is None:
                if i + 1 >= len(rest):
                    return None
                value = rest[i + 1]
                i += 1
            field = _OPTS[name]
            if field in seen or (value.startswith("-") and value != "-"):
                return None
            seen.add(field)
            setattr(start, field, value)
        elif tok.startswith("-") and tok != "-":
            return None  # --help, -h, an unknown option, `--`: click words these
        else:
            positional.append(tok)
        i += 1
    if not positional:
        return None
    start.worker_id = positional[0]
    # the prompt's words joined as v1.0 does (`worker start w1 fix the bug`)
    start.prompt = " ".join(positional[1:]) if len(positional) > 1 else None
    return start
