"""The doctor's verdict per check: what fails, what only warns, and the fix it names."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.home.config import CostSpec, Knobs, Runner, parse_config
from looop.home.knobs import resolve_knobs
from looop.home.paths import Paths
from looop.loop import doctor


def _write(ctx: Ctx, obj: object) -> None:
    ctx.paths.config.write_text(json.dumps(obj))


def _cfg(tick: str, budget: float | None = None, cost: dict[str, str] | None = None) -> object:
    spec: dict[str, object] = {"tick": tick, "worker": "w {{prompt_file}}"}
    if cost is not None:
        spec["cost"] = cost
    obj: dict[str, object] = {"default": "r", "runners": {"r": spec}}
    if budget is not None:
        obj["max_daily_usd"] = budget
    return parse_config(obj, "<test>")


def test_config_verdicts(ctx: Ctx) -> None:
    got, cfg = doctor.check_config(ctx)
    assert got.level == "warn" and "looop init" in got.fix and cfg is not None  # no file yet
    _write(ctx, {"max_daily_usdd": 3})
    got, _ = doctor.check_config(ctx)
    assert got.level == "fail" and not got.ok
    assert "max_daily_usdd" in got.detail and "did you mean 'max_daily_usd'" in got.detail
    _write(ctx, {"max_daily_usd": "x"})
    got, cfg = doctor.check_config(ctx)
    assert got.level == "fail" and "max_daily_usd" in got.detail and cfg is None
    ctx.paths.config.write_text("{")
    got, _ = doctor.check_config(ctx)
    assert got.level == "fail" and "not valid JSON" in got.detail
    _write(ctx, {"max_daily_usd": 3})
    got, _ = doctor.check_config(ctx)
    assert got.level == "ok"


def test_config_fails_on_a_bad_knob_in_the_env(ctx: Ctx) -> None:
    _write(ctx, {"max_daily_usd": 3})
    bad = dataclasses.replace(ctx, env={**ctx.env, "LOOOP_MAX_DAILY_USD": "lots"})
    got, _ = doctor.check_config(bad)
    assert got.level == "fail" and "LOOOP_MAX_DAILY_USD" in got.detail


def _exe(folder: Path, name: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text("#!/bin/sh\nexit 0\n")
    (folder / name).chmod(0o755)


def test_runner_cli_is_looked_up_on_the_env_path(ctx: Ctx, tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    _exe(tools, "mytick")
    cfg = parse_config(
        {
            "default": "r",
            "runners": {"r": {"tick": "A=1 mytick -p", "worker": "myw {{prompt_file}}"}},
        },
        "<t>",
    )
    on_path = dataclasses.replace(ctx, env={**ctx.env, "PATH": str(tools)})
    got = doctor.check_runner_cli(on_path, cfg)
    assert got.level == "fail" and "`myw`" in got.detail and "mytick" not in got.detail
    _exe(tools, "myw")
    assert doctor.check_runner_cli(on_path, cfg).level == "ok"
    assert doctor.check_runner_cli(ctx, cfg).level == "fail"  # the test's own PATH lacks both


def test_data_dir_verdicts(ctx: Ctx, tmp_path: Path) -> None:
    got = doctor.check_data_dir(ctx)
    assert got.level == "ok" and list(ctx.paths.data.glob(".doctor-*")) == []  # probe removed
    blocker = tmp_path / "afile"
    blocker.write_text("")
    for data, level in ((blocker, "fail"), (blocker / "sub", "fail"), (tmp_path / "new", "warn")):
        moved = dataclasses.replace(ctx, paths=Paths.at(data))
        assert doctor.check_data_dir(moved).level == level, data


@pytest.mark.parametrize(
    ("tick", "budget", "cost", "level"),
    [
        ("mytick", 10, None, "fail"),  # unmetered with a budget set: the breaker trips
        ("mytick", None, None, "warn"),  # the default budget: off for it, nothing caps it
        ("mytick", 0, None, "ok"),  # no budget: nothing trips
        ("mytick", 10, {"type": "result", "pointer": "/usd"}, "ok"),  # declared cost
        ("/usr/bin/claude -p", 10, None, "ok"),  # a stream the meter reads
        ("codex exec -", None, None, "ok"),
    ],
)
def test_budget_verdicts(
    tick: str, budget: float | None, cost: dict[str, str] | None, level: str
) -> None:
    values = dict(resolve_knobs(parse_config({}, "test"), {}).values)
    if budget is not None:
        values["max_daily_usd"] = float(budget)
    knobs = Knobs(values, frozenset() if budget is None else frozenset({"max_daily_usd"}))
    got = doctor.check_budget(_cfg(tick, cost=cost), knobs)  # type: ignore[arg-type]
    assert got.level == level
    if level == "fail":
        assert "after 3 decides" in got.detail and "runners.r.cost" in got.fix


def test_endpoint_verdicts(ctx: Ctx) -> None:
    cfg = _cfg("claude -p")
    assert doctor.check_endpoint(ctx, cfg).level == "skip"  # type: ignore[arg-type]
    seen: list[tuple[str, int, float]] = []

    def refuse(host: str, port: int, timeout: float) -> None:
        seen.append((host, port, timeout))
        raise ConnectionRefusedError(111, "Connection refused")

    env = dataclasses.replace(ctx, env={**ctx.env, "ANTHROPIC_BASE_URL": "https://llm.lan"})
    got = doctor.check_endpoint(env, cfg, refuse)  # type: ignore[arg-type]
    assert got.level == "fail" and "llm.lan:443" in got.detail and "refused" in got.detail
    assert seen == [("llm.lan", 443, 2.0)]
    got = doctor.check_endpoint(env, cfg, lambda h, p, t: None)  # type: ignore[arg-type]
    assert got.level == "ok"
    # a codex runner reads OPENAI_BASE_URL, not claude's variable
    assert doctor.check_endpoint(env, _cfg("codex exec -"), refuse).level == "skip"  # type: ignore[arg-type]


def test_service_verdicts(ctx: Ctx, tmp_path: Path) -> None:
    unit = tmp_path / "looop-x.service"
    want = lambda: (str(unit), "[Unit]\n")  # noqa: E731
    linger = tmp_path / "linger"
    linger.mkdir()
    c = dataclasses.replace(ctx, env={**ctx.env, "USER": "ann"})
    assert doctor.check_service(c, want, linger).level == "skip"
    unit.write_text("[Unit]\nold\n")
    got = doctor.check_service(c, want, linger)
    assert got.level == "warn" and "service install" in got.fix
    unit.write_text("[Unit]\n")
    got = doctor.check_service(c, want, linger)  # a user unit stops at logout unless lingering
    assert got.level == "warn" and got.fix == "run `loginctl enable-linger ann`"
    (linger / "ann").touch()
    assert doctor.check_service(c, want, linger).level == "ok"


def test_sandbox_off_is_skipped(ctx: Ctx) -> None:
    assert doctor.check_sandbox(ctx, _cfg("t")).level == "skip"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("extra", "level", "named"),
    [
        ({}, "ok", ""),  # as `init --sandbox` leaves it: every part boxed
        ({"shell_policy": {"sandbox": "off"}}, "warn", "its run_shell, sensors and verifies run"),
        ({"shell_policy": "off"}, "ok", ""),  # the tripwire off, the box still on
        ({"runner_off": True}, "warn", "the decide call and its run_shell, sensors and verifies"),
        ({"sandbox": "off"}, "skip", ""),
    ],
)
def test_doctor_names_each_part_of_the_decider_that_runs_unsandboxed(
    extra: dict[str, object], level: str, named: str
) -> None:
    spec: dict[str, object] = {"tick": "t", "worker": "w {{prompt_file}}"}
    if extra.pop("runner_off", False):
        spec["sandbox"] = "off"
    got = doctor.check_decider(
        parse_config({"default": "r", "runners": {"r": spec}, "sandbox": "on", **extra}, "t")
    )
    assert got.level == level, got.line()
    assert named in got.line() and "\n" not in got.line()


@pytest.mark.parametrize("runner", ["claude", "codex", "opencode", "gemini"])
def test_a_sandboxed_runner_whose_cli_never_ran_warns_what_to_run_once(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch, runner: str
) -> None:
    """What a sandboxed start of its worker would be refused for, said before any start (by
    doctor, and so at the end of init); the keys to press are an unsandboxed worker's only."""
    from looop.runners.presets import PRESETS

    monkeypatch.setattr(doctor, "missing", lambda env: [])  # srt and its parts are here
    obj = {"default": runner, "runners": {runner: PRESETS[runner]}, "sandbox": "on"}
    cfg = parse_config(obj, "<test>")
    home = ctx.paths.data.parent / "fresh-home"
    home.mkdir()
    fresh = dataclasses.replace(ctx, env={**ctx.env, "HOME": str(home)})
    got = doctor.check_sandbox(fresh, cfg)
    assert got.level == "warn" and f"run `{runner}` once outside looop" in got.line()
    assert "\n" not in got.line()
    off = parse_config({**obj, "sandbox": "off"}, "<test>")
    assert doctor.check_sandbox(fresh, off).level == "skip"  # unboxed: no such refusal
    own = {**PRESETS[runner], "sandbox": "off"}  # on at the top, off for this runner's workers
    mixed = parse_config({**obj, "runners": {runner: own}}, "<test>")
    assert doctor.check_sandbox(fresh, mixed).level == "ok"


def test_a_sandboxed_claude_whose_bypass_warning_was_never_accepted_warns_what_to_run(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Onboarded, but never ran claude with --dangerously-skip-permissions (the preset's):
    said before any start, and ok once settings.json holds the answer."""
    from looop.runners.presets import PRESETS

    monkeypatch.setattr(doctor, "missing", lambda env: [])
    home = ctx.paths.data.parent / "claude-home"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude.json").write_text(json.dumps({"hasCompletedOnboarding": True}))
    obj = {"default": "claude", "runners": {"claude": PRESETS["claude"]}, "sandbox": "on"}
    boxed = dataclasses.replace(ctx, env={**ctx.env, "HOME": str(home)})
    got = doctor.check_sandbox(boxed, parse_config(obj, "<test>"))
    assert got.level == "warn" and "\n" not in got.line()
    assert "run `claude --dangerously-skip-permissions` once outside looop" in got.line()
    settings = {"skipDangerousModePermissionPrompt": True}
    (home / ".claude" / "settings.json").write_text(json.dumps(settings))
    assert doctor.check_sandbox(boxed, parse_config(obj, "<test>")).level == "ok"


def test_a_sandboxed_runner_set_up_outside_is_ok(ctx: Ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    from looop.runners.presets import PRESETS

    monkeypatch.setattr(doctor, "missing", lambda env: [])
    home = ctx.paths.data.parent / "pi-home"
    home.mkdir()
    cfg = parse_config({"default": "pi", "runners": {"pi": PRESETS["pi"]}, "sandbox": "on"}, "t")
    got = doctor.check_sandbox(dataclasses.replace(ctx, env={**ctx.env, "HOME": str(home)}), cfg)
    assert got.level == "ok"  # pi asks nothing on its first start


def test_lines_json_and_summary() -> None:
    ok = doctor.Check("a", "ok", "fine")
    bad = doctor.Check("b", "fail", "broken", "do this")
    warn = doctor.Check("c", "warn", "odd", "look")
    assert bad.line() == "✗ b: broken — do this" and ok.line() == "✓ a: fine"
    assert warn.line().startswith("! c: odd")
    assert bad.as_json() == {
        "name": "b",
        "ok": False,
        "level": "fail",
        "detail": "broken",
        "fix": "do this",
    }
    assert warn.as_json()["ok"] is True
    assert doctor.summary([ok, ok]) == ["doctor: 2 checks, all ok"]
    got = doctor.summary([ok, bad, warn])
    assert got[:2] == [bad.line(), warn.line()] and "1 failing, 1 warning" in got[-1]


def test_runner_type_is_what_metered_reads() -> None:
    r = Runner("r", "mytick", "w {{prompt_file}}", cost=CostSpec("result", "/usd"))
    assert doctor.reports_cost(r)


def test_web_names_the_url_when_one_serves() -> None:
    assert doctor.check_web(None).level == "skip"
    got = doctor.check_web({"pid": 1, "url": "http://127.0.0.1:8765"})
    assert got.level == "ok" and "http://127.0.0.1:8765" in got.detail


def test_login_is_a_key_in_the_env_or_the_clis_own_credentials_file(
    ctx: Ctx, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    bare = dataclasses.replace(ctx, env={"PATH": "/usr/bin", "HOME": str(home)})
    claude = _cfg("claude -p --output-format stream-json")
    got = doctor.check_login(bare, claude)  # type: ignore[arg-type]
    assert got is not None and got.level == "warn" and got.ok
    assert "no login found" in got.detail and "/login" in got.fix
    keyed = dataclasses.replace(bare, env={**bare.env, "ANTHROPIC_API_KEY": "sk-x"})
    got = doctor.check_login(keyed, claude)  # type: ignore[arg-type]
    assert got is not None and got.level == "ok" and "ANTHROPIC_API_KEY" in got.detail
    assert "sk-x" not in got.line()  # the key's name, never its value
    (home / ".codex").mkdir()
    (home / ".codex" / "auth.json").write_text("")  # looop's placeholder: no login
    got = doctor.check_login(bare, _cfg("/usr/local/bin/codex exec --json"))  # type: ignore[arg-type]
    assert got is not None and got.level == "warn" and "no login found" in got.detail
    (home / ".codex" / "auth.json").write_text("{}")
    got = doctor.check_login(bare, _cfg("/usr/local/bin/codex exec --json"))  # type: ignore[arg-type]
    assert got is not None and got.level == "ok" and "auth.json" in got.detail
    got = doctor.check_login(bare, _cfg("pi -p"))  # type: ignore[arg-type]
    assert got is not None and got.level == "warn" and "pi" in got.detail
    assert doctor.check_login(bare, _cfg("./decide.sh")) is None  # a custom runner: skipped


def test_extras_lists_those_installed_and_warns_for_one_the_config_uses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert doctor.check_extras({}).line() == "✓ extras: installed: k8s, mcp, notify"
    monkeypatch.setitem(sys.modules, "apprise", None)  # as if `looop[notify]` were missing
    monkeypatch.setitem(sys.modules, "mcp", None)
    assert doctor.check_extras({}).line() == "✓ extras: installed: k8s; not: mcp, notify"
    got = doctor.check_extras({"notify_urls": ["ntfy://x"]})
    assert got.line() == (
        "! extras: installed: k8s; not: mcp, notify — "
        "pip install 'looop[notify]' (the config uses it)"
    )
