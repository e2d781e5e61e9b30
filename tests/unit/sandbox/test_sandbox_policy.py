"""The `sandbox` setting: parsed from the config, a decision and the flags with one-line errors,
resolved most-specific-first, turned into srt settings, and refused where srt cannot run."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from looop.act.decision import DecisionError
from looop.act.moves.workers import StartWorker
from looop.act.parse import parse_decision
from looop.core.context import Ctx
from looop.home.config import parse_config
from looop.home.errors import LooopError
from looop.home.sandboxpolicy import OFF, ON, SandboxPolicy, parse_sandbox, resolve
from looop.sandbox import endpoints, srt
from looop.sandbox import worker as sandbox
from looop.workers.boxed import with_note


def _cfg(**top: Any) -> dict[str, Any]:
    return {"default": "claude", "runners": {"claude": {"worker": "claude {{prompt_file}}"}}, **top}


def test_config_reads_off_on_and_an_object_at_the_top_and_per_runner() -> None:
    assert parse_config(_cfg(), "c.json").sandbox is None
    assert parse_config(_cfg(sandbox="off"), "c.json").sandbox == OFF
    assert parse_config(_cfg(sandbox="on"), "c.json").sandbox == ON
    obj = {"write": ["~/src/app"], "deny_read": ["/srv/secret"], "domains": ["*.github.com"]}
    got = parse_config(_cfg(sandbox=obj), "c.json").sandbox
    assert got == SandboxPolicy(True, ("~/src/app",), ("/srv/secret",), ("*.github.com",))
    raw = _cfg()
    raw["runners"]["claude"]["sandbox"] = "on"
    cfg = parse_config(raw, "c.json")
    runner = cfg.runner()
    assert runner is not None and runner.sandbox == ON


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("yes", "sandbox"),
        (True, "sandbox"),
        ({"write": "~/x"}, "sandbox.write"),
        ({"write": ["relative/dir"]}, "sandbox.write[0]"),
        ({"write": ["/a/../etc"]}, "sandbox.write[0]"),
        ({"deny_read": [3]}, "sandbox.deny_read[0]"),
        ({"domains": ["http://evil.com/x"]}, "sandbox.domains[0]"),
        ({"domains": ["a b"]}, "sandbox.domains[0]"),
        ({"domains": ["user@host"]}, "sandbox.domains[0]"),
        ({"netwrok": []}, "sandbox.netwrok"),
        ({"write": ["/x"] * 65}, "sandbox.write"),
    ],
)
def test_a_bad_sandbox_value_is_one_line_naming_its_key(value: object, key: str) -> None:
    with pytest.raises(LooopError) as e:
        parse_config(_cfg(sandbox=value), "c.json")
    msg = str(e.value)
    assert "\n" not in msg and f"key '{key}' must be" in msg
    raw = _cfg()
    raw["runners"]["claude"]["sandbox"] = value
    with pytest.raises(LooopError, match=f"'runners.claude.{key}'".replace("[", r"\[")):
        parse_config(raw, "c.json")


def test_the_config_key_is_known_so_it_is_not_warned_about() -> None:
    from looop.home.knobs import unknown_key_warnings

    raw = _cfg(sandbox="on")
    raw["runners"]["claude"]["sandbox"] = "off"
    assert unknown_key_warnings(parse_config(raw, "c.json")) == []


def test_start_worker_takes_a_sandbox_field_and_refuses_a_bad_one() -> None:
    d = parse_decision(
        json.dumps(
            {"action": "start_worker", "id": "w1", "prompt": "go", "sandbox": "off"}
        ).encode()
    )
    assert isinstance(d.action, StartWorker) and d.action.sandbox == OFF
    d = parse_decision(json.dumps({"action": "start_worker", "id": "w1", "prompt": "go"}).encode())
    assert isinstance(d.action, StartWorker) and d.action.sandbox is None
    bad = {"action": "start_worker", "id": "w1", "prompt": "go", "sandbox": {"write": [1]}}
    with pytest.raises(DecisionError, match=r"field 'sandbox.write\[0\]' must be"):
        parse_decision(json.dumps(bad).encode())


def test_the_most_specific_setting_decides_and_on_keeps_the_configs_additions() -> None:
    extra = parse_sandbox({"domains": ["example.com"]}, "sandbox")
    assert resolve(None, None, None) == OFF
    assert resolve(None, None, extra) == extra
    assert resolve(OFF, ON, extra) == OFF
    assert resolve(None, OFF, extra) == OFF
    assert resolve(ON, None, extra) == extra  # --sandbox over a config policy keeps its lists
    assert resolve(ON, OFF, extra) == extra
    assert resolve(None, ON, None) == ON
    own = parse_sandbox({"write": ["/w"]}, "sandbox")
    assert resolve(own, None, extra) == own


def test_settings_deny_secrets_and_the_data_dir_and_write_only_the_room(ctx: Ctx) -> None:
    home = str(ctx.paths.data.parent)
    (ctx.paths.sessions / "other").mkdir(parents=True)
    (ctx.paths.sessions / "w1").mkdir(parents=True)
    ctx.paths.prompts.mkdir()
    (ctx.paths.prompts / "other.md").write_text("theirs")
    (ctx.paths.prompts / "w1.md").write_text("mine")
    (ctx.paths.data / "sandbox" / "other").mkdir(parents=True)
    policy = parse_sandbox({"write": ["~/src"], "domains": ["127.0.0.1:9"]}, "sandbox")
    conf: Any = sandbox.settings(ctx, "w1", "claude", policy, home)
    fs, net = conf["filesystem"], conf["network"]
    data = str(ctx.paths.data)
    assert f"{home}/.ssh" in fs["denyRead"] and f"{home}/.aws" in fs["denyRead"]
    # the data dir is denied whole, and only what the worker reads comes back: its brief, its
    # knobs and the PLAYBOOK (others' terminals, asks, answers and sessions stay hidden)
    assert data in fs["denyRead"] and str(ctx.paths.config) in fs["denyRead"]
    assert sorted(fs["allowRead"]) == sorted(
        [f"{data}/prompts/w1.md", f"{data}/sandbox/w1/config.json", f"{data}/PLAYBOOK.md"]
    )
    for name in ("web-token", "worker-token-key", "web.log"):  # nothing lets a credential back
        cred = f"{data}/.lock/{name}"
        assert not any(cred.startswith(a) for a in fs["allowRead"] + fs["allowWrite"])
    # one door: nothing it may write is in the data dir (its room is beside it)
    assert not [w for w in fs["allowWrite"] if w == data or w.startswith(data + "/")]
    room = f"{ctx.paths.work}/rooms/w1"
    assert {f"{room}/work", f"{room}/tmp", f"{room}/reports"} <= set(fs["allowWrite"])
    assert f"{home}/src" in fs["allowWrite"] and f"{home}/.claude/projects" in fs["allowWrite"]
    # the user's claude settings and answers stay read-only: only its session folders are written
    assert not {f"{home}/.claude", f"{home}/.claude.json"} & set(fs["allowWrite"])
    assert str(ctx.paths.config) not in fs["allowWrite"]
    assert net["allowedDomains"] == ["api.anthropic.com", "statsig.anthropic.com", "127.0.0.1:9"]
    conf = sandbox.settings(ctx, "w1", "my-own-cli", ON, home)
    assert conf["network"]["allowedDomains"] == []  # a custom runner: only the user's list


def test_with_note_adds_the_walls_as_the_contracts_last_rule() -> None:
    from looop.workers.launch import contract_text

    plain = contract_text("w1", "claude")
    noted = with_note(plain, "w1")
    assert noted.startswith(plain[: plain.index("- **Need a human")])
    assert "$LOOOP_WORKSPACE" in noted and noted.endswith(plain[plain.rindex("\n---\n") :])
    assert noted.rstrip().rsplit("\n- ", 1)[1].startswith("**Sandbox**")


def test_the_sandboxed_brief_offers_nothing_that_fails_inside() -> None:
    """A worktree in /tmp (read-only) and writes to reports/ in the data dir (read-only) are
    what the plain brief says and the sandbox refuses: the sandboxed one says what works
    instead — its room, and the verbs that reach looop through its door (ask, flag, its own
    kill) — and keeps every other rule."""
    from looop.workers.launch import contract_text

    plain = contract_text("w1", "claude")
    noted = with_note(plain, "w1")
    for gone in ("worktree add", "`reports/` (deliverables", "`claims/` (via claim)"):
        assert gone in plain and gone not in noted
    for kept in ('"$LOOOP_BIN" kill w1', '"$LOOOP_BIN" flag w1', '"$LOOOP_BIN" claim'):
        assert kept in noted
    assert '"$LOOOP_REPORTS_DIR"' in noted
    assert 'git clone <repo> "$LOOOP_WORKSPACE/<dir>"' in noted
    heads = [line.split("**")[1] for line in plain.splitlines() if line.startswith("- **")]
    assert [line.split("**")[1] for line in noted.splitlines() if line.startswith("- **")] == [
        *heads,
        "Sandbox",
    ]


@pytest.mark.parametrize(
    ("domain", "loop"),
    [
        ("127.0.0.1:8080", True),
        ("localhost", True),
        ("[::1]:80", True),
        ("api.anthropic.com", False),
        ("10.0.0.1", False),
    ],
)
def test_loopback_domains_are_told_apart(domain: str, loop: bool) -> None:
    assert endpoints.is_loopback(domain) is loop


def _exe(path: Path) -> None:
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _proc(tmp_path: Path, **values: str) -> str:
    proc = tmp_path / "proc"
    for rel, v in values.items():
        f = proc / rel.replace("__", "/")
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(v + "\n")
    return str(proc)


def test_what_is_missing_is_named_with_how_to_install_it(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"PATH": str(empty)}
    gone = sandbox.missing(env, _proc(tmp_path))
    assert [g.split(" ")[0] for g in gone] == ["srt", "node", "bwrap", "socat", "rg"]
    assert "apt-get install bubblewrap" in gone[2]
    with pytest.raises(sandbox.SandboxError) as e:
        sandbox.require(env, "worker w1", _proc(tmp_path))
    assert "\n" not in str(e.value) and "--no-sandbox" in str(e.value)
    for prog in ("srt", "node", "bwrap", "socat", "rg"):
        _exe(empty / prog)
    assert sandbox.missing(env, _proc(tmp_path)) == []
    off = _proc(tmp_path / "off", sys__user__max_user_namespaces="0")
    assert [g.split(" ")[0] for g in sandbox.missing(env, off)] == ["user"]
    assert sandbox.missing({**env, "LOOOP_SRT": str(tmp_path / "nope")}, _proc(tmp_path)) == [
        f"srt (LOOOP_SRT={tmp_path / 'nope'} is not an executable file)"
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may always make user namespaces")
def test_user_namespaces_denied_to_a_user_are_named(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    for prog in ("srt", "node", "bwrap", "socat", "rg"):
        _exe(empty / prog)
    proc = _proc(tmp_path, sys__kernel__apparmor_restrict_unprivileged_userns="1")
    assert "AppArmor" in " ".join(sandbox.missing({"PATH": str(empty)}, proc))


def test_run_shell_sandbox_lives_in_shell_policy_with_one_line_errors() -> None:
    assert parse_config(_cfg(), "c.json").shell_policy.sandbox == OFF
    cfg = parse_config(_cfg(shell_policy={"sandbox": {"domains": ["pypi.org"]}}), "c.json")
    assert cfg.shell_policy.sandbox == SandboxPolicy(True, domains=("pypi.org",))
    assert cfg.shell_policy.mode == "tripwire"  # the tripwire stays on beside it
    with pytest.raises(LooopError, match=r"key 'shell_policy.sandbox' must be"):
        parse_config(_cfg(shell_policy={"sandbox": "yes"}), "c.json")


def test_the_shells_sandbox_is_the_deciders_unless_shell_policy_says_otherwise() -> None:
    """`init --sandbox` boxes the decider: its run_shell, sensors and verifies with it, or a
    decided run_shell could rewrite the config and unbox the next worker."""
    assert parse_config(_cfg(sandbox="on"), "c.json").shell_policy.sandbox == ON
    assert parse_config(_cfg(sandbox="on", shell_policy="off"), "c.json").shell_policy.sandbox == ON
    mine = {"worker": "claude {{prompt_file}}", "sandbox": {"domains": ["pypi.org"]}}
    cfg = parse_config(_cfg(runners={"claude": mine}), "c.json")  # the decider's own, not the top's
    assert cfg.shell_policy.sandbox == SandboxPolicy(True, domains=("pypi.org",))
    off = parse_config(_cfg(sandbox="on", shell_policy={"sandbox": "off"}), "c.json")
    assert off.shell_policy.sandbox == OFF  # the human's word wins, and doctor names it
    assert parse_config(_cfg(sandbox="off"), "c.json").shell_policy.sandbox == OFF


def test_no_box_writes_the_config_or_a_script_it_runs_in_a_folder_it_may_write(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "shared"
    (shared / "bin").mkdir(parents=True)
    hook, wrapper, kept = shared / "bin" / "notify.sh", tmp_path / "decide.sh", shared / "x"
    for f in (hook, wrapper, kept):
        f.write_text("")
    cfg = tmp_path / "config.json"
    runner = {"tick": f"sh '{wrapper}' {{{{prompt_file}}}}", "worker": "w {{prompt_file}}"}
    obj = {"runners": {"r": runner}, "notification": f"{hook} x", "sandbox": {"write": [str(kept)]}}
    cfg.write_text(json.dumps(obj))
    assert sorted(srt.policy_files(str(cfg), None)) == sorted(map(str, (cfg, hook, wrapper)))
    walls = srt.conf([str(shared)], [], [], [], None, str(cfg))["filesystem"]
    assert isinstance(walls, dict)
    # the hook's folder is a mount point inside: it can be neither written nor renamed away
    assert walls["denyWrite"] == [str(shared / "bin")] and str(cfg) in walls["denyRead"]


def test_the_runners_own_code_running_settings_are_locked_where_they_exist(ctx: Ctx) -> None:
    """codex's folder is writable (its databases live there): what it runs or obeys is
    locked — a file where it exists (made, holding what codex reads as none, where codex
    takes one for none; an empty auth.json is no login), a folder always."""
    home = ctx.paths.data.parent
    codex = home / ".codex"
    conf: Any = sandbox.settings(ctx, "w1", "codex", ON, str(home))
    assert str(codex) in conf["filesystem"]["allowWrite"]
    assert str(codex / "config.toml") not in conf["filesystem"]["denyWrite"]
    codex.mkdir()
    (codex / "config.toml").write_text("")
    sandbox._make_room(ctx, "w1", "codex", str(home))
    conf = sandbox.settings(ctx, "w1", "codex", ON, str(home))
    locked = set(conf["filesystem"]["denyWrite"])
    assert str(codex / "config.toml") in locked
    for name in ("rules", "prompts", "skills", "packages"):
        assert (codex / name).is_dir() and str(codex / name) in locked, name
    assert (codex / "config.toml").read_text() == ""  # the user's own, kept
    assert (codex / "hooks.json").read_text() == "{}\n"  # made: locked like the user's
    assert str(codex / "hooks.json") in locked and str(codex / "AGENTS.md") in locked
    # codex reads an empty one as no login: made so a box cannot plant one, and locked
    assert (codex / "auth.json").read_text() == "" and str(codex / "auth.json") in locked


def test_the_users_cli_config_is_read_only_in_its_box_for_every_preset(ctx: Ctx) -> None:
    """No preset's box writes the CLI's settings, answers or credentials the user's own CLI
    reads outside: each is outside allowWrite, or locked inside it."""
    home = ctx.paths.data.parent
    config = {
        "claude": ("~/.claude.json", "~/.claude/settings.json", "~/.claude/hooks"),
        "codex": ("~/.codex/config.toml", "~/.codex/rules"),
        "pi": ("~/.pi/agent/settings.json", "~/.pi/agent/models.json", "~/.pi/agent/auth.json"),
        "opencode": ("~/.config/opencode/opencode.json", "~/.cache/opencode/node_modules"),
    }
    for runner, items in config.items():
        for item in items:
            path = home / item[2:]
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.write_text("{}")
        conf: Any = sandbox.settings(ctx, "w1", runner, ON, str(home))
        fs = conf["filesystem"]
        for item in items:
            path = str(home / item[2:])
            writable = [w for w in fs["allowWrite"] if path == w or path.startswith(w + "/")]
            locked = [d for d in fs["denyWrite"] if path == d or path.startswith(d + "/")]
            assert not writable or locked, (runner, item)


@pytest.mark.timeout(30)
@pytest.mark.process
def test_a_decision_cannot_loosen_the_configs_sandbox_but_a_human_can(ctx: Ctx) -> None:
    from looop.sessions.client import kill
    from looop.sessions.state import list_sessions
    from looop.workers.errors import WorkerError
    from looop.workers.launch import start_worker
    from looop.workers.started import StartRequest

    ctx.paths.config.write_text(json.dumps(_cfg(sandbox={"domains": ["example.com"]})))
    knobs = ctx.knobs()
    for loose in (OFF, parse_sandbox({"domains": ["evil.example"]}, "sandbox")):
        with pytest.raises(WorkerError, match="a decision cannot loosen"):
            start_worker(
                ctx,
                knobs,
                StartRequest(
                    "w1", "go", command="sleep 30 # {{prompt_file}}", sandbox=loose, decided=True
                ),
            )
    assert list_sessions(ctx.paths.data) == []  # refused before anything started
    started = start_worker(
        ctx, knobs, StartRequest("w1", "go", command="tail -f {{prompt_file}}", sandbox=OFF)
    )
    try:
        assert started.session.cmd[:1] == ["tail"]  # a human may run it unsandboxed
    finally:
        kill(ctx.paths.data, "w1")
