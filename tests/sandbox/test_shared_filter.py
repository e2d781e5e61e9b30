"""One network filter per home (sandbox/netfilter.py, started by sandbox/boxhost.py): sandboxed
workers with different domain lists share it, yet each reaches only its own domains; no srt
process stays beside a worker, and the sandbox host (srt's node, which only wraps) can go while
boxes keep their network; a filter that died is started again by the next sandboxed start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import psutil
import pytest

from looop.home.clock import SystemClock
from looop.home.paths import Paths
from looop.home.where import runtime_base
from looop.sandbox import boxhost
from tests.helpers import until
from tests.sandbox.test_sandboxed_worker import Box, Server

pytestmark = pytest.mark.timeout(180)

PROBE = r"""
r="$LOOOP_WORKSPACE/results"
c() { k=$1; shift; out=$(curl -s -m 10 "$@" 2>/dev/null); echo "$k=${out:-none}" >> "$r"; }
c a "http://127.0.0.1:$A/"
c b "http://127.0.0.1:$B/"
echo done=1 >> "$r"
exec sleep 600
"""
# Probes once it is told to (a file in its workspace), then again at each new `go`.
LATER = r"""
r="$LOOOP_WORKSPACE/results"; g="$LOOOP_WORKSPACE/go"
c() { k=$1; shift; out=$(curl -s -m 10 "$@" 2>/dev/null); echo "$k=${out:-none}" >> "$r"; }
while [ ! -e "$g" ]; do sleep 0.05; done
c a "http://127.0.0.1:$A/"
c b "http://127.0.0.1:$B/"
echo done=1 >> "$r"
exec sleep 600
"""


def _box(tmp_path: Path, srt: Path, a: Server, b: Server) -> Box:
    box = Box(tmp_path, srt, "on")
    config = json.loads((box.data / "config.json").read_text())
    for name, server in (("ra", a), ("rb", b)):
        config["runners"][name] = {
            "worker": "true {{prompt_file}}",
            "sandbox": {"domains": [f"127.0.0.1:{server.port}"]},
        }
    (box.data / "config.json").write_text(json.dumps(config))
    box.env = {**box.env, "A": str(a.port), "B": str(b.port)}
    return box


def _results(box: Box, wid: str) -> dict[str, str]:
    clock = SystemClock()
    deadline = clock.monotonic() + 60
    path = Paths.at(box.data).rooms / wid / "work" / "results"
    while "done=1" not in (path.read_text() if path.exists() else ""):
        assert clock.monotonic() < deadline, f"{wid} never finished its probes"
        time.sleep(0.05)  # polled: nothing outside the box is told when a probe ends
    return box.results(wid)


def _hosts(box: Box) -> list[psutil.Process]:
    """This home's sandbox hosts (srt's node, which wraps): named looop-sbxhost, in its data
    dir."""
    return _home_procs(box, lambda p: p.info["name"] == "looop-sbxhost")


def _filters(box: Box) -> list[psutil.Process]:
    """This home's network filters: `python -m looop.sandbox.netfilter`, in its data dir, as ps
    shows it (`looop: network filter <socket>`, core/proctitle.py)."""
    return _home_procs(
        box, lambda p: (p.info["cmdline"] or [""])[0].startswith("looop: network filter ")
    )


def _home_procs(box: Box, which: Callable[[psutil.Process], bool]) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            ours = which(p) and p.status() != psutil.STATUS_ZOMBIE
            if ours and p.cwd() == str(box.data):
                out.append(p)
        except psutil.Error:
            continue
    return out


def _srt_beside(box: Box) -> list[str]:
    """srt (node) processes run for this home's boxes (`node srt -s SETTINGS -c LINE`, the
    settings under the data dir): none should stay beside a worker."""
    out = []
    for p in psutil.process_iter(["name", "cmdline"]):
        line = " ".join(p.info["cmdline"] or [])
        if p.info["name"] == "node" and str(box.data) in line:
            out.append(line[:160])
    return out


class Lab(NamedTuple):
    box: Box
    a: Server
    b: Server


@pytest.fixture
def lab(tmp_path: Path, srt: Path) -> Iterator[Lab]:
    """A home whose runners ra and rb each allow one of two servers; down at the end."""
    a, b = Server("from-a"), Server("from-b")
    box = _box(tmp_path, srt, a, b)
    yield Lab(box, a, b)
    box.looop("down")
    a.close()
    b.close()


def test_two_workers_share_one_filter_and_each_reaches_only_its_own_domains(lab: Lab) -> None:
    box, a, b = lab
    box.start("wa", PROBE, "--runner", "ra")
    box.start("wb", PROBE, "--runner", "rb")
    ra, rb = _results(box, "wa"), _results(box, "wb")
    assert ra["a"] == "from-a" and rb["b"] == "from-b"
    assert ra["b"] != "from-b" and rb["a"] != "from-a"  # each refused the other's domain
    assert a.hits == 1 and b.hits == 1
    assert len(_filters(box)) == 1  # one filter for the home, shared
    assert len(_hosts(box)) <= 1  # and at most one wrapper, until it goes idle
    assert _srt_beside(box) == []  # no srt process per worker
    assert _relays(box) == []  # nor a relay: each box handed its ports to the filter


# Prints its proxy credentials (USER:TOKEN) where the test reads them: a box's leak.
LEAK = 'echo "creds=${HTTP_PROXY#http://}" | sed s/@.*// >> "$LOOOP_WORKSPACE/results"\n'
# Box B: looks into looop's runtime dirs, then (once it is handed box A's credentials, as if A
# had printed them where B reads) tries to be A on its own ports and at A's door.
STRANGER = (
    LEAK
    + r"""
r="$LOOOP_WORKSPACE/results"; g="$LOOOP_WORKSPACE/go"
c() { k=$1; shift; out=$(curl -s -m 10 "$@" 2>/dev/null); echo "$k=${out:-none}" >> "$r"; }
echo "records=$(cat "$RT"/net-*.boxes/*.json 2>/dev/null | grep -c allowed)" >> "$r"
echo "listed=$(ls -A "$RT" "/tmp/looop-$(id -u)" 2>/dev/null | grep -v : | tr '\n' ' ')" >> "$r"
echo ready=1 >> "$r"
while [ ! -e "$g" ]; do sleep 0.05; done
p="http://$(cat "$g")@localhost:3128"
c http --proxy "$p" "http://127.0.0.1:$A/"
c socks --proxy "socks5h://$(cat "$g")@localhost:1080" "http://127.0.0.1:$A/"
c own "http://127.0.0.1:$A/"
export HTTP_PROXY="$p" LOOOP_SESSION_ID=wa
echo "told=$("$LOOOP_BIN" told wa 2>&1 | tr '\n=' '  ')" >> "$r"
if "$LOOOP_BIN" flag wa forged >/dev/null 2>&1; then f=ok; else f=no; fi
echo "flag=$f" >> "$r"
echo done=1 >> "$r"
exec sleep 600
"""
)


def test_a_box_is_a_stranger_to_every_other_box(lab: Lab) -> None:
    """Box B cannot read looop's runtime dir (the filter's records of every box), and even
    with box A's credentials in hand it is not answered as A: not on its own proxy ports (the
    filter binds each connection to the box whose port it came in on), not at A's door, and
    A's domain stays closed to it."""
    box, a, _ = lab
    net = boxhost.filter_socket(_home(box))
    box.env["RT"] = os.path.dirname(net)
    box.start("wa", LEAK + PROBE, "--runner", "ra")
    assert box.looop("tell", "wa", "STEER-FOR-A").returncode == 0
    box.start("wb", STRANGER, "--runner", "rb")
    got = _results(box, "wa")
    assert got["a"] == "from-a"
    room = Paths.at(box.data).rooms / "wb" / "work"
    assert until(lambda: "ready=1" in _text(room / "results"), 60)
    (room / "go").write_text(got["creds"])
    stranger = _results(box, "wb")
    assert stranger["records"] == "0"
    assert stranger["listed"].split() == [os.path.basename(net)]  # the filter's socket alone
    assert stranger["http"] == stranger["socks"] == "none"  # A's credentials on B's ports
    assert stranger["own"] != "from-a" and a.hits == 1
    assert "STEER-FOR-A" not in stranger["told"] and stranger["flag"] == "no"
    tokens = {got["creds"].split(":")[1], stranger["creds"].split(":")[1]}
    records = "".join(p.read_text() for p in Path(net[:-5] + ".boxes").glob("*.json"))
    assert len(tokens) == 2 and not any(t in records for t in tokens)  # its own, kept by no file


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _relays(box: Box) -> list[str]:
    """srt's relays (socat) from a box's proxy ports to this home's filter."""
    net = boxhost.filter_socket(_home(box))
    out = []
    for p in psutil.process_iter(["name", "cmdline"]):
        line = " ".join(p.info["cmdline"] or [])
        if p.info["name"] == "socat" and f"UNIX-CONNECT:{net}" in line:
            out.append(line)
    return out


def _home(box: Box) -> boxhost.Home:
    return boxhost.Home(runtime_base(box.env), str(box.data), box.env)


def test_a_box_that_cannot_hand_its_ports_over_gets_srts_relays(
    lab: Lab, srt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the hand-over fails (here a netjoin that always fails), srt's own relays start in
    the box, as before looop's hand-over: its network still goes through the home's filter,
    to its own domain only."""
    box, a, b = lab
    box.start("wa", PROBE, "--runner", "ra")  # a box of ra, for its settings
    assert _results(box, "wa")["a"] == "from-a"
    settings = json.loads((box.data / "sandbox" / "wa" / "srt.json").read_text())
    failing = tmp_path / "netjoin.py"
    failing.write_text("raise SystemExit(1)\n")
    monkeypatch.setattr(boxhost, "NETJOIN", str(failing))
    lib = boxhost.library(str(srt))
    assert lib is not None
    get = "curl -s -m 10 --noproxy '' http://127.0.0.1:{}/"
    line = f"echo a=$({get.format(a.port)}); echo b=$({get.format(b.port)}); echo done; sleep 60"
    wrapped = boxhost.wrap(_home(box), lib, settings, line)
    run = subprocess.Popen(
        ["/bin/sh", "-c", boxhost.as_exec(wrapped)],
        env=box.env,
        cwd=box.home,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert run.stdout is not None
        said = [run.stdout.readline().strip() for _ in range(3)]
        assert said[2] == "done", said
        assert len(_relays(box)) == 2  # srt's two, HTTP and SOCKS, while the box runs
    finally:
        run.kill()
        run.wait(10)
    assert said[0] == "a=from-a" and said[1] != "b=from-b"
    assert b.hits == 0


def _bridges(host: psutil.Process) -> list[psutil.Process]:
    """srt's bridge (socat) that this host started."""
    return [c for c in host.children() if c.name() == "socat"]


def test_running_boxes_keep_their_network_when_the_sandbox_host_goes(lab: Lab) -> None:
    """The wrapper is needed only to wrap: with it gone (idle, or killed here), a box already
    running still reaches its own domain through the filter, and still only that."""
    box, a, b = lab
    box.start("wa", LATER, "--runner", "ra")
    for host in _hosts(box):
        bridges = _bridges(host)
        os.kill(host.pid, signal.SIGKILL)
        host.wait(10)
        for bridge in bridges:  # srt's socat, which a host killed outright leaves behind
            bridge.kill()
    assert _hosts(box) == []
    (Paths.at(box.data).rooms / "wa" / "work" / "go").touch()
    got = _results(box, "wa")
    assert got["a"] == "from-a" and got["b"] != "from-b"
    assert a.hits == 1 and b.hits == 0


def test_the_filter_outlives_the_worker_whose_run_began_it(lab: Lab) -> None:
    """A worker restarted after its filter died gets a new one: the restart wraps again inside
    the worker's run, whose launcher starts the filter; the worker's supervisor adopts it and
    sweeps the run's leftovers when the worker ends — the filter is looop's own (named
    looop-netfilter), spared, and the other boxes keep their network."""
    box = lab.box
    box.start("wa", PROBE, "--runner", "ra")
    assert _results(box, "wa")["a"] == "from-a"
    [old] = _filters(box)
    os.kill(old.pid, signal.SIGKILL)
    old.wait(10)
    (Paths.at(box.data).rooms / "wa" / "work" / "results").unlink()
    done = box.looop("restart", "wa")  # its session keeps the launcher: it wraps anew,
    assert done.returncode == 0, done.stderr  # bound to the filter alive now
    got = _results(box, "wa")
    assert got["a"] == "from-a" and got["b"] != "from-b"
    [first] = _filters(box)
    assert first.ppid() != 1 or os.getpid() == 1  # adopted by wa's supervisor
    box.start("wb", LATER, "--runner", "rb")
    done = box.looop("kill", "wa")
    assert done.returncode == 0, done.stderr
    assert box.wait("wa") != 124
    (Paths.at(box.data).rooms / "wb" / "work" / "go").touch()
    got = _results(box, "wb")
    assert got["b"] == "from-b" and got["a"] != "from-a"
    assert [p.pid for p in _filters(box)] == [first.pid]  # the same filter, never swept


def test_a_filter_that_died_is_started_again_by_the_next_start(lab: Lab) -> None:
    """The next sandboxed start brings a filter back, and it takes back the ports of the box
    that was running all along (they closed with the filter that died): that box reaches its
    own domain again, and still only that."""
    box, a, _ = lab
    box.start("wa", LATER, "--runner", "ra")
    [old] = _filters(box)
    os.kill(old.pid, signal.SIGKILL)
    old.wait(10)
    box.start("wa2", PROBE, "--runner", "ra")
    got = _results(box, "wa2")
    assert got["a"] == "from-a" and got["b"] != "from-b"
    [again] = _filters(box)
    assert again.pid != old.pid
    (Paths.at(box.data).rooms / "wa" / "work" / "go").touch()
    got = _results(box, "wa")
    assert got["a"] == "from-a" and got["b"] != "from-b"
    assert a.hits == 2 and lab.b.hits == 0


def test_down_stops_the_homes_filter_and_host(lab: Lab) -> None:
    box = lab.box
    box.start("wa", PROBE, "--runner", "ra")
    _results(box, "wa")
    procs = _hosts(box) + _filters(box)
    assert _filters(box)
    done = box.looop("down")
    assert done.returncode == 0, done.stderr
    psutil.wait_procs(procs, timeout=15)
    assert _hosts(box) == [] and _filters(box) == []


def test_ps_shows_the_sandbox_host_by_its_role(lab: Lab) -> None:
    """The box host is titled in looop's words as every long-lived process of looop's is
    (`looop: sandbox host <data dir>`), its short name kept for the sweeps that know it."""
    box = lab.box
    box.start("wa", PROBE, "--runner", "ra")
    _results(box, "wa")
    [host] = _hosts(box)

    def ps(column: str) -> str:
        argv = ["ps", "-ww", "-o", f"{column}=", "-p", str(host.pid)]
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()

    assert ps("args") == f"looop: sandbox host {box.data}"
    assert ps("comm") == "looop-sbxhost"
