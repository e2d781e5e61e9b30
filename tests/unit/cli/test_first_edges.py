"""The first mistakes a user makes with a worker's id or brief: each is one line saying what
is wrong and what to do, never an action's field name or a mechanism's word."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from looop.verbs.console import run as main

Run = Callable[..., tuple[int, str]]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    env = {"LOOOP_DATA_DIR": str(tmp_path / "data"), "HOME": str(tmp_path), "PATH": "/usr/bin"}

    def go(*argv: str, stdin: str = "", boxed: bool = False) -> tuple[int, str]:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
        code: object = 0
        try:
            main(list(argv), dict(env, LOOOP_DOOR="1") if boxed else dict(env))
        except SystemExit as e:
            code = e.code
        got = capsys.readouterr()
        return int(code or 0), got.err + got.out

    return go


@pytest.mark.parametrize("verb", ["review", "land"])
def test_reviewing_or_landing_a_worker_that_never_was_names_the_id_and_ls(
    run: Run, verb: str
) -> None:
    code, out = run(verb, "nosuch")
    assert code == 1
    assert out.strip().splitlines() == ["looop: no worker nosuch — `looop ls` lists them"]


def test_a_worker_started_with_an_empty_brief_is_told_how_to_give_one(run: Run) -> None:
    code, out = run("worker", "start", "w1", "--command", "agent {{prompt_file}}", stdin="  \n")
    assert code == 1, out
    (line,) = out.strip().splitlines()
    assert "worker w1 needs its brief" in line and "looop worker start w1 WHAT TO DO" in line
    assert "field" not in line and "start_worker" not in line


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["kill", "nosuch"], "looop: no worker or session `nosuch` — `looop ls` lists them"),
        (
            ["worker", "start", "w1", "hi", "--repo", "/r", "--repo", "/r"],
            'looop: --repo names "/r" twice — give each repository once',
        ),
    ],
)
def test_a_refused_verb_speaks_in_the_verbs_words_not_the_moves(
    run: Run, argv: list[str], said: str
) -> None:
    code, out = run(*argv)
    assert code == 1
    assert out.strip().splitlines() == [said]


@pytest.mark.parametrize("argv", [("goal", "write", "g1", "ship"), ("playbook", "write", "x")])
def test_a_sandboxed_workers_steering_is_refused_not_a_false_tick(
    run: Run, tmp_path: Path, argv: tuple[str, ...]
) -> None:
    """In a box the data dir write lands in srt's scratch: a ✓ there would be a lie."""
    code, out = run(*argv, boxed=True)
    assert code == 1 and "✓" not in out
    (line,) = out.strip().splitlines()
    assert "not a sandboxed worker's" in line and "`looop ask`" in line
    assert not (tmp_path / "data" / "goals" / "g1.md").exists()


def test_a_worker_without_a_repo_is_told_apart_from_one_that_never_was(
    run: Run, tmp_path: Path
) -> None:
    (tmp_path / "data" / "sessions" / "w1").mkdir(parents=True)  # w1 ran, with no --repo
    code, out = run("review", "w1")
    assert code == 1
    assert out.strip().splitlines() == [
        "looop: worker w1 has no worktree — only a worker started with --repo has a change "
        "to review or land"
    ]
