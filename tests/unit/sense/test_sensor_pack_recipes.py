"""The sensor pack's recipes as `looop sensor add` renders them: every placeholder filled,
the interval where the sensor runner reads it, each value one shell word (running them is the
integration tier's: tests/integration/test_sensor_pack.py)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from looop.home.errors import LooopError
from looop.seed import pack
from looop.sense.sensors import interval_of, watch_lines

_SAMPLE = {
    "repo": "acme/shop",
    "url": "https://example.com/health",
    "path": "/srv/data",
    "cmd": "pytest -q",
    "dir": "/srv/app",
    "fetch": "yes",
}


@pytest.mark.parametrize("kind", sorted(pack.RECIPES))
def test_every_recipe_renders_whole_with_its_interval(kind: str, tmp_path: Path) -> None:
    r = pack.RECIPES[kind]
    values = {p.name: _SAMPLE[p.name] for p in r.params}
    text = pack.render(kind, values, "/")
    assert not re.search(r"@[A-Z]+@", text), "a placeholder left unfilled"
    script = tmp_path / f"{kind}.sh"
    script.write_text(text)
    assert interval_of(script) == r.interval
    script.write_text(pack.render(kind, values, "/", interval=7))
    assert interval_of(script) == 7


def test_a_value_is_one_shell_word_whatever_it_holds() -> None:
    odd = "/x/$(rm -rf ~)'\"; `id` $HOME"
    text = pack.render("file", {"path": odd}, "/")
    line = next(ln for ln in text.splitlines() if ln.startswith("TARGET="))
    assert shlex.split(line[len("TARGET=") :]) == [odd]


def test_a_relative_path_is_made_absolute_from_cwd() -> None:
    text = pack.render("disk", {"path": "../data"}, "/srv/app")
    assert "TARGET=/srv/data\n" in text


@pytest.mark.parametrize(
    ("kind", "values", "why"),
    [
        ("file", {"path": "/a\nrm -rf /"}, "control character"),
        ("file", {"path": "/a\x00b"}, "control character"),
        ("http", {"url": "ftp://x"}, "not an http"),
        ("http", {"url": "https://x y"}, "not an http"),
        ("git", {"fetch": "maybe"}, "yes or no"),
        ("github", {"repo": "acme/shop;x"}, "OWNER/NAME"),
        ("git", {"url": "http://x"}, "does not apply"),
        ("tests", {}, "needs --cmd"),
        ("nope", {}, "no sensor recipe"),
    ],
)
def test_bad_values_are_refused_in_one_line(kind: str, values: dict[str, str], why: str) -> None:
    with pytest.raises(LooopError) as got:
        pack.render(kind, values, "/")
    assert why in str(got.value) and "\n" not in str(got.value)


def _watched(text: str, tmp_path: Path) -> list[str]:
    script = tmp_path / "s.sh"
    script.write_text(text)
    return watch_lines(script)  # as the pulse reads its header


def test_a_file_and_a_tests_sensor_watch_what_they_read(tmp_path: Path) -> None:
    assert _watched(pack.render("file", {"path": "notes/todo.md"}, "/srv"), tmp_path) == [
        "/srv/notes/todo.md"
    ]
    tests = pack.render("tests", {"cmd": "pytest -q", "dir": "/srv/@CMD@ app"}, "/")
    assert _watched(tests, tmp_path) == ["/srv/@CMD@ app"]
    assert "DIR='/srv/@CMD@ app'\n" in tests  # one pass: a value is never filled in again
    assert _watched(pack.render("disk", {}, "/srv"), tmp_path) == []


def test_a_git_sensor_watches_head_index_and_refs_where_a_worktree_keeps_them(
    tmp_path: Path,
) -> None:
    common = tmp_path / "main" / ".git"
    gitdir = common / "worktrees" / "topic"
    gitdir.mkdir(parents=True)
    (gitdir / "commondir").write_text("../..\n")
    tree = tmp_path / "topic"
    (tree / "src").mkdir(parents=True)
    (tree / ".git").write_text(f"gitdir: {gitdir}\n")
    text = pack.render("git", {"repo": "topic/src"}, str(tmp_path))  # below the top too
    assert _watched(text, tmp_path) == [
        f"{gitdir}/HEAD",
        f"{gitdir}/index",
        f"{common}/refs/heads",
        f"{common}/packed-refs",
    ]
    plain = tmp_path / "plain"
    (plain / ".git").mkdir(parents=True)
    assert _watched(pack.render("git", {}, str(plain)), tmp_path) == [
        f"{plain}/.git/HEAD",
        f"{plain}/.git/index",
        f"{plain}/.git/refs/heads",
        f"{plain}/.git/packed-refs",
    ]
