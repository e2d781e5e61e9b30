"""Codex CLI (`codex`) as a runner: its profile (runners/runnerprofile.py). Its stream is read by
the built-in reader (decide/streams.py), its rollouts' totals by loop/clirecords.py; the
conversation a worker began is found in its rollouts here (find_rollout)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from looop.home import jsonio, store
from looop.runners.runnerprofile import RunnerProfile, opens_brief, same_dir, under, valid_id

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from typing import Any

_GPT5 = {"input": 1.25, "cached_input": 0.125, "output": 10.0}
_MINI = {"input": 0.25, "cached_input": 0.025, "output": 2.0}
# Finding an id in rollouts: at most this many files looked at, this much of each read.
_MAX_FILES = 400
_HEAD = 1024 * 1024


def codex_home(env: Mapping[str, str]) -> str | None:
    """Where codex keeps its login and config: $CODEX_HOME, else ~/.codex."""
    if env.get("CODEX_HOME"):
        return env["CODEX_HOME"]
    return os.path.join(env["HOME"], ".codex") if env.get("HOME") else None


def rollouts(home: str) -> Iterator[str]:
    """Its rollout files, `<home>/sessions/YYYY/MM/DD/rollout-….jsonl` (date folders only, so
    no symlinked tree is entered; a folder it cannot read is passed over)."""
    for root, dirs, names in os.walk(os.path.join(home, "sessions/")):  # its own folder
        dirs[:] = [d for d in dirs if d.isdigit()]
        ours = (n for n in names if n.startswith("rollout-") and n.endswith(".jsonl"))
        yield from (os.path.join(root, n) for n in ours)


def _home(env: Mapping[str, str]) -> str:
    return env.get("CODEX_HOME") or os.path.join(env.get("HOME", "/nonexistent"), ".codex")


def session_file(env: Mapping[str, str], conv: str) -> str | None:
    """Its rollout of conversation `conv`: `rollout-…-<conv>.jsonl`."""
    return next((p for p in rollouts(_home(env)) if p.endswith(f"-{conv}.jsonl")), None)


def _loads(raw: bytes) -> Any:
    """A line of its own, which may be anything (nested past the recursion limit too):
    ValueError when it is not plain JSON."""
    return jsonio.safe_loads(raw, max_depth=200)


def _rollout_brief(lines: list[bytes], wid: str) -> bool:
    """Whether a rollout's user turns (response_item messages) begin with the worker's brief."""
    for line in lines:
        if b'"response_item"' not in line or b'"user"' not in line:
            continue  # cheap: most lines are neither
        try:
            item = _loads(line)
        except ValueError:
            continue
        pay = item.get("payload") if isinstance(item, dict) else None
        if not isinstance(pay, dict) or item.get("type") != "response_item":
            continue
        if pay.get("type") != "message" or pay.get("role") != "user":
            continue
        content = pay.get("content")
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and opens_brief(part.get("text"), wid):
                return True
    return False


def find_rollout(env: Mapping[str, str], cwd: str, wid: str, since: float) -> str | None:
    """The id of the conversation this worker started: the earliest rollout under
    `<its home>/sessions/` written since the start whose first line is a session_meta for
    `cwd` and one of whose user turns is the worker's brief. Bounded (files, bytes read); a
    file it cannot read or parse is skipped."""
    files: list[tuple[float, str]] = []
    for p in rollouts(_home(env)):
        try:
            st = os.lstat(p)
        except OSError:
            continue
        if st.st_mtime >= since - 2:
            files.append((st.st_mtime, p))
        if len(files) > _MAX_FILES:
            break
    best: tuple[str, str] | None = None
    for _mtime, p in sorted(files)[:_MAX_FILES]:
        try:
            head = store.read_regular(p, _HEAD)[:_HEAD]
        except OSError:
            continue
        lines = head.split(b"\n")
        try:
            meta = _loads(lines[0])
        except ValueError:
            continue
        pay = meta.get("payload") if isinstance(meta, dict) else None
        if not isinstance(pay, dict) or meta.get("type") != "session_meta":
            continue
        conv, at, where = pay.get("id"), pay.get("timestamp"), pay.get("cwd")
        if not isinstance(conv, str) or not valid_id(conv) or not same_dir(where, cwd):
            continue
        if not _rollout_brief(lines[1:], wid):
            continue
        key = str(at) if isinstance(at, str) else ""
        if best is None or key < best[0]:
            best = (key, conv)
    return best[1] if best else None


def _filled(path: str) -> bool:
    try:
        return os.path.getsize(path) > 0
    except OSError:
        return False


def first_run(env: Mapping[str, str], words: Sequence[str]) -> tuple[dict[str, str], str]:
    """codex's first start asks how to sign in ("Welcome to Codex"), and keeps the answer in
    auth.json, read-only in the box: a user has set it up once there is a login there or a
    config.toml (a provider of their own signs in by its env_key). The empty placeholders a box
    leaves where the user had none are neither."""
    where = codex_home(env)
    if where is not None and any(_filled(os.path.join(where, f)) for f in _SET_UP):
        return {}, ""
    return {}, (
        f"codex has not been set up for this user ({where or 'no HOME'} has no login in "
        "auth.json nor a config.toml, and the sandbox keeps them read-only): run `codex` once "
        "outside looop and sign in, then start the worker again"
    )


_SET_UP = ("auth.json", "config.toml")

PROFILE = RunnerProfile(
    name="codex",
    preset={
        # `-` reads the prompt from stdin
        "tick": "codex exec --json --skip-git-repo-check "
        "--dangerously-bypass-approvals-and-sandbox -",
        # --no-daemon: inside a sandbox codex's background app-server fails at start ("failed
        # to record pid-managed app-server process"); in-process it runs in and out of one
        "worker": "codex --no-daemon --dangerously-bypass-approvals-and-sandbox "
        '"$(cat {{prompt_file}})"',
        # codex names its conversation itself: looop finds it in $CODEX_HOME/sessions
        "resume": "codex resume --no-daemon --dangerously-bypass-approvals-and-sandbox "
        "{{session_id}} "
        '"$(cat {{prompt_file}})"',
    },
    note=(
        "note: the codex tick reads its prompt from stdin (`-`) and uses the model and "
        "provider of ~/.codex/config.toml; codex reports tokens, not money, so its cost is "
        "an estimate from looop's price table (config `prices`)"
    ),
    domains=("api.openai.com", "chatgpt.com", "auth.openai.com"),
    # codex keeps its databases (and their journals, made as it runs) at its folder's top: the
    # folder stays writable, what it runs or obeys locked
    state=("~/.codex",),
    config=("~/.codex",),
    locked=under(
        "~/.codex/",
        "config.toml AGENTS.md AGENTS.override.md hooks.json auth.json "
        "rules/ prompts/ skills/ packages/",
    ),
    # Not auth.json: codex takes any file there for a login (empty: "failed to deserialize CLI
    # auth", `{}`: "Logged in using ChatGPT"), so a box can still create one where the user has
    # none.
    # auth.json empty: codex 0.169 reads any JSON there as a login (`{}`: "Logged in using
    # ChatGPT") but an empty file as none (its TUI offers "Sign in", `codex login` writes over
    # it; only `codex login status` says "failed to deserialize CLI auth"): a box cannot plant
    # a login where the user has none
    placeholders=(
        ("~/.codex/auth.json", ""),
        ("~/.codex/config.toml", ""),
        ("~/.codex/AGENTS.md", ""),
        ("~/.codex/AGENTS.override.md", ""),
        ("~/.codex/hooks.json", "{}\n"),  # empty, codex warns it cannot parse it at each start
    ),
    base_url_env="OPENAI_BASE_URL",
    login_env=("OPENAI_API_KEY", "CODEX_API_KEY", "OPENAI_BASE_URL"),
    login_files=(("CODEX_HOME", "auth.json"), ("", ".codex/auth.json")),
    login_fix="run `codex login`, or set OPENAI_API_KEY where the pulse starts",
    # config.toml: the base_url of the model_provider it uses
    endpoint_files=(("CODEX_HOME", "config.toml", ".codex/config.toml"),),
    endpoint_keys=("model_providers", "<model_provider>", "base_url"),
    endpoint_sure=True,
    # its stream reports tokens, never money: list prices, late 2025
    prices={
        "gpt-5": _GPT5,
        "gpt-5-codex": _GPT5,
        "gpt-5-mini": _MINI,
        "gpt-5-nano": {"input": 0.05, "cached_input": 0.005, "output": 0.4},
        "gpt-5.1": _GPT5,
        "gpt-5.1-codex": _GPT5,
        "gpt-5.1-codex-max": _GPT5,
        "gpt-5.1-codex-mini": _MINI,
        "gpt-5.2": {"input": 1.75, "cached_input": 0.175, "output": 14.0},
        "codex-mini-latest": {"input": 1.5, "cached_input": 0.375, "output": 6.0},
        "o3": {"input": 2.0, "cached_input": 0.5, "output": 8.0},
        "o4-mini": {"input": 1.1, "cached_input": 0.275, "output": 4.4},
        "gpt-4.1": {"input": 2.0, "cached_input": 0.5, "output": 8.0},
        "gpt-4.1-mini": {"input": 0.4, "cached_input": 0.1, "output": 1.6},
    },
    # codex hands a server only the variables it is told to: env_vars names the worker's own
    mcp="overrides",
    # it names its conversation itself: the earliest new rollout in $CODEX_HOME/sessions
    find_id=find_rollout,
    id_home=("CODEX_HOME", ".codex"),
    keys=("OPENAI_API_KEY", "CODEX_API_KEY"),
    session_file=session_file,
    records="totals",
    stream="thread",  # its rollout's token_count events
    first_run=first_run,
    # its working line at column 0 (`• Working (5s • esc to interrupt)`), not a quote of it
    busy=(r"^[•◦] [^\n]*\([^\n]*esc to interrupt\)",),
    needs=(
        # its question opens a line, not a quote of it within one
        ("approval", r"^[ │]*Would you like to (?:run|make|grant|allow)[^\n]{0,200}\?"),
        ("approval", r"^ *(?:enter/esc confirm|Press enter to confirm or esc to cancel)"),
        # once a turn ended (`← for agents · ? for shortcuts`), or its start screen's empty
        # box with the hint alone (for well under a second while the chooser or the brief
        # comes: an idle box counts only once a look 3 s later finds nothing printed since,
        # views/needsinput), or a box holding typed text above its model line
        ("idle", r" · \? for shortcuts *$"),
        ("idle", r"^› Ask Codex to do anything\n\n +\? for shortcuts *$"),
        ("idle", r"^› [^\n]*\n{2,3}  [^\n]+ · [~/][^\n]*\s*\Z"),
    ),
)
