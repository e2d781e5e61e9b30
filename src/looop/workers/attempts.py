"""Attempts: workers `<id>.1`, `<id>.2` … started at one task from the same base (a start's
`attempts`, act/moves/workers.py), each an ordinary worker. What every face shows of them side
by side (`rows`: `looop review ID`, the web's review, watch) and which one a human may land
(`pick`: `looop land ID --pick N`); those started are taken back when a later one cannot start
by the start itself (workers/launch.roll_back)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.home.sessionfiles import attempts_of
from looop.home.stamps import parse_utc
from looop.home.terminal import for_terminal
from looop.views import outcomes
from looop.views.fleet import fleet_rows_at
from looop.views.workerrows import at_work
from looop.workers.errors import NoSuchWorker
from looop.workers.review import Review, verify_of

if TYPE_CHECKING:
    from looop.views.fleet import FarRows


def rows(
    ctx: Ctx,
    group: str,
    review_of: Callable[[str], Review] | None = None,
    far: FarRows | None = None,
) -> list[dict[str, Any]]:
    """One row per attempt: its outcome ("running" while at work, "waiting" while live and
    waiting on a human), verify, spend and time; with
    `review_of`, its change too (files, lines, commits, tip), or the one line why not; `far`:
    the rows of the workers on hosts (remote/fleet), for attempts started there."""
    data, ids = str(ctx.paths.data), attempts_of(str(ctx.paths.data), group)
    if not ids:
        raise NoSuchWorker(f"no worker or attempts {group} — `looop ls -a` lists them")
    stuck = ctx.knobs().num("worker_stuck_secs")
    every = fleet_rows_at(data, ctx.clock, stuck, True, dict(ctx.env), far)
    fleet = {r["id"]: r for r in every if r["id"] in ids}
    out = []
    for wid in ids:
        f = fleet.get(wid, {})
        began, last = parse_utc(str(f.get("started_at") or "")), f.get("last_output_unix")
        end = ctx.clock.now() if f.get("alive") else last
        row: dict[str, Any] = {
            "id": wid,
            "n": int(wid.rsplit(".", 1)[1]),
            "outcome": ("running" if at_work(f) else "waiting") if f.get("alive") else _ended(f),
            "alive": bool(f.get("alive")),
            "at_work": at_work(f),
            "verify": verify_of(ctx, wid).state,
            "spend_usd": f.get("spend_usd"),
            "time_s": end - began if began and isinstance(end, int | float) else None,
        }
        try:
            r = review_of(wid) if review_of is not None else None
        except LooopError as e:
            row["error"] = str(e)
            r = None
        if r is not None:
            row["files"], row["commits"], row["tip"] = len(r.files), len(r.commits), r.tip
            row["added"] = sum(c.added for c in r.files if not c.binary)
            row["removed"] = sum(c.removed for c in r.files)
            row["landed"] = r.landed
        out.append(row)
    return out


def table(group: str, got: list[dict[str, Any]]) -> str:
    """The attempts side by side, one line each, and how to go on (every text face's)."""
    head = f"{'attempt':<14} {'outcome':<10} {'verify':<8} {'files':>5} {'lines':>11} "
    lines = [head + f"{'commits':>7} {'spend':>7} {'time':>6}"]
    for r in got:
        usd, t = r.get("spend_usd"), r.get("time_s")
        lines_ = "+{added} -{removed}".format_map(r) if "added" in r else "—"
        cells = [
            f"{r['id']:<14} {r['outcome']:<10} {r['verify']:<8}",
            f"{r.get('files', '—'):>5} {lines_:>11}",
            f"{r.get('commits', '—'):>7} {f'${usd:.2f}' if usd is not None else '—':>7}",
            f"{f'{t / 60:.0f}m' if t is not None else '—':>6}",
        ]
        lines.append(" ".join(cells) + (f"  ({r['error']})" if "error" in r else ""))
    lines.append(
        f"one's change: looop review {group}.N · two compared: looop worker diff {group}.1 "
        f"{group}.2 · land one: looop land {group} --pick N"
    )
    return "\n".join(for_terminal(line) for line in lines)


def pick(
    ctx: Ctx, group: str, n: int, force: bool, far: FarRows | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """Attempt `n` of `group` as one a human may land, and the others' rows; one line when it
    is no attempt, is still at work or failed its verify (`force` lands those as they stand)."""
    got = rows(ctx, group, None, far)
    chosen = [r for r in got if r["n"] == n]
    if not chosen:
        have = ", ".join(str(r["n"]) for r in got)
        said = f"no attempt {group}.{n}" if n else f"{group} is {len(got)} attempts"
        raise LooopError(f"{said} — pick one of {have}: `looop land {group} --pick N`")
    wid, r = chosen[0]["id"], chosen[0]
    why = "is still at work" if r["at_work"] else ""
    why = why or ("failed its verify" if r["verify"] == "failed" else "")
    if why and not force:
        raise LooopError(
            f"attempt {wid} {why} — see `looop review {wid}`; --force lands it as it stands"
        )
    return wid, [o for o in got if o["n"] != n]


def _ended(row: dict[str, Any]) -> str:
    """How an attempt ended: its outcome once the beat recorded it, else its session's state."""
    got = row.get("outcome")
    return outcomes.short(got) if got else str(row.get("state") or "—")
