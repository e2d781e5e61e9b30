from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from looop.act import goalarchive
from looop.act.decision import Decision, DecisionError
from looop.act.executor import execute, take_decision
from looop.act.journal import append_journal
from looop.act.moves.files import WriteGoal, WritePlaybook
from looop.act.moves.notes import Noop, SendNotification
from looop.act.moves.runshell import RunShell
from looop.act.outcome import ExecError, Executed
from looop.act.parse import decision_from_obj, parse_decision
from looop.act.wal import check_interrupted
from looop.core.context import Ctx
from looop.home import locks, store
from looop.home.errors import LooopError
from looop.home.hashing import digest
from looop.human.notify import fire_hook
from tests.clocks import FixedClock
from tests.helpers import until

# FixedClock's default instant, in UTC (the fixture's zone).
STAMP = "2025-06-15 15:06"


def run(ctx: Ctx, obj: dict[str, Any], actor: str = "pulse") -> Executed:
    return execute(ctx, ctx.knobs(), decision_from_obj(obj), actor=actor)


def with_env(ctx: Ctx, **env: str) -> Ctx:
    return dataclasses.replace(ctx, env={**ctx.env, **env})


def journal_lines(ctx: Ctx) -> list[str]:
    text = store.read_text(ctx.paths.journal)
    return [] if text is None else text.splitlines()


def records(ctx: Ctx, event: str) -> list[dict[str, Any]]:
    text = store.read_text(ctx.paths.events) or ""
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [r for r in rows if r["event"] == event]


def seen(ctx: Ctx, name: str) -> list[dict[str, Any]]:
    return [fields for n, fields in ctx.events.seen if n == name]


def wal_files(ctx: Ctx) -> list[str]:
    d = ctx.paths.data / ".wal"
    return sorted(os.listdir(d)) if d.exists() else []


def wait_for(pred: Any, secs: float = 10.0) -> bool:
    return until(pred, secs)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


# ---------------------------------------------------------------- decision file and journal


def test_consume_executes_journals_and_clears_file(ctx: Ctx) -> None:
    assert take_decision(ctx) is None
    ctx.paths.decision.write_text(
        '{"action":"noop","reason":"all quiet","next_interval_s":30}', encoding="utf-8"
    )
    raw = take_decision(ctx)
    assert raw is not None
    assert not ctx.paths.decision.exists()
    assert take_decision(ctx) is None  # one-shot
    done = execute(ctx, ctx.knobs(), parse_decision(raw))
    assert done == Executed(
        kind="noop",
        summary="noop · all quiet",
        journal="noop · all quiet",
        next_interval_s=30,
        goal=None,
    )
    assert journal_lines(ctx) == [f"- {STAMP} noop · all quiet"]
    assert not ctx.paths.goal_activity.exists()  # noop targets no goal
    assert records(ctx, "steered") == []


def test_journal_text_wins_over_summary_and_blank_falls_back(ctx: Ctx) -> None:
    assert run(ctx, {"action": "noop", "journal": "waiting for CI"}).journal == "waiting for CI"
    assert run(ctx, {"action": "noop", "reason": "r", "journal": " \n\t "}).journal == "noop · r"
    assert run(ctx, {"action": "noop", "journal": "\x00\x07"}).journal == "noop"
    assert journal_lines(ctx)[1] == f"- {STAMP} noop · r"


def test_journal_is_sanitised_to_one_capped_line(ctx: Ctx) -> None:
    messy = "first line\nsecond\tline\r\n\x1b[31mred\x1b[0m  \u2028" + ("word\t\n" * 400)
    assert len(messy) > 2000
    done = run(ctx, {"action": "noop", "journal": messy})
    lines = journal_lines(ctx)
    assert len(lines) == 1
    text = lines[0].removeprefix(f"- {STAMP} ")
    assert text == done.journal
    assert text.startswith("first line second line [31mred [0m word word")
    assert len(text) == 500 and text.endswith("…")
    assert "  " not in text and "\t" not in text and "\x1b" not in text


def test_journal_rotates_when_over_the_limit(ctx: Ctx) -> None:
    small = with_env(ctx, LOOOP_JOURNAL_MAX_BYTES="200")
    ctx.paths.journal.write_text("- old line\n" * 30, encoding="utf-8")
    append_journal(small, small.knobs(), "fresh")
    assert ctx.paths.journal.read_text() == f"- {STAMP} fresh\n"
    assert (ctx.paths.data / "journal.md.1").read_text() == "- old line\n" * 30
    append_journal(small, small.knobs(), "again")
    assert journal_lines(ctx) == [f"- {STAMP} fresh", f"- {STAMP} again"]


def test_journal_failure_after_the_action_says_it_ran(ctx: Ctx) -> None:
    ctx.paths.journal.mkdir()  # unwritable journal: a directory in its place
    with pytest.raises(ExecError) as e:
        run(ctx, {"action": "write_goal", "id": "ship", "body": "b"})
    assert "goal ran, but its journal line could not be written" in str(e.value)
    assert ctx.paths.goal("ship").read_text() == "b\n"


def test_steering_actor_is_recorded(ctx: Ctx) -> None:
    run(ctx, {"action": "write_goal", "id": "ship", "body": "b"}, actor="cli")
    rows = records(ctx, "steered")
    assert len(rows) == 1
    assert rows[0]["actor"] == "cli"
    assert rows[0]["action"] == "goal"
    assert rows[0]["summary"] == "write-goal ship"
    assert seen(ctx, "tick.decided") == []  # the tick, not the executor, reports beats


# ---------------------------------------------------------------- goals, sensors, playbook


def test_write_and_archive_goal_round_trip(ctx: Ctx, clock: FixedClock) -> None:
    done = run(ctx, {"action": "write_goal", "id": "ship", "body": "# Ship v1"})
    assert done.goal == "ship"
    assert ctx.paths.goal("ship").read_text() == "# Ship v1\n"
    run(ctx, {"action": "write_goal", "id": "ship", "body": "# Ship v2\n"})
    assert ctx.paths.goal("ship").read_text() == "# Ship v2\n"
    activity = json.loads(ctx.paths.goal_activity.read_text())
    assert activity == {"ship": int(clock.now())}

    (ctx.paths.goals_archive).mkdir(parents=True)
    (ctx.paths.goals_archive / "ship.md").write_text("older archive\n")
    clock.advance(90)
    done = run(ctx, {"action": "archive_goal", "id": "ship", "reason": "superseded"})
    assert done.kind == "archive" and done.summary == "archive-goal ship (superseded)"
    assert journal_lines(ctx)[-1].endswith("archive-goal ship (superseded)")
    why = json.loads((ctx.paths.goals / "archive.why" / "ship~2.json").read_text())
    assert why["reason"] == "superseded" and why["goal"] == "ship"
    assert not (ctx.paths.goals / "archive.why" / "ship.json").exists()  # the older: unsaid
    assert sorted(p.name for p in ctx.paths.goals_archive.iterdir()) == ["ship.md", "ship~2.md"]
    assert not ctx.paths.goal("ship").exists()
    # an earlier archive of the same id is kept beside it, never overwritten
    assert (ctx.paths.goals_archive / "ship.md").read_text() == "older archive\n"
    assert (ctx.paths.goals_archive / "ship~2.md").read_text() == "# Ship v2\n"
    assert json.loads(ctx.paths.goal_activity.read_text()) == {"ship": int(clock.now())}
    assert [p.name for p in ctx.paths.goals.iterdir() if p.is_file()] == []
    assert not (ctx.paths.data / ".wal").exists()  # only shell and notify are WAL-guarded


def test_archiving_an_archived_goal_succeeds_and_says_so(ctx: Ctx) -> None:
    run(ctx, {"action": "write_goal", "id": "ship", "body": "# Ship"})
    run(ctx, {"action": "archive_goal", "id": "ship", "reason": "done"})
    again = run(
        ctx, {"action": "archive_goal", "id": "ship", "reason": "done", "journal": "tidy up"}
    )
    assert "goals/archive/ship.md was already archived" in again.summary
    assert journal_lines(ctx)[-1].endswith("tidy up (goals/archive/ship.md was already archived)")
    assert (ctx.paths.goals_archive / "ship.md").read_text() == "# Ship\n"


def test_archive_goal_refuses_a_reason_that_is_not_text(ctx: Ctx) -> None:
    run(ctx, {"action": "write_goal", "id": "ship", "body": "# Ship"})
    with pytest.raises(LooopError, match=r"archive_goal: field 'reason'") as e:
        run(ctx, {"action": "archive_goal", "id": "ship", "reason": 3})
    assert "\n" not in str(e.value)
    assert ctx.paths.goal("ship").exists()  # nothing archived on a reason it cannot keep


def test_archive_goal_keeps_a_free_form_reason(ctx: Ctx) -> None:
    """v1.0 and seed 003 archive whatever the reason says: the text is journaled and kept."""
    run(ctx, {"action": "write_goal", "id": "ship", "body": "# Ship"})
    run(ctx, {"action": "archive_goal", "id": "ship", "reason": "merged upstream\nlast week"})
    assert not ctx.paths.goal("ship").exists()
    assert "archive-goal ship (merged upstream last week)" in ctx.paths.journal.read_text()
    (row,) = goalarchive.archived(ctx)
    assert (row["reason"], row["note"]) == ("unsaid", "merged upstream last week")


def test_archive_goal_as_v1_spells_it_is_done(ctx: Ctx) -> None:
    """v1.0's archive_goal{id} (no reason) still archives: the goal's work was done."""
    run(ctx, {"action": "write_goal", "id": "ship", "body": "# Ship"})
    run(ctx, {"action": "archive_goal", "id": "ship"})
    assert not ctx.paths.goal("ship").exists()
    assert "archive-goal ship (done)" in ctx.paths.journal.read_text()


def test_archive_missing_goal_names_the_path(ctx: Ctx) -> None:
    with pytest.raises(ExecError, match=r"goals/nope\.md does not exist"):
        run(ctx, {"action": "archive_goal", "id": "nope", "reason": "dropped"})
    assert journal_lines(ctx) == []
    assert not ctx.paths.goal_activity.exists()


def test_corrupt_goal_activity_is_replaced(ctx: Ctx, clock: FixedClock) -> None:
    ctx.paths.goal_activity.write_text("{not json")
    run(ctx, {"action": "write_goal", "id": "a", "body": "x"})
    assert json.loads(ctx.paths.goal_activity.read_text()) == {"a": int(clock.now())}
    clock.advance(5)
    run(ctx, {"action": "write_goal", "id": "b", "body": "x"})
    assert json.loads(ctx.paths.goal_activity.read_text()) == {
        "a": int(clock.now()) - 5,
        "b": int(clock.now()),
    }


def test_io_failure_is_one_line_exec_error(ctx: Ctx) -> None:
    ctx.paths.goals.write_text("a file where the goals dir should be")
    with pytest.raises(ExecError) as e:
        run(ctx, {"action": "write_goal", "id": "ship", "body": "b"})
    assert str(e.value).startswith("write_goal: ")
    assert "\n" not in str(e.value)
    assert journal_lines(ctx) == []


@pytest.mark.process
def test_write_sensor_is_executable_and_lf(ctx: Ctx) -> None:
    done = run(ctx, {"action": "write_sensor", "name": "ci", "script": "#!/bin/sh\r\necho {}"})
    assert done.kind == "sensor" and done.goal is None
    path = ctx.paths.sensor("ci")
    assert path.read_bytes() == b"#!/bin/sh\necho {}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    out = subprocess.run([str(path)], capture_output=True, timeout=10, check=True)
    assert out.stdout == b"{}\n"


def test_remove_sensor_deletes_it_and_journals(ctx: Ctx) -> None:
    run(ctx, {"action": "write_sensor", "name": "ci", "script": "echo {}"})
    done = run(ctx, {"action": "remove_sensor", "name": "ci"})
    assert done.kind == "remove-sensor" and not ctx.paths.sensor("ci").exists()
    assert journal_lines(ctx)[-1].endswith("remove-sensor ci")
    # level-triggered: removing what is already gone succeeds and journals what it found
    again = run(ctx, {"action": "remove_sensor", "name": "ci"})
    assert "was already gone" in again.summary
    assert journal_lines(ctx)[-1].endswith("remove-sensor ci (sensors/ci.sh was already gone)")
    ctx.paths.sensor("odd").mkdir(parents=True)  # not a file: a human's mess, refused
    with pytest.raises(ExecError, match=r"sensors/odd\.sh is not a file"):
        run(ctx, {"action": "remove_sensor", "name": "odd"})
    assert len(journal_lines(ctx)) == 3  # the refused one journaled nothing


@pytest.mark.parametrize(
    "obj",
    [
        {"action": "write_goal", "id": "g", "body": ""},
        {"action": "write_goal", "id": "g", "body": " \n\t "},
        {"action": "write_sensor", "name": "s", "script": ""},
        {"action": "write_sensor", "name": "s", "script": "\n\n"},
        {"action": "remove_sensor", "name": "../PLAYBOOK"},
    ],
)
def test_blank_bodies_and_bad_names_are_refused_before_anything_runs(
    ctx: Ctx, obj: dict[str, Any]
) -> None:
    with pytest.raises(DecisionError):
        run(ctx, obj)
    assert journal_lines(ctx) == [] and not ctx.paths.goal("g").exists()
    assert not ctx.paths.sensor("s").exists()


def test_write_playbook_keeps_pruned_history(ctx: Ctx, clock: FixedClock) -> None:
    keep3 = with_env(ctx, LOOOP_PLAYBOOK_KEEP="3")
    hist = ctx.paths.playbook_history

    def write(body: str) -> None:
        execute(keep3, keep3.knobs(), Decision(WritePlaybook(body)))

    write("v1\r\nline")
    assert ctx.paths.playbook.read_text() == "v1\nline\n"
    assert not hist.exists() or list(hist.iterdir()) == []  # nothing to keep yet
    for n in range(2, 7):
        if n % 2:
            clock.advance(1)  # some versions share a second: names must stay unique
        write(f"v{n}")
    assert ctx.paths.playbook.read_text() == "v6\n"
    kept = sorted(p.read_text() for p in hist.iterdir())
    assert kept == ["v3\n", "v4\n", "v5\n"]
    write("v6")  # an identical rewrite loses nothing, so it adds no history
    assert len(list(hist.iterdir())) == 3


# ---------------------------------------------------------------- run_shell and the WAL


@pytest.mark.timeout(15)
@pytest.mark.process
def test_run_shell_success_writes_output_and_holds_a_wal(ctx: Ctx, clock: FixedClock) -> None:
    cmd = "cat .wal/*.json; echo to-err >&2"
    done = run(ctx, {"action": "run_shell", "cmd": cmd, "reason": "peek"})
    assert done.kind == "shell" and done.summary == "run-shell · peek"
    assert journal_lines(ctx) == [f"- {STAMP} run-shell · peek"]
    last = json.loads(ctx.paths.last_shell.read_text())
    assert last["v"] == 1 and last["ts"] == int(clock.now())
    assert last["cmd"] == cmd
    assert last["exit_code"] == 0 and last["timed_out"] is False
    assert last["stderr"] == "to-err\n"
    # The command saw its own intent record: written before the side effect, removed after.
    intent = json.loads(last["stdout"])
    assert intent["v"] == 1 and intent["action"] == "shell" and intent["pid"] == os.getpid()
    assert intent["fingerprint"] == digest(f"run_shell\n{cmd}".encode())
    assert wal_files(ctx) == []
    assert check_interrupted(ctx) == []

    # Fingerprint ignores the reason and follows the command.
    run(ctx, {"action": "run_shell", "cmd": cmd, "reason": "other"})
    again = json.loads(json.loads(ctx.paths.last_shell.read_text())["stdout"])
    assert again["fingerprint"] == intent["fingerprint"]
    run(ctx, {"action": "run_shell", "cmd": cmd + " "})
    other = json.loads(json.loads(ctx.paths.last_shell.read_text())["stdout"])
    assert other["fingerprint"] != intent["fingerprint"]


@pytest.mark.timeout(15)
@pytest.mark.process
def test_run_shell_failure_keeps_output_and_journals_nothing(ctx: Ctx) -> None:
    with pytest.raises(ExecError, match=r"^run_shell exited 3: deploy$"):
        run(ctx, {"action": "run_shell", "cmd": "echo nope >&2; exit 3", "reason": "deploy"})
    last = json.loads(ctx.paths.last_shell.read_text())
    assert last["exit_code"] == 3 and last["stderr"] == "nope\n"
    assert journal_lines(ctx) == []
    assert wal_files(ctx) == []
    with pytest.raises(ExecError, match=r"^run_shell exited 1: false$"):
        run(ctx, {"action": "run_shell", "cmd": "false"})


@pytest.mark.timeout(15)
@pytest.mark.process
def test_run_shell_timeout_names_the_knob(ctx: Ctx) -> None:
    quick = with_env(ctx, LOOOP_SHELL_TIMEOUT_SECS="1")
    t0 = time.monotonic()
    with pytest.raises(ExecError) as e:
        execute(quick, quick.knobs(), Decision(RunShell("echo hi; sleep 30")))
    assert time.monotonic() - t0 < 5
    assert str(e.value) == (
        "run_shell timed out after 1s (LOOOP_SHELL_TIMEOUT_SECS): echo hi; sleep 30"
    )
    last = json.loads(ctx.paths.last_shell.read_text())
    assert last["timed_out"] is True and last["exit_code"] is None and last["stdout"] == "hi\n"
    assert wal_files(ctx) == []


def _write_wal(ctx: Ctx, name: str, rec: dict[str, Any] | str) -> Path:
    d = ctx.paths.data / ".wal"
    d.mkdir(exist_ok=True)
    path = d / name
    path.write_text(rec if isinstance(rec, str) else json.dumps(rec))
    return path


def test_dead_actors_wal_is_reported_once_then_gone(ctx: Ctx) -> None:
    fp = digest(b"run_shell\nmake deploy")
    rec = {"v": 1, "action": "shell", "fingerprint": fp, "ts": 1, "pid": 4242}
    _write_wal(ctx, "pulse-4242-abcd.json", rec)
    found = check_interrupted(ctx)
    assert [(r["action"], r["fingerprint"]) for r in found] == [("shell", fp)]
    warn = seen(ctx, "tick.interrupted")
    assert len(warn) == 1
    assert warn[0]["level"] == "warn"
    assert warn[0]["action"] == "shell" and warn[0]["fingerprint"] == fp
    assert "died mid 'shell'" in warn[0]["msg"] and "NOT retried" in warn[0]["msg"]
    rows = records(ctx, "tick_interrupted")
    assert [(r["action"], r["fingerprint"]) for r in rows] == [("shell", fp)]
    assert wal_files(ctx) == []
    assert check_interrupted(ctx) == []
    assert len(seen(ctx, "tick.interrupted")) == 1
    # the durable record has the move that died mid-way, once
    assert journal_lines(ctx) == [
        f"- {STAMP} interrupted · shell — died mid-way (pid 4242), NOT re-run; "
        "check it did not half-run [pulse-4242-abcd]"
    ]


def test_dead_actors_line_is_not_journaled_twice_after_a_crash_between(ctx: Ctx) -> None:
    """A crash after the journal line but before the record went: the next check finds the
    record again and reports it, but its line is already there."""
    rec = {"v": 1, "action": "shell", "fingerprint": "f", "pid": 7, "summary": "run-shell · x"}
    _write_wal(ctx, "pulse-7-beef.json", rec)
    line = (
        "interrupted · run-shell · x — died mid-way (pid 7), NOT re-run; "
        "check it did not half-run [pulse-7-beef]"
    )
    ctx.paths.journal.write_text(f"- {STAMP} {line}\n- {STAMP} later move\n")
    assert [r["action"] for r in check_interrupted(ctx)] == ["shell"]
    assert journal_lines(ctx) == [f"- {STAMP} {line}", f"- {STAMP} later move"]
    assert wal_files(ctx) == []


def test_dead_actors_record_is_kept_while_its_line_cannot_be_journaled(ctx: Ctx) -> None:
    rec = {"v": 1, "action": "notify", "fingerprint": "f", "pid": 9, "summary": "notify · hi"}
    _write_wal(ctx, "cli-9-cafe.json", rec)
    ctx.paths.journal.mkdir()  # journal.md cannot be appended to
    assert check_interrupted(ctx) == []
    assert wal_files(ctx) == ["cli-9-cafe.json"]
    assert seen(ctx, "tick.interrupted") == []
    (warn,) = seen(ctx, "tick.interrupted_unjournaled")
    assert "cli-9-cafe.json" in warn["msg"] and "tried again next beat" in warn["msg"]
    ctx.paths.journal.rmdir()
    assert [r["action"] for r in check_interrupted(ctx)] == ["notify"]
    assert [ln.split(" ", 3)[3][:27] for ln in journal_lines(ctx)] == [
        "interrupted · notify · hi —"
    ]
    assert wal_files(ctx) == []


def test_unparseable_wal_counts_as_interrupted(ctx: Ctx) -> None:
    _write_wal(ctx, "cli-77-beef.json", "{torn")
    (ctx.paths.data / ".wal" / "odd.json").mkdir()  # not a record: skipped, never a crash
    found = check_interrupted(ctx)
    assert [r["action"] for r in found] == ["unknown"]
    assert wal_files(ctx) == ["odd.json"]


def test_live_actors_wal_is_left_alone(ctx: Ctx) -> None:
    path = _write_wal(ctx, "cli-1-aaaa.json", {"v": 1, "action": "notify", "fingerprint": "f"})
    fd = locks.try_flock(path)
    assert fd is not None
    try:
        assert check_interrupted(ctx) == []
        assert path.exists()
        assert seen(ctx, "tick.interrupted") == []
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    assert [r["action"] for r in check_interrupted(ctx)] == ["notify"]


_CRASH_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from looop.act.decision import Decision
    from looop.act.moves.runshell import RunShell
    from looop.act.executor import execute
    from looop.home.clock import SystemClock
    from looop.core.context import Ctx
    from looop.core.events import Emitter
    from looop.home.paths import Paths

    paths = Paths.at(Path(sys.argv[1]))
    ctx = Ctx(paths=paths, clock=SystemClock(), env={"PATH": "/usr/bin:/bin"},
              events=Emitter(clock=SystemClock(), events_path=None))
    execute(ctx, ctx.knobs(), Decision(RunShell(sys.argv[2])))
    """
)


@pytest.mark.timeout(30)
@pytest.mark.process
def test_killed_mid_run_shell_leaves_a_wal_that_is_reported(ctx: Ctx) -> None:
    cmd = "echo $$ > shell.pid; exec sleep 30"
    child = subprocess.Popen([sys.executable, "-c", _CRASH_CHILD, str(ctx.paths.data), cmd])
    pidfile = ctx.paths.data / "shell.pid"
    shell_pid = 0
    try:
        assert wait_for(lambda: pidfile.exists() and pidfile.read_text().strip())
        shell_pid = int(pidfile.read_text())
        assert check_interrupted(ctx) == []  # alive and mid-action: not ours to judge
        assert len(wal_files(ctx)) == 1
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        found = check_interrupted(ctx)
        assert [(r["action"], r["fingerprint"]) for r in found] == [
            ("shell", digest(f"run_shell\n{cmd}".encode()))
        ]
        assert found[0]["pid"] == child.pid
        assert wal_files(ctx) == []
        assert check_interrupted(ctx) == []
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if shell_pid:
            try:
                os.killpg(shell_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# ---------------------------------------------------------------- notifications


def _hook_config(ctx: Ctx, hook: str) -> None:
    ctx.paths.config.write_text(json.dumps({"notification": hook}), encoding="utf-8")


NASTY = 'deploy done\'; rm -rf ~ # $(whoami) `id` "q" \\ end'


@pytest.mark.timeout(15)
@pytest.mark.parametrize("placeholder", ["{{message}}", "'{{message}}'", '"{{message}}"', "env"])
@pytest.mark.process
def test_hook_gets_message_and_id_via_env_never_spliced(ctx: Ctx, placeholder: str) -> None:
    msg_ref = '"$LOOOP_MESSAGE"' if placeholder == "env" else placeholder
    id_ref = '"$LOOOP_ID"' if placeholder == "env" else "{{id}}"
    _hook_config(
        ctx,
        f"printf %s {msg_ref} > msg.tmp; printf %s {id_ref} > id.out; mv msg.tmp msg.out",
    )
    done = run(ctx, {"action": "send_notification", "message": f"  {NASTY}\n", "id": "w-1"})
    assert done.kind == "notify"
    assert done.summary == f"notify · {NASTY}"
    out = ctx.paths.data / "msg.out"
    assert wait_for(out.exists)
    assert out.read_bytes() == NASTY.encode()
    assert (ctx.paths.data / "id.out").read_bytes() == b"w-1"
    assert ctx.paths.data.exists()
    assert wal_files(ctx) == []
    assert check_interrupted(ctx) == []


def test_notification_without_hook_still_journals(ctx: Ctx) -> None:
    done = run(ctx, {"action": "send_notification", "message": "please review"})
    assert done.journal == "notify · please review"
    assert journal_lines(ctx) == [f"- {STAMP} notify · please review"]


def test_empty_notification_is_refused(ctx: Ctx) -> None:
    with pytest.raises(ExecError, match="empty message"):
        execute(ctx, ctx.knobs(), Decision(SendNotification("  \n ")))
    assert journal_lines(ctx) == []
    assert wal_files(ctx) == []


@pytest.mark.timeout(15)
@pytest.mark.process
def test_hanging_hook_does_not_block_execute(ctx: Ctx) -> None:
    _hook_config(ctx, "echo $$ > hook.pid; exec sleep 30")
    t0 = time.monotonic()
    run(ctx, {"action": "send_notification", "message": "hi"})
    assert time.monotonic() - t0 < 2
    pidfile = ctx.paths.data / "hook.pid"
    assert wait_for(lambda: pidfile.exists() and pidfile.read_text().strip())
    pid = int(pidfile.read_text())
    assert alive(pid)
    os.killpg(pid, signal.SIGKILL)


@pytest.mark.timeout(15)
@pytest.mark.process
def test_overrunning_hook_is_killed_and_reported(ctx: Ctx) -> None:
    # 1.5 s: room for the hook to start and write its pid on a loaded machine
    fire_hook(ctx, "echo $$ > hook.pid; exec sleep 30", "m", "w1", timeout_s=1.5)
    pidfile = ctx.paths.data / "hook.pid"
    assert wait_for(lambda: pidfile.exists() and pidfile.read_text().strip())
    assert wait_for(lambda: seen(ctx, "notify.failed"))
    assert "timed out" in seen(ctx, "notify.failed")[0]["msg"]
    assert wait_for(lambda: not alive(int(pidfile.read_text())))
    # the watcher thread says it, then records it: the record may come a moment later
    assert wait_for(lambda: records(ctx, "notify_failed"))
    assert records(ctx, "notify_failed")[0]["id"] == "w1"


@pytest.mark.timeout(15)
@pytest.mark.process
def test_failing_hook_is_reported_not_raised(ctx: Ctx) -> None:
    fire_hook(ctx, "echo no such tool >&2; exit 7", "m", "", timeout_s=5)
    assert wait_for(lambda: seen(ctx, "notify.failed"))
    msg = seen(ctx, "notify.failed")[0]["msg"]
    assert "exited 7" in msg and "no such tool" in msg


@pytest.mark.parametrize(
    "obj",
    [
        {"action": "kill_worker", "id": "w1"},
        {"action": "steer_session", "id": "looop-w1", "input": "x"},
        {"action": "send_key", "id": "w1", "keys": ["Enter"]},
        {"action": "restart_session", "id": "w1"},
    ],
)
def test_driving_a_missing_worker_fails_without_a_journal_line(
    ctx: Ctx, obj: dict[str, Any]
) -> None:
    with pytest.raises(ExecError, match=f"^{obj['action']}: no worker or session `w1`"):
        run(ctx, obj)
    assert journal_lines(ctx) == []
    assert not ctx.paths.goal_activity.exists()


@pytest.mark.parametrize(
    "obj",
    [
        {"action": "kill_worker", "id": "rw1"},
        {"action": "steer_session", "id": "rw1", "input": "x"},
        {"action": "send_key", "id": "rw1", "keys": ["Enter"]},
    ],
)
def test_a_remote_worker_whose_host_does_not_answer_is_a_failed_move(
    ctx: Ctx, obj: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a failed move in one line (the beat goes on), not an error that escapes the executor
    from looop.home.where import host_record
    from looop.remote import rooms
    from tests.farhost import FarHost

    host = FarHost(tmp_path / "host")
    host.down.set()
    # a move reaches a worker away through the remote rooms' one door
    far = staticmethod(lambda c, wid: host if wid == "rw1" else None)
    monkeypatch.setattr(rooms(), "remote_of", far)
    record = Path(host_record(str(ctx.paths.data), "rw1"))  # the home's record of a worker away
    record.parent.mkdir(parents=True)
    record.write_text("{}")
    with pytest.raises(ExecError, match=f"^{obj['action']}: host far does not answer"):
        run(ctx, obj)
    assert journal_lines(ctx) == []


def test_invalid_fields_fail_before_anything_runs(ctx: Ctx) -> None:
    with pytest.raises(DecisionError, match="control loop"):
        run(ctx, {"action": "steer_session", "id": "pulse", "input": "x"})
    with pytest.raises(DecisionError, match="invalid goal id"):
        execute(ctx, ctx.knobs(), Decision(WriteGoal("../../etc/passwd", "x")))
    assert not (ctx.paths.data.parent / "etc").exists()
    assert execute(ctx, ctx.knobs(), Decision(Noop())).summary == "noop"
