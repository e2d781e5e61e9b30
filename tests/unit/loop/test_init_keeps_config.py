"""Nothing of the user's is lost: `looop init` over a config that is not valid JSON (or not a
JSON object) keeps the old file beside it, byte for byte and as private as it was, and says
where; so does a forced re-init that replaces runners the user wrote; a config it can read
whose runners are a preset's or kept is replaced as before, with nothing set aside."""

from __future__ import annotations

import json
import os
import stat

import pytest

from looop.core.context import Ctx
from looop.loop.setup import init_config
from looop.runners.presets import PRESETS

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


def test_a_forced_init_that_drops_the_users_runners_keeps_them_and_says_so(ctx: Ctx) -> None:
    """--force replaces the runner choice; runners the user wrote (commands of their own, a
    runner's sandbox policy) that the new config no longer holds are kept aside, as a broken
    config is."""
    cfg = ctx.paths.config
    cfg.parent.mkdir(parents=True, exist_ok=True)
    old = {
        "default": "pi",
        "runners": {
            "pi": {"tick": "my-pi -p @{{prompt_file}}", "worker": "my-pi @{{prompt_file}}"},
            "claude": {**PRESETS["claude"], "sandbox": {"domains": ["git.corp:443"]}},
            "codex": dict(PRESETS["codex"]),  # a preset as it ships: nothing of the user's
        },
        "max_daily_usd": 3,
    }
    cfg.write_text(json.dumps(old, indent=2))
    os.chmod(cfg, 0o600)
    lines = _init(ctx, force=True)
    (kept,) = _kept(ctx)
    bak = cfg.parent / kept
    assert json.loads(bak.read_text()) == old and stat.S_IMODE(bak.stat().st_mode) == 0o600
    said = [ln for ln in lines if str(bak) in ln]
    assert said and "runners.claude" in said[0] and "runners.pi" in said[0], lines
    assert "runners.codex" not in said[0]
    new = json.loads(cfg.read_text())
    assert new["default"] == "custom" and new["max_daily_usd"] == 3


def test_a_forced_init_over_a_preset_as_it_ships_sets_nothing_aside(ctx: Ctx) -> None:
    cfg = ctx.paths.config
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(json.dumps({"default": "claude", "runners": {"claude": PRESETS["claude"]}}))
    lines = init_config(ctx, "claude", None, None, True, False, sandbox=False)
    assert _kept(ctx) == [] and not any(".bak-" in ln for ln in lines)
