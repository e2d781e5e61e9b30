"""At worker start looop puts `looop mcp --worker` into a claude worker's own MCP config, as one
`--mcp-config=JSON` word right after the program (the brief still its last argument), and
leaves the line alone when the config says "mcp": {"worker_tools": false}. A stand-in
`claude` on PATH records the argv it was given."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.helpers import stop_sessions, wait_until, wire

pytestmark = [pytest.mark.process, pytest.mark.timeout(60)]
WORKER = 'claude --model opus "$(cat {{prompt_file}})"'


def _claude_ctx(ctx: Ctx, tmp: Path) -> tuple[Ctx, Path]:
    bin_dir = tmp / "fakebin"
    bin_dir.mkdir()
    out = tmp / "argv.json"
    fake = bin_dir / "claude"
    fake.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"open({str(out)!r} + '.tmp', 'w').write(json.dumps(sys.argv[1:]))\n"
        f"import os; os.replace({str(out)!r} + '.tmp', {str(out)!r})\n"
    )
    fake.chmod(0o755)
    env = {**ctx.env, "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    return replace(ctx, env=env), out


def _argv(ctx: Ctx, out: Path) -> list[str]:
    try:
        start_worker(ctx, ctx.knobs(), StartRequest("w1", "Take the deploy lease."))
        wait_until(out.exists, timeout=30, what="the stand-in claude ran")
        got: list[str] = json.loads(out.read_text())
        return got
    finally:
        stop_sessions(ctx.paths.data)


def test_a_claude_worker_gets_the_worker_server_in_its_mcp_config(ctx: Ctx, tmp_path: Path) -> None:
    c, out = _claude_ctx(ctx, tmp_path)
    wire(c, [], worker=WORKER, mcp={"worker_tools": True})
    argv = _argv(c, out)
    flag, _, spec = argv[0].partition("=")
    assert flag == "--mcp-config"
    server = json.loads(spec)["mcpServers"]["looop"]
    assert server["command"] == c.bin and server["args"] == ["mcp", "--worker"]
    assert argv[1:3] == ["--model", "opus"]
    assert argv[-1].rstrip().endswith("Take the deploy lease.")  # the brief, whole and last


@pytest.mark.parametrize("mcp", [None, {"worker_tools": False}], ids=["default", "false"])
def test_without_worker_tools_the_line_is_left_alone(
    ctx: Ctx, tmp_path: Path, mcp: dict[str, bool] | None
) -> None:
    c, out = _claude_ctx(ctx, tmp_path)
    wire(c, [], worker=WORKER, **({"mcp": mcp} if mcp else {}))
    argv = _argv(c, out)
    assert not any(a.startswith("--mcp-config") for a in argv)  # opt-in: a process per worker
    assert argv[:2] == ["--model", "opus"]


def test_a_bad_mcp_config_refuses_the_start_before_anything_runs(ctx: Ctx, tmp_path: Path) -> None:
    c, out = _claude_ctx(ctx, tmp_path)
    wire(c, [], worker=WORKER, mcp={"worker_tools": "no"})
    with pytest.raises(LooopError, match=r"mcp\.worker_tools' must be true or false"):
        start_worker(c, c.knobs(), StartRequest("w1", "Take the deploy lease."))
    assert not out.exists()
    assert not (c.paths.prompts / "w1.md").exists()
