"""opencode (`opencode`) as a runner: its profile (runners/runnerprofile.py). Its stream is read by
the built-in reader (decide/streams.py), its SQLite store by loop/clirecords.py."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from looop.runners.runnerprofile import PROVIDER_KEYS, RunnerProfile

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


def config_dir(env: Mapping[str, str]) -> str | None:
    """opencode's config folder: $XDG_CONFIG_HOME/opencode, else ~/.config/opencode."""
    base = env.get("XDG_CONFIG_HOME") or (
        os.path.join(env["HOME"], ".config") if env.get("HOME") else None
    )
    return os.path.join(base, "opencode") if base else None


def store(env: Mapping[str, str], conv: str = "") -> str:
    """Its SQLite store (1.x), every conversation's: `<XDG data>/opencode/opencode.db`."""
    base = env.get("XDG_DATA_HOME") or os.path.join(env.get("HOME", "/nonexistent"), ".local/share")
    return os.path.join(base, "opencode", "opencode.db")


def first_run(env: Mapping[str, str], words: Sequence[str]) -> tuple[dict[str, str], str]:
    """opencode asks nothing, but on its first start writes a .gitignore into its config
    folder, read-only in the box: without it, opencode stops ("Unexpected server error")."""
    where = config_dir(env)
    if where is not None and os.path.isfile(os.path.join(where, ".gitignore")):
        return {}, ""
    return {}, (
        f"opencode has not been set up for this user ({where or 'no HOME'} lacks the "
        ".gitignore its first start writes, and the sandbox keeps that folder read-only): "
        "run `opencode` once outside looop, then start the worker again"
    )


PROFILE = RunnerProfile(
    name="opencode",
    preset={
        # with no message argument, `opencode run` reads the message from stdin
        "tick": "opencode run --format json",
        "worker": 'opencode --prompt "$(cat {{prompt_file}})"',
        # opencode names its conversation itself: looop asks `opencode session list`. Its full
        # TUI drops --prompt when given --session (1.18.33); --mini replays the conversation
        # and sends the prompt
        "resume": 'opencode --mini --session {{session_id}} --prompt "$(cat {{prompt_file}})"',
    },
    note=(
        "note: the opencode tick reads its prompt from stdin and uses the `model` of your "
        "opencode config — set one there, or add `--model provider/model` to the tick"
    ),
    domains=("api.anthropic.com", "api.openai.com", "opencode.ai", "models.dev"),
    state=("~/.local/share/opencode", "~/.local/state/opencode"),
    config=("~/.config/opencode", "~/.cache/opencode"),
    made=("~/.cache/opencode/bin",),
    login_env=PROVIDER_KEYS,
    login_files=(
        ("XDG_DATA_HOME", "opencode/auth.json"),
        ("", ".local/share/opencode/auth.json"),
        ("", ".config/opencode/opencode.json"),
    ),
    login_fix="run `opencode auth login`, or set a provider's API key where the pulse starts",
    # its config: {"provider": {NAME: {"options": {"baseURL": …}}}}, of which its `model` picks
    endpoint_files=(("OPENCODE_CONFIG", "", ""), ("", "", ".config/opencode/opencode.json")),
    endpoint_keys=("provider", "*", "options", "baseURL"),
    first_run=first_run,
    mcp="env",  # merged over its config
    mcp_env="OPENCODE_CONFIG_CONTENT",
    # it names its conversation itself: `opencode session list` is asked
    finds_id="session-list",
    session_file=store,
    records="store",
    stream="step",
    # its approval prompt appears with `"permission": {"bash": "ask"}` in its config
    # on its status line at the foot, not in the output above, which may quote it
    busy=(r"esc (?:to )?interrupt[^\n]*(?:\n[^\n]*){0,2}\s*\Z",),
    needs=(
        # at the foot, in place of its box, never a quote of it in the output above
        ("approval", r"△ Permission required(?:\n[^\n]*){0,10}\s*\Z"),
        ("approval", r"Allow once +Allow always +Reject[^\n]*(?:\n[^\n]*){0,4}\s*\Z"),
        # its status line without `esc interrupt` (busy): once a turn ended (with what it
        # cost), and on its start screen for a few seconds before the brief is sent (an idle
        # box counts only once a look 3 s later finds nothing printed since, views/needsinput)
        ("idle", r"ctrl\+p commands *$"),
    ),
)
