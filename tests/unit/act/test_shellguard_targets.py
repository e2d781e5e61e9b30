"""The tripwire's protected targets: the home, the data dir, the looop checkout, a worker's repo
and their ancestors, refused by where a path points — whatever its spelling — while work
inside them passes."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from looop.act.protected import guard_for, resolve
from looop.act.shellguard import tripwire, verdict
from looop.act.shellguard.targets import Guard
from looop.core.context import Ctx
from tests.helpers import examples, with_env

SLOW = settings(
    max_examples=examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture
def world(ctx: Ctx, tmp_path: Path) -> dict[str, Path]:
    """A home (with a capital, as names on disk may have), a project in it, a registered
    repo, a symlink to the home, and the data dir beside them (tmp/data)."""
    home = tmp_path / "Alice"
    (home / "Project" / "build").mkdir(parents=True)
    repo = tmp_path / "src" / "repo"
    (repo / "sub").mkdir(parents=True)
    ctx.paths.worktrees.mkdir(parents=True)
    rec = {"wid": "w1", "repo": str(repo), "path": str(ctx.paths.worktrees / "w1")}
    (ctx.paths.worktrees / "w1.json").write_text(json.dumps(rec))
    # a worker of several repos: its other repo's record beside its first's
    other = tmp_path / "src" / "lib"
    other.mkdir()
    (ctx.paths.worktrees / "w2.parts").mkdir()
    rec = {"wid": "w2", "repo": str(other), "path": str(ctx.paths.checkouts / "w2" / "lib")}
    (ctx.paths.worktrees / "w2.parts" / "lib.json").write_text(json.dumps(rec))
    links = tmp_path / "links"
    links.mkdir()
    (links / "home").symlink_to(home)
    (links / "up").symlink_to(home / "Project")
    return {"home": home, "repo": repo, "data": ctx.paths.data, "tmp": tmp_path, "links": links}


@pytest.fixture
def guard(ctx: Ctx, world: dict[str, Path]) -> Guard:
    return guard_for(with_env(ctx, HOME=str(world["home"])))


def _fill(cmd: str, world: dict[str, Path]) -> str:
    return cmd.format(**{k: str(v) for k, v in world.items()})


REFUSED = [
    # the home the shell already expanded, and its spellings
    ("rm -rf {home}", "your home"),
    ("rm -rf {home}/", "your home"),
    ("rm -rf /{home}", "your home"),
    ("rm -rf {tmp}//Alice//", "your home"),
    ("rm -rf {tmp}/./Alice", "your home"),
    ("rm -rf {home}/Project/..", "your home"),
    ("rm -rf {home}/nothing/../", "your home"),
    ("rm -r -- {home}/", "your home"),
    ("rm --recursive {home}", "your home"),
    ("rm -fr {home}", "your home"),
    ("rm -R {home}", "your home"),
    ("rm {home} -rf", "your home"),
    ("rm -rf '{home}'", "your home"),
    ('rm -rf "{tmp}"/"Alice"', "your home"),
    ("rm -rf ~/Project/..", "your home"),
    ("rm -rf $HOME/.", "your home"),
    ("rm -rf ${{HOME}}/Project/../", "your home"),
    ("rm -rf {home}/*", "your home"),
    ("rm -rf {home}/.*", "your home"),
    ("rm -rf {tmp}/al*", "your home"),
    ("rm -rf {tmp}/?lice", "your home"),
    # ancestors
    ("rm -rf {tmp}", "is in it"),
    ("rm -rf $PWD/..", "is in it"),
    ("rm -rf ..", "is in it"),
    ("rm -rf ../../", "is in it"),
    ("rm -rf {tmp}/*", "is in it"),
    ("cd {home}/Project && rm -rf ../..", "is in it"),
    ("cd ~ && cd Project && rm -rf ..", "your home"),
    # the data dir (run_shell runs in it)
    ("rm -rf .", "the data dir"),
    ("rm -rf *", "the data dir"),
    ("rm -rf ./", "the data dir"),
    ("rm -rf $PWD", "the data dir"),
    ("rm -rf $LOOOP_DATA_DIR", "the data dir"),
    ('rm -rf "${{LOOOP_DATA_DIR:?}}"/', "the data dir"),
    ("rm -rf {data}/reports/..", "the data dir"),
    ("cd reports && rm -rf ..", "the data dir"),
    # a worker's repo (its worktree record) and the looop checkout
    ("rm -rf {repo}", "a worker's repo"),
    ("rm -rf {tmp}/src/lib", "a worker's repo"),
    ("rm -rf {repo}/sub/..", "a worker's repo"),
    ("rm -rf {tmp}/src", "a worker's repo"),
    ("git -C {repo} clean -fdx", "git clean"),
    ("cd {repo} && git clean -ffdx", "git clean"),
    ("cd {repo} && git clean -fdx -e .env", "git clean"),
    ("git -C ~ clean -fd", "git clean"),
    # symlinks: a trailing slash follows one for every tool, chmod -R always
    ("rm -rf {links}/home/", "through a symlink"),
    ("rm -rf {links}/up/..", "through a symlink"),
    ("chmod -R 700 {links}/home", "through a symlink"),
    ("find {links}/home/ -delete", "through a symlink"),
    ("find -L {links}/home -delete", "through a symlink"),
    ("rm -rf {links}/home/*", "through a symlink"),
    # the other tools
    ("chmod -R 700 {home}", "recursive chmod"),
    ("chmod -R u-w ~", "recursive chmod"),
    ("chown -R bob {home}/", "recursive chown"),
    ("chgrp -R staff $HOME", "recursive chgrp"),
    ("find {home} -delete", "find deleting"),
    ("find {tmp} -name x -exec rm -rf {{}} +", "find deleting"),
    ("find ~ -type f | xargs rm", "piped into a delete"),
    ("mv {home} /tmp/away", "mv moving away"),
    ("mv {data} {data}.old", "mv moving away"),
    ("mv -t /tmp {home}", "mv moving away"),
    ("mv --target-directory=/tmp x {repo}", "mv moving away"),
    ("rsync -a --delete empty/ {home}/", "rsync --delete"),
    # hidden in the usual places
    ("bash -c 'rm -rf $HOME'", "your home"),
    ("sh -c 'cd .. && rm -rf Alice'", "your home"),
    ("echo $(rm -rf {home})", "your home"),
    ("true && nohup rm -rf {home} &", "your home"),
    ("env rm -rf {home}", "your home"),
    ("/bin/rm -rf {home}", "your home"),
    # other homes, as the system sees them
    ("rm -rf /home/bob", "/home/bob"),
    ("rm -rf //home//bob/", "aimed at //home//bob/"),
    ("rm -rf /home/./bob/x/..", "aimed at /home/./bob/x/.."),
    ("rm -rf /root/", "/root"),
]


@pytest.mark.parametrize(("cmd", "needle"), REFUSED)
def test_a_protected_target_is_refused_however_spelled(
    world: dict[str, Path], guard: Guard, cmd: str, needle: str
) -> None:
    text = _fill(cmd, world)
    why = tripwire(text, guard)
    assert why is not None, text
    assert needle.lower() in why and "\n" not in why, why


PASSES = [
    "rm -rf {home}/Project/build",
    "rm -rf ~/Project/build",
    "rm -rf ~/project/build/../build",
    "rm -rf reports",
    "rm -rf ./runs/x",
    "rm -rf {data}/worktrees/w1",
    "rm -rf {repo}/sub",
    "cd {repo} && rm -rf sub",
    "chmod -R 700 ~/Project",
    "chown -R bob {home}/Project",
    "chown -R bob:staff ~/Project",
    "find ~/Project -name '*.o' -delete",
    "rm -rf {links}/home",  # the link itself goes, not the home
    "find {links}/home -delete",  # find does not follow a start path's link by default
    "mv {home}/a {home}/b",
    "mv notes.txt ~",  # into the home, not over it
    "cd {home}/Project && git clean -fdx",
    "git -C {repo} clean -n -d",
    "git -C {repo} clean -x",  # without -f git refuses by itself
    'rm -rf "$SOMETHING"',  # a value the text does not tell
    "rm -rf ~/*.log",
    "rsync -a --delete empty/ ~/Project/out/",
    "rsync -a --delay-updates src/ {home}/",
    "rm -r ~/Project/build/*",
    "ls -la {home} {tmp}",
    "rm {home}/notes.txt",  # not recursive
]


@pytest.mark.parametrize("cmd", PASSES)
def test_work_inside_a_protected_tree_passes(
    world: dict[str, Path], guard: Guard, cmd: str
) -> None:
    text = _fill(cmd, world)
    assert tripwire(text, guard) is None, text


def test_without_a_guard_only_the_spelled_home_and_system_trip(world: dict[str, Path]) -> None:
    assert tripwire(f"rm -rf {world['home']}") is None  # no context: a path like any other
    assert tripwire("rm -rf ~") is not None
    assert tripwire("rm -rf /home/bob") is not None


def test_an_unknown_cwd_reads_relative_paths_as_unknown(
    world: dict[str, Path], guard: Guard
) -> None:
    # `cd -` leaves the text not knowing where it is: `..` there is no one's business
    assert tripwire("cd - && rm -rf ..", guard) is None
    assert tripwire("rm -rf ..", guard.at(None)) is None
    assert tripwire("rm -rf ..", guard) is not None


def test_a_worker_command_runs_in_its_worktree(ctx: Ctx, world: dict[str, Path]) -> None:
    home_ctx = with_env(ctx, HOME=str(world["home"]))
    tree = str(ctx.paths.worktrees / "w2")
    guard = guard_for(home_ctx, tree, ("/elsewhere/new-repo",))
    assert tripwire("rm -rf build", guard) is None
    assert tripwire("rm -rf ../..", guard) is not None  # the data dir
    why = tripwire("rm -rf /elsewhere/new-repo", guard)
    assert why is not None and "a worker's repo" in why


def test_the_checkout_looop_runs_from_is_guarded(ctx: Ctx) -> None:
    import looop

    pkg = Path(looop.__file__).parent
    why = tripwire(f"rm -rf {pkg}", guard_for(ctx))
    assert why is not None and "the looop checkout" in why
    assert tripwire(f"rm -rf {pkg}/__pycache__", guard_for(ctx)) is None


def test_a_broken_worktree_record_guards_less_but_never_stops_a_move(
    ctx: Ctx, world: dict[str, Path]
) -> None:
    (ctx.paths.worktrees / "bad.json").write_text("{not json")
    (ctx.paths.worktrees / "list.json").write_text("[1]")
    guard = guard_for(ctx)
    assert tripwire(f"rm -rf {world['repo']}", guard) is not None


def test_resolve_follows_links_in_order_and_finds_names_in_any_case(
    world: dict[str, Path],
) -> None:
    home = str(world["home"]).lower()
    links = str(world["links"]).lower()
    assert resolve(f"{links}/home", False) == f"{links}/home"
    assert resolve(f"{links}/home", True) == home
    assert resolve(f"{links}/home/", False) == home
    assert resolve(f"{links}/up/..", False) == home  # the kernel's `..`: after the link
    loop = world["tmp"] / "loop"
    loop.symlink_to(loop)
    assert resolve(f"{loop}/x".lower(), True).endswith("/x")  # a loop ends, never hangs


def test_the_policy_allow_pattern_lets_one_through_on_purpose(
    ctx: Ctx, world: dict[str, Path]
) -> None:
    home_ctx = with_env(ctx, HOME=str(world["home"]))
    cmd = f"rm -rf {world['home']}/Project"
    guard = guard_for(home_ctx)
    assert verdict(f"rm -rf {world['home']}", guard=guard) is not None
    allow = [re.compile(r"^rm -rf .*/Alice$")]
    assert verdict(f"rm -rf {world['home']}", allow=allow, guard=guard) is None
    assert verdict(cmd, guard=guard) is None


# -- generated spellings ----------------------------------------------------------------------

_NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=8).filter(
    lambda s: not s.startswith("-")
)
_TOOLS = [
    "rm -rf {}",
    "rm -r -- {}",
    "rm --recursive --force {}",
    "rm {} -Rf",
    "chmod -R 700 {}",
    "chown -R bob {}",
    "find {} -delete",
    "find {} -exec rm -rf {{}} +",
    "mv {} /tmp/elsewhere",
    "rsync -a --delete empty/ {}",
    "bash -c {}",
]


@st.composite
def _spelling(draw: st.DrawFn, segs: list[str], world: dict[str, str]) -> str:
    """One spelling of the absolute path `/segs…`: `//`, `./`, `x/..` detours, a trailing
    slash, `~`/`$HOME`/`${HOME}`/`$PWD` prefixes, a relative `..` chain from the cwd, quoting."""
    out: list[str] = []
    for seg in segs:
        out.append("/" * draw(st.integers(1, 3)))
        if draw(st.booleans()):
            out.append(draw(st.sampled_from(["./", f"{draw(_NAME)}/../", ".//"])))
        out.append(seg)
    path = "".join(out) + draw(st.sampled_from(["", "/", "/.", "//", "/./"]))
    plain = "/" + "/".join(segs)
    home, data = world["home"], world["data"]
    form = draw(st.sampled_from(["abs", "home", "pwd", "rel"]))
    if form == "home" and (plain + "/").startswith(home + "/"):
        var = draw(st.sampled_from(["~", "$HOME", "${HOME}", '"$HOME"', "${HOME:?}"]))
        path = var + path[len(home) :] if path.startswith(home) else var + plain[len(home) :]
    elif form == "pwd":
        path = draw(st.sampled_from(["$PWD", "${PWD}", '"$PWD"'])) + "/.." * data.count("/") + path
    elif form == "rel":
        path = os.path.relpath(plain, data) + draw(st.sampled_from(["", "/"]))
    quote = draw(st.sampled_from(["none", "single", "double"]))
    if quote == "single" and "$" not in path and not path.startswith("~"):
        path = f"'{path}'"
    elif quote == "double" and not path.startswith("~"):
        path = f'"{path}"'
    return path


def _strs(world: dict[str, Path]) -> dict[str, str]:
    return {k: str(v) for k, v in world.items()}


@SLOW
@pytest.mark.timeout(300)
@given(data=st.data())
def test_every_spelling_of_a_target_or_its_ancestor_is_refused(
    world: dict[str, Path], guard: Guard, data: st.DataObject
) -> None:
    w = _strs(world)
    target = data.draw(st.sampled_from([w["home"], w["data"], w["repo"]]))
    segs = [s for s in target.split("/") if s]
    segs = segs[: data.draw(st.integers(1, len(segs)))]  # the target or an ancestor
    spelled = data.draw(_spelling(segs, w))
    tool = data.draw(st.sampled_from(_TOOLS))
    cmd = tool.format(shlex.quote(f"rm -rf {spelled}") if tool == "bash -c {}" else spelled)
    assert tripwire(cmd, guard) is not None, cmd


@SLOW
@pytest.mark.timeout(300)
@given(data=st.data())
def test_every_spelling_of_a_path_strictly_inside_passes(
    world: dict[str, Path], guard: Guard, data: st.DataObject
) -> None:
    w = _strs(world)
    target = data.draw(st.sampled_from([w["home"], w["data"], w["repo"]]))
    inside = data.draw(st.lists(_NAME, min_size=1, max_size=3))
    segs = [s for s in target.split("/") if s] + inside
    spelled = data.draw(_spelling(segs, w))
    tool = data.draw(st.sampled_from(_TOOLS))
    cmd = tool.format(shlex.quote(f"rm -rf {spelled}") if tool == "bash -c {}" else spelled)
    assert tripwire(cmd, guard) is None, cmd


@pytest.mark.parametrize(
    ("cmd", "needle"),
    [
        # brace expansion makes the target out of pieces
        ("rm -rf ~/{{Project,..}}", "your home"),
        ("rm -rf {tmp}/{{x,Alice}}", "your home"),
        ("rm -rf /{{usr,opt}}", "/usr"),
        ("rm -rf {tmp}/{{Ali,x}}ce", "your home"),
        # parameter trims: ${HOME%/} is the home, ${HOME%/*} its parent
        ('rm -rf "${{HOME%/}}"', "your home"),
        ('rm -rf "${{HOME%/*}}"', "is in it"),
        ("rm -rf ${{PWD%%/data}}/Alice", "your home"),
        ("rm -rf ${{LOOOP_DATA_DIR%/*}}", "is in it"),
        ("rm -rf ${{LOOOP_DATA_DIR##*/}}/..", "the data dir"),  # `data/..`, in the data dir
        # /proc/self/cwd is the command's cwd, not looop's
        ("rm -rf /proc/self/cwd", "the data dir"),
        ("rm -rf /proc/self/cwd/../Alice", "your home"),
        ("rm -rf /proc/self/root{home}", "your home"),
    ],
)
def test_spellings_bash_expands_are_read_as_bash_does(
    world: dict[str, Path], guard: Guard, cmd: str, needle: str
) -> None:
    text = _fill(cmd, world)
    why = tripwire(text, guard)
    assert why is not None, text
    assert needle.lower() in why, why


def test_a_worker_line_and_verify_are_guarded_where_they_run(
    ctx: Ctx, world: dict[str, Path]
) -> None:
    from looop.act.decision import Mover
    from looop.act.moves.workers import StartWorker
    from looop.act.outcome import ExecError

    home_ctx = with_env(ctx, HOME=str(world["home"]))
    repo = world["tmp"] / "fresh-repo"  # no record yet: the start names it
    cases = [
        (StartWorker(id="w9", prompt="p", command="rm -rf ../..", repo=str(repo)), "checkouts"),
        (StartWorker(id="w9", prompt="p", command=f"rm -rf {repo}", repo=str(repo)), "repo"),
        (StartWorker(id="w9", prompt="p", command="true", verify="rm -rf ."), "data dir"),
        (StartWorker(id="w9", prompt="p", command="chmod -R 700 ~"), "your home"),
    ]
    for a, needle in cases:
        with pytest.raises(ExecError) as e:
            a.perform(Mover(home_ctx, home_ctx.knobs(), "pulse"))
        assert "tripwire" in str(e.value) and needle in str(e.value), (a, e.value)
    assert not (ctx.paths.checkouts / "w9").exists() and not (ctx.paths.sessions / "w9").exists()


# -- what the text itself sets (issue 64, item 7) ---------------------------------------------

SET_BY_THE_TEXT = [
    'd=$HOME; rm -rf "$d"',
    "d=~; rm -rf $d",
    'set -- ~; rm -rf "$1"',
    "for d in ~; do rm -rf $d; done",
    'printf -v d %s ~; rm -rf "$d"',
    'read d <<< ~; rm -rf "$d"',
    'mapfile -t a <<< ~; rm -rf "${{a[0]}}"',
    'declare -n r=HOME; rm -rf "$r"',
    # and the spellings around them
    "export d=$HOME; rm -rf $d",
    "local d=~; chmod -R 700 $d",
    "a=~; b=$a/; rm -rf $b",
    'eval "d=~"; rm -rf $d',
    ": ${{d:=~}}; rm -rf $d",
    "d=~; d+=/; rm -rf $d",
    'a=(~ x); rm -rf "${{a[@]}}"',
    'set -- x ~; shift; rm -rf "$1"',
    'f() {{ rm -rf "$1"; }}; f ~',
    "rm -rf $d; d={home}",  # a loop or a later line: order aside
    "if true; then d=/tmp; else d={home}; fi; rm -rf $d",
    "HOME=/tmp/elsewhere; rm -rf ~",  # the home it had is still one it may be
    "env d=~ bash -c 'rm -rf $d'",
    'd=$(echo ~); rm -rf "$d"',
    "rm -rf `echo ~`",
    'find . -name x | while read f; do rm -rf "$f"; done',
    "getopts a: d; rm -rf $d",
    "readarray a < list; mv $a /tmp/away",
    'export "d=$HOME"; rm -rf $d',  # quoted or brace-expanded, still an assignment
    'declare "d"=~; rm -rf $d',
    "export {{a,b}}=~; rm -rf $b",
    "builtin export {{a,b}}=~; rm -rf $b",
    'n=d; declare "$n"=~; rm -rf $d',  # a name told only at run time: any it reads
    'n=d; read "$n" <<< ~; rm -rf "$d"',
]


@pytest.mark.parametrize("cmd", SET_BY_THE_TEXT)
def test_a_name_the_text_sets_is_followed_into_the_path(
    world: dict[str, Path], guard: Guard, cmd: str
) -> None:
    text = _fill(cmd, world)
    why = tripwire(text, guard)
    assert why is not None, text
    assert "your home" in why or "cannot" in why or "does not follow" in why, why


@pytest.mark.parametrize(
    "cmd",
    [
        'for d in build dist; do rm -rf "$d"; done',
        'd={home}/Project/build; rm -rf "$d"',
        "cd ~/Project && d=build && rm -rf $d",
        'd=$(mktemp -d); rm -rf "$d"',  # a fresh folder is never a target
        'read d; echo "$d"',  # read, but nothing destroyed with it
        'rm -rf "$UNSET_HERE"',  # set by no one in the text: as before
    ],
)
def test_a_name_set_to_a_harmless_value_passes(
    world: dict[str, Path], guard: Guard, cmd: str
) -> None:
    text = _fill(cmd, world)
    assert tripwire(text, guard) is None, text


def test_a_target_with_letters_outside_ascii_is_still_guarded() -> None:
    # the parser reads ASCII only: the path and the target it aims at are compared alike
    guard = Guard(targets=(("/srv/données", "the data dir"),), spellings=("/srv/Données",))
    why = verdict("rm -rf /srv/Données", guard=guard)
    assert why is not None and "the data dir /srv/Données" in why
    assert tripwire("rm -rf /srv/données/old", guard) is None
