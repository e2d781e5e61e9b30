"""`looop schedule write|rm|list`: durable wake-ups, through the same executor as decisions."""

from __future__ import annotations

from typing import Any

import click

from looop.act.decision import check_id
from looop.cli import idcomplete
from looop.cli.app import make_ctx
from looop.cli.commands import WRITE_ALIAS
from looop.cli.params import JOURNAL_OPT, hidden_alias
from looop.cli.steer import _steer
from looop.home import jsonio
from looop.home.errors import LooopError
from looop.human import schedules
from looop.human.schedules import path_of
from looop.sessions.durations import parse_duration


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


@click.group("schedule", help="Durable wake-ups: once, every N, or a cron line in a time zone.")
def schedule_group() -> None:
    pass


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


@schedule_group.command("list", help="List schedules: when, state, next due time, note.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
def schedule_list(as_json: bool) -> None:
    ctx = make_ctx(events_to=None)
    now = ctx.clock.now()
    rows = []
    # what each has fired (the beat's marks): after a wall clock step the next due is where
    # the pulse fires it, not where the stepped clock alone would put it
    marks = schedules.load_marks(ctx.paths.schedule_marks)
    for name, rec, why in schedules.load_all(ctx.paths.schedules):
        r = schedules.reading(name, rec, why, ctx.clock, marks.get(name))
        rows.append(
            {
                "name": name,
                "kind": r.kind,
                "when": schedules.describe(rec, ctx.clock) if rec and r.kind != "invalid" else "",
                "signal": r.signal,
                "due": r.signal == "due" or (isinstance(r.signal, dict) and "fired" in r.signal),
                "next_due_unix": int(r.next_due) if r.next_due is not None else None,
                "detail": r.detail,
                "record": rec,
            }
        )
    if as_json:
        click.echo(jsonio.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("no schedules — `looop schedule write NAME --in 2h --note 'check CI'`")
        return
    for row in rows:
        if row["kind"] == "invalid":
            click.echo(f"{row['name']:<20} INVALID  {row['detail'].get('error', '')}")
            continue
        nd = row["next_due_unix"]
        nxt = f"next in {schedules.in_words(nd - now)}" if nd is not None else "no next"
        state = "due" if row["signal"] == "due" else nxt
        note = row["detail"].get("note") or ""
        click.echo(f"{row['name']:<20} {row['when']:<40} {state:<18} {note[:60]}".rstrip())


schedule_group.add_command(schedule_list, "ls")
schedule_group.add_command(schedule_rm, "drop")
hidden_alias(schedule_group, schedule_write, WRITE_ALIAS)  # v1.0's `schedule w`
