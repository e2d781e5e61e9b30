"""Long options abbreviated: git and GNU getopt_long take any unambiguous prefix of a long
option (`git push --mir` is --mirror, `mv --targ DIR` is --target-directory), so the tripwire
reads a prefix as the option it abbreviates, while the ordinary forms still pass."""

from __future__ import annotations

import pytest

from looop.act.shellguard import tripwire

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
]


@pytest.mark.parametrize("cmd", PASSES)
def test_abbreviations_of_harmless_options_pass(cmd: str) -> None:
    assert tripwire(cmd) is None, cmd
