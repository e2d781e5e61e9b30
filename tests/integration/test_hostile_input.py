"""Hostile input at the edges a user or an agent controls: arguments, environment, config and
state files. Each gets one line naming what is wrong (exit 1), writes nothing outside the data
dir, and never hangs or prints a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from looop.home import store
from looop.home.config import KNOBS, load_config, resolve_knobs
from looop.home.errors import CorruptState, LooopError
from looop.sessions.durations import parse_duration
from tests.helpers import Cli, clean_env

pytestmark = pytest.mark.timeout(60)


def _looop(
    data: Path, *args: str | bytes, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[bytes]:
    home = cwd or data.parent
    full = clean_env(home, data, LOOOP_CONFIG=str(home / "config.json"), **env)
    return subprocess.run(
        [sys.executable, "-m", "looop", *args],
        capture_output=True,
        env=full,
        timeout=30,
        cwd=str(cwd or data.parent),
    )


def _one_line_error(r: subprocess.CompletedProcess[bytes], needle: str) -> None:
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 1, (r.returncode, err)
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert needle in err, err


def test_invalid_utf8_argument_is_one_line_and_runs_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    r = _looop(data, "run", "--", b"touch made; echo \xff")
    _one_line_error(r, "not valid UTF-8")
    assert "\\xff" in r.stderr.decode()
    assert not (tmp_path / "made").exists() and not (data / "made").exists()
    assert not (data / "journal.md").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["goal", "write", b"g\xfe", "goal: x"],
        ["goal", "write", "g", b"body \xc3"],
        ["answer", b"w-1\x80", "yes"],
        ["send", "w", b"\xff"],
    ],
)
def test_invalid_utf8_anywhere_in_the_arguments(tmp_path: Path, args: list[str | bytes]) -> None:
    _one_line_error(_looop(tmp_path / "data", *args), "not valid UTF-8")


@pytest.mark.parametrize("bad", ["../../x", "/abs/path", "a*", "[ab]", ".hidden", "x" * 65, "a b"])
def test_worker_id_from_the_environment_is_validated(tmp_path: Path, bad: str) -> None:
    data = tmp_path / "data"
    for verb in (["ask", "-p", "hi?"], ["told"], ["claim", "job"]):
        r = _looop(data, *verb, LOOOP_SESSION_ID=bad, LOOOP_ASK_TIMEOUT_S="1")
        _one_line_error(r, "LOOOP_SESSION_ID")
    # nothing was created anywhere near: not in the data dir's parents, not as a stray file
    assert not (tmp_path / "x").exists() and not (tmp_path / "x-1.json").exists()
    assert not any((data / "asks").glob("*.json")) if (data / "asks").exists() else True


def test_worker_id_given_as_an_argument_is_validated(tmp_path: Path) -> None:
    r = _looop(tmp_path / "data", "ask", "../up", "-p", "q?")
    _one_line_error(r, "invalid worker id")


# ---------------------------------------------------------------- every number has a bound


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("interval", 1e12),
        ("interval", 10**25),
        ("max_next_interval", 1e9),
        ("session_ttl", 10**15),
        ("notify_failure_streak", 10**12),
        ("max_daily_usd", 1e300),
    ],
)
def test_config_numbers_past_their_bound_are_refused(
    tmp_path: Path, key: str, value: float
) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"default": "c", "runners": {"c": {"tick": "true"}}, key: value}))
    with pytest.raises(LooopError) as e:
        load_config(cfg)
    msg = str(e.value)
    assert f"key '{key}'" in msg and " to " in msg, msg


@pytest.mark.parametrize("raw", ["1" * 5000, "1e999", "NaN", "-Infinity", "[" * 3000 + "]" * 3000])
def test_config_json_python_chokes_on_is_one_line(tmp_path: Path, raw: str) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text('{"interval": ' + raw + "}")
    with pytest.raises(LooopError) as e:
        load_config(cfg)
    assert "not valid JSON" in str(e.value)


def test_every_knob_has_a_finite_upper_bound() -> None:
    for knob in KNOBS.values():
        if knob.kind == "bool":
            continue
        assert 0 < knob.maximum < float("inf"), knob.name
        if knob.default is not None:
            assert knob.default <= knob.maximum, knob.name
        with pytest.raises(ValueError):
            knob.from_env(str(int(knob.maximum) * 10 + 10))


def test_env_numbers_past_their_bound_warn_and_fall_back(tmp_path: Path) -> None:
    cfg = load_config(tmp_path / "none.json")
    warned: list[str] = []
    knobs = resolve_knobs(
        cfg,
        {"LOOOP_INTERVAL": "1e12", "LOOOP_TICK_TIMEOUT_SECS": "9" * 40, "LOOOP_ASK_POLL_MS": "0"},
        warned.append,
    )
    assert knobs.num("interval") == KNOBS["interval"].default
    assert knobs.num("tick_timeout_secs") == KNOBS["tick_timeout_secs"].default
    assert knobs.num("ask_poll_ms") == KNOBS["ask_poll_ms"].default
    assert len(warned) == 3 and all("ignoring LOOOP_" in w for w in warned)


def test_a_pulse_with_an_absurd_env_interval_still_beats(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (tmp_path / "config.json").write_text(
        json.dumps({"default": "c", "runners": {"c": {"tick": "true"}}, "max_daily_usd": 0})
    )
    r = _looop(data, "pulse", "--beats", "1", LOOOP_INTERVAL="1e12", LOOOP_BUSY_INTERVAL="inf")
    err = r.stderr.decode() + r.stdout.decode()
    assert r.returncode == 0, err
    assert "ignoring LOOOP_INTERVAL" in err and "Traceback" not in err


def test_a_sub_second_env_interval_is_said_with_its_fix_not_a_silent_60(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"default": "c", "runners": {"c": {}}}))
    r = _looop(tmp_path / "data", "status", LOOOP_INTERVAL="0.5")
    (line,) = [ln for ln in r.stdout.decode().splitlines() if "LOOOP_INTERVAL" in ln]
    assert "'0.5'" in line and "using 60" in line and "fix or unset LOOOP_INTERVAL" in line


@pytest.mark.parametrize("text", ["99999999999d", "1e400", "4000000000", "9" * 400 + "s"])
def test_durations_have_a_ceiling(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    "args",
    [
        ["down", "--grace", "nan"],
        ["down", "--grace", "inf"],
        ["down", "--grace", "1e300"],
        ["pulse", "--beats", "99999999999999999999"],
        ["journal", "-n", "99999999999999999999"],
        ["log", "pulse", "--since", "99999999999999999999999"],
        ["expect", "pulse", "x", "--timeout", "1e300"],
        ["wait", "--timeout", "99999999999d"],
        ["schedule", "write", "s", "--in", "-5s"],  # (past ten years saturates: not here)
        ["schedule", "write", "s", "--every", "1e400"],
        ["worker", "list", "--watch", "--interval", "nan"],
    ],
)
def test_flags_out_of_bounds_are_one_line(cli: Cli, args: list[str]) -> None:
    code, out, err = cli(*args)
    assert code == 2, (code, out, err)  # a usage error
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


# ---------------------------------------------------------------- state files in odd shapes


def test_state_files_that_are_fifos_or_directories_never_block(tmp_path: Path) -> None:
    fifo = tmp_path / "state.json"
    os.mkfifo(fifo)
    with pytest.raises(CorruptState):
        store.read_json(fifo)
    with pytest.raises(store.NotRegular):
        store.read_text(fifo)
    d = tmp_path / "dir.json"
    d.mkdir()
    with pytest.raises(CorruptState):
        store.read_json(d)


def test_a_config_that_is_a_fifo_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    os.mkfifo(tmp_path / "config.json")
    r = _looop(data, "tick")
    err = r.stderr.decode()
    assert r.returncode == 1 and "config" in err and "Traceback" not in err


# ---------------------------------------------------------------- untrusted text on a terminal

_OSC_TITLE = "\x1b]0;pwned\x07"
_OSC_CLIP = "\x1b]52;c;ZXZpbA==\x07"


def _no_raw_escape(text: str) -> None:
    assert "\x1b]" not in text and "\x07" not in text and "\u202e" not in text, text


def test_untrusted_text_is_defused_in_every_human_verb(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (tmp_path / "config.json").write_text(
        json.dumps({"default": "c", "runners": {"c": {"tick": "true"}}, "max_daily_usd": 0})
    )
    assert _looop(data, "goal", "write", "g", f"goal: x\n{_OSC_CLIP} body").returncode == 0
    sensor = '#!/bin/sh\nprintf \'%s\' \'{"signal":1,"detail":"\\u001b]0;t\\u0007"}\'\n'
    assert _looop(data, "sensor", "write", "s", sensor).returncode == 0
    asks = data / "asks"
    asks.mkdir(parents=True, exist_ok=True)
    (asks / "w-1.json").write_text(
        json.dumps({"v": 1, "id": "w-1", "worker": "w", "prompt": f"ok? {_OSC_TITLE}\u202e"})
    )
    r = _looop(data, "run", "--", f"printf '{_OSC_TITLE}out'; printf '{_OSC_CLIP}' >&2")
    assert r.returncode == 0, r.stderr
    for args in (
        ["asks"],
        ["tick", "--dry-run"],
        ["journal"],
        ["status"],
        ["goal", "list"],
        ["sensor", "list"],
    ):
        r = _looop(data, *args)
        _no_raw_escape(r.stdout.decode() + r.stderr.decode())
    r = _looop(data, "run", "--", f"printf '{_OSC_TITLE}'")
    _no_raw_escape(r.stdout.decode() + r.stderr.decode())
    assert "\\u001b]0;pwned" in r.stdout.decode()
    # --json stays exact: the prompt decodes to what the worker wrote
    rows = json.loads(_looop(data, "asks", "--json").stdout)
    assert rows[0]["prompt"] == f"ok? {_OSC_TITLE}\u202e"


_READS = [
    ["status"],
    ["status", "--json"],
    ["journal"],
    ["asks"],
    ["ls"],
    ["runs"],
    ["cost"],
    ["schedule", "list"],
    ["sensor", "list"],
    ["goal", "list"],
    ["worker", "list"],
    ["tick", "--dry-run"],
]


def test_pure_reads_create_nothing_in_a_new_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for args in _READS:
        r = _looop(data, *args)
        assert "Traceback" not in r.stderr.decode(), args
        assert not data.exists(), (args, sorted(str(p) for p in data.rglob("*")))


def test_pure_reads_work_on_a_read_only_data_dir(tmp_path: Path) -> None:
    import shlex

    data = tmp_path / "data"
    (tmp_path / "config.json").write_text(
        json.dumps({"default": "c", "runners": {"c": {"tick": "true"}}, "max_daily_usd": 0})
    )
    assert _looop(data, "goal", "write", "g", "goal: x").returncode == 0
    _looop(data, "tick")  # a failed beat: backoff, last failure, ledgers all on disk
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "true"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip("cannot make a private mount here")
    env = f"LOOOP_DATA_DIR={shlex.quote(str(data))} LOOOP_CONFIG={tmp_path}/config.json"
    looop = f"{shlex.quote(sys.executable)} -m looop"
    runs = "\n".join(
        f"{env} {looop} {' '.join(shlex.quote(a) for a in args)} >/dev/null 2>{tmp_path}/err.{i}"
        f" || echo {i} >> {tmp_path}/failed"
        for i, args in enumerate(_READS)
    )
    q = shlex.quote(str(data))
    body = f"mount --bind {q} {q} && mount -o remount,bind,ro {q} && ! touch {q}/w && {runs}"
    r = subprocess.run(["unshare", "-m", "sh", "-c", body], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    failed = (tmp_path / "failed").read_text().split() if (tmp_path / "failed").exists() else []
    shown = {_READS[int(i)][0]: (tmp_path / f"err.{i}").read_text() for i in failed}
    assert failed == [], shown


@pytest.mark.parametrize(
    "name", ["journal.md", "events.jsonl", "tick.log", ".last-tick-hash", "PLAYBOOK.md"]
)
def test_a_fifo_where_looop_keeps_a_file_never_hangs_a_verb(tmp_path: Path, name: str) -> None:
    data = tmp_path / "data"
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "default": "c",
                "runners": {"c": {"tick": 'echo \'{"action":"noop"}\' > .decision.json'}},
                "max_daily_usd": 0,
            }
        )
    )
    assert _looop(data, "tick").returncode == 0
    target = data / name
    target.unlink(missing_ok=True)
    os.mkfifo(target)
    for args in (["tick", "--force"], ["status"], ["journal"], ["tick", "--dry-run"], ["runs"]):
        r = _looop(data, *args)  # a hang fails here: _looop has a 30 s timeout
        err = r.stderr.decode()
        assert "Traceback" not in err and "internal error" not in err, (args, err)
        if r.returncode != 0:
            assert err.strip() or r.stdout.strip(), args


def test_a_runaway_body_on_stdin_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    r = subprocess.run(
        [sys.executable, "-m", "looop", "goal", "write", "g", "-"],
        input=b"x" * (5 << 20),
        capture_output=True,
        env=clean_env(tmp_path, data),
        timeout=30,
    )
    _one_line_error(r, "MiB")
    assert not (data / "goals" / "g.md").exists()


def test_paths_the_system_refuses_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    for where in (tmp_path / ("n" * 300), tmp_path / "afile" / "sub", Path("/dev/null")):
        for args in (["status"], ["tick"], ["goal", "write", "g", "x"]):
            r = _looop(where, *args, cwd=tmp_path)
            _one_line_error(r, str(where)[:20])


def test_looops_own_screen_codes_still_reach_the_terminal(tmp_path: Path) -> None:
    # `worker list -w` clears the screen itself: the defusing stream must not eat looop's own
    env = clean_env(tmp_path, tmp_path / "data")
    p = subprocess.Popen(
        [sys.executable, "-m", "looop", "worker", "list", "-w", "-n", "0.2"],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert p.stdout is not None
        head = p.stdout.read(200).decode()
    finally:
        p.kill()
        p.wait(timeout=10)
    assert head.startswith("\x1b[H\x1b[2J") and "\\u001b" not in head


@pytest.mark.parametrize(
    ("blocked", "args"),
    [
        ("claims", ["claim", "x", "--session", "w1"]),
        ("goals", ["goal", "write", "g1", "ship it"]),
    ],
)
def test_a_file_where_a_data_dir_belongs_is_one_line(
    tmp_path: Path, blocked: str, args: list[str]
) -> None:
    data = tmp_path / "data"
    assert _looop(data, "init").returncode == 0
    target = data / blocked
    if target.is_dir():
        import shutil

        shutil.rmtree(target)
    target.write_text("not a directory\n")
    r = _looop(data, *args)
    err = r.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err and "internal error" not in err, err
    assert r.returncode == 1, (r.returncode, err)
    assert len(err.strip().splitlines()) == 1, err
    assert blocked in err, err
    assert not list((data / "crash").glob("*")) if (data / "crash").is_dir() else True


def test_a_data_dir_under_proc_is_one_line(tmp_path: Path) -> None:
    r = _looop(Path("/proc/self/nowhere/data"), "goal", "write", "g1", "ship it", cwd=tmp_path)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 1, (r.returncode, err)
    assert "internal error" not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    "args",
    [
        ["host", "install", "h1", "--wheel", "a\0b"],
        ["run", "--", "touch made\0"],
        ["tell", "w1", "hi\0there"],
    ],
)
def test_a_nul_in_an_argument_is_one_line_and_runs_nothing(
    cli: Cli, data: Path, args: list[str]
) -> None:
    # no exec'd argv can hold one, but looop's entry may be called with one (in-process)
    code, out, err = cli(*args)
    assert code == 1, (code, err)
    assert err.strip().splitlines() == [
        f"looop: argument {len(args)} holds a NUL byte; pass text without it"
    ]
    assert out == ""
    assert not (data / "journal.md").exists() and not (data / "made").exists()


def test_a_closed_stdout_or_stderr_is_a_quiet_sink_not_a_crash(tmp_path: Path) -> None:
    """`looop … >&-`: what would be said goes nowhere, the work is done, and no file looop
    opens takes the closed stream's number."""
    data = tmp_path / "data"
    env = clean_env(tmp_path, data, LOOOP_CONFIG=str(tmp_path / "config.json"))

    def closed(streams: str, *args: str) -> subprocess.CompletedProcess[bytes]:
        line = f'exec "$@" {streams}'
        return subprocess.run(
            ["/bin/sh", "-c", line, "sh", sys.executable, "-m", "looop", *args],
            capture_output=True,
            env=env,
            timeout=30,
        )

    got = closed(">&-", "claim", "job", "--session", "w1")
    assert (got.returncode, got.stderr) == (0, b""), got.stderr
    assert json.loads((data / "claims" / "job.json").read_text())["session"] == "w1"
    got = closed(">&- <&-", "status")
    assert (got.returncode, got.stderr) == (0, b""), got.stderr
    got = closed("2>&-", "goal", "rm", "nosuch")
    assert (got.returncode, got.stdout) == (1, b"")
    assert not (data / "crash").exists()
