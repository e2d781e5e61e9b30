"""`looop ls [-a] [--json]` without click: the pulse and the workers, as a table or JSON."""

from __future__ import annotations

import os
import sys

from looop.home import where
from looop.home.clock import clock_for
from looop.home.config import load_config, resolve_knobs
from looop.home.errors import LooopError
from looop.home.fleet import fleet_rows_at
from looop.home.plain import echo
from looop.home.render import fleet_json, fleet_table
from looop.home.revive import revive
from looop.home.terminal import colour_on
from looop.remote.fleet import remote_rows

TYPE_CHECKING = False  # not `from typing`: a hot verb must not pay for it

if TYPE_CHECKING:
    from looop.home.clock import Clock


def serve(argv: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    flags = set(argv[1:])
    if not flags <= {"-a", "--all", "--json"}:
        return False  # --watch, --interval, --help and mistakes: click's
    try:
        data, config = where.resolve(env, os.getcwd())
        warned: list[str] = []
        knobs = resolve_knobs(load_config(config), env, warned.append)
    except LooopError:
        return False  # click's face says it (a broken config warns, then the defaults stand)
    if warned:
        return False  # ... and so are the config warnings, written as events
    now = clock_for(env, clock)
    revive(data, config, env, now)  # a pulse wanted up and lost: started again (home/revive)
    rows = fleet_rows_at(
        data,
        now,
        knobs.num("worker_stuck_secs"),
        bool(flags & {"-a", "--all"}),
        env,
        far=remote_rows,
    )
    if "--json" in flags:
        echo(fleet_json(rows))
    else:
        echo(fleet_table(rows, colour_on(sys.stdout.isatty(), env)))
    return True
