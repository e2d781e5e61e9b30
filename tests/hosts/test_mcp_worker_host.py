"""The worker MCP server for a worker on an SSH host: with "mcp": {"worker_tools": true} at
home, the host's satellite wires `looop mcp --worker` into the claude line it starts, run as
the host's "$LOOOP_BIN" (the shim whose contract verbs go home through the relay); a stand-in
claude on the host speaks MCP to it and calls `claim`, and the lease is the home's, held by
the remote worker."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.hosts.conftest import Home
from tests.hosts.util import looop

STAND_IN = Path(__file__).resolve().parents[1] / "fixtures" / "mcp_claude.py"


@pytest.mark.timeout(120)
def test_a_host_workers_claude_claims_through_the_worker_server(home: Home) -> None:
    d = home.data
    config = d / "config.json"
    before = config.read_text() if config.exists() else None
    cfg = json.loads(before) if before else {}
    config.write_text(json.dumps({**cfg, "mcp": {"worker_tools": True}}))
    # where the host's user can run it: the lab's hosts share this machine's files
    where = Path(tempfile.mkdtemp(prefix="looop-mcp-"))
    where.chmod(0o755)
    claude = where / "claude"
    claude.write_text("#!/usr/bin/python3\n" + STAND_IN.read_text())
    claude.chmod(0o755)
    try:
        line = f"{claude} {{{{prompt_file}}}}"
        start = looop(d, "worker", "start", "mw1", "x", "--host", "h1", "--command", line)
        assert start.returncode == 0, start.stderr
        got = looop(d, "expect", "mw1", "MCP-CLAIM:", "--timeout", "40s")
        log = looop(d, "log", "mw1").stdout
        assert got.returncode == 0, log
        assert "MCP-TOOLS: ask,claim,cost_report,tell,told,unclaim" in log, log
        assert "MCP-CLAIM: ok" in log, log
        # the lease is the home's, held by the host's worker: refused to anyone else here
        held = looop(d, "claim", "mw1-lease", "--session", "someone-else")
        assert held.returncode == 1 and "mw1" in held.stderr, held.stderr
    finally:
        looop(d, "kill", "mw1")
        looop(d, "unclaim", "mw1-lease", "--session", "mw1")
        if before is None:
            config.unlink(missing_ok=True)
        else:
            config.write_text(before)
        shutil.rmtree(where, ignore_errors=True)


@pytest.mark.timeout(180)
def test_a_sandboxed_host_workers_claude_claims_through_the_worker_server(
    home: Home, tmp_path: Path
) -> None:
    """Inside srt on the host the server is the CLI's child, under the same walls, and its
    verbs go home through the worker's drop box and the host's bridge."""
    from tests.hosts.test_sandboxed_host import _second_home

    h1 = home.lab.hosts[0]
    where = Path(tempfile.mkdtemp(prefix="looop-mcp-"))
    where.chmod(0o755)
    claude = where / "claude"
    claude.write_text("#!/usr/bin/python3\n" + STAND_IN.read_text())
    claude.chmod(0o755)
    runners = {"claude": {"worker": f"{claude} {{{{prompt_file}}}}"}}
    data = _second_home(tmp_path, home.lab, [h1], {"domains": ["127.0.0.1:9"]}, runners=runners)
    config = data / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "mcp": {"worker_tools": True}}))
    # the host's user has run claude before (a sandboxed claude start needs that: first-run
    # answers given inside a box never persist)
    state = h1.home / ".claude.json"
    state.write_text(json.dumps({"hasCompletedOnboarding": True}) + "\n")
    shutil.chown(state, h1.user, h1.user)
    try:
        start = looop(data, "worker", "start", "mb1", "x", "--host", "h1")
        assert start.returncode == 0, start.stderr
        got = looop(data, "expect", "mb1", "MCP-CLAIM:", "--timeout", "60s")
        log = looop(data, "log", "mb1").stdout
        assert got.returncode == 0, log
        assert "MCP-CLAIM: ok" in log, log
        rec = json.loads((data / "hosts" / "workers" / "mb1.json").read_text())
        assert rec.get("sandboxed") is True  # it ran inside srt there
        held = looop(data, "claim", "mb1-lease", "--session", "someone-else")
        assert held.returncode == 1 and "mb1" in held.stderr, held.stderr
    finally:
        looop(data, "kill", "mb1")
        looop(data, "down", timeout=60)
        looop(data, "host", "rm", "h1", "--force", timeout=30)
        shutil.rmtree(where, ignore_errors=True)
        state.unlink(missing_ok=True)
