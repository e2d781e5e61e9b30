"""Steering verbs: each builds a typed decision and runs it through the pulse's own executor."""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from looop.act import goalarchive
from looop.act.decision import Mover, check_id
from looop.act.goalarchive import REASONS
from looop.act.outcome import ExecError
from looop.act.playbook import versions
from looop.act.shellgate import shell_guard
from looop.cli import idcomplete
from looop.cli.app import make_ctx
from looop.cli.commands import WRITE_ALIAS
from looop.cli.params import JOURNAL_OPT, hidden_alias
from looop.cli.steerwork import MAX_BODY_BYTES as MAX_BODY_BYTES
from looop.cli.steerwork import body, words
from looop.cli.steerwork import nonblank as _nonblank
from looop.core import provenance
from looop.core.context import Ctx
from looop.core.readings import read_reading
from looop.home import jsonio, store
from looop.home.errors import LooopError
from looop.home.sandboxpolicy import SandboxPolicy
from looop.seed import pack
from looop.sense.sensors import run_user_sensors
from looop.views import outcomes

_body = body  # the name the other verb modules import


def _steer(
    obj: dict[str, Any],
    journal: str | None,
    *,
    allow_dangerous: bool = False,
    check: Callable[[Ctx], None] | None = None,
) -> None:
    """Run one decision as the human (see steermove.steer) and say so."""
    # The executor (~150 modules): `goal list`, `sensor list` and the other reads never pass here.
    from looop.cli.steermove import steer  # lazy: a move's door

    click.echo(steer(make_ctx(), obj, journal, allow_dangerous=allow_dangerous, check=check))


@click.group("goal", help="Write, remove (archive) or list goals (the desired state).")
def goal_group() -> None:
    pass


@goal_group.command(
    "write", help="Create or replace goals/ID.md (BODY, words joined by spaces, or - for stdin)."
)
@click.argument("goal_id", shell_complete=idcomplete.goals)
@click.argument("body", nargs=-1)
@JOURNAL_OPT
def goal_write(goal_id: str, body: tuple[str, ...], journal: str | None) -> None:
    text = _nonblank(
        _body(words(body), "goal body"),
        "goal body",
        f"say what should be true, or remove the goal with `looop goal rm {goal_id}`",
    )
    _steer({"action": "write_goal", "id": goal_id, "body": text}, journal)


def _reason_opt(default: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--reason",
        type=click.Choice(list(REASONS)),
        default=default,
        show_default=True,
        help="Why: " + "; ".join(f"{k}: {v}" for k, v in REASONS.items()) + ".",
    )


@goal_group.command("archive", help="Move goals/ID.md to goals/archive/, saying why.")
@click.argument("goal_id", shell_complete=idcomplete.goals)
@_reason_opt("done")
@JOURNAL_OPT
def goal_archive(goal_id: str, reason: str, journal: str | None) -> None:
    _archive(goal_id, reason, journal)


# `rm` archives rather than deletes: a goal is memory, and goals/archive/ keeps it recoverable.
@goal_group.command("rm", help="Stop pursuing goal ID: moves it to goals/archive/ (recoverable).")
@click.argument("goal_id", shell_complete=idcomplete.goals)
@_reason_opt("dropped")
@JOURNAL_OPT
def goal_rm(goal_id: str, reason: str, journal: str | None) -> None:
    _archive(goal_id, reason, journal)


def _archive(goal_id: str, reason: str, journal: str | None) -> None:
    try:
        _steer({"action": "archive_goal", "id": goal_id, "reason": reason}, journal)
    except ExecError as e:
        if "does not exist" not in str(e):
            raise
        raise LooopError(f"no goal '{goal_id}' (goals/{goal_id}.md) — `looop goal list`") from None


@goal_group.command("list", help="List goals with their headline and last activity.")
@click.option("--archived", is_flag=True, help="The archived goals instead, with why.")
@click.option("--json", "as_json", is_flag=True)
def goal_list(archived: bool, as_json: bool) -> None:
    ctx = make_ctx(events_to=None)
    if archived:
        _archived_list(ctx, as_json)
        return
    try:
        act = store.read_json_object(ctx.paths.goal_activity) or {}
    except LooopError:
        act = {}
    rows = []
    for g in sorted(ctx.paths.goals.glob("*.md")) if ctx.paths.goals.is_dir() else []:
        text = store.read_text(g) or ""
        head = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
        last = act.get(g.stem)
        rows.append(
            {
                "id": g.stem,
                "headline": head[:100],
                "last_acted_unix": last if isinstance(last, int) else None,
            }
        )
    if as_json:
        click.echo(jsonio.dumps(rows, indent=2))
    elif not rows:
        click.echo("no goals yet — `looop goal write ID BODY`")
    else:
        for r in rows:
            click.echo(f"{r['id']:<24} {r['headline']}")


def _archived_list(ctx: Ctx, as_json: bool) -> None:
    rows = goalarchive.archived(ctx)
    if as_json:
        click.echo(jsonio.dumps(rows, indent=2))
    elif not rows:
        click.echo("no archived goals")
    else:
        click.echo(f"{'GOAL':<24} {'WHY':<10} {'ITS WORKER':<16} {'BY':<8} HEADLINE")
        for r in rows:
            ended, by = outcomes.short(r["worker_outcome"]), r["by"] or "—"
            click.echo(f"{r['id']:<24} {r['reason']:<10} {ended:<16} {by:<8} {r['headline']}")


@click.group(
    "sensor", help="Write, remove, list or run sensors (scripts printing the world as JSON)."
)
def sensor_group() -> None:
    pass


@sensor_group.command(
    "write", help="Create or replace sensors/NAME.sh (SCRIPT, words joined, or - for stdin)."
)
@click.argument("name", shell_complete=idcomplete.sensors)
@click.argument("script", nargs=-1)
@JOURNAL_OPT
def sensor_write(name: str, script: tuple[str, ...], journal: str | None) -> None:
    text = _nonblank(
        _body(words(script), "script"),
        "sensor script",
        f"give the script, or remove the sensor with `looop sensor rm {name}`",
    )
    _steer({"action": "write_sensor", "name": name, "script": text}, journal)


@sensor_group.command("add", help="Write sensors/NAME.sh from a shipped recipe (--list: them).")
@click.argument("kind", required=False)
@click.option("--list", "show", is_flag=True, help="List the recipes and how to add each.")
@click.option("--repo", help="git: the repository's directory; github: OWNER/NAME.")
@click.option("--url", help="http: the URL.")
@click.option("--path", "path_", help="disk, file: the path.")
@click.option("--cmd", help="tests: the test command.")
@click.option("--dir", "dir_", help="tests, github: where it runs.")
@click.option("--fetch", is_flag=True, help="git: fetch the upstream first.")
@click.option("--every", type=int, help="Seconds between runs (default: the recipe's).")
@click.option("--name", help="The sensor's name (default: KIND).")
@click.option("--force", is_flag=True, help="Replace a sensor of that name.")
@JOURNAL_OPT
def sensor_add(kind: str | None, show: bool, **opts: Any) -> None:
    if show or kind is None:
        for r in pack.RECIPES.values():
            click.echo(f"{r.kind:<7} {r.summary} (every {r.interval} s)\n        {r.example}")
        return
    name = opts.pop("name") or kind
    force, journal, every = opts.pop("force"), opts.pop("journal"), opts.pop("every")
    values = {k.rstrip("_"): v for k, v in opts.items() if v not in (None, False)}
    if values.get("fetch") is True:
        values["fetch"] = "yes"
    script = pack.render(kind, values, os.getcwd(), every)
    check_id("sensor", name)
    ctx = make_ctx(events_to=None)
    target = ctx.paths.sensor(name)
    if (target.exists() or target.is_symlink()) and not force:
        raise LooopError(
            f"sensor '{name}' exists ({ctx.paths.rel(target)}) — --force replaces it, "
            "--name writes another"
        )
    if kind == "tests":  # the command sits in a quoted word, out of the script's tripwire
        where = os.path.join(os.getcwd(), values.get("dir", "."))
        shell_guard(Mover(ctx, ctx.knobs(), "cli"), values["cmd"], "--cmd", cwd=where)
    _steer({"action": "write_sensor", "name": name, "script": script}, journal)


@sensor_group.command("rm", help="Delete sensors/NAME.sh (journaled, like every steering verb).")
@click.argument("name", shell_complete=idcomplete.sensors)
@JOURNAL_OPT
def sensor_rm(name: str, journal: str | None) -> None:
    try:
        _steer({"action": "remove_sensor", "name": name}, journal)
    except ExecError as e:
        if "does not exist" not in str(e):
            raise
        raise LooopError(f"no sensor '{name}' (sensors/{name}.sh) — `looop sensor list`") from None


@sensor_group.command(
    "list", help="List sensors: who wrote each, whether it runs sandboxed, its last signal."
)
@click.option("--json", "as_json", is_flag=True)
def sensor_list(as_json: bool) -> None:
    ctx = make_ctx(events_to=None)
    scripts = sorted(ctx.paths.sensors.glob("*.sh")) if ctx.paths.sensors.is_dir() else []
    rows: list[dict[str, Any]] = []
    sandbox = _shell_sandbox(ctx)
    for s in scripts:
        by, sandboxed = _provenance(ctx, s, sandbox)
        got = read_reading(str(ctx.paths.snapshots), f"sensor-{s.stem}")
        signal: Any = got.signal if got.is_json else None
        shown = "(not run yet)"
        if got.is_json:
            shown = jsonio.canonical(signal)
        elif got.body is not None:
            shown = got.text.strip()[:80]
        rows.append(
            {
                "name": s.stem,
                "script": str(s),
                "run": got.body is not None,
                "signal": signal,
                "by": by,
                "sandboxed": sandboxed,
            }
        )
        if not as_json:
            where = "sandboxed" if sandboxed else "unsandboxed"
            click.echo(f"{s.stem:<20} {by:<8} {where:<11} {shown[:100]}")
    if as_json:
        click.echo(jsonio.dumps(rows, indent=2, sort_keys=True, ensure_ascii=False))
    elif not scripts:
        click.echo("no sensors yet — `looop sensor write NAME SCRIPT`")


def _shell_sandbox(ctx: Ctx) -> SandboxPolicy | None:
    """shell_policy's sandbox, which every sensor but a human's runs under; None: the config
    cannot be read (such a sensor then does not run)."""
    try:
        return ctx.config().shell_policy.sandbox
    except LooopError:
        return None


def _provenance(ctx: Ctx, script: Path, sandbox: SandboxPolicy | None) -> tuple[str, bool]:
    """Who wrote it (human, decision, edited — a human's, changed since — or unknown) and
    whether the beat runs it inside the sandbox (None for one that does not run at all)."""
    try:
        content: bytes | None = store.read_regular(script)
    except OSError:
        content = None
    by = provenance.who(ctx.paths, provenance.SENSOR, script.stem, content)
    return by, by != provenance.HUMAN and (sandbox is None or sandbox.on)


@sensor_group.command("run", help="Run the sensors now and print their readings.")
@click.argument("name", required=False, shell_complete=idcomplete.sensors)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per sensor (NDJSON).")
def sensor_run(name: str | None, as_json: bool) -> None:
    ctx = make_ctx(events_to=None)
    if name is not None and not ctx.paths.sensor(name).is_file():
        raise LooopError(f"no sensor '{name}' (sensors/{name}.sh) — `looop sensor list`")

    readings = run_user_sensors(ctx, ctx.knobs(), _shell_sandbox(ctx))
    bad = False
    for r in readings:
        if name is not None and r.name != f"sensor-{name}":
            continue
        text = r.text.strip()
        bad = bad or not r.ok
        if as_json:
            reading: Any = r.value if r.is_json else text
            row = {"name": r.name, "ok": r.ok, "secs": r.secs, "cached": r.cached}
            click.echo(jsonio.dumps({**row, "reading": reading}, sort_keys=True))
            continue
        mark = "✓" if r.ok else "✗"
        click.echo(f"{mark} {r.name} ({r.secs:.2f}s){' [cached]' if r.cached else ''}: {text}")
    if bad:
        raise SystemExit(1)


@click.group("playbook", help="Replace the PLAYBOOK or list its history.")
def playbook_group() -> None:
    pass


@playbook_group.command(
    "write", help="Replace PLAYBOOK.md (BODY, words joined, or - for stdin); keeps history."
)
@click.argument("body", nargs=-1)
@JOURNAL_OPT
def playbook_write(body: tuple[str, ...], journal: str | None) -> None:
    text = _nonblank(
        _body(words(body), "PLAYBOOK body"),
        "PLAYBOOK",
        "write the loop's priorities and guardrails",
    )
    _steer({"action": "write_playbook", "body": text}, journal)


@playbook_group.command("history", help="List earlier PLAYBOOK versions (playbook.d/).")
@click.option("--json", "as_json", is_flag=True)
def playbook_history(as_json: bool) -> None:
    ctx = make_ctx(events_to=None)
    files = versions(ctx.paths.playbook_history)[::-1]  # newest first
    if as_json:
        rows = [{"version": f.stem, "path": str(f)} for f in files]
        click.echo(jsonio.dumps(rows, indent=2, sort_keys=True, ensure_ascii=False))
        return
    if not files:
        click.echo("no earlier PLAYBOOK versions yet")
    for f in files:
        click.echo(f"{f.stem}  {f}")


@click.command(
    "run",
    help="Run one shell command as a move (journaled, WAL'd, timed out).",
    context_settings={"ignore_unknown_options": True},
)
@click.option("--reason", "-r", default="", help="Why (shown in the journal).")
@JOURNAL_OPT
@click.option(
    "--allow-dangerous",
    is_flag=True,
    help="Skip the run_shell tripwire (sudo, rm -rf /, force push to main, …) for this command.",
)
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
def run_cmd(reason: str, journal: str | None, allow_dangerous: bool, cmd: tuple[str, ...]) -> None:
    line = cmd[0] if len(cmd) == 1 else shlex.join(cmd)
    _steer(
        {"action": "run_shell", "cmd": line, "reason": reason},
        journal,
        allow_dangerous=allow_dangerous,
    )


# v1.0's `w` for every `write` (`looop goal w ID BODY`), hidden from help
for _group, _write in ((goal_group, goal_write), (sensor_group, sensor_write)):
    hidden_alias(_group, _write, WRITE_ALIAS)
hidden_alias(playbook_group, playbook_write, WRITE_ALIAS)
goal_group.add_command(goal_list, "ls")  # as `schedule ls`
sensor_group.add_command(sensor_list, "ls")
