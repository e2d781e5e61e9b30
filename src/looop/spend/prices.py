"""The price table: USD per 1M tokens, for streams that report tokens but no money, and the
model (or program) a tick command names."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING

from looop.home.config import PRICE_FIELDS
from looop.runners import RUNNERS
from looop.runners.runnerprofile import RunnerProfile
from looop.spend import sane_usd

if TYPE_CHECKING:
    from typing import Any


# USD per 1M tokens, used only where a stream reports tokens but no money (or a cost of 0).
# Editable assumptions, list prices as of late 2025: override or add rows with config `prices`
# = {model: {input, output, cached_input, cache_write}}. "default" prices any model not listed
# (set to gpt-5's rates). Each runner profile brings its models' rows (runners/__init__.py).
def builtin_prices(runners: tuple[RunnerProfile, ...] = RUNNERS) -> dict[str, dict[str, float]]:
    """ "default" and every profile's rows."""
    table = {"default": {"input": 1.25, "cached_input": 0.125, "output": 10.0}}
    for p in runners:
        table.update((model, dict(row)) for model, row in p.prices.items())
    return table


DEFAULT_PRICES = builtin_prices()


def price_table(
    overrides: Mapping[str, Any] | None = None, runners: tuple[RunnerProfile, ...] = RUNNERS
) -> dict[str, dict[str, float]]:
    """Built-in prices with config `prices` merged over them, field by field. A new model's row
    starts from "default", so a partial row never leaves a price undefined. Bad values are
    skipped here (config loading reports them)."""
    table = DEFAULT_PRICES if runners is RUNNERS else builtin_prices(runners)
    table = {k: dict(v) for k, v in table.items()}
    if not isinstance(overrides, Mapping):
        return table
    # "default" first: new models start from it, overridden or not
    for model in sorted(overrides, key=lambda k: k != "default"):
        row = overrides[model]
        if not isinstance(model, str) or not isinstance(row, Mapping):
            continue
        merged = dict(table.get(model) or table["default"])
        for key in PRICE_FIELDS:
            v = sane_usd(row.get(key))
            if v is not None:
                merged[key] = v
        table[model] = merged
    return table


def lookup_price(
    table: Mapping[str, Mapping[str, float]], model: str | None
) -> tuple[str, Mapping[str, float]]:
    """The row pricing `model`: exact name, lowercase, without a provider/ prefix, the longest
    listed name the model extends with '-' (dated snapshots such as gpt-5-2025-08-07), else
    "default"."""
    if model:
        base = model.rsplit("/", 1)[-1]
        for cand in (model, model.lower(), base, base.lower()):
            row = table.get(cand)
            if row is not None:
                return cand, row
        low = base.lower()
        best = max((k for k in table if low.startswith(k.lower() + "-")), key=len, default=None)
        if best is not None:
            return best, table[best]
    return "default", table.get("default") or DEFAULT_PRICES["default"]


def price_tokens(
    row: Mapping[str, float], fresh_in: int, cached: int, written: int, out: int
) -> float:
    """USD for token counts; cached reads and cache writes fall back to the input price."""
    p_in = row.get("input", 0.0)
    total = (
        fresh_in * p_in
        + cached * row.get("cached_input", p_in)
        + written * row.get("cache_write", p_in)
        + out * row.get("output", 0.0)
    )
    return total / 1_000_000


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


def command_model(command: str | None) -> str | None:
    """The model a tick command names: --model X, --model=X, -m X, or -c model=X."""
    if not command:
        return None
    words = _words(command)
    model: str | None = None
    for i, w in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w in ("--model", "-m") and nxt:
            model = nxt
        elif w.startswith("--model="):
            model = w[len("--model=") :]
        elif w in ("-c", "--config") and nxt.startswith("model="):
            model = nxt[len("model=") :].strip("\"'")
        elif w.startswith(("-cmodel=", "--config=model=")):
            model = w.split("model=", 1)[1].strip("\"'")
    return model or None


def command_word(command: str | None) -> str:
    """The program a tick command runs (basename, past VAR=value and `env`)."""
    if not command:
        return ""
    for w in _words(command):
        if "=" in w and not w.startswith(("-", "/", ".")):
            continue  # VAR=value
        if w == "env" or w.startswith("-"):
            continue
        return w.rsplit("/", 1)[-1]
    return ""
