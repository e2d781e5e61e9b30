"""What looop knows about one agent CLI, as one value (RunnerProfile): its preset lines, where it
talks and keeps its state (the sandbox), how a user logs in and where its endpoint is set
(doctor, sandbox/endpoints.py), its prices, the screens where it waits for a human, how its stream
and its session records are read. Every table that knows a CLI is a lookup over a registry of
these (runners/__init__.py); a new CLI is one new profile file plus tests.

A part that needs a higher room (a TOML reader, a stream renderer) is data or a small stdlib
callable here; the higher room keeps the one generic function that reads it."""

import os
import re
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

from looop.home import jsonio

# (env, the worker line's words) -> (variables for its box, why it cannot start or "")
FirstRun = Callable[[Mapping[str, str], Sequence[str]], tuple[dict[str, str], str]]

# (kind, text, detail): "session", "said", "tool", "tool_failed", "done", "failed", "note"
Said = tuple[str, str, object] | None
# (model, input tokens with cached ones, cached, output)
RunTokens = list[tuple[str, int, int, int]]
# (message id, model, fresh input tokens, cached, cache written, output, the USD it says
# or None: its tokens priced)
RecordUsage = tuple[str, str, int, int, int, int, object] | None
# (env, the worker's directory, its id, its start) -> the conversation it began, or None
FindId = Callable[[Mapping[str, str], str, str, float], str | None]


# the API keys a multi-provider CLI takes as a login (its profile's login_env)
PROVIDER_KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY", "GROQ_API_KEY",
                 "OPENROUTER_API_KEY", "XAI_API_KEY")  # fmt: skip


class _Fields(NamedTuple):
    """A RunnerProfile's fields (the notes on them: RunnerProfile)."""

    name: str
    preset: Mapping[str, str]  # {"tick", "worker", "resume"} command lines
    note: str = ""  # what `looop init` tells a user choosing it
    root_note: str = ""  # and a root user outside a sandbox (IS_SANDBOX unset)
    domains: tuple[str, ...] = ()  # the model API hosts it talks to (a box's network)
    state: tuple[str, ...] = ()  # what it writes under $HOME in a session (~ unexpanded)
    config: tuple[str, ...] = ()  # what it reads there: read-only in a box
    locked: tuple[str, ...] = ()  # inside its state, what it obeys at start ("d/": folder)
    placeholders: tuple[tuple[str, str], ...] = ()  # (file, what reads as none): made first
    made: tuple[str, ...] = ()  # folders it makes at its start inside its read-only config
    base_url_env: str = ""  # the variable its SDK takes a base URL from ("" none)
    login_env: tuple[str, ...] = ()  # any one of these set: logged in
    login_files: tuple[tuple[str, str], ...] = ()  # (folder variable or "" for $HOME, file)
    login_fix: str = ""
    endpoint_files: tuple[tuple[str, str, str], ...] = ()
    endpoint_keys: tuple[str, ...] = ()
    endpoint_sure: bool = False
    reports_cost: bool = True  # its stream or records say what it spends
    prices: Mapping[str, Mapping[str, float]] = MappingProxyType({})  # USD / 1M tokens
    busy: tuple[str, ...] = ()  # screen patterns: working (wins over everything)
    needs: tuple[tuple[str, str], ...] = ()  # (kind "approval"/"idle", screen pattern)
    stream: str = ""
    is_own: Callable[[dict[str, object]], bool] | None = None
    event: Callable[[dict[str, object]], Said] | None = None
    run_tokens: Callable[[dict[str, object]], RunTokens] | None = None  # its closing event's
    token_events: tuple[str, ...] = ()  # the event types run_tokens reads
    session_file: Callable[[Mapping[str, str], str], str | None] | None = None  # (env, id)
    record_usage: Callable[[dict[str, object]], RecordUsage] | None = None
    record_mark: str = ""  # text every record line holding usage has (the rest: skipped)
    records: str = ""
    # (store, conversation, updated since, at most) -> its message rows (id, updated, JSON)
    store_rows: Callable[[str, str, int, int], list[tuple[object, ...]] | None] | None = None
    mcp: str = ""
    mcp_env: str = ""
    find_id: FindId | None = None
    id_home: tuple[str, str] = ("", "")
    keys: tuple[str, ...] = ()
    first_run: FirstRun | None = None
    enter_gap_s: float = 0.0  # a typed line's Enter waits this long after its echo


class RunnerProfile(_Fields):
    """One agent CLI's profile: data and small callables, frozen once made. Beside the notes
    on each keyword: `endpoint_files` are its own provider files that may set the endpoint (a
    variable naming a folder or, with "" under it, a file; the file; the path under $HOME
    when unset), `endpoint_keys` the keys to the URL there ("*" any, "<field>" the key its
    top-level field names), `endpoint_sure` whether a URL found there is surely the one in
    use. `stream`: the built-in stream shape it speaks ("result", "agent", "thread", "step";
    decide/streams.py), else its own, read by `is_own`, `event` and `run_tokens`. Its session
    records (loop/workmeter.py, loop/clirecords.py): `session_file`, `record_usage`,
    `record_mark`, or a store's message rows (`store_rows`), else a built-in `records` shape
    ("totals").
    `mcp`: how its worker gets looop's MCP server (workers/mcpwire.py): "flag", "overrides",
    "env" (a JSON config in `mcp_env`) or "" none. `find_id`: how the conversation of a CLI
    that names it itself is found in its own files (`find`: workers/resume.py, the meter); None
    when {{session_id}} gives it. `id_home` and `keys`: its folder and
    the variables of a key it takes for a login (spend/usagewindows.py). `first_run`: what its
    box starts with so the CLI asks nothing (workers/boxed.py).
    Made by keyword, named, with preset lines, its tables read-only; a NamedTuple, as a frozen
    dataclass of 38 fields costs every verb ~2 ms to define."""

    __slots__ = ()

    def __new__(cls, *, name: str, preset: Mapping[str, str], **rest: Any) -> "RunnerProfile":
        if not name or not preset:
            raise ValueError("a runner profile needs a name and its preset lines")
        rest["prices"] = _frozen_map(rest.get("prices", {}))
        return super().__new__(cls, name=name, preset=_frozen_map(preset), **rest)

    def __repr__(self) -> str:
        return f"RunnerProfile({self.name!r})"

    def at_home(self, env: Mapping[str, str], home: object) -> Mapping[str, str]:
        """`env` pointing it at `home`, the folder a worker's record says it used (id_home)."""
        var = self.id_home[0]
        return {**env, var: home} if var and isinstance(home, str) and home else env

    def find(
        self, env: Mapping[str, str], home: object, cwd: str, wid: str, since: float
    ) -> str | None:
        """The conversation worker `wid` (started at `since` in `cwd`) began, found in the
        CLI's own files (find_id) and believed only when it is an id; None when not (yet)."""
        conv = self.find_id(self.at_home(env, home), cwd, wid, since) if self.find_id else None
        return conv if conv is not None and valid_id(conv) else None


# What a conversation id may be before it goes on a command line: a UUID, a `ses_…`. Nothing a
# shell reads specially.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def valid_id(conv: object) -> bool:
    return isinstance(conv, str) and _ID.fullmatch(conv) is not None


def opens_brief(text: object, wid: str) -> bool:
    """Whether a user message is worker `wid`'s brief: the contract opens it, naming the worker
    at once. A tick prompt that quotes a worker's screen further in is not one."""
    return isinstance(text, str) and f"You are worker `{wid}`" in text[:512]


def same_dir(where: object, cwd: str) -> bool:
    if not isinstance(where, str):
        return False
    return where == cwd or os.path.realpath(where) == os.path.realpath(cwd)


def _frozen_map(value: object) -> MappingProxyType[str, Any]:
    """A read-only copy (rows too), so no table can change a profile's preset or prices."""
    if not isinstance(value, dict):
        return MappingProxyType({})
    return MappingProxyType(
        {k: MappingProxyType(dict(v)) if isinstance(v, dict) else v for k, v in value.items()}
    )


def count(v: object) -> int:
    """A token count: a whole non-negative number, else 0."""
    if isinstance(v, bool) or not isinstance(v, int | float) or v != v or v < 0 or v > 10**12:
        return 0
    return int(v)


def under(folder: str, names: str) -> tuple[str, ...]:
    """Each of the space-separated `names` inside `folder` (a profile's list of its paths)."""
    return tuple(folder + n for n in names.split())


def text(v: object) -> str:
    return v if isinstance(v, str) else ""


def read_json_file(path: str | None) -> dict[str, object] | None:
    """A CLI's own JSON settings file as an object; None when absent, unreadable or not one."""
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            got = jsonio.loads(f.read())
    except (OSError, ValueError, RecursionError):
        return None
    return got if isinstance(got, dict) else None
