"""`looop service install|uninstall|status`: the pulse run for good by the init system.

A systemd user unit (`looop-<name>.service`) runs `looop pulse` in the foreground with
Restart=on-failure, a RestartSec and a WatchdogSec the pulse feeds over sd_notify (loop/
heartbeat.py); on macOS a launchd agent plist with KeepAlive on a failed exit. Rendering is pure;
the home comes from the env the Ctx carries, never read here on its own.
"""

from __future__ import annotations

import os
import plistlib
from dataclasses import dataclass
from pathlib import Path

from looop.core.context import Ctx
from looop.home import revive, store
from looop.home.errors import LooopError
from looop.home.hashing import fnv1a_128
from looop.loop.heartbeat import beat_budget

UNIT_PREFIX = "looop-"
STOP_SECS = 120  # SIGTERM lets the beat finish; past this systemd kills the group


@dataclass(frozen=True)
class Service:
    name: str  # looop-<name>
    path: Path  # where the unit (or plist) goes
    text: str
    kind: str  # systemd | launchd


def default_name(ctx: Ctx) -> str:
    """One unit per data dir: a short hash of its path."""
    return fnv1a_128(os.fspath(ctx.paths.data).encode())[:8]


def _check_name(name: str) -> str:
    if not name or len(name) > 64 or not all(c.isalnum() or c in "-_" for c in name):
        raise LooopError(f"service name '{name}' must be 1-64 letters, digits, '-' or '_'")
    return name


def _home(ctx: Ctx) -> Path:
    home = ctx.env.get("HOME", "")
    if not home.startswith("/"):
        raise LooopError("HOME is not an absolute path — set it to install a service")
    return Path(home)


def _quote(word: str) -> str:
    """One systemd word: C-style double quotes, % and $ made literal; no line breaks."""
    if "\n" in word or "\r" in word or "\0" in word:
        raise LooopError(f"cannot put a line break or NUL in a unit file: {word!r}")
    escaped = word.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("%", "%%").replace("$", "$$") + '"'


def _literal(path: str) -> str:
    """A path setting (not split into words): only specifiers need escaping."""
    _quote(path)  # the same refusal of line breaks
    return path.replace("%", "%%")


def _environment(ctx: Ctx) -> dict[str, str]:
    env = {"LOOOP_DATA_DIR": os.fspath(ctx.paths.data), "LOOOP_CONFIG": os.fspath(ctx.paths.config)}
    if "PATH" in ctx.env:  # the runner CLI is found on the installer's PATH
        env["PATH"] = ctx.env["PATH"]
    return env


def render_systemd(ctx: Ctx, name: str, argv: list[str]) -> Service:
    knobs = ctx.knobs()
    grace = knobs.real("pulse_watchdog_secs")
    lines = [
        "[Unit]",
        f"Description=looop pulse for {_literal(os.fspath(ctx.paths.data))}",
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        "ExecStart=" + " ".join(_quote(w) for w in argv),
        f"WorkingDirectory={_literal(os.fspath(ctx.paths.data))}",
        *(f"Environment={_quote(f'{k}={v}')}" for k, v in _environment(ctx).items()),
        "Restart=on-failure",
        f"RestartPreventExitStatus={revive.HOME_LOST_EXIT}",  # its data dir is gone: not a crash
        f"RestartSec={max(1, round(knobs.real('pulse_restart_secs')))}s",
        "KillMode=control-group",
        "Delegate=yes",  # the pulse makes a cgroup per worker, sensor and run_shell below it
        f"TimeoutStopSec={STOP_SECS}s",
    ]
    if grace > 0:  # the pulse moves it with WATCHDOG_USEC each beat; this covers the first
        lines.append(f"WatchdogSec={round(beat_budget(knobs) + grace)}s")
    lines += ["", "[Install]", "WantedBy=default.target", ""]
    unit = f"{UNIT_PREFIX}{_check_name(name)}.service"
    base = ctx.env.get("XDG_CONFIG_HOME", "")
    conf = Path(base) if base.startswith("/") else _home(ctx) / ".config"
    return Service(unit, conf / "systemd" / "user" / unit, "\n".join(lines), "systemd")


def render_launchd(ctx: Ctx, name: str, argv: list[str]) -> Service:
    label = f"com.looop.{_check_name(name)}"
    log = os.fspath(ctx.paths.lock_dir / "service.log")
    plist = {
        "Label": label,
        "ProgramArguments": argv,
        "WorkingDirectory": os.fspath(ctx.paths.data),
        "EnvironmentVariables": _environment(ctx),
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},  # restart on a failed exit only
        "ThrottleInterval": max(1, round(ctx.knobs().real("pulse_restart_secs"))),
        "ExitTimeOut": STOP_SECS,
        "StandardOutPath": log,
        "StandardErrorPath": log,
    }
    text = plistlib.dumps(plist).decode()
    path = _home(ctx) / "Library" / "LaunchAgents" / f"{label}.plist"
    return Service(label, path, text, "launchd")


def render(ctx: Ctx, name: str, argv: list[str], platform: str) -> Service:
    return (render_launchd if platform == "darwin" else render_systemd)(ctx, name, argv)


def commands(svc: Service, action: str) -> list[str]:
    """What to run (or what was run) to make the init system act on the file."""
    if svc.kind == "launchd":
        verb = "bootstrap" if action == "install" else "bootout"
        return [f"launchctl {verb} gui/$(id -u) {svc.path}"]
    if action == "install":
        return [
            "systemctl --user daemon-reload",
            f"systemctl --user enable --now {svc.name}",
        ]
    return [f"systemctl --user disable --now {svc.name}", "systemctl --user daemon-reload"]


LINGER = Path("/var/lib/systemd/linger")


def linger_fix(ctx: Ctx, svc: Service, linger: Path = LINGER) -> str | None:
    """What keeps a systemd user unit running after its user logs out, unless lingering is
    on already (None: on, or no systemd unit)."""
    user = ctx.env.get("USER") or ctx.env.get("LOGNAME") or ""
    if svc.kind != "systemd" or not user or (linger / user).exists():
        return None
    return f"loginctl enable-linger {user}"


def install(svc: Service) -> bool:
    """Write the file atomically; True when it changed."""
    if store.read_text(svc.path) == svc.text:
        return False
    store.atomic_write(svc.path, svc.text)
    return True


def uninstall(svc: Service) -> bool:
    return store.remove(svc.path)
