"""`looop runs replay`: recorded decide prompts sent to another decider (another runner, a
command, or the same one with an edited PLAYBOOK) to see whether it would have made the same
moves. Each decide runs as a real one does (sandboxed as configured, metered, under the
budget) but nothing is executed: its decision goes to its own file, and its run is kept
under runs/ (`replay-…`) beside the one it replays."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from looop.act.decision import DecisionError
from looop.act.executor import take_decision
from looop.act.outcome import ExecError
from looop.act.parse import parse_decision
from looop.core.context import Ctx
from looop.decide import spend
from looop.decide.defuse import escape_body
from looop.home import store, where
from looop.home.config import Config, Runner
from looop.home.errors import LooopError
from looop.home.knobs import Knobs
from looop.loop import beat
from looop.loop.guards import read_record

PLAYBOOK = re.compile(r"(?ms)^=== PLAYBOOK ===\n.*?(?=^=== )")


@dataclass
class Row:
    """One replayed beat: the recorded move and the replayed one, and what each cost."""

    run_id: str
    replay_id: str | None
    recorded: str  # "action target" (no target when it has none; "?" when not recorded)
    replayed: str | None
    verdict: str  # same | same action, other target | different | failed
    error: str | None = None
    secs: float | None = None
    cost_usd: float | None = None
    recorded_secs: float | None = None


def recorded_runs(ctx: Ctx, ids: tuple[str, ...], last: int | None) -> list[str]:
    """The runs named, or the last N decides (replays of them left out), oldest first."""
    if ids:
        return list(ids)
    ticks = [d.name for d in beat.run_dirs(ctx) if d.name.startswith("tick-")]
    return ticks[: last or 1][::-1]


def replay(
    ctx: Ctx,
    knobs: Knobs,
    cfg: Config,
    runner: Runner,
    run_ids: list[str],
    playbook: str | None,
    said: Callable[[str], object],
) -> list[Row]:
    """Each run's prompt to `runner` (its PLAYBOOK section replaced by `playbook` when given);
    a run that cannot be replayed, or whose decider fails, is a failed row and the rest go
    on; the daily budget or decide cap stops the rest."""
    rows: list[Row] = []
    for n, run_id in enumerate(run_ids, 1):
        said(f"replaying {run_id} ({n}/{len(run_ids)}) with {runner.name}")
        rows.append(_one(ctx, knobs, cfg, runner, run_id, playbook))
        if rows[-1].error is not None and rows[-1].error.startswith("not run: "):
            rows += [Row(r, None, _recorded(ctx, r)[0], None, "failed", rows[-1].error)
                     for r in run_ids[n:]]  # fmt: skip
            break
    return rows


def _one(
    ctx: Ctx, knobs: Knobs, cfg: Config, runner: Runner, run_id: str, playbook: str | None
) -> Row:
    recorded, recorded_secs = _recorded(ctx, run_id)
    row = Row(run_id, None, recorded, None, "failed", recorded_secs=recorded_secs)
    try:
        src = beat.run_dir(ctx, run_id)
    except LooopError as e:
        row.error = str(e)
        return row
    text = store.read_text(src / "prompt.md")
    if text is None:
        row.error = f"its prompt is gone (runs/{run_id}/prompt.md)"
        return row
    cap = knobs.num("prompt_max_bytes")
    if cap > 0 and len(store.encode(text)) > cap:
        row.error = f"its prompt is over the {cap}-byte prompt cap (prompt_max_bytes)"
        return row
    hit = spend.open_breaker(ctx, knobs, runner)
    if hit is not None:
        row.error = f"not run: {hit.error}"
        return row
    replay_id = _new_id(ctx, run_id)
    run_dir = ctx.paths.run_dir(replay_id)
    run_dir.mkdir(parents=True)
    # its answer in its own run's folder (unboxed) or room (boxed): never the pulse's
    moved = beat.MovedPaths(
        ctx.paths,
        decision=run_dir / where.DECISION,
        decide_room=ctx.paths.rooms / "+replay" / "answer",
    )
    rctx = replace(ctx, paths=moved)
    answer = spend.decision_file(rctx, runner, cfg)
    for old in (ctx.paths.decision_file(False), ctx.paths.decision_file(True)):
        text = text.replace(str(old), str(answer))
    if playbook is not None:
        body = escape_body(playbook).rstrip("\n")
        text = PLAYBOOK.sub(lambda _: f"=== PLAYBOOK ===\n{body}\n\n", text, count=1)
    prompt = run_dir / "prompt.md"
    store.atomic_write(prompt, text)
    result, cost, _ = spend.run_metered(
        rctx, knobs, cfg, runner, prompt, [run_dir / "output.log"], replay_id
    )
    row.replay_id, row.secs, row.cost_usd = replay_id, round(result.secs, 3), cost
    try:
        raw = take_decision(rctx, answer) if result.ok else None
        if raw is None:
            raise DecisionError(result.error or "the decider wrote no decision")
        action = parse_decision(raw).action
        store.atomic_write(run_dir / "decision.json", raw)
    except (DecisionError, ExecError) as e:
        row.error = str(e)
    else:
        row.replayed = f"{action.tag} {action.goal() or ''}".rstrip()
        row.verdict = verdict(recorded, row.replayed)
    store.write_json(run_dir / "result.json", _result(ctx, runner, row, result.exit_code))
    return row


def _recorded(ctx: Ctx, run_id: str) -> tuple[str, float | None]:
    """The recorded move as "kind target" (its decision.json; none: its status), and how long
    its decide took."""
    d = ctx.paths.run_dir(run_id)
    res = read_record(d / "result.json") or {}
    secs = res.get("secs") if isinstance(res.get("secs"), int | float) else None
    raw = store.read_text(d / "decision.json")
    if raw is not None:
        with contextlib.suppress(DecisionError):
            action = parse_decision(store.encode(raw)).action
            return f"{action.tag} {action.goal() or ''}".rstrip(), secs
    return f"({res.get('status', 'no move')})", secs


def verdict(recorded: str, replayed: str) -> str:
    if recorded == replayed:
        return "same"
    if recorded.split(" ", 1)[0] == replayed.split(" ", 1)[0]:
        return "same action, other target"
    return "different"


def _new_id(ctx: Ctx, run_id: str) -> str:
    n = 1
    while ctx.paths.run_dir(f"replay-{n}-{run_id}").exists():
        n += 1
    return f"replay-{n}-{run_id}"


def _result(ctx: Ctx, runner: Runner, row: Row, exit_code: int | None) -> dict[str, Any]:
    return {
        "v": 1,
        "run_id": row.replay_id,
        "runner": runner.name,
        "status": "replayed" if row.error is None else "failed",
        "code": None,
        "error": row.error,
        "action": row.replayed.split(" ", 1)[0] if row.replayed else None,
        "journal": row.replayed,
        "secs": row.secs,
        "exit_code": exit_code,
        "ts": int(ctx.clock.now()),
        "replay_of": row.run_id,
        "verdict": row.verdict,
        "cost_usd": row.cost_usd,
    }


def report(rows: list[Row], runner: str) -> dict[str, Any]:
    """The comparison as `--json` gives it: the rows and the totals."""
    done = [r for r in rows if r.verdict != "failed"]
    same = sum(1 for r in done if r.verdict == "same")
    costs = [r.cost_usd for r in done if r.cost_usd is not None]
    return {
        "runner": runner,
        "rows": [asdict(r) for r in rows],
        "replayed": len(done),
        "failed": len(rows) - len(done),
        "same": same,
        "agreement": round(same / len(done), 3) if done else None,
        "cost_usd": round(sum(costs), 6) if costs else None,
        "secs": round(sum(r.secs or 0.0 for r in done), 3),
        "recorded_secs": round(sum(r.recorded_secs or 0.0 for r in done), 3),
    }


def table(rep: dict[str, Any]) -> str:
    lines = [f"{'RUN':<26} {'RECORDED':<28} {'REPLAYED':<28} VERDICT"]
    for r in rep["rows"]:
        got = r["replayed"] or f"✗ {r['error']}"
        lines.append(f"{r['run_id']:<26} {r['recorded']:<28} {got:<28} {r['verdict']}")
    agree = "—" if rep["agreement"] is None else f"{rep['agreement']:.0%}"
    cost = "unmetered" if rep["cost_usd"] is None else f"${rep['cost_usd']:.4f}"
    lines.append(
        f"{rep['runner']}: {rep['same']}/{rep['replayed']} the same ({agree}), "
        f"{rep['failed']} failed; {cost}, {rep['secs']:.1f}s (recorded: "
        f"{rep['recorded_secs']:.1f}s)"
    )
    return "\n".join(lines) + "\n"


def runner_for(cfg: Config, name: str | None, command: str | None) -> Runner:
    """The decider to replay with: a configured runner, a tick command, else the default."""
    if command is not None:
        if not command.strip():
            raise LooopError("--command is empty: give the decider's command line")
        return Runner("replay-command", command, None)
    got = cfg.runner(name)
    if got is None or not got.tick:
        which = f"runner '{name}'" if name else "the default runner"
        raise LooopError(f"{which} has no tick command in the config — `looop init` sets one")
    return got
