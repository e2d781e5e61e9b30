"""The click-free fast verbs and their click faces are one behaviour: for every argv in the
table (good and bad), stdout, stderr, the exit code and every file written are the same
whichever path serves it. This is the test that keeps the two honest."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.home.lastoutput import read_mark
from looop.home.sessionfiles import live
from looop.home.store import write_json
from looop.remote import hosts as reg
from looop.remote.hosts import HostError
from looop.sessions.client import kill, wait
from looop.sessions.spawner import spawn
from looop.sessions.state import SessionError, get_session
from tests.clocks import FixedClock, StillClock
from tests.helpers import clean_env, run_cli

ESC = "\x1b"

# (argv, extra env). The data dir holds a live session `w1` (cat), a finished one `done`,
# queued tells for w1, a claim `held` by w1 and a claim `mine` by w2.
CASES: list[tuple[list[str], dict[str, str]]] = [
    (["version"], {}),
    (["--version"], {}),
    (["-V"], {}),
    (["status"], {}),
    (["status", "--json"], {}),
    (["claim", "x"], {}),
    (["claim", "x", "--session", "w1"], {}),
    (["claim", "--session", "w1", "x"], {}),
    (["claim", "x"], {"LOOOP_SESSION_ID": "w2"}),
    (["claim", "held"], {"LOOOP_SESSION_ID": "w2"}),
    (["claim", "held", "--session", "w1"], {}),
    (["claim", "mine"], {"LOOOP_SESSION_ID": "w2"}),
    (["claim", "bad/name"], {}),
    (["claim", ".hidden"], {}),
    (["claim", "x", "--session", "bad id"], {}),
    (["claim", "x"], {"LOOOP_SESSION_ID": "../up"}),
    (["claim"], {}),
    (["claim", "a", "b"], {}),
    (["claim", "x", "--session"], {}),
    (["unclaim", "held"], {"LOOOP_SESSION_ID": "w2"}),
    (["unclaim", "held"], {"LOOOP_SESSION_ID": "w1"}),
    (["unclaim", "mine", "--session", "w2"], {}),
    (["unclaim", "nothing"], {}),
    (["told", "w1"], {}),
    (["told"], {"LOOOP_SESSION_ID": "w1"}),
    (["told"], {}),
    (["told", "ghost"], {}),
    (["told", "bad..id"], {}),
    (["told", "w1", "extra"], {}),
    (["tell", "w1", "use", "the", "staging", "db"], {}),
    (["tell", "w1", f"{ESC}[31mred{ESC}[0m and {ESC}]0;title\x07 é"], {}),
    (["tell", "w1", "  "], {}),
    (["tell", "done", "hi"], {}),
    (["tell", "ghost", "hi"], {}),
    (["tell", "../x", "hi"], {}),
    (["tell", "w1"], {}),
    (["cost", "report", "session", "w1", "claude", "0.42"], {}),
    (["cost", "session", "w1", "claude", "$1.5"], {}),
    (["cost", "report", "session", "w1", "claude", "abc"], {}),
    (["cost", "report", "session", "w1", "claude", "0"], {}),
    (["cost", "report", "session", "w1", "claude", "1e999"], {}),
    (["cost", "report", "k", f"i{ESC}[1m", "r\u202e", "0.1"], {}),
    (["cost", "report", "a", "b", "c"], {}),
    (["cost"], {}),
    (["cost", "week"], {}),
    (["cost", "all", "--by", "runner", "--json"], {}),
    (["cost", "--json", "week", "--by=day"], {}),
    (["cost", "today"], {"TZ": "Asia/Kolkata"}),
    (["cost", "month"], {}),
    (["cost", "week", "all"], {}),
    (["cost", "--by", "planet"], {}),
    (["cost", "--by"], {}),
    (["cost", "--by", "kind", "--by", "day"], {}),
    (["cost", "--json", "--json"], {}),
    (["cost", "--help"], {}),
    (["status"], {"LOOOP_MAX_DAILY_USD": "0.01", "LOOOP_MAX_DECIDES_PER_HOUR": "abc"}),
    (["status", "--json"], {"TZ": "Asia/Kolkata"}),
    (["status", "--jsn"], {}),
    (["status", "extra"], {}),
    (["ls"], {}),
    (["ls", "-a"], {}),
    (["ls", "--all"], {}),
    (["ls", "--json"], {}),
    (["ls", "-a", "--json", "-a"], {}),
    (["ls", "--json"], {"LOOOP_WORKER_STUCK_SECS": "1"}),
    (["ls"], {"LOOOP_WORKER_STUCK_SECS": "many"}),
    (["ls", "-x"], {}),
    (["ls", "w1"], {}),
    (["ls", "--help"], {}),
    (["worker", "list"], {}),
    (["worker", "list", "-a", "--json"], {}),
    (["worker", "ls", "--all"], {}),
    (["w", "list", "-a"], {}),
    (["worker", "list", "w1"], {}),
    (["status"], {"LOOOP_DATA_DIR": "", "HOME": ""}),
    (["ls"], {"LOOOP_DATA_DIR": "", "HOME": ""}),
    (["told", "w1"], {"LOOOP_DATA_DIR": "", "HOME": ""}),
    (["claim", "x"], {"LOOOP_DATA_DIR": "", "HOME": ""}),
    (["tell", "w1", "hi"], {"LOOOP_DATA_DIR": "", "HOME": ""}),
    (["cost", "report", "a", "b", "c", "1"], {"LOOOP_DATA_DIR": "", "HOME": ""}),
    (["cost", "week"], {"LOOOP_DATA_DIR": "", "HOME": ""}),
]


def _file_at(data: Path, rel: str) -> None:
    p = data / rel
    if p.is_dir():
        shutil.rmtree(p)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("not a dir\n")


def _dir_at(data: Path, rel: str) -> None:
    (data / rel).mkdir(parents=True, exist_ok=True)


# (argv, extra env, what is broken in the data dir first): a user's damaged data dir.
BROKEN: list[tuple[list[str], dict[str, str], str]] = [
    (["told", "w1"], {}, "file:tells/consumed"),
    (["told", "w1"], {}, "garbage:tells/w1-3.json"),
    (["told", "w1"], {}, "dir:tells/w1-4.json"),
    (["tell", "w1", "hi"], {}, "file:tells"),
    (["tell", "w1", "hi"], {}, "dir:events.jsonl"),
    (["tell", "w1", "hi"], {}, "file:tells/consumed"),
    (["claim", "x"], {}, "file:claims"),
    (["claim", "x"], {}, "garbage:claims/x.json"),
    (["claim", "x"], {}, "dir:claims/x.json"),
    (["unclaim", "x"], {}, "garbage:claims/x.json"),
    (["cost", "report", "a", "b", "c", "1"], {}, "dir:cost.jsonl"),
    (["cost", "report", "a", "b", "c", "1"], {}, "file:.lock"),
    (["cost", "week"], {}, "ledger:cost.jsonl"),
    (["cost", "all", "--by", "worker"], {"TZ": "Asia/Kolkata"}, "ledger:cost.jsonl"),
    (["cost", "week", "--json"], {}, "garbage:cost.jsonl"),
    (["cost", "week"], {}, "dir:cost.jsonl"),
    (["cost", "all"], {}, "garbage:.cost-days.json"),
    (["cost", "all"], {}, "garbage:runs/r1/result.json"),
    (["cost", "week", "--json"], {}, "decide:runs/r2/result.json"),
    (["status"], {}, "garbage:config.json"),
    (["status"], {}, "dir:config.json"),
    (["status"], {}, "garbage:cost.jsonl"),
    (["status"], {}, "dir:cost.jsonl"),
    (["status"], {}, "garbage:.cost-unmetered"),
    (["status"], {}, "garbage:.decide-ledger.json"),
    (["status"], {}, "garbage:events.jsonl"),
    (["status"], {}, "dir:events.jsonl"),
    (["status"], {}, "dir:journal.md"),
    (["status"], {}, "garbage:.tick-backoff"),
    (["status"], {}, "garbage:.last-failure.json"),
    (["status"], {}, "file:goals"),
    (["status"], {}, "dir:goals/x.md"),
    (["status"], {}, "garbage:snapshots/sys-asks.json"),
    (["status"], {}, "file:.lock"),
    (["status", "--json"], {}, "garbage:snapshots/sys-schedules.json"),
    (["ls"], {}, "garbage:config.json"),
    (["ls"], {}, "unknown:config.json"),
    (["status"], {}, "unknown:config.json"),
    (["ls"], {}, "garbage:verify/w1.json"),
    (["ls"], {}, "dir:verify/w1.json"),
    (["ls"], {}, "garbage:asks/a1.json"),
    (["ls", "--json"], {}, "file:asks"),
    (["ls", "--json"], {}, "dir:asks/a2.json"),
    (["ls"], {}, "file:.lock"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data dir with a live session (cat) and a finished one, shared by every case."""
    data = tmp_path_factory.mktemp("parity") / "data"
    data.mkdir()
    env = dict(os.environ)
    spawn(data, "w1", ["cat"], cwd=data, env=env)
    spawn(data, "done", ["true"], cwd=data, env=env)
    wait(data, "done", 30, FixedClock())
    assert get_session(data, "w1").alive
    # its supervisor marks its start's output time a moment after the start: both faces
    # must see the mark (or a loaded machine shows one face without it, the next with it)
    deadline = time.monotonic() + 30
    while read_mark(str(data / "sessions" / "w1")) is None:
        assert time.monotonic() < deadline, "w1's supervisor never marked its output time"
        time.sleep(0.02)
    # a flag with escapes: status and ls print it, each face filtering it the same way
    (data / "sessions" / "w1" / "note").write_text(f"needs {ESC}[31mhelp{ESC}[0m {ESC}]0;t\x07")
    try:
        yield data
    finally:
        kill(data, "w1")


def _reset(data: Path) -> None:
    """Everything but sessions/ back to the seeded state."""
    for entry in data.iterdir():
        if entry.name == "sessions":
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    (data / "tells").mkdir()
    for n, msg in ((1, "first"), (2, f"{ESC}[1mbold{ESC}[0m second")):
        write_json(data / "tells" / f"w1-{n}.json", {"v": 1, "id": f"w1-{n}", "msg": msg})
    write_json(data / "claims" / "held.json", {"v": 1, "name": "held", "session": "w1"})
    write_json(data / "claims" / "mine.json", {"v": 1, "name": "mine", "session": "w2"})


def _same_run(text: str) -> str:
    """What legitimately differs between two runs masked: the random part of a temp file's
    name and the clock second and pid in a crash file's name."""
    text = re.sub(r"\.tmp\.\d+\.[0-9a-f]{6}", ".tmp.N", text)
    return re.sub(r"crash-\d{8}-\d{6}-\d+\.txt", "crash-T.txt", text)


def _files(data: Path) -> dict[str, bytes]:
    """Every file outside sessions/, a claim's random nonce masked; a crash file by name only
    (its traceback names the face's own frames)."""
    out: dict[str, bytes] = {}
    for p in sorted(data.rglob("*")):
        rel = _same_run(p.relative_to(data).as_posix())
        if rel.startswith("sessions") or not p.is_file():
            continue
        if rel.startswith("crash/"):
            out[rel] = b""
            p.unlink()
            continue
        raw = p.read_bytes()
        if rel.startswith("claims/") and rel.endswith(".json"):
            raw = raw.split(b'"nonce":"', 1)[0]
        if rel == ".cost-totals.json":  # names its ledger by inode: each face has its own
            raw = re.sub(rb'"ledger":\[\d+,\d+\]', b'"ledger":[D,I]', raw)
        if rel == ".cost-days.json":  # the same: each ledger file by its inode
            raw = re.sub(rb'\[\d+,\d+,(\d+),"', rb'[D,I,\1,"', raw)
        out[rel] = raw
    return out


def _run(
    world: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    extra: dict[str, str],
    fast: bool,
    broken: str = "",
    clock: FixedClock | None = None,
) -> tuple[int, str, str, dict[str, bytes]]:
    _reset(world)
    if broken:
        how, rel = broken.split(":", 1)
        if how == "record":  # the home started worker `rel` on a host
            write_json(
                world / "hosts" / "workers" / f"{rel}.json", {"v": 1, "id": rel, "host": "h"}
            )
        elif how == "ledger":  # a worker's and a decide's rows, today by the tests' clock
            (world / rel).write_text(
                '{"cost_usd":0.25,"id":"w1","kind":"session","runner":"claude",'
                '"ts":"2025-06-15T15:00:00Z"}\n{"cost_usd":1.5,"id":"t1","kind":"tick",'
                '"runner":"pi","ts":"2025-06-15T14:00:00Z"}\n'
            )
        elif how == "decide":  # a decide whose runner reported no cost
            write_json(world / rel, {"ts": 1_749_999_000.0})
        elif how == "file":
            _file_at(world, rel)
        elif how == "dir":
            _dir_at(world, rel)
        else:
            (world / rel).parent.mkdir(parents=True, exist_ok=True)
            (world / rel).write_text('{"runners": {}, "bogus_key": 1}' if how == "unknown" else "{")
    env = clean_env(tmp_path, world, **extra)
    env = {k: v for k, v in env.items() if v}
    with monkeypatch.context() as m:
        if not fast:
            m.setattr("looop.verbs.table._fast", lambda *a: False)
        code, out, err = run_cli(capsys, *argv, env=env, clock=clock or FixedClock())
    return code, out, _same_run(err), _files(world)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("argv", "extra"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_fast_and_click_faces_agree(
    world: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    extra: dict[str, str],
) -> None:
    for _ in range(3):  # the world moved between the two faces: compare again
        clock = StillClock(mono=time.monotonic())  # a live worker's quiet the same in both
        mark = read_mark(str(world / "sessions" / "w1"))
        fast = _run(world, tmp_path, capsys, monkeypatch, argv, extra, fast=True, clock=clock)
        slow = _run(world, tmp_path, capsys, monkeypatch, argv, extra, fast=False, clock=clock)
        if read_mark(str(world / "sessions" / "w1")) == mark:
            break
    assert fast == slow


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("argv", "extra", "broken"), BROKEN, ids=[f"{' '.join(c[0])} [{c[2]}]" for c in BROKEN]
)
def test_fast_and_click_faces_agree_on_a_damaged_data_dir(
    world: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    extra: dict[str, str],
    broken: str,
) -> None:
    for _ in range(3):  # w1 printed between the two faces (an earlier case typed into it)
        clock = StillClock(mono=time.monotonic())  # a live worker's quiet the same in both
        mark = read_mark(str(world / "sessions" / "w1"))
        fast = _run(world, tmp_path, capsys, monkeypatch, argv, extra, True, broken, clock)
        slow = _run(world, tmp_path, capsys, monkeypatch, argv, extra, False, broken, clock)
        if read_mark(str(world / "sessions" / "w1")) == mark:
            break
    assert "Traceback" not in fast[2]
    assert fast == slow


def test_the_table_exercises_both_outcomes(
    world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a table of no-ops: the fast path really serves these, and they really write."""
    code, out, _, files = _run(
        world, tmp_path, capsys, monkeypatch, ["tell", "w1", "hi"], {}, fast=True
    )
    assert (code, out) == (0, "queued w1-3\n")
    assert b'"msg":"hi"' in files["tells/w1-3.json"]
    assert b'"event":"tell"' in files["events.jsonl"]
    code, out, _, files = _run(world, tmp_path, capsys, monkeypatch, ["told", "w1"], {}, True)
    assert out == "first\nbold second\n"  # escapes stripped for a pipe, as click does
    assert "tells/consumed/w1-2.json" in files
    code, _, err, _ = _run(
        world, tmp_path, capsys, monkeypatch, ["claim", "held"], {"LOOOP_SESSION_ID": "w2"}, True
    )
    assert code == 1 and "held by live session 'w1'" in err


@pytest.mark.parametrize("sid", ["w1", "done", "ghost", "..", "a/b", "", "x" * 65, "bad id"])
def test_the_light_liveness_read_is_get_sessions(world: Path, sid: str) -> None:
    try:
        want: bool | None = get_session(world, sid).alive
    except SessionError:
        want = None
    assert live(str(world), sid) == want


def test_status_and_ls_are_served_click_free(
    world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a table the fast path always declines: status and ls answer here; a config that
    warns sends ls to click, which writes the warning as an event; status shows it itself."""
    from looop.verbs.table import _fast

    _reset(world)
    env = {k: v for k, v in clean_env(tmp_path, world).items() if v}
    assert _fast(["status"], env, FixedClock())
    assert _fast(["ls", "-a"], env, FixedClock())
    out = capsys.readouterr().out
    assert "workers:   1 live, 1 finished" in out
    assert [line.split()[0] for line in out.splitlines()[-3:]] == ["pulse", "done", "w1"]
    # `worker list` is `ls` by its first name: the same face, the same table
    assert _fast(["worker", "list", "-a"], env, FixedClock())
    assert capsys.readouterr().out.splitlines()[-3:] == out.splitlines()[-3:]
    (world / "config.json").write_text('{"bogus_key": 1}')
    assert not _fast(["ls"], env, FixedClock())
    # status prints it all, the unknown key among it, and exits 1 (the config is wrong)
    with pytest.raises(SystemExit) as ended:
        _fast(["status"], env, FixedClock())
    assert ended.value.code == 1
    assert "unknown key 'bogus_key'" in capsys.readouterr().out


# shot, send and key against a second data dir: `w1` is live and shows colours, typing into it
# changes nothing either face could see (no echo, its input read into /dev/null), so each
# case runs twice on the same screen and log; `done` is over (its screen replays its log);
# `far` runs here too, but a record says the home started it on a host. `log` reads the log
# from disk, live or over.
QUIET = (
    "stty -echo; printf '\\033[31mred\\033[0m plain\\n\\033[1mbold\\033[0m ready'; "
    "exec cat >/dev/null"
)
DRIVE: list[tuple[list[str], dict[str, str], str]] = [
    (["shot", "w1"], {}, ""),
    (["shot", "w1", "--ansi"], {}, ""),
    (["shot", "w1", "--json"], {}, ""),
    (["shot", "w1", "--plain"], {}, ""),
    (["shot", "--format", "json", "w1"], {}, ""),
    (["shot", "w1", "--format=ansi", "--json"], {}, ""),
    (["shot", "w1", "--no-trim"], {}, ""),
    (["shot", "w1", "--no-trim", "--trim"], {}, ""),
    (["shot", "w1", "--no-trim", "--trim", "--ansi", "--no-trim"], {}, ""),
    (["shot", "--json", "--", "w1"], {}, ""),  # as the home forwards it to a host
    (["ss", "w1"], {}, ""),
    (["screenshot", "w1", "--json"], {}, ""),
    (["shot", "done"], {}, ""),
    (["shot", "done", "--json"], {}, ""),
    (["shot", "ghost"], {}, ""),
    (["shot", "pulse"], {}, ""),
    (["shot", "looop-w1"], {}, ""),
    (["shot", " w1"], {}, ""),
    (["shot", "bad id"], {}, ""),
    (["shot", "../w1"], {}, ""),
    (["shot", "w1", "--format", "bogus"], {}, ""),
    (["shot", "w1", "--format"], {}, ""),
    (["shot", "w1", "w2"], {}, ""),
    (["shot"], {}, ""),
    (["shot", "w1", "--help"], {}, ""),
    (["shot", "far"], {}, "record:far"),
    (["shot", "w1"], {"LOOOP_DATA_DIR": "", "HOME": ""}, ""),
    (["send", "w1", "hello", "world"], {}, ""),
    (["send", "w1", "-n", "typed"], {}, ""),
    (["send", "--json", "w1", "hi"], {}, ""),
    (["send", "w1", "--no-enter", "x", "--json"], {}, ""),
    (["send", "-n", "--json", "--", "w1", "-x", "--json"], {}, ""),
    (["send", "w1", "-x"], {}, ""),
    (["send", "w1", f"{ESC}[31mé"], {}, ""),
    (["send", "w1"], {}, ""),
    (["send", "done", "hi"], {}, ""),
    (["send", "ghost", "hi"], {}, ""),
    (["send", "pulse", "hi"], {}, ""),
    (["send", "looop-w1", "hi", "--json"], {}, ""),
    (["send", "", "hi"], {}, ""),
    (["send", "far", "hi"], {}, "record:far"),
    (["send", "w1", "hi"], {"LOOOP_DATA_DIR": "", "HOME": ""}, ""),
    (["key", "w1", "Tab"], {}, ""),
    (["key", "w1", "Up", "C-a", "Enter", "--json"], {}, ""),
    (["key", "--json", "--", "w1", "Enter"], {}, ""),
    (["key", "w1", "Bogus"], {}, ""),
    (["key", "w1", "Tab", "Bogus"], {}, ""),
    (["key", "w1"], {}, ""),
    (["key", "w1", "-x"], {}, ""),
    (["key", "done", "Enter"], {}, ""),
    (["key", "done", "Bogus"], {}, ""),
    (["key", "ghost", "Enter"], {}, ""),
    (["key", "pulse", "Enter"], {}, ""),
    (["key", "far", "Enter"], {}, "record:far"),
    (["log", "w1"], {}, ""),
    (["log", "w1", "--raw"], {}, ""),
    (["log", "done"], {}, ""),
    (["logs", "done", "-n", "2"], {}, ""),
    (["log", "done", "--tail=1", "--raw"], {}, ""),
    (["log", "done", "-n", "5", "--tail", "1"], {}, ""),
    (["log", "done", "-n", "0"], {}, ""),
    (["log", "done", "-n", "999999999"], {}, ""),
    (["log", "done", "-n", "1000000001"], {}, ""),
    (["log", "done", "-n", "-1"], {}, ""),
    (["log", "done", "-n", "²"], {}, ""),
    (["log", "done", "-n"], {}, ""),
    (["log", "done", "--grep", "t"], {}, ""),
    (["log", "--grep=^t", "--", "done"], {}, ""),
    (["log", "done", "--grep", "green", "-n", "1", "--raw"], {}, ""),
    (["log", "done", "--grep", "("], {}, ""),
    (["log", "done", "--grep", "-x"], {}, ""),
    (["log", "done", "--grep", ""], {}, ""),
    (["log", "done", "-f"], {}, ""),
    (["log", "done", "--since", "4"], {}, ""),
    (["log", "done", "--json"], {}, ""),
    (["log", "ghost"], {}, ""),
    (["log", "ghost", "--grep", "("], {}, ""),
    (["log", "pulse"], {}, ""),
    (["log", "looop-done"], {}, ""),
    (["log", "bad id"], {}, ""),
    (["log", "done", "w1"], {}, ""),
    (["log"], {}, ""),
    (["log", "far"], {}, "record:far"),
    (["log", "done"], {"LOOOP_DATA_DIR": "", "HOME": ""}, ""),
]


def _ready(log: Path, timeout: float = 30.0) -> None:
    """Wait (polling, with a deadline) until the session's log shows it has printed."""
    deadline = time.monotonic() + timeout
    while not (log.exists() and b"ready" in log.read_bytes()):
        assert time.monotonic() < deadline, f"timed out waiting for {log}"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def drive_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    data = tmp_path_factory.mktemp("drive") / "data"
    data.mkdir()
    env = dict(os.environ)
    for sid in ("w1", "far"):
        spawn(data, sid, ["sh", "-c", QUIET], cwd=data, env=env)
    lines = "one\\ntwo \\033[32mgreen\\033[0m\\nthree\\n"
    spawn(data, "done", ["printf", lines], cwd=data, env=env)
    wait(data, "done", 30, FixedClock())
    for sid in ("w1", "far"):  # its echo is off once it has printed
        _ready(data / "sessions" / sid / "output.log")
    try:
        yield data
    finally:
        kill(data, "w1")
        kill(data, "far")


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("argv", "extra", "broken"), DRIVE, ids=[f"{c[0]!r} {c[2]}".strip() for c in DRIVE]
)
@pytest.mark.process
def test_shot_send_and_key_faces_agree(
    drive_world: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    extra: dict[str, str],
    broken: str,
) -> None:
    fast = _run(drive_world, tmp_path, capsys, monkeypatch, argv, extra, True, broken)
    slow = _run(drive_world, tmp_path, capsys, monkeypatch, argv, extra, False, broken)
    assert "Traceback" not in fast[2]
    assert fast == slow


@pytest.mark.process  # a line sent with Enter waits (bounded) for w1's echo, which never comes
def test_shot_send_and_key_are_served_click_free_only_for_a_live_local_session(
    drive_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a table the fast path always declines: a live session here is served (its
    screen, its reply); a dead one, a remote worker and a bad key name are not its."""
    from looop.verbs.table import _fast

    _reset(drive_world)
    env = {k: v for k, v in clean_env(tmp_path, drive_world).items() if v}
    assert _fast(["shot", "w1"], env, FixedClock())
    assert capsys.readouterr().out == "red plain\nbold ready\n"
    assert _fast(["shot", "w1", "--json"], env, FixedClock())
    shot = json.loads(capsys.readouterr().out)
    assert (shot["format"], shot["cols"], shot["rows"]) == ("json", 80, 24)
    assert {"char": "r", "col": 0, "row": 0, "fg": "idx1"}.items() <= shot["cells"][0].items()
    assert _fast(["key", "w1", "Tab", "--json"], env, FixedClock())
    assert json.loads(capsys.readouterr().out)["sent"] == 1
    assert _fast(["send", "--json", "w1", "héllo"], env, FixedClock())
    assert json.loads(capsys.readouterr().out)["sent"] == len("héllo\r".encode())
    assert not _fast(["shot", "done"], env, FixedClock())
    assert not _fast(["send", "pulse", "hi"], env, FixedClock())
    # a worker in a Kubernetes Job is click's (its backend is driven from here); one on an
    # SSH host is forwarded there — here the host is not registered, said as click says it
    reg.save(drive_world, reg.kube_host(drive_world, "k", "k8s://c/ns", image="img:1", cap=0))
    (drive_world / "hosts" / "workers").mkdir(parents=True, exist_ok=True)
    (drive_world / "hosts" / "workers" / "far.json").write_text('{"v": 1, "host": "k"}')
    assert not _fast(["shot", "far"], env, FixedClock())
    assert not _fast(["key", "far", "Enter"], env, FixedClock())
    (drive_world / "hosts" / "workers" / "far.json").write_text('{"v": 1, "host": "h"}')
    with pytest.raises(HostError, match=r"^no host h "):
        _fast(["send", "far", "hi"], env, FixedClock())
    (drive_world / "hosts" / "workers" / "far.json").write_text('{"v": 1, "host": "k"}')
    with pytest.raises(SessionError, match="unknown key `Bogus`"):
        _fast(["key", "w1", "Bogus"], env, FixedClock())
    assert _fast(["log", "done", "-n", "2"], env, FixedClock())  # over: its log is on disk
    assert capsys.readouterr().out == "two green\nthree\n"
    assert not _fast(["log", "far"], env, FixedClock())
    assert not _fast(["log", "done", "-f"], env, FixedClock())
