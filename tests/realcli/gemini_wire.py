"""The Gemini API's wire format for the scripted model server (model_server.py): what the real
`gemini` CLI (@google/gemini-cli, through @google/genai) sends to
`POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`, and what it
reads back. Learnt from the pinned CLI's own requests (tests/realcli/README.md).

A request: {"contents": [{"role": "user"|"model", "parts": [{"text"} | {"functionCall":
{"name", "args"}} | {"functionResponse": {"name", "response"}}]}], "systemInstruction",
"tools": [{"functionDeclarations": [{"name", "parametersJsonSchema"|"parameters"}]}],
"generationConfig": {…, "responseMimeType", "responseJsonSchema"}}. An answer: {"candidates":
[{"content": {"role": "model", "parts": […]}, "finishReason": "STOP", "index": 0}],
"usageMetadata": {"promptTokenCount", "candidatesTokenCount", "totalTokenCount"},
"modelVersion"}; streamed, each SSE `data:` line is one such answer (a chunk).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

API = "gemini"
PREFIX = "/v1beta/models/"

# google.rpc status names for the HTTP codes the scenarios answer with
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 429: "RESOURCE_EXHAUSTED",
           500: "INTERNAL"}  # fmt: skip


def route(path: str) -> tuple[str, str] | None:
    """(model, method) of a Gemini path (`/v1beta/models/gemini-2.5-pro:generateContent`),
    None for any other path."""
    if not path.startswith(PREFIX) or ":" not in path:
        return None
    model, _, method = path[len(PREFIX) :].partition(":")
    return model, method


def tools(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, JSON schema) of every function the request declares."""
    out: list[tuple[str, dict[str, Any]]] = []
    for group in body.get("tools") or []:
        for fn in (group.get("functionDeclarations") or []) if isinstance(group, dict) else []:
            if isinstance(fn, dict):
                schema = fn.get("parametersJsonSchema") or fn.get("parameters") or {}
                out.append((str(fn.get("name", "")), schema))
    return out


def _parts(body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for c in body.get("contents") or []:
        if isinstance(c, dict):
            for p in c.get("parts") or []:
                if isinstance(p, dict):
                    yield str(c.get("role", "user")), p


def has_tool_result(body: dict[str, Any]) -> bool:
    return any("functionResponse" in p for _role, p in _parts(body))


def called(body: dict[str, Any], name: str) -> bool:
    return any((p.get("functionCall") or {}).get("name") == name for _r, p in _parts(body))


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the last user turn that holds typing (not only function responses)."""
    for c in reversed(body.get("contents") or []):
        if not isinstance(c, dict) or c.get("role", "user") != "user":
            continue
        text = "\n".join(str(p.get("text", "")) for p in c.get("parts") or [] if "text" in p)
        if text.strip():
            return text
    return ""


def wants_json(body: dict[str, Any]) -> dict[str, Any] | None:
    """The schema of a side request that asks for JSON (the CLI's model router, its
    next-speaker and loop checks), else None."""
    cfg = body.get("generationConfig") or {}
    if cfg.get("responseMimeType") != "application/json":
        return None
    schema = cfg.get("responseJsonSchema") or cfg.get("responseSchema") or {}
    return schema if isinstance(schema, dict) else {}


def fill(schema: dict[str, Any]) -> Any:
    """A plain value that fits `schema`: what the scripted model answers a JSON side request
    with (the first enum value; strings "ok", numbers 1, booleans false)."""
    if schema.get("enum"):
        return schema["enum"][0]
    kind = str(schema.get("type", "object")).lower()
    if kind == "object":
        props = schema.get("properties") or {}
        return {k: fill(v) for k, v in props.items() if isinstance(v, dict)}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return False
    return "ok"


def answer(
    model: str, text: str, call: tuple[str, dict[str, Any]] | None, in_tok: int, out_tok: int
) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if text:
        parts.append({"text": text})
    if call is not None:
        parts.append({"functionCall": {"name": call[0], "args": call[1]}})
    return {
        "candidates": [
            {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": {
            "promptTokenCount": in_tok,
            "candidatesTokenCount": out_tok,
            "totalTokenCount": in_tok + out_tok,
        },
        "modelVersion": model,
    }


def stream(full: dict[str, Any], fail: str | None) -> Iterator[bytes]:
    """The answer as SSE chunks: the text first, then the call and the usage. A failing stream
    breaks after its first chunk with an error object."""
    cand = full["candidates"][0]
    parts = cand["content"]["parts"]
    texts = [p for p in parts if "text" in p]
    rest = [p for p in parts if "text" not in p]
    if texts or fail is not None:
        first = {"candidates": [{"content": {"role": "model", "parts": texts}, "index": 0}]}
        yield _chunk(dict(first, modelVersion=full["modelVersion"]))
    if fail is not None:
        yield _chunk(error_body(400, fail))
        return
    last = dict(full, candidates=[dict(cand, content={"role": "model", "parts": rest})])
    yield _chunk(last)


def _chunk(obj: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(obj)}\r\n\r\n".encode()


def error_body(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": _STATUS.get(code, "UNKNOWN")}}
