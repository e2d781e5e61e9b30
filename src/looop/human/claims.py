"""`looop claim NAME [--session S]` / `looop unclaim NAME [--session S]` (hot path: no click)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from looop.home import where
from looop.human.leases import claim, session_alive, unclaim
from looop.human.tellbox import AskError, check_worker

if TYPE_CHECKING:
    from collections.abc import Mapping


def run_lease(verb: str, name: str, session: str | None, env: Mapping[str, str], now: float) -> int:
    """The work of claim/unclaim for both faces (the fast path and click's); the exit code."""
    data = where.resolve(env, os.getcwd())[0]
    holder = session if session is not None else env.get("LOOOP_SESSION_ID", "")
    if verb == "claim" and not holder:
        # a lease no session holds could never be released by its holder's end: refused
        given = "--session is empty" if session is not None else "LOOOP_SESSION_ID is not set"
        sys.stderr.write(
            f"looop: claim {name}: {given} — a claim needs a holder: run it inside a worker "
            "or give --session ID\n"
        )
        return 1
    if holder:
        try:
            check_worker(holder, "--session" if session is not None else "LOOOP_SESSION_ID")
        except AskError as e:
            sys.stderr.write(f"looop: {e}\n")
            return 1
    alive = session_alive(data)
    claims = os.path.join(data, where.CLAIMS)
    os.makedirs(claims, exist_ok=True)
    if verb == "claim":
        ok, who = claim(claims, name, holder, alive, now)
        if ok:
            sys.stdout.write(f"claimed {name}\n")
            return 0
        sys.stderr.write(
            f"claim {name}: held by live session '{who}' — do not proceed; pick other work or ask\n"
        )
        return 1
    if unclaim(claims, name, holder, alive):
        return 0
    sys.stderr.write(f"unclaim {name}: held by another live session — leave it to them\n")
    return 1


def parse_fast(argv: list[str]) -> tuple[str, str, str | None] | None:
    """(verb, name, session) for the plain spellings; anything else goes through click."""
    if not argv or argv[0] not in ("claim", "unclaim"):
        return None
    rest = argv[1:]
    session = None
    if len(rest) == 3 and rest[1] == "--session":
        rest, session = [rest[0]], rest[2]
    elif len(rest) == 3 and rest[0] == "--session":
        rest, session = [rest[2]], rest[1]
    if len(rest) != 1 or rest[0].startswith("-"):
        return None
    return argv[0], rest[0], session


def serve(argv: list[str], env: Mapping[str, str], now: float) -> bool:
    """The plain spellings, run: this ends with run_lease's exit code; False: click's."""
    parsed = parse_fast(argv)
    if parsed is None:
        return False
    raise SystemExit(run_lease(*parsed, env, now))
