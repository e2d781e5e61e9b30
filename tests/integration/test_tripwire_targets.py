"""`looop run` with what people actually type: the shell has already expanded `~`, so the
tripwire must know the home (and the data dir) by where a path points, not by its spelling."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import Cli

pytestmark = pytest.mark.timeout(60)


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "alice"
    (home / "project" / "build").mkdir(parents=True)
    (home / "canary").write_text("still here\n")
    return home


def test_run_refuses_the_home_the_shell_expanded(tmp_path: Path, data: Path, cli: Cli) -> None:
    home = _home(tmp_path)
    env = {"HOME": str(home)}
    code, _, err = cli("run", "--", "rm", "-rf", str(home), env_extra=env)
    assert code == 1 and err.count("\n") == 1, err
    assert "tripwire" in err and f"your home {home}".lower() in err
    assert "--allow-dangerous" in err  # how to do it on purpose
    assert (home / "canary").is_file()
    # an ancestor of it, and a spelling through `..`, are the same home
    code, _, err = cli("run", "--", "chmod", "-R", "700", f"{home}/project/..", env_extra=env)
    assert code == 1 and "recursive chmod" in err and (home / "canary").is_file()
    code, _, err = cli("run", "--", "rm", "-rf", str(tmp_path), env_extra=env)
    assert code == 1 and "is in it" in err and (home / "canary").is_file()


def test_run_refuses_the_data_dir_and_allows_inside(tmp_path: Path, data: Path, cli: Cli) -> None:
    home = _home(tmp_path)
    env = {"HOME": str(home)}
    cli("goal", "list", env_extra=env)
    data.mkdir(exist_ok=True)
    (data / "scratch").mkdir()
    code, _, err = cli("run", "--", "rm", "-rf", f"{data}//", env_extra=env)
    assert code == 1 and f"the data dir {data}".lower() in err, err
    code, _, err = cli("run", "--", "rm -rf *", env_extra=env)  # run_shell runs in the data dir
    assert code == 1 and "the data dir" in err and data.is_dir()
    # deleting inside a protected tree is ordinary work
    code, _, err = cli("run", "--", "rm", "-rf", str(data / "scratch"), env_extra=env)
    assert code == 0, err
    assert not (data / "scratch").exists()
    code, _, err = cli("run", "--", "rm", "-rf", str(home / "project" / "build"), env_extra=env)
    assert code == 0, err
    assert not (home / "project" / "build").exists() and (home / "canary").is_file()
