"""`looop status [--json]` without click: the loop's state read from files and printed."""

from __future__ import annotations

import os
import sys

from looop.home import where
from looop.home.clock import clock_for
from looop.home.revive import revive
from looop.home.status import config_trouble, gather_status_at
from looop.home.statustext import print_status
from looop.home.terminal import colour_on

TYPE_CHECKING = False  # not `from typing`: a hot verb must not pay for it

if TYPE_CHECKING:
    from looop.home.clock import Clock


def serve(argv: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    if not set(argv[1:]) <= {"--json"}:
        return False
    data, config = where.resolve(env, os.getcwd())
    as_json = "--json" in argv  # the JSON lists every worker; the text counts the finished
    clock = clock_for(env, clock)
    revive(data, config, env, clock)  # a pulse wanted up and lost: started again (home/revive)
    st = gather_status_at(data, config, env, clock, all_workers=as_json)
    print_status(st, as_json, colour_on(not as_json and sys.stdout.isatty(), env))
    if config_trouble(st):
        raise SystemExit(1)  # the whole status printed; scripts see the config is wrong
    return True
