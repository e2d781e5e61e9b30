"""A refusal quotes the command and the paths as they were written: the tripwire reads
lower-cased text, but the line a person reads names their `/Users/Alice`, not `/users/alice`."""

from __future__ import annotations

from pathlib import Path

from looop.act.shellguard import their_case, verdict
from looop.act.shellguard.targets import Guard


def test_the_command_and_its_paths_keep_their_case() -> None:
    cmd = "RM -RF /Users/Alice/Projects"
    why = their_case("rm -rf aimed at /users/alice: `rm -rf /users/alice/projects`", [cmd])
    assert why == "rm -rf aimed at /Users/Alice: `RM -RF /Users/Alice/Projects`"


def test_words_outside_the_quote_stay_the_rules_own() -> None:
    # `AT` in the command never turns the rule's "at" upper-case
    why = their_case("rm -rf aimed at /at: `rm -rf /at`", ["rm -rf /AT"])
    assert why == "rm -rf aimed at /AT: `rm -rf /AT`"


def test_a_path_the_command_only_implies_comes_from_the_world() -> None:
    why = their_case(
        "aimed at /home/bob (your home /home/bob): `rm -rf ~`", ["rm -rf ~", "/home/Bob"]
    )
    assert why == "aimed at /home/Bob (your home /home/Bob): `rm -rf ~`"


def test_a_refused_command_under_a_capitalised_home_names_it_as_written(tmp_path: Path) -> None:
    home = tmp_path / "Trial" / "Home"
    home.mkdir(parents=True)
    low = str(home).lower()
    guard = Guard(targets=((low, "your home"),), spellings=(str(home),))
    why = verdict(f"rm -rf {home}", guard=guard)
    assert why is not None and str(home) in why and low not in why, why
