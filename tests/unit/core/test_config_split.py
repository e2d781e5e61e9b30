"""home/config split by job: the knob names rooms import from hot.config are the very objects
of home/knobs (one knob table; the one preset table, home/presets, is imported from there), and
loading the config still pulls in neither `typing` nor `dataclasses` (the cold `looop status`
budget)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from looop.home import config, knobs
from looop.home.errors import LooopError


@pytest.mark.parametrize(
    ("home", "name"),
    [
        (knobs, "KNOBS"),
        (knobs, "Knob"),
        (knobs, "Knobs"),
        (knobs, "knob_lines"),
        (knobs, "resolve_knobs"),
        (knobs, "unknown_key_warnings"),
    ],
)
def test_config_re_exports_are_the_same_objects(home: object, name: str) -> None:
    assert getattr(config, name) is getattr(home, name)
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


@pytest.mark.timeout(30)
@pytest.mark.process
def test_loading_the_config_leaves_typing_and_dataclasses_unloaded() -> None:
    probe = (
        "import json, sys\n"
        "from looop.home.config import load_config, resolve_knobs\n"
        "cfg = load_config(__import__('pathlib').Path('/nonexistent/config.json'))\n"
        "resolve_knobs(cfg, {'LOOOP_INTERVAL': '7'}).num('interval')\n"
        "print(json.dumps(sorted(m for m in ('typing', 'dataclasses', 'inspect')"
        " if m in sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=20, check=True
    )
    assert json.loads(out.stdout) == []


@pytest.mark.timeout(30)
@pytest.mark.process
def test_a_configured_data_dir_never_loads_the_presets(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"runners": {"mine": {"tick": "my-agent -p"}}, "default": "mine"}))
    probe = (
        "import json, sys, pathlib\n"
        "from looop.home.config import load_config, resolve_knobs\n"
        f"cfg = load_config(pathlib.Path({str(cfg)!r}))\n"
        "resolve_knobs(cfg, {}).num('interval')\n"
        "print(json.dumps([cfg.runner().tick, 'looop.home.presets' in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=20, check=True
    )
    assert json.loads(out.stdout) == ["my-agent -p", False]
