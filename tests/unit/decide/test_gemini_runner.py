"""Gemini CLI as the fifth runner preset (runners/gemini.py, its profile): its recorded stream reads
as a run and is metered from its tokens, its failures say why in one line, its rows reach every
table that knows a preset (sandbox, doctor, needs-input, cost, init), and a worker's session
record is found and priced. The real CLI runs in tests/realcli; these read what it wrote."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from looop.decide.streams import StreamRenderer
from looop.home.config import Runner
from looop.loop import clirecords, setup
from looop.runners import gemini, profile
from looop.runners.presets import PRESETS, default_config_obj
from looop.sandbox import endpoints, srt
from looop.spend import totals
from looop.spend.meter import CostMeter
from looop.spend.prices import DEFAULT_PRICES, price_table, price_tokens
from looop.spend.statusspend import reports_cost
from looop.workers import needsinput

REAL = Path(__file__).parents[2] / "realcli" / "streams"
RESULT = {
    "type": "result",
    "timestamp": "2026-01-01T00:00:00.000Z",
    "status": "success",
    "stats": {
        "input_tokens": 3000,
        "output_tokens": 300,
        "cached": 1000,
        "duration_ms": 1500,
        "models": {
            "gemini-2.5-pro": {"input_tokens": 2000, "output_tokens": 200, "cached": 1000},
            "gemini-2.5-flash": {"input_tokens": 1000, "output_tokens": 100, "cached": 0},
        },
    },
}


def _render(lines: list[str]) -> tuple[list[str], StreamRenderer]:
    r = StreamRenderer()
    out: list[str] = []
    for line in lines:
        out += r.feed(line)
    return out, r


def _meter(lines: list[str]) -> CostMeter:
    m = CostMeter(Runner("gemini", PRESETS["gemini"]["tick"], PRESETS["gemini"]["worker"]))
    for line in lines:
        m.feed(line)
    return m


def test_gemini_is_a_preset_every_new_data_dir_gets() -> None:
    p = PRESETS["gemini"]
    assert p["tick"].split()[0] == "gemini" and "{{prompt_file}}" not in p["tick"]  # stdin
    assert "--output-format stream-json" in p["tick"] and "--skip-trust" in p["tick"]
    assert "--session-id {{session_id}}" in p["worker"] and "{{prompt_file}}" in p["worker"]
    assert "--resume {{session_id}}" in p["resume"]
    assert default_config_obj()["runners"]["gemini"] == p
    assert "gemini" in setup.RUNNER_CHOICES


def test_the_recorded_decide_reads_as_a_run_and_is_priced_from_its_tokens() -> None:
    lines = (REAL / "gemini-decide.jsonl").read_text().splitlines()
    out, r = _render(lines)
    text = "\n".join(out)
    assert "  · session gemini-2.5-pro" in text
    assert "  → run_shell_command: printf" in text
    assert r.error is None and "\nDecision written" in text
    assert re.search(r"  ✓ done · in [0-9.]+s · \d+ in / \d+ out", text), text
    # the prompt gemini echoes back is not shown
    assert "=== CONSTITUTION" not in text
    m = _meter(lines)
    stats = json.loads(lines[-1])["stats"]
    row = DEFAULT_PRICES["gemini-2.5-pro"]
    want = price_tokens(row, stats["input_tokens"], 0, 0, stats["output_tokens"])
    assert m.source == "gemini" and m.total() == pytest.approx(want)
    assert m.tokens["input"] == stats["input_tokens"]


def test_each_model_of_a_run_is_priced_at_its_own_row_and_the_last_result_stands() -> None:
    m = _meter([json.dumps(RESULT), json.dumps(RESULT)])
    pro, flash = DEFAULT_PRICES["gemini-2.5-pro"], DEFAULT_PRICES["gemini-2.5-flash"]
    want = price_tokens(pro, 1000, 1000, 0, 200) + price_tokens(flash, 1000, 0, 0, 100)
    assert m.total() == pytest.approx(want)
    assert m.tokens == {"input": 3000, "output": 300, "cached": 1000}


def test_a_claude_result_is_still_claudes() -> None:
    m = _meter([json.dumps({"type": "result", "subtype": "success", "total_cost_usd": 0.25})])
    assert m.source == "claude" and m.total() == 0.25


@pytest.mark.parametrize(
    ("scenario", "said"),
    [
        ("auth", "401 UNAUTHENTICATED: invalid x-api-key (scripted)"),
        ("http500", "500 INTERNAL: scripted internal server error"),
        ("stream_error", "Model stream ended without a finish reason."),
    ],
)
def test_a_recorded_failure_says_why_in_one_line(scenario: str, said: str) -> None:
    out, r = _render((REAL / f"gemini-{scenario}.jsonl").read_text().splitlines())
    assert r.error == said
    assert f"  ✗ {said}" in out


@pytest.mark.parametrize(
    "line",
    [
        '{"type":"result","timestamp":"t","status":"error","stats":7}',
        '{"type":"result","timestamp":"t","stats":{"models":{"m":{"input_tokens":-5}}}}',
        '{"type":"tool_use","timestamp":"t","tool_name":3,"parameters":"x"}',
        '{"type":"error","severity":"error","message":"[API Error: {not json}]"}',
        '{"type":"result","timestamp":"t","status":"success","stats":{"input_tokens":1e400}}',
    ],
)
def test_odd_gemini_lines_never_break_reading_or_metering(line: str) -> None:
    _render([line])
    total = _meter([line]).total()
    assert total is None or total >= 0


def test_its_rows_reach_every_table_that_knows_a_preset() -> None:
    assert srt.RUNNER_DOMAINS["gemini"] == gemini.PROFILE.domains
    assert "generativelanguage.googleapis.com" in srt.RUNNER_DOMAINS["gemini"]
    assert srt.RUNNER_STATE["gemini"] and srt.RUNNER_CONFIG["gemini"]
    assert "~/.gemini/settings.json" in srt.RUNNER_LOCKED["gemini"]
    p = profile("gemini")  # doctor's login and endpoint checks read it
    assert p is not None and p.base_url_env == "GOOGLE_GEMINI_BASE_URL"
    assert "GEMINI_API_KEY" in p.login_env and p.login_fix
    assert "gemini" in needsinput.Rules().builtin
    assert reports_cost(Runner("gemini", PRESETS["gemini"]["tick"], None))
    assert any("--skip-trust" in n for n in setup.preset_notes("gemini", {}))


def test_a_gemini_base_url_in_the_env_is_the_endpoint_a_box_lets_through() -> None:
    env = {"GOOGLE_GEMINI_BASE_URL": "http://127.0.0.1:8123"}
    found = endpoints.endpoints("gemini", env, None)
    assert [(e.entry, e.source, e.auto) for e in found] == [
        ("127.0.0.1:8123", "GOOGLE_GEMINI_BASE_URL", True)
    ]


@pytest.mark.parametrize(
    ("screen", "verdict"),
    [
        ("⠏ Thinking… (esc to cancel, 3s)\n> Type your message or @path/to/file", None),
        (" Allow execution of: 'rm'?\n\n ● 1. Allow once\n   2. Allow always", "approval"),
        ("✦ ANSWER:x\n\n > Type your message or @path/to/file\n", "idle"),
        ("Loading the workspace", None),
    ],
)
def test_its_waiting_screens_are_judged(screen: str, verdict: str | None) -> None:
    rules = needsinput.Rules()
    busy, needs = rules.builtin["gemini"]
    if any(p.search(screen) for p in busy):
        got = None
    else:
        got = next((kind for kind, p in needs if p.search(screen)), None)
    assert got == verdict


def _record(tmp: Path, conv: str, lines: list[dict[str, object]]) -> Path:
    chats = tmp / ".gemini" / "tmp" / "proj" / "chats"
    chats.mkdir(parents=True)
    path = chats / f"session-2026-01-01T00-00-{conv[:8]}.jsonl"
    head = {"sessionId": conv, "projectHash": "x", "kind": "main"}
    path.write_text("".join(json.dumps(x) + "\n" for x in [head, *lines]))
    return path


def test_a_workers_session_record_is_found_and_priced(tmp_path: Path) -> None:
    conv = "4969efba-9d6e-4392-bf29-1f7a891c5e89"
    msg = {
        "id": "m1",
        "type": "gemini",
        "model": "gemini-2.5-pro",
        "tokens": {"input": 2000, "output": 100, "cached": 500, "thoughts": 50, "total": 2150},
    }
    path = _record(tmp_path, conv, [{"id": "u", "type": "user", "content": "hi"}, msg, msg])
    # another conversation sharing the first 8 characters is not it
    assert gemini.session_file(str(tmp_path), conv[:8] + "-0000-0000-0000-000000000000") is None
    assert gemini.session_file(str(tmp_path), conv) == str(path)
    st: dict[str, object] = {}
    price = clirecords.pricer(price_table(None))
    for line in clirecords.new_lines(str(path), st):
        clirecords.FOLDS["gemini"](line, st, price)
    row = DEFAULT_PRICES["gemini-2.5-pro"]
    # the same message written twice counts once; thoughts are output
    want = totals.micros(price_tokens(row, 1500, 500, 0, 150))
    assert st["micros"] == want and st["model"] == "gemini-2.5-pro"


def test_no_record_is_found_in_a_home_without_gemini(tmp_path: Path) -> None:
    assert gemini.session_file(str(tmp_path), "4969efba-9d6e-4392-bf29-1f7a891c5e89") is None
