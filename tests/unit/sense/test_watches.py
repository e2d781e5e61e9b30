"""What wakes a resting pulse: each worker's status.json, never the pulse's own (its supervisor
writes what its quiet screen asks there, and a pulse woken by its own screen prints, and so is
judged again)."""

from __future__ import annotations

import pytest

from looop.core.context import Ctx
from looop.sense import worker_watches

pytestmark = pytest.mark.unit


def test_every_worker_s_status_wakes_the_pulse_but_its_own(ctx: Ctx) -> None:
    for sid in ("pulse", "w1", "w2"):
        (ctx.paths.sessions / sid).mkdir(parents=True)
    folders, files = worker_watches(ctx)
    assert str(ctx.paths.sessions) in folders
    assert sorted(files) == [str(ctx.paths.sessions / w / "status.json") for w in ("w1", "w2")]
