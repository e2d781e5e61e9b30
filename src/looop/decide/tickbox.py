"""The tick runner inside srt, under its runner's `sandbox` setting (the one its workers get):
the decider's CLI writes only its run dir, the one `.decision.json` it answers in, its own
TMPDIR and its CLI's state (~/.claude, …); it cannot read the secrets under $HOME nor looop's
config; the network reaches only its runner's model API domains plus the policy's list."""

from __future__ import annotations

import os
from pathlib import Path

from looop.core.context import Ctx
from looop.core.sandboxpolicy import SandboxPolicy
from looop.core.srt import (
    HOME_SECRETS,
    RUNNER_DOMAINS,
    RUNNER_LOCKED,
    RUNNER_STATE,
    _conf,
    _expand,
    _inner,
    _save,
    require,
)

TICK_DIR = "+tick"  # under sandbox/: '+' is in no worker id
SETTINGS = "srt.json"
TICK_OFF = 'set the runner\'s "sandbox": "off" in the config'


def tick_argv(
    ctx: Ctx, runner: str, policy: SandboxPolicy, line: str, env: dict[str, str], run_dir: Path
) -> list[str]:
    """The decide call's argv under srt; writes its settings. Raises SandboxError (one line
    naming what is missing) where srt cannot run: the beat fails, it never runs unsandboxed."""
    srt = require(env, f"the tick runner '{runner}'", off=TICK_OFF)
    home = env.get("HOME")
    mine = os.path.join(str(ctx.paths.data), "sandbox", TICK_DIR)
    tmp = os.path.join(mine, "tmp")
    os.makedirs(tmp, exist_ok=True)
    for item in RUNNER_STATE.get(runner, ()):  # srt binds only what exists
        got = _expand(item, home)
        if got is not None and not item.endswith(".json"):
            os.makedirs(got, exist_ok=True)
    write = [str(run_dir), str(ctx.paths.decision), tmp, *RUNNER_STATE.get(runner, ())]
    write += policy.write
    deny = [*HOME_SECRETS, str(ctx.paths.config), *policy.deny_read]
    allow_read = [s for s in RUNNER_STATE.get(runner, ()) if s.startswith("~/.config/")]
    locked = [
        got
        for item in RUNNER_LOCKED.get(runner, ())
        if (got := _expand(item, home)) is not None and os.path.lexists(got)
    ]
    domains = [*RUNNER_DOMAINS.get(runner, ()), *policy.domains]
    conf = _conf(write, deny, allow_read, domains, home, locked)
    path = os.path.join(mine, SETTINGS)
    got_domains = _save(path, conf)
    return [srt, "-s", path, "-c", _inner(line, tmp, got_domains)]


def open_slot(decision: Path) -> bool:
    """srt binds only what exists: an empty `.decision.json` for the decider to write in
    place. True when made here (the run's end drops it again if still empty)."""
    try:
        fd = os.open(decision, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def close_slot(decision: Path) -> None:
    """An empty slot means no decision was written: gone, as if never made."""
    try:
        if os.lstat(decision).st_size == 0:
            os.unlink(decision)
    except OSError:
        pass
