"""The steering moves: each builds a typed decision and runs it through the pulse's own
executor (cli/steermove.py's `steer`): goal, sensor and playbook writes, `run`, schedule
write and rm. Their groups and reads are cli/steer.py's, which loads this module only for
a move (cli/commands.py SUBVERBS)."""

from __future__ import annotations

import os
import shlex
from typing import Any

import click

from looop.act.decision import Mover, check_id
from looop.act.goalarchive import REASONS
from looop.act.shellgate import shell_guard
from looop.cli import idcomplete
from looop.cli.app import JOURNAL_OPT, body, hidden_alias, make_ctx
from looop.cli.commands import WRITE_ALIAS
from looop.cli.steer import goal_group, playbook_group, schedule_group, sensor_group, shell_sandbox
from looop.cli.steermove import steer
from looop.home import jsonio
from looop.home.errors import LooopError
from looop.human import schedules
from looop.human.schedules import path_of
from looop.seed import pack
from looop.sense.sensors import run_user_sensors
from looop.sessions.durations import parse_duration


def _steer(obj: dict[str, Any], journal: str | None, *, allow_dangerous: bool = False) -> None:
    """Run one decision as the human (see steermove.steer) and say so."""
    click.echo(steer(make_ctx(), obj, journal, allow_dangerous=allow_dangerous))


def _written(parts: tuple[str, ...], what: str, blank: str, instead: str) -> str:
    """What a write verb was given (words joined, or stdin), refused when blank (in the CLI's
    own words: the action refuses it anyway, naming fields)."""
    text = body(parts, what)
    if not text.strip():
        raise LooopError(f"the {blank} is empty — {instead}")
    return text


@goal_group.command(
    "write", help="Create or replace goals/ID.md (BODY, words joined by spaces, or - for stdin)."
)
@click.argument("goal_id", shell_complete=idcomplete.goals)
@click.argument("body", nargs=-1)
@JOURNAL_OPT
def goal_write(goal_id: str, body: tuple[str, ...], journal: str | None) -> None:
    instead = f"say what should be true, or remove the goal with `looop goal rm {goal_id}`"
    text = _written(body, "goal body", "goal body", instead)
    _steer({"action": "write_goal", "id": goal_id, "body": text}, journal)


# `rm` archives rather than deletes: a goal is memory, and goals/archive/ keeps it recoverable.
for _verb, _why, _help in (
    ("archive", "done", "Move goals/ID.md to goals/archive/, saying why."),
    ("rm", "dropped", "Stop pursuing goal ID: moves it to goals/archive/ (recoverable)."),
):

    @goal_group.command(_verb, help=_help)
    @click.argument("goal_id", shell_complete=idcomplete.goals)
    @click.option(
        "--reason",
        type=click.Choice(list(REASONS)),
        default=_why,
        show_default=True,
        help="Why: " + "; ".join(f"{k}: {v}" for k, v in REASONS.items()) + ".",
    )
    @JOURNAL_OPT
    def goal_archive(goal_id: str, reason: str, journal: str | None) -> None:
        _steer({"action": "archive_goal", "id": goal_id, "reason": reason}, journal)


@sensor_group.command(
    "write", help="Create or replace sensors/NAME.sh (SCRIPT, words joined, or - for stdin)."
)
@click.argument("name", shell_complete=idcomplete.sensors)
@click.argument("script", nargs=-1)
@JOURNAL_OPT
def sensor_write(name: str, script: tuple[str, ...], journal: str | None) -> None:
    instead = f"give the script, or remove the sensor with `looop sensor rm {name}`"
    text = _written(script, "script", "sensor script", instead)
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
    _steer({"action": "remove_sensor", "name": name}, journal)


@sensor_group.command("run", help="Run the sensors now and print their readings.")
@click.argument("name", required=False, shell_complete=idcomplete.sensors)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per sensor (NDJSON).")
def sensor_run(name: str | None, as_json: bool) -> None:
    ctx = make_ctx(events_to=None)
    if name is not None and not ctx.paths.sensor(name).is_file():
        raise LooopError(f"no sensor '{name}' (sensors/{name}.sh) — `looop sensor list`")

    readings = run_user_sensors(ctx, ctx.knobs(), shell_sandbox(ctx))
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


@playbook_group.command(
    "write", help="Replace PLAYBOOK.md (BODY, words joined, or - for stdin); keeps history."
)
@click.argument("body", nargs=-1)
@JOURNAL_OPT
def playbook_write(body: tuple[str, ...], journal: str | None) -> None:
    text = _written(body, "PLAYBOOK body", "PLAYBOOK", "write the loop's priorities and guardrails")
    _steer({"action": "write_playbook", "body": text}, journal)


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
for _group, _write in (
    (goal_group, goal_write),
    (sensor_group, sensor_write),
    (playbook_group, playbook_write),
):
    hidden_alias(_group, _write, WRITE_ALIAS)


def _whole_seconds(text: str, flag: str) -> int:
    """Whole seconds; past ten years saturates there (said on stderr), as v1.0's does."""
    try:
        secs = parse_duration(text, most=schedules.FAR_S)
    except ValueError as e:
        raise click.UsageError(f"{flag}: {e}") from None
    if secs is None or secs < 1:
        raise click.UsageError(f"{flag} must be at least 1s (e.g. 90, 10m, 2h, 1d)")
    if secs >= schedules.FAR_S:
        click.echo(f"{flag} {text}: past ten years, so ten years", err=True)
    return round(secs)


@schedule_group.command(
    "write",
    help="Create or replace schedules/NAME.json. Give one of --in, --every or --cron. "
    "Durations take 90, 10m, 2h, 1d. A due schedule wakes the loop once per period; "
    "periods missed while the pulse was down fire once.",
)
@click.argument("name", shell_complete=idcomplete.schedules)
@click.option("--in", "in_", metavar="DURATION", help="Once, this long from now.")
@click.option("--every", metavar="DURATION", help="Repeatedly, every DURATION (>= 60s).")
@click.option("--cron", metavar="EXPR", help="Repeatedly, on a 5-field cron line.")
@click.option("--tz", metavar="ZONE", help="IANA zone for --cron (default: local time).")
@click.option("--note", default="", help="What to do when it is due (the decider reads it).")
@JOURNAL_OPT
def schedule_write(
    name: str,
    in_: str | None,
    every: str | None,
    cron: str | None,
    tz: str | None,
    note: str,
    journal: str | None,
) -> None:
    given = [f for f, v in (("--in", in_), ("--every", every), ("--cron", cron)) if v is not None]
    if len(given) != 1:
        raise click.UsageError(
            "give exactly one of --in DURATION, --every DURATION or --cron EXPR"
            + (f" (got {' and '.join(given)})" if given else "")
        )
    if tz is not None and cron is None:
        raise click.UsageError("--tz applies only to --cron")
    obj: dict[str, Any] = {"action": "write_schedule", "name": name, "note": note}
    if in_ is not None:
        obj["in_s"] = _whole_seconds(in_, "--in")
    elif every is not None:
        obj["every_s"] = _whole_seconds(every, "--every")
        if obj["every_s"] < 60:
            raise click.UsageError(
                "--every must be at least 60s; for a sooner look use `looop tick`"
            )
    else:
        obj["cron"] = cron
        if tz is not None:
            obj["tz"] = tz
    _steer(obj, journal)
    _show_next(name)


def _show_next(name: str) -> None:
    ctx = make_ctx(events_to=None)
    for n, rec, _why in schedules.load_all(ctx.paths.schedules):
        if n == name and rec is not None:
            now = ctx.clock.now()
            fires = schedules.first_fires(rec, ctx.clock, 3 if "at" not in rec else 1)
            for i, t in enumerate(fires):
                label = "next" if i == 0 else "then"
                when = schedules.fire_stamp(rec, ctx.clock, t)
                click.echo(f"  {label}: {when} (in {schedules.in_words(t - now)})")


@schedule_group.command("rm", help="Remove a schedule.")
@click.argument("name", shell_complete=idcomplete.schedules)
@JOURNAL_OPT
def schedule_rm(name: str, journal: str | None) -> None:
    check_id("schedule", name)
    ctx = make_ctx(events_to=None)
    if not path_of(ctx.paths.schedules, name).exists():
        raise LooopError(f"no schedule named '{name}' — `looop schedule list` shows them")
    _steer({"action": "drop_schedule", "name": name}, journal)


schedule_group.add_command(schedule_rm, "drop")
hidden_alias(schedule_group, schedule_write, WRITE_ALIAS)  # v1.0's `schedule w`
