"""`looop web`'s port from the config: 0 asks the system for a free port, as `--port 0` does;
only a config without a port gets the default."""

from __future__ import annotations

import pytest

from looop.cli.web import _config_port


@pytest.mark.parametrize(
    ("web", "port"), [({"port": 0}, 0), ({"port": 9001}, 9001), ({}, 8765), ({"port": None}, 8765)]
)
def test_the_configs_port_is_taken_as_written(web: dict[str, object], port: int) -> None:
    assert _config_port(web) == port
