"""The worker contract's MCP wiring: each preset CLI's worker line (or env) gains looop's
worker server in the CLI's own MCP config, in a form the CLI reads; other lines stay as they
are; the config's "mcp" object is read strictly."""

from __future__ import annotations

import json
import shlex
import tomllib

import pytest

from looop.home.config import parse_config
from looop.home.errors import LooopError
from looop.home.knobs import unknown_key_warnings
from looop.runners.presets import PRESETS
from looop.web.mcpworker import refusal
from looop.workers.mcpwire import settings, wire

pytestmark = pytest.mark.unit
BIN = "/opt/looop/bin/looop"


def _worker_line(cli: str) -> str:
    return PRESETS[cli]["worker"].replace("{{prompt_file}}", "/d/prompts/w1.md")


def test_claude_gets_one_mcp_config_word_after_the_program_and_keeps_its_words() -> None:
    line = _worker_line("claude")
    env: dict[str, str] = {}
    wired = wire(line, env, BIN)
    words, before = shlex.split(wired), shlex.split(line)
    assert words[0] == "claude" and words[2:] == before[1:]
    flag, _, spec = words[1].partition("=")
    assert flag == "--mcp-config"  # one word: a spaced one would swallow the brief
    server = json.loads(spec)["mcpServers"]["looop"]
    assert server["command"] == BIN and server["args"] == ["mcp", "--worker"]
    assert env == {}


def test_codex_gets_config_overrides_that_parse_as_toml() -> None:
    line = _worker_line("codex")
    wired = wire(line, {}, BIN)
    words = shlex.split(wired)
    assert words[0] == "codex" and words[9:] == shlex.split(line)[1:]
    assert words[1:9:2] == ["-c"] * 4
    server: dict[str, object] = {}
    for kv in words[2:9:2]:  # codex reads each as a TOML dotted key = value
        server.update(tomllib.loads(kv)["mcp_servers"]["looop"])
    assert server["command"] == BIN and server["args"] == ["mcp", "--worker"]
    passed = server["env_vars"]
    assert isinstance(passed, list) and {"LOOOP_SESSION_ID", "LOOOP_BIN"} <= set(passed)
    timeout = server["tool_timeout_sec"]
    assert isinstance(timeout, int) and timeout >= 86400  # an ask waits on a human


def test_opencode_reads_it_from_its_env_and_a_users_own_content_is_kept() -> None:
    line = _worker_line("opencode")
    env: dict[str, str] = {}
    assert wire(line, env, BIN) == line
    local = json.loads(env["OPENCODE_CONFIG_CONTENT"])["mcp"]["looop"]
    assert local["type"] == "local" and local["command"] == [BIN, "mcp", "--worker"]
    mine = {"OPENCODE_CONFIG_CONTENT": '{"theme": "x"}'}
    wire(line, mine, BIN)
    assert mine == {"OPENCODE_CONFIG_CONTENT": '{"theme": "x"}'}


@pytest.mark.parametrize(
    "line", [_worker_line("pi"), "my-agent --brief /d/prompts/w1.md", "", "claudette run"]
)
def test_a_cli_without_mcp_or_a_custom_line_is_left_alone(line: str) -> None:
    env: dict[str, str] = {}
    assert wire(line, env, BIN) == line
    assert env == {}


def test_a_path_to_claude_is_still_claude() -> None:
    wired = wire("/usr/local/bin/claude --model opus", {}, BIN)
    assert shlex.split(wired)[1].startswith("--mcp-config=")


def test_the_config_mcp_object_defaults_and_reads() -> None:
    base = {"default": "claude", "runners": {"claude": dict(PRESETS["claude"])}}
    s = settings(parse_config(base, "c.json"))
    assert (s.allow_actions, s.worker_tools) == (False, False)  # opt-in: a process per worker
    cfg = parse_config({**base, "mcp": {"allow_actions": True, "worker_tools": False}}, "c.json")
    s = settings(cfg)
    assert (s.allow_actions, s.worker_tools) == (True, False)
    assert not any("mcp" in w for w in unknown_key_warnings(cfg))


@pytest.mark.parametrize(
    ("mcp", "said"),
    [
        (True, "key 'mcp' must be an object"),
        ({"allow_actions": "yes"}, "key 'mcp.allow_actions' must be true or false"),
        ({"alow_actions": True}, "key 'mcp.alow_actions' must be one of allow_actions"),
    ],
)
def test_a_bad_mcp_object_is_one_line_naming_the_key(mcp: object, said: str) -> None:
    cfg = parse_config({"mcp": mcp}, "c.json")
    with pytest.raises(LooopError) as e:
        settings(cfg)
    assert said in str(e.value) and "c.json" in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("argv", "bad"),
    [
        (["claim", "deploy", "--session", "w1"], False),
        (["claim", "deploy", "--session", "w2"], True),
        (["unclaim", "deploy", "--session=w2"], True),
        (["ask", "w1", "--prompt", "w2"], False),  # a prompt naming w2 is not speaking as w2
        (["ask", "w2", "--prompt", "ok?"], True),
        (["told", "w2"], True),
        (["tell", "w2", "hello"], False),  # telling another worker is the contract's own
        (["cost", "report", "session", "w1", "claude", "0.1"], False),
        (["cost", "report", "session", "w2", "claude", "0.1"], True),
    ],
)
def test_the_worker_server_speaks_only_as_its_worker(argv: list[str], bad: bool) -> None:
    why = refusal(argv, "w1")
    assert (why is not None) == bad, why
    if bad:
        assert why is not None and "w1" in why and "w2" in why


@pytest.mark.parametrize("cli", ["claude", "codex", "opencode"])
def test_without_a_path_the_server_is_the_workers_own_looop_bin(cli: str) -> None:
    """A pod's "$LOOOP_BIN" is known only inside it: the server's command reads it there."""
    env: dict[str, str] = {}
    words = shlex.split(wire(_worker_line(cli), env, None))
    if cli == "claude":
        server = json.loads(words[1].partition("=")[2])["mcpServers"]["looop"]
        argv = [server["command"], *server["args"]]
    elif cli == "codex":
        conf = tomllib.loads("\n".join(w for w in words if w.startswith("mcp_servers.")))
        server = conf["mcp_servers"]["looop"]
        argv = [server["command"], *server["args"]]
        # what the shims away from home read to reach it is passed on to the server
        assert {"LOOOP_BIN", "LOOOP_RELAY_SOCK", "LOOOP_HOME_URL"} <= set(server["env_vars"])
    else:
        argv = json.loads(env["OPENCODE_CONFIG_CONTENT"])["mcp"]["looop"]["command"]
    assert argv == ["/bin/sh", "-c", 'exec "$LOOOP_BIN" mcp --worker']
