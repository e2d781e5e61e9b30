"""The lab itself: each namespace answers SSH with its own user, and has no way out."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.hosts.conftest import Lab, Place
from tests.hosts.lab import lab as build_lab


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


def _answers(lab: Lab, i: int) -> bool:
    h = lab.hosts[i]
    done = subprocess.run(
        ["ssh", "-F", str(lab.ssh_config), "-p", "2222", f"{h.user}@{h.addr}", "true"],
        capture_output=True,
        timeout=20,
    )
    return done.returncode == 0


@pytest.mark.timeout(120)
def test_a_new_lab_clears_its_own_stale_place_and_never_a_live_lab_elsewhere(
    lab: Lab, where: Place, tmp_path: Path
) -> None:
    """A lab killed mid-run leaves its namespace behind; the next lab on that subnet clears it.
    A live lab on another subnet (another run beside this one) is left alone. The lab beside
    takes this run's slot (its tag, users and octets) on the other subnet: another run doing
    the same at once holds another slot."""
    other = "10.239" if lab.hosts[0].net != "10.239" else "10.238"
    tag = where.tag("side")
    stale = f"{tag}-{other.replace('.', '-')}-abcd-h1"  # what a killed lab on `other` left
    subprocess.run(["ip", "netns", "add", stale], check=True)
    try:
        subprocess.run(
            ["ip", "-n", stale, "link", "add", "lz0", "type", "veth", "peer", "name", "lz1"],
            check=True,
        )
        subprocess.run(
            ["ip", "-n", stale, "addr", "add", f"{other}.{where.base + 1}.2/24", "dev", "lz0"],
            check=True,
        )
        users = f"{where.users}z"
        with build_lab(tmp_path / "beside", 1, other, users, tag, base=where.base, drop_users=True):
            assert _answers(lab, 0)  # the live lab on its own subnet kept its h1
            listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
            assert stale not in listed.stdout
    finally:
        subprocess.run(["ip", "netns", "del", stale], capture_output=True)
    assert _answers(lab, 0)
