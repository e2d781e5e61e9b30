"""The gate every shell text a move carries passes before anything runs: run_shell's command,
a sensor's script, a worker's launch line and verify check, text typed into a session. The
tripwire (shellguard/) and the user's shell_policy decide; a human may waive the tripwire."""

from __future__ import annotations

from looop.act import shellguard
from looop.act.decision import Mover
from looop.act.outcome import ExecError
from looop.act.protected import guard_for
from looop.core.context import Ctx
from looop.home.config import KNOBS
from looop.home.errors import LooopError


def _env_forces_tripwire(ctx: Ctx) -> bool:
    """LOOOP_SHELL_ALLOW_DANGEROUS=0 beats `shell_policy: "off"`: env > config, as everywhere."""
    knob = KNOBS["shell_allow_dangerous"]
    raw = ctx.env.get(knob.env, "").strip()
    if not raw:
        return False
    try:
        return knob.from_env(raw) is False
    except ValueError:
        return False  # resolve_knobs already warned about it


def shell_guard(
    by: Mover,
    cmd: str,
    what: str = "run_shell",
    cwd: str | None = None,
    repos: tuple[str, ...] = (),
    *,
    waived: bool | None = None,
) -> None:
    """Refuse shell text the tripwire (or shell_policy) stops, before anything (WAL, output
    file, journal, worker, sensor file) is touched. `what` names the field in the refusal;
    the config is the beat's (the file is read when there is none, as for a CLI move); `cwd`
    where the text runs (the data dir when None), `repos` more repos it must spare. `waived`
    overrides the human's --allow-dangerous (text typed into a session never has it)."""
    ctx, actor = by.ctx, by.actor
    allow_dangerous = by.allow_dangerous if waived is None else waived
    knob_env = KNOBS["shell_allow_dangerous"].env
    if actor != "cli":
        fix = shellguard.DEFAULT_FIX
    elif what == "run_shell":
        fix = "re-run with --allow-dangerous, or set shell_policy"
    else:
        fix = f"re-run with {knob_env}=1 if you mean it, or set shell_policy"
    bypass = "--allow-dangerous" if allow_dangerous else None
    if bypass is None and by.knobs.values.get("shell_allow_dangerous") is True:
        bypass = knob_env + "=1"
    if bypass is not None:
        why = shellguard.tripwire(cmd, guard_for(ctx, cwd, repos))
        if why is not None:
            ctx.events.emit(
                "warn", "shell.tripwire_bypassed", f"{what} tripwire bypassed by {bypass}: {why}"
            )
        return
    try:
        policy = by.config().shell_policy
    except LooopError as e:
        # Fail closed: without the config we do not know the user's deny patterns.
        raise ExecError(f"{what} not run: {e}") from e
    builtin = policy.mode == "tripwire" or _env_forces_tripwire(ctx)
    guard = guard_for(ctx, cwd, repos) if builtin else shellguard.NO_GUARD
    why = shellguard.verdict(
        cmd, builtin=builtin, deny=policy.deny, allow=policy.allow, guard=guard
    )
    if why is not None:
        raise ExecError(shellguard.refusal(why, fix, what))


def decided_line(by: Mover, text: str, what: str, action: str) -> bool:
    """A decision's verify or run_shell runs under shell_policy's sandbox when it is on; code
    in it the tripwire cannot read (`python3 -c …`, awk's system(), `perl -x`) is refused
    when that sandbox is off. True: it is such code (allowed, sandboxed)."""
    why = shellguard.unreadable_line(text)
    return why is not None and sandboxed(
        by, f"{what} refused: the tripwire cannot read it", why, action
    )


def sandboxed(
    by: Mover, refused: str, why: str, action: str, when: str = "", ask: str = ""
) -> bool:
    """True when shell_policy's sandbox is on, for code the tripwire cannot read (`why`);
    else the one line refusing it (`refused`, then why, then what to do)."""
    try:
        on = by.config().shell_policy.sandbox.on
    except LooopError as e:
        raise ExecError(f"{action} not run: {e}") from e
    if not on:
        raise ExecError(
            f"{refused} ({why}) and shell_policy's sandbox is off, so it would run unread and "
            f"unsandboxed{when} — write it in bash, or ask a human {ask}to turn the sandbox on"
        )
    return True
