"""The string rule for the data dir spells every path exactly as pathlib does; the house's
stand-ins for shutil (a program on PATH, a folder removed) answer as it does, never through
a link."""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath

import pytest

from looop.home import sessionfiles, where
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


def test_a_program_is_found_as_shutil_finds_it(tmp_path: Path) -> None:
    """The first executable file of the name on the path; a folder or a file that does not
    run is passed over; a name with a folder in it is itself; an empty path finds nothing."""
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d in (a, b, c):
        d.mkdir()
    (a / "tool").mkdir()  # a folder of that name
    (b / "tool").write_text("#!/bin/sh\n")  # not executable
    (c / "tool").write_text("#!/bin/sh\n")
    (c / "tool").chmod(0o755)
    path = os.pathsep.join(map(str, (a, b, c)))
    assert where.program_on("tool", path) == shutil.which("tool", path=path) == str(c / "tool")
    assert where.program_on("tool", str(a)) is None
    assert where.program_on("tool", "") is None
    assert where.program_on(str(c / "tool"), "") == str(c / "tool")
    assert where.program_on(str(b / "tool"), str(c)) is None


def test_a_folder_is_removed_whole_and_never_through_a_link(tmp_path: Path) -> None:
    """Its files and folders go; a link inside goes as a link (what it names stays); a link
    given as the folder itself is left, and so is what it names."""
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "precious").write_text("mine")
    doomed = tmp_path / "doomed"
    (doomed / "deep" / "er").mkdir(parents=True)
    (doomed / "deep" / "er" / "f").write_text("x")
    (doomed / "link").symlink_to(kept)
    (doomed / "deep" / "file-link").symlink_to(kept / "precious")
    assert sessionfiles.remove_tree(str(doomed)) is True
    assert not doomed.exists() and (kept / "precious").read_text() == "mine"
    (tmp_path / "via").symlink_to(kept)
    assert sessionfiles.remove_tree(str(tmp_path / "via")) is False
    assert (tmp_path / "via").is_symlink() and (kept / "precious").read_text() == "mine"
    assert sessionfiles.remove_tree(str(tmp_path / "nothing-here")) is False
