"""Claude Code (`claude`) as a runner: its profile (runners/runnerprofile.py). Its stream is
read by the built-in reader (decide/streams.py), its records by loop/clirecords.py."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from looop.home import jsonio
from looop.runners.runnerprofile import RunnerProfile, count, read_json_file, text, under

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

_SONNET = {"input": 3.0, "cached_input": 0.3, "cache_write": 3.75, "output": 15.0}
_OPUS = {"input": 5.0, "cached_input": 0.5, "cache_write": 6.25, "output": 25.0}

# What claude reads to know it runs sandboxed: trust implied for this session, none written.
# looop never writes trust into the user's ~/.claude.json: a worktree the box has written (its
# `.claude/settings.json` hooks) would be trusted by the user's own claude outside afterwards.
SANDBOXED = {"CLAUDE_CODE_SANDBOXED": "1"}
KEY_TAIL = 20  # claude remembers an approved key by its last characters
_ONCE = "run `claude` once outside looop"


def state_path(env: Mapping[str, str]) -> str | None:
    """Where claude keeps its answers: $CLAUDE_CONFIG_DIR/.claude.json, else ~/.claude.json."""
    base = env.get("CLAUDE_CONFIG_DIR") or env.get("HOME")
    return os.path.join(base, ".claude.json") if base else None


def first_run(env: Mapping[str, str], words: Sequence[str]) -> tuple[dict[str, str], str]:
    """claude asks three things of a folder it has not seen: onboarding, "trust this folder?"
    and "use this ANTHROPIC_API_KEY?", and of a bypass-permissions start (`words`, its worker
    line) the Bypass Permissions warning. Trust it implies itself when told it is sandboxed;
    onboarding, the key and the warning are the user's answers, only read here."""
    path = state_path(env)
    state = read_json_file(path)
    if state is None or state.get("hasCompletedOnboarding") is not True:
        return {}, (
            f"claude has not been set up for this user ({path or 'no HOME'} has no finished "
            f"onboarding): {_ONCE}, then start the worker again"
        )
    if refused := _key_refused(env.get("ANTHROPIC_API_KEY", ""), state, path):
        return {}, refused
    if _bypasses(words) and not _accepted_bypass(env, words):
        # its answer goes to the user's settings.json, read-only in the box: asked every start
        return {}, (
            "claude has not accepted Bypass Permissions mode for this user "
            f"({settings_path(env) or 'no HOME'} has no skipDangerousModePermissionPrompt): "
            "run `claude --dangerously-skip-permissions` once outside looop and answer "
            "Yes, I accept, then start the worker again"
        )
    return dict(SANDBOXED), ""


def _key_refused(key: str, state: Mapping[str, object], path: str | None) -> str:
    """Why the key in the env keeps claude asking "use this ANTHROPIC_API_KEY?" ("" if not)."""
    answers = state.get("customApiKeyResponses")
    got = answers if isinstance(answers, dict) else {}
    if not key or _has(got.get("approved"), key[-KEY_TAIL:]):
        return ""
    if _has(got.get("rejected"), key[-KEY_TAIL:]):
        return (
            "claude was told not to use this ANTHROPIC_API_KEY (rejected in "
            f"{path}): {_ONCE} with it set and approve it, or unset it for looop"
        )
    return (
        f"claude has not approved this ANTHROPIC_API_KEY ({path}): {_ONCE} with it set and "
        "answer Yes to using it, then start the worker again"
    )


def settings_path(env: Mapping[str, str]) -> str | None:
    """claude's user settings: $CLAUDE_CONFIG_DIR/settings.json, else ~/.claude/settings.json."""
    base = env.get("CLAUDE_CONFIG_DIR") or (
        os.path.join(env["HOME"], ".claude") if env.get("HOME") else None
    )
    return os.path.join(base, "settings.json") if base else None


def _bypasses(words: Sequence[str]) -> bool:
    """The line starts claude in (or lets it into) Bypass Permissions mode."""
    for i, w in enumerate(words):
        if w in ("--dangerously-skip-permissions", "--allow-dangerously-skip-permissions"):
            return True
        if w == "--permission-mode=bypassPermissions" or (
            w == "--permission-mode" and words[i + 1 : i + 2] == ["bypassPermissions"]
        ):
            return True
    return False


def _accepted_bypass(env: Mapping[str, str], words: Sequence[str]) -> bool:
    """The warning was accepted: in the user's settings.json, or in the line's own --settings
    (JSON or a file), which claude counts too."""
    given = [
        words[i + 1] if w == "--settings" and i + 1 < len(words) else w[len("--settings=") :]
        for i, w in enumerate(words)
        if w == "--settings" or w.startswith("--settings=")
    ]
    every = (read_json_file(settings_path(env)), *map(_settings_of, given))
    return any(s is not None and s.get("skipDangerousModePermissionPrompt") is True for s in every)


def _settings_of(value: str) -> dict[str, object] | None:
    if value.lstrip().startswith("{"):
        try:
            got = jsonio.loads(value)
        except (ValueError, RecursionError):
            return None
        return got if isinstance(got, dict) else None
    return read_json_file(value)


_MAX_DIRS = 2000  # project dirs looked through for a conversation's file


def session_file(env: Mapping[str, str], conv: str) -> str | None:
    """Its record of conversation `conv` (loop/workmeter.py): `<config>/projects/<dir>/
    <conv>.jsonl` (the dir spells the worker's cwd; looked up by name rather than re-spelled,
    bounded)."""
    base = env.get("CLAUDE_CONFIG_DIR") or os.path.join(env.get("HOME", "/nonexistent"), ".claude")
    projects = os.path.join(base, "projects")
    try:
        with os.scandir(projects) as it:
            for i, d in enumerate(it):
                if i >= _MAX_DIRS:
                    break
                p = os.path.join(projects, d.name, f"{conv}.jsonl")
                if d.is_dir(follow_symlinks=False) and os.path.lexists(p):
                    return p
    except OSError:
        return None
    return None


def record_usage(obj: dict[str, object]) -> tuple[str, str, int, int, int, int, None] | None:
    """An assistant line of its record (RunnerProfile.record_usage): one line per content block
    of a message, each with the message's usage so far, so the last line of an id stands."""
    msg = obj.get("message") if obj.get("type") == "assistant" else None
    usage = msg.get("usage") if isinstance(msg, dict) else None
    if not isinstance(msg, dict) or not isinstance(usage, dict):
        return None
    model = text(msg.get("model"))[:200]
    fresh, cached = count(usage.get("input_tokens")), count(usage.get("cache_read_input_tokens"))
    written, out = (
        count(usage.get("cache_creation_input_tokens")),
        count(usage.get("output_tokens")),
    )
    mid = text(msg.get("id"))[:200]
    return mid, "" if model.startswith("<") else model, fresh, cached, written, out, None


def _has(items: object, tail: str) -> bool:
    return isinstance(items, list) and tail in items


PROFILE = RunnerProfile(
    name="claude",
    preset={
        "tick": "claude -p --output-format stream-json --verbose "
        "--dangerously-skip-permissions --model sonnet",
        # the worker is given its conversation id, so looop can resume it (workers/resume.py)
        # tui pinned to claude's classic renderer: no "try the fullscreen renderer?" dialog
        # takes a worker's keys (a sandboxed one's answer there would never persist)
        "worker": "claude --dangerously-skip-permissions --model opus --session-id {{session_id}} "
        '--settings \'{"tui":"default"}\' '
        '"$(cat {{prompt_file}})"',
        "resume": "claude --dangerously-skip-permissions --model opus --resume {{session_id}} "
        '--settings \'{"tui":"default"}\' '
        '"$(cat {{prompt_file}})"',
    },
    root_note=(
        "note: claude refuses --dangerously-skip-permissions as root unless it runs "
        "sandboxed (looop tells it so inside srt) or IS_SANDBOX=1 is set in the pulse's "
        "environment"
    ),
    note=(
        "note: an unsandboxed claude worker waits at claude's first-run prompts (trust this "
        "folder, bypass-permissions mode, and with ANTHROPIC_API_KEY set: use this key?) until "
        "each is answered once — run `claude --dangerously-skip-permissions` in the data dir "
        "and accept them, or answer a waiting worker with `looop shot <id>` and "
        "`looop key <id> …`"
    ),
    domains=("api.anthropic.com", "statsig.anthropic.com"),
    state=(
        *under(
            "~/.claude/",
            "projects sessions todos shell-snapshots statsig session-env "
            "file-history plans debug paste-cache",
        ),
        "~/.cache/claude",
    ),
    config=("~/.claude.json", "~/.claude"),
    base_url_env="ANTHROPIC_BASE_URL",
    login_env=(
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "CLAUDE_CODE_OAUTH_TOKEN",
        "CLAUDE_CODE_USE_BEDROCK",
        "CLAUDE_CODE_USE_VERTEX",
        "ANTHROPIC_BASE_URL",
    ),
    login_files=(("CLAUDE_CONFIG_DIR", ".credentials.json"), ("", ".claude/.credentials.json")),
    login_fix="run `claude` once and /login, or set ANTHROPIC_API_KEY where the pulse starts",
    # its settings.json may set its environment: {"env": {"ANTHROPIC_BASE_URL": …}}
    endpoint_files=(("CLAUDE_CONFIG_DIR", "settings.json", ".claude/settings.json"),),
    endpoint_keys=("env", "ANTHROPIC_BASE_URL"),
    endpoint_sure=True,
    prices={
        "claude-sonnet-4-5": _SONNET,
        "claude-sonnet-4-6": _SONNET,
        "claude-opus-4-1": {
            "input": 15.0,
            "cached_input": 1.5,
            "cache_write": 18.75,
            "output": 75.0,
        },
        "claude-opus-4-5": _OPUS,
        "claude-opus-4-6": _OPUS,
        "claude-opus-4-7": _OPUS,
        "claude-haiku-4-5": {
            "input": 1.0,
            "cached_input": 0.1,
            "cache_write": 1.25,
            "output": 5.0,
        },
    },
    first_run=first_run,
    stream="result",
    id_home=("CLAUDE_CONFIG_DIR", ".claude"),
    keys=("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"),
    session_file=session_file,
    record_usage=record_usage,
    record_mark='"usage"',
    mcp="flag",  # its other MCP servers stay
    # its spinner line (`✻ Orchestrating…`) shows a moment before `esc to interrupt` does;
    # each is matched where it draws it (the status line at the foot, column 0), never in
    # the output above, which may quote them (tests/corpus/needs: a long answer)
    busy=(r"esc to interrupt[^\n]*(?:\n[^\n]*){0,2}\s*\Z", r"^[*✻✽✢·✶] [A-Z][a-z]+…"),
    needs=(
        # at the foot, where it draws its prompt (in place of its box), never a quote of
        # one in the output above it (tests/corpus/needs: a long answer)
        ("approval", r"^ *Do you want to [^\n]{1,200}\?\n *❯ ?1\. Yes(?:\n[^\n]*){0,9}\s*\Z"),
        ("approval", r"^ *Esc to cancel · [^\n]*(?:\n[^\n]*){0,2}\s*\Z"),
        # "trust this folder?" of a folder it has not seen (a custom command's new room)
        ("approval", r"^ *(?:❯ )?Yes, I trust this folder\n\s*Enter to confirm · Esc[^\n]*\s*\Z"),
        # its input box, empty or holding a few typed lines (tests/corpus/needs/claude)
        ("idle", r"^─{10,}\n❯[^\n]*(?:\n(?!─)[^\n]*){0,4}\n─{10,}$"),
    ),
)
