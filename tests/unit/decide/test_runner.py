"""run_runner against real bash children: prompt delivery, tee files, failures, deadlines."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.decide.runner import run_runner
from looop.home.paths import Paths
from tests.clocks import FixedClock
from tests.helpers import until

pytestmark = pytest.mark.process  # real processes: not make check's tier


@pytest.fixture
def rctx(ctx: Ctx) -> Ctx:
    return replace(ctx, clock=FixedClock())  # frozen wall time, real monotonic deadlines


STAMP = "[15:06:40] "  # FixedClock's default instant, UTC


def _prompt(paths: Paths, text: str = "first prompt line\nsecond prompt line\n") -> Path:
    p = paths.data / "prompt.md"
    p.write_text(text)
    return p


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie nobody has reaped yet (killed all the same)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    ps = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True)
    return not ps.stdout.strip().startswith("Z")


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@pytest.mark.timeout(20)
def test_prompt_arrives_on_stdin_and_is_teed_with_stamps(rctx: Ctx) -> None:
    prompt = _prompt(rctx.paths)
    out_log = rctx.paths.data / "runs" / "tick-1" / "output.log"
    tick_log = rctx.paths.tick_log
    tick_log.write_text("old content of an earlier beat\n")
    res = run_runner(rctx, "cat", prompt, [out_log, tick_log], 10)
    assert res.ok and res.exit_code == 0 and not res.timed_out and res.error is None
    expected = [STAMP + "first prompt line", STAMP + "second prompt line"]
    assert _lines(out_log) == expected
    assert _lines(tick_log) == expected  # truncated at start, not appended
    assert res.tail.splitlines() == ["first prompt line", "second prompt line"]
    assert res.secs >= 0


@pytest.mark.timeout(20)
def test_prompt_file_placeholder_with_a_space_in_the_data_dir(rctx: Ctx, tmp_path: Path) -> None:
    spaced = Paths.at(tmp_path / "my data dir")
    spaced.data.mkdir()
    c = replace(rctx, paths=spaced)
    prompt = _prompt(spaced, "via the file\n")
    log = spaced.data / "out.log"
    res = run_runner(c, 'cat {{prompt_file}}; echo "cwd=$PWD"; cat', prompt, [log], 10)
    assert res.ok, res.error
    # the file was read by path; stdin was empty (the trailing `cat` printed nothing)
    assert _lines(log) == [STAMP + "via the file", STAMP + f"cwd={spaced.data}"]


@pytest.mark.timeout(20)
def test_runner_sees_the_child_env(rctx: Ctx) -> None:
    log = rctx.paths.data / "out.log"
    res = run_runner(rctx, 'echo "$LOOOP_DATA_DIR"', _prompt(rctx.paths), [log], 10)
    assert res.ok
    assert _lines(log) == [STAMP + str(rctx.paths.data)]


@pytest.mark.timeout(20)
def test_non_zero_exit_names_the_code_and_the_last_line(rctx: Ctx) -> None:
    log = rctx.paths.data / "out.log"
    cmd = "echo working; echo 'Error: model overloaded' >&2; exit 3"
    res = run_runner(rctx, cmd, _prompt(rctx.paths), [log], 10)
    assert not res.ok and res.exit_code == 3
    assert res.error == "runner exited 3: Error: model overloaded"
    assert STAMP + "Error: model overloaded" in _lines(log)  # stderr is merged


@pytest.mark.timeout(20)
def test_non_zero_exit_prefers_the_stream_error(rctx: Ctx) -> None:
    event = {"type": "result", "subtype": "success", "is_error": True, "result": "401 bad key"}
    cmd = f"echo '{json.dumps(event)}'; echo trailing noise; exit 1"
    res = run_runner(rctx, cmd, _prompt(rctx.paths), [], 10)
    assert res.error == "runner exited 1: 401 bad key"


@pytest.mark.timeout(20)
def test_exit_zero_with_a_stream_error_reports_it(rctx: Ctx) -> None:
    event = {"type": "turn.failed", "error": {"message": "quota exceeded"}}
    res = run_runner(rctx, f"echo '{json.dumps(event)}'", _prompt(rctx.paths), [], 10)
    assert res.ok and res.error == "quota exceeded"


@pytest.mark.timeout(20)
def test_missing_runner_says_so_and_points_at_init(rctx: Ctx) -> None:
    cmd = "looop-no-such-agent-cli -p --model x"
    res = run_runner(rctx, cmd, _prompt(rctx.paths), [], 10)
    assert res.exit_code == 127 and not res.ok
    assert res.error is not None
    assert res.error.startswith("runner command not found: looop-no-such-agent-cli")
    assert "looop init" in res.error


@pytest.mark.timeout(20)
def test_timeout_kills_the_whole_process_group(rctx: Ctx) -> None:
    pid_file = rctx.paths.data / "bg.pid"
    cmd = f"sleep 100 & echo $! > '{pid_file}'; echo started; sleep 100"
    start = time.monotonic()
    res = run_runner(rctx, cmd, _prompt(rctx.paths), [rctx.paths.data / "out.log"], 1)
    took = time.monotonic() - start
    assert res.timed_out and not res.ok
    assert res.error == "runner timed out after 1s (LOOOP_TICK_TIMEOUT_SECS)"
    assert took < 5
    assert "started" in res.tail
    # signalled before run_runner returned; its death lands when the kernel schedules it
    bg = int(pid_file.read_text())
    assert until(lambda: not _alive(bg), 5)


@pytest.mark.timeout(20)
def test_a_runner_that_ignores_sigterm_is_killed(rctx: Ctx) -> None:
    res = run_runner(rctx, "trap '' TERM; sleep 100", _prompt(rctx.paths), [], 0.5)
    assert res.timed_out and res.secs < 5


@pytest.mark.timeout(20)
def test_background_child_holding_the_pipe_does_not_hang_the_beat(rctx: Ctx) -> None:
    res = run_runner(rctx, "sleep 100 & echo decided", _prompt(rctx.paths), [], 30)
    assert res.ok and not res.timed_out
    assert res.secs < 10
    assert res.tail == "decided"


@pytest.mark.timeout(20)
def test_non_utf8_line_does_not_stop_the_reading(rctx: Ctx) -> None:
    log = rctx.paths.data / "out.log"
    seen: list[str] = []
    cmd = r"printf 'before\n\xff\xfe bad bytes\nafter\n'"
    res = run_runner(rctx, cmd, _prompt(rctx.paths), [log], 10, on_line=seen.append)
    assert res.ok
    assert seen == ["before", "\ufffd\ufffd bad bytes", "after"]
    assert _lines(log)[-1] == STAMP + "after"


@pytest.mark.timeout(20)
def test_on_line_sees_raw_lines_while_the_tee_gets_rendered_text(rctx: Ctx) -> None:
    log = rctx.paths.data / "out.log"
    events = [
        {"type": "system", "subtype": "init", "model": "sonnet"},
        {"type": "assistant", "message": {"content": [{"type": "text", "text": "Deciding."}]}},
        {"type": "result", "subtype": "success", "total_cost_usd": 0.5, "num_turns": 1},
    ]
    script = rctx.paths.data / "events.ndjson"
    script.write_text("".join(json.dumps(e) + "\n" for e in events) + "\n")
    seen: list[str] = []
    res = run_runner(rctx, f"cat '{script}'", _prompt(rctx.paths), [log], 10, on_line=seen.append)
    assert res.ok
    assert [json.loads(s) for s in seen if s] == events
    assert _lines(log) == [
        STAMP + "  · session sonnet",
        STAMP + "Deciding.",
        STAMP + "  ✓ done 1 turns · $0.5000",
    ]


@pytest.mark.timeout(20)
def test_an_endless_line_is_flushed_in_one_mib_pieces(rctx: Ctx) -> None:
    seen: list[int] = []
    cmd = "head -c 2500000 /dev/zero | tr '\\0' a; echo; echo end"
    res = run_runner(rctx, cmd, _prompt(rctx.paths), [], 20, on_line=lambda s: seen.append(len(s)))
    assert res.ok
    assert seen == [1024 * 1024, 1024 * 1024, 2500000 - 2 * 1024 * 1024, 3]
    assert re.fullmatch(r"(a*\n)*end", res.tail) and len(res.tail) <= 2048


@pytest.mark.timeout(20)
def test_a_missing_prompt_file_is_a_clear_error(rctx: Ctx) -> None:
    res = run_runner(rctx, "cat", rctx.paths.data / "nope.md", [], 10)
    assert not res.ok and res.error is not None and "prompt file" in res.error


@pytest.mark.timeout(20)
def test_the_runner_learns_where_its_decision_goes(rctx: Ctx) -> None:
    """$LOOOP_DECISION and {{decision_file}} name the one file the beat reads."""
    log = rctx.paths.data / "out.log"
    cmd = 'echo "$LOOOP_DECISION"; echo {{decision_file}}; pwd'
    res = run_runner(rctx, cmd, _prompt(rctx.paths), [log], 10)
    assert res.ok, res.error
    want = rctx.paths.decision_file(False)
    assert _lines(log) == [STAMP + str(want), STAMP + str(want), STAMP + str(want.parent)]
