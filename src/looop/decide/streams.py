"""Turn a runner's stdout (a built-in JSON stream shape, RunnerProfile.stream; a stream its
profile reads, RunnerProfile.is_own and .event; or plain text) into lines a human can read when
replaying runs/<id>/output.log."""

from __future__ import annotations

import re
from typing import Any

from looop.core.text import clip, one_line
from looop.home import jsonio
from looop.runners import RUNNERS
from looop.runners.runnerprofile import RunnerProfile

_ARG_KEYS = ("command", "file_path", "filePath", "path", "pattern")
_ARG_MAX = 100
_ERROR_MAX = 500


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _first_line(s: str) -> str:
    for ln in s.splitlines():
        if ln.strip():
            return one_line(ln, 200)
    return ""


def _text_lines(s: str) -> list[str]:
    return [ln.rstrip() for ln in s.splitlines() if ln.strip()]


def _count(v: Any) -> str:
    n = _num(v)
    return f"{n:g}" if n is not None else "?"


def tool_arg(args: Any) -> str:
    """The one argument worth showing for a tool call: a command or a path, else compact JSON."""
    d = _dict(args)
    for key in _ARG_KEYS:
        s = _str(d.get(key))
        if s and s.strip():
            return one_line(s, _ARG_MAX)
    if args is None or args == {} or args == []:
        return ""
    try:
        shown = jsonio.dumps(args, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return ""
    return one_line(shown, _ARG_MAX)


def _arrow(name: str, arg: str) -> str:
    return f"  → {name}: {arg}" if arg else f"  → {name}"


class StreamRenderer:
    """Feed raw runner lines one at a time; keeps the last stream error."""

    def __init__(self, runners: tuple[RunnerProfile, ...] = RUNNERS) -> None:
        self.error: str | None = None
        self._items_shown: set[str] = set()
        # the profiles that read their own stream (runners/__init__.py), asked before the built-in
        self._own = [(p.is_own, p.event) for p in runners if p.is_own and p.event]
        self._result_cli = next((p.name for p in runners if p.stream == "result"), "the runner")

    def feed(self, line: str) -> list[str]:
        text = line.rstrip("\r\n")
        if not text.strip():
            return []
        if not text.lstrip().startswith("{"):
            return [text]
        try:
            ev = jsonio.loads(text)
        except (ValueError, RecursionError):
            return [text]
        if not isinstance(ev, dict):
            return [text]
        try:
            return self._event(ev)
        except Exception:
            # A shape we did not foresee must never break the reading of a run.
            return []

    # ------------------------------------------------------------ dispatch

    def _event(self, ev: dict[str, Any]) -> list[str]:
        kind = _str(ev.get("type"))
        if kind is None:
            return []
        for is_own, read in self._own:
            if is_own(ev):
                return self._profile(read(ev))
        handler = _HANDLERS.get(kind)
        return handler(self, ev) if handler is not None else []

    def _fail(self, msg: str) -> list[str]:
        self.error = one_line(provider_error(msg), _ERROR_MAX) or "stream reported an error"
        return [f"  ✗ {self.error}"]

    def _profile(self, said: tuple[str, str, object] | None) -> list[str]:
        """A runner profile's reading of its own event (RunnerProfile.event) as lines."""
        if said is None:
            return []
        kind, text, detail = said
        if kind == "said":
            return _text_lines(text)
        if kind == "tool":
            return [_arrow(text, tool_arg(detail))]
        if kind == "tool_failed":
            first = _first_line(text)
            return [f"  ✗ tool failed: {first}" if first else "  ✗ tool failed"]
        if kind == "failed":
            if not text and self.error:
                return []  # a closing event without a reason: the one before said it
            return self._fail(text or "turn failed")
        if kind == "done":
            self.error = None
            return [f"  ✓ done · {text}" if text else "  ✓ done"]
        if kind == "session":
            return [f"  · session {clip(text, 60)}" if text else "  · session"]
        return [f"  · {one_line(text, 200)}"] if text else []

    # ------------------------------------------------------------ "agent"

    def _tool_start(self, ev: dict[str, Any]) -> list[str]:
        name = _str(ev.get("toolName")) or "tool"
        return [_arrow(name, tool_arg(ev.get("args")))]

    def _tool_end(self, ev: dict[str, Any]) -> list[str]:
        if ev.get("isError") is not True:
            return []
        name = _str(ev.get("toolName")) or "tool"
        detail = ""
        for part in _list(_dict(ev.get("result")).get("content")):
            detail = _first_line(_str(_dict(part).get("text")) or "")
            if detail:
                break
        return [f"  ✗ {name} failed: {detail}" if detail else f"  ✗ {name} failed"]

    def _stop_error(self, msg: dict[str, Any]) -> list[str] | None:
        if msg.get("stopReason") != "error":
            return None
        return self._fail(_str(msg.get("errorMessage")) or "provider error (stopReason: error)")

    def _message_end(self, ev: dict[str, Any]) -> list[str]:
        msg = _dict(ev.get("message"))
        if msg.get("role") != "assistant":
            return []
        texts = []
        for part in _list(msg.get("content")):
            p = _dict(part)
            if p.get("type") == "text":
                texts.append(_str(p.get("text")) or "")
        out = _text_lines("".join(texts))
        failed = self._stop_error(msg)
        if failed is not None:
            return out + failed
        self.error = None
        return out

    def _agent_end(self, ev: dict[str, Any]) -> list[str]:
        last: dict[str, Any] = {}
        turns, cost = 0, 0.0
        for m in _list(ev.get("messages")):
            if _dict(m).get("role") == "assistant":
                last = _dict(m)
                turns += 1
                usd = _num(_dict(_dict(last.get("usage")).get("cost")).get("total"))
                cost += usd or 0.0
        top = self._stop_error(ev)
        if top is not None:
            return top
        if self.error is not None:
            return []
        failed = self._stop_error(last)
        if failed is not None:
            return failed
        if turns == 0:
            return []
        # this shape has no result event; its last agent_end is the run's summary
        return [f"  ✓ done · {turns} turns · ${cost:.4f}"]

    def _retry_start(self, ev: dict[str, Any]) -> list[str]:
        # the CLI retries a failed turn itself; each failed attempt already ended with an error
        attempt, most = _count(ev.get("attempt")), _count(ev.get("maxAttempts"))
        why = one_line(provider_error(_str(ev.get("errorMessage")) or ""), 200)
        return [f"  · retry {attempt}/{most}" + (f" after: {why}" if why else "")]

    def _retry_end(self, ev: dict[str, Any]) -> list[str]:
        if ev.get("success") is True:
            return []
        before = self.error
        out = self._fail(_str(ev.get("finalError")) or "gave up retrying")
        return [] if self.error == before else out  # the last attempt already said it

    # ------------------------------------------------------------ "result"

    def _system(self, ev: dict[str, Any]) -> list[str]:
        if ev.get("subtype") == "api_retry":
            status = _num(ev.get("error_status"))
            why = " ".join(
                bit
                for bit in (f"HTTP {status:g}" if status is not None else "", _str(ev.get("error")))
                if bit
            )
            head = f"  · API retry {_count(ev.get('attempt'))}/{_count(ev.get('max_retries'))}"
            return [head + (f" after {why}" if why else "")]
        if ev.get("subtype") != "init":
            return []
        model = _str(ev.get("model"))
        return [f"  · session {clip(model, 60)}" if model else "  · session"]

    def _assistant(self, ev: dict[str, Any]) -> list[str]:
        if ev.get("is_api_error_message") is True:
            # the CLI's own stand-in for a failed API call; the result event repeats it
            texts = [
                _str(_dict(p).get("text")) or ""
                for p in _list(_dict(ev.get("message")).get("content"))
            ]
            return self._fail(_with_status(" ".join(texts), ev))
        out: list[str] = []
        for part in _list(_dict(ev.get("message")).get("content")):
            p = _dict(part)
            if p.get("type") == "text":
                out += _text_lines(_str(p.get("text")) or "")
            elif p.get("type") == "tool_use":
                name = _str(p.get("name")) or "tool"
                out.append(_arrow(name, tool_arg(p.get("input"))))
        return out

    def _user(self, ev: dict[str, Any]) -> list[str]:
        out: list[str] = []
        for part in _list(_dict(ev.get("message")).get("content")):
            p = _dict(part)
            if p.get("type") != "tool_result" or p.get("is_error") is not True:
                continue
            content = p.get("content")
            text = _str(content) or ""
            if not text:
                for c in _list(content):
                    text = _str(_dict(c).get("text")) or ""
                    if text.strip():
                        break
            first = _first_line(text)
            out.append(f"  ✗ tool failed: {first}" if first else "  ✗ tool failed")
        return out

    def _result(self, ev: dict[str, Any]) -> list[str]:
        subtype = _str(ev.get("subtype")) or ""
        failed = ev.get("is_error") is True or subtype.startswith("error")
        bits: list[str] = []
        ms = _num(ev.get("duration_ms"))
        if ms is not None:
            bits.append(f"in {ms / 1000:.1f}s")
        turns = _num(ev.get("num_turns"))
        if turns is not None:
            bits.append(f"{turns:g} turns")
        cost = _num(ev.get("total_cost_usd"))
        if cost is not None:
            bits.append(f"${cost:.4f}")
        summary = " · ".join(bits)
        result = _str(ev.get("result"))
        if not failed:
            self.error = None
            return [f"  ✓ done {summary}".rstrip()]
        why = _first_line(result or "") or subtype or f"{self._result_cli} reported an error"
        self.error = one_line(_with_status(why, ev), _ERROR_MAX)
        return [f"  ✗ failed {summary}".rstrip() + f": {self.error}"]

    # ------------------------------------------------------------ "thread"

    def _item(self, ev: dict[str, Any], done: bool) -> list[str]:
        item = _dict(ev.get("item"))
        kind = _str(item.get("type")) or _str(item.get("item_type"))
        item_id = _str(item.get("id"))
        if kind == "command_execution":
            out: list[str] = []
            if item_id is None or item_id not in self._items_shown:
                if item_id is not None:
                    self._items_shown.add(item_id)
                out.append(_arrow("shell", tool_arg({"command": item.get("command")})))
            code = _num(item.get("exit_code"))
            if done and code is not None and code != 0:
                out.append(f"  ✗ exit {code:g}")
            return out
        if not done:
            return []
        if kind in ("agent_message", "assistant_message"):
            return _text_lines(_str(item.get("text")) or "")
        if kind == "reasoning":
            first = _first_line(_str(item.get("text")) or "")
            return [f"  · {clip(first, _ARG_MAX)}"] if first else []
        if kind == "file_change":
            names = [_str(_dict(c).get("path")) for c in _list(item.get("changes"))]
            shown = ", ".join(n for n in names if n)
            return [_arrow("edit", one_line(shown, _ARG_MAX))]
        if kind == "mcp_tool_call":
            server, tool = _str(item.get("server")), _str(item.get("tool")) or "tool"
            return [_arrow(f"{server}.{tool}" if server else tool, tool_arg(item.get("arguments")))]
        if kind == "web_search":
            return [_arrow("search", one_line(_str(item.get("query")) or "", _ARG_MAX))]
        if kind == "error":
            msg = _first_line(_str(item.get("message")) or "")
            return [f"  ✗ {msg}"] if msg else []
        return []

    def _turn_done(self, ev: dict[str, Any]) -> list[str]:
        self.error = None
        usage = _dict(ev.get("usage"))
        bits = []
        if "input_tokens" in usage:
            bits.append(f"{_count(usage.get('input_tokens'))} in")
        if "output_tokens" in usage:
            bits.append(f"{_count(usage.get('output_tokens'))} out")
        return ["  ✓ turn done" + (" · " + " / ".join(bits) if bits else "")]

    def _turn_failed(self, ev: dict[str, Any]) -> list[str]:
        before = self.error
        out = self._fail(_error_text(ev.get("error")) or "turn failed")
        return [] if self.error == before else out  # the CLI repeats its last error here

    # ------------------------------------------------------------ shared / "step"

    def _error(self, ev: dict[str, Any]) -> list[str]:
        # "thread": {"type":"error","message":…}; "step": {"type":"error","error":{…}}
        msg = _str(ev.get("message")) or _error_text(ev.get("error"))
        if msg and msg.startswith("Reconnecting..."):
            # a retried request: news, not yet the outcome
            return [f"  · {one_line(msg, 200)}"]
        return self._fail(msg or "error")

    def _part_text(self, ev: dict[str, Any]) -> list[str]:
        return _text_lines(_str(_dict(ev.get("part")).get("text")) or "")

    def _tool_use(self, ev: dict[str, Any]) -> list[str]:
        part = _dict(ev.get("part"))
        state = _dict(part.get("state"))
        name = _str(part.get("tool")) or "tool"
        out = [_arrow(name, tool_arg(state.get("input")))]
        if state.get("status") == "error":
            why = _first_line(_str(state.get("error")) or "")
            out.append(f"  ✗ {name} failed: {why}" if why else f"  ✗ {name} failed")
        return out

    def _step_finish(self, ev: dict[str, Any]) -> list[str]:
        part = _dict(ev.get("part"))
        tokens = _dict(part.get("tokens"))
        bits = []
        if "input" in tokens or "output" in tokens:
            bits.append(f"{_count(tokens.get('input'))} in / {_count(tokens.get('output'))} out")
        cost = _num(part.get("cost"))
        if cost is not None:
            bits.append(f"${cost:.4f}")
        if part.get("reason") == "stop":
            self.error = None
        return ["  ✓ step done" + (" · " + " · ".join(bits) if bits else "")]


def _error_text(v: Any) -> str:
    """A provider error object in any of the shapes seen: str, {message}, {name, data:{message}}."""
    s = _str(v)
    if s is not None:
        return s
    d = _dict(v)
    data = _dict(d.get("data"))
    msg = _str(d.get("message")) or _str(data.get("message"))
    if msg:
        msg = provider_error(msg)
    name = _str(d.get("name"))
    status = _num(data.get("statusCode"))
    if name and status is not None:
        name = f"{name} {status:g}"  # {"name":"APIError","data":{"statusCode":401,…}}
    if msg and name:
        return f"{name}: {msg}"
    return msg or name or ""


_STATUS_JSON = re.compile(r"^\s*(\d{3})?\s*(\{.*\})\s*$", re.DOTALL)


def provider_error(msg: str) -> str:
    """A provider's error body passed through verbatim (`500 {"type":"error","error":
    {"type":"api_error","message":"…"}}`, or a JSON string) as `500 api_error: …`."""
    m = _STATUS_JSON.match(msg)
    if m is None:
        return msg
    try:
        body = jsonio.loads(m.group(2))
    except (ValueError, RecursionError):
        return msg
    if not isinstance(body, dict):
        return msg
    inner = _dict(body.get("error")) or body
    text = _str(inner.get("message"))
    if not text:
        return msg
    kind = _str(inner.get("type")) or _str(inner.get("code"))
    head = " ".join(bit for bit in (m.group(1), kind) if bit)
    return f"{head}: {text}" if head else text


def _with_status(why: str, ev: dict[str, Any]) -> str:
    """A "result" CLI puts the HTTP status beside its message; say it when the message does
    not."""
    status = _num(ev.get("api_error_status"))
    if status is None or f"{status:g}" in why:
        return why
    kind = _str(ev.get("api_error_type"))
    return f"{why} (HTTP {status:g}{' ' + kind if kind else ''})"


_HANDLERS = {
    # "agent"
    "tool_execution_start": StreamRenderer._tool_start,
    "tool_execution_end": StreamRenderer._tool_end,
    "message_end": StreamRenderer._message_end,
    "agent_end": StreamRenderer._agent_end,
    "auto_retry_start": StreamRenderer._retry_start,
    "auto_retry_end": StreamRenderer._retry_end,
    # "result"
    "system": StreamRenderer._system,
    "assistant": StreamRenderer._assistant,
    "user": StreamRenderer._user,
    "result": StreamRenderer._result,
    # "thread"
    "item.started": lambda r, ev: r._item(ev, done=False),
    "item.completed": lambda r, ev: r._item(ev, done=True),
    "turn.completed": StreamRenderer._turn_done,
    "turn.failed": StreamRenderer._turn_failed,
    # "thread" and "step"
    "error": StreamRenderer._error,
    # "step"
    "text": StreamRenderer._part_text,
    "tool_use": StreamRenderer._tool_use,
    "step_finish": StreamRenderer._step_finish,
}
