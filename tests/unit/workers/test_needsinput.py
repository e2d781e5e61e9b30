"""Needs-input detection over the real TUIs' recorded screens (tests/unit/workers/screens/,
taken with `looop shot` from the pinned claude, pi, codex, opencode and gemini running as
workers against the scripted model server) and the runners' own patterns (the
once-per-entry latch: tests/unit/human/test_needs_told.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from looop.home.config import parse_config
from looop.home.errors import LooopError
from looop.views import needsinput
from looop.workers import needsinput as looking
from looop.workers.needsinput import Looker, Rules, judge, programs_in

SCREENS = Path(__file__).parent / "screens"


def _screen(name: str) -> str:
    return (SCREENS / f"{name}.txt").read_text()


@pytest.mark.parametrize(
    ("name", "cli", "kind"),
    [
        ("claude-approval", "claude", "approval"),
        ("claude-idle", "claude", "idle"),
        ("pi-idle", "pi", "idle"),
        ("codex-chooser", "codex", "approval"),
        ("codex-idle-after-turn", "codex", "idle"),
        ("opencode-approval", "opencode", "approval"),
        ("opencode-idle", "opencode", "idle"),
        ("gemini-approval", "gemini", "approval"),
        ("gemini-idle", "gemini", "idle"),
    ],
)
def test_a_waiting_screen_is_needs_input(name: str, cli: str, kind: str) -> None:
    got = judge(_screen(name), {cli}, Rules())
    assert got is not None and got.startswith(f"{kind}: "), got
    # without knowing the CLI, every CLI's patterns are tried: still found
    assert judge(_screen(name), set(), Rules()) is not None


def test_the_approval_prompt_names_its_question() -> None:
    got = judge(_screen("claude-approval"), {"claude"}, Rules())
    assert got == "approval: Do you want to proceed?"


@pytest.mark.parametrize(
    ("name", "cli"),
    [
        ("claude-busy", "claude"),
        ("pi-busy", "pi"),
        ("opencode-busy", "opencode"),
        ("gemini-busy", "gemini"),
    ],
)
def test_a_busy_spinner_is_not_needs_input(name: str, cli: str) -> None:
    # each still draws its input box below the spinner: busy wins
    assert judge(_screen(name), {cli}, Rules()) is None
    assert judge(_screen(name), set(), Rules()) is None


def test_a_starting_codex_is_not_needs_input_while_its_brief_comes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # its start screen is an empty box with its hint (labelled idle in tests/corpus/needs, as
    # it looks), shown for under a second before the chooser or the brief: an idle box counts
    # only once a later look finds nothing printed since, so a start never reads needs-input
    from looop.home.clock import SystemClock

    assert str(judge(_screen("codex-start"), {"codex"}, Rules())).startswith("idle: ")
    sdir = tmp_path / "sessions" / "w1"
    sdir.mkdir(parents=True)
    log = sdir / "output.log"
    log.write_text("codex starting")
    screens = iter([_screen("codex-start"), _screen("codex-chooser")])
    monkeypatch.setattr(looking, "_screen", lambda data, sid: next(screens))
    sessions = {"w1": {"dir": str(sdir)}}
    rows = [_row("w1")]
    needsinput.refine(str(tmp_path), rows, sessions, SystemClock(), look=Looker())
    assert rows[0]["health"] == "busy"  # the start screen, seen once: not yet
    log.write_text("codex starting, then its chooser")  # it printed since: the chooser
    rows = [_row("w1")]
    needsinput.refine(str(tmp_path), rows, sessions, SystemClock(), look=Looker())
    assert rows[0]["health"] == "needs-input"
    assert str(rows[0]["needs_input"]).startswith("approval: ")


def test_the_worker_program_is_found_in_its_argv() -> None:
    cmd = ["bash", "-c", 'claude --model opus "$(cat /d/prompts/w.md)"']
    assert "claude" in programs_in(cmd)
    assert "pi" in programs_in(["/usr/local/bin/pi", "--model", "x"])


def test_hostile_screens_are_judged_quickly_and_plainly() -> None:
    rules = Rules({"mine": ("^(a|a)+$", r"READY>\s*$")})
    hostile = [
        "a" * 5000 + "!",  # the catastrophic pattern's worst case
        "─" * 100_000,  # a huge screen is cut to its end
        "\x1b[31mDo you want to proceed?\x1b[0m\n ❯ 1. Yes",  # raw escapes are not plain text
        "\u202eDo you want to\u0000 proceed?\n❯ 1. Yes",
    ]
    for text in hostile:
        started = time.monotonic()
        got = judge(text, {"mytool"}, rules, "mine")
        assert time.monotonic() - started < 1.0
        assert got is None, (text[:40], got)
    assert judge("x\nREADY> \n", {"mytool"}, rules, "mine") == "custom: READY>"
    # another runner's patterns are not applied, nor any without a runner
    assert judge("x\nREADY> \n", {"mytool"}, rules, "other") is None
    assert judge("x\nREADY> \n", {"mytool"}, rules) is None


def test_custom_patterns_are_validated_in_one_line_naming_the_key() -> None:
    def cfg(pats: object) -> object:
        return parse_config({"runners": {"r": {"worker": "mytool", "needs_input": pats}}}, "c")

    good = cfg([r"READY>\s*$"])
    assert looking.custom_patterns(good.runners) == {"r": (r"READY>\s*$",)}  # type: ignore[attr-defined]
    for bad, key in (
        (["(unclosed"], "runners.r.needs_input[0]"),
        ("READY", "runners.r.needs_input"),
        (["ok", 3], "runners.r.needs_input[1]"),
        ([""], "runners.r.needs_input[0]"),
        (["x" * 301], "runners.r.needs_input[0]"),
        (["a"] * 17, "runners.r.needs_input"),
    ):
        with pytest.raises(LooopError) as e:
            cfg(bad)
        msg = str(e.value)
        assert f"'{key}'" in msg and "\n" not in msg, msg


def _row(wid: str) -> dict[str, object]:
    return {"id": wid, "alive": True, "health": "busy", "needs_input": None}


def test_a_repainted_screen_keeps_its_verdict_without_a_screen_read(tmp_path: Path) -> None:
    from looop.home.clock import SystemClock

    sdir = tmp_path / "sessions" / "w1"
    sdir.mkdir(parents=True)
    log = sdir / "output.log"
    paint = b"\x1b[H\x1b[2J Do you want to proceed?\r\n \xe2\x9d\xaf 1. Yes"
    log.write_bytes(b"busy for a while\r\n" + paint)
    st = log.stat()
    said = "approval: Do you want to proceed?"
    cache = {
        "v": needsinput.CACHE_VERSION,
        "w": {"w1": {"k": [st.st_size, st.st_mtime_ns], "why": said}},
    }
    (tmp_path / needsinput.CACHE).write_text(json.dumps(cache))
    sessions = {"w1": {"dir": str(sdir)}}
    clock = SystemClock()
    # the same paint again (no supervisor here: a screen read would find nothing)
    with log.open("ab") as f:
        f.write(paint)
    rows = [_row("w1")]
    needsinput.refine(str(tmp_path), rows, sessions, clock, look=Looker())
    assert rows[0]["health"] == "needs-input" and rows[0]["needs_input"] == said
    # the next beat, nothing printed since: still the verdict, from the cache
    rows = [_row("w1")]
    needsinput.refine(str(tmp_path), rows, sessions, clock, look=Looker())
    assert rows[0]["health"] == "needs-input"
    # it printed half a paint (not a repeat of what came before): the screen must be read,
    # and with no supervisor answering, there is no verdict
    with log.open("ab") as f:
        f.write(paint[: len(paint) // 2])
    rows = [_row("w1")]
    needsinput.refine(str(tmp_path), rows, sessions, clock, look=Looker())
    assert rows[0]["health"] == "busy" and rows[0]["needs_input"] is None


def test_a_runners_own_patterns_judge_only_the_workers_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from looop.home.clock import SystemClock

    # two runners start the same program; only `slow` says what its waiting screen is
    cfg = parse_config(
        {
            "runners": {
                "slow": {"worker": "mytool --slow {{prompt_file}}", "needs_input": [r"^READY>"]},
                "fast": {"worker": "mytool --fast {{prompt_file}}"},
            }
        },
        "c",
    )
    custom = looking.custom_patterns(cfg.runners)  # type: ignore[attr-defined]
    (tmp_path / "resume").mkdir()
    sessions = {}
    for wid, runner in (("w-slow", "slow"), ("w-fast", "fast"), ("w-none", None)):
        sdir = tmp_path / "sessions" / wid
        sdir.mkdir(parents=True)
        (sdir / "output.log").write_text("READY> ")
        sessions[wid] = {"dir": str(sdir)}
        if runner is not None:  # a worker's record, as workers/resume writes it
            rec = {"v": 1, "id": wid, "runner": runner}
            (tmp_path / "resume" / f"{wid}.json").write_text(json.dumps(rec))
    # one room alone: the supervisors' screens are stood in for
    monkeypatch.setattr(looking, "_screen", lambda data, sid: "working\nREADY> ")
    rows = [_row(w) for w in sessions]
    needsinput.refine(str(tmp_path), rows, sessions, SystemClock(), custom, Looker())
    got = {r["id"]: (r["health"], r["needs_input"]) for r in rows}
    assert got == {
        "w-slow": ("needs-input", "custom: READY>"),
        "w-fast": ("busy", None),
        "w-none": ("busy", None),
    }
    # a record that is not JSON: no runner, no custom verdict, no error
    (tmp_path / "resume" / "w-slow.json").write_text("{torn")
    (tmp_path / "sessions" / "w-slow" / "output.log").write_text("READY> again")
    rows = [_row("w-slow")]
    needsinput.refine(str(tmp_path), rows, sessions, SystemClock(), custom, Looker())
    assert rows[0]["health"] == "busy"


def test_an_idle_box_counts_only_once_it_stood_quiet_a_while(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a starved CLI on a loaded machine held its idle box still for two 1 s looks before its
    # approval prompt came (gemini, opencode): that was no idle worker, and the human was
    # told `idle` about a prompt that was on its way
    from tests.clocks import FixedClock

    sdir = tmp_path / "sessions" / "w1"
    sdir.mkdir(parents=True)
    log = sdir / "output.log"
    log.write_text("gemini starting, its box drawn")
    screens = iter([_screen("gemini-idle"), _screen("gemini-approval")])
    monkeypatch.setattr(looking, "_screen", lambda data, sid: next(screens))
    sessions, clock, data = {"w1": {"dir": str(sdir)}}, FixedClock(), str(tmp_path)

    def beat(look: Looker | None = None) -> dict[str, object]:
        rows = [_row("w1")]
        needsinput.refine(data, rows, sessions, clock, look=look)
        return rows[0]

    assert beat(Looker())["health"] == "busy"  # seen once
    for _ in range(2):  # 1 s looks, nothing printed since: still not idle, nor in `ls`
        clock.advance(1.0)
        assert beat(Looker())["health"] == "busy"
        assert beat()["health"] == "busy"
    log.write_text("gemini starting, its box drawn, then its approval prompt")
    clock.advance(1.0)
    row = beat(Looker())  # the prompt came: an approval, never an idle box
    assert row["health"] == "needs-input"
    assert str(row["needs_input"]).startswith("approval: "), row


def test_an_idle_box_quiet_long_enough_is_needs_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.clocks import FixedClock

    sdir = tmp_path / "sessions" / "w1"
    sdir.mkdir(parents=True)
    (sdir / "output.log").write_text("a turn done, its box drawn")
    monkeypatch.setattr(looking, "_screen", lambda data, sid: _screen("claude-idle"))
    sessions, clock, data = {"w1": {"dir": str(sdir)}}, FixedClock(), str(tmp_path)
    rows = [_row("w1")]
    needsinput.refine(data, rows, sessions, clock, look=Looker())
    assert rows[0]["health"] == "busy"
    clock.advance(needsinput.IDLE_QUIET_S)
    for look in (Looker(), None):  # the beat, then `ls` reading its verdict
        rows = [_row("w1")]
        needsinput.refine(data, rows, sessions, clock, look=look)
        assert rows[0]["health"] == "needs-input"
        assert str(rows[0]["needs_input"]).startswith("idle: ")


def test_a_just_started_workers_idle_box_waits_for_its_start_grace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a CLI given its brief draws its box before it sends it: a worker 5 s old at a still
    # box is not told idle until it has run START_GRACE_S, then it is
    from looop.home.stamps import utc_stamp
    from tests.clocks import FixedClock

    sdir = tmp_path / "sessions" / "w1"
    sdir.mkdir(parents=True)
    (sdir / "output.log").write_text("starting, its box drawn")
    monkeypatch.setattr(looking, "_screen", lambda data, sid: _screen("claude-idle"))
    clock, data = FixedClock(), str(tmp_path)
    sessions = {"w1": {"dir": str(sdir), "started_at": utc_stamp(clock.now() - 5)}}

    def beat(look: Looker | None) -> object:
        rows = [_row("w1")]
        needsinput.refine(data, rows, sessions, clock, look=look)
        return rows[0]["health"]

    assert beat(Looker()) == "busy"
    clock.advance(needsinput.IDLE_QUIET_S * 2)  # quiet long enough, but only 11 s old
    assert (beat(Looker()), beat(None)) == ("busy", "busy")
    clock.advance(needsinput.START_GRACE_S - 5 - needsinput.IDLE_QUIET_S * 2)
    assert (beat(Looker()), beat(None)) == ("needs-input", "needs-input")


def test_a_young_worker_seen_at_work_is_idle_once_its_box_stood_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # its CLI was seen busy: the box that follows is a turn done, not a start
    from looop.home.stamps import utc_stamp
    from tests.clocks import FixedClock

    sdir = tmp_path / "sessions" / "w1"
    sdir.mkdir(parents=True)
    log = sdir / "output.log"
    log.write_text("at work")
    shown = ["claude-busy"]
    monkeypatch.setattr(looking, "_screen", lambda data, sid: _screen(shown[0]))
    clock, data = FixedClock(), str(tmp_path)
    sessions = {"w1": {"dir": str(sdir), "started_at": utc_stamp(clock.now() - 5)}}

    def beat() -> object:
        rows = [_row("w1")]
        needsinput.refine(data, rows, sessions, clock, look=Looker())
        return rows[0]["health"]

    assert beat() == "busy"
    log.write_text("at work, then its turn done")
    shown[0] = "claude-idle"
    clock.advance(1.0)
    assert beat() == "busy"
    clock.advance(needsinput.IDLE_QUIET_S)  # 9 s old: well inside the start grace
    assert beat() == "needs-input"


def test_an_idle_box_that_blinks_counts_once_it_showed_long_enough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an idle claude redraws its box now and then (a cursor blink: not a byte-for-byte repeat
    # of the draw before): the box it shows all along counts on a quiet look once it has
    # shown IDLE_QUIET_S, not only after that long with nothing printed at all
    from tests.clocks import FixedClock

    sdir = tmp_path / "sessions" / "w1"
    sdir.mkdir(parents=True)
    log = sdir / "output.log"
    log.write_text("a turn done, its box drawn")
    monkeypatch.setattr(looking, "_screen", lambda data, sid: _screen("claude-idle"))
    sessions, clock, data = {"w1": {"dir": str(sdir)}}, FixedClock(), str(tmp_path)

    def beat() -> object:
        rows = [_row("w1")]
        needsinput.refine(data, rows, sessions, clock, look=Looker())
        return rows[0]["health"]

    assert beat() == "busy"  # first seen
    for blink in ("\x1b[?25l", "\x1b[?25h", "\x1b[?25l", "\x1b[?25h"):
        with log.open("a") as f:
            f.write(blink)
        clock.advance(1.0)
        assert beat() == "busy"  # a look finding a blink printed since the last
    clock.advance(1.0)
    assert beat() == "needs-input"  # nothing printed since the last look, the box shown 5 s
