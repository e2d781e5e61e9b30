"""The steering groups (goal, sensor, playbook, schedule: durable wake-ups) and their reads.
Their moves, through the pulse's own executor, are cli/steering.py's, loaded only for one."""

from __future__ import annotations

from typing import Any

import click

from looop.act import goalarchive
from looop.act.playbook import versions
from looop.cli.app import from_config, make_ctx, show_rows
from looop.cli.root import Subverbs
from looop.core import provenance
from looop.core.context import Ctx
from looop.core.readings import read_reading
from looop.home import jsonio, store
from looop.home.errors import LooopError
from looop.home.sandboxpolicy import SandboxPolicy
from looop.human import schedules
from looop.views import outcomes

goal_group = Subverbs("goal", help="Write, remove (archive) or list goals (the desired state).")


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
    empty = "no goals yet — `looop goal write ID BODY`"
    show_rows(rows, as_json, empty, lambda r: f"{r['id']:<24} {r['headline']}", indent=2)


def _archived_list(ctx: Ctx, as_json: bool) -> None:
    def line(r: dict[str, Any]) -> str:
        ended, by = outcomes.short(r["worker_outcome"]), r["by"] or "—"
        return f"{r['id']:<24} {r['reason']:<10} {ended:<16} {by:<8} {r['headline']}"

    head = f"{'GOAL':<24} {'WHY':<10} {'ITS WORKER':<16} {'BY':<8} HEADLINE"
    rows = goalarchive.archived(ctx)
    show_rows(rows, as_json, "no archived goals", line, head, indent=2)


sensor_group = Subverbs(
    "sensor", help="Write, remove, list or run sensors (scripts printing the world as JSON)."
)


@sensor_group.command(
    "list", help="List sensors: who wrote each, whether it runs sandboxed, its last signal."
)
@click.option("--json", "as_json", is_flag=True)
def sensor_list(as_json: bool) -> None:
    ctx = make_ctx(events_to=None)
    scripts = sorted(ctx.paths.sensors.glob("*.sh")) if ctx.paths.sensors.is_dir() else []
    rows: list[dict[str, Any]] = []
    sandbox = shell_sandbox(ctx)
    for s in scripts:
        try:  # who wrote it: human, decision, edited (a human's, changed since) or unknown
            content: bytes | None = store.read_regular(s)
        except OSError:
            content = None
        by = provenance.who(ctx.paths, provenance.SENSOR, s.stem, content)
        sandboxed = by != provenance.HUMAN and (sandbox is None or sandbox.on)
        got = read_reading(str(ctx.paths.snapshots), f"sensor-{s.stem}")
        signal: Any = got.signal if got.is_json else None
        shown = "(not run yet)"
        if got.is_json:
            shown = jsonio.canonical(signal)
        elif got.body is not None:
            shown = got.text.strip()[:80]
        row = {"name": s.stem, "script": str(s), "run": got.body is not None, "signal": signal}
        rows.append({**row, "by": by, "sandboxed": sandboxed})
        if not as_json:
            where = "sandboxed" if sandboxed else "unsandboxed"
            click.echo(f"{s.stem:<20} {by:<8} {where:<11} {shown[:100]}")
    if as_json:
        click.echo(jsonio.dumps(rows, indent=2, sort_keys=True, ensure_ascii=False))
    elif not scripts:
        click.echo("no sensors yet — `looop sensor write NAME SCRIPT`")


def shell_sandbox(ctx: Ctx) -> SandboxPolicy | None:
    """shell_policy's sandbox, which every sensor but a human's runs under; None: the config
    cannot be read (such a sensor then does not run)."""
    return from_config(ctx, lambda cfg: cfg.shell_policy.sandbox, None)


playbook_group = Subverbs("playbook", help="Replace the PLAYBOOK or list its history.")


@playbook_group.command("history", help="List earlier PLAYBOOK versions (playbook.d/).")
@click.option("--json", "as_json", is_flag=True)
def playbook_history(as_json: bool) -> None:
    ctx = make_ctx(events_to=None)
    files = versions(ctx.paths.playbook_history)[::-1]  # newest first
    rows = [{"version": f.stem, "path": str(f)} for f in files]
    line, empty = (lambda r: f"{r['version']}  {r['path']}"), "no earlier PLAYBOOK versions yet"
    show_rows(rows, as_json, empty, line, indent=2, sort_keys=True, ensure_ascii=False)


goal_group.add_command(goal_list, "ls")  # as `schedule ls`
sensor_group.add_command(sensor_list, "ls")


schedule_group = Subverbs(
    "schedule", help="Durable wake-ups: once, every N, or a cron line in a time zone."
)


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
        when = schedules.describe(rec, ctx.clock) if rec and r.kind != "invalid" else ""
        due = r.signal == "due" or (isinstance(r.signal, dict) and "fired" in r.signal)
        nd = int(r.next_due) if r.next_due is not None else None
        row = {"name": name, "kind": r.kind, "when": when, "signal": r.signal, "due": due}
        rows.append({**row, "next_due_unix": nd, "detail": r.detail, "record": rec})

    def line(row: dict[str, Any]) -> str:
        if row["kind"] == "invalid":
            return f"{row['name']:<20} INVALID  {row['detail'].get('error', '')}"
        nd = row["next_due_unix"]
        nxt = f"next in {schedules.in_words(nd - now)}" if nd is not None else "no next"
        state = "due" if row["signal"] == "due" else nxt
        note = row["detail"].get("note") or ""
        return f"{row['name']:<20} {row['when']:<40} {state:<18} {note[:60]}".rstrip()

    empty = "no schedules — `looop schedule write NAME --in 2h --note 'check CI'`"
    show_rows(rows, as_json, empty, line, indent=2, ensure_ascii=False)


schedule_group.add_command(schedule_list, "ls")
