"""A worker the satellite starts on a host gets the `$LOOOP_BIN` its contract is written
against (`"$LOOOP_BIN" claim <name>` …), pointing at its own shim, which runs the host's looop
for a verb that is not the home's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from looop.remote.ssh.link import PROTOCOL

LOOOP = Path(sys.executable).parent / "looop"
KEY = "0123456789abcdef"


def _satellite(env: dict[str, str], op: str, req: dict[str, object]) -> dict[str, object]:
    done = subprocess.run(
        [str(LOOOP), "satellite", KEY, op],
        input=json.dumps({"v": PROTOCOL, **req}),
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert isinstance(out, dict) and not out.get("error"), out
    return out


@pytest.mark.timeout(60)
def test_a_satellite_worker_has_the_looop_bin_its_contract_names(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LANG": "C"}
    line = 'sh -c \'echo "BIN=$LOOOP_BIN"; "$LOOOP_BIN" version\''
    spawn = {"id": "s1", "line": line, "prompt": "", "env": {"LOOOP_SESSION_ID": "s1"}}
    _satellite(env, "spawn", {**spawn, "size": [100, 30]})
    assert _satellite(env, "wait", {"id": "s1", "timeout": 20})["code"] == 0
    text = str(_satellite(env, "log", {"id": "s1"})["text"])
    shim = tmp_path / ".local/share/looop/satellite" / KEY / "bin" / "looop"
    assert f"BIN={shim}" in text, text
    from looop import __version__

    assert __version__ in text.replace(f"BIN={shim}", ""), text


@pytest.mark.timeout(60)
def test_a_fresh_link_rewrites_a_shim_an_older_looop_wrote(tmp_path: Path) -> None:
    """A host upgraded under a live worker: its shim (written by the older looop) names a
    module that has since moved. The next link's hello rewrites it, so the worker's contract
    verbs work again without a restart; a shim that is already current is left untouched."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LANG": "C"}
    sat = tmp_path / ".local/share/looop/satellite" / KEY
    boxed = tmp_path / ".local/share/looop/shim" / "looop"
    stale = f"#!{sys.executable}\nimport sys\nfrom looop.workers.ssh.shim import main\n"
    stale += "raise SystemExit(main(sys.argv[1:]))\n"
    for shim in (sat / "bin" / "looop", boxed):
        shim.parent.mkdir(parents=True)
        shim.write_text(stale)
        shim.chmod(0o755)
    old = subprocess.run(
        [str(sat / "bin" / "looop"), "version"], capture_output=True, text=True, timeout=30
    )
    assert old.returncode != 0 and "looop.workers" in old.stderr  # what the worker saw

    _satellite(env, "hello", {"fresh": True})
    for shim in (sat / "bin" / "looop", boxed):
        run = {**env, "LOOOP_REAL_BIN": str(LOOOP)}
        done = subprocess.run(
            [str(shim), "version"], capture_output=True, text=True, env=run, timeout=30
        )
        assert done.returncode == 0, done.stderr
    before = os.stat(boxed).st_mtime_ns, os.stat(boxed).st_ino
    _satellite(env, "hello", {"fresh": True})
    assert (os.stat(boxed).st_mtime_ns, os.stat(boxed).st_ino) == before
