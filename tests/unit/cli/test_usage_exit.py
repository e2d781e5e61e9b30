"""A usage mistake (a bad flag, a missing argument, a bad value, an unknown verb) exits 2, as
click, argparse and every tool a user scripts around do; a failure of the work itself stays 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from looop.verbs.console import run as main

pytestmark = pytest.mark.unit


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    env = {"LOOOP_DATA_DIR": str(tmp_path / "data"), "HOME": str(tmp_path), "PATH": "/usr/bin"}
    code: object = 0
    try:
        main(list(argv), env)
    except SystemExit as e:
        code = e.code
    return int(code or 0), capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["nosuchverb"],  # an unknown verb
        ["goal", "rmm", "x"],  # an unknown subcommand
        ["ls", "--bogus"],  # a bad flag
        ["log"],  # a missing argument
        ["claim"],  # a contract verb's mistake, which its click-free face hands to click
        ["shot", "w1", "--json", "--ansi"],  # two formats
        ["watch", "--since", "soon"],  # a bad value
        ["expect", "w1", "("],  # a bad regex
        ["schedule", "write", "x", "--in", "1m", "--every", "2m"],
        ["cost", "fortnight"],
        ["attach", "w1", "--detach-keys", "ctrl-["],  # ESC itself: not a key docker takes
    ],
)
def test_a_usage_mistake_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, err = _run(tmp_path, capsys, *argv)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("looop: ")


def test_a_failure_of_the_work_itself_still_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(tmp_path, capsys, "goal", "rm", "nosuch")
    assert code == 1 and "nosuch" in err


def test_a_bug_is_one_line_and_leaves_its_traceback_in_a_crash_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from looop.human import leases

    def broken(*_: object) -> int:
        try:
            {}["lease"]
        except KeyError as e:
            raise RuntimeError("boom in the lease") from e
        return 0

    monkeypatch.setattr(leases, "run_lease", broken)
    code, err = _run(tmp_path, capsys, "claim", "x", "--session", "w1")  # click-free: contract
    assert code == 70 and len(err.strip().splitlines()) == 1, err
    assert "boom in the lease" in err and "bug in looop" in err
    (crash,) = (tmp_path / "data" / "crash").iterdir()
    assert str(crash) in err
    trace = crash.read_text()
    assert "Traceback (most recent call last)" in trace and "in broken" in trace
    assert "KeyError: 'lease'" in trace and "RuntimeError: boom in the lease" in trace
