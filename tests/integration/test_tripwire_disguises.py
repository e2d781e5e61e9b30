"""A decision's code in disguise, through whole beats with the shell sandbox off: a sensor or a
run_shell whose real work hides in awk's system() or a shell-and-perl polyglot is refused
unread, never written and never run — while a human's `looop run` of the same line runs as
written. The disguises only touch a marker file."""

from __future__ import annotations

from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.loop.tick import tick
from tests.clocks import FixedClock
from tests.helpers import Cli, wire

pytestmark = pytest.mark.timeout(60)

AWK = "awk 'BEGIN { system(\"touch marker\") }'"
POLYGLOT = '#!/bin/sh\nexec perl -x "$0" "$@"\n#!perl\nopen(my $f, ">", "marker");\n__END__\n'


def _marker(ctx: Ctx) -> Path:
    return ctx.paths.data / "marker"


@pytest.mark.parametrize(
    "script",
    [f"#!/bin/sh\n{AWK}\necho '{{}}'\n", POLYGLOT],
    ids=["awk-system", "perl-x-polyglot"],
)
def test_a_decisions_sensor_in_disguise_is_refused_and_never_runs(
    ctx: Ctx, clock: FixedClock, script: str
) -> None:
    wire(
        ctx,
        [{"decision": {"action": "write_sensor", "name": "disk", "script": script}}],
        shell_policy={"sandbox": "off"},
    )
    out = tick(ctx)
    assert out.status == "failed", out
    assert "write_sensor refused: the tripwire cannot read sensors/disk.sh" in (out.error or "")
    assert "\n" not in (out.error or "")
    assert not ctx.paths.sensor("disk").exists()
    clock.advance(61)
    tick(ctx)  # the next beat has nothing of it to run
    assert not _marker(ctx).exists()


def test_a_decisions_run_shell_in_disguise_is_refused_unread(ctx: Ctx) -> None:
    wire(
        ctx,
        [{"decision": {"action": "run_shell", "cmd": AWK}}],
        shell_policy={"sandbox": "off"},
    )
    out = tick(ctx)
    assert out.status == "failed", out
    assert "run_shell refused: the tripwire cannot read it" in (out.error or "")
    assert "system()" in (out.error or "")
    assert not _marker(ctx).exists()


def test_a_humans_looop_run_of_the_same_line_runs(cli: Cli) -> None:
    code, _, err = cli("run", "--", AWK)
    assert code == 0, err
    assert (cli.data / "marker").exists()
