"""`looop worker start` served click-free and by click is one behaviour: the same output,
exit code and files (journal, prompt, verify, events) for good and bad argvs, and the worker
either starts under both faces or under neither."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from looop.sessions.client import kill
from looop.sessions.state import list_sessions
from tests.clocks import FixedClock
from tests.helpers import clean_env, examples, run_cli

pytestmark = [pytest.mark.timeout(120), pytest.mark.process]  # both faces really start workers

S600 = "sleep 600 # {{prompt_file}}"  # takes no brief: it names the file in a comment

CASES: list[list[str]] = [
    ["worker", "start", "w1", "--command", S600, "ship it"],
    ["worker", "start", "--command=" + S600, "w1", "ship it", "-j", "started by hand"],
    [
        "worker",
        "start",
        "w1",
        "ship it",
        "--command",
        'sleep "$(echo 600)" # {{prompt_file}}',
        "--verify",
        "true",
    ],
    ["worker", "start", "looop-w1", "--command", S600, "ship it"],
    ["worker", "start", "w1", "--command", 'nosuchprog "$(echo x)" # {{prompt_file}}', "go"],
    ["worker", "start", "w1", "--command", S600, "   "],
    ["worker", "start", "pulse", "--command", S600, "go"],
    ["worker", "start", "bad id", "--command", S600, "go"],
    ["worker", "start", "w1", "--runner", "nosuch", "go"],
    ["worker", "start", "w1", "--command", "rm -rf / --no-preserve-root # {{prompt_file}}", "go"],
    ["worker", "start", "w1", "go", "--command"],
    ["worker", "start", "w1", "go", "--command", "a", "--command", "b"],
    ["worker", "start", "w1", "go", "--color", "red"],
    ["worker", "start", "w1", "a", "b"],
    ["worker", "start"],
    ["worker", "start", "--help"],
    ["worker", "start", "", "--command", S600, "go"],
    ["worker", "start", "w1", "--command=", "go"],
    ["worker", "start", "w1", "--no-sandbox", "--command", S600, "go"],
    ["worker", "start", "w1", "--sandbox", "--command", S600, "go"],
    ["worker", "start", "w1", "--sandbox", "--no-sandbox", "--command", S600, "go"],
    ["worker", "start", "w1", "--sandbox", "--sandbox", "--command", S600, "go"],
    ["worker", "start", "w1", "--repo", "/nonexistent/repo", "--command", S600, "go"],
    [
        "worker",
        "start",
        "w1",
        "--repo=/nonexistent",
        "--branch",
        "b",
        "--command",
        "true # {{prompt_file}}",
        "go",
    ],
    ["worker", "start", "w1", "--branch", "b", "--command", S600, "go"],
    ["worker", "start", "w1", "--repo", "", "--command", S600, "go"],
    ["worker", "start", "w1", "--repo", "/a", "--repo", "/b", "go"],
    ["worker", "start", "w1", "--resume", "--command", S600, "go"],
    ["worker", "start", "w1", "--resume", "--resume", "--command", S600, "go"],
    ["worker", "start", "w1", "--steerable", "--command", S600, "go"],
    ["worker", "start", "w1", "--steerable", "--steerable", "--command", S600, "go"],
    # a command with no {{prompt_file}} would drop the brief: both faces refuse it alike
    ["worker", "start", "w1", "--command", "sleep 600", "go"],
    ["worker", "start", "w1", "--command", "agent {{model}} {{prompt_file}}", "go"],
]


_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


def _files(data: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in sorted(data.rglob("*")):
        rel = p.relative_to(data).as_posix()
        if rel.startswith(("sessions", ".", "runs")) or not p.is_file():
            continue
        text = re.sub(r"\.tmp\.\d+\.[0-9a-f]{6}", ".tmp.N", p.read_text(errors="replace"))
        out[rel] = re.sub(_UUID, "UUID", text)  # a worker's conversation id is minted fresh
    return out


def _run(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    fast: bool,
) -> tuple[int, str, str, dict[str, str], list[str]]:
    data = tmp_path / ("fast" if fast else "slow") / "data"
    env = clean_env(tmp_path, data)
    assert run_cli(capsys, "init", env=env, clock=FixedClock())[0] == 0
    with monkeypatch.context() as m:
        if not fast:
            m.setattr("looop.verbs.table._fast", lambda *a: False)
        code, out, err = run_cli(capsys, *argv, env=env, clock=FixedClock())
    live = sorted(s.id for s in list_sessions(data) if s.alive)
    for sid in live:
        kill(data, sid)
    err = err.replace(str(data), "DATA")
    out = out.replace(str(data), "DATA")
    files = {k: v.replace(str(data), "DATA") for k, v in _files(data).items()}
    shutil.rmtree(data.parent)
    return code, out, err, files, live


@pytest.mark.parametrize("argv", CASES, ids=[" ".join(c[2:]) or "bare" for c in CASES])
def test_fast_and_click_faces_agree(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
) -> None:
    fast = _run(tmp_path, capsys, monkeypatch, argv, fast=True)
    slow = _run(tmp_path, capsys, monkeypatch, argv, fast=False)
    differ = sorted(k for k in fast[3].keys() | slow[3].keys() if fast[3].get(k) != slow[3].get(k))
    assert not differ, {k: (fast[3].get(k), slow[3].get(k)) for k in differ}  # which files
    assert fast == slow


def test_the_fast_face_really_starts_a_worker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import looop.verbs.worker as workerstart

    served: list[str] = []
    real = workerstart.run_fast

    def spy(start: workerstart.Start, env: dict[str, str], clock: object) -> None:
        served.append(start.worker_id)
        real(start, env, clock)  # type: ignore[arg-type]

    monkeypatch.setattr(workerstart, "run_fast", spy)
    code, out, err, files, live = _run(tmp_path, capsys, monkeypatch, CASES[0], fast=True)
    assert served == ["w1"]  # the click-free face served it
    assert code == 0, err
    assert out.startswith("✓ worker · ") and "looop attach w1" in out
    assert live == ["w1"]
    assert "prompts/w1.md" in files and "ship it" in files["prompts/w1.md"]


WORDS = [
    "worker",
    "start",
    "w1",
    "go",
    "-",
    "--command",
    "--runner",
    "--verify",
    "--repo",
    "--branch",
    "-j",
    "--journal",
    "--command=x",
    "--help",
    "-h",
    "--",
    "--color",
    "",
    "a b",
    "\x1b[31m",
]


def test_the_fast_parser_never_raises_and_never_guesses() -> None:
    """Any argv either parses to the plain shape (whose every option was given once, with a
    value) or goes to click; the parser itself never raises."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from looop.verbs.worker import parse_fast

    @settings(max_examples=examples(2000), deadline=None)
    @given(st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=8)), max_size=9))
    def check(tail: list[str]) -> None:
        got = parse_fast(["worker", "start", *tail])
        if got is not None:
            assert got.worker_id == "-" or not got.worker_id.startswith("-")
            assert "--help" not in tail and "-h" not in tail and "--" not in tail

    check()


@pytest.mark.parametrize("fast", [True, False])
def test_steerable_is_kept_in_the_start_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    argv = ["worker", "start", "w1", "--steerable", "--command", S600, "go"]
    code, _, err, files, _ = _run(tmp_path, capsys, monkeypatch, argv, fast=fast)
    assert code == 0, err
    assert '"steerable":true' in files["resume/w1.json"]
    code, _, err, files, _ = _run(tmp_path, capsys, monkeypatch, argv[:3] + argv[4:], fast=fast)
    assert code == 0, err
    assert '"steerable":false' in files["resume/w1.json"]
