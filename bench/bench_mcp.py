"""How soon a worker's agent CLI has looop's worker tools: `looop mcp --worker` started cold,
timed from spawn to its answer to `initialize` and then to `tools/list` (what every MCP
client sends first), against a baseline measured in the same run: a minimal stdio server on
the official MCP SDK (one tool that does nothing), the least a server built on it costs. Also
each one's RSS once it has answered, and `looop mcp` (the human's server, on the SDK) against
the same baseline: looop's own share above the SDK.

Rounds interleave the programs, in alternating order.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROUNDS = 10
BASELINE = """\
from mcp.server.mcpserver import MCPServer

server = MCPServer(name="baseline")


@server.tool()
def noop() -> str:
    \"\"\"Does nothing.\"\"\"
    return ""


server.run("stdio")
"""
HELLO = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "1"},
    },
}


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _first_tools(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int, float]:
    """(seconds to the initialize answer, seconds to the tools/list answer, tools, RSS MB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:

        def send(msg: dict[str, Any]) -> None:
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(msg).encode() + b"\n")
            proc.stdin.flush()

        send(HELLO)
        hello = json.loads(proc.stdout.readline())
        t_init = time.perf_counter() - t0
        assert "result" in hello, hello
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        listed = json.loads(proc.stdout.readline())
        t_list = time.perf_counter() - t0
        rss = _rss_mb(proc.pid)
        proc.stdin.close()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return t_init, t_list, len(listed["result"]["tools"]), rss


def run() -> list[dict[str, object]]:
    # an installed wheel is byte-compiled once by pip: so is this checkout, first
    import looop

    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(looop.__file__).parent)], check=True
    )
    looop_bin = str(Path(sys.executable).parent / "looop")
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "data"
        data.mkdir()
        base_py = Path(d) / "baseline.py"
        base_py.write_text(BASELINE)
        env = dict(os.environ, LOOOP_DATA_DIR=str(data), LOOOP_SESSION_ID="w1")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        progs = {
            "base": [sys.executable, str(base_py)],
            "worker": [looop_bin, "mcp", "--worker"],
            "human": [looop_bin, "mcp"],
        }
        got: dict[str, list[tuple[float, float, int, float]]] = {k: [] for k in progs}
        for cmd in progs.values():  # warm the page cache (and the .pyc files) once
            _first_tools(cmd, env)
        for r in range(ROUNDS):
            order = list(progs) if r % 2 else list(reversed(progs))
            for name in order:
                got[name].append(_first_tools(progs[name], env))
    assert {n for _, _, n, _ in got["worker"]} == {6}, "the worker's six contract tools"

    def med(name: str, i: int) -> float:
        return statistics.median(x[i] for x in got[name])

    def spread(name: str, i: int, scale: float) -> dict[str, float]:
        vals = [x[i] * scale for x in got[name]]
        return {"value": statistics.median(vals), "min": min(vals), "max": max(vals)}

    rows: list[dict[str, object]] = []
    for name, label, target in [
        ("worker", "looop mcp --worker: initialize answered, cold", 0.25),
        ("worker", "looop mcp --worker: tools/list answered, cold", 0.25),
        ("human", "looop mcp (SDK): tools/list answered, cold", 1.3),
    ]:
        i = 0 if "initialize" in label else 1
        ratio = med(name, i) / med("base", i)
        rows.append(
            {
                "name": label,
                **spread(name, i, 1000),
                "unit": "ms",
                "baseline": med("base", i) * 1000,
                "ratio": ratio,
                "target": f"ratio <= {target}",
                "ok": ratio <= target,
            }
        )
    ratio = med("worker", 3) / med("base", 3)
    rows.append(
        {
            "name": "looop mcp --worker: RSS once it has answered",
            **spread("worker", 3, 1),
            "unit": "MB",
            "baseline": med("base", 3),
            "ratio": ratio,
            "target": "ratio <= 0.5",
            "ok": ratio <= 0.5,
        }
    )
    rows[0]["note"] = (
        f"mcp: {ROUNDS} interleaved rounds (alternating order) of three programs started "
        "cold, each sent `initialize`, `notifications/initialized` and `tools/list` over "
        "stdio as an MCP client does, timed from spawn; the baseline is a minimal stdio "
        "server on the official MCP SDK (one no-op tool), which spends nearly all its time "
        "importing the SDK. `looop mcp --worker` speaks the stdio protocol itself (json + "
        "asyncio), so a worker's agent CLI has its tools that much sooner; `looop mcp` (the "
        "human's server) stays on the SDK, and its row is looop's own share above it. Until "
        "then `looop mcp --worker` was on the SDK too: 2.0 s against 0.45 s now, at the "
        "median of 5 interleaved starts on the same loaded machine, and 71 MB RSS; with it "
        "wired, a one-turn `claude -p` (which waits for its MCP servers) took 1.8-2.5 s "
        "against 2.8-6 s before and 1-3 s with no MCP server (3 rounds each, the realcli rig)"
    )
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
