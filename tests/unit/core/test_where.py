"""The string rule for the data dir spells every path exactly as pathlib does."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest

from looop.home import where
from looop.home.errors import LooopError
from looop.home.paths import Paths

ODD = ["", ".", "/", "//", "///", "a", "a/", "a//b", "./a/./b/", "/a/../b", "//a//b", "~", "~/x/"]


@pytest.mark.parametrize("raw", ODD)
def test_norm_is_pathlibs_spelling(raw: str) -> None:
    assert where.norm(raw) == str(PurePosixPath(raw))


def _pathlib_rule(env: dict[str, str], cwd: Path) -> tuple[str, str]:
    """The rule as pathlib wrote it before the strings took over (the reference)."""

    def nonempty(k: str) -> str | None:
        v = env.get(k, "")
        return v if v.strip() else None

    raw = nonempty("LOOOP_DATA_DIR")
    if raw is None:
        state = nonempty("XDG_STATE_HOME") or str(Path(env["HOME"]) / ".local" / "state")
        raw = str(Path(state) / "looop")
    data = Path(raw).expanduser()
    data = data if data.is_absolute() else cwd / data
    cfg = nonempty("LOOOP_CONFIG")
    config = Path(cfg).expanduser() if cfg else data / "config.json"
    return str(data), str(config if config.is_absolute() else cwd / config)


ENVS = [
    {"LOOOP_DATA_DIR": "rel/dir/"},
    {"LOOOP_DATA_DIR": "."},
    {"LOOOP_DATA_DIR": "/abs//d/./x", "LOOOP_CONFIG": "c.json"},
    {"LOOOP_DATA_DIR": "~/d", "LOOOP_CONFIG": "~/c.json"},
    {"LOOOP_DATA_DIR": "  ", "HOME": "/"},
    {"HOME": "/home/u/"},
    {"XDG_STATE_HOME": "st", "HOME": "/h"},
    {"LOOOP_DATA_DIR": "/d", "LOOOP_CONFIG": "  "},
]


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("cwd", ["/", "/work/x"])
def test_resolve_matches_the_pathlib_rule(env: dict[str, str], cwd: str) -> None:
    assert where.resolve(env, cwd) == _pathlib_rule(env, Path(cwd))
    p = Paths.resolve(env, Path(cwd))
    assert (str(p.data), str(p.config)) == where.resolve(env, cwd)


def test_no_home_is_a_one_line_error() -> None:
    with pytest.raises(LooopError, match="HOME is not set"):
        where.resolve({"PATH": os.defpath}, "/")


def test_the_runtime_dir_is_the_environments_or_tmp_and_a_relative_one_is_refused() -> None:
    assert where.runtime_base({}) == "/tmp"
    assert where.runtime_base({"LOOOP_RUNTIME_DIR": "/run/x"}) == "/run/x"
    with pytest.raises(LooopError, match="LOOOP_RUNTIME_DIR='rel' is not absolute"):
        where.runtime_base({"LOOOP_RUNTIME_DIR": "rel"})
