"""The config's `web` object: the door's knobs (client deadline, connection cap, head size
cap) read with their defaults, and each bad value refused in one line naming its key."""

from __future__ import annotations

from typing import Any

import pytest

from looop.core.webconfig import DOOR, door_limits, web_settings
from looop.home.errors import LooopError


def test_absent_knobs_read_as_their_defaults() -> None:
    assert door_limits(web_settings({})) == tuple(d for d, _, _, _ in DOOR.values())
    assert door_limits(web_settings({"web": {"url": "https://x.example"}}))[1] == 256


def test_given_knobs_are_used() -> None:
    web = web_settings(
        {"web": {"client_timeout_secs": 2.5, "max_connections": 64, "max_head_bytes": 4096}}
    )
    assert door_limits(web) == (2.5, 64, 4096)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("client_timeout_secs", 0),
        ("client_timeout_secs", 121),
        ("client_timeout_secs", float("nan")),
        ("client_timeout_secs", float("inf")),
        ("client_timeout_secs", "10"),
        ("client_timeout_secs", True),
        ("max_connections", 15),
        ("max_connections", 10_000),
        ("max_connections", 64.5),
        ("max_connections", 0),
        ("max_head_bytes", 100),
        ("max_head_bytes", 1 << 30),
        ("max_head_bytes", [4096]),
    ],
)
def test_a_bad_knob_is_refused_naming_its_key(key: str, value: Any) -> None:
    with pytest.raises(LooopError) as e:
        web_settings({"web": {key: value}})
    msg = str(e.value)
    assert f"'web.{key}'" in msg and "\n" not in msg
