"""What a sandboxed worker's CLI would ask on its first screen, answered before it starts.

An answer given inside the box never persists (the CLI's config there is not the user's to
rewrite), so every new worker would ask again. claude asks three things of a folder it has not
seen: onboarding, "trust this folder?" and "use this ANTHROPIC_API_KEY?". Trust is claude's own
to imply: `CLAUDE_CODE_SANDBOXED=1` tells it the session already runs in a sandbox, so it
trusts the folder for that session only and writes nothing. looop never writes trust into
the user's ~/.claude.json: a worktree the box has written (its `.claude/settings.json` hooks)
would be trusted by the user's own claude outside afterwards. Onboarding and the key are the
user's answers: looop only reads that they were given (outside, by running `claude` once)
and, where not, refuses the start with one line saying so, never a worker stuck on a prompt.

opencode asks nothing, but on its first start writes a .gitignore into its config folder, which
is read-only in the box (a box never changes what the user's own CLI reads): without it,
opencode stops with "Unexpected server error", so the start is refused with one line saying to
run `opencode` once outside. codex and pi ask nothing in the box that an earlier run outside has
not answered (codex's model offer is noted in its config.toml by either answer).

gemini asks how to log in until its settings.json names a way (security.auth.selectedType),
and its answer would be written to that file, read-only in the box: the start is refused with
one line saying to run `gemini` once outside."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping

from looop.core.srt import SandboxError
from looop.home import jsonio

# what claude reads to know it runs sandboxed: trust implied for this session, none written
SANDBOXED = {"CLAUDE_CODE_SANDBOXED": "1"}
# claude remembers an approved key by its last characters
KEY_TAIL = 20
_ONCE = "run `claude` once outside looop"


def claude_state_path(env: Mapping[str, str]) -> str | None:
    """Where claude keeps its answers: $CLAUDE_CONFIG_DIR/.claude.json, else ~/.claude.json."""
    base = env.get("CLAUDE_CONFIG_DIR") or env.get("HOME")
    return os.path.join(base, ".claude.json") if base else None


def program(line: str) -> str:
    """The program a worker line runs (its first word's file name), past `env A=B`."""
    try:
        words = shlex.split(line)
    except ValueError:
        return ""
    while words and (words[0] == "env" or "=" in words[0]):
        words = words[1:]
    return os.path.basename(words[0]) if words else ""


def box_env(line: str, env: Mapping[str, str]) -> dict[str, str]:
    """The variables a sandboxed worker running `line` starts with so its CLI asks nothing;
    raises SandboxError (one line: what to run once) when the line runs claude and the user
    has not answered claude's own questions outside, or opencode has never run outside.
    Another program gets nothing."""
    name = program(line)
    if name == "opencode":
        _check_opencode(env)
    if name == "gemini":
        _check_gemini(env)
    if name != "claude":
        return {}
    path = claude_state_path(env)
    state = _read(path) if path is not None else None
    if state is None or state.get("hasCompletedOnboarding") is not True:
        raise SandboxError(
            f"claude has not been set up for this user ({path or 'no HOME'} has no finished "
            f"onboarding): {_ONCE}, then start the worker again"
        )
    key = env.get("ANTHROPIC_API_KEY", "")
    if key:
        _check_key(state, key, path or "")
    return dict(SANDBOXED)


def opencode_config_dir(env: Mapping[str, str]) -> str | None:
    """opencode's config folder: $XDG_CONFIG_HOME/opencode, else ~/.config/opencode."""
    base = env.get("XDG_CONFIG_HOME") or (
        os.path.join(env["HOME"], ".config") if env.get("HOME") else None
    )
    return os.path.join(base, "opencode") if base else None


def _check_opencode(env: Mapping[str, str]) -> None:
    where = opencode_config_dir(env)
    if where is None or not os.path.isfile(os.path.join(where, ".gitignore")):
        raise SandboxError(
            f"opencode has not been set up for this user ({where or 'no HOME'} lacks the "
            ".gitignore its first start writes, and the sandbox keeps that folder read-only): "
            "run `opencode` once outside looop, then start the worker again"
        )


def gemini_settings_path(env: Mapping[str, str]) -> str | None:
    """gemini's settings: $GEMINI_CLI_HOME (its stand-in for the home) or ~, then .gemini/."""
    base = env.get("GEMINI_CLI_HOME") or env.get("HOME")
    return os.path.join(base, ".gemini", "settings.json") if base else None


def _check_gemini(env: Mapping[str, str]) -> None:
    path = gemini_settings_path(env)
    settings = _read(path) if path is not None else None
    security = settings.get("security") if settings is not None else None
    auth = security.get("auth") if isinstance(security, dict) else None
    chosen = auth.get("selectedType") if isinstance(auth, dict) else None
    if not (isinstance(chosen, str) and chosen) and settings is not None:
        chosen = settings.get("selectedAuthType")  # how earlier versions kept it
    if not (isinstance(chosen, str) and chosen):
        raise SandboxError(
            f"gemini has not been set up for this user ({path or 'no HOME'} names no way to "
            "log in, and the sandbox keeps that file read-only): run `gemini` once outside "
            "looop and choose how to log in, then start the worker again"
        )


def _check_key(state: Mapping[str, object], key: str, path: str) -> None:
    answers = state.get("customApiKeyResponses")
    tail = key[-KEY_TAIL:]
    got = answers if isinstance(answers, dict) else {}
    if _has(got.get("approved"), tail):
        return
    if _has(got.get("rejected"), tail):
        raise SandboxError(
            "claude was told not to use this ANTHROPIC_API_KEY (rejected in "
            f"{path}): {_ONCE} with it set and approve it, or unset it for looop"
        )
    raise SandboxError(
        f"claude has not approved this ANTHROPIC_API_KEY ({path}): {_ONCE} with it set and "
        "answer Yes to using it, then start the worker again"
    )


def _has(items: object, tail: str) -> bool:
    return isinstance(items, list) and tail in items


def _read(path: str) -> dict[str, object] | None:
    try:
        with open(path, encoding="utf-8") as f:
            got = jsonio.loads(f.read())
    except (OSError, ValueError):
        return None
    return got if isinstance(got, dict) else None
