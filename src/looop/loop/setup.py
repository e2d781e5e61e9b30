"""`looop init`: write the runner wiring from a preset, interactively or from flags."""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from typing import Any

import click

from looop.core.context import Ctx
from looop.home import jsonio, store
from looop.home.config import Config, Knobs, Runner, parse_config
from looop.home.errors import LooopError
from looop.home.sandboxpolicy import parse_sandbox
from looop.loop.doctor import off_path
from looop.loop.homeguard import refuse_unsafe
from looop.runners import RUNNERS, names, profile
from looop.runners.presets import DEFAULT_RUNNER, PLACEHOLDER, PRESETS
from looop.runners.runnerprofile import RunnerProfile
from looop.sandbox.endpoints import endpoints
from looop.sandbox.worker import missing
from looop.seed import SETUP_ASK, ensure_data_dir, seed_setup_ask
from looop.spend.statusspend import UNMETERED_LIMIT, reports_cost

RUNNER_CHOICES = [*names(), "custom"]


def preset_notes(
    runner: str, env: dict[str, str] | Any, runners: tuple[RunnerProfile, ...] = RUNNERS
) -> list[str]:
    """What a user of this preset must know (its profile's notes); verified against the real
    CLIs (tests/realcli)."""
    p = profile(runner, runners)
    if p is None:
        return []
    root = p.root_note and os.geteuid() == 0 and env.get("IS_SANDBOX") != "1"
    return [n for n in (p.root_note if root else "", p.note) if n]


@dataclass
class InitRequest:
    """One `looop init` as it goes: the flags, the config found, then the choice made."""

    ctx: Ctx
    raw: str | None  # the config file's text, None when there is none
    existing: dict[str, Any]  # its object ({} when unreadable)
    tick: str | None
    worker: str | None
    sandbox: bool | None
    name: str = ""
    gone: list[str] | None = None  # what srt lacks here: asked once, when first needed
    defaulted: bool = False  # the sandbox setting chosen for the user (no flag, no answer)
    unreadable: str | None = None  # why the config found is no config ("not valid JSON")
    kept: str | None = None  # where that config was set aside before the new one was written


def init_config(
    ctx: Ctx,
    runner: str | None,
    tick: str | None,
    worker: str | None,
    force: bool,
    interactive: bool,
    sandbox: bool | None = None,
) -> list[str]:
    """Ask (interactively) and validate everything first, then create the data dir and write
    the config: a refused or cancelled init leaves nothing behind. sandbox: --sandbox /
    --no-sandbox (None keeps what the config says)."""
    refuse_unsafe(ctx.paths)  # another user's writes would run as you: fixed first
    req = _read_request(ctx, tick, worker, sandbox)
    if not _choose(req, runner, force, interactive):
        return ["kept the existing config"]
    _default_sandbox(req)
    _check_commands(req.name, req.tick, req.worker)
    new = _compose(req)
    # refuse to write something we cannot read back
    cfg = parse_config(new, str(ctx.paths.config))
    asked = _write(req, new)
    return _report(req, cfg, asked)


def _read_request(
    ctx: Ctx, tick: str | None, worker: str | None, sandbox: bool | None
) -> InitRequest:
    existing: dict[str, Any] = {}
    unreadable = None
    raw = store.read_text(ctx.paths.config)
    if raw is not None:
        try:
            obj = jsonio.loads(raw)
            existing = obj if isinstance(obj, dict) else {}
            unreadable = None if isinstance(obj, dict) else "not a JSON object"
        except ValueError:  # json's own error
            unreadable = "not valid JSON"
    return InitRequest(ctx, raw, existing, tick, worker, sandbox, unreadable=unreadable)


def _choose(req: InitRequest, runner: str | None, force: bool, interactive: bool) -> bool:
    """The runner and its commands, asked or from the flags and the preset; False when the
    user keeps the config there is."""
    cfg_path = req.ctx.paths.config
    if req.raw is not None and not force and not interactive and _was_initialised(req.existing):
        raise LooopError(f"{cfg_path} already holds a runner choice — pass --force to replace it")
    if not interactive:
        req.name = runner or DEFAULT_RUNNER
        preset = PRESETS.get(req.name, {"tick": "", "worker": ""})
        req.tick = req.tick if req.tick is not None else preset["tick"]
        req.worker = req.worker if req.worker is not None else preset["worker"]
        return True
    try:
        if _was_initialised(req.existing) and not click.confirm(
            f"{cfg_path} already chooses a runner. Replace it?", default=False
        ):
            return False
        req.name, req.tick, req.worker = _ask(runner, req.tick, req.worker)
        if req.sandbox is None:
            req.gone = missing(req.ctx.child_env())
            req.sandbox = _ask_sandbox(req.gone)
    except click.Abort:
        raise InitCancelled("init cancelled — nothing was written") from None
    return True


def _default_sandbox(req: InitRequest) -> None:
    req.defaulted = req.sandbox is None and "sandbox" not in req.existing
    if req.defaulted:
        # no flag, no answer and no setting yet: sandboxed by default wherever srt can run
        req.gone = missing(req.ctx.child_env())
        req.sandbox = not req.gone


def _compose(req: InitRequest) -> dict[str, Any]:
    """The new config: the chosen runner, the other knobs kept."""
    existing, name, sandbox = req.existing, req.name, req.sandbox
    knobs = {k: v for k, v in existing.items() if k not in _RUNNER_KEYS}
    spec: dict[str, Any] = {"tick": req.tick, "worker": req.worker}
    old_runners = existing.get("runners")
    old_spec = old_runners.get(name) if isinstance(old_runners, dict) else None
    if isinstance(old_spec, dict) and "cost" in old_spec:
        spec["cost"] = old_spec["cost"]  # a declared cost spec outlives a re-init
    new: dict[str, Any] = {"default": name, "runners": {name: spec}, **knobs}
    if sandbox is not None and not (sandbox and _is_on(existing.get("sandbox"))):
        new["sandbox"] = "on" if sandbox else "off"  # an existing policy that is on stays
    return new


def _write(req: InitRequest, new: dict[str, Any]) -> bool:
    """The data dir, the config and the setup ask; whether that ask was seeded now."""
    ctx, cfg_path = req.ctx, req.ctx.paths.config
    ensure_data_dir(ctx.paths)
    cfg_path.parent.mkdir(parents=True, exist_ok=True)
    dropped = _dropped(req.existing, new)
    if dropped:
        req.unreadable = req.unreadable or f"{', '.join(dropped)} replaced"
    if req.unreadable is not None:
        req.kept = _keep_aside(req)
    store.atomic_write(cfg_path, jsonio.dumps(new, indent=2, ensure_ascii=False) + "\n")
    for stale in (ctx.paths.last_failure, ctx.paths.backoff):  # the previous runner's
        store.remove(stale)
    return seed_setup_ask(ctx.paths, ctx.clock.now())


def _dropped(existing: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The runner settings of the user's own (not a preset as it ships) that the new config
    no longer holds as they were: a forced re-init replaces them, their file is kept aside."""
    old_runners = existing.get("runners")
    runners = old_runners if isinstance(old_runners, dict) else {}
    out = [
        f"runners.{name}"
        for name, spec in sorted(runners.items())
        if spec != new["runners"].get(name) and spec != PRESETS.get(str(name))
    ]
    return out + [k for k in ("tick_command", "worker_command") if existing.get(k)]


def _keep_aside(req: InitRequest) -> str:
    """A config init cannot read is the user's work all the same: copied whole, as private as
    it was, to `config.json.bak-YYYYmmdd-HHMMSS` (a name of its own) before it is replaced."""
    cfg, clock = req.ctx.paths.config, req.ctx.clock
    try:
        raw = cfg.read_bytes()
        mode = stat.S_IMODE(cfg.stat().st_mode)
    except OSError as e:
        raise LooopError(
            f"cannot keep {cfg} before replacing it ({e.strerror}) — "
            "move it aside yourself, then run `looop init` again"
        ) from None
    stamp = time.strftime("%Y%m%d-%H%M%S", clock.local_tm(clock.now()))
    for n in range(100):
        bak = cfg.with_name(f"{cfg.name}.bak-{stamp}" + (f"-{n}" if n else ""))
        if store.create_new(bak, raw, mode):
            return str(bak)
    raise LooopError(f"cannot keep {cfg}: 100 copies from this second already — move them")


def _report(req: InitRequest, cfg: Config, asked: bool) -> list[str]:
    ctx, name, tick, worker = req.ctx, req.name, req.tick, req.worker
    lines = [f"kept the old config ({req.unreadable}) as {req.kept}"] if req.kept else []
    lines += [
        f"wrote {ctx.paths.config} (runner: {name})",
        f"  tick:   {tick}",
        f"  worker: {worker}",
    ]
    gone = off_path(ctx, tick, worker)[1]
    if gone:
        lines.append(f"warning: `{gone[0]}` is not on PATH yet — install it before `looop up`")
    lines += preset_notes(name, ctx.env)
    if req.defaulted and req.gone:
        lines.append(
            "  sandbox: off — srt cannot run here (missing " + "; ".join(req.gone) + "); once it "
            "can, `looop init --sandbox --force` turns it on (docs/THREAT_MODEL.md)"
        )
    if cfg.sandbox is not None and cfg.sandbox.on:
        lines += _sandbox_lines(req, cfg)
    if name == "custom":
        lines += _unmetered_note(name, ctx.knobs(cfg), cfg.runners[name])
    if asked:
        lines.append(f"ask {SETUP_ASK}: the first-run setup waits for you (`looop asks`)")
    lines.append("next: `looop tick --dry-run` to see the prompt, `looop up` to start the pulse")
    return lines


def _sandbox_lines(req: InitRequest, cfg: Config) -> list[str]:

    assert cfg.sandbox is not None
    who = "the decider and every worker run" if cfg.decider().on else "every worker runs"
    lines = [f"  sandbox: on — {who} inside srt (docs/THREAT_MODEL.md)"]
    lines += endpoint_lines(req.name, req.ctx.child_env())
    gone = req.gone if req.gone is not None else missing(req.ctx.child_env())
    if gone:
        lines.append("warning: the sandbox cannot run here yet — missing " + "; ".join(gone))
    return lines


class InitCancelled(LooopError):
    """Ctrl-C or EOF at a question (exit 130)."""


_RUNNER_KEYS = ("default", "runners", "tick_command", "worker_command", "tick", "interactive",
                "runner", "v")  # fmt: skip


def _ask(
    runner: str | None, tick: str | None, worker: str | None
) -> tuple[str, str | None, str | None]:
    """The interactive questions; click.Abort on Ctrl-C or EOF."""
    name = click.prompt(
        "Runner", type=click.Choice(RUNNER_CHOICES), default=runner or DEFAULT_RUNNER
    )
    preset = PRESETS.get(name, {"tick": "", "worker": ""})
    tick = click.prompt(
        "Tick command (one decision; prompt on stdin or {{prompt_file}})",
        default=tick or preset["tick"] or None,
    )
    while True:
        worker = click.prompt(
            "Worker command (must contain {{prompt_file}})",
            default=worker or preset["worker"] or None,
        )
        if worker and PLACEHOLDER in worker:
            return name, tick, worker
        click.echo("the worker command must contain {{prompt_file}}")


def endpoint_lines(runner: str, env: dict[str, str]) -> list[str]:
    """The model endpoint this runner is pointed at, as its sandbox treats it (sandbox/endpoints):
    allowed by itself, or to be listed in the config's `sandbox.domains`."""

    out = []
    for e in endpoints(runner, env, env.get("HOME")):
        if e.auto:
            out.append(f"  sandbox: model endpoint {e.entry} allowed (from {e.source})")
        else:
            then = "a sandboxed start refuses until you " if e.in_use else ""
            out.append(
                f"  sandbox: model endpoint {e.entry} (from {e.source}) is off this machine's "
                f"network, set in a file a sandboxed worker could write, so not allowed by "
                f'itself — {then}add "{e.entry}" to the config\'s "sandbox": {{"domains": [...]}}'
            )
    return out


def _ask_sandbox(gone: list[str]) -> bool:
    """Sandbox the workers? Yes by default where srt can run here (nothing `gone`); where
    it cannot, the line says what is missing first and the default is no. click.Abort on
    Ctrl-C or EOF."""
    if gone:
        click.echo("the sandbox cannot run here yet — missing " + "; ".join(gone))
    return click.confirm(
        "Run every worker inside a sandbox (srt: it writes only its workspace, network only "
        "to its model API; docs/THREAT_MODEL.md)?",
        default=not gone,
    )


def _is_on(raw: object) -> bool:
    """Whether a config's `sandbox` value is a policy that is on (unreadable: no)."""
    if raw is None:
        return False

    try:
        return parse_sandbox(raw, "sandbox").on
    except ValueError:
        return False


def _check_commands(name: str, tick: str | None, worker: str | None) -> None:
    """Name what is missing (both when both are), then what is malformed."""
    missing = [
        flag
        for flag, cmd in (("--tick-command", tick), ("--worker-command", worker))
        if not cmd or not cmd.strip()
    ]
    what = {
        "--tick-command": "the one-shot decide command",
        "--worker-command": f"the worker launch command, with {PLACEHOLDER} where the brief goes",
    }
    if missing:
        raise LooopError(
            f"runner '{name}' needs " + " and ".join(f"{m} ({what[m]})" for m in missing)
        )
    if worker is not None and PLACEHOLDER not in worker:
        raise LooopError(
            f"--worker-command must contain {PLACEHOLDER} (where the worker brief "
            "goes), e.g. 'my-agent \"$(cat {{prompt_file}})\"'"
        )


def _unmetered_note(name: str, knobs: Knobs, runner: Runner) -> list[str]:
    """What the daily budget does for a runner looop cannot meter: under the default budget
    its decides are not counted (said in one line); a budget the user set trips the unmetered
    breaker."""

    budget = knobs.real("max_daily_usd")
    if budget <= 0 or reports_cost(runner):
        return []
    if "max_daily_usd" not in knobs.given:
        return [
            f"note: '{name}' reports no cost, so the daily budget does not count its decides: "
            f"nothing caps what they spend. To cap them, declare where it prints its "
            f'cost (config runners.{name}.cost = {{"type": …, "pointer": "/…", "mode": "sum"}}) '
            "and set max_daily_usd"
        ]
    metered = "/".join(p.name for p in RUNNERS if p.reports_cost)
    return [
        f"warning: looop reads spend only from {metered} streams — with the "
        f"daily budget on (max_daily_usd {budget:g}), {UNMETERED_LIMIT} decides in a row that "
        f"report no cost stop the AI (the unmetered breaker). Declare where '{name}' prints "
        f'its cost (config runners.{name}.cost = {{"type": …, "pointer": "/…", "mode": "sum"}}) '
        'or turn the budget off ("max_daily_usd": 0 in the config)'
    ]


def _was_initialised(obj: dict[str, Any]) -> bool:
    """The seeded default lists every preset; a real choice names fewer runners."""
    runners = obj.get("runners")
    if isinstance(runners, dict):
        return len(runners) < len(PRESETS) or obj.get("default") not in (None, DEFAULT_RUNNER)
    return "tick_command" in obj or "tick" in obj
