"""The worker contract as MCP tools, wired into a worker's agent CLI at start: the CLI's own MCP
config is given a server `looop` that runs `"$LOOOP_BIN" mcp --worker` (web/mcpworker.py),
which speaks only as the worker in LOOOP_SESSION_ID. The shell contract stays beside it.

Each preset CLI takes it its own way (its profile's `mcp`, runners/__init__.py), none of them
touching the user's files:
- "flag": `--mcp-config=JSON` right after the program (its other MCP servers stay);
- "overrides": `-c mcp_servers.looop.*` words (such a CLI hands a server only the variables
  it is told to: env_vars names the worker's own);
- "env": a JSON config in its variable (merged over its config), unless the user set one;
- none (a CLI with no MCP client): the shell contract only.
A line whose program has no profile (a custom runner) is left as it is.

Away from home it is wired where the worker starts, with that place's "$LOOOP_BIN": an SSH
host's satellite wires the line it is sent (the home asks it to: "mcp" in the spawn), and
the server runs on the host, its verbs going home through the host's shim; a Kubernetes
worker's line is wired at home, its server started as the pod's own "$LOOOP_BIN" (the shim
`looop pod run` writes).

The config's "mcp" object: {"allow_actions": bool} lets `looop mcp` act as --allow-actions
does; {"worker_tools": true} turns the wiring on. It is off by default: each wired worker's CLI
keeps one more process (`looop mcp --worker`, about 25 MB RSS) for what the shell contract
already gives it."""

from __future__ import annotations

import shlex
from typing import NamedTuple

from looop.home import jsonio
from looop.home.config import Config
from looop.home.errors import bad_config_value
from looop.runners import RUNNERS, profile, program
from looop.runners.runnerprofile import RunnerProfile

SERVER = "looop"
TOOL_TIMEOUT_S = 7 * 86400
MCP_KEYS = ("allow_actions", "worker_tools")
# what the worker's server needs from its environment (an "overrides" CLI passes on only
# what is named)
PASSED = (
    *["LOOOP_SESSION_ID", "LOOOP_RUNNER", "LOOOP_BIN", "LOOOP_DATA_DIR", "LOOOP_CONFIG"],
    *["LOOOP_RUNTIME_DIR", "LOOOP_CLAIMS_DIR", "LOOOP_REPORTS_DIR", "LOOOP_COST_LEDGER"],
    *["LOOOP_WORKSPACE", "LOOOP_HOME_URL", "LOOOP_HOME_TOKEN"],
    # on an SSH host, how its "$LOOOP_BIN" shim reaches home (remote/shim.py)
    *["LOOOP_REAL_BIN", "LOOOP_RELAY_SOCK", "LOOOP_CALLHOME_DIR"],
    # in a sandbox, its verbs' door: the box's proxy URL (with the credentials it is known by)
    *["LOOOP_DOOR", "HTTP_PROXY", "http_proxy"],
)


class McpSettings(NamedTuple):
    allow_actions: bool = False
    worker_tools: bool = False


def settings(cfg: Config) -> McpSettings:
    """The config's "mcp" object; a bad one is a one-line error naming the key."""
    raw = cfg.raw.get("mcp")
    if raw is None:
        return McpSettings()
    shape = 'an object {"allow_actions": true|false, "worker_tools": true|false}'
    if not isinstance(raw, dict):
        raise bad_config_value(cfg.source, "mcp", shape, raw)
    for key, value in raw.items():
        if key not in MCP_KEYS:
            raise bad_config_value(cfg.source, f"mcp.{key}", f"one of {', '.join(MCP_KEYS)}", key)
        if not isinstance(value, bool):
            raise bad_config_value(cfg.source, f"mcp.{key}", "true or false", value)
    return McpSettings(raw.get("allow_actions", False), raw.get("worker_tools", False))


def _after_program(line: str, flags: list[str]) -> str:
    head, _, rest = line.lstrip().partition(" ")
    return " ".join([head, *(shlex.quote(f) for f in flags), rest]).rstrip()


# a pod's "$LOOOP_BIN" is known only inside it: the server's command finds it there
FROM_ENV = ("/bin/sh", "-c", 'exec "$LOOOP_BIN" mcp --worker')


def wire(
    line: str,
    env: dict[str, str],
    bin_path: str | None,
    runners: tuple[RunnerProfile, ...] = RUNNERS,
) -> str:
    """The worker line with looop's worker MCP server in its CLI's own MCP config (env
    updated in place when the CLI reads it from there); unchanged for a CLI without one or a
    custom line. `bin_path` None: the worker's own "$LOOOP_BIN", read where it runs. The
    caller skips it when the config's mcp.worker_tools is false."""
    p = profile(program(line), runners)
    how = p.mcp if p is not None else ""
    if bin_path is None:
        bin_path, *args = FROM_ENV
    else:
        args = ["mcp", "--worker"]
    if how == "flag":
        server = {"type": "stdio", "command": bin_path, "args": args}
        spec = jsonio.dumps({"mcpServers": {SERVER: server}}, separators=(",", ":"))
        # one word: a spaced --mcp-config takes every word after it up to the next option
        return _after_program(line, [f"--mcp-config={spec}"])
    if how == "overrides":
        key = f"mcp_servers.{SERVER}"
        given = {
            "command": jsonio.dumps(bin_path),
            "args": jsonio.dumps(args),
            "env_vars": jsonio.dumps(list(PASSED)),
            # an ask waits on a human for hours; a CLI's own limit may be a minute
            "tool_timeout_sec": TOOL_TIMEOUT_S,
        }
        return _after_program(line, [w for k, v in given.items() for w in ("-c", f"{key}.{k}={v}")])
    if how == "env" and p is not None and p.mcp_env and p.mcp_env not in env:
        local = {"type": "local", "command": [bin_path, *args], "enabled": True}
        env[p.mcp_env] = jsonio.dumps({"mcp": {SERVER: local}})
    return line
