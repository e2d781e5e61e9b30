"""StreamRenderer: what a human reads in runs/<id>/output.log for each runner's stream."""

from __future__ import annotations

import json
from typing import Any

import pytest

from looop.decide.streams import StreamRenderer


def _j(obj: Any) -> str:
    return json.dumps(obj)


def _render(lines: list[str]) -> tuple[list[str], StreamRenderer]:
    r = StreamRenderer()
    out: list[str] = []
    for ln in lines:
        out += r.feed(ln)
    return out, r


def test_plain_text_passes_through_and_blank_lines_vanish() -> None:
    out, r = _render(["hello world", "", "   ", "  indented\r", "{not json at all"])
    assert out == ["hello world", "  indented", "{not json at all"]
    assert r.error is None


def test_pi_stream() -> None:
    lines = [
        _j({"type": "agent_start"}),
        _j({"type": "message_start", "message": {"role": "assistant", "content": []}}),
        _j(
            {
                "type": "tool_execution_start",
                "toolCallId": "t1",
                "toolName": "bash",
                "args": {"command": "cat   goals/ship.md\n"},
            }
        ),
        _j(
            {
                "type": "tool_execution_end",
                "toolCallId": "t1",
                "toolName": "bash",
                "result": {"content": [{"type": "text", "text": "ok"}]},
                "isError": False,
            }
        ),
        _j({"type": "tool_execution_start", "toolName": "read", "args": {"path": "PLAYBOOK.md"}}),
        _j(
            {
                "type": "tool_execution_end",
                "toolName": "read",
                "isError": True,
                "result": {"content": [{"type": "text", "text": "ENOENT: no such file\nat x"}]},
            }
        ),
        _j({"type": "tool_execution_start", "toolName": "write", "args": {"content": "x" * 300}}),
        _j(
            {
                "type": "message_end",
                "message": {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm"},
                        {"type": "text", "text": "Wrote the decision.\nNoop this beat."},
                    ],
                    "usage": {"cost": {"total": 0.0021}},
                    "stopReason": "stop",
                },
            }
        ),
        _j({"type": "message_end", "message": {"role": "user", "content": "ignored"}}),
        _j({"type": "agent_end", "messages": []}),
    ]
    out, r = _render(lines)
    assert out[0] == "  → bash: cat goals/ship.md"
    assert out[1] == "  → read: PLAYBOOK.md"
    assert out[2] == "  ✗ read failed: ENOENT: no such file"
    assert out[3].startswith('  → write: {"content":"xxx')
    assert len(out[3]) <= len("  → write: ") + 100
    assert out[4:] == ["Wrote the decision.", "Noop this beat."]
    assert r.error is None


def test_pi_provider_error_sets_error() -> None:
    msg = {
        "role": "assistant",
        "content": [],
        "stopReason": "error",
        "errorMessage": "429 rate_limit_error: slow down",
    }
    out, r = _render(
        [_j({"type": "message_end", "message": msg}), _j({"type": "agent_end", "messages": [msg]})]
    )
    assert r.error == "429 rate_limit_error: slow down"
    assert out == ["  ✗ 429 rate_limit_error: slow down"]  # reported once, not twice


def test_pi_error_only_on_agent_end_is_seen() -> None:
    msg = {"role": "assistant", "content": [], "stopReason": "error", "errorMessage": "overloaded"}
    _, r = _render([_j({"type": "agent_end", "messages": [{"role": "user"}, msg]})])
    assert r.error == "overloaded"


def test_claude_stream() -> None:
    lines = [
        _j(
            {
                "type": "system",
                "subtype": "init",
                "session_id": "abc",
                "model": "claude-sonnet-4-5-20250929",
                "tools": ["Bash", "Read"],
            }
        ),
        _j(
            {
                "type": "assistant",
                "message": {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "Let me look at the goals."},
                        {
                            "type": "tool_use",
                            "id": "toolu_1",
                            "name": "Bash",
                            "input": {"command": "ls goals", "description": "list"},
                        },
                    ],
                },
            }
        ),
        _j(
            {
                "type": "user",
                "message": {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_1",
                            "content": "ls: cannot access 'goals': No such file\nmore",
                            "is_error": True,
                        },
                        {"type": "tool_result", "tool_use_id": "toolu_0", "content": "fine"},
                    ],
                },
            }
        ),
        _j(
            {
                "type": "assistant",
                "message": {
                    "content": [
                        {
                            "type": "tool_use",
                            "name": "Write",
                            "input": {"file_path": ".decision.json", "content": "{}"},
                        },
                        {"type": "tool_use", "name": "Grep", "input": {"pattern": "TODO"}},
                        {"type": "tool_use", "name": "TodoWrite", "input": {"todos": [1, 2]}},
                    ]
                },
            }
        ),
        _j(
            {
                "type": "user",
                "message": {
                    "content": [
                        {
                            "type": "tool_result",
                            "is_error": True,
                            "content": [{"type": "text", "text": "permission denied"}],
                        }
                    ]
                },
            }
        ),
        _j({"type": "assistant", "message": {"content": [{"type": "text", "text": "Done."}]}}),
        _j(
            {
                "type": "result",
                "subtype": "success",
                "is_error": False,
                "duration_ms": 12345,
                "num_turns": 4,
                "result": "Decision written: noop.",
                "total_cost_usd": 0.0123,
            }
        ),
    ]
    out, r = _render(lines)
    assert out == [
        "  · session claude-sonnet-4-5-20250929",
        "Let me look at the goals.",
        "  → Bash: ls goals",
        "  ✗ tool failed: ls: cannot access 'goals': No such file",
        "  → Write: .decision.json",
        "  → Grep: TODO",
        '  → TodoWrite: {"todos":[1,2]}',
        "  ✗ tool failed: permission denied",
        "Done.",
        "  ✓ done in 12.3s · 4 turns · $0.0123",
    ]
    assert r.error is None


def test_claude_error_result() -> None:
    out, r = _render(
        [
            _j(
                {
                    "type": "result",
                    "subtype": "success",
                    "is_error": True,
                    "result": "API Error: 401 invalid x-api-key",
                    "num_turns": 1,
                }
            )
        ]
    )
    assert r.error == "API Error: 401 invalid x-api-key"
    assert out == ["  ✗ failed 1 turns: API Error: 401 invalid x-api-key"]

    _, r2 = _render([_j({"type": "result", "subtype": "error_max_turns", "num_turns": 30})])
    assert r2.error == "error_max_turns"


def test_claude_result_omits_missing_parts() -> None:
    out, _ = _render([_j({"type": "result", "subtype": "success"})])
    assert out == ["  ✓ done"]


def test_codex_stream() -> None:
    cmd = {"id": "item_1", "type": "command_execution", "command": "bash -lc 'cat PLAYBOOK.md'"}
    lines = [
        _j({"type": "thread.started", "thread_id": "0199"}),
        _j({"type": "turn.started"}),
        _j(
            {
                "type": "item.completed",
                "item": {"id": "item_0", "type": "reasoning", "text": "**Reading the playbook**"},
            }
        ),
        _j(
            {
                "type": "item.started",
                "item": {**cmd, "aggregated_output": "", "status": "in_progress"},
            }
        ),
        _j({"type": "item.completed", "item": {**cmd, "aggregated_output": "x", "exit_code": 0}}),
        _j(
            {
                "type": "item.completed",
                "item": {
                    "id": "item_2",
                    "type": "command_execution",
                    "command": "false",
                    "exit_code": 1,
                },
            }
        ),
        _j(
            {
                "type": "item.completed",
                "item": {
                    "id": "item_3",
                    "type": "file_change",
                    "changes": [
                        {"path": ".decision.json", "kind": "add"},
                        {"path": "b.txt", "kind": "update"},
                    ],
                },
            }
        ),
        _j(
            {
                "type": "item.completed",
                "item": {"id": "item_4", "type": "agent_message", "text": "Wrote a noop."},
            }
        ),
        _j(
            {
                "type": "turn.completed",
                "usage": {"input_tokens": 1200, "cached_input_tokens": 0, "output_tokens": 85},
            }
        ),
    ]
    out, r = _render(lines)
    assert out == [
        "  · **Reading the playbook**",
        "  → shell: bash -lc 'cat PLAYBOOK.md'",
        "  → shell: false",
        "  ✗ exit 1",
        "  → edit: .decision.json, b.txt",
        "Wrote a noop.",
        "  ✓ turn done · 1200 in / 85 out",
    ]
    assert r.error is None


def test_codex_errors() -> None:
    out, r = _render(
        [
            _j({"type": "error", "message": "You've hit your usage limit."}),
            _j({"type": "turn.failed", "error": {"message": "stream disconnected"}}),
        ]
    )
    assert out == ["  ✗ You've hit your usage limit.", "  ✗ stream disconnected"]
    assert r.error == "stream disconnected"


def test_codex_transient_error_then_success_clears_error() -> None:
    _, r = _render(
        [
            _j({"type": "error", "message": "Reconnecting... 1/5"}),
            _j({"type": "turn.completed", "usage": {"input_tokens": 5, "output_tokens": 1}}),
        ]
    )
    assert r.error is None


def test_opencode_stream() -> None:
    lines = [
        _j({"type": "step_start", "sessionID": "ses_1", "part": {"type": "step-start"}}),
        _j({"type": "text", "part": {"type": "text", "text": "Checking the goals."}}),
        _j(
            {
                "type": "tool_use",
                "part": {
                    "type": "tool",
                    "tool": "bash",
                    "state": {
                        "status": "completed",
                        "input": {"command": "ls goals"},
                        "output": "ship.md",
                    },
                },
            }
        ),
        _j(
            {
                "type": "tool_use",
                "part": {
                    "tool": "read",
                    "state": {
                        "status": "error",
                        "input": {"filePath": "/x/y.md"},
                        "error": "File not found",
                    },
                },
            }
        ),
        _j(
            {
                "type": "step_finish",
                "part": {
                    "type": "step-finish",
                    "reason": "stop",
                    "cost": 0.0042,
                    "tokens": {"input": 900, "output": 40, "reasoning": 0},
                },
            }
        ),
    ]
    out, r = _render(lines)
    assert out == [
        "Checking the goals.",
        "  → bash: ls goals",
        "  → read: /x/y.md",
        "  ✗ read failed: File not found",
        "  ✓ step done · 900 in / 40 out · $0.0042",
    ]
    assert r.error is None


def test_opencode_error() -> None:
    err = {"name": "ProviderAuthError", "data": {"message": "missing API key"}}
    out, r = _render([_j({"type": "error", "error": err})])
    assert r.error == "ProviderAuthError: missing API key"
    assert out == ["  ✗ ProviderAuthError: missing API key"]


def test_error_is_one_line() -> None:
    _, r = _render([_j({"type": "error", "message": "first\n\nsecond   line"})])
    assert r.error == "first second line"


@pytest.mark.parametrize(
    "line",
    [
        "[1, 2, 3]",
        "42",
        '"a string"',
        "null",
    ],
)
def test_json_that_is_not_an_event_is_shown_as_text(line: str) -> None:
    assert StreamRenderer().feed(line) == [line]


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"type": 7},
        {"type": None},
        {"type": "unknown.kind", "x": 1},
        {"type": "tool_execution_start", "toolName": 5, "args": "not-an-object"},
        {"type": "tool_execution_end", "isError": "yes"},
        {"type": "message_end", "message": "str"},
        {"type": "message_end", "message": {"role": "assistant", "content": "text?"}},
        {
            "type": "message_end",
            "message": {"role": "assistant", "content": [1, None, {"type": "text", "text": 5}]},
        },
        {"type": "agent_end", "messages": "x"},
        {"type": "system", "subtype": "init", "model": ["x"]},
        {
            "type": "assistant",
            "message": {"content": [{"type": "tool_use", "name": None, "input": None}]},
        },
        {
            "type": "user",
            "message": {"content": [{"type": "tool_result", "is_error": True, "content": 3}]},
        },
        {"type": "result", "duration_ms": "soon", "num_turns": None, "total_cost_usd": True},
        {"type": "item.completed", "item": [1]},
        {
            "type": "item.completed",
            "item": {"type": "command_execution", "command": None, "exit_code": "1"},
        },
        {"type": "item.completed", "item": {"type": "file_change", "changes": "x"}},
        {"type": "turn.completed", "usage": []},
        {"type": "turn.failed", "error": 5},
        {"type": "error", "error": [1]},
        {"type": "text", "part": None},
        {"type": "tool_use", "part": {"state": "done"}},
        {"type": "step_finish", "part": {"tokens": "many", "cost": "free"}},
    ],
)
def test_odd_shapes_never_raise(event: dict[str, Any]) -> None:
    r = StreamRenderer()
    out = r.feed(json.dumps(event))
    assert all(isinstance(x, str) for x in out)
    assert r.error is None or isinstance(r.error, str)


def test_garbage_and_deep_nesting_never_raise() -> None:
    r = StreamRenderer()
    assert r.feed("\x00\x01 binary-ish \ufffd") == ["\x00\x01 binary-ish \ufffd"]
    deep = "{" + '"a":{' * 5000 + "}" * 5001
    assert isinstance(r.feed(deep), list)


# ---------------------------------------------------------------- shapes of the real CLIs
# Trimmed from streams recorded against the real programs (tests/realcli/streams/).


def test_real_claude_auth_failure() -> None:
    """claude 2.1: a retry notice, a synthetic assistant message, then an error result that
    carries the HTTP status beside a message that does not name it."""
    synthetic = {
        "type": "assistant",
        "message": {
            "model": "<synthetic>",
            "role": "assistant",
            "content": [{"type": "text", "text": "Invalid API key · Fix external API key"}],
        },
        "error": "authentication_failed",
        "is_api_error_message": True,
        "api_error_status": 401,
        "api_error_type": "authentication_error",
    }
    result = {
        "type": "result",
        "subtype": "success",
        "is_error": True,
        "num_turns": 1,
        "duration_ms": 745,
        "total_cost_usd": 0,
        "api_error_status": 401,
        "api_error_type": "authentication_error",
        "result": "Invalid API key · Fix external API key",
    }
    retry = {
        "type": "system",
        "subtype": "api_retry",
        "attempt": 1,
        "max_retries": 1,
        "retry_delay_ms": 564,
        "error_status": 401,
        "error": "authentication_failed",
    }
    out, r = _render([_j(retry), _j(synthetic), _j(result)])
    why = "Invalid API key · Fix external API key (HTTP 401 authentication_error)"
    assert out == [
        "  · API retry 1/1 after HTTP 401 authentication_failed",
        f"  ✗ {why}",
        f"  ✗ failed in 0.7s · 1 turns · $0.0000: {why}",
    ]
    assert r.error == why


def test_real_claude_status_already_named_is_not_repeated() -> None:
    text = "API Error: 500 scripted internal server error"
    ev = {"type": "result", "is_error": True, "api_error_status": 500, "result": text}
    _, r = _render([_j(ev)])
    assert r.error == text


def test_real_pi_provider_error_body_is_made_readable() -> None:
    """pi passes the provider's error body through: `500 {"type":"error","error":{…}}`."""
    body = '{"type":"error","error":{"type":"api_error","message":"internal server error"}}'
    msg = {"role": "assistant", "content": [], "stopReason": "error", "errorMessage": f"500 {body}"}
    out, r = _render([_j({"type": "message_end", "message": msg})])
    assert out == ["  ✗ 500 api_error: internal server error"]
    assert r.error == "500 api_error: internal server error"


def test_real_pi_retries_then_gives_up() -> None:
    err = '429 {"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}'
    failed = {"role": "assistant", "content": [], "stopReason": "error", "errorMessage": err}
    lines = [
        _j({"type": "message_end", "message": failed}),
        _j({"type": "agent_end", "messages": [failed]}),
        _j(
            {
                "type": "auto_retry_start",
                "attempt": 1,
                "maxAttempts": 1,
                "delayMs": 10,
                "errorMessage": err,
            }
        ),
        _j({"type": "message_end", "message": failed}),
        _j({"type": "agent_end", "messages": [failed]}),
        _j({"type": "auto_retry_end", "success": False, "attempt": 1, "finalError": err}),
    ]
    out, r = _render(lines)
    assert out == [
        "  ✗ 429 rate_limit_error: slow down",
        "  · retry 1/1 after: 429 rate_limit_error: slow down",
        "  ✗ 429 rate_limit_error: slow down",  # the give-up is not said a third time
    ]
    assert r.error == "429 rate_limit_error: slow down"


def test_real_pi_retry_that_succeeds_clears_the_error_and_sums_the_run() -> None:
    failed = {"role": "assistant", "content": [], "stopReason": "error", "errorMessage": "boom"}
    ok = {
        "role": "assistant",
        "content": [{"type": "text", "text": "Done."}],
        "stopReason": "stop",
        "usage": {"cost": {"total": 0.004}},
    }
    tool_turn = dict(ok, content=[], stopReason="toolUse", usage={"cost": {"total": 0.006}})
    lines = [
        _j({"type": "message_end", "message": failed}),
        _j({"type": "auto_retry_start", "attempt": 1, "maxAttempts": 3, "errorMessage": "boom"}),
        _j({"type": "message_end", "message": ok}),
        _j({"type": "agent_end", "messages": [{"role": "user"}, tool_turn, ok]}),
        _j({"type": "auto_retry_end", "success": True, "attempt": 1}),
    ]
    out, r = _render(lines)
    assert out[-2:] == ["Done.", "  ✓ done · 2 turns · $0.0100"]
    assert r.error is None


def test_real_codex_reconnects_are_news_and_the_failure_is_said_once() -> None:
    demand = "We’re currently experiencing high demand, which may cause temporary errors."
    lines = [
        _j({"type": "error", "message": f"Reconnecting... 1/1 ({demand})"}),
        _j({"type": "error", "message": demand}),
        _j({"type": "turn.failed", "error": {"message": demand}}),
    ]
    out, r = _render(lines)
    assert out == [f"  · Reconnecting... 1/1 ({demand})", f"  ✗ {demand}"]
    assert r.error == demand


def test_real_opencode_api_error_names_its_status() -> None:
    err = {
        "name": "APIError",
        "data": {
            "message": "invalid x-api-key",
            "statusCode": 401,
            "isRetryable": False,
            "responseBody": '{"error": {"message": "invalid x-api-key"}}',
        },
    }
    out, r = _render([_j({"type": "error", "sessionID": "ses_1", "error": err})])
    assert out == ["  ✗ APIError 401: invalid x-api-key"]
    assert r.error == "APIError 401: invalid x-api-key"


def test_real_opencode_stream_error_unwraps_its_json_message() -> None:
    inner = '{"message":"the model crashed","type":"invalid_request_error","code":null}'
    err = {"name": "UnknownError", "data": {"message": inner}}
    _, r = _render([_j({"type": "error", "error": err})])
    assert r.error == "UnknownError: invalid_request_error: the model crashed"


@pytest.mark.parametrize(
    "msg",
    ["500 {not json", '{"error": "a string"}', "[1, 2]", '502 {"detail": 3}', "{}"],
)
def test_provider_error_bodies_that_do_not_parse_stay_as_they_are(msg: str) -> None:
    _, r = _render([_j({"type": "error", "message": msg})])
    assert r.error == msg
