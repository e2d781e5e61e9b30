"""The sweep's one exception: looop's own supervisors and hosts (by the name they give
themselves) are other sessions, never a run's leftovers; anything else is a leftover."""

from __future__ import annotations

import subprocess
import sys

import pytest

from looop.sessions.oscalls import alive_not_looop

pytestmark = [pytest.mark.timeout(30), pytest.mark.process]  # real processes

# names itself (as name_self does), says so, then waits for stdin to close
_NAMED = (
    "import sys;from looop.core.procstat import name_self;name_self(sys.argv[1]);"
    "print('ok',flush=True);sys.stdin.read()"
)


@pytest.mark.parametrize(
    ("name", "leftover"),
    [
        ("looop:w1", False),  # a supervisor (direct or host-forked)
        ("looop-host", False),
        ("looop-beat", False),
        ("looop", True),  # the CLI a run left behind (`nohup looop log -f &`)
        ("looopy", True),
        ("python3", True),
    ],
)
def test_only_looops_own_names_are_spared(name: str, leftover: bool) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _NAMED, name], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ok\n"
        with open(f"/proc/{proc.pid}/comm") as f:
            assert f.read().strip() == name[:15]
        assert alive_not_looop(proc.pid) is leftover
    finally:
        proc.communicate(timeout=10)
    assert not alive_not_looop(proc.pid)  # gone: nothing to sweep
