"""A worker line that is one plain command runs as its own argv; anything else through bash."""

from __future__ import annotations

import pytest

from looop.workers.launch import worker_argv

PATH = "/usr/local/bin:/usr/bin:/bin"


@pytest.mark.parametrize(
    ("line", "argv"),
    [
        ("sleep 600", ["sleep", "600"]),
        ("cat --number /tmp/p.md", ["cat", "--number", "/tmp/p.md"]),
        ("env 'a b' \"c d\"", ["env", "a b", "c d"]),
        (
            "/bin/echo @/data/prompts/w1.md key=value",
            ["/bin/echo", "@/data/prompts/w1.md", "key=value"],
        ),
    ],
)
def test_a_plain_command_is_its_own_argv(line: str, argv: list[str]) -> None:
    assert worker_argv(line, PATH) == argv


@pytest.mark.parametrize(
    "line",
    [
        'cat "$(cat /tmp/p.md)"',  # substitution
        "sleep 1; sleep 2",  # a list
        "sleep 1 | cat",  # a pipeline
        "sleep 1 > /tmp/x",  # a redirection
        "FOO=1 sleep 1",  # an assignment prefix
        "cd /tmp && sleep 1",  # a builtin and an operator
        "echo hi",  # a builtin that is also a program: bash decides, as ever
        "exec sleep 1",  # a builtin
        "sleep ~/x",  # tilde expansion
        "sleep *",  # a glob
        "sleep {1,2}",  # brace expansion
        "sleep 1 # comment",
        "sleep 'unterminated",
        "no-such-agent-binary --flag",  # not on PATH: bash's 127 and message, as before
        "./agent --flag",  # relative to the worker's dir, not ours
        "sleep\\ 1",  # a backslash
        "",
        "   ",
    ],
)
def test_anything_else_runs_through_bash(line: str) -> None:
    assert worker_argv(line, PATH) == ["bash", "-c", line]


def test_an_empty_path_finds_nothing_plain() -> None:
    assert worker_argv("sleep 600", "") == ["bash", "-c", "sleep 600"]
    assert worker_argv("sleep 600", None) == ["bash", "-c", "sleep 600"]
