"""`looop log -f --all`, as a user following a fleet the way `docker compose logs -f` does:
every live worker's new lines, each led by its id, and a worker started meanwhile from its
first line; what was printed before it began is not replayed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from tests.helpers import kill_sessions
from tests.integration.test_first_hour import LOOOP, data, env, home, init_custom, looop

pytestmark = pytest.mark.timeout(90)
__all__ = ["data", "env", "home"]


@pytest.fixture
def sessions_dir(data: Path) -> Iterator[Path]:
    yield data
    kill_sessions(data)


def _start(env: dict[str, str], wid: str, command: str) -> None:
    got = looop(env, "worker", "start", wid, "x", "--command", command, "--no-sandbox")
    assert got.returncode == 0, got.stderr


def test_log_follows_every_worker_and_one_started_meanwhile(
    env: dict[str, str], data: Path, sessions_dir: Path
) -> None:
    init_custom(env, data)
    _start(env, "one", 'echo one-before; read x; echo "got-$x"; sleep 60 # {{prompt_file}}')
    assert looop(env, "expect", "one", "one-before", "--timeout", "20").returncode == 0
    child = pexpect.spawn(LOOOP[0], [*LOOOP[1:], "log", "-f", "--all"], env=env, encoding="utf-8")
    try:
        child.expect_exact("following one", timeout=20)
        assert looop(env, "send", "one", "zz").returncode == 0
        child.expect_exact("one | got-zz", timeout=20)
        assert "one-before" not in str(child.before)  # from now on, not a replay
        _start(env, "two", "echo two-start; sleep 60 # {{prompt_file}}")
        child.expect_exact("following two", timeout=20)
        child.expect_exact("two | two-start", timeout=20)
        assert child.isalive()
    finally:
        child.terminate(force=True)


@pytest.mark.parametrize("args", [["log"], ["log", "--all"], ["log", "-f", "--all", "one"]])
def test_log_without_one_id_or_follow_all_is_a_usage_mistake(
    env: dict[str, str], data: Path, args: list[str]
) -> None:
    init_custom(env, data)
    got = looop(env, *args)
    assert got.returncode == 2, got.stdout + got.stderr
    assert "-f --all" in got.stderr and len(got.stderr.strip().splitlines()) == 1, got.stderr
