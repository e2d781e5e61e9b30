"""The home's word on its SSH workers' bounds: each beat every host with workers of this home
is asked once (its satellite's `bounds`: remote/ssh/farbounds.py), and a worker at a bound
there is said once in a line naming the worker, its host and the bound — at its process
bound, killed at its memory bound, paused whole for its disk. `worker continue` lets a
worker paused there go on, all it runs, on its host (SshBackend.go_on)."""

from __future__ import annotations

import concurrent.futures
import os
from typing import Any

from looop.core.context import Ctx
from looop.home import store
from looop.home.knobs import Knobs
from looop.remote import bounds, untrusted
from looop.remote import hosts as reg
from looop.remote.hosts import HostError
from looop.remote.ssh.backend import LIMIT_HEALTH, LS_TIMEOUT_S, ssh_records
from looop.remote.ssh.link import link
from looop.spend.spent import BUDGETS
from looop.views.outcomes import BOUND_WORDS
from looop.workers.diskuse import size


def _ask(ctx: Ctx, host: str, disk: int) -> list[dict[str, Any]]:
    try:
        got = link(ctx, host).call("bounds", {"disk": disk}, timeout=LS_TIMEOUT_S)
    except HostError:
        return []  # a silent host: its workers read `unreachable` in `ls`, asked next beat
    rows = got.get("workers")
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def check(ctx: Ctx, knobs: Knobs) -> list[str]:
    """Ask every host with workers not yet seen over (or over and not yet asked since), all
    at once; each worker newly at a bound said once. The ones said."""
    data = ctx.paths.data
    recs = {w: r for w, r in ssh_records(data).items() if not r.get("over") or not r.get("asked")}
    hosts = sorted({r["host"] for r in recs.values()})
    if not hosts:
        return []
    disk = knobs.num("worker_max_disk")
    with concurrent.futures.ThreadPoolExecutor(len(hosts)) as pool:
        answers = dict(zip(hosts, pool.map(lambda h: _ask(ctx, h, disk), hosts), strict=True))
    said = []
    for host, rows in answers.items():
        for row in rows:
            wid = row.get("id")
            rec = recs.get(wid) if isinstance(wid, str) else None
            if wid is None or rec is None or rec["host"] != host:
                continue  # only this home's workers on that host (its word is outside input)
            if _say(ctx, str(wid), host, rec, row):
                said.append(str(wid))
    for wid in recs:  # an ended worker's end is asked about once
        fresh = reg.record(data, wid)
        if fresh is not None and fresh.get("over") and not fresh.get("asked"):
            store.write_json(reg.record_file(data, wid), {**fresh, "asked": True})
    return said


def _say(ctx: Ctx, wid: str, host: str, rec: dict[str, Any], row: dict[str, Any]) -> bool:
    """One worker's bound, said once (the home's record keeps which were)."""
    limit = row.get("limit")
    if limit not in LIMIT_HEALTH:
        return False
    fresh = reg.record(ctx.paths.data, wid) or rec
    was = fresh.get("said")
    told: list[Any] = was if isinstance(was, list) else []
    if limit in told:
        return False
    store.write_json(reg.record_file(ctx.paths.data, wid), {**fresh, "said": [*told, limit]})
    given = fresh.get("bounds")
    sent: dict[str, Any] = given if isinstance(given, dict) else {}
    n = untrusted.count(row.get("max") or sent.get(limit), 1 << 40) or 0
    bound = bounds.shown(str(limit), n) if n else f"{BOUND_WORDS[str(limit)]} limit"
    where = f"worker {wid} on host {host}"
    if limit == "disk":
        _over_disk(ctx, wid, host, bound, row)
        return True
    if limit == "pids":
        msg = f"{where} is at its {bound}: its next fork fails until some of its processes end"
    else:
        msg = f"{where} hit its {bound}: it was killed"
    ctx.events.emit("warn", "worker.at_limit", msg, id=wid)
    ctx.events.record("worker_at_limit", id=wid, host=host, limit=limit, max=n)
    return True


def _over_disk(ctx: Ctx, wid: str, host: str, bound: str, row: dict[str, Any]) -> None:
    """Paused whole on its host: marked over here too, so `ls` says so and `worker continue`
    lets it go on."""
    folder = untrusted.words(row.get("folder"), 200) or "its folders"
    used = untrusted.count(row.get("bytes"), 1 << 50) or 0
    mark = {"limit": "disk", "host": host, "folder": folder, "bytes": used, "policy": "pause"}
    store.write_json(os.path.join(str(ctx.paths.data), BUDGETS, f"{wid}.over"), mark)
    msg = (
        f"worker {wid} on host {host} keeps more than its {bound} ({size(used)} in {folder}): "
        f"paused whole there — free it, then `looop worker continue {wid}`"
    )
    ctx.events.emit("warn", "worker.over_disk", msg, id=wid)
    ctx.events.record("worker_over_disk", id=wid, host=host, folder=folder, bytes=used)
