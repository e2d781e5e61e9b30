"""A new agent CLI is one profile (runners/runnerprofile.py) in the registry (runners/__init__.py):
a sixth profile, made here and handed to each table as its registry, appears in the preset list,
`looop init`'s notes, doctor's login and endpoint checks, the sandbox's hosts and files, the
price table, the needs-input screens, stream reading and the decide meter, and the MCP and
resume tables name no CLI of their own. No module is changed and no global is touched: the
real registry is the same after."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from looop import runners
from looop.core.context import Ctx
from looop.decide.streams import StreamRenderer
from looop.home.config import Runner, parse_config
from looop.loop import doctor, setup
from looop.runners import RUNNERS, profile
from looop.runners.presets import default_config_obj
from looop.runners.runnerprofile import RunnerProfile
from looop.sandbox import endpoints, srt
from looop.sandbox.srt import SandboxError
from looop.spend.meter import CostMeter
from looop.spend.prices import price_table
from looop.workers import boxed, mcpwire, needsinput

TICK = "parrot --json --model parrot-1"


def _is_own(ev: dict[str, object]) -> bool:
    return ev.get("type") in ("squawk", "perch") and "beak" in ev


def _event(ev: dict[str, object]) -> tuple[str, str, object] | None:
    if ev.get("type") == "squawk":
        return "said", str(ev.get("text", "")), None
    return "done", "perched", None


def _run_tokens(ev: dict[str, object]) -> list[tuple[str, int, int, int]]:
    n = ev.get("tokens")
    return [("parrot-1", n, 0, n)] if isinstance(n, int) else []


def _first_run(env: Mapping[str, str], words: Sequence[str]) -> tuple[dict[str, str], str]:
    if env.get("PARROT_READY"):
        return {"PARROT_BOXED": "1"}, ""
    return {}, "parrot has not been set up: run `parrot` once outside looop"


PARROT = RunnerProfile(
    name="parrot",
    preset={"tick": TICK, "worker": 'parrot "$(cat {{prompt_file}})"'},
    note="note: parrot repeats what it is told",
    domains=("api.parrot.example",),
    state=("~/.parrot/talk",),
    config=("~/.parrot",),
    base_url_env="PARROT_BASE_URL",
    login_env=("PARROT_KEY",),
    login_files=(("", ".parrot/key"),),
    login_fix="run `parrot login`",
    endpoint_files=(("PARROT_HOME", "perch.json", ".parrot/perch.json"),),
    endpoint_keys=("trees", "*", "url"),
    prices={"parrot-1": {"input": 2.0, "output": 4.0}},
    busy=(r"^flapping",),
    needs=(("approval", r"^Polly wants a cracker\?"),),
    is_own=_is_own,
    event=_event,
    run_tokens=_run_tokens,
    token_events=("perch",),
    mcp="env",
    mcp_env="PARROT_MCP",
    first_run=_first_run,
)
SIX = (*RUNNERS, PARROT)


def test_the_registry_holds_the_five_clis_in_inits_order_and_is_frozen() -> None:
    assert runners.names() == ("claude", "codex", "opencode", "pi", "gemini")
    assert [*runners.names(), "custom"] == setup.RUNNER_CHOICES
    with pytest.raises(AttributeError):
        PARROT.name = "crow"  # type: ignore[misc]
    with pytest.raises(TypeError):
        PARROT.preset["tick"] = "crow"  # type: ignore[index]
    with pytest.raises(ValueError, match="name"):
        RunnerProfile(name="", preset={"tick": "x"})


def test_a_sixth_profile_is_a_preset_with_notes() -> None:
    runners_of = default_config_obj(SIX)["runners"]
    assert runners_of["parrot"]["tick"] == TICK
    assert list(runners_of)[:5] == list(default_config_obj()["runners"])
    assert setup.preset_notes("parrot", {}, SIX) == ["note: parrot repeats what it is told"]


def test_a_sixth_profile_is_checked_by_doctor(ctx: Ctx, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    bare = dataclasses.replace(ctx, env={"PATH": "/usr/bin", "HOME": str(home)})
    cfg = parse_config({"default": "p", "runners": {"p": {"tick": TICK}}}, "<test>")
    assert doctor.check_login(bare, cfg) is None  # unknown to the real registry: custom
    got = doctor.check_login(bare, cfg, SIX)
    assert got is not None and got.level == "warn" and got.fix == "run `parrot login`"
    (home / ".parrot").mkdir()
    (home / ".parrot" / "key").write_text("k")
    got = doctor.check_login(bare, cfg, SIX)
    assert got is not None and got.level == "ok" and ".parrot/key" in got.detail
    pointed = dataclasses.replace(bare, env={**bare.env, "PARROT_BASE_URL": "http://127.0.0.1:1"})
    tried: list[tuple[str, int]] = []

    def connect(host: str, port: int, timeout: float) -> None:
        tried.append((host, port))

    got = doctor.check_endpoint(pointed, cfg, connect, SIX)
    assert tried == [("127.0.0.1", 1)] and got.level == "ok"


def test_a_sixth_profile_gets_its_sandbox_hosts_files_and_endpoint(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".parrot").mkdir(parents=True)
    perch = {"trees": {"oak": {"url": "http://127.0.0.1:9999/v1"}}}
    (home / ".parrot" / "perch.json").write_text(json.dumps(perch))
    assert srt.runner_parts("parrot", str(home), {}).domains == []  # the real registry
    parts = srt.runner_parts("parrot", str(home), {}, SIX)
    assert parts.domains == ["api.parrot.example", "127.0.0.1:9999"]
    assert parts.state == ["~/.parrot/talk"]
    assert [e.source for e in parts.endpoints] == [f"{home}/.parrot/perch.json trees.oak.url"]
    srt.make_state("parrot", str(home), SIX)
    assert (home / ".parrot" / "talk").is_dir()
    found = endpoints.endpoints("parrot", {"PARROT_BASE_URL": "http://10.0.0.7:80"}, None, SIX)
    assert [(e.entry, e.auto) for e in found] == [("10.0.0.7:80", True)]


def test_a_sixth_profile_is_priced_judged_read_and_metered() -> None:
    assert "parrot-1" not in price_table(None)
    assert price_table(None, SIX)["parrot-1"] == {"input": 2.0, "output": 4.0}
    rules = needsinput.Rules(runners=SIX)
    assert needsinput.judge("Polly wants a cracker?\n", {"parrot"}, rules) == (
        "approval: Polly wants a cracker?"
    )
    assert needsinput.judge("flapping\nPolly wants a cracker?\n", {"parrot"}, rules) is None
    assert needsinput.judge("Polly wants a cracker?\n", {"parrot"}, needsinput.Rules()) is None
    lines = [
        json.dumps({"type": "squawk", "beak": 1, "text": "hello"}),
        json.dumps({"type": "perch", "beak": 1, "tokens": 1_000_000}),
    ]
    r = StreamRenderer(SIX)
    shown = [out for line in lines for out in r.feed(line)]
    assert "hello" in shown
    assert any("done" in s and "perched" in s for s in shown)
    meter = CostMeter(Runner("parrot", TICK, None), None, SIX)
    for line in lines:
        meter.feed(line)
    assert meter.total() == pytest.approx(6.0)  # 1M in at $2 + 1M out at $4
    plain = CostMeter(Runner("parrot", TICK, None), None)
    for line in lines:
        plain.feed(line)
    assert plain.total() is None  # the real registry does not know it


def test_a_sixth_profile_is_wired_to_looops_mcp_server() -> None:
    env: dict[str, str] = {}
    assert mcpwire.wire("parrot --go", env, "/opt/looop", SIX) == "parrot --go"
    assert json.loads(env["PARROT_MCP"])["mcp"]["looop"]["command"] == ["/opt/looop", "mcp",
                                                                         "--worker"]  # fmt: skip
    mine = {"PARROT_MCP": "{}"}
    mcpwire.wire("parrot --go", mine, "/opt/looop", SIX)
    assert mine == {"PARROT_MCP": "{}"}  # the user's own config is left alone
    untouched: dict[str, str] = {}
    mcpwire.wire("parrot --go", untouched, "/opt/looop")
    assert untouched == {}


def test_a_sixth_profiles_first_run_answers_or_refuses_a_boxed_start() -> None:
    with pytest.raises(SandboxError, match="run `parrot` once"):
        boxed.box_env("env A=1 parrot --go", {}, SIX)
    assert boxed.box_env("parrot --go", {"PARROT_READY": "1"}, SIX) == {"PARROT_BOXED": "1"}
    assert boxed.box_env("parrot --go", {}) == {}  # unknown to the real registry


def test_the_mcp_and_resume_tables_read_the_profiles() -> None:
    by_mcp = {p.name: p.mcp for p in RUNNERS}
    assert by_mcp == {"claude": "flag", "codex": "overrides", "opencode": "env", "pi": "",
                      "gemini": ""}  # fmt: skip
    assert {p.name for p in RUNNERS if p.find_id} == {"codex", "opencode"}
    assert profile("parrot") is None  # nothing above changed the real registry


def test_a_sixth_profile_finds_the_conversation_it_named_itself() -> None:
    """Resume and the meter ask a CLI that names its conversation through its profile: in the
    folder the worker's record names (id_home), and only an id is believed."""
    asked: list[str | None] = []

    def find(env: Mapping[str, str], cwd: str, wid: str, since: float) -> str | None:
        asked.append(env.get("PARROT_HOME"))
        return {"w1": "ses_1", "w2": "$(reboot)"}.get(wid)

    finds = RunnerProfile(name="parrot", preset={"worker": "parrot"}, find_id=find,
                          id_home=("PARROT_HOME", ".parrot"))  # fmt: skip
    assert finds.find({"HOME": "/h"}, "/h/nest", "/w", "w1", 0) == "ses_1"
    assert finds.find({"PARROT_HOME": "/p"}, None, "/w", "w2", 0) is None  # not an id
    assert asked == ["/h/nest", "/p"]
    assert PARROT.find({}, None, "/w", "w1", 0) is None  # its worker line gives it one


def test_the_cost_reporting_clis_are_the_profiles_that_say_so() -> None:
    # a profile that stops reporting its cost leaves the lines that name them
    first, quiet, last = RUNNERS[0], RUNNERS[1]._replace(reports_cost=False), RUNNERS[4]
    assert runners.reporting_said((first, quiet, last)) == f"{first.name} or {last.name}"
