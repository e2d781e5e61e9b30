"""Shell completion of the ids a verb takes (asks, goals, sensors, workers, schedules, claims),
read from the data dir the completing shell would use. Click calls these only while
completing, so no verb pays for them; a missing or unreadable directory offers nothing."""

from __future__ import annotations

import os

import click

from looop.cli.commands import process_env
from looop.home import where


def _names(sub: str, suffix: str, dirs: bool = False) -> list[str]:
    try:
        data = where.resolve(process_env(), os.getcwd())[0]
        d = where.join(data, sub)
        entries = os.listdir(d)
    except (OSError, ValueError):
        return []
    out = []
    for n in entries:
        if n.startswith(".") or not n.endswith(suffix):
            continue
        if dirs != os.path.isdir(where.join(d, n)):
            continue
        out.append(n[: len(n) - len(suffix)] if suffix else n)
    return sorted(out)


def _offer(names: list[str], incomplete: str) -> list[str]:
    return [n for n in names if n.startswith(incomplete)]


def asks(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Pending ask ids: asks/<id>.json with no answer yet."""
    answered = set(_names("answers", ".json"))
    return _offer([a for a in _names("asks", ".json") if a not in answered], incomplete)


def goals(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return _offer(_names("goals", ".md"), incomplete)


def sensors(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Sensor names as `sensor write/rm/run` take them (sensors/NAME.sh → NAME)."""
    names = [n[:-3] if n.endswith(".sh") else n for n in _names("sensors", "")]
    return _offer(sorted(set(names)), incomplete)


def sessions(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Session ids, the pulse's included (the read verbs take it)."""
    return _offer(_names("sessions", "", dirs=True), incomplete)


def workers(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return [s for s in sessions(ctx, param, incomplete) if s != "pulse"]


def schedules(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return _offer(_names("schedules", ".json"), incomplete)


def claims(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return _offer(_names("claims", ".json"), incomplete)
