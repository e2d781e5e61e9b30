"""The tripwire's remaining spellings (issue 50): a path is judged by where it points after
bash's glob and parameter expansion against the real disk, /proc's magic links, `find` with no
start path, what xargs feeds a command, and env -S's own escapes — while the ordinary forms
of the same tools still pass."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from looop.act.protected import glob_paths, guard_for
from looop.act.shellguard import tripwire, verdict
from looop.act.shellguard.targets import Guard
from looop.core.context import Ctx
from tests.helpers import with_env


@pytest.fixture
def world(ctx: Ctx, tmp_path: Path) -> dict[str, Path]:
    """A home with a project, a folder of links (one to the home), and the data dir."""
    home = tmp_path / "Alice"
    (home / "Project" / "build").mkdir(parents=True)
    links = tmp_path / "links"
    links.mkdir()
    (links / "home").symlink_to(home)
    (links / "plain").mkdir()
    return {"home": home, "tmp": tmp_path, "links": links, "data": ctx.paths.data}


@pytest.fixture
def guard(ctx: Ctx, world: dict[str, Path]) -> Guard:
    return guard_for(with_env(ctx, HOME=str(world["home"])))


def _fill(cmd: str, world: dict[str, Path]) -> str:
    return cmd.format(**{k: str(v) for k, v in world.items()})


def _refused(cmd: str, guard: Guard, needle: str) -> None:
    why = tripwire(cmd, guard)
    assert why is not None, cmd
    assert needle.lower() in why and "\n" not in why, (cmd, why)


# -- find with no start path starts at `.` -----------------------------------------------------

FIND_NO_PATH = [
    ("find -delete", "the data dir"),
    ("find -name '*.tmp' -delete", "the data dir"),
    ("find -exec rm -rf {{}} +", "the data dir"),
    ("find -type d -execdir rm -r {{}} \\;", "the data dir"),
    ("cd ~ && find -delete", "your home"),
    ("find -L -delete", "the data dir"),
    ("cd {tmp} && find -mindepth 1 -delete", "is in it"),
    ("bash -c 'find -delete'", "the data dir"),
]


@pytest.mark.parametrize(("cmd", "needle"), FIND_NO_PATH)
def test_find_with_no_start_path_deletes_from_where_it_runs(
    world: dict[str, Path], guard: Guard, cmd: str, needle: str
) -> None:
    _refused(_fill(cmd, world), guard, needle)


def test_find_with_no_start_path_passes_where_nothing_is_protected(guard: Guard) -> None:
    assert tripwire("cd reports && find -name '*.tmp' -delete", guard) is None
    assert tripwire("find -name '*.md'", guard) is None  # lists, deletes nothing
    assert tripwire("find -type f -print | wc -l", guard) is None


# -- /proc's magic links name what they point at ---------------------------------------------

PROC_LINKS = [
    ("rm -rf /proc/1/root/", "is in it"),
    ("rm -rf /proc/self/root", "is in it"),
    ("rm -rf /proc/thread-self/root/{home}", "your home"),
    ("rm -rf /proc/1/root{home}/", "your home"),
    ("rm -rf /proc/$$/root/home/bob", "system folder"),
    ("rm -rf /proc/*/root/usr", "system folder"),
    ("rm -rf /proc/self/task/1/root/", "is in it"),
    ("chmod -R 777 /proc/1/root/etc", "system folder"),
    ("rm -rf /proc/1/cwd/", "another process's folder"),
    ("rm -rf /proc/42/cwd", "another process's folder"),
    ("rm -rf /proc/self/task/7/cwd/", "another process's folder"),
    ("rm -rf /proc/self/fd/3/", "file descriptor"),
    ("rm -rf /dev/fd/4", "file descriptor"),
    ("find /proc/1/root/ -delete", "is in it"),
]


@pytest.mark.parametrize(("cmd", "needle"), PROC_LINKS)
def test_proc_magic_links_are_read_as_what_they_name(
    world: dict[str, Path], guard: Guard, cmd: str, needle: str
) -> None:
    _refused(_fill(cmd, world), guard, needle)


def test_proc_links_are_read_even_without_a_guard() -> None:
    assert tripwire("rm -rf /proc/1/root/") is not None
    assert tripwire("rm -rf /proc/1/cwd") is not None
    assert tripwire("rm -rf /proc/1/root/tmp/build") is None  # inside /tmp: nobody's
    assert tripwire("cat /proc/1/root/etc/hostname") is None


# -- globs expand against the disk -----------------------------------------------------------

GLOBS = [
    ("rm -rf /u*", "usr"),
    ("rm -rf /us?", "usr"),
    ("rm -rf /[u]sr", "usr"),
    ("rm -rf /e*c", "etc"),
    ("rm -rf /h*/bob", "/h*/bob"),
    ("chmod -R 700 /v?r", "var"),
    ("rm -rf {links}/h*/", "through a symlink"),  # the glob takes the link, `/` follows it
    ("chmod -R 700 {links}/h*", "through a symlink"),
    ("rm -rf {tmp}/l*/*/", "through a symlink"),  # each entry, the link to the home among them
    ("find -L {links}/h?me -delete", "through a symlink"),
    ("rm -rf {tmp}/*/..", "is in it"),
]


@pytest.mark.parametrize(("cmd", "needle"), GLOBS)
def test_globs_are_judged_by_what_they_match(
    world: dict[str, Path], guard: Guard, cmd: str, needle: str
) -> None:
    _refused(_fill(cmd, world), guard, needle)


def test_globs_inside_a_tree_still_pass(world: dict[str, Path], guard: Guard) -> None:
    for cmd in (
        "rm -rf ~/Project/b*",
        "rm -rf {links}/h*",  # the link itself goes, not the home
        "rm -rf {links}/p*/",
        "rm -rf reports/*/",
        "rm -rf ~/Project/*/",
        "chmod -R 700 {links}/pl*",
    ):
        assert tripwire(_fill(cmd, world), guard) is None, cmd


def test_glob_paths_matches_names_in_any_case_and_bounds_its_work(world: dict[str, Path]) -> None:
    tmp = str(world["tmp"]).lower()
    assert f"{tmp}/alice" in (glob_paths(f"{tmp}/al*") or [])  # on disk: Alice
    assert glob_paths(f"{tmp}/nothing*") == []
    many = world["tmp"] / "many"
    many.mkdir()
    for k in range(4100):
        os.close(os.open(many / f"f{k}", os.O_CREAT | os.O_WRONLY))
    assert glob_paths(f"{str(many).lower()}/x*") is None
    guard = Guard(targets=(("/nowhere", "x"),), glob=glob_paths)
    why = tripwire(f"rm -rf {many}/*/x", guard)
    assert why is not None and "more paths than the tripwire checks" in why


# -- tildes and parameters it cannot evaluate exactly ----------------------------------------

EXPANSIONS = [
    ("rm -rf ~+", "the data dir"),
    ("rm -rf ~+/", "the data dir"),
    ("cd ~ && rm -rf ~+", "your home"),
    ("cd reports && rm -rf ~+/..", "the data dir"),
    ("rm -rf ~-", "~-"),
    ("rm -rf ~-/", "before the last cd"),
    ("rm -rf ~1", "directory stack"),
    ("rm -rf ~+2", "directory stack"),
    ("rm -rf $OLDPWD", "before the last cd"),
    ('rm -rf "${{OLDPWD}}"', "before the last cd"),
    ("cd /tmp && rm -rf $OLDPWD/", "before the last cd"),
    ("rm -rf ${{HOME:0}}", "your home"),
    ("rm -rf ${{HOME:0:99}}", "your home"),
    ("rm -rf ${{HOME: -99}}", "your home"),
    ("rm -rf ${{HOME:0:1}}", "is in it"),  # `/`
    ("rm -rf ${{HOME:$n}}", "substring"),
    ("rm -rf ${{HOME#}}", "your home"),
    ("rm -rf ${{HOME%/}}", "your home"),
    ("rm -rf ${{HOME%$x}}", "trim by a pattern"),
    ("rm -rf ${{HOME/x/y}}", "cannot evaluate exactly"),
    ("rm -rf ${{HOME//o/o}}", "cannot evaluate exactly"),
    ("rm -rf ${{HOME@Q}}", "cannot evaluate exactly"),
    ("rm -rf ${{HOME^^}}", "your home"),
    ("rm -rf ${{HOME[0]}}", "your home"),
    ("rm -rf ${{HOME[1]}}", "element"),
    ("rm -rf ${{!h}}", "indirection"),
    ("rm -rf ${{!HO*}}", "indirection"),
    ("rm -rf ${{NOPE:-$HOME}}", "your home"),
    ("rm -rf ${{NOPE-~}}", "your home"),
    ("rm -rf ${{NOPE:=~/}}", "your home"),
    ("rm -rf ${{NOPE:+$HOME}}", "your home"),
    ("rm -rf ${{HOME:+$LOOOP_DATA_DIR}}", "the data dir"),
    ("rm -rf ${{PWD%/*}}", "is in it"),
    ("cd ~/Project && rm -rf $PWD/..", "your home"),  # $PWD after the text's own cd
    ("rm -rf ${{HOME%${{HOME#?}}}}", "is in it"),  # `/`
]


@pytest.mark.parametrize(("cmd", "needle"), EXPANSIONS)
def test_expansions_are_evaluated_exactly_or_refused(
    world: dict[str, Path], guard: Guard, cmd: str, needle: str
) -> None:
    _refused(_fill(cmd, world), guard, needle)


def test_expansions_that_stay_inside_or_say_nothing_pass(guard: Guard) -> None:
    for cmd in (
        "rm -rf ${HOME}/Project/build",
        "rm -rf ${HOME:0}/Project/build",
        "rm -rf ${NOPE:-reports/old}",
        'rm -rf "$SOMETHING"',  # a value the text does not tell: as before
        'rm -rf "${1}"',
        "rm -rf ${#HOME}",  # a length: a number
        "rm -f $OLDPWD/x.txt",  # not recursive
        "echo ~- ${HOME/x/y} ${!h}",
    ):
        assert tripwire(cmd, guard) is None, cmd


def test_without_a_guard_any_home_expansion_is_the_home() -> None:
    for cmd in ("rm -rf ${HOME:0}", "rm -rf ${HOME/x/y}", "rm -rf $OLDPWD", "rm -rf ~-"):
        assert tripwire(cmd) is not None, cmd


# -- what xargs (or parallel) feeds a destructive command ------------------------------------

XARGS = [
    "echo ~ | xargs rm -rf",
    "xargs rm -rf < list",
    "printf '%s\\0' x | xargs -0 rm -rf",
    "xargs -r -n1 rm -rf",
    "xargs -I{{}} rm -rf {{}}",
    "xargs -i rm -rf {{}}",  # -i/-I read alike lower-cased: either way
    "xargs -I % rm -rf %",
    "xargs -P 4 rm -rf",
    "xargs -L 1 rm -r",
    "xargs -a list rm -rf",
    "xargs --arg-file=list rm -rf",
    "xargs -- rm -rf",
    "xargs nice rm -rf",
    "xargs env rm -rf",
    "xargs /bin/rm --recursive",
    "xargs -n1 chmod -R 700",
    "xargs chown -R bob",
    "xargs mv -t /tmp/away",
    "xargs -I{{}} mv {{}} {{}}.old",
    "xargs rsync -a --delete empty/",
    "xargs sh -c 'rm -rf \"$@\"' _",
    "xargs bash -c 'rm -rf $0'",
    "xargs -I{{}} sh -c 'rm -rf {{}}'",
    "parallel rm -rf",
    "parallel 'rm -rf {{}}' ::: a b",
    "ls | nohup xargs rm -rf &",
    "bash -c 'cat list | xargs rm -rf'",
]


@pytest.mark.parametrize("cmd", XARGS)
def test_xargs_feeding_a_destructive_command_is_refused(
    world: dict[str, Path], guard: Guard, cmd: str
) -> None:
    _refused(_fill(cmd, world), guard, "what xargs reads from its input")


def test_xargs_feeding_a_harmless_command_passes(guard: Guard) -> None:
    for cmd in (
        "find reports -name '*.pyc' | xargs rm -f",
        "git ls-files | xargs chmod 644",
        "ls reports | xargs -n1 echo",
        "echo x | xargs grep -l foo",
        "xargs -0 wc -l < files",
        "echo xargs rm -rf",  # words of echo, not a command
        "grep -r xargs .",
    ):
        assert tripwire(cmd, guard) is None, cmd


# -- env -S reads its own escapes ------------------------------------------------------------

ENV_S = [
    "env -S 'rm\\_-rf\\_~'",
    "env -S'rm\\t-rf\\t~'",
    "env --split-string='rm\\_-rf\\_$HOME'",
    "env -S 'rm\\n-rf\\v~/'",
    "/usr/bin/env -S 'chmod\\_-R\\_700\\_~'",
]


@pytest.mark.parametrize("cmd", ENV_S)
def test_env_split_string_escapes_make_the_words_env_makes(guard: Guard, cmd: str) -> None:
    _refused(cmd, guard, "your home")


def test_env_split_string_stops_at_its_end_escape(guard: Guard) -> None:
    assert tripwire("env -S 'echo\\_hi\\c;rm -rf ~'", guard) is None  # \c: env reads no more
    assert tripwire("env -S 'echo\\_hi'", guard) is None


def test_a_refusal_names_the_spelling_as_written(world: dict[str, Path], guard: Guard) -> None:
    why = verdict("rm -rf /U*", guard=guard)
    assert why is not None and "/U*" in why
