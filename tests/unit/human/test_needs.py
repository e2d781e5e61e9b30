"""The needs-you queue (home/needs): one item per thing waiting on a human, each with the
command that answers it; `looop needs` and `--json` show it, and running an item's answer
takes it off the queue."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from looop.home.stamps import parse_utc
from looop.human.mailbox import answer, new_ask
from looop.spend.spent import mark_over
from looop.views import outcomes
from looop.views.needs import needs_at, needs_text
from looop.views.outcomes import End
from tests.clocks import FixedClock
from tests.helpers import clean_env, run_cli

NOW = 1_800_000_000.0


def _row(wid: str, health: str, **more: Any) -> dict[str, Any]:
    return {"id": wid, "health": health, "alive": True, "last_output_unix": NOW - 60, **more}


def test_every_kind_of_wait_is_one_item_with_its_answer(tmp_path: Path) -> None:
    asks, answers = tmp_path / "asks", tmp_path / "answers"
    asks.mkdir()
    answers.mkdir()
    a1 = new_ask(asks, answers, "w1", "merge now?", None, ["yes", "not yet"], NOW - 300)
    a2 = new_ask(asks, answers, "far", "which db?", None, [], NOW - 10)
    done = new_ask(asks, answers, "w1", "old?", None, [], NOW - 900)
    answer(asks, answers, done["id"], "fine", NOW)
    rows = [
        {"id": "pulse", "health": "up", "alive": True},
        _row("w1", "needs-input", needs_input="approval: Do you want to run rm -rf build?"),
        _row("w2", "needs-input", needs_input="idle: ❯"),
        _row("w3", "needs-input", needs_input="custom: Continue? [y/N]"),
        _row("w4", "over budget"),
        _row("w5", "over disk limit"),
        _row("w6", "limited until 14:05"),
        _row("w7", "busy"),
        _row("w8", "stuck"),
        _row("far", "needs-input", needs_input="approval: Allow once", host="gpu1"),
        {"id": "w9", "health": "scheduled until 15:00", "alive": False, "note": "account x"},
    ]
    fail = End("exited", 2, last_line="Error: config.yaml not found")
    rec = None
    for g in ("g1", "g2", "g3"):  # the same failure three times: stalled, its session gone
        rec = outcomes.next_record(rec, "w10", g, fail, 3, "2027-01-15T08:00:00.000Z")
    outcomes.write_record(str(tmp_path), rec)
    once = outcomes.next_record(None, "w11", "g1", fail, 3, "2027-01-15T08:00:00.000Z")
    outcomes.write_record(str(tmp_path), once)
    got = {(n.kind, n.worker): n for n in needs_at(str(tmp_path), rows)}
    assert set(got) == {
        ("ask", "w1"), ("ask", "far"), ("approval", "w1"), ("idle", "w2"), ("input", "w3"),
        ("budget", "w4"), ("budget", "w5"), ("limited", "w6"), ("approval", "far"), ("held", "w9"),
        ("stalled", "w10"),
    }  # fmt: skip
    assert got["stalled", "w10"].answer == "looop worker unstall w10"
    assert got["stalled", "w10"].since == parse_utc("2027-01-15T08:00:00.000Z")
    assert got["ask", "w1"].answer == f"looop answer {a1['id']} yes"
    assert got["ask", "w1"].since == NOW - 300 and "merge now?" in got["ask", "w1"].what
    assert got["ask", "far"].answer == f"looop answer {a2['id']} TEXT"
    assert got["ask", "far"].host == "gpu1" and got["approval", "far"].host == "gpu1"
    assert got["approval", "w1"].answer == "looop attach w1"
    assert "rm -rf build" in got["approval", "w1"].what
    assert got["idle", "w2"].answer == "looop send w2 TEXT"
    assert got["budget", "w4"].answer == "looop worker continue w4 --budget USD"
    assert "disk" in got["budget", "w5"].what
    assert "14:05" in got["limited", "w6"].what and got["limited", "w6"].answer == "looop kill w6"
    assert "15:00" in got["held", "w9"].what
    # what a human can answer now comes first; the oldest of a kind first
    kinds = [n.kind for n in needs_at(str(tmp_path), rows)]
    assert kinds[:2] == ["ask", "ask"] and kinds[-1] == "held"


def test_an_option_with_spaces_is_quoted_for_the_shell(tmp_path: Path) -> None:
    asks, answers = tmp_path / "asks", tmp_path / "answers"
    asks.mkdir()
    answers.mkdir()
    a = new_ask(asks, answers, "w1", "go?", None, ["not yet; rm x", "yes"], NOW)
    (n,) = needs_at(str(tmp_path), [])
    assert shlex.split(n.answer) == ["looop", "answer", a["id"], "not yet; rm x"]


def test_an_empty_queue_says_so(tmp_path: Path) -> None:
    assert needs_at(str(tmp_path / "none"), []) == []
    assert needs_text([], NOW) == "nothing waits on you\n"


def test_looop_needs_shows_an_ask_and_its_answer_takes_it_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    env = clean_env(tmp_path, data)
    clock = FixedClock(NOW)
    assert run_cli(capsys, "init", env=env, clock=clock)[0] == 0
    # a new home's first-run setup ask waits on the human: answered, the queue is empty
    (setup,) = json.loads(run_cli(capsys, "needs", "--json", env=env, clock=clock)[1])
    assert setup["kind"] == "ask" and setup["answer"].endswith(" TEXT")
    setup_answer = shlex.split(setup["answer"].replace("TEXT", "ready"))[1:]
    assert run_cli(capsys, *setup_answer, env=env, clock=clock)[0] == 0
    code, out, err = run_cli(capsys, "needs", env=env, clock=clock)
    assert (code, out) == (0, "nothing waits on you\n"), err
    new_ask(data / "asks", data / "answers", "w1", "ship it?", None, ["yes", "no"], NOW - 5)
    code, out, err = run_cli(capsys, "needs", env=env, clock=clock)
    assert code == 0 and "ship it?" in out and "looop answer w1-1 yes" in out, (out, err)
    code, out, err = run_cli(capsys, "needs", "--json", env=env, clock=clock)
    items = json.loads(out)
    assert [(i["kind"], i["worker"], i["host"]) for i in items] == [("ask", "w1", None)]
    argv = shlex.split(items[0]["answer"])
    assert argv[0] == "looop"
    assert run_cli(capsys, *argv[1:], env=env, clock=clock)[0] == 0
    assert json.loads(run_cli(capsys, "needs", "--json", env=env, clock=clock)[1]) == []


def test_a_workers_words_are_one_plain_line_cut_short(tmp_path: Path) -> None:
    asks, answers = tmp_path / "asks", tmp_path / "answers"
    asks.mkdir()
    answers.mkdir()
    new_ask(asks, answers, "w1", "go?\x1b[2J\x07\nnow" + "x" * 500, None, [], NOW)
    rows = [_row("w2", "needs-input", needs_input="approval: \x1b]0;pwned\x07 Allow?")]
    items = needs_at(str(tmp_path), rows)
    assert all(c.isprintable() for n in items for c in n.what)
    assert items[0].what.startswith("go? [2J now") and items[0].what.endswith("…")
    assert len(items[0].what) == 200
    assert "Allow?" in items[1].what


def test_a_worker_held_by_the_daily_budget_says_so_and_goes_on_for_the_day(
    tmp_path: Path,
) -> None:
    data = str(tmp_path)
    mark_over(data, "w1", 1.2, 1.0, "pause", day="2027-01-15")  # loop/workmeter.hold_to_day
    mark_over(data, "w2", 0.6, 0.5, "pause")  # its own budget
    rows = [_row("w1", "over budget"), _row("w2", "over budget")]
    got = {n.worker: n for n in needs_at(data, rows)}
    assert got["w1"].kind == "budget" and got["w1"].answer == "looop worker continue w1"
    assert "daily budget" in got["w1"].what and "2027-01-15" in got["w1"].what
    assert got["w2"].answer == "looop worker continue w2 --budget USD"


@pytest.mark.parametrize(
    ("healths", "said"),
    [
        (("busy", "needs-input"), None),  # one still at work, none verified: not yet
        (("needs-input", "waiting-ask"), "2 attempts ended: pick one"),  # both wait on you
    ],
)
def test_attempts_waiting_on_a_human_are_a_pick(
    tmp_path: Path, healths: tuple[str, str], said: str | None
) -> None:
    """A TUI agent done with its task stays up at its prompt: its attempt counts as ended."""
    for n in (1, 2):
        (tmp_path / "sessions" / f"fix.{n}").mkdir(parents=True)
    rows = [_row(f"fix.{n}", h) for n, h in enumerate(healths, 1)]
    picks = [n.what for n in needs_at(str(tmp_path), rows) if n.kind == "pick"]
    assert picks == ([said] if said else [])
