"""Shell completion of the ids a verb takes (asks, goals, sensors, workers, schedules, claims),
read from the data dir the completing shell would use. Click calls these only while
completing, so no verb pays for them; a missing or unreadable directory offers nothing."""

from __future__ import annotations

import os
from collections.abc import Callable

import click

from looop.cli.commands import process_env
from looop.home import where

Completer = Callable[[click.Context, click.Parameter, str], list[str]]


def _names(sub: str, suffix: str, dirs: bool = False) -> list[str]:
    try:
        data = where.resolve(process_env(), os.getcwd())[0]
        d = where.join(data, sub)
        entries = os.listdir(d)
    except (OSError, ValueError):
        return []
    return sorted(
        n.removesuffix(suffix)
        for n in entries
        if not n.startswith(".") and n.endswith(suffix) and dirs == os.path.isdir(where.join(d, n))
    )


def _of(names: Callable[[], list[str]]) -> Completer:
    return lambda ctx, param, incomplete: [n for n in names() if n.startswith(incomplete)]


# Pending ask ids: asks/<id>.json with no answer yet.
asks = _of(lambda: sorted(set(_names("asks", ".json")) - set(_names("answers", ".json"))))
goals = _of(lambda: _names("goals", ".md"))
# Sensor names as `sensor write/rm/run` take them (sensors/NAME.sh → NAME).
sensors = _of(lambda: sorted({n.removesuffix(".sh") for n in _names("sensors", "")}))
# Session ids, the pulse's included (the read verbs take it); workers: all but the pulse.
sessions = _of(lambda: _names("sessions", "", dirs=True))
workers = _of(lambda: [s for s in _names("sessions", "", dirs=True) if s != "pulse"])
schedules = _of(lambda: _names("schedules", ".json"))
claims = _of(lambda: _names("claims", ".json"))
