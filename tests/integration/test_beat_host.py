"""The beat host: `looop tick` served by a child of one preloaded parent, as if run in place."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from looop import beathost
from looop.core import cgroup
from looop.sessions.codewatch import CodeWatch
from tests.helpers import clean_env, listens, process_ended, wait_until
from tests.procwatch import cgroup_of, cgroups_here

pytestmark = pytest.mark.timeout(90)

LOOOP = str(Path(sys.executable).parent / "looop")
# Each sensor says who ran it: its parent's name (the host's child is `looop-tick`), the
# caller's variable and directory, and its umask.
WHO = (
    "#!/bin/sh\n"
    'printf \'%s %s %s %s\\n\' "$(cat /proc/$PPID/comm)" "${MARK:-none}" "$(umask)" "$PPID"'
    ' > "$WHO_FILE"\n'
    "echo '{\"signal\":{}}'\n"
)
NOOP = 'printf \'%s\' \'{"action":"noop","journal":"t"}\' > .decision.json'


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    (d / "sensors").mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"tick_command": NOOP, "worker_command": "x"}))
    script = d / "sensors" / "who.sh"
    script.write_text(WHO)
    script.chmod(0o755)
    return d


@pytest.fixture
def env(tmp_path: Path, data: Path) -> Iterator[dict[str, str]]:
    e = clean_env(tmp_path, data, WHO_FILE=str(tmp_path / "who"), LOOOP_BEAT_HOST_IDLE="60")
    beathost.stop_beat_host(e)
    yield e
    beathost.stop_beat_host(e)


def looop(
    env: dict[str, str], cwd: Path, *args: str, imports: bool = False
) -> subprocess.CompletedProcess[str]:
    """`looop ARGS` as a user runs it; imports: with `-X importtime`, so stderr lists what the
    caller's own interpreter imported."""
    cmd = [sys.executable, "-X", "importtime", "-m", "looop"] if imports else [LOOOP]
    return subprocess.run(
        [*cmd, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def tick(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return looop(env, cwd, "tick", *args)


def warm(env: dict[str, str], cwd: Path) -> int:
    """A first tick (run in place; it starts the host) and the host's pid once it listens."""
    first = tick(env, cwd)
    assert first.returncode == 0, first.stderr
    wait_until(lambda: beathost.beat_host_pid(env) is not None, timeout=30)
    pid = beathost.beat_host_pid(env)
    assert pid is not None
    wait_until(
        lambda: listens(beathost.beat_socket(beathost.beat_key(env), env["LOOOP_RUNTIME_DIR"])),
        timeout=30,
    )
    return pid


def _host_of(data: Path) -> int | None:
    """The beat host of the data dir as ps shows it (`looop: beat host <home>`; a spare has
    another name), None when none runs."""
    for p in psutil.process_iter(["cmdline", "name"]):
        title = " ".join(p.info["cmdline"] or [])
        if p.info["name"] == "looop-beat" and title.startswith(f"looop: beat host {data}"):
            return int(p.pid)
    return None


def who(tmp_path: Path) -> list[str]:
    return (tmp_path / "who").read_text().split()


def test_a_tick_is_served_by_the_host_as_if_it_ran_in_place(
    data: Path, env: dict[str, str], tmp_path: Path
) -> None:
    host = warm(env, tmp_path)
    assert psutil.Process(host).name() == "looop-beat"
    work = tmp_path / "work"
    work.mkdir()
    old = os.umask(0o027)
    try:
        served = tick(dict(env, MARK="caller"), work)
    finally:
        os.umask(old)
    assert served.returncode == 0, served.stderr
    parent, mark, umask, _pid = who(tmp_path)
    assert parent == "looop-tick"  # a child of the host ran the beat …
    assert (mark, umask) == ("caller", "0027")  # … with the caller's env and umask
    assert "world unchanged" in served.stderr
    # the same beat in place says the same words and exits alike
    here = tick(dict(env, MARK="caller", LOOOP_BEAT_HOST_IDLE="0"), work)
    assert here.returncode == 0
    assert who(tmp_path)[0] != "looop-tick"

    def words(err: str) -> list[str]:  # what it says, not the clock or how long sensors took
        return [re.sub(r"\(\d+\.\ds\)", "(Ns)", ln.split("] ", 1)[-1]) for ln in err.splitlines()]

    assert words(served.stderr) == words(here.stderr)
    assert beathost.beat_host_pid(env) == host  # one host served them all
    # the kernel reaped the beats it forked: no zombie waits on the host, only its spare
    wait_until(lambda: names(psutil.Process(host).children()) == ["looop-spare"], timeout=30)


def names(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        try:
            out.append(p.name() if p.status() != psutil.STATUS_ZOMBIE else "zombie")
        except psutil.NoSuchProcess:
            continue
    return out


PEN_SENSOR = (
    "#!/bin/sh\n"
    '(grep "^0::" /proc/self/cgroup || grep freezer /proc/self/cgroup) | head -n 1 | '
    'cut -d: -f3 > "$WHO_FILE.cg"\n'
    # a background job is no group leader: setsid (and env) exec in place, so $! is the sleep
    'env -i setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $! > "$WHO_FILE.left"\n'
    "echo '{\"signal\":{}}'\n"
)


@pytest.mark.skipif(not cgroups_here(), reason="no cgroup can be made here")
def test_a_served_beats_sensors_are_born_in_the_pen_its_spare_waited_in(
    data: Path, env: dict[str, str], tmp_path: Path
) -> None:
    """The spare waits in a pen of its own (core/cgroup.Pen): the beat it becomes moves no
    process for its sensors; what they leave still dies, and no pen outlives its beat."""
    warm(env, tmp_path)
    host = psutil.Process(beathost.beat_host_pid(env))
    spares: list[psutil.Process] = []

    def forked() -> bool:  # the warm beat used the spare: the host forks the next one after
        try:
            spares[:] = [p for p in host.children() if p.name() == "looop-spare"]
        except psutil.NoSuchProcess:  # a child that ended between the listing and its name
            return False
        return bool(spares)

    wait_until(forked, timeout=10, what="the beat host's next spare")
    (spare,) = spares
    penned = lambda: cgroup_of(spare.pid).rpartition("/")[2] == f"{cgroup.PEN}.{spare.pid}"  # noqa: E731
    wait_until(penned, timeout=10, what="the spare in its pen (it moves there once forked)")
    script = data / "sensors" / "pen.sh"
    script.write_text(PEN_SENSOR)
    script.chmod(0o755)
    served = tick(env, tmp_path)
    assert served.returncode == 0, served.stderr
    beat = int(who(tmp_path)[3])
    assert beat == spare.pid  # the spare became the beat …
    born = (tmp_path / "who.cg").read_text().strip()
    assert born.rpartition("/")[2] == f"{cgroup.PEN}.{beat}"  # … and its sensors were born there
    assert process_ended(int((tmp_path / "who.left").read_text())), "it outlived its beat"
    mounts = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/freezer")
    gone = lambda: not any(os.path.exists(m + born) for m in mounts)  # noqa: E731
    wait_until(gone, timeout=10, what="the beat's pen removed once it ended")


def test_a_failing_beat_exits_with_the_same_code_through_the_host(
    data: Path, env: dict[str, str], tmp_path: Path
) -> None:
    warm(env, tmp_path)
    (data / "config.json").write_text(json.dumps({"tick_command": "exit 3", "worker_command": "x"}))
    (data / "sensors" / "new.sh").write_text('#!/bin/sh\necho \'{"signal":{"n":1}}\'\n')
    (data / "sensors" / "new.sh").chmod(0o755)
    served = tick(env, tmp_path, "--force")
    assert who(tmp_path)[0] == "looop-tick"
    here = tick(dict(env, LOOOP_BEAT_HOST_IDLE="0"), tmp_path, "--force")
    assert served.returncode == here.returncode == 1
    assert "runner exited 3" in served.stderr and "runner exited 3" in here.stderr


def test_ctrl_c_reaches_the_beat_and_a_killed_caller_ends_it(
    data: Path, env: dict[str, str], tmp_path: Path
) -> None:
    warm(env, tmp_path)
    slow = data / "sensors" / "slow.sh"
    started = tmp_path / "started"
    slow.write_text(f"#!/bin/sh\necho $PPID > {started}\nsleep 30\necho '{{}}'\n")
    slow.chmod(0o755)
    for sig, code in ((signal.SIGINT, 130), (signal.SIGKILL, -9)):
        started.unlink(missing_ok=True)
        proc = subprocess.Popen(
            [LOOOP, "tick"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_until(lambda: started.exists() and started.read_text().strip() != "", timeout=30)
            beat = int(started.read_text())
            assert psutil.Process(beat).name() == "looop-tick"
            proc.send_signal(sig)
            assert proc.wait(timeout=20) == code
            # the beat itself is over too, Ctrl-C'd or left without its caller
            wait_until(lambda b=beat: process_ended(b), timeout=20)
        finally:
            proc.kill()
            proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()


def spare_of(host: int) -> int:
    """The pid of the host's spare (its one child waiting for the next request)."""
    spares: list[int] = []

    def found() -> bool:
        spares[:] = [
            c.pid for c in psutil.Process(host).children() if names([c]) == ["looop-spare"]
        ]
        return len(spares) == 1

    wait_until(found, timeout=30)
    return spares[0]


def test_a_spare_that_dies_is_replaced_and_one_never_outlives_its_host(
    data: Path, env: dict[str, str], tmp_path: Path
) -> None:
    host = warm(env, tmp_path)
    first = spare_of(host)
    os.kill(first, signal.SIGKILL)  # OOM-killed, a stray kill: the host forks another
    wait_until(lambda: process_ended(first), timeout=30)
    second = spare_of(host)
    assert second != first
    served = tick(env, tmp_path)
    assert served.returncode == 0, served.stderr
    assert who(tmp_path)[0] == "looop-tick"  # the same host served it
    assert beathost.beat_host_pid(env) == host
    spare = spare_of(host)
    os.kill(host, signal.SIGKILL)  # the host dies hard: its spare goes with it
    wait_until(lambda: process_ended(spare), timeout=30)
    after = tick(env, tmp_path)  # nobody listens: the beat runs in place, as without a host
    assert after.returncode == 0, after.stderr
    assert who(tmp_path)[0] != "looop-tick"
    # … and started a new host for the next beat
    wait_until(lambda: beathost.beat_host_pid(env) not in (None, host), timeout=30)


def test_a_served_beat_finishes_when_its_host_goes(
    data: Path, env: dict[str, str], tmp_path: Path
) -> None:
    host = warm(env, tmp_path)
    slow = data / "sensors" / "slow.sh"
    started, go = tmp_path / "started", tmp_path / "go"
    slow.write_text(
        f"#!/bin/sh\necho $PPID > {started}\n"
        f"while [ ! -e {go} ]; do sleep 0.05; done\necho '{{}}'\n"
    )
    slow.chmod(0o755)
    proc = subprocess.Popen(
        [LOOOP, "tick"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_until(lambda: started.exists() and started.read_text().strip() != "", timeout=30)
        assert psutil.Process(int(started.read_text())).name() == "looop-tick"
        os.kill(host, signal.SIGKILL)
        wait_until(lambda: process_ended(host), timeout=30)
        go.touch()
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert b"sensors ok" in err and b"noop" in err  # the beat ran to its end
    finally:
        proc.kill()
        proc.wait()


def test_bad_requests_never_end_the_host(data: Path, env: dict[str, str], tmp_path: Path) -> None:
    host = warm(env, tmp_path)
    path = beathost.beat_socket(beathost.beat_key(env), env["LOOOP_RUNTIME_DIR"])
    stdio = [0, 1, 2]
    bad: list[tuple[bytes, list[int]]] = [
        (b"garbage\0\0", []),
        (b"argv=tick\0cwd=/\0\0", []),  # no stdio came with it
        (b"argv=worker\0argv=start\0cwd=/\0\0", stdio),  # not a tick
        (b"argv=tick\0cwd=/\0env==x\0\0", stdio),  # a variable without a name
        (b"argv=tick\0cwd=relative\0\0", stdio),
        (b"argv=tick\0cwd=/\0umask=0o22\0\0", stdio),
        (b"argv=tick\0cwd=/\0limit=RLIMIT_BOGUS:1:2\0\0", stdio),
        (b"argv=tick\0cwd=/\0\xff\xfe\0\0", stdio),  # not UTF-8, no field name
        (b"argv=" + b"x" * (5 << 20), stdio),  # too long, never ended
        (b"argv=tick\0cwd=/", stdio),  # never ended: the host stops waiting
        (b"", []),
    ]
    for body, fds in bad:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(20)
            s.connect(path)
            try:
                if fds:
                    socket.send_fds(s, [body[:65536]], fds)
                    s.sendall(body[65536:])
                elif body:
                    s.sendall(body)
                s.shutdown(socket.SHUT_WR)
                reply = s.recv(256)
            except (BrokenPipeError, ConnectionResetError):
                reply = b""  # the host stopped reading an oversized request: fine
        assert not reply.startswith(b"pid "), body[:40]
    served = tick(env, tmp_path)
    assert served.returncode == 0 and who(tmp_path)[0] == "looop-tick"
    assert beathost.beat_host_pid(env) == host


def _start(
    env: dict[str, str], cwd: Path, *args: str, imports: bool = False
) -> subprocess.CompletedProcess[str]:
    return looop(env, cwd, "worker", "start", *args, imports=imports)


def _kill(env: dict[str, str], cwd: Path, wid: str) -> None:
    looop(env, cwd, "kill", wid)


def test_a_worker_start_is_served_by_the_host_as_if_it_ran_in_place(
    data: Path, env: dict[str, str], tmp_path: Path
) -> None:
    warm(env, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    # The worker prints who started it (the supervisor's env is the caller's), then waits.
    line = 'echo "mark=$MARK"; exec sleep 600 # {{prompt_file}}'
    served = _start(
        dict(env, MARK="served"), work, "w1", "--command", line, "brief one", imports=True
    )
    here = _start(
        dict(env, MARK="here", LOOOP_BEAT_HOST_IDLE="0"),
        *(work, "w2", "--command", line, "b2"),
        imports=True,
    )
    try:
        assert served.returncode == here.returncode == 0, served.stderr + here.stderr
        assert served.stdout.replace("w1", "W") == here.stdout.replace("w2", "W")
        assert "start-worker w1" in served.stdout
        # the caller served by the host never loaded the move; the one in place did
        assert "looop.workers.launch" not in served.stderr
        assert "looop.workers.launch" in here.stderr
        for wid, mark in (("w1", "served"), ("w2", "here")):
            log = data / "sessions" / wid / "output.log"
            want = f"mark={mark}"
            wait_until(lambda log=log, want=want: want in log.read_text("utf-8", "replace"), 30)
            assert (
                (data / "prompts" / f"{wid}.md")
                .read_text()
                .rstrip()
                .endswith("brief one" if wid == "w1" else "b2")
            )
        journal = (data / "journal.md").read_text()
        assert "w1" in journal and "w2" in journal
        # a refusal exits alike through the host and in place, with the same one line
        again = _start(env, work, "w1", "--command", line, "x")
        again_here = _start(dict(env, LOOOP_BEAT_HOST_IDLE="0"), work, "w1", "--command", line, "x")
        assert again.returncode == again_here.returncode != 0
        assert again.stderr == again_here.stderr
        assert "already running" in again.stderr
    finally:
        _kill(env, work, "w1")
        _kill(env, work, "w2")


def _imported(importtime: str) -> set[str]:
    """The modules a `-X importtime` run lists on its stderr."""
    lines = [ln for ln in importtime.splitlines() if ln.startswith("import time:")]
    return {ln.rsplit("|", 1)[-1].strip() for ln in lines}


def test_a_kill_served_by_the_host_costs_its_caller_no_heavy_import(
    data: Path, env: dict[str, str], tmp_path: Path
) -> None:
    """`looop kill` is a hot verb: the caller the host serves only connects and waits, so it
    loads neither the move, nor `signal` (its enums cost half a bare interpreter's start),
    nor what only the host checks (core.cgroup)."""
    warm(env, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    started = _start(env, work, "w1", "--command", "exec sleep 600 # {{prompt_file}}", "b")
    assert started.returncode == 0, started.stderr
    killed = looop(env, work, "kill", "w1", imports=True)
    assert killed.returncode == 0, killed.stderr
    assert "kill-worker w1" in killed.stdout
    mods = _imported(killed.stderr)
    assert "looop.hot.beatclient" in mods and "looop.beathost" not in mods  # it asked the host
    # nor what names the host (the key is FNV in Python, not _blake2, a shared library)
    heavy = {"signal", "enum", "looop.core.cgroup", "_blake2", "looop.act.executor"}
    assert not mods & heavy, sorted(mods)
    wait_until(lambda: "killed" in (data / "sessions" / "w1" / "status.json").read_text(), 30)


def test_a_request_says_exactly_what_the_caller_has() -> None:
    env = {"A": "x=y", "B": "naïve\nline", "EMPTY": "", "ODD": "\udcff"}
    raw = beathost.encode_request(["tick", "--force"], "/some where", env)
    req = beathost.decode_request(raw)
    assert req is not None and not req.stop
    assert (req.argv, req.cwd, req.env) == (["tick", "--force"], "/some where", env)
    mask = os.umask(0o022)
    os.umask(mask)
    assert req.umask == mask and "RLIMIT_NOFILE" in req.limits
    with pytest.raises(ValueError, match="NUL"):
        beathost.encode_request(["tick"], "/", {"A": "x\0y"})
    assert beathost.decode_request(b"stop\0\0") is not None


def test_no_host_when_turned_off_and_a_bad_setting_runs_in_place(
    data: Path, env: dict[str, str], tmp_path: Path
) -> None:
    off = dict(env, LOOOP_BEAT_HOST_IDLE="0")
    for _ in range(2):
        assert tick(off, tmp_path).returncode == 0
    time.sleep(0.5)  # a host would have to start: give it the chance to show up
    assert beathost.beat_host_pid(off) is None
    bad = tick(dict(env, LOOOP_BEAT_HOST_IDLE="soon"), tmp_path)
    assert bad.returncode == 0
    assert "LOOOP_BEAT_HOST_IDLE" in bad.stderr  # the knob says what is wrong
    assert who(tmp_path)[0] != "looop-tick"


def test_an_idle_host_goes_and_looop_down_stops_one(
    data: Path, env: dict[str, str], tmp_path: Path
) -> None:
    short = dict(env, LOOOP_BEAT_HOST_IDLE="3")
    first = tick(short, tmp_path)
    assert first.returncode == 0, first.stderr
    # A few seconds' idle: the host is found by its command line while it waits
    wait_until(lambda: _host_of(data) is not None, timeout=30)
    host = _host_of(data)
    assert host is not None
    wait_until(lambda: not psutil.pid_exists(host), timeout=30)
    assert beathost.beat_host_pid(short) is None
    host = warm(env, tmp_path)
    down = subprocess.run([LOOOP, "down"], env=env, cwd=tmp_path, capture_output=True, timeout=60)
    assert down.returncode == 0, down.stderr
    wait_until(lambda: not psutil.pid_exists(host), timeout=30)
    assert beathost.beat_host_pid(env) is None


@pytest.mark.parametrize("inotify", [True, False], ids=["inotify", "stat"])
def test_the_host_knows_when_its_code_changed(tmp_path: Path, inotify: bool) -> None:
    f = tmp_path / "mod.py"
    f.write_text("x = 1\n")
    st = f.stat()
    files = {str(f): (st.st_size, st.st_mtime_ns)}
    watch = CodeWatch(files, use_inotify=inotify)
    assert (watch.fd >= 0) == inotify
    (tmp_path / ".mod.py.swp").write_text("an editor's")  # a neighbour: not code it runs
    assert watch.fresh()
    f.write_text("x = 22\n")
    assert not watch.fresh()
    assert not watch.fresh()  # and stays stale
    gone = CodeWatch(files, use_inotify=inotify)  # changed before the watch began
    assert not gone.fresh()
    f.unlink()
    assert not CodeWatch(files, use_inotify=inotify).fresh()


def test_the_host_watches_every_looop_file_it_preloaded() -> None:
    """An edit to any room the host loaded (the beat's loop/, the executor's act/, not only
    the hot room) makes it stale, so a beat never runs older code than its caller's."""
    probe = (
        "import json, sys\n"
        "from looop import beathost\n"
        "watched = beathost._preload()\n"
        "loaded = [m.__file__ for n, m in list(sys.modules.items())"
        " if n.split('.')[0] == 'looop' and getattr(m, '__file__', None)]\n"
        "print(json.dumps([sorted(watched), sorted(loaded)]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    watched, loaded = json.loads(out.stdout)
    assert sorted(loaded) == watched
    rooms = {Path(f).parent.name for f in watched}
    assert {"loop", "act", "hot", "sessions", "looop"} <= rooms


def test_a_caller_in_another_mount_namespace_beats_in_place(
    data: Path, env: dict[str, str], tmp_path: Path
) -> None:
    warm(env, tmp_path)
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("unshare -m is not permitted here")
    inside = subprocess.run(
        ["unshare", "-m", LOOOP, "tick"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert inside.returncode == 0, inside.stderr
    assert who(tmp_path)[0] != "looop-tick"  # the host sees another filesystem: not served
