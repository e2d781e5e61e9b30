"""Long options abbreviated: git and GNU getopt_long take any unambiguous prefix of a long
option (`git push --mir` is --mirror, `mv --targ DIR` is --target-directory), so the tripwire
reads a prefix as the option it abbreviates, while the ordinary forms still pass."""

from __future__ import annotations

import pytest

from looop.act.shellguard import tripwire, unreadable_line

ABBREVIATED = [
    ("git push --force-w origin main", "a force push to main"),
    ("git push --force-with origin main", "a force push to main"),
    ("git push --mir origin", "every branch"),
    ("git push --mirr", "every branch"),
    ("git push --al --force-w origin", "every branch"),
    ("git push --bra --force-with origin", "every branch"),
    ("git push --del origin main", "deleting main"),
    ("git push --dele origin master", "deleting master"),
    ("git push --force-w", "no refspec"),
    ("git -c user.name=x push --mir origin", "every branch"),
    ("git push --fo origin main", "a force push to main"),  # ambiguous: every reading
    ("cd / && git clean --fo -dx", "git clean"),
    ("mv --targ /tmp ~", "mv moving away ~"),
    ("mv --t /tmp ~", "mv moving away ~"),
    ("env --chd / rm -rf ~", "rm -rf"),
    ("env --split 'rm -rf ~'", "rm -rf"),
    ("env --s='rm -rf ~'", "rm -rf"),
    ("timeout --sig 9 5 rm -rf ~", "rm -rf"),
    ("nice --adj 5 rm -rf ~", "rm -rf"),
    ("xargs --arg /dev/null rm -rf ~", "rm -rf"),
    ("xargs --process-slot-var n rm -rf ~", "rm -rf"),
    ("flock /tmp/l --comm 'rm -rf ~'", "rm -rf"),
    ("script --comm 'rm -rf ~'", "rm -rf"),
    ("fish --comm 'rm -rf ~'", "rm -rf"),
    ("fish --co='rm -rf ~'", "rm -rf"),
    ("script --command='rm -rf ~'", "rm -rf"),  # getopt_long's, as script reads it
    ("script -qc 'rm -rf ~'", "rm -rf"),
    ("script -c'rm -rf ~'", "rm -rf"),
    ("script out.log -c 'rm -rf ~'", "rm -rf"),
    ("fish --init-command='rm -rf ~' -c true", "rm -rf"),
    ("fish --init-command 'rm -rf ~' -c true", "rm -rf"),
]


@pytest.mark.parametrize(("cmd", "needle"), ABBREVIATED)
def test_an_abbreviated_long_option_is_read_as_the_option(cmd: str, needle: str) -> None:
    why = tripwire(cmd)
    assert why is not None, cmd
    assert needle in why, (cmd, why)


PASSES = [
    "git push --tag --force-w origin",  # --tags: only tags are pushed
    "git push --no-verif origin feature",
    "git push --force-w origin feature",
    "git push --rep origin feature",
    "cd / && git clean --dry -f",  # --dry-run: nothing deleted
    "cd / && git clean --dry-r --force",
    "mv --suf .bak a b",
    "chmod --rec 755 build",
    "timeout --sig 9 5 make test",
    "env --chd /tmp ls",
    "xargs --arg list.txt echo",
    "script -q out.log",
    "script -c 'make test' out.log",
]


@pytest.mark.parametrize("cmd", PASSES)
def test_abbreviations_of_harmless_options_pass(cmd: str) -> None:
    assert tripwire(cmd) is None, cmd


FOREIGN = [
    ("sed --expr='e rm -rf ~' p", "sed` running a command"),
    ("sed -n --expr='e rm -rf ~' p f", "sed` running a command"),
    ("gawk --lo ext 'BEGIN{}'", "native extension"),
    ("awk --sour='BEGIN{system(\"rm -rf ~\")}' x", "awk` running a command"),
]


@pytest.mark.parametrize(("cmd", "needle"), FOREIGN)
def test_awk_and_sed_read_their_options_abbreviated(cmd: str, needle: str) -> None:
    """gawk and GNU sed take `--expr=` for --expression, `--lo` for --load."""
    why = unreadable_line(cmd)
    assert why is not None and needle in why, (cmd, why)


@pytest.mark.parametrize("cmd", ["sed --expr 's/a/b/' f", "awk --assi x=1 '{print}' f"])
def test_awk_and_sed_abbreviated_with_a_plain_program_pass(cmd: str) -> None:
    assert unreadable_line(cmd) is None, cmd
