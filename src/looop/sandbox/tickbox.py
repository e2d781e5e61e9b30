"""The tick runner inside srt, under its runner's `sandbox` setting (the one its workers get):
the decider's CLI writes only its room beside the data dir (its answer folder, where it runs
and the `.decision.json` the prompt names goes, made afresh each decide, and its TMPDIR) and
its CLI's state (RunnerProfile.state); it reads its run dir (its prompt) and writes nothing of the
data dir; it
cannot read the secrets under $HOME nor looop's config; the network reaches only its runner's
model API domains (with the endpoint its env or CLI config points it at) plus the policy's
list."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from looop.core.context import Ctx
from looop.home.sandboxpolicy import SandboxPolicy
from looop.home.where import SANDBOX_SETTINGS
from looop.sandbox import boxhost, srt
from looop.sandbox.srt import HOME_SECRETS

TICK_OFF = 'set the runner\'s "sandbox": "off" in the config'


def tick_argv(
    ctx: Ctx, runner: str, policy: SandboxPolicy, line: str, env: dict[str, str], run_dir: Path
) -> list[str]:
    """The decide call's argv under srt; writes its settings. Raises SandboxError (one line
    naming what is missing) where srt cannot run: the beat fails, it never runs unsandboxed."""
    prog = srt.require(env, f"the tick runner '{runner}'", off=TICK_OFF)
    home = env.get("HOME")
    answer = str(ctx.paths.decide_room)
    # the decide's own folders, named by its answer's room (+tick; a replay's +replay): a
    # replay beside the pulse's decide never writes the settings that decide reads
    room = os.path.basename(os.path.dirname(answer))
    mine = os.path.join(str(ctx.paths.sandbox), room)
    tmp = os.path.join(str(ctx.paths.rooms), room, "tmp")
    shutil.rmtree(answer, ignore_errors=True)  # a fresh room: nothing an earlier box left
    for d in (mine, tmp, answer):
        os.makedirs(d, mode=0o700, exist_ok=True)
    srt.make_state(runner, home)
    parts = srt.runner_parts(runner, home, env)
    write = [answer, tmp, *parts.state, *policy.write]
    run = os.path.relpath(run_dir, ctx.paths.data)
    walls, allow = srt.data_walls(str(ctx.paths.data), [*srt.WORLD, run])
    deny = [*HOME_SECRETS, *walls, *policy.deny_read]
    domains = [*parts.domains, *policy.domains]
    srt.check_endpoints(parts, domains, f"the tick runner '{runner}'")
    allowed = [*parts.allow_read, *allow]
    conf = srt.conf(write, deny, allowed, domains, home, str(ctx.paths.config), parts.locked)
    box = boxhost.home_of(ctx)
    return srt.argv(prog, os.path.join(mine, SANDBOX_SETTINGS), conf, line, tmp, box)
