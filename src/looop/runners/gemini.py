"""Gemini CLI (`@google/gemini-cli`, binary `gemini`) as a runner: everything looop knows about
it, in one place — its preset lines, where it talks and keeps its state (the sandbox), how a
user logs in (doctor), its stream and how a run's cost is read from it, the screens where it
waits for a human, and how a worker resumes: its PROFILE (runners/runnerprofile.py), which the
registry (runners/__init__.py) lists and every table reads. Proven against the real CLI in
tests/realcli (pinned there), offline."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from looop.home import jsonio
from looop.runners.runnerprofile import RunnerProfile, read_json_file, under
from looop.runners.runnerprofile import count as _n
from looop.runners.runnerprofile import text as _s

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

# ---- its stream (`--output-format stream-json`): one JSON object a line, `type` first.
# init {session_id, model}; message {role, content, delta}; tool_use {tool_name, tool_id,
# parameters}; tool_result {tool_id, status, output | error}; error {severity, message};
# result {status, error?: {type, message}, stats: {input_tokens, output_tokens, cached,
# models: {NAME: {input_tokens, output_tokens, cached}}}}. `result` and `tool_use` are also
# built-in shapes' types (RunnerProfile.stream): gemini's carry `stats` and `tool_name`.


def is_own(ev: dict[str, object]) -> bool:
    """Whether a stream event is gemini's (its types overlap built-in shapes'; its
    `error` events alone carry a severity)."""
    kind = ev.get("type")
    if kind == "error":
        return "severity" in ev
    if kind == "result":
        return "stats" in ev and "subtype" not in ev
    if kind == "tool_use":
        return "tool_name" in ev
    if kind == "message":
        return "role" in ev and "timestamp" in ev
    return kind in ("init", "tool_result") and "timestamp" in ev


def event(ev: dict[str, object]) -> tuple[str, str, object] | None:
    """What a gemini event says, as (kind, text, detail): "session" (model), "said" (the
    model's text), "tool" (name, its arguments), "tool_failed" (why), "done" (a summary),
    "failed" (why), "note" (a warning); None for the rest (the prompt echoed, results)."""
    kind = ev.get("type")
    if kind == "init":
        return "session", _s(ev.get("model")), None
    if kind == "message" and ev.get("role") == "assistant":
        return "said", _s(ev.get("content")), None
    if kind == "tool_use":
        return "tool", _s(ev.get("tool_name")) or "tool", ev.get("parameters")
    if kind == "tool_result" and ev.get("status") == "error":
        err = ev.get("error")
        why = _s(err.get("message")) if isinstance(err, dict) else _s(ev.get("output"))
        return "tool_failed", why, None
    if kind == "error":
        failed = ev.get("severity") == "error"
        return ("failed" if failed else "note"), api_error(_s(ev.get("message"))), None
    if kind == "result":
        if ev.get("status") == "success":
            return "done", _summary(ev.get("stats")), None
        err = ev.get("error")
        why = _s(err.get("message")) if isinstance(err, dict) else ""
        # no message: an `error` event before it said why
        return "failed", api_error(why), None
    return None


def api_error(msg: str) -> str:
    """gemini's `[API Error: {"error":{"code","message","status"}}]` as `401 UNAUTHENTICATED:
    message`; any other text as it is."""
    inner = msg.strip()
    if inner.startswith("[API Error: ") and inner.endswith("]"):
        inner = inner[len("[API Error: ") : -1]
    try:
        body = jsonio.loads(inner)
    except (ValueError, RecursionError):
        return msg
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict) or not _s(err.get("message")):
        return msg
    head = " ".join(str(v) for v in (err.get("code"), err.get("status")) if v not in (None, ""))
    return f"{head}: {err['message']}" if head else str(err["message"])


def run_tokens(ev: dict[str, object]) -> list[tuple[str, int, int, int]]:
    """(model, input tokens with cached ones, cached, output) per model of a `result` event:
    the whole run's, so the last result stands."""
    stats = ev.get("stats")
    models = stats.get("models") if isinstance(stats, dict) else None
    out: list[tuple[str, int, int, int]] = []
    for name, row in models.items() if isinstance(models, dict) else ():
        if isinstance(row, dict):
            inp, cached = _n(row.get("input_tokens")), _n(row.get("cached"))
            out.append((str(name), inp, min(cached, inp), _n(row.get("output_tokens"))))
    if not out and isinstance(stats, dict) and "input_tokens" in stats:
        inp, cached = _n(stats.get("input_tokens")), _n(stats.get("cached"))
        out.append(("", inp, min(cached, inp), _n(stats.get("output_tokens"))))
    return out


def _summary(stats: object) -> str:
    if not isinstance(stats, dict):
        return ""
    bits = [f"{_n(stats.get('input_tokens'))} in / {_n(stats.get('output_tokens'))} out"]
    ms = stats.get("duration_ms")
    if isinstance(ms, int | float) and not isinstance(ms, bool):
        bits.insert(0, f"in {ms / 1000:.1f}s")
    return " · ".join(bits)


# ---- its session records (loop/clirecords.py, loop/workmeter.py: what a worker spent).
# `~/.gemini/tmp/<project>/chats/session-<time>-<first 8 of the id>.jsonl`: a header line with
# the sessionId, then one line per message; the model's carry `"type":"gemini"`, `model` and
# `tokens` {input (cached included), output, cached, thoughts, tool, total}.


def session_file(home: str, conv: str) -> str | None:
    """The record of conversation `conv` (its header names it), or None while there is none."""
    tmp = os.path.join(home, ".gemini", "tmp")
    tail = f"-{conv[:8]}.jsonl"
    try:
        projects = sorted(os.listdir(tmp))[:2000]
    except OSError:
        return None
    for project in projects:
        chats = os.path.join(tmp, project, "chats")
        try:
            names = [n for n in os.listdir(chats) if n.startswith("session-") and n.endswith(tail)]
        except OSError:
            continue
        for name in names:
            path = os.path.join(chats, name)
            try:
                with open(path, "rb") as f:
                    head = f.read(4096).split(b"\n", 1)[0]
            except OSError:
                continue
            if f'"sessionId":"{conv}"'.encode() in head.replace(b" ", b""):
                return path
    return None


def record_usage(obj: dict[str, object]) -> tuple[str, str, int, int, int, int, None] | None:
    """A record line holding one model message as RunnerProfile.record_usage reads it; None
    for any other line."""
    tokens = obj.get("tokens")
    if obj.get("type") != "gemini" or not isinstance(tokens, dict):
        return None
    inp, cached = _n(tokens.get("input")), _n(tokens.get("cached"))
    out = _n(tokens.get("output")) + _n(tokens.get("thoughts"))
    cached = min(cached, inp)
    return _s(obj.get("id"))[:200], _s(obj.get("model"))[:200], inp - cached, cached, 0, out, None


# ---- before a sandboxed worker starts (workers/boxed.py)


def settings_path(env: Mapping[str, str]) -> str | None:
    """gemini's settings: $GEMINI_CLI_HOME (its stand-in for the home) or ~, then .gemini/."""
    base = env.get("GEMINI_CLI_HOME") or env.get("HOME")
    return os.path.join(base, ".gemini", "settings.json") if base else None


def first_run(env: Mapping[str, str], words: Sequence[str]) -> tuple[dict[str, str], str]:
    """gemini asks how to log in until its settings.json names a way
    (security.auth.selectedType), and its answer would be written to that file, read-only in
    the box."""
    path = settings_path(env)
    settings = read_json_file(path)
    security = settings.get("security") if settings is not None else None
    auth = security.get("auth") if isinstance(security, dict) else None
    chosen = auth.get("selectedType") if isinstance(auth, dict) else None
    if not (isinstance(chosen, str) and chosen) and settings is not None:
        chosen = settings.get("selectedAuthType")  # how earlier versions kept it
    if isinstance(chosen, str) and chosen:
        return {}, ""
    return {}, (
        f"gemini has not been set up for this user ({path or 'no HOME'} names no way to "
        "log in, and the sandbox keeps that file read-only): run `gemini` once outside "
        "looop and choose how to log in, then start the worker again"
    )


PROFILE = RunnerProfile(
    name="gemini",
    # The tick reads the prompt on stdin (`-p ""` makes it headless; gemini appends the -p text
    # to stdin). --skip-trust: headless gemini refuses an untrusted folder, and the data dir is
    # one. --yolo: its tools run without asking. The worker is the interactive TUI, given its
    # conversation id (--session-id) so looop can resume it by that id.
    preset={
        "tick": "gemini --skip-trust --yolo --model gemini-2.5-pro --output-format stream-json "
        '-p ""',
        "worker": "gemini --skip-trust --yolo --model gemini-2.5-pro --session-id {{session_id}} "
        '--prompt-interactive "$(cat {{prompt_file}})"',
        "resume": "gemini --skip-trust --yolo --model gemini-2.5-pro --resume {{session_id}} "
        '--prompt-interactive "$(cat {{prompt_file}})"',
    },
    note=(
        'note: the gemini tick reads its prompt from stdin (`-p ""`) and runs with --skip-trust '
        "(headless gemini refuses an untrusted folder) and --yolo; gemini reports tokens, not "
        "money, so its cost is an estimate from looop's price table (config `prices`)"
    ),
    # its model API (an API key), and Google's sign-in and Code Assist API (a Google login)
    domains=(
        "generativelanguage.googleapis.com",
        "cloudcode-pa.googleapis.com",
        "oauth2.googleapis.com",
    ),
    # gemini writes its conversations, logs and shell history under ~/.gemini/tmp and
    # ~/.gemini/history, and at each start its installation id and project registry at the
    # folder's top: the folder stays writable in a box, what it obeys or logs in with locked
    state=("~/.gemini",),
    config=("~/.gemini",),
    locked=under(
        "~/.gemini/",
        "settings.json GEMINI.md .env oauth_creds.json google_accounts.json "
        "trustedFolders.json extensions/ commands/ skills/ agents/ policies/",
    ),
    base_url_env="GOOGLE_GEMINI_BASE_URL",  # @google/genai's base URL (set: no other needed)
    login_env=(
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "GOOGLE_GENAI_USE_VERTEXAI",
        "GOOGLE_GENAI_USE_GCA",
        "GOOGLE_GEMINI_BASE_URL",
    ),
    login_files=(("GEMINI_CLI_HOME", ".gemini/oauth_creds.json"), ("", ".gemini/oauth_creds.json")),
    login_fix="run `gemini` once and sign in with Google, or set GEMINI_API_KEY where the pulse "
    "starts",
    # its stream reports tokens, never money. USD per 1M tokens, list prices for prompts up to
    # 200k tokens (late 2025); config `prices` overrides them.
    prices={
        "gemini-2.5-pro": {"input": 1.25, "cached_input": 0.125, "output": 10.0},
        "gemini-2.5-flash": {"input": 0.3, "cached_input": 0.03, "output": 2.5},
        "gemini-2.5-flash-lite": {"input": 0.1, "cached_input": 0.01, "output": 0.4},
        "gemini-3-pro-preview": {"input": 2.0, "cached_input": 0.2, "output": 12.0},
    },
    # learnt from the pinned TUI's screens (tests/unit/workers/screens/gemini-*.txt): its
    # spinner line says `(esc to cancel, 2s)` while the input box is still drawn below it; at
    # column 0 or 1, where it draws it, never a quote of it in the output (tests/corpus/needs)
    busy=(r"^ ?[\u2800-\u28ff] [^\n]*\(esc to cancel, ",),
    needs=(
        ("approval", r"Allow execution of[^\n]{0,200}\?"),
        ("approval", r"^[ │]*● 1\. Allow once"),
        ("idle", r"Type your message or @path/to/file"),
        # its box holding typed text (no placeholder then), above its workspace footer
        ("idle", r"^ > [^\n]*\n(?:[^\n]*\n){0,6} workspace \(/directory\)"),
    ),
    is_own=is_own,
    event=event,
    run_tokens=run_tokens,
    token_events=("result",),
    session_file=lambda env, conv: session_file(env.get("HOME", "/nonexistent"), conv),
    record_usage=record_usage,
    record_mark='"tokens"',
    first_run=first_run,
    # gemini takes an Enter it reads within 30 ms of the last typed key as a newline (and one
    # 40 ms after text that came in one read): its keys are read before their echo is drawn,
    # so an Enter sent this long after the echo shows is past both, however loaded the machine
    enter_gap_s=0.06,
)
