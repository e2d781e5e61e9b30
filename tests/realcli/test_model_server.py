"""The scripted model server on its own (no CLI needed): each API, streaming and not, each
scenario, and the offline proxy."""

from __future__ import annotations

import http.client
import json
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.realcli.model_server import (
    AUTH,
    ERROR_STREAM,
    FINAL_TEXT,
    HTTP_500,
    IDLE_TEXT,
    NO_DECISION,
    PROBE_MARK,
    STREAM_ERROR,
    ModelServer,
)

pytestmark = pytest.mark.timeout(30)

TICK = "=== CONSTITUTION (immutable) ===\nwrite your one move to .decision.json"
DECISION = {"action": "noop", "reason": "it's quiet", "journal": "nothing to do"}


@pytest.fixture
def srv() -> Iterator[ModelServer]:
    with ModelServer(decision=dict(DECISION)) as s:
        yield s


def _post(srv: ModelServer, path: str, body: dict[str, Any]) -> tuple[int, str, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode(), dict(resp.getheaders())
    finally:
        conn.close()


def _sse(text: str) -> list[Any]:
    out: list[Any] = []
    for line in text.splitlines():
        if line.startswith("data: "):
            data = line[len("data: ") :]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def _anthropic(stream: bool, messages: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "stream": stream,
        "max_tokens": 100,
        "messages": messages or [{"role": "user", "content": TICK}],
        "tools": [
            {
                "name": "Bash",
                "input_schema": {
                    "type": "object",
                    "properties": {"command": {"type": "string"}},
                    "required": ["command"],
                },
            }
        ],
    }


def _chat(stream: bool, messages: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    params = {
        "type": "object",
        "properties": {"command": {"type": "string"}, "description": {"type": "string"}},
        "required": ["command", "description"],
    }
    return {
        "model": "scripted-model",
        "stream": stream,
        "messages": messages or [{"role": "user", "content": TICK}],
        "tools": [{"type": "function", "function": {"name": "bash", "parameters": params}}],
    }


def _responses(stream: bool, items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    params = {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}
    return {
        "model": "gpt-5.5",
        "stream": stream,
        "input": items
        or [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": TICK}]}],
        "tools": [{"type": "function", "name": "exec_command", "parameters": params}],
    }


def _runs_and_writes(command: str, tmp_path: Path) -> dict[str, Any]:
    """The command the model asked for, run for real: it must create the decision."""
    subprocess.run(["bash", "-c", command], cwd=tmp_path, check=True, timeout=10)
    decided: dict[str, Any] = json.loads((tmp_path / ".decision.json").read_text())
    return decided


def test_anthropic_tool_call_then_final_text(srv: ModelServer, tmp_path: Path) -> None:
    status, text, _ = _post(srv, "/v1/messages", _anthropic(False))
    assert status == 200
    msg = json.loads(text)
    assert msg["stop_reason"] == "tool_use"
    call = next(b for b in msg["content"] if b["type"] == "tool_use")
    assert call["name"] == "Bash"
    assert _runs_and_writes(call["input"]["command"], tmp_path) == DECISION
    assert msg["usage"]["input_tokens"] > 0 and msg["usage"]["output_tokens"] > 0

    after: list[dict[str, Any]] = [
        {"role": "user", "content": TICK},
        {"role": "assistant", "content": [call]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"]}]},
    ]
    status, text, _ = _post(srv, "/v1/messages", _anthropic(False, after))
    final = json.loads(text)
    assert final["stop_reason"] == "end_turn"
    assert final["content"] == [
        {"type": "text", "text": FINAL_TEXT.format(journal="nothing to do")}
    ]


def test_worker_steps_run_one_per_answer_by_the_tool_results_so_far(srv: ModelServer) -> None:
    srv.worker_steps = ["echo one", "echo two"]
    said: list[dict[str, Any]] = [{"role": "user", "content": f"{PROBE_MARK} do the work"}]
    commands = []
    for _ in range(2):
        for _again in range(2):  # a retried request gets the same step
            msg = json.loads(_post(srv, "/v1/messages", _anthropic(False, said))[1])
        call = next(b for b in msg["content"] if b["type"] == "tool_use")
        commands.append(call["input"]["command"])
        said += [
            {"role": "assistant", "content": [call]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"]}]},
        ]
    assert commands == ["echo one", "echo two"]
    final = json.loads(_post(srv, "/v1/messages", _anthropic(False, said))[1])
    assert final["stop_reason"] == "end_turn"  # the steps done: the turn ends
    plain = [{"role": "user", "content": "no mark here"}]  # another conversation: no step
    assert json.loads(_post(srv, "/v1/messages", _anthropic(False, plain))[1])["stop_reason"] == (
        "end_turn"
    )


def test_anthropic_stream_events(srv: ModelServer, tmp_path: Path) -> None:
    status, text, headers = _post(srv, "/v1/messages?beta=true", _anthropic(True))
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    events = _sse(text)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    args = "".join(
        e["delta"]["partial_json"]
        for e in events
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta"
    )
    assert _runs_and_writes(json.loads(args)["command"], tmp_path) == DECISION
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


def test_count_tokens_and_models(srv: ModelServer) -> None:
    status, text, _ = _post(srv, "/v1/messages/count_tokens", _anthropic(False))
    assert status == 200 and json.loads(text)["input_tokens"] > 0
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("GET", "/v1/models")
    assert json.loads(conn.getresponse().read())["data"]
    conn.close()
    assert srv.model_calls() == []  # neither is a model call
    _post(srv, "/v1/embeddings", {"input": "x"})
    assert srv.not_found == ["POST /v1/embeddings"]


def test_chat_completions_both_ways(srv: ModelServer, tmp_path: Path) -> None:
    status, text, _ = _post(srv, "/v1/chat/completions", _chat(False))
    choice = json.loads(text)["choices"][0]
    assert status == 200 and choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    args = json.loads(call["function"]["arguments"])
    assert args["description"]  # a required field the schema asks for is filled
    assert _runs_and_writes(args["command"], tmp_path) == DECISION

    status, text, _ = _post(srv, "/v1/chat/completions", _chat(True))
    chunks = _sse(text)
    assert chunks[-1] == "[DONE]" and chunks[-2]["usage"]["prompt_tokens"] > 0
    streamed = "".join(
        tc["function"].get("arguments", "")
        for c in chunks[:-1]
        for ch in c["choices"]
        for tc in ch["delta"].get("tool_calls", [])
    )
    assert json.loads(streamed) == args

    after: list[dict[str, Any]] = [
        {"role": "user", "content": TICK},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": ""},
    ]
    _, text, _ = _post(srv, "/v1/chat/completions", _chat(False, after))
    assert json.loads(text)["choices"][0]["finish_reason"] == "stop"


def test_responses_both_ways(srv: ModelServer, tmp_path: Path) -> None:
    status, text, _ = _post(srv, "/v1/responses", _responses(False))
    resp = json.loads(text)
    call = next(i for i in resp["output"] if i["type"] == "function_call")
    assert status == 200 and call["name"] == "exec_command"
    assert _runs_and_writes(json.loads(call["arguments"])["cmd"], tmp_path) == DECISION

    _, text, _ = _post(srv, "/v1/responses", _responses(True))
    events = _sse(text)
    assert events[0]["type"] == "response.created"
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["usage"]["input_tokens"] > 0
    assert [e["sequence_number"] for e in events] == list(range(len(events)))

    after = [
        *_responses(False)["input"],
        call,
        {"type": "function_call_output", "call_id": call["call_id"], "output": ""},
    ]
    _, text, _ = _post(srv, "/v1/responses", _responses(False, after))
    out = json.loads(text)["output"]
    assert [i["type"] for i in out] == ["message"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/messages", _anthropic(True)),
        ("/v1/chat/completions", _chat(True)),
        ("/v1/responses", _responses(True)),
    ],
)
def test_error_scenarios(srv: ModelServer, path: str, body: dict[str, Any]) -> None:
    srv.scenario = HTTP_500
    status, text, headers = _post(srv, path, body)
    assert status == 500 and "scripted internal server error" in text
    assert headers["retry-after-ms"]
    srv.scenario = AUTH
    status, text, _ = _post(srv, path, body)
    assert status == 401 and "authentication_error" in text
    srv.scenario = NO_DECISION
    _, text, _ = _post(srv, path, body)
    assert IDLE_TEXT in text and ".decision.json'" not in text
    srv.scenario = STREAM_ERROR
    status, text, _ = _post(srv, path, body)
    assert status == 200 and ERROR_STREAM in text
    assert "[DONE]" not in text and "response.completed" not in text


def test_outside_a_beat_the_model_parrots(srv: ModelServer) -> None:
    chat = [{"role": "user", "content": "hi there ECHO:abc123"}]
    _, text, _ = _post(srv, "/v1/messages", _anthropic(False, chat))
    assert "ANSWER:abc123" in text and "tool_use" not in text
    _, text, _ = _post(srv, "/v1/messages", _anthropic(False, [{"role": "user", "content": "x"}]))
    assert json.loads(text)["content"][0]["text"] == "ok"


def test_requests_are_recorded_and_outbound_is_refused(srv: ModelServer) -> None:
    _post(srv, "/v1/messages", _anthropic(False))
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("CONNECT", "api.example.com:443")
    assert conn.getresponse().status == 403
    conn.close()
    assert srv.outbound() == ["api.example.com:443"]
    (call,) = srv.model_calls()
    assert call.body["model"] == "claude-sonnet-4-5" and "CONSTITUTION" in call.text()


def test_a_deferred_tool_is_searched_for_then_called_in_its_namespace(srv: ModelServer) -> None:
    """codex's way to an MCP tool: not advertised up front, found by its client-side
    tool_search, then called as namespace + name; once per message from the human."""
    srv.tool_call = ("mcp__looop__claim", {"name": "deploy"})
    ask = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]}
    body = _responses(True, [ask])
    body["tools"].append({"type": "tool_search", "execution": "client", "parameters": {}})
    events = _sse(_post(srv, "/v1/responses", body)[1])
    (search,) = [e["item"] for e in events if e["type"] == "response.output_item.done"][1:]
    assert search["type"] == "tool_search_call" and search["execution"] == "client"
    assert "claim" in search["arguments"]["query"]

    space = {"type": "namespace", "name": "mcp__looop", "tools": [{"name": "claim"}]}
    found = {"type": "tool_search_output", "call_id": search["call_id"], "tools": [space]}
    body["input"] += [search, found]
    out = json.loads(_post(srv, "/v1/responses", dict(body, stream=False))[1])["output"]
    call = next(i for i in out if i["type"] == "function_call")
    assert (call["namespace"], call["name"]) == ("mcp__looop", "claim")
    assert json.loads(call["arguments"]) == {"name": "deploy"}

    body["input"] += [call, {"type": "function_call_output", "call_id": call["call_id"]}]
    out = json.loads(_post(srv, "/v1/responses", dict(body, stream=False))[1])["output"]
    assert [i["type"] for i in out] == ["message"]  # called once: the turn ends in text
    # a search that exposed nothing of that name is not repeated in the same turn
    body["input"] = [ask, search, dict(found, tools=[])]
    out = json.loads(_post(srv, "/v1/responses", dict(body, stream=False))[1])["output"]
    assert [i["type"] for i in out] == ["message"]


GEMINI = "/v1beta/models/gemini-2.5-pro"
SHELL = {
    "functionDeclarations": [
        {
            "name": "run_shell_command",
            "parametersJsonSchema": {
                "type": "object",
                "properties": {"command": {"type": "string"}, "description": {"type": "string"}},
                "required": ["command"],
            },
        }
    ]
}


def _gemini(contents: list[dict[str, Any]]) -> dict[str, Any]:
    return {"contents": contents, "tools": [SHELL], "generationConfig": {"temperature": 1}}


@pytest.mark.parametrize("stream", [False, True])
def test_gemini_tick_calls_its_shell_then_closes(srv: ModelServer, stream: bool) -> None:
    path = f"{GEMINI}:streamGenerateContent?alt=sse" if stream else f"{GEMINI}:generateContent"
    user = {"role": "user", "parts": [{"text": TICK}]}
    status, text, _ = _post(srv, path, _gemini([user]))
    assert status == 200
    chunks = _sse(text) if stream else [json.loads(text)]
    parts = [p for c in chunks for p in c["candidates"][0]["content"]["parts"]]
    call = next(p["functionCall"] for p in parts if "functionCall" in p)
    assert call["name"] == "run_shell_command" and ".decision.json" in call["args"]["command"]
    assert json.loads(shlex.split(call["args"]["command"])[2]) == DECISION
    usage = chunks[-1]["usageMetadata"]
    assert usage["promptTokenCount"] > 0 and usage["candidatesTokenCount"] > 0
    # with the call's result in the conversation, the turn ends in text
    model = {"role": "model", "parts": [{"functionCall": call}]}
    result = {"functionResponse": {"name": call["name"], "response": {"output": ""}}}
    done = _gemini([user, model, {"role": "user", "parts": [result]}])
    status, text, _ = _post(srv, path, done)
    chunks = _sse(text) if stream else [json.loads(text)]
    said = "".join(
        p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"]
    )
    assert said == FINAL_TEXT.format(journal=DECISION["journal"])
    assert len(srv.model_calls()) == 2 and srv.not_found == []


def test_gemini_json_side_request_gets_a_value_fitting_its_schema(srv: ModelServer) -> None:
    schema = {
        "type": "OBJECT",
        "properties": {"reasoning": {"type": "STRING"}, "score": {"type": "INTEGER"}},
    }
    body = {
        "contents": [{"role": "user", "parts": [{"text": TICK}]}],
        "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": schema},
    }
    status, text, _ = _post(srv, f"{GEMINI}:generateContent", body)
    got = json.loads(json.loads(text)["candidates"][0]["content"]["parts"][0]["text"])
    assert status == 200 and got == {"reasoning": "ok", "score": 1}


@pytest.mark.parametrize(("scenario", "code"), [(AUTH, 401), (HTTP_500, 500)])
def test_gemini_errors_are_google_rpc_shaped(srv: ModelServer, scenario: str, code: int) -> None:
    srv.scenario = scenario
    user = {"role": "user", "parts": [{"text": TICK}]}
    status, text, _ = _post(srv, f"{GEMINI}:generateContent", _gemini([user]))
    err = json.loads(text)["error"]
    assert status == code and err["code"] == code and err["status"] and err["message"]


def test_gemini_count_tokens_and_a_broken_stream(srv: ModelServer) -> None:
    user = {"role": "user", "parts": [{"text": TICK}]}
    status, text, _ = _post(srv, f"{GEMINI}:countTokens", {"contents": [user]})
    assert status == 200 and json.loads(text)["totalTokens"] > 0
    srv.scenario = STREAM_ERROR
    _, text, _ = _post(srv, f"{GEMINI}:streamGenerateContent?alt=sse", _gemini([user]))
    chunks = _sse(text)
    assert chunks[-1]["error"]["message"] == ERROR_STREAM
    assert not any("functionCall" in json.dumps(c) for c in chunks)
