"""The runtime dir emptied under live sandboxed workers (a tmp cleaner, a hand `rm -rf`): the
home's network filter keeps its boxes (it holds their records itself, and writes them back)
and its name (an abstract one, no file), so each running box still reaches its own domain and
its door, a new sandboxed start is served by the same filter, and `looop down` stops it all."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from looop.home.paths import Paths
from looop.home.where import runtime_base, runtime_dir
from looop.sandbox import boxhost
from tests.helpers import until
from tests.sandbox.test_sandboxed_worker import Box, Server
from tests.sandbox.test_shared_filter import _box, _filters, _home, _hosts, _results

pytestmark = pytest.mark.timeout(180)

# Waits for its `go`, then claims through its door and fetches both servers.
AFTER_GO = r"""
r="$LOOOP_WORKSPACE/results"; g="$LOOOP_WORKSPACE/go"
c() { k=$1; shift; out=$(curl -s -m 10 "$@" 2>/dev/null); echo "$k=${out:-none}" >> "$r"; }
while [ ! -e "$g" ]; do sleep 0.05; done
if "$LOOOP_BIN" claim wiped-x >/dev/null 2>"$LOOOP_WORKSPACE/claim.err"; then
  echo claim=ok >> "$r"; else echo claim=no >> "$r"; fi
c a "http://127.0.0.1:$A/"
c b "http://127.0.0.1:$B/"
got=$(python3 -c "$FETCH" "http://127.0.0.1:$A/" 2>/dev/null)
echo "p=${got:-none}" >> "$r"
echo done=1 >> "$r"
exec sleep 600
"""


# python's own client, through the box's proxy (HTTP_PROXY, as srt set it)
FETCH = "import sys, urllib.request as u; print(u.urlopen(sys.argv[1], timeout=10).read().decode())"


@pytest.fixture
def wiped_home(tmp_path: Path, srt: Path) -> Iterator[tuple[Box, Server, Server]]:
    """A home of its own runtime dir (short: a socket path must fit), emptied by the test."""
    base = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    a, b = Server("from-a"), Server("from-b")
    box = _box(tmp_path, srt, a, b)
    box.env = {**box.env, "LOOOP_RUNTIME_DIR": base, "FETCH": FETCH}
    yield box, a, b
    box.looop("down")
    for p in _filters(box) + _hosts(box):
        p.kill()
    a.close()
    b.close()
    shutil.rmtree(base, ignore_errors=True)


def _records(box: Box) -> list[str]:
    folder = boxhost.filter_socket(_home(box))[: -len(".sock")] + ".boxes"
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []


def test_a_wiped_runtime_dir_cuts_no_box_off_and_starts_no_second_filter(
    wiped_home: tuple[Box, Server, Server],
) -> None:
    box, a, b = wiped_home
    box.start("wa", AFTER_GO, "--runner", "ra")
    [filt] = _filters(box)
    assert _records(box), "the box was registered"
    shutil.rmtree(runtime_dir(runtime_base(box.env)))
    # the filter's sweep (every few seconds) has looked at its boxes since the wipe: it
    # wrote their records back (on a filter that forgot them, the box is cut off meanwhile)
    until(lambda: _records(box), 3 * 5.0)
    (Paths.at(box.data).rooms / "wa" / "work" / "go").touch()
    got = _results(box, "wa")
    err = (Paths.at(box.data).rooms / "wa" / "work" / "claim.err").read_text()
    assert got["claim"] == "ok", err  # its door still answers
    assert (box.data / "claims").is_dir() and any((box.data / "claims").iterdir())
    assert got["a"] == "from-a" and got["p"] == "from-a"  # curl and python, through its proxy
    assert got["b"] != "from-b" and b.hits == 0  # and still only its own domain

    box.start("wb", AFTER_GO, "--runner", "rb")  # a start after the wipe: the same filter
    (Paths.at(box.data).rooms / "wb" / "work" / "go").touch()
    got = _results(box, "wb")
    assert got["b"] == "from-b" and got["a"] != "from-a"
    assert [p.pid for p in _filters(box)] == [filt.pid]

    procs = _filters(box) + _hosts(box)
    done = box.looop("down")
    assert done.returncode == 0, done.stderr
    psutil.wait_procs(procs, timeout=15)
    assert _filters(box) == [] and _hosts(box) == []
    assert a.hits == 2
    rt = Path(runtime_dir(runtime_base(box.env)))
    left = [
        p.name
        for p in rt.rglob("*")
        if p.suffix == ".sock"
        or (p.is_dir() and not any(p.iterdir()))
        or (p.suffix == ".err" and not p.stat().st_size)
    ]
    assert left == [], "a dead socket, an empty error file or an empty folder left"
