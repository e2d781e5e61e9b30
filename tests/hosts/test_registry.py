"""`looop host add|ls|rm|check|install` against real sshd hosts, and what they refuse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.hosts.conftest import Home, Lab
from tests.hosts.util import looop


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("name", "url", "says"),
    [
        ("Bad_Name", "ssh://u@h", "bad host name"),
        ("local", "ssh://u@h", "bad host name"),
        ("a.b", "ssh://u@h", "bad host name"),
        ("ok", "u@h", "bad host address"),
        ("ok", "ssh://u@-oProxyCommand=sh", "bad host address"),
        ("ok", "ssh://u@h:0", "bad port"),
        ("ok", "ssh://u@h:99999", "bad port"),
        ("ok", "ssh://u;rm@h", "bad host address"),
        ("ok", "ssh://u@h h", "bad host address"),
    ],
)
def test_add_refuses_bad_names_and_addresses_in_one_line(
    tmp_path: Path, name: str, url: str, says: str
) -> None:
    data = tmp_path / "data"
    done = looop(data, "host", "add", name, url)
    assert done.returncode != 0
    assert says in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert looop(data, "host", "ls", "--json").stdout.strip() == "[]"


@pytest.mark.timeout(60)
def test_add_ls_rm_and_a_corrupt_record(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert looop(data, "host", "add", "a1", "ssh://me@10.9.9.9:2200", "--cap", "3").returncode == 0
    again = looop(data, "host", "add", "a1", "ssh://me@10.9.9.9")
    assert again.returncode == 1 and "already registered" in again.stderr
    rows = json.loads(looop(data, "host", "ls", "--json").stdout)
    assert rows == [
        {
            "cap": 3,
            "image": None,
            "kind": "ssh",
            "name": "a1",
            "url": "ssh://me@10.9.9.9:2200",
            "workers": 0,
        }
    ]
    (data / "hosts" / "a1.json").write_text('{"v": 1, "name": "a1", "host": "-evil"}')
    bad = looop(data, "host", "ls")
    assert bad.returncode == 1 and "is not a host record" in bad.stderr
    assert looop(data, "host", "rm", "a1").returncode == 1  # unreadable: said, not guessed
    (data / "hosts" / "a1.json").unlink()
    gone = looop(data, "host", "rm", "a1")
    assert gone.returncode == 1 and "no host a1" in gone.stderr


@pytest.mark.timeout(60)
def test_check_names_what_is_wrong(lab: Lab, tmp_path: Path) -> None:
    data = tmp_path / "data"
    cfg = str(lab.ssh_config)
    # nothing listens there: one line, quickly (ConnectTimeout), not a hang
    looop(data, "host", "add", "dead", "ssh://nobody@10.231.1.2:2299", "--ssh-config", cfg)
    dead = looop(data, "host", "check", "dead")
    assert dead.returncode == 1 and "does not answer" in dead.stderr, dead.stderr
    # a user the host does not let in: ssh's own reason, in one line
    h = lab.hosts[0]
    nobody = looop(data, "host", "add", "nokey", f"ssh://root@{h.addr}:2222", "--ssh-config", cfg)
    assert nobody.returncode == 0
    refused = looop(data, "host", "check", "nokey")
    assert refused.returncode == 1 and "does not answer" in refused.stderr


@pytest.mark.timeout(300)
def test_install_then_check_finds_the_same_version(home: Home) -> None:
    from looop import __version__

    for name in ("h1", "h2", "h3"):
        done = looop(home.data, "host", "check", name, "--json")
        assert done.returncode == 0, done.stderr
        info = json.loads(done.stdout)
        assert info["ok"] and info["version"] == __version__
        user = next(h.user for h in home.lab.hosts if h.name == name)
        assert info["dir"].startswith(f"/home/{user}/.local/share/looop/satellite/")
    rows = json.loads(looop(home.data, "host", "ls", "--json").stdout)
    assert [r["name"] for r in rows] == ["h1", "h2", "h3"]
