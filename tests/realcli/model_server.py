"""A scripted model server for the real agent CLIs, on 127.0.0.1 at a random port.

It speaks the Anthropic Messages API (POST /v1/messages, streaming and not, plus
count_tokens), OpenAI chat completions (POST /v1/chat/completions), the OpenAI Responses
API (POST /v1/responses) and the Gemini API (POST /v1beta/models/{model}:generateContent
and :streamGenerateContent, gemini_wire.py), and plays a scripted decider: a request that
carries a looop tick prompt gets a call to the CLI's own shell (or write) tool that creates
the decision file the prompt names (its "Decision file:" line); once the conversation
carries that tool's result the turn ends with a short text. Every request is recorded for
the tests to inspect.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import json
import re
import shlex
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.realcli import gemini_wire

ECHO = re.compile(r"ECHO:([A-Za-z0-9_-]+)")
TICK_MARKERS = ("=== CONSTITUTION", ".decision.json")
DECISION_FILE = re.compile(r"Decision file: ([^\"\\]+)")
FINAL_TEXT = "Decision written to .decision.json: {journal}"
IDLE_TEXT = "I read the world and chose not to write any decision this time."
AUX_TEXT = "ok"
ERROR_500 = "scripted internal server error"
ERROR_AUTH = "invalid x-api-key (scripted)"
ERROR_LIMIT = "The usage limit has been reached (scripted)"
ERROR_STREAM = "scripted stream failure: the model crashed mid-answer"

# Scenarios a test can select with ModelServer.scenario.
DECIDE = "decide"  # tool call that writes the decision, then a closing text
HTTP_500 = "http500"  # every model request answers 500
AUTH = "auth"  # every model request answers 401
NO_DECISION = "no_decision"  # the turn ends with text, no tool call
STREAM_ERROR = "stream_error"  # the tick turn streams an error event mid-answer
USAGE_LIMIT = "usage_limit"  # 429: the account's usage window is spent until limit_reset
SCENARIOS = (DECIDE, HTTP_500, AUTH, NO_DECISION, STREAM_ERROR, USAGE_LIMIT)

# Tool names the CLIs give their shell and file-write tools, most preferred first.
SHELL_TOOLS = ("Bash", "bash", "shell", "shell_command", "exec_command", "run_shell_command")
WRITE_TOOLS = ("Write", "write", "write_file")

RETRY_SOON = {"retry-after-ms": "20"}

MODEL_PATHS = ("/v1/messages", "/v1/chat/completions", "/v1/responses")


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON body, or the raw text when it was not JSON, or None

    @property
    def is_model_call(self) -> bool:
        return (
            self.method == "POST"
            and not self.is_outbound
            and (
                self.path.split("?")[0] in MODEL_PATHS
                or (gemini_wire.route(self.path.split("?")[0]) or ("", ""))[1]
                in ("generateContent", "streamGenerateContent")
            )
        )

    @property
    def is_outbound(self) -> bool:
        return self.method == "CONNECT" or self.path.startswith("http")

    def text(self) -> str:
        return self.body if isinstance(self.body, str) else json.dumps(self.body)


@dataclass
class ToolCall:
    name: str
    args: dict[str, Any]
    call_id: str
    kind: str = "function"  # or "tool_search": codex's client-side search of deferred tools
    namespace: str | None = None  # a Responses API tool namespace (codex's mcp__<server>)


@dataclass
class Reply:
    """What the scripted model says next: text and/or one tool call."""

    text: str = ""
    tool: ToolCall | None = None


@dataclass
class _Tool:
    name: str
    schema: dict[str, Any] = field(default_factory=dict)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def _estimate_tokens(body: Any) -> int:
    return max(1, len(json.dumps(body)) // 4)


# ------------------------------------------------------------------ request reading


def _tools(api: str, body: dict[str, Any]) -> list[_Tool]:
    if api == gemini_wire.API:
        return [_Tool(name, schema) for name, schema in gemini_wire.tools(body)]
    out: list[_Tool] = []
    for t in body.get("tools") or []:
        if not isinstance(t, dict):
            continue
        if api == "anthropic":
            out.append(_Tool(str(t.get("name", "")), t.get("input_schema") or {}))
        elif api == "chat":
            fn = t.get("function") or {}
            out.append(_Tool(str(fn.get("name", "")), fn.get("parameters") or {}))
        else:
            out.append(_Tool(str(t.get("name", t.get("type", ""))), t.get("parameters") or {}))
    return out


def _has_tool_result(api: str, body: dict[str, Any]) -> bool:
    """Does the conversation already carry the result of a tool call?"""
    if api == gemini_wire.API:
        return gemini_wire.has_tool_result(body)
    if api == "anthropic":
        for m in body.get("messages") or []:
            content = m.get("content") if isinstance(m, dict) else None
            if isinstance(content, list) and any(
                isinstance(p, dict) and p.get("type") == "tool_result" for p in content
            ):
                return True
        return False
    if api == "chat":
        return any(isinstance(m, dict) and m.get("role") == "tool" for m in body["messages"])
    items = body.get("input")
    return isinstance(items, list) and any(
        isinstance(i, dict) and str(i.get("type", "")).endswith("_output") for i in items
    )


def _tool_results(api: str, body: dict[str, Any]) -> int:
    """How many tool results the conversation carries (Anthropic, chat and Responses APIs)."""
    if api == "anthropic":
        return sum(
            1
            for m in body.get("messages") or []
            if isinstance(m, dict) and isinstance(m.get("content"), list)
            for p in m["content"]
            if isinstance(p, dict) and p.get("type") == "tool_result"
        )
    if api == "chat":
        return sum(
            1 for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "tool"
        )
    items = body.get("input")
    if not isinstance(items, list):
        return 0
    return sum(
        1 for i in items if isinstance(i, dict) and str(i.get("type", "")).endswith("_output")
    )


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") in ("text", "input_text")
        )
    return ""


def last_user_text(api: str, body: dict[str, Any]) -> str:
    """What the human typed last (tool results are not typing)."""
    if api == gemini_wire.API:
        return gemini_wire.last_user_text(body)
    items = body.get("input") if api == "responses" else body.get("messages")
    if isinstance(items, str):
        return items
    for m in reversed(items if isinstance(items, list) else []):
        if isinstance(m, dict) and m.get("role") == "user":
            text = _text_of(m.get("content"))
            if text.strip():
                return text
    return ""


def _chat_answer(api: str, body: dict[str, Any]) -> str:
    """Outside a beat the model is a parrot: `ECHO:<word>` in the last user turn gets
    `ANSWER:<word>` back, so a test can see its own prompt answered on a TUI's screen."""
    found = ECHO.findall(last_user_text(api, body))
    if not found:
        return AUX_TEXT
    return f"ANSWER:{found[-1]} (from the scripted model)"


def _decision_target(body: dict[str, Any]) -> str:
    """The absolute decision file the prompt names (the data dir's, or a sandboxed decider's
    room beside it); the relative name when the prompt names none."""
    found = DECISION_FILE.search(json.dumps(body))
    return found.group(1) if found else ".decision.json"


def _is_tick(body: dict[str, Any]) -> bool:
    raw = json.dumps(body)
    return all(m in raw for m in TICK_MARKERS)


def _shell_args(tool: _Tool, command: str, workdir: str | None) -> dict[str, Any]:
    props = tool.schema.get("properties") or {}
    required = tool.schema.get("required") or []
    args: dict[str, Any] = {}
    key = "cmd" if "cmd" in props and "command" not in props else "command"
    if (props.get(key) or {}).get("type") == "array":
        args[key] = ["bash", "-lc", command]
    else:
        args[key] = command
    for name in required:
        if name in args:
            continue
        if name == "description":
            args[name] = "Write the looop decision file"
        elif name == "workdir" and workdir:
            args[name] = workdir
        elif (props.get(name) or {}).get("type") == "string":
            args[name] = ""
    if "workdir" in props and "workdir" not in args and workdir:
        args["workdir"] = workdir
    return args


def _write_args(tool: _Tool, content: str, workdir: str | None, target: str) -> dict[str, Any]:
    props = tool.schema.get("properties") or {}
    if not target.startswith("/") and workdir:
        target = f"{workdir}/{target}"
    key = next((k for k in ("file_path", "filePath", "path") if k in props), "file_path")
    return {key: target, "content": content}


def _decision_call(
    tools: list[_Tool], decision: dict[str, Any], workdir: str | None, target: str
) -> ToolCall:
    content = json.dumps(decision)
    by_name = {t.name: t for t in tools}
    for name in SHELL_TOOLS:
        if name in by_name:
            command = f"printf '%s\\n' {shlex.quote(content)} > {shlex.quote(target)}"
            return ToolCall(name, _shell_args(by_name[name], command, workdir), _new_id("call"))
    for name in WRITE_TOOLS:
        if name in by_name:
            args = _write_args(by_name[name], content, workdir, target)
            return ToolCall(name, args, _new_id("call"))
    raise LookupError("no shell or write tool advertised: " + ", ".join(sorted(by_name)))


PROBE_MARK = "PROBE-THE-WALLS"


def _responses_named_call(body: dict[str, Any], name: str, args: dict[str, Any]) -> ToolCall | None:
    """The Responses API's way to the named tool: called directly when advertised; else, when
    the request offers codex's client-side `tool_search` (MCP tools deferred behind it), a
    search for it first, then a call to what the search exposed."""
    items = _this_turn(body)
    if any(i.get("type") == "function_call" and _qualified(i) == name for i in items):
        return None  # called once already
    if name in {t.name for t in _tools("responses", body)}:
        return ToolCall(name, dict(args), _new_id("call"))
    exposed = [
        (str(ns.get("name", "")), str(t.get("name", "")))
        for i in items
        if i.get("type") == "tool_search_output"
        for ns in i.get("tools") or []
        if isinstance(ns, dict) and ns.get("type") == "namespace"
        for t in ns.get("tools") or []
        if isinstance(t, dict)
    ]
    for space, tool in exposed:
        if f"{space}__{tool}" == name:
            return ToolCall(tool, dict(args), _new_id("call"), namespace=space)
    searched = any(i.get("type") == "tool_search_call" for i in items)
    if searched or "tool_search" not in {t.name for t in _tools("responses", body)}:
        return None  # searched once and not found: the turn ends in text
    query = {"query": name.replace("_", " ").strip(), "limit": 8}
    return ToolCall("tool_search", query, _new_id("call"), kind="tool_search")


def _this_turn(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The input items since the human's last message: a TUI sends its whole conversation,
    and each new message is a fresh try (its MCP servers may have come up since)."""
    items = [i for i in body.get("input") or [] if isinstance(i, dict)]
    starts = [n for n, i in enumerate(items) if i.get("role") == "user"]
    return items[starts[-1] :] if starts else items


def _qualified(item: dict[str, Any]) -> str:
    """A function call's full name: codex's `mcp__looop__claim` is namespace `mcp__looop`
    with name `claim`."""
    space = item.get("namespace")
    return f"{space}__{item.get('name')}" if space else str(item.get("name"))


# ------------------------------------------------------------------ the server


class ModelServer:
    """Start with `with ModelServer() as srv:`; set `scenario` and `decision` before a run."""

    def __init__(self, scenario: str = DECIDE, decision: dict[str, Any] | None = None) -> None:
        self.scenario = scenario
        self.decision: dict[str, Any] = decision or {"action": "noop", "reason": "scripted"}
        self.workdir: str | None = None  # absolute cwd, for write tools that need a full path
        # A worker turn whose prompt holds PROBE_MARK first runs this through the CLI's own
        # shell tool (once), then answers as ever: what a worker's own commands can do.
        self.worker_shell: str | None = None
        # A worker conversation that holds PROBE_MARK runs these through its shell tool, one
        # per answer, in order: the n-th once n tool results are in the conversation (so a
        # retried request gets the same step), then the turn ends with a text.
        self.worker_steps: list[str] = []
        # the same per API ("anthropic", "responses", ...), before worker_steps: two CLIs at
        # one task, each told its own change
        self.worker_steps_by_api: dict[str, list[str]] = {}
        # A turn outside a beat that advertises a tool of this name (an MCP server's, as the
        # CLI names it: claude's `mcp__<server>__<tool>`) calls it once with these arguments.
        self.tool_call: tuple[str, dict[str, Any]] | None = None
        self.limit_reset = int(time.time()) + 3600  # USAGE_LIMIT: when the window resets
        self.requests: list[Recorded] = []
        self.failures: list[str] = []  # requests the decider could not answer sensibly
        self.not_found: list[str] = []  # endpoints a CLI called that this server lacks
        # (model, input tokens, output tokens, request) of every answer: what spend tests price
        self.usage: list[tuple[str, int, int, str]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ModelServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def record(self, rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)

    def outbound(self) -> list[str]:
        """Hosts a CLI tried to reach through the proxy (the internet, refused)."""
        with self._lock:
            return [r.path for r in self.requests if r.is_outbound]

    def note_missing(self, what: str) -> None:
        with self._lock:
            self.not_found.append(what)

    def model_calls(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.is_model_call]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.failures.clear()
            self.not_found.clear()
            self.usage.clear()

    def _worker_shell_call(self, api: str, body: dict[str, Any]) -> ToolCall | None:
        if self.worker_shell is None or _has_tool_result(api, body):
            return None
        if PROBE_MARK not in last_user_text(api, body):
            return None
        by_name = {t.name: t for t in _tools(api, body)}
        for name in SHELL_TOOLS:
            if name in by_name:
                args = _shell_args(by_name[name], self.worker_shell, self.workdir)
                return ToolCall(name, args, _new_id("call"))
        return None

    def _worker_step_call(self, api: str, body: dict[str, Any]) -> ToolCall | None:
        step, steps = _tool_results(api, body), self.worker_steps_by_api.get(api, self.worker_steps)
        if step >= len(steps) or PROBE_MARK not in json.dumps(body):
            return None
        by_name = {t.name: t for t in _tools(api, body)}
        name = next((n for n in SHELL_TOOLS if n in by_name), None)
        if name is None:  # a side request (a title, a summary): no tools offered
            return None
        args = _shell_args(by_name[name], steps[step], self.workdir)
        return ToolCall(name, args, _new_id("call"))

    def _named_tool_call(self, api: str, body: dict[str, Any]) -> ToolCall | None:
        if self.tool_call is None:
            return None
        name, args = self.tool_call
        if api == "responses":
            return _responses_named_call(body, name, args)
        if _has_tool_result(api, body) or name not in {t.name for t in _tools(api, body)}:
            return None
        return ToolCall(name, dict(args), _new_id("call"))

    def plan(self, api: str, body: dict[str, Any]) -> Reply:
        """The scripted decider: what to answer to this request (scenario errors aside)."""
        if not _is_tick(body):
            named = self._named_tool_call(api, body)
            if named is not None:
                return Reply(text="I will use the looop tool.", tool=named)
            step = self._worker_step_call(api, body)
            if step is not None:
                return Reply(text=f"Step {_tool_results(api, body) + 1}.", tool=step)
            shell = self._worker_shell_call(api, body)
            if shell is not None:
                return Reply(text="I will look around first.", tool=shell)
            return Reply(text=_chat_answer(api, body))
        if _has_tool_result(api, body):
            journal = str(self.decision.get("journal") or self.decision.get("action"))
            return Reply(text=FINAL_TEXT.format(journal=journal))
        if self.scenario == NO_DECISION:
            return Reply(text=IDLE_TEXT)
        tools = _tools(api, body)
        if not tools:
            return Reply(text=AUX_TEXT)  # a side request (a session title, a summary)
        try:
            call = _decision_call(tools, self.decision, self.workdir, _decision_target(body))
        except LookupError as e:
            with self._lock:
                self.failures.append(str(e))
            return Reply(text=f"cannot decide: {e}")
        return Reply(text="I will write the decision now.", tool=call)


# ------------------------------------------------------------------ wire formats


def _sse(event: str | None, data: Any) -> bytes:
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {payload}\n\n".encode()


def _anthropic_message(model: str, reply: Reply, in_tok: int, out_tok: int) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    if reply.tool:
        content.append(
            {
                "type": "tool_use",
                "id": "toolu_" + reply.tool.call_id,
                "name": reply.tool.name,
                "input": reply.tool.args,
            }
        )
    return {
        "id": _new_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use" if reply.tool else "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": in_tok,
            "output_tokens": out_tok,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def _anthropic_stream(msg: dict[str, Any], fail: str | None) -> Iterator[bytes]:
    start = dict(msg, content=[], stop_reason=None)
    start["usage"] = dict(msg["usage"], output_tokens=1)
    yield _sse("message_start", {"type": "message_start", "message": start})
    if fail is not None:
        yield _sse(
            "error",
            {"type": "error", "error": {"type": "invalid_request_error", "message": fail}},
        )
        return
    for i, block in enumerate(msg["content"]):
        if block["type"] == "text":
            yield _sse(
                "content_block_start",
                {"type": "content_block_start", "index": i, "content_block": dict(block, text="")},
            )
            yield _sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": i,
                    "delta": {"type": "text_delta", "text": block["text"]},
                },
            )
        else:
            yield _sse(
                "content_block_start",
                {"type": "content_block_start", "index": i, "content_block": dict(block, input={})},
            )
            yield _sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": i,
                    "delta": {
                        "type": "input_json_delta",
                        "partial_json": json.dumps(block["input"]),
                    },
                },
            )
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": i})
    yield _sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": msg["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": msg["usage"]["output_tokens"]},
        },
    )
    yield _sse("message_stop", {"type": "message_stop"})


def _chat_message(model: str, reply: Reply, in_tok: int, out_tok: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool:
        message["tool_calls"] = [
            {
                "id": reply.tool.call_id,
                "type": "function",
                "function": {"name": reply.tool.name, "arguments": json.dumps(reply.tool.args)},
            }
        ]
    return {
        "id": _new_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if reply.tool else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": in_tok,
            "completion_tokens": out_tok,
            "total_tokens": in_tok + out_tok,
        },
    }


def _chat_stream(full: dict[str, Any], fail: str | None) -> Iterator[bytes]:
    base = {k: full[k] for k in ("id", "created", "model")}
    base["object"] = "chat.completion.chunk"
    choice = full["choices"][0]
    msg = choice["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _sse(
            None, dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": finish}])
        )

    yield chunk({"role": "assistant", "content": ""})
    if fail is not None:
        yield _sse(
            None, {"error": {"message": fail, "type": "invalid_request_error", "code": None}}
        )
        return
    if msg.get("content"):
        yield chunk({"content": msg["content"]})
    for i, call in enumerate(msg.get("tool_calls") or []):
        yield chunk(
            {
                "tool_calls": [
                    {
                        "index": i,
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["function"]["name"], "arguments": ""},
                    }
                ]
            }
        )
        yield chunk(
            {"tool_calls": [{"index": i, "function": {"arguments": call["function"]["arguments"]}}]}
        )
    yield chunk({}, choice["finish_reason"])
    yield _sse(None, dict(base, choices=[], usage=full["usage"]))
    yield _sse(None, "[DONE]")


def _responses_items(reply: Reply) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if reply.text:
        items.append(
            {
                "type": "message",
                "id": _new_id("msg"),
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": reply.text, "annotations": []}],
            }
        )
    if reply.tool and reply.tool.kind == "tool_search":
        items.append(
            {
                "type": "tool_search_call",
                "id": _new_id("ts"),
                "call_id": reply.tool.call_id,
                "execution": "client",
                "arguments": reply.tool.args,
                "status": "completed",
            }
        )
    elif reply.tool:
        call = {
            "type": "function_call",
            "id": _new_id("fc"),
            "call_id": reply.tool.call_id,
            "name": reply.tool.name,
            "arguments": json.dumps(reply.tool.args),
            "status": "completed",
        }
        if reply.tool.namespace:
            call["namespace"] = reply.tool.namespace
        items.append(call)
    return items


def _responses_object(
    model: str, items: list[dict[str, Any]], in_tok: int, out_tok: int, status: str
) -> dict[str, Any]:
    return {
        "id": _new_id("resp"),
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": model,
        "output": items,
        "error": None,
        "usage": {
            "input_tokens": in_tok,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": out_tok,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": in_tok + out_tok,
        },
    }


def _responses_stream(resp: dict[str, Any], fail: str | None) -> Iterator[bytes]:
    seq = itertools.count()

    def ev(kind: str, **data: Any) -> bytes:
        return _sse(kind, {"type": kind, "sequence_number": next(seq), **data})

    pending = dict(resp, status="in_progress", output=[], usage=None)
    yield ev("response.created", response=pending)
    yield ev("response.in_progress", response=pending)
    if fail is not None:
        failed = dict(
            pending, status="failed", error={"code": "invalid_request_error", "message": fail}
        )
        yield ev("response.failed", response=failed)
        return
    for idx, item in enumerate(resp["output"]):
        if item["type"] == "message":
            text = item["content"][0]["text"]
            yield ev(
                "response.output_item.added",
                output_index=idx,
                item=dict(item, status="in_progress", content=[]),
            )
            part = {"type": "output_text", "text": "", "annotations": []}
            yield ev(
                "response.content_part.added",
                item_id=item["id"],
                output_index=idx,
                content_index=0,
                part=part,
            )
            yield ev(
                "response.output_text.delta",
                item_id=item["id"],
                output_index=idx,
                content_index=0,
                delta=text,
            )
            yield ev(
                "response.output_text.done",
                item_id=item["id"],
                output_index=idx,
                content_index=0,
                text=text,
            )
            yield ev(
                "response.content_part.done",
                item_id=item["id"],
                output_index=idx,
                content_index=0,
                part=dict(part, text=text),
            )
        elif item["type"] == "tool_search_call":
            yield ev("response.output_item.added", output_index=idx, item=item)
        else:
            yield ev(
                "response.output_item.added",
                output_index=idx,
                item=dict(item, status="in_progress", arguments=""),
            )
            yield ev(
                "response.function_call_arguments.delta",
                item_id=item["id"],
                output_index=idx,
                delta=item["arguments"],
            )
            yield ev(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=idx,
                arguments=item["arguments"],
            )
        yield ev("response.output_item.done", output_index=idx, item=item)
    yield ev("response.completed", response=resp)


# ------------------------------------------------------------------ HTTP


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        data = bytearray()
        while True:
            size = int(handler.rfile.readline().strip().split(b";")[0] or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                break
            data += handler.rfile.read(size)
            handler.rfile.readline()
        raw = bytes(data)
    else:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
    if handler.headers.get("Content-Encoding", "").lower() == "gzip":
        raw = gzip.decompress(raw)
    return raw


def _make_handler(server: ModelServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return  # the recorded requests are the log

        def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(obj).encode()
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("request-id", _new_id("req"))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, chunks: Iterator[bytes]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                for c in chunks:
                    self.wfile.write(c)
                    self.wfile.flush()

        def _not_found(self, path: str) -> None:
            server.note_missing(f"{self.command} {path}")
            self._json(404, {"error": {"message": f"no such endpoint {path}", "type": "not_found"}})

        def _recorded(self, body: Any) -> None:
            server.record(
                Recorded(self.command, self.path, {k: v for k, v in self.headers.items()}, body)
            )

        def _refuse_outbound(self) -> bool:
            """Used as the CLIs' HTTP(S) proxy: anything bound elsewhere is the internet,
            which these tests do not have. Refuse it, and remember who asked."""
            if self.command != "CONNECT" and not self.path.startswith("http"):
                return False
            self._recorded(None)
            self._json(403, {"error": {"message": "offline (looop realcli tests)"}})
            self.close_connection = True
            return True

        def do_CONNECT(self) -> None:
            self._refuse_outbound()

        def do_GET(self) -> None:
            if self._refuse_outbound():
                return
            self._recorded(None)
            path = self.path.split("?")[0]
            if path.rstrip("/").endswith("/models"):
                self._json(200, _models_list())
                return
            self._not_found(path)

        def do_HEAD(self) -> None:
            self._recorded(None)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            raw = _read_body(self)
            if self._refuse_outbound():
                return
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            self._recorded(body)
            path = self.path.split("?")[0]
            if path.endswith("/messages/count_tokens"):
                self._json(200, {"input_tokens": _estimate_tokens(body)})
                return
            gemini = gemini_wire.route(path)
            if gemini is not None and gemini[1] == "countTokens":
                self._json(200, {"totalTokens": _estimate_tokens(body)})
                return
            api = {
                "/v1/messages": "anthropic",
                "/v1/chat/completions": "chat",
                "/v1/responses": "responses",
            }.get(path)
            if gemini is not None and gemini[1] in ("generateContent", "streamGenerateContent"):
                api = gemini_wire.API
            if api is None or not isinstance(body, dict):
                self._not_found(path)
                return
            self._model(api, body)

        def _gemini(self, body: dict[str, Any], fail: str | None) -> None:
            """A Gemini answer: its model is in the path, streaming is the method."""
            model, method = gemini_wire.route(self.path.split("?")[0]) or ("", "")
            schema = gemini_wire.wants_json(body)
            if schema is not None:  # the CLI's own JSON side requests (router, checks)
                reply = Reply(text=json.dumps(gemini_wire.fill(schema)))
                fail = None
            else:
                reply = server.plan(gemini_wire.API, body)
            in_tok = _estimate_tokens(body)
            out_tok = 12 + len(reply.text) // 4 + (40 if reply.tool else 0)
            if fail is None:
                with server._lock:
                    server.usage.append((model, in_tok, out_tok, json.dumps(body)))
            call = (reply.tool.name, reply.tool.args) if reply.tool else None
            full = gemini_wire.answer(model, reply.text, call, in_tok, out_tok)
            if method == "streamGenerateContent":
                self._stream(gemini_wire.stream(full, fail))
            elif fail is not None:
                self._json(400, gemini_wire.error_body(400, fail))
            else:
                self._json(200, full)

        def _model(self, api: str, body: dict[str, Any]) -> None:
            scenario = server.scenario
            if scenario == HTTP_500:
                # A real server says when to come back; every CLI's own retry policy then
                # runs its course in milliseconds instead of minutes.
                self._json(500, _error_body(api, "api_error", ERROR_500), RETRY_SOON)
                return
            if scenario == AUTH:
                self._json(401, _error_body(api, "authentication_error", ERROR_AUTH))
                return
            if scenario == USAGE_LIMIT:
                self._json(429, *_usage_limit(api, server.limit_reset))
                return
            fail = (
                ERROR_STREAM
                if scenario == STREAM_ERROR and _is_tick(body) and not _has_tool_result(api, body)
                else None
            )
            if api == gemini_wire.API:
                self._gemini(body, fail)
                return
            reply = server.plan(api, body)
            model = str(body.get("model") or "scripted-model")
            in_tok = _estimate_tokens(body)
            out_tok = 12 + len(reply.text) // 4 + (40 if reply.tool else 0)
            if fail is None:
                with server._lock:
                    server.usage.append((model, in_tok, out_tok, json.dumps(body)))
            stream = body.get("stream") is True
            if api == "anthropic":
                msg = _anthropic_message(model, reply, in_tok, out_tok)
                if stream:
                    self._stream(_anthropic_stream(msg, fail))
                elif fail is not None:
                    self._json(400, _error_body(api, "invalid_request_error", fail))
                else:
                    self._json(200, msg)
            elif api == "chat":
                full = _chat_message(model, reply, in_tok, out_tok)
                if stream:
                    self._stream(_chat_stream(full, fail))
                elif fail is not None:
                    self._json(400, _error_body(api, "invalid_request_error", fail))
                else:
                    self._json(200, full)
            else:
                resp = _responses_object(
                    model, _responses_items(reply), in_tok, out_tok, "completed"
                )
                if stream:
                    self._stream(_responses_stream(resp, fail))
                elif fail is not None:
                    self._json(400, _error_body(api, "invalid_request_error", fail))
                else:
                    self._json(200, resp)

    return Handler


def _usage_limit(api: str, reset: int) -> tuple[dict[str, Any], dict[str, str]]:
    """A spent usage window, as each provider says it: Anthropic in its unified rate-limit
    headers, OpenAI (what codex reads) as a `usage_limit_reached` error with `resets_at`."""
    if api == gemini_wire.API:
        return _error_body(api, "rate_limit_error", ERROR_LIMIT), dict(RETRY_SOON)
    if api == "anthropic":
        headers = {
            "anthropic-ratelimit-unified-status": "rejected",
            "anthropic-ratelimit-unified-reset": str(reset),
            "anthropic-ratelimit-unified-representative-claim": "five_hour",
            **RETRY_SOON,  # should claude retry anyway, it costs milliseconds
        }
        return _error_body(api, "rate_limit_error", ERROR_LIMIT), headers
    body = {
        "error": {
            "type": "usage_limit_reached",
            "message": ERROR_LIMIT,
            "plan_type": "plus",
            "resets_at": reset,
            "resets_in_seconds": max(1, reset - int(time.time())),
        }
    }
    return body, {"retry-after": str(max(1, reset - int(time.time())))}


def _error_body(api: str, kind: str, message: str) -> dict[str, Any]:
    if api == gemini_wire.API:
        code = {"authentication_error": 401, "rate_limit_error": 429, "api_error": 500}
        return gemini_wire.error_body(code.get(kind, 400), message)
    if api == "anthropic":
        return {"type": "error", "error": {"type": kind, "message": message}}
    code = "invalid_api_key" if kind == "authentication_error" else kind
    return {"error": {"message": message, "type": kind, "code": code, "param": None}}


def _models_list() -> dict[str, Any]:
    ids = ["scripted-model", "claude-sonnet-4-5", "gpt-5"]
    return {
        "object": "list",
        "data": [
            {
                "id": i,
                "object": "model",
                "type": "model",
                "display_name": i,
                "created": 0,
                "created_at": "2025-01-01T00:00:00Z",
                "owned_by": "looop-tests",
            }
            for i in ids
        ],
        "has_more": False,
        "first_id": ids[0],
        "last_id": ids[-1],
    }
