"""The satellite's start verbs (`hello`, `spawn`, `verify`): what a start on an SSH host
needs (start's checkout, sandbox and session; hostverify's check), imported at the top; and
its change verb (`diff`: a worker's checkouts read here, workers/review.py; its review is
act/landthere.py's).

Only the satellite process of one of these verbs loads this module (cli/satellite.py picks it
by the verb); `ls`, `screen`, `send` and the rest answer from satellite.py without it."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from looop.core.context import Ctx
from looop.home import store
from looop.home.errors import LooopError
from looop.remote.ssh import hostverify, start
from looop.remote.ssh.link import PROTOCOL
from looop.remote.ssh.satellite import RELAY, worker_id, worker_row
from looop.workers.review import diff_of


def start_verb(ctx: Ctx, root: Path, op: str, req: dict[str, Any], version: str) -> dict[str, Any]:
    if op == "hello":
        relay = root / RELAY
        if req.get("fresh"):
            store.remove(relay)  # a dead master's forward: a fresh one binds it again
        root.mkdir(parents=True, exist_ok=True)
        start.refresh_shims(root, ctx.env.get("HOME", ""))
        return {
            "version": version,
            "protocol": PROTOCOL,
            "dir": str(root),
            "relay": str(relay),
            "python": sys.version.split()[0],
            "uid": os.geteuid(),
            "sandbox_missing": start.sandbox_missing(ctx),
        }
    if op == "spawn":
        sid = worker_id(req)
        s, trees = start.spawn(ctx, root, sid, req, root / RELAY)
        shown = asdict(trees[0]) if trees else None  # what a home before "trees" reads
        row = worker_row(root, s, ctx.clock)
        return {"row": row, "tree": shown, "trees": [asdict(t) for t in trees]}
    if op == "verify":
        return hostverify.verify(ctx, req)
    if op == "diff":
        return diff_of(ctx, worker_id(req))
    raise LooopError(f"unknown satellite verb {op!r}")
