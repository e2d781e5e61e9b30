"""The decide/cost package: every name the old single module had is still `cost.X`, and
`looop status` does not pay for the meter or the report."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

from looop.decide import cost


def test_every_reexported_name_is_its_home_modules_object() -> None:
    assert cost.__all__, "the package re-exports nothing"
    for name in cost.__all__:
        home = importlib.import_module(f"looop.decide.cost.{cost._HOME[name]}")
        assert getattr(cost, name) is getattr(home, name), name
        assert name in dir(cost)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = cost.no_such_thing  # type: ignore[attr-defined]
    with pytest.raises(ImportError):
        from looop.decide.cost import no_such_thing  # type: ignore[attr-defined]  # noqa: F401


def test_names_callers_import_by_from_still_resolve() -> None:
    from looop.decide.cost import UNMETERED_LIMIT, CostMeter, spend_status, usd

    assert UNMETERED_LIMIT > 0 and callable(spend_status) and usd(1.5) == "$1.5"
    assert CostMeter.__module__ == "looop.decide.cost.meter"


@pytest.mark.timeout(30)
@pytest.mark.process
def test_status_path_leaves_the_meter_and_the_report_unloaded() -> None:
    # What loop/status.py does; a fresh interpreter, so other tests' imports do not count.
    probe = (
        "import json, sys\n"
        "from looop.decide.cost import spend_status\n"
        "print(json.dumps([m for m in sys.modules if m.startswith('looop.decide.cost.')]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=20, check=True
    )
    loaded = set(json.loads(out.stdout))
    assert "looop.decide.cost.breakers" in loaded  # the probe really imported something
    assert not loaded & {"looop.decide.cost.meter", "looop.decide.cost.report"}
