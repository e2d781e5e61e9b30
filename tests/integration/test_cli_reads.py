"""Pure reads write nothing, every data verb speaks JSON, `journal -f` follows, and a human's
`tick --force` runs through a backoff."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from looop.core.context import Ctx
from tests.helpers import Cli, runner_calls, wire

pytestmark = pytest.mark.timeout(120)


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and dir under root: (size, mtime_ns) — a created, removed, rewritten or
    touched entry (a temp file made and renamed away bumps its dir) changes this."""
    out = {".": (0, root.stat().st_mtime_ns)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def lived_in(ctx: Ctx, data: Path, cli: Cli) -> Path:
    """A data dir after some use: beats, a failure, goals, a schedule, a playbook edit, a
    finished worker, a sensor."""
    wire(ctx, [{"decision": {"action": "noop", "reason": "quiet"}}, {"exit": 3}])
    assert cli("tick")[0] == 0
    for verb in (
        ["goal", "write", "g1", "goal: ship it"],
        ["schedule", "write", "later", "--in", "2h", "--note", "look again"],
        ["playbook", "write", "# PLAYBOOK\n\n1. Ship.\n"],
        ["playbook", "write", "# PLAYBOOK\n\n1. Ship first.\n"],
        ["sensor", "write", "today", '#!/bin/sh\necho \'{"signal": {"n": 1}}\'\n'],
        ["worker", "start", "w1", "brief", "--command", "echo hello from w1 # {{prompt_file}}"],
    ):
        code, _, err = cli(*verb)
        assert code == 0, (verb, err)
    assert cli("wait", "w1", "--timeout", "20s")[0] == 0
    assert cli("tick", "--force")[0] == 1  # a failed beat: backoff and last failure
    return data


READS = [
    ["status"],
    ["status", "--json"],
    ["journal"],
    ["journal", "--json"],
    ["journal", "-n", "1"],
    ["journal", "--all"],
    ["runs"],
    ["runs", "--json"],
    ["asks"],
    ["asks", "--json"],
    ["ls"],
    ["ls", "-a", "--json"],
    ["worker", "list", "-a"],
    ["cost"],
    ["cost", "--json"],
    ["schedule", "list"],
    ["schedule", "list", "--json"],
    ["sensor", "list"],
    ["sensor", "list", "--json"],
    ["sensor", "ls"],
    ["goal", "ls"],
    ["goal", "list"],
    ["goal", "list", "--json"],
    ["playbook", "history"],
    ["playbook", "history", "--json"],
    ["shot", "w1"],
    ["log", "w1"],
    ["log", "w1", "--json", "--since", "0"],
    ["tick", "--dry-run"],
]


def test_a_pure_read_writes_nothing(lived_in: Path, cli: Cli) -> None:
    """Every read on one lived-in data dir (made once: ~2 s a setup, once per read before).
    Each read is checked on its own, so none can hide another's write, and every read that
    fails is named."""
    wrong: list[tuple[str, str]] = []
    for verb in READS:
        before = _tree(lived_in)
        code, out, err = cli(*verb)
        if code != 0:
            wrong.append((" ".join(verb), f"exit {code}: {err}"))
        elif not (out.strip() or verb == ["asks"]):
            wrong.append((" ".join(verb), "a read printed nothing"))
        after = _tree(lived_in)
        if after != before and _derived_only(before, after):
            # the spend's day totals are a cache any reader that finds them stale rebuilds
            # and writes, once: the same read again writes nothing
            before = after
            cli(*verb)
            after = _tree(lived_in)
        if after != before:
            wrong.append((" ".join(verb), "it wrote to the data dir"))
    assert wrong == []


DERIVED = {".cost-days.json", ".cost-days"}  # the index and its folder of month files


def _derived_only(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> bool:
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    derived = {k for k in changed if k.split("/", 1)[0] in DERIVED}
    return bool(derived) and changed <= derived | {"."}


def test_runs_show_writes_nothing(lived_in: Path, cli: Cli) -> None:
    rid = json.loads(cli("runs", "--json")[1])[0]["run_id"]
    before = _tree(lived_in)
    assert cli("runs", "show", rid)[0] == 0
    assert _tree(lived_in) == before


def test_a_beat_journals_its_move_and_journal_all_adds_what_happened(
    lived_in: Path, cli: Cli
) -> None:
    """RULE 1: a worker's end is an event; `journal --all` shows it among the moves."""
    moves = cli("journal")[1]
    assert "start-worker" in moves and "ended" not in moves
    code, both, err = cli("journal", "--all")
    assert code == 0, err
    lines = both.splitlines()
    assert set(moves.splitlines()) < set(lines)
    end = next(i for i, ln in enumerate(lines) if "worker w1 ended: exited" in ln)
    assert end > next(i for i, ln in enumerate(lines) if "start-worker w1" in ln)
    assert cli("journal", "--all", "-n", "1")[1].splitlines() == lines[-1:]


def test_data_verbs_speak_json(lived_in: Path, cli: Cli) -> None:
    lines = cli("journal", "--json")[1].splitlines()
    rows = [json.loads(ln) for ln in lines]
    assert rows and all(r["at"] and r["text"] and r["line"].startswith("- ") for r in rows)
    assert any("g1" in r["text"] for r in rows)
    sensors = json.loads(cli("sensor", "list", "--json")[1])
    assert [s["name"] for s in sensors] == ["today"]
    assert sensors[0]["run"] is True and sensors[0]["signal"] == {"n": 1}  # the last beat ran it
    history = json.loads(cli("playbook", "history", "--json")[1])
    assert len(history) >= 1 and all(Path(h["path"]).is_file() for h in history)
    workers = {w["id"]: w for w in json.loads(cli("worker", "list", "-a", "--json")[1])}
    assert workers["w1"]["exit_code"] == 0
    st = json.loads(cli("status", "--json")[1])
    assert st["last_beat"]["outcome"] == "failed" and st["failing_streak"] == 1


def test_tick_force_overrides_backoff_and_says_so(ctx: Ctx, data: Path, cli: Cli) -> None:
    script = wire(ctx, [{"exit": 3}, {"exit": 3}, {"decision": {"action": "noop"}}])
    assert cli("tick")[0] == 1
    code, _, err = cli("tick")
    assert code == 0 and "retry in" in err and "`looop tick --force` runs now" in err
    assert runner_calls(script) == 1  # backed off: no runner call
    st = json.loads(cli("status", "--json")[1])
    assert st["last_beat"]["outcome"] == "backoff" and st["retry"] is not None
    code, _, err = cli("tick", "--force")
    assert code == 1 and "forced: running now despite 1 failed beat" in err
    assert runner_calls(script) == 2
    assert cli("tick", "--force")[0] == 0
    assert runner_calls(script) == 3
    st = json.loads(cli("status", "--json")[1])
    assert st["last_beat"]["outcome"] == "decided" and st["failing_streak"] == 0
    assert st["retry"] is None


def test_dry_run_on_a_missing_data_dir_is_one_line(data: Path, cli: Cli) -> None:
    code, out, err = cli("tick", "--dry-run")
    assert code == 1 and not out and err.count("\n") == 1 and "looop init" in err
    assert not data.exists()


@pytest.mark.timeout(60)
def test_journal_follow_prints_new_lines_and_ends_on_ctrl_c(ctx: Ctx, data: Path, cli: Cli) -> None:
    ctx.paths.journal.write_text("- 2026-01-01 09:00 first\n")
    p = subprocess.Popen(
        [sys.executable, "-m", "looop", "journal", "-f", "--json"],
        env=cli.child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert p.stdout is not None
    try:
        assert json.loads(_read_line(p.stdout))["text"] == "first"
        with open(ctx.paths.journal, "a") as f:
            f.write("- 2026-01-01 09:01 second\n")
        assert json.loads(_read_line(p.stdout))["text"] == "second"
        os.replace(ctx.paths.journal, data / "journal.md.1")  # the executor's rotation
        ctx.paths.journal.write_text("- 2026-01-01 09:02 third\n")
        assert json.loads(_read_line(p.stdout))["text"] == "third"
        p.send_signal(signal.SIGINT)
        code = p.wait(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert code in (0, 130)
    assert p.stderr is not None and b"Traceback" not in p.stderr.read()


def _read_line(stream: object, timeout: float = 20) -> str:
    """One line from a pipe, bounded by a deadline."""
    fd = stream.fileno()  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        r, _, _ = select.select([fd], [], [], max(0.0, left))
        if not r:
            raise AssertionError(f"no line within {timeout}s (got {buf!r})")
        chunk = os.read(fd, 1)
        if not chunk:
            raise AssertionError(f"stream closed (got {buf!r})")
        buf += chunk
    return buf.decode()


def _keys(td: Any) -> tuple[set[str], set[str]]:
    """(required, all) keys of a TypedDict."""
    return set(td.__required_keys__), set(td.__required_keys__ | td.__optional_keys__)


def _shaped(obj: dict[str, Any], td: Any) -> None:
    required, allowed = _keys(td)
    assert required <= set(obj) <= allowed, (td.__name__, sorted(set(obj) ^ allowed))


def test_status_and_runs_json_are_their_typed_views(lived_in: Path, cli: Cli) -> None:
    from looop.spend.views import SpendStatus
    from looop.views import shapes as views

    st = json.loads(cli("status", "--json")[1])
    _shaped(st, views.StatusView)
    for key, td in (
        ("now", views.Stamp),
        ("pulse", views.PulseView),
        ("last_beat", views.BeatView),
        ("last_tick", views.LastTick),
        ("retry", views.Stamp),
        ("schedules", views.SchedulesView),
        ("spend", SpendStatus),
    ):
        assert st[key] is not None, key  # the lived-in dir fills every block checked here
        _shaped(st[key], td)
    assert st["workers"] and all(_shaped(w, views.WorkerView) is None for w in st["workers"])
    rows = json.loads(cli("runs", "--json")[1])
    assert len(rows) == 2 and all(_shaped(r, views.RunRow) is None for r in rows)
    assert {r["status"] for r in rows} == {"decided", "failed"}
    shown = json.loads(cli("runs", "show", rows[0]["run_id"], "--json")[1])
    _shaped(shown, views.RunDetail)


def test_status_loads_not_the_views(ctx: Ctx, data: Path, cli: Cli) -> None:
    # the views are types only: `looop status` never loads them
    wire(ctx, [{"decision": {"action": "noop", "reason": "quiet"}}])
    assert cli("tick")[0] == 0
    probe = (
        "import json, sys\n"
        "from looop.verbs.console import run as main\n"
        "try:\n    main(['status', '--json'])\nexcept SystemExit:\n    pass\n"
        "mods = ('looop.views.shapes', 'looop.spend.views', 'looop.views.statustext')\n"
        "sys.stderr.write(json.dumps({m: m in sys.modules for m in mods}))\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", probe], env=cli.child_env(), capture_output=True, timeout=20
    )
    assert json.loads(p.stdout)["spend"] is not None  # the spend block was really read
    loaded = json.loads(p.stderr)
    assert loaded == {
        "looop.views.shapes": False,
        "looop.spend.views": False,
        "looop.views.statustext": True,
    }
