"""pi (`pi`, the pi coding agent) as a runner: its profile (runners/runnerprofile.py). Its stream
is read by the built-in reader (decide/streams.py), its session files by loop/clirecords.py."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from looop.runners.runnerprofile import PROVIDER_KEYS, RunnerProfile, text

if TYPE_CHECKING:
    from collections.abc import Mapping


def session_file(env: Mapping[str, str], conv: str) -> str:
    """The preset gives pi its session file: `$HOME/.pi/agent/sessions/looop/<conv>.jsonl`
    (loop/workmeter.py reads it, loop/clirecords.py folds its lines)."""
    home = env.get("HOME", "/nonexistent")
    return os.path.join(home, ".pi", "agent", "sessions", "looop", f"{conv}.jsonl")


def record_usage(obj: dict[str, object]) -> tuple[str, str, int, int, int, int, object] | None:
    """An assistant message entry of its session file (RunnerProfile.record_usage): its cost
    (usage.cost.total) as written, once; none said counts nothing."""
    msg = obj.get("message") if obj.get("type") == "message" else None
    if not isinstance(msg, dict) or msg.get("role") != "assistant":
        return None
    usage = msg.get("usage")
    cost = usage.get("cost") if isinstance(usage, dict) else None
    usd = cost.get("total") if isinstance(cost, dict) else None
    return "", text(msg.get("model"))[:200], 0, 0, 0, 0, usd


PROFILE = RunnerProfile(
    name="pi",
    preset={
        "tick": "pi -p --mode json -ne --model claude-sonnet-4-5 --thinking low @{{prompt_file}}",
        # the newest opus pi 0.73 knows; an unknown id makes pi exit at once
        # pi writes its conversation to the file --session names (made when missing)
        "worker": 'pi --session "$HOME/.pi/agent/sessions/looop/{{session_id}}.jsonl" '
        "--model claude-opus-4-7 --thinking medium @{{prompt_file}}",
        "resume": 'pi --session "$HOME/.pi/agent/sessions/looop/{{session_id}}.jsonl" '
        "--model claude-opus-4-7 --thinking medium @{{prompt_file}}",
    },
    note=(
        "note: pi exits 0 even when its provider fails; looop reads the failure from its "
        "stream. Models are pi's own ids (`pi --list-models`); offline, set PI_OFFLINE=1 "
        "or pi tries to download fd and ripgrep"
    ),
    domains=("api.anthropic.com",),
    state=("~/.pi/agent/sessions",),
    config=("~/.pi",),
    login_env=(*PROVIDER_KEYS, "MISTRAL_API_KEY"),
    login_files=(
        ("PI_CODING_AGENT_DIR", "auth.json"),
        ("", ".pi/agent/auth.json"),
        ("", ".pi/agent/models.json"),
    ),
    login_fix="run `pi` once and /login, or set a provider's API key where the pulse starts",
    # its models.json: {"providers": {NAME: {"baseUrl": …}}}, of which its --model picks
    endpoint_files=(("PI_CODING_AGENT_DIR", "models.json", ".pi/agent/models.json"),),
    endpoint_keys=("providers", "*", "baseUrl"),
    session_file=session_file,
    record_usage=record_usage,
    record_mark='"cost"',
    stream="agent",
    # its spinner at column 1, not a quote of it in the output (tests/corpus/needs)
    busy=(r"^ ?[\u2800-\u28ff] Working\.\.\.",),
    # its input box between two rules, empty or holding a few typed lines
    needs=(("idle", r"^─{10,}\n[^\n]*(?:\n(?!─)[^\n]*){0,4}\n─{10,}\n"),),
)
