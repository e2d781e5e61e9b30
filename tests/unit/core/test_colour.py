"""Every face decides colour the one way users expect of CLIs: LOOOP_COLOR says first, then
NO_COLOR, then FORCE_COLOR (colour even piped, as CI logs want), then the terminal."""

from __future__ import annotations

import pytest

from looop.home.terminal import colour_on

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("tty", "env", "want"),
    [
        (True, {}, True),
        (False, {}, False),
        (True, {"TERM": "dumb"}, False),
        (False, {"FORCE_COLOR": "1"}, True),
        (False, {"FORCE_COLOR": ""}, False),  # set but empty: not asked
        (True, {"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),
        (True, {"NO_COLOR": ""}, True),
        (False, {"LOOOP_COLOR": "1", "NO_COLOR": "1"}, True),
        (True, {"LOOOP_COLOR": "0", "FORCE_COLOR": "1"}, False),
    ],
)
def test_colour_follows_looop_color_then_no_color_then_force_color(
    tty: bool, env: dict[str, str], want: bool
) -> None:
    assert colour_on(tty, env) is want
