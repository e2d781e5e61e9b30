"""The worker contract's click-free verbs (claim, unclaim, tell, told, cost report) and their
click faces are one behaviour: for every argv in the table (good and bad), stdout, stderr, the
exit code and every file written are the same whichever path serves it. This is the test that
keeps the two honest. The verbs a human types have click's face alone: what they print is
asserted at the end."""

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
from looop.sessions.client import kill, wait
from looop.sessions.spawner import spawn
from looop.sessions.state import SessionError, get_session
from tests.clocks import FixedClock, StillClock
from tests.helpers import clean_env, run_cli

ESC = "\x1b"

# (argv, extra env). The data dir holds a live session `w1` (cat), a finished one `done`,
# queued tells for w1, a claim `held` by w1 and a claim `mine` by w2.
CASES: list[tuple[list[str], dict[str, str]]] = [
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
    (["told", "w1"], {"LOOOP_DATA_DIR": "", "HOME": ""}),
    (["claim", "x"], {"LOOOP_DATA_DIR": "", "HOME": ""}),
    (["tell", "w1", "hi"], {"LOOOP_DATA_DIR": "", "HOME": ""}),
    (["cost", "report", "a", "b", "c", "1"], {"LOOOP_DATA_DIR": "", "HOME": ""}),
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
            m.setattr("looop.verbs.console.serve", lambda *a: False)
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


def test_status_and_ls_say_the_fleet_and_a_wrong_config(
    world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a human reads of status and ls (click's face, the only one): the workers counted
    and listed; a config with an unknown key warned of, status exiting 1 after it all."""
    _reset(world)
    env = {k: v for k, v in clean_env(tmp_path, world).items() if v}
    code, out, _ = run_cli(capsys, "status", env=env, clock=FixedClock())
    assert code == 0 and "workers:   1 live, 1 finished" in out
    code, out, _ = run_cli(capsys, "ls", "-a", env=env, clock=FixedClock())
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[-3:]] == ["pulse", "done", "w1"]
    # `worker list` is `ls` by its first name: the same table
    listed = run_cli(capsys, "worker", "list", "-a", env=env, clock=FixedClock())[1]
    # ages come from the processes' real run time: a second may tick between the two readings
    aged = [re.sub(r"\b\d+[smhd]\b", "AGE", line) for line in (listed, out)]
    assert aged[0].splitlines()[-3:] == aged[1].splitlines()[-3:]
    (world / "config.json").write_text('{"bogus_key": 1}')
    code, out, _ = run_cli(capsys, "status", env=env, clock=FixedClock())
    assert code == 1 and "unknown key 'bogus_key'" in out


# shot, send, key and log against a second data dir: `w1` is live and shows colours (no echo,
# its input read into /dev/null); `done` is over; `far` runs here too, but a record says the
# home started it on a host.
QUIET = (
    "stty -echo; printf '\\033[31mred\\033[0m plain\\n\\033[1mbold\\033[0m ready'; "
    "exec cat >/dev/null"
)


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


@pytest.mark.process  # a line sent with Enter waits (bounded) for w1's echo, which never comes
def test_shot_send_key_and_log_answer_a_human(
    drive_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A live session's screen and the reply to what is typed into it, a finished one's log;
    a worker on a host that is not registered and a bad key name each said in one line."""
    _reset(drive_world)
    env = {k: v for k, v in clean_env(tmp_path, drive_world).items() if v}

    def looop(*argv: str) -> tuple[int, str, str]:
        return run_cli(capsys, *argv, env=env, clock=FixedClock())

    assert looop("shot", "w1") == (0, "red plain\nbold ready\n", "")
    code, out, _ = looop("shot", "w1", "--json")
    shot = json.loads(out)
    assert (code, shot["format"], shot["cols"], shot["rows"]) == (0, "json", 80, 24)
    assert {"char": "r", "col": 0, "row": 0, "fg": "idx1"}.items() <= shot["cells"][0].items()
    assert json.loads(looop("key", "w1", "Tab", "--json")[1])["sent"] == 1
    sent = json.loads(looop("send", "--json", "w1", "héllo")[1])["sent"]
    assert sent == len("héllo\r".encode())
    assert looop("log", "done", "-n", "2") == (0, "two green\nthree\n", "")
    (drive_world / "hosts" / "workers").mkdir(parents=True, exist_ok=True)
    (drive_world / "hosts" / "workers" / "far.json").write_text('{"v": 1, "host": "h"}')
    code, _, err = looop("send", "far", "hi")
    assert code == 1 and err.startswith("looop: worker far: no host h ")
    code, _, err = looop("key", "w1", "Bogus")
    assert code == 1 and "unknown key `Bogus`" in err and len(err.splitlines()) == 1
