"""`looop told [WORKER]` and `looop tell WORKER MSG...`: the work of both faces (the
click-free fast path in hot/main.py and the click commands in cli/mailbox.py)."""

from __future__ import annotations

import os

from looop.hot import where
from looop.hot.clock import now_of
from looop.hot.errors import LooopError
from looop.hot.plain import echo
from looop.hot.reqkey import request_key
from looop.hot.tellbox import check_worker, keyed_tell, new_tell, take_tells

TYPE_CHECKING = False  # workers call `looop told` often: no typing

if TYPE_CHECKING:
    from collections.abc import Mapping

    from looop.hot.clock import Clock


def run_told(worker: str | None, env: Mapping[str, str]) -> None:
    data = where.resolve(env, os.getcwd())[0]
    who = worker or env.get("LOOOP_SESSION_ID", "")
    if not who:
        raise LooopError("name the worker (`looop told WORKER`) or run it inside a worker")
    check_worker(who, "worker id" if worker else "LOOOP_SESSION_ID")
    for msg in take_tells(os.path.join(data, "tells"), who):
        echo(msg)


def run_tell(worker: str, message: list[str], env: Mapping[str, str], now: float) -> None:
    # lazy: only `tell` reads a session and writes an event (`told` does neither: fcntl)
    from looop.hot.eventlog import EventLog
    from looop.hot.knobs import env_knob
    from looop.hot.leases import remote_alive
    from looop.hot.wire import live

    data = where.resolve(env, os.getcwd())[0]
    tells = os.path.join(data, "tells")
    key, again = request_key(env)
    earlier = keyed_tell(tells, worker, key) if key is not None and again else None
    if earlier is not None:
        echo(f"queued {earlier}")  # the cut run queued it: said again, sent once
        return
    if not live(data, worker) and not remote_alive(data, worker):
        raise LooopError(f"worker {worker} is not running — a tell only reaches a live worker")
    tid = new_tell(tells, worker, " ".join(message), now, key)
    events = EventLog(os.path.join(data, "events.jsonl"), now, env_knob("events_max_bytes", env))
    events.record("tell", id=tid, worker=worker)
    echo(f"queued {tid}")


def parse_told(argv: list[str]) -> tuple[str | None] | None:
    """(worker,) for `told` and `told WORKER`; None (click's turn) for anything else."""
    rest = argv[1:]
    if len(rest) > 1 or (rest and rest[0].startswith("-")):
        return None
    return (rest[0] if rest else None,)


def parse_tell(argv: list[str]) -> tuple[str, list[str]] | None:
    """(worker, words) for `tell WORKER MSG...` with no option-like word; else None."""
    rest = argv[1:]
    if len(rest) < 2 or any(a.startswith("-") for a in rest):
        return None
    return rest[0], rest[1:]


def serve(
    argv: list[str], env: dict[str, str], clock: Clock | None, caller: int | None = None
) -> bool:
    """`told [WORKER]` and `tell WORKER MESSAGE…` in their plain spellings."""
    if argv[:1] == ["told"]:
        told = parse_told(argv)
        if told is None:
            return False
        run_told(*told, env)
        return True
    tell = parse_tell(argv)
    if tell is None:
        return False
    run_tell(*tell, env, now_of(clock))
    return True
