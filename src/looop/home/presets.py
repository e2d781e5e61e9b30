"""Runner presets (the tick and worker command lines per agent CLI) and the prompt-file
placeholder they use (core/promptfile.py fills it in). Loaded only for a data dir with no
config (config.load_config) and by the rooms that start runners."""

from __future__ import annotations

from looop.home import gemini

TYPE_CHECKING = False  # not `from typing`: importing typing costs the hot path ~3 ms

if TYPE_CHECKING:
    from typing import Any

# Runner presets, proven against the real CLIs (tests/realcli). The tick command gets the prompt
# on stdin unless it names {{prompt_file}}. A tick never splices the prompt into its command line
# ("$(cat {{prompt_file}})"): one argv string is capped at 128 KiB and the prompt may be 256 KiB.
PRESETS: dict[str, dict[str, str]] = {
    "claude": {
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
    "codex": {
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
    "opencode": {
        # with no message argument, `opencode run` reads the message from stdin
        "tick": "opencode run --format json",
        "worker": 'opencode --prompt "$(cat {{prompt_file}})"',
        # opencode names its conversation itself: looop asks `opencode session list`. Its full
        # TUI drops --prompt when given --session (1.18.33); --mini replays the conversation
        # and sends the prompt
        "resume": 'opencode --mini --session {{session_id}} --prompt "$(cat {{prompt_file}})"',
    },
    "pi": {
        "tick": "pi -p --mode json -ne --model claude-sonnet-4-5 --thinking low @{{prompt_file}}",
        # the newest opus pi 0.73 knows; an unknown id makes pi exit at once
        # pi writes its conversation to the file --session names (made when missing)
        "worker": 'pi --session "$HOME/.pi/agent/sessions/looop/{{session_id}}.jsonl" '
        "--model claude-opus-4-7 --thinking medium @{{prompt_file}}",
        "resume": 'pi --session "$HOME/.pi/agent/sessions/looop/{{session_id}}.jsonl" '
        "--model claude-opus-4-7 --thinking medium @{{prompt_file}}",
    },
}
PRESETS["gemini"] = dict(gemini.PRESET)  # a runner profile in one file (home/gemini.py)
DEFAULT_RUNNER = "claude"
PLACEHOLDER = "{{prompt_file}}"
SESSION_ID = "{{session_id}}"  # the worker's agent conversation id (workers/resume.py)


def default_config_obj() -> dict[str, Any]:
    """What a new data dir is seeded with: every preset, claude active."""
    return {
        "default": DEFAULT_RUNNER,
        "runners": {k: dict(v) for k, v in PRESETS.items()},
    }
