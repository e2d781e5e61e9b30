"""Finding the conversation a CLI that names its own began (RunnerProfile.find_id): codex's in
its rollout files, opencode's in its SQLite store. Each is the earliest one since the worker's
start, in its directory, whose first user turn is the worker's brief: a tick's or another
worker's conversation in the same data dir is never taken, and nothing odd is an id."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

from looop.runners.codex import PROFILE as CODEX
from looop.runners.codex import find_rollout
from looop.runners.opencode import PROFILE as OPENCODE
from looop.runners.opencode import find_in_store

pytestmark = pytest.mark.unit

BRIEF = "# \u2691 WORKER CONTRACT (added by looop)\n\nYou are worker `w1` (runner: codex), started"


# -- codex names its own conversation -----------------------------------------------------


def _rollout(day: Path, name: str, meta: object, rest: str) -> Path:
    day.mkdir(parents=True, exist_ok=True)
    p = day / f"rollout-{name}.jsonl"
    p.write_text(json.dumps(meta) + "\n" + rest)
    return p


def _turn(role: str, text: str) -> str:
    """One message line of a codex 0.169 rollout, as its TUI writes it."""
    item = {
        "type": "response_item",
        "payload": {
            "type": "message",
            "role": role,
            "content": [{"type": "input_text", "text": text}],
        },
    }
    return json.dumps(item) + "\n"


BRIEF = "# \u2691 WORKER CONTRACT (added by looop)\n\nYou are worker `w1` (runner: codex), started"


def test_codex_id_is_found_in_its_rollouts_and_hostile_files_are_skipped(tmp_path: Path) -> None:
    home, cwd = tmp_path / "codex", "/data"
    day = home / "sessions" / "2026" / "05" / "04"
    mine = "0197a0b2-1111-7222-8333-944445555666"

    def meta(conv: object, at: str, where: str = cwd) -> dict[str, object]:
        return {"type": "session_meta", "payload": {"id": conv, "timestamp": at, "cwd": where}}

    ctx = _turn("user", "<environment_context>/data</environment_context>")
    brief = ctx + _turn("user", BRIEF) + _turn("assistant", "ANSWER")
    _rollout(day, "a", meta(mine, "2026-05-04T10:00:01Z"), brief)
    _rollout(day, "b", meta("0197-later", "2026-05-04T10:05:00Z"), brief)  # a later one
    _rollout(day, "c", meta("$(reboot)", "2026-05-04T09:00:00Z"), brief)  # not an id
    _rollout(day, "d", meta("other-cwd", "2026-05-04T09:00:00Z", "/elsewhere"), brief)
    _rollout(day, "e", meta("other-worker", "2026-05-04T09:00:00Z"), brief.replace("w1", "w2"))
    # a tick (codex exec in the same data dir) whose prompt quotes the worker's screen
    tick = _turn("user", "=== CONSTITUTION\n" + "x" * 600 + BRIEF)
    _rollout(day, "t", meta("a-tick", "2026-05-04T09:00:00Z"), tick)
    # the brief only in what the model said, or as a line that is not JSON
    _rollout(day, "m", meta("said-not-asked", "2026-05-04T09:00:00Z"), _turn("assistant", BRIEF))
    _rollout(day, "n", meta("torn", "2026-05-04T09:00:00Z"), '{"response_item" "user" ' + BRIEF)
    _rollout(day, "s", meta(["a", "list"], "2026-05-04T09:00:00Z"), brief)  # id not a string
    _rollout(day, "u", ["not", "a", "dict"], brief)
    (day / "rollout-big.jsonl").write_bytes(
        b"{" + b" " * (2 * 1024 * 1024) + b"\n" + brief.encode()
    )
    (day / "rollout-f.jsonl").write_bytes(b"\xff\xfe not json\n")
    deep = b"[" * 100_000 + b"\n"  # past Python's recursion limit, in either line
    (day / "rollout-deep.jsonl").write_bytes(deep + brief.encode())
    _rollout(day, "deep2", meta("deep", "2026-05-04T09:00:00Z"), deep.decode() + ctx)
    os.mkfifo(day / "rollout-g.jsonl")
    os.symlink("/dev/zero", day / "rollout-h.jsonl")
    (day / "rollout-dir.jsonl").mkdir()
    env = {"CODEX_HOME": str(home)}
    assert find_rollout(env, cwd, "w1", 0) == mine
    assert find_rollout(env, cwd, "w1", time.time() + 3600) is None  # all older
    assert find_rollout({"CODEX_HOME": str(tmp_path / "nohome")}, cwd, "w1", 0) is None
    assert find_rollout(env, cwd, "w9", 0) is None  # no brief of w9
    # through its profile: the home its worker's record names, under a HOME without one
    assert CODEX.find({"HOME": str(tmp_path)}, str(home), cwd, "w1", 0) == mine
    assert CODEX.find({"HOME": str(tmp_path)}, None, cwd, "w1", 0) is None


# -- opencode names its own conversation: its store ------------------------------------------


def store(home: Path) -> sqlite3.Connection:
    """An empty store with opencode 1.x's tables (the columns looop reads)."""
    db = home / ".local" / "share" / "opencode" / "opencode.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE session (id TEXT PRIMARY KEY, directory TEXT, time_created INTEGER)")
    con.execute(
        "CREATE TABLE message (id TEXT PRIMARY KEY, session_id TEXT, time_created INTEGER, "
        "time_updated INTEGER, data TEXT)"
    )
    con.execute(
        "CREATE TABLE part (id TEXT PRIMARY KEY, message_id TEXT, session_id TEXT, "
        "time_created INTEGER, time_updated INTEGER, data TEXT)"
    )
    return con


def conversation(
    con: sqlite3.Connection, sid: object, ms: object, where: object, first: list[tuple[str, str]]
) -> None:
    """A conversation made at `ms` in `where` whose messages are (role, text), in order."""
    con.execute("INSERT INTO session VALUES (?, ?, ?)", (sid, where, ms))
    for n, (role, text) in enumerate(first):
        mid, at = f"msg_{sid}_{n}", (ms if isinstance(ms, int) else 0) + n
        con.execute(
            "INSERT INTO message VALUES (?, ?, ?, ?, ?)",
            (mid, sid, at, at, json.dumps({"role": role})),
        )
        part = json.dumps({"type": "text", "text": text})
        con.execute(
            "INSERT INTO part VALUES (?, ?, ?, ?, ?, ?)", (f"prt_{mid}", mid, sid, at, at, part)
        )
    con.commit()


def test_opencode_id_is_the_earliest_session_since_the_start_that_opens_with_the_brief(
    tmp_path: Path,
) -> None:
    env, cwd = {"HOME": str(tmp_path)}, str(tmp_path)
    at = 1_790_000_000_000  # opencode's milliseconds
    con = store(tmp_path)
    tick = [("user", "=== CONSTITUTION\n" + "x" * 600 + BRIEF)]  # quotes a worker's screen
    mine = [("user", BRIEF), ("assistant", "ANSWER")]
    conversation(con, "ses_tick", at + 1000, cwd, tick)  # the pulse's tick, first
    conversation(con, "ses_mine", at + 2000, cwd, mine)
    conversation(con, "ses_other", at + 1500, cwd, [("user", BRIEF.replace("w1", "w2"))])
    conversation(con, "ses_later", at + 9000, cwd, mine)  # this worker's brief again, later
    conversation(con, "ses_old", at - 60_000, cwd, mine)  # before the start
    conversation(con, "ses_away", at + 500, "/elsewhere", mine)
    conversation(con, "$(reboot)", at + 100, cwd, mine)  # not an id
    conversation(con, "ses_said", at + 200, cwd, [("user", "hi"), ("assistant", BRIEF)])
    conversation(con, "ses_second", at + 300, cwd, [("user", "hi"), ("user", BRIEF)])
    since = at / 1000
    assert find_in_store(env, cwd, "w1", since) == "ses_mine"
    assert find_in_store(env, cwd, "w2", since) == "ses_other"
    assert find_in_store(env, cwd, "w3", since) is None
    xdg = {"XDG_DATA_HOME": str(tmp_path / ".local" / "share")}
    assert find_in_store(xdg, cwd, "w1", since) == "ses_mine"
    # the directory as the CLI resolved it: a symlink to it finds the same
    os.symlink(tmp_path, tmp_path / "link")
    assert find_in_store(env, str(tmp_path / "link"), "w1", since) == "ses_mine"
    # the brief only in a reply: no id
    con.execute("UPDATE message SET data = ? WHERE session_id IN ('ses_mine', 'ses_later')",
                (json.dumps({"role": "assistant"}),))  # fmt: skip
    con.commit()
    assert find_in_store(env, cwd, "w1", since) is None
    assert OPENCODE.find(env, None, cwd, "w2", since) == "ses_other"  # through its profile
    con.close()


@pytest.mark.parametrize("what", ["none", "symlink", "not a database", "other tables", "a dir"])
def test_a_missing_or_hostile_opencode_store_is_no_id(tmp_path: Path, what: str) -> None:
    db = tmp_path / ".local" / "share" / "opencode" / "opencode.db"
    db.parent.mkdir(parents=True)
    if what == "symlink":  # to a store that would name one
        conversation(store(tmp_path / "elsewhere"), "ses_mine", 10**13, str(tmp_path),
                     [("user", BRIEF)])  # fmt: skip
        os.symlink(tmp_path / "elsewhere" / ".local" / "share" / "opencode" / "opencode.db", db)
    elif what == "not a database":
        db.write_bytes(b"\xff\xfe not sqlite" * 100)
    elif what == "other tables":
        sqlite3.connect(db).execute("CREATE TABLE session (x)").connection.close()
    elif what == "a dir":
        db.mkdir()
    assert find_in_store({"HOME": str(tmp_path)}, str(tmp_path), "w1", 0) is None


def test_an_opencode_store_under_a_path_a_uri_reads_specially_is_found(tmp_path: Path) -> None:
    home = tmp_path / "a?b#c%20d"
    conversation(store(home), "ses_mine", 10**12, "/w", [("user", BRIEF)])
    assert find_in_store({"HOME": str(home)}, "/w", "w1", 0) == "ses_mine"
