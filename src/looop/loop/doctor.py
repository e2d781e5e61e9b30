"""`looop doctor`: what a run depends on, one check each, with the fix for a failing one.

Each check is a small function of the Ctx (its env, never the process's) and the config it
read; none changes the home beyond a probe file it removes again."""

from __future__ import annotations

import os
import shlex
import socket
import stat
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from looop.core import limits
from looop.core.context import Ctx
from looop.core.webconfig import mcp_over_http
from looop.home import store
from looop.home.config import EXTRAS, Config, Knobs
from looop.home.errors import WRITABLE_FIX, LooopError
from looop.home.knobs import resolve_knobs, unknown_key_warnings
from looop.home.sandboxpolicy import resolve
from looop.home.where import program_on
from looop.loop.diskcheck import fullest
from looop.loop.homeguard import problem
from looop.loop.service import LINGER, Service, default_name, linger_fix, render
from looop.remote.hosts import hosts_dir, names
from looop.runners import RUNNERS, profile
from looop.runners.runnerprofile import RunnerProfile
from looop.sandbox.srt import SandboxError, missing
from looop.spend.statusspend import UNMETERED_LIMIT, daily_budget, reports_cost, unmetered_armed
from looop.views.status import CLOCK_WAKES, disk_full
from looop.workers import boxed as box

Level = Literal["ok", "warn", "fail", "skip"]
MARK = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "-"}
CONNECT_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Check:
    name: str
    level: Level
    detail: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.level != "fail"

    def line(self) -> str:
        tail = f" — {self.fix}" if self.fix and self.level in ("fail", "warn") else ""
        return f"{MARK[self.level]} {self.name}: {self.detail}{tail}"

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok} | asdict(self)


def check_config(ctx: Ctx) -> tuple[Check, Config | None]:
    """Readable, valid, every key one looop reads, every knob a good value."""

    fix = f"edit {ctx.paths.config} or re-run `looop init --force`"
    try:
        cfg = ctx.config()
    except LooopError as e:
        return Check("config", "fail", " ".join(str(e).split()), fix), None
    if not cfg.exists:
        return Check(
            "config", "warn", f"no {cfg.source} yet: the defaults run", "`looop init`"
        ), cfg
    bad = unknown_key_warnings(cfg)
    if bad:
        return Check("config", "fail", "; ".join(bad), fix), cfg
    said: list[str] = []
    try:
        resolve_knobs(cfg, ctx.env, said.append)
    except (LooopError, ValueError) as e:
        return Check("config", "fail", " ".join(str(e).split()), fix), cfg
    if said:  # a bad LOOOP_* value in the environment falls back to the default
        return Check("config", "fail", "; ".join(said)), cfg  # each names its fix
    return Check("config", "ok", f"{cfg.source} is valid"), cfg


def first_word(command: str) -> str | None:
    """The program a command line runs, past VAR=value words (None: no words, bad quotes)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    while words and "=" in words[0] and not words[0].startswith(("-", "/", ".")):
        words.pop(0)  # VAR=value prefixes
    return words[0] if words else None


def off_path(ctx: Ctx, *commands: str | None) -> tuple[list[str], list[str]]:
    """(the programs the commands run, each once; those not on the PATH looop hands its
    children)."""
    seen: list[str] = []
    for cmd in commands:
        exe = first_word(cmd or "")
        if exe and not exe.startswith("$") and exe not in seen:
            seen.append(exe)
    path = ctx.child_env().get("PATH")
    return seen, [e for e in seen if program_on(e, path) is None]


def check_runner_cli(ctx: Ctx, cfg: Config) -> Check:
    """The first word of the default runner's tick and worker commands, on the PATH looop
    hands its children."""
    runner = cfg.runner()
    if runner is None:
        return Check("runner", "fail", "no default runner", "`looop init`")
    seen, gone = off_path(ctx, runner.tick, runner.worker)
    if gone:
        return Check(
            "runner",
            "fail",
            f"runner '{runner.name}': " + ", ".join(f"`{e}`" for e in gone) + " not on PATH",
            "install it, or put its directory on the PATH the pulse starts with",
        )
    found = ", ".join(f"`{e}`" for e in seen) or "its commands"
    return Check("runner", "ok", f"runner '{runner.name}': {found} on PATH")


def check_login(
    ctx: Ctx, cfg: Config, runners: tuple[RunnerProfile, ...] = RUNNERS
) -> Check | None:
    """A preset CLI's login: its credentials file, or an env key it reads instead. Only a
    warning when none is found: a CLI may keep it elsewhere (a keychain, a helper)."""
    exe, p = _preset(cfg, runners)
    if p is None:
        return None  # a custom runner: its own business
    env = ctx.child_env()
    keys = [k for k in p.login_env if env.get(k)]
    if keys:
        return Check("login", "ok", f"{exe}: {keys[0]} is set")
    home = env.get("HOME", "")
    for var, rel in p.login_files:
        base = env.get(var, "") if var else home
        # an empty one is no login (looop's placeholder, sandbox/srt.py)
        if base and _has_bytes(os.path.join(base, rel)):
            return Check("login", "ok", f"{exe}: {os.path.join(base, rel)}")
    return Check("login", "warn", f"{exe}: no login found (no key in the env, no credentials "
                 f"file under {home or '$HOME'})", p.login_fix)  # fmt: skip


def _preset(cfg: Config, runners: tuple[RunnerProfile, ...]) -> tuple[str, RunnerProfile | None]:
    """The default runner's program name, and its preset's profile (None: a custom one)."""
    runner = cfg.runner()
    exe = (first_word(runner.tick or "") or "").rsplit("/", 1)[-1] if runner else ""
    return exe, profile(exe, runners)


def _has_bytes(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size > 0


def check_data_dir(ctx: Ctx) -> Check:
    """A probe file created (O_EXCL) and removed in the data dir."""
    data = ctx.paths.data
    if not data.exists():
        up = data.parent
        while not up.exists() and up != up.parent:
            up = up.parent
        if not up.is_dir():  # under a file: no init can make it
            return Check(
                "data dir",
                "fail",
                f"{data} cannot be made: {up} is not a directory",
                "point LOOOP_DATA_DIR at a directory",
            )
        return Check("data dir", "warn", f"{data} does not exist yet", "`looop init` creates it")
    try:
        fd, probe = tempfile.mkstemp(prefix=".doctor-", dir=data)
    except OSError as e:
        return Check(
            "data dir",
            "fail",
            f"{data} is not writable ({e.strerror})",
            WRITABLE_FIX,
        )
    os.close(fd)
    os.unlink(probe)
    full = disk_full(str(data))
    if full:  # an empty file fits on a full disk: no beat's would
        who = fullest(ctx.paths)
        fix = f"free space in it ({who})" if who else "free space in it"
        return Check("data dir", "fail", f"{data}: {full.split(' — ')[0]}", fix)
    return Check("data dir", "ok", f"{data} is writable")


def check_home(ctx: Ctx) -> Check:
    """Only this user (and root) can write the data dir, the config and the folders above."""
    said = problem(ctx.paths)
    if said is not None:
        return Check("owner", "fail", *said)
    return Check("owner", "ok", "only you can write the data dir and the config")


def check_sandbox(ctx: Ctx, cfg: Config) -> Check:
    """srt and what it needs (bubblewrap, socat, ripgrep...), when the sandbox is on."""
    if cfg.sandbox is None or not cfg.sandbox.on:
        return Check("sandbox", "skip", "off: workers run unsandboxed")

    gone = missing(ctx.child_env())
    if gone:
        return Check(
            "sandbox",
            "fail",
            "on, but srt cannot run here: missing " + "; ".join(gone),
            "install what is missing, or `looop init --no-sandbox --force`",
        )
    runner = cfg.runner()
    boxed = runner is not None and resolve(None, runner.sandbox, cfg.sandbox).on
    try:  # what a sandboxed start of its worker would be refused for, said before any start
        box.box_env(runner.worker or "" if runner and boxed else "", ctx.child_env())
    except SandboxError as e:
        return Check("sandbox", "warn", f"on, but a sandboxed worker cannot start yet: {e}")
    return Check("sandbox", "ok", "on: srt and its parts are here")


def check_decider(cfg: Config) -> Check:
    """With the sandbox on anywhere, each part of the decider the config leaves outside srt:
    what runs there as you can rewrite the config, and so loosen every wall."""
    shell = cfg.shell_policy.sandbox.on
    policies = [cfg.sandbox, *(r.sandbox for r in cfg.runners.values())]
    if not shell and not any(p is not None and p.on for p in policies):
        return Check("decider", "skip", "the sandbox is off: the decider runs unsandboxed")
    parts = (
        ("the decide call", cfg.decider().on, 'the runner\'s "sandbox": "on"'),
        ("its run_shell, sensors and verifies", shell, '"shell_policy": {"sandbox": "on"}'),
    )
    off = [(what, fix) for what, on, fix in parts if not on]
    if off:
        return Check(
            "decider",
            "warn",
            f"the sandbox is on, but {' and '.join(w for w, _ in off)} run unsandboxed: a "
            "decision there can rewrite the config and so turn the sandbox off",
            "set " + " and ".join(f for _, f in off),
        )
    return Check("decider", "ok", "the decide call, its run_shell, sensors and verifies run in srt")


def check_budget(cfg: Config, knobs: Knobs) -> Check:
    """The daily budget as every face reads it (statusspend.daily_budget). A budget the user
    set with a runner that reports no cost: the unmetered breaker stops all AI after
    UNMETERED_LIMIT decides — a fail, the run is sure to stop. Under the default budget such
    a runner's decides are not counted (unmetered_armed): a warning that nothing caps them."""

    runner = cfg.runner()
    budget = daily_budget(knobs)
    if budget is None:
        return Check("budget", "ok", "no daily budget")
    if runner is None or reports_cost(runner):
        return Check("budget", "ok", f"daily budget ${budget:g}, and the runner reports its cost")
    if not unmetered_armed(knobs, False):
        return Check(
            "budget",
            "warn",
            f"daily budget ${budget:g} over workers, but runner '{runner.name}' reports no "
            "cost, so its decides are not counted: nothing caps what they spend",
            f'declare config runners.{runner.name}.cost = {{"type": …, "pointer": "/…"}} and '
            "set max_daily_usd to cap it",
        )
    return Check(
        "budget",
        "fail",
        f"daily budget ${budget:g}, but runner '{runner.name}' reports no cost: the unmetered "
        f"breaker stops all AI after {UNMETERED_LIMIT} decides",
        f'declare config runners.{runner.name}.cost = {{"type": …, "pointer": "/…"}}, '
        'or "max_daily_usd": 0',
    )


def check_bounds(knobs: Knobs) -> Check:
    """The per-worker bounds the kernel holds (core/limits), said once where it cannot."""
    pids, memory = knobs.num("worker_max_pids"), knobs.num("worker_max_memory")
    missed = limits.enforceable(pids, memory)
    if not missed:
        return Check(
            "bounds", "ok", f"each worker: {pids or 'any'} processes, {memory >> 20 or 'any'} MiB"
        )
    return Check(
        "bounds",
        "warn",
        f"worker {' and '.join(missed)} bounds are not enforced here (no cgroup can be made): "
        "a fork flood or a memory hog in a worker can starve the machine",
        "run looop as root, or delegate it a cgroup subtree (systemd Delegate=yes)",
    )


def check_endpoint(
    ctx: Ctx,
    cfg: Config,
    connect: Callable[[str, int, float], None] | None = None,
    runners: tuple[RunnerProfile, ...] = RUNNERS,
) -> Check:
    """A TCP connect (2 s) to the model endpoint a preset runner is pointed at by the env."""
    p = _preset(cfg, runners)[1]
    var = p.base_url_env if p else ""
    url = ctx.env.get(var, "") if var else ""
    if not url:
        return Check("endpoint", "skip", "no base URL in the env: the CLI's own default")
    parts = urlsplit(url)
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        host = None
    if not host:
        return Check("endpoint", "fail", f"{var}={url} is not a URL", f"fix {var}")
    try:
        (connect or _connect)(host, port, CONNECT_TIMEOUT_S)
    except OSError as e:
        why = e.strerror or str(e) or type(e).__name__
        return Check(
            "endpoint",
            "fail",
            f"{var}: {host}:{port} does not answer ({why})",
            f"start that server, or fix or unset {var}",
        )
    return Check("endpoint", "ok", f"{var}: {host}:{port} answers")


def _connect(host: str, port: int, timeout: float) -> None:
    socket.create_connection((host, port), timeout=timeout).close()


def check_hosts(ctx: Ctx) -> Check | None:
    """Registered hosts: named, not dialled (`looop host check` speaks to each)."""

    if not hosts_dir(ctx.paths.data).is_dir():
        return None
    got = names(ctx.paths.data)
    said = f"{len(got)} registered ({', '.join(got)}): not dialled here — `looop host check NAME`"
    return Check("hosts", "skip", said if got else "none registered")


def check_web(rec: Mapping[str, object] | None) -> Check:
    """The web face's URL, from the runtime record of the server serving this data dir (the
    CLI reads it: the loop room does not reach into the web room)."""
    if rec is None:
        return Check("web", "skip", "no web face up (`looop web` or `looop up --web`)")
    return Check("web", "ok", f"up at {rec.get('url')} (`looop web --url` adds the token)")


def check_extras(raw: dict[str, Any]) -> Check:
    """The extras installed; one the config uses (`notify_urls`, the web's /mcp) but lacks warns."""
    have = [e for e, module in EXTRAS.items() if find_spec(module) is not None]
    lacking = [e for e in EXTRAS if e not in have]
    detail = f"installed: {', '.join(have) or 'none'}" + (
        f"; not: {', '.join(lacking)}" if lacking else ""
    )
    used = {"notify": bool(raw.get("notify_urls")), "mcp": mcp_over_http(raw)}
    wanted = [e for e in lacking if used.get(e)]
    if wanted:
        fix = f"pip install 'looop[{','.join(wanted)}]' (the config uses it)"
        return Check("extras", "warn", detail, fix)
    return Check("extras", "ok", detail)


def check_service(
    ctx: Ctx, unit_text: Callable[[], tuple[str, str]] | None = None, linger: Path = LINGER
) -> Check:
    """The systemd user unit (`looop service status`): installed, current, and kept up past
    its user's logout."""

    path, want = (unit_text or (lambda: _unit(ctx)))()
    have = store.read_text(path)
    if have is None:
        return Check(
            "service", "skip", "no unit installed (`looop service install` keeps the pulse up)"
        )
    if have != want:
        return Check("service", "warn", f"{path} is stale", "`looop service install` rewrites it")
    unit = Service("", Path(path), want, "systemd" if str(path).endswith(".service") else "")
    fix = linger_fix(ctx, unit, linger)
    if fix is not None:
        return Check("service", "warn", f"{path} stops when you log out", f"run `{fix}`")
    return Check("service", "ok", f"installed: {path}")


def _unit(ctx: Ctx) -> tuple[str, str]:

    svc = render(ctx, default_name(ctx), [sys.executable, "-m", "looop", "pulse"], sys.platform)
    return os.fspath(svc.path), svc.text


def run_checks(
    ctx: Ctx, web: Callable[[Ctx], Mapping[str, object] | None] = lambda _: None
) -> list[Check]:
    """Every check in order of value; those that need the config skip when it cannot be read.
    web: the running web server's record for this home (web.daemon.running)."""
    first, cfg = check_config(ctx)
    wakes = ctx.paths.clock_wakes.exists()  # the running pulse found inotify used up
    got = [
        first,
        *((check_runner_cli(ctx, cfg), check_login(ctx, cfg)) if cfg is not None else ()),
        check_data_dir(ctx),
        check_home(ctx),
        Check("wakes", "warn", *CLOCK_WAKES.split(" — ")) if wakes else None,
        *((check_sandbox(ctx, cfg), check_decider(cfg)) if cfg is not None else ()),
        *(
            (check_budget(cfg, ctx.knobs(cfg)), check_bounds(ctx.knobs(cfg)))
            if cfg is not None and first.level != "fail"
            else ()
        ),
        check_endpoint(ctx, cfg) if cfg is not None else None,
        check_hosts(ctx),
        check_extras(cfg.raw if cfg is not None else {}),
        check_web(web(ctx)),
        check_service(ctx),
    ]
    return [c for c in got if c is not None]


def summary(checks: list[Check]) -> list[str]:
    """What `init` ends with: only the lines that need a look, then one count."""
    lines = [c.line() for c in checks if c.level in ("fail", "warn")]
    bad = sum(1 for c in checks if c.level == "fail")
    warn = sum(1 for c in checks if c.level == "warn")
    if not bad and not warn:
        lines.append(f"doctor: {len(checks)} checks, all ok")
    else:
        lines.append(
            f"doctor: {len(checks)} checks, {bad} failing, {warn} "
            f"warning{'' if warn == 1 else 's'} (`looop doctor` shows all)"
        )
    return lines
