"""Per-worker tokens: bound to one worker id, voided by a new key, never a human token."""

from __future__ import annotations

import os
from pathlib import Path

from looop.home.paths import Paths
from looop.remote import tokens


def test_token_is_bound_to_its_worker(tmp_path: Path) -> None:
    paths = Paths.at(tmp_path / "data")
    t = tokens.mint(paths, "w1")
    assert tokens.check(paths, "w1", t)
    assert not tokens.check(paths, "w2", t)
    assert not tokens.check(paths, "w1", t[:-1] + ("A" if t[-1] != "A" else "B"))
    assert tokens.mint(paths, "w1") == t  # same key, same token: nothing stored per worker


def test_key_is_private_and_rotation_voids_tokens(tmp_path: Path) -> None:
    paths = Paths.at(tmp_path / "data")
    t = tokens.mint(paths, "w1")
    assert os.stat(tokens.key_path(paths)).st_mode & 0o077 == 0
    tokens.rotate(paths)
    assert not tokens.check(paths, "w1", t)
    assert tokens.check(paths, "w1", tokens.mint(paths, "w1"))


def test_no_key_or_odd_tokens_never_check_out(tmp_path: Path) -> None:
    paths = Paths.at(tmp_path / "data")
    assert not tokens.check(paths, "w1", "lw1.abc")  # no key made yet
    tokens.mint(paths, "w1")
    for bad in (None, "", "human-token", "lw1." + "A" * 200):
        assert not tokens.check(paths, "w1", bad)
    assert tokens.looks_scoped("lw1.x") and not tokens.looks_scoped("abc")
