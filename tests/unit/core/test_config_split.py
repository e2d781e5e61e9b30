"""home/config split by job: the knob names rooms import from hot.config are the very objects
of home/knobs (one knob table; the one preset table, home/presets, is imported from there)."""

from __future__ import annotations

import pytest

from looop.home import config, knobs
from looop.home.errors import LooopError


@pytest.mark.parametrize("name", ["KNOBS", "Knobs", "knob_lines", "resolve_knobs"])
def test_config_re_exports_are_the_same_objects(name: str) -> None:
    assert getattr(config, name) is getattr(knobs, name)
    assert name in config.__all__


def test_every_name_in_all_resolves() -> None:
    missing = [n for n in config.__all__ if not hasattr(config, n)]
    assert missing == []


def test_a_bad_knob_in_the_config_still_names_its_key_and_file() -> None:
    with pytest.raises(LooopError) as err:
        config.parse_config({"interval": "soon"}, "/x/config.json")
    msg = str(err.value)
    assert msg.startswith("config /x/config.json: key 'interval' must be an integer from 1 to")
    assert '(got "soon")' in msg


def test_a_long_bad_value_is_shortened_in_the_message() -> None:
    with pytest.raises(LooopError) as err:
        config.parse_config({"notification": ["x" * 200]}, "c.json")
    msg = str(err.value)
    assert msg.startswith("config c.json: key 'notification' must be a shell command string")
    assert msg.endswith('(got ["' + "x" * 55 + "...)")
