"""`looop tell WORKER MSG...`: the work of both faces (the click-free one here, `serve`, and
the click command in cli/mailbox.py): the message queued for a live worker, said once
even when the run that asked is cut and run again (its request key)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from looop.home import where
from looop.home.errors import LooopError
from looop.home.eventlog import append_record
from looop.home.knobs import env_knob
from looop.home.plain import echo
from looop.home.reqkey import request_key
from looop.home.sessionfiles import live
from looop.human.leases import remote_alive
from looop.human.tellbox import keyed_tell, new_tell

if TYPE_CHECKING:
    from collections.abc import Mapping


def run_tell(worker: str, message: list[str], env: Mapping[str, str], now: float) -> None:
    data = where.resolve(env, os.getcwd())[0]
    tells = os.path.join(data, where.TELLS)
    key, again = request_key(env)
    earlier = keyed_tell(tells, worker, key) if key is not None and again else None
    if earlier is not None:
        echo(f"queued {earlier}")  # the cut run queued it: said again, sent once
        return
    if not live(data, worker) and not remote_alive(data, worker):
        raise LooopError(f"worker {worker} is not running — a tell only reaches a live worker")
    tid = new_tell(tells, worker, " ".join(message), now, key)
    events, most = os.path.join(data, where.EVENTS), env_knob("events_max_bytes", env)
    append_record(events, "tell", {"id": tid, "worker": worker}, now, most)
    echo(f"queued {tid}")


def parse_tell(argv: list[str]) -> tuple[str, list[str]] | None:
    """(worker, words) for `tell WORKER MSG...` with no option-like word; else None."""
    rest = argv[1:]
    if len(rest) < 2 or any(a.startswith("-") for a in rest):
        return None
    return rest[0], rest[1:]


def serve(argv: list[str], env: Mapping[str, str], now: float) -> bool:
    """`tell WORKER MESSAGE…` in its plain spelling, run; False: click's."""
    tell = parse_tell(argv)
    if tell is not None:
        run_tell(*tell, env, now)
    return tell is not None
