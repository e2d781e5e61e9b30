"""The decide/cost package: every name the old single module had is still `cost.X`, and each is
its home module's own object (the light readers in looop.spend, the meter and the report
here)."""

from __future__ import annotations

import sys

import pytest

from looop.decide import cost

pytestmark = pytest.mark.unit


HOMES = ("looop.spend.", "looop.decide.cost.")


def _in_cost(module: str) -> bool:
    """One of the cost rooms' modules, or home/cost itself (its money helpers live there)."""
    return module == "looop.spend" or module.startswith(HOMES)


def test_every_reexported_name_is_its_home_modules_object() -> None:
    assert cost.__all__, "the package re-exports nothing"
    homes = set()
    for name in cost.__all__:
        obj = getattr(cost, name)
        owner = getattr(obj, "__module__", None)
        if owner is None or owner == "builtins":  # a constant: find the module that holds it
            owner = next(
                m
                for m, mod in sys.modules.items()
                if _in_cost(m) and getattr(mod, name, None) is obj
            )
        assert _in_cost(owner), (name, owner)
        assert getattr(sys.modules[owner], name) is obj, name
        homes.add(owner)
    assert {"looop.decide.cost.meter", "looop.spend.breakers"} <= homes


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = cost.no_such_thing  # type: ignore[attr-defined]
