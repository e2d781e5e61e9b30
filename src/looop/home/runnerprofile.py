"""What looop knows about one agent CLI, as one value (RunnerProfile): its preset lines, where it
talks and keeps its state (the sandbox), how a user logs in and where its endpoint is set
(doctor, sandbox/endpoints.py), its prices, the screens where it waits for a human, how its stream
and its session records are read. Every table that knows a CLI is a lookup over a registry of
these (home/runners.py); a new CLI is one new profile file plus tests.

A part that needs a higher room (a TOML reader, a stream renderer) is data or a small stdlib
callable here; the higher room keeps the one generic function that reads it."""

from __future__ import annotations

from looop.home import jsonio

TYPE_CHECKING = False  # not `from typing`: the status fast path loads the registry

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    # (env, the worker line's words) -> (variables for its box, why it cannot start or "")
    FirstRun = Callable[[Mapping[str, str], Sequence[str]], tuple[dict[str, str], str]]

    # (kind, text, detail): "session", "said", "tool", "tool_failed", "done", "failed", "note"
    Said = tuple[str, str, object] | None
    # (model, input tokens with cached ones, cached, output)
    RunTokens = list[tuple[str, int, int, int]]
    # (message id, model, input tokens with cached ones, cached, output)
    RecordUsage = tuple[str, str, int, int, int] | None


# types.MappingProxyType without loading `types` (the status fast path loads the registry)
MappingProxyType = type(type.__dict__)


class RunnerProfile:
    """One agent CLI's profile: data and small callables, frozen once made."""

    def __init__(
        self,
        *,
        name: str,
        preset: Mapping[str, str],  # {"tick", "worker", "resume"} command lines
        note: str = "",  # what `looop init` tells a user choosing it
        root_note: str = "",  # and a root user outside a sandbox (IS_SANDBOX unset)
        domains: tuple[str, ...] = (),  # the model API hosts it talks to (a box's network)
        state: tuple[str, ...] = (),  # what it writes under $HOME in a session (~ unexpanded)
        config: tuple[str, ...] = (),  # what it reads there: read-only in a box
        locked: tuple[str, ...] = (),  # inside its state, what it obeys at start ("d/": folder)
        placeholders: tuple[tuple[str, str], ...] = (),  # (file, what reads as none): made first
        made: tuple[str, ...] = (),  # folders it makes at its start inside its read-only config
        base_url_env: str = "",  # the variable its SDK takes a base URL from ("" none)
        login_env: tuple[str, ...] = (),  # any one of these set: logged in
        login_files: tuple[tuple[str, str], ...] = (),  # (folder variable or "" for $HOME, file)
        login_fix: str = "",
        # its own provider files that may set the endpoint: (a variable naming a folder or, with
        # "" under it, a file; the file under that folder; the path under $HOME when unset)
        endpoint_files: tuple[tuple[str, str, str], ...] = (),
        # the keys to the URL in such a file: "*" any key, "<field>" the key its top-level
        # field names; whether a URL found there is surely the one in use
        endpoint_keys: tuple[str, ...] = (),
        endpoint_sure: bool = False,
        reports_cost: bool = True,  # its stream or records say what it spends
        prices: Mapping[str, Mapping[str, float]] | None = None,  # USD per 1M tokens, by model
        busy: tuple[str, ...] = (),  # screen patterns: working (wins over everything)
        needs: tuple[tuple[str, str], ...] = (),  # (kind "approval"/"idle", screen pattern)
        # the built-in stream shape it speaks (decide/streams.py, decide/cost/meter.py:
        # "result", "agent", "thread", "step"); else its own, read by these:
        stream: str = "",
        is_own: Callable[[dict[str, object]], bool] | None = None,
        event: Callable[[dict[str, object]], Said] | None = None,
        run_tokens: Callable[[dict[str, object]], RunTokens] | None = None,  # its closing event's
        token_events: tuple[str, ...] = (),  # the event types run_tokens reads
        # its session records (loop/workmeter.py, loop/clirecords.py)
        session_file: Callable[[Mapping[str, str], str], str | None] | None = None,  # (env, id)
        record_usage: Callable[[dict[str, object]], RecordUsage] | None = None,
        record_mark: str = "",  # text every record line holding usage has (the rest: skipped)
        # else its records' built-in shape (clirecords.py: "messages", "totals", "costs", "store")
        records: str = "",
        # how its worker is given looop's MCP server (workers/mcpwire.py): "flag" (a
        # --mcp-config=JSON word after the program), "overrides" (`-c mcp_servers.*` words),
        # "env" (a JSON config in the variable mcp_env, unless the user set one), "" none
        mcp: str = "",
        mcp_env: str = "",
        # a CLI that names its conversation itself: where looop finds it (workers/resume.py):
        # "rollout" (its session files under id_home), "session-list" (it is asked); ""
        # {{session_id}} gives it
        finds_id: str = "",
        # its folder (a variable naming it, else the path under $HOME) and the variables of a
        # key it takes for a login: the account a usage limit holds (home/usagewindows.py)
        id_home: tuple[str, str] = ("", ""),
        keys: tuple[str, ...] = (),
        # before a sandboxed worker starts (workers/firstrun.py; the env, its line's words):
        # (the variables its box starts with so the CLI asks nothing, "") or ({}, why not)
        first_run: FirstRun | None = None,
        enter_gap_s: float = 0.0,  # a typed line's Enter waits this long after its echo
    ) -> None:
        given = dict(locals())
        if not name or not preset:
            raise ValueError("a runner profile needs a name and its preset lines")
        for key in RunnerProfile.__slots__:
            value = given[key]
            if key in ("preset", "prices"):
                value = _frozen_map(value)
            object.__setattr__(self, key, value)

    # a slot per keyword of __init__: its fields are named once
    __slots__ = __init__.__code__.co_varnames[1 : 1 + __init__.__code__.co_kwonlyargcount]

    if TYPE_CHECKING:
        name: str
        preset: Mapping[str, str]
        note: str
        root_note: str
        domains: tuple[str, ...]
        state: tuple[str, ...]
        config: tuple[str, ...]
        locked: tuple[str, ...]
        placeholders: tuple[tuple[str, str], ...]
        made: tuple[str, ...]
        base_url_env: str
        login_env: tuple[str, ...]
        login_files: tuple[tuple[str, str], ...]
        login_fix: str
        endpoint_files: tuple[tuple[str, str, str], ...]
        endpoint_keys: tuple[str, ...]
        endpoint_sure: bool
        reports_cost: bool
        prices: Mapping[str, Mapping[str, float]]
        busy: tuple[str, ...]
        stream: str
        needs: tuple[tuple[str, str], ...]
        is_own: Callable[[dict[str, object]], bool] | None
        event: Callable[[dict[str, object]], Said] | None
        run_tokens: Callable[[dict[str, object]], RunTokens] | None
        token_events: tuple[str, ...]
        session_file: Callable[[Mapping[str, str], str], str | None] | None
        record_usage: Callable[[dict[str, object]], RecordUsage] | None
        record_mark: str
        records: str
        mcp: str
        mcp_env: str
        finds_id: str
        id_home: tuple[str, str]
        keys: tuple[str, ...]
        first_run: FirstRun | None
        enter_gap_s: float

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"runner profile {self.name}: frozen ({key})")

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"runner profile {self.name}: frozen ({key})")

    def __repr__(self) -> str:
        return f"RunnerProfile({self.name!r})"


def _frozen_map(value: object) -> object:
    """A read-only copy (rows too), so no table can change a profile's preset or prices."""
    if not isinstance(value, dict):
        return MappingProxyType({})
    return MappingProxyType(
        {k: MappingProxyType(dict(v)) if isinstance(v, dict) else v for k, v in value.items()}
    )


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
