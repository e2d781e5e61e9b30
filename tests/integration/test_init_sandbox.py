"""`looop init --sandbox/--no-sandbox` writes the config's `sandbox`, a re-init without the
flag keeps it, and an init that turns it on where srt cannot run says what is missing."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import Cli


def _sandbox(data: Path) -> object:
    return json.loads((data / "config.json").read_text()).get("sandbox")


def test_init_sets_and_keeps_the_sandbox_setting(data: Path, cli: Cli) -> None:
    code, out, _ = cli("init", "--runner", "claude", "--sandbox", env_extra={"PATH": "/nonexist"})
    assert code == 0
    assert _sandbox(data) == "on"
    assert "sandbox: on" in out
    # PATH holds no srt, node, bwrap, socat or rg: the line names them, the init still succeeds
    warning = next(ln for ln in out.splitlines() if ln.startswith("warning: the sandbox"))
    assert "srt" in warning and "bwrap (apt-get install bubblewrap)" in warning
    code, out, _ = cli("init", "--runner", "claude", "--force")
    assert code == 0 and _sandbox(data) == "on"  # a re-init keeps it
    code, out, _ = cli("init", "--runner", "pi", "--force", "--no-sandbox")
    assert code == 0 and _sandbox(data) == "off"
    assert "sandbox: on" not in out
    code, _, err = cli("worker", "start", "w1", "go", "--command", "sleep 600")
    assert code == 0, err
    code, out, _ = cli("ls", "--json")
    assert [r["sandboxed"] for r in json.loads(out) if r["id"] == "w1"] == [False]
    cli("kill", "w1")
