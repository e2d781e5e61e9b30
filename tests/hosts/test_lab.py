"""The lab itself: each namespace answers SSH with its own user, and has no way out."""

from __future__ import annotations

import subprocess

import pytest

from tests.hosts.conftest import Lab


@pytest.mark.timeout(60)
def test_each_host_answers_ssh_as_its_own_user_and_has_no_route_out(lab: Lab) -> None:
    for h in lab.hosts:
        done = subprocess.run(
            ["ssh", "-F", str(lab.ssh_config), "-p", "2222", f"{h.user}@{h.addr}", "id", "-un"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == h.user
        assert h.no_route_out()
        # a public address is unreachable from inside: no packet can leave the machine
        out = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                h.ns,
                "python3",
                "-c",
                "import socket,sys\ns=socket.socket()\ns.settimeout(2)\n"
                "try:\n s.connect(('1.1.1.1',443))\nexcept OSError as e:\n print(e.errno)\n"
                "else:\n print('connected')",
            ],
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert out.stdout.strip() != "connected"
