"""A newcomer's first ten minutes: help that finds things, init that leaves nothing half-done,
steering verbs that refuse empty bodies, answers held to their options."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import run_cli as run

pytestmark = pytest.mark.timeout(60)


def one_line_error(code: int, out: str, err: str) -> bool:
    return code == 1 and out == "" and err.startswith("looop: ") and err.count("\n") == 1


# ---------------------------------------------------------------- help


def test_help_walks_multi_word_topics(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "help", "worker", "start")
    assert code == 0 and out.startswith("Usage: looop worker start") and "--verify" in out
    code, out, _ = run(capsys, "help", "schedule", "write")
    assert code == 0 and "Usage: looop schedule write" in out
    res = run(capsys, "help", "worker", "strat")
    assert one_line_error(*res) and "did you mean `start`" in res[2]
    res = run(capsys, "help", "version", "x")
    assert one_line_error(*res) and "no subcommands" in res[2]
    assert not data.exists()


def test_a_top_level_typo_suggests_the_verb(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = run(capsys, "stauts")
    assert one_line_error(*res) and "did you mean `status`" in res[2]
    res = run(capsys, "help", "jurnal")
    assert one_line_error(*res) and "did you mean `journal`" in res[2]
    res = run(capsys, "xyzzy")
    assert one_line_error(*res) and "did you mean" not in res[2] and "looop --help" in res[2]


def test_top_level_help_lists_each_verb_once(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    verbs, _, aliases = out.partition("Aliases:")
    rows = verbs.split("Commands:")[1].splitlines()
    listed = [ln.split()[0] for ln in rows if ln.startswith("  ") and ln[2] != " "]
    for alias in ("state", "screenshot", "ls", "kill", "config"):
        assert alias not in listed
    for verb in ("status", "shot", "worker", "completion", "init"):
        assert verb in listed
    assert "state = status" in aliases and "ls = worker list" in aliases
    assert "alias of" not in out
    code, out, _ = run(capsys, "worker", "list", "--help")
    assert code == 0 and "alias" not in out


def test_worker_ls_works_as_documented(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "worker", "ls")
    assert code == 0 and "pulse" in out and "HEALTH" in out
    assert run(capsys, "worker", "list")[1] == out
    code, out, _ = run(capsys, "worker", "--help")
    assert code == 0 and out.count("List the pulse") == 1


def test_completion_verb_and_its_old_spelling(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for verb in ("completion", "config"):
        code, out, _ = run(capsys, verb, "zsh")
        assert code == 0 and "#compdef looop" in out
        code, out, _ = run(capsys, verb, "fish")
        assert code == 0 and "complete" in out and "looop" in out
    res = run(capsys, "completion")
    assert one_line_error(*res) and "looop completion zsh" in res[2]
    res = run(capsys, "completion", "tcsh")
    assert res[0] == 1 and "tcsh" in res[2]
    assert not data.exists()
