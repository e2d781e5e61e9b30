"""Nothing of the user's is lost: `looop init` over a config that is not valid JSON (or not a
JSON object) keeps the old file beside it, byte for byte and as private as it was, and says
where; a config it can read is replaced as before, with nothing set aside."""

from __future__ import annotations

import json
import os
import stat

import pytest

from looop.core.context import Ctx
from looop.loop.setup import init_config

BROKEN = [
    '{"default": "claude", "max_daily_usd": 25,\n  "env": {"KEY": "sk-secret"}\n',  # cut short
    '{"default": "claude",} // a comment\n',
    "[1, 2, 3]\n",  # JSON, but not an object
    "\x00\xff not text at all",
]


def _init(ctx: Ctx, force: bool = False) -> list[str]:
    return init_config(
        ctx, "custom", "echo tick", "cat {{prompt_file}}", force, False, sandbox=False
    )


def _kept(ctx: Ctx) -> list[str]:
    return sorted(p.name for p in ctx.paths.config.parent.glob(f"{ctx.paths.config.name}.bak-*"))


@pytest.mark.parametrize("old", BROKEN)
def test_init_over_a_broken_config_keeps_it_and_says_so(ctx: Ctx, old: str) -> None:
    cfg = ctx.paths.config
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_bytes(old.encode("utf-8", "surrogateescape"))
    os.chmod(cfg, 0o600)  # it may hold keys: its copy must stay as private
    lines = _init(ctx)
    (kept,) = _kept(ctx)
    bak = cfg.parent / kept
    assert bak.read_bytes() == old.encode("utf-8", "surrogateescape")
    assert stat.S_IMODE(bak.stat().st_mode) == 0o600
    said = [ln for ln in lines if str(bak) in ln]
    assert said and "not" in said[0] and "JSON" in said[0], lines
    assert json.loads(cfg.read_text())["default"] == "custom"  # and the new config is whole


def test_each_broken_config_is_kept_under_a_name_of_its_own(ctx: Ctx) -> None:
    cfg = ctx.paths.config
    cfg.parent.mkdir(parents=True, exist_ok=True)
    for n in range(3):  # the clock stands still: three inits in one second
        cfg.write_text(f"{{ broken {n}")
        _init(ctx, force=True)
    kept = _kept(ctx)
    assert len(kept) == 3
    assert sorted((cfg.parent / k).read_text() for k in kept) == [
        f"{{ broken {n}" for n in range(3)
    ]


def test_a_readable_config_is_replaced_with_nothing_set_aside(ctx: Ctx) -> None:
    cfg = ctx.paths.config
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(json.dumps({"max_daily_usd": 25}))
    lines = _init(ctx)
    assert _kept(ctx) == [] and not any(".bak-" in ln for ln in lines)
    assert json.loads(cfg.read_text())["max_daily_usd"] == 25  # its knobs kept, as before
