"""A worker inside Anthropic's sandbox runtime (`srt`: bubblewrap plus a filtering network proxy
on Linux). The policy becomes srt's settings JSON under the worker's own folder
(`sandbox/<id>/srt.json`); the home's sandbox host (sandbox/boxhost.py) wraps the worker's line
under them into bubblewrap's, which runs in the worker's session with nothing of srt beside it.

Default policy: the worker writes only its own folders (`sandbox/<id>/work`, its workspace, and
`sandbox/<id>/tmp`, its TMPDIR), the contract's paths (reports/, claims/, asks/, tells/, the
event and cost ledgers) and its runner CLI's session folders (sandbox/srt.py RUNNER_STATE; what the
user's own CLI reads outside stays read-only: RUNNER_CONFIG, RUNNER_LOCKED); it cannot read
~/.ssh, ~/.aws, ~/.gnupg, ~/.config (but its runner's own folder there) or looop's config, and
of the data dir it reads only what the contract needs (default deny: srt.data_walls), never
looop's credentials (.lock/), state, journal, runs or other workers' output and briefs; network
goes only to its runner's model API domains plus the user's list. Where srt cannot run, start
refuses with one line saying what is missing: there is no silent fallback to no sandbox.

The decider's box (tick_argv) is built here too, under its runner's `sandbox` setting."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from looop.core.context import Ctx
from looop.home import jsonio, store, where
from looop.home.knobs import KNOBS
from looop.home.sandboxpolicy import SandboxPolicy
from looop.home.sessionfiles import remove_tree
from looop.home.where import SANDBOX_SETTINGS
from looop.sandbox import boxhost, srt
from looop.sandbox.checkout import Checkout, sandbox_write
from looop.sandbox.srt import HOME_SECRETS, SHELL_OFF
from looop.sandbox.srt import SandboxError as SandboxError  # other rooms find these here
from looop.sandbox.srt import missing as missing
from looop.sandbox.srt import require as require

SETTINGS = SANDBOX_SETTINGS


def folder(ctx: Ctx, wid: str) -> str:
    return os.path.join(str(ctx.paths.sandbox), wid)


def room(ctx: Ctx, wid: str) -> str:
    """What the worker's box writes (work/, tmp/, reports/): outside the data dir."""
    return os.path.join(str(ctx.paths.rooms), wid)


def forget(ctx: Ctx, wid: str) -> None:
    """A new start of this id: the last run's settings no longer say anything."""
    store.remove(os.path.join(folder(ctx, wid), SETTINGS))


def settings(
    ctx: Ctx,
    wid: str,
    runner: str,
    policy: SandboxPolicy,
    home: str | None,
    trees: Sequence[Checkout] = (),
    env: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """srt's settings for this worker: the default policy plus the user's additions; with
    its worktrees (one, or one of each repository of a worker of several), each and what git
    needs to commit from it (checkout.sandbox_write) — their shared folder stays read-only;
    with its `env`, the model endpoint that env points its runner at (sandbox/endpoints.py)."""
    data = str(ctx.paths.data)
    p = ctx.paths
    mine = room(ctx, wid)
    parts = srt.runner_parts(runner, home, env)
    # Nothing of the data dir: what the worker changes of looop's state goes through its
    # box's door (contract/requests.py), which writes it outside the box.
    write = [*(os.path.join(mine, d) for d in ROOM), *parts.state, *policy.write]
    # The data dir is denied whole; back in come only what the worker reads: its brief and
    # knobs, and the PLAYBOOK (it may name a lease).
    reads = [os.path.join("prompts", f"{wid}.md"), os.path.join(where.SANDBOX, wid, "config.json")]
    walls, allow = srt.data_walls(data, [*reads, "PLAYBOOK.md"])
    deny = [*HOME_SECRETS, *walls, *policy.deny_read]
    locked = list(parts.locked)
    for tree in trees:
        git_write, git_locked = sandbox_write(tree)
        write.extend(git_write)
        locked.extend(git_locked)
    domains = [*parts.domains, *policy.domains]
    srt.check_endpoints(parts, domains, f"the worker's runner '{runner}'")
    allowed = [*parts.allow_read, *allow]
    return srt.conf(write, deny, allowed, domains, home, str(p.config), locked)


ROOM = ("work", "tmp", "reports")  # a box's room: its workspace, TMPDIR and deliverables


SHELL_DIR = "+run_shell"  # under sandbox/: '+' is in no worker id
SENSOR_DIR = "+sensors"  # a decision's sensors, under run_shell's policy
SENSOR_READS = (*srt.WORLD, "sensors")  # and the scripts themselves, which the box runs


def shell_argv(
    ctx: Ctx, policy: SandboxPolicy, cmd: str, env: dict[str, str], who: str = "run_shell"
) -> list[str]:
    """run_shell's argv under srt: it writes only reports/, its own TMPDIR and the policy's
    `write` list; it cannot read the secrets under $HOME or looop's config; the network
    reaches only the policy's domains. Raises SandboxError when srt cannot run here.
    `who` names it in that error (a decision's verify runs here too)."""
    return shell_argvs(ctx, policy, [cmd], env, who)[0]


def shell_argvs(
    ctx: Ctx,
    policy: SandboxPolicy,
    cmds: list[str],
    env: dict[str, str],
    who: str = "run_shell",
    where: str = SHELL_DIR,
    reads: tuple[str, ...] = srt.WORLD,
) -> list[list[str]]:
    """One argv per line under run_shell's policy, its settings written once (`where`: its
    folder under sandbox/ and its room, a beat's sensors have their own; `reads`: what of the
    data dir comes back readable — a sensor must read its own script). It writes nothing of
    the data dir: its TMPDIR and its reports ($LOOOP_REPORTS_DIR) are in its room."""
    prog = require(env, who, off=SHELL_OFF)
    home = env.get("HOME")
    mine = os.path.join(str(ctx.paths.sandbox), where)
    tmp, reports = (os.path.join(room(ctx, where), d) for d in ("tmp", "reports"))
    for d in (mine, tmp, reports):
        os.makedirs(d, mode=0o700, exist_ok=True)
    write = [tmp, reports, *policy.write]
    walls, allow = srt.data_walls(str(ctx.paths.data), list(reads))
    deny = [*HOME_SECRETS, *walls, *policy.deny_read]
    conf = srt.conf(write, deny, allow, list(policy.domains), home, str(ctx.paths.config))
    said = f"export LOOOP_REPORTS_DIR={shlex.quote(reports)}; "  # not the data dir's: read-only
    lines = [said + cmd for cmd in cmds]
    return srt.argvs(prog, os.path.join(mine, SETTINGS), conf, lines, tmp, boxhost.home_of(ctx))


def _knobs_only_config(raw: Mapping[str, object], mine: str) -> str:
    """The config as the worker's verbs see it: the knobs only. The real file stays hidden
    (it names hooks and notification URLs, which may carry tokens)."""
    keys = {k.config_key for k in KNOBS.values() if k.config_key}
    path = os.path.join(mine, "config.json")
    kept = {k: v for k, v in raw.items() if k in keys}
    store.atomic_write(path, jsonio.dumps(kept, indent=2) + "\n")
    return path


def prepare(
    ctx: Ctx,
    wid: str,
    runner: str,
    policy: SandboxPolicy,
    line: str,
    env: dict[str, str],
    raw_config: Mapping[str, object],
    trees: Sequence[Checkout] = (),
    *,
    prog: str,
) -> tuple[list[str], dict[str, str]]:
    """The worker's argv under srt (`prog`: srt's path, as require found it) and its env
    (TMPDIR and LOOOP_WORKSPACE its own: with a repo, its worktree; with several, the folder
    that holds them); writes the settings file."""
    home = env.get("HOME")
    mine = folder(ctx, wid)
    box = room(ctx, wid)
    _make_room(ctx, wid, runner, home)
    conf = settings(ctx, wid, runner, policy, home, trees, env)
    start = starts_in(trees)
    if start is not None:
        # srt starts in the data dir, which it cannot write: the empty files it would mount
        # over the shell and tool settings missing where it starts never land in the worktree
        line = f"cd -- {shlex.quote(start)} || exit 1; {line}"
    tmp = os.path.join(box, "tmp")
    settings_at = os.path.join(mine, SETTINGS)
    argv = srt.argv(prog, settings_at, conf, line, tmp, boxhost.home_of(ctx), door=wid)
    child = dict(env)
    child["LOOOP_CONFIG"] = _knobs_only_config(raw_config, mine)
    child["LOOOP_HOME_CONFIG"] = str(ctx.paths.config)  # the door's, outside (hidden inside)
    child["LOOOP_DOOR"] = "1"  # its contract verbs knock on the door (remote/boxdoor.py)
    child["LOOOP_REPORTS_DIR"] = os.path.join(box, "reports")
    child["LOOOP_WORKSPACE"] = start if start is not None else os.path.join(box, "work")
    if trees:
        _git_quiet(child)
    return argv, child


def starts_in(trees: Sequence[Checkout]) -> str | None:
    """Where the boxed worker starts: its worktree; of several, the folder that holds them
    side by side (workers/workspace.py), which is no place it writes; None without one."""
    if not trees:
        return None
    return trees[0].path if len(trees) == 1 else os.path.dirname(trees[0].path.rstrip("/"))


def _make_room(ctx: Ctx, wid: str, runner: str, home: str | None) -> None:
    """srt binds only what exists: every writable folder is made now, so a first report can
    be written from inside."""
    os.makedirs(folder(ctx, wid), exist_ok=True)
    for d in ROOM:
        os.makedirs(os.path.join(room(ctx, wid), d), mode=0o700, exist_ok=True)
    srt.make_state(runner, home)


def _git_quiet(child: dict[str, str]) -> None:
    """The repo's packs are read-only in the box: no automatic repack or maintenance."""
    n = _int(child.get("GIT_CONFIG_COUNT"))
    for i, (k, v) in enumerate((("gc.auto", "0"), ("maintenance.auto", "false")), n):
        child[f"GIT_CONFIG_KEY_{i}"], child[f"GIT_CONFIG_VALUE_{i}"] = k, v
    child["GIT_CONFIG_COUNT"] = str(n + 2)


class WorkerBox(NamedTuple):
    """The sandbox a worker ran in, named by its id: its verify runs there (run_shell builds
    the argv with verify_argv), whoever wrote the verify."""

    wid: str


VERIFY_SETTINGS = "srt-verify.json"  # the worker's own srt.json stays as its start wrote it


def box_argv(
    ctx: Ctx,
    box: WorkerBox,
    started: tuple[str, SandboxPolicy, Sequence[Checkout]],
    cmd: str,
    env: dict[str, str],
) -> tuple[list[str], dict[str, str]]:
    """`cmd` inside a worker's walls, built again by `settings` from what its start said
    (`started`: its runner, sandbox policy and checkouts), so it writes, reads and reaches what
    the worker could and nothing more; TMPDIR the worker's (workers/boxed.verify_argv reads
    them from its start record). Raises SandboxError, one line, when srt cannot run here."""
    wid = box.wid
    who = f"worker {wid}'s verify"
    runner, policy, trees = started
    prog = require(env, who)
    home = env.get("HOME")
    try:
        _make_room(ctx, wid, runner, home)
        conf = settings(ctx, wid, runner, policy, home, trees, env)
        path = os.path.join(folder(ctx, wid), VERIFY_SETTINGS)
        tmp = os.path.join(room(ctx, wid), "tmp")
        argv = srt.argv(prog, path, conf, cmd, tmp, boxhost.home_of(ctx))
    except OSError as e:  # e.g. a folder the worker swapped for a dangling symlink
        raise SandboxError(f"{who} cannot set up the worker's sandbox: {e}") from None
    child = dict(env)
    if trees:
        _git_quiet(child)
    return argv, child


def _int(text: str | None) -> int:
    try:
        return max(0, int(text or "0"))
    except ValueError:
        return 0


def describe(policy: SandboxPolicy) -> str:
    """One line for messages: off, or on with the additions."""
    if not policy.on:
        return "off"
    extra = [
        *(f"write {shlex.quote(w)}" for w in policy.write),
        *(f"deny {shlex.quote(d)}" for d in policy.deny_read),
        *(f"net {d}" for d in policy.domains),
    ]
    return "on" + (f" (+ {', '.join(extra)})" if extra else "")


# ---- The decider inside srt, under its runner's `sandbox` setting (the one its workers get):
# its CLI writes only its room beside the data dir (its answer folder, made afresh each decide,
# where it runs and `.decision.json` goes; its TMPDIR) and its CLI's state; it reads its run dir
# (its prompt) and writes nothing of the data dir; it cannot read the secrets under $HOME nor
# looop's config; the network reaches only its runner's model API domains (with the endpoint
# its env or CLI config points it at) plus the policy's list.
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
    remove_tree(os.fspath(answer))  # a fresh room: nothing an earlier box left
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
