"""`looop runs replay`: recorded decide prompts go to another decider, which writes its own
decision file; nothing is executed, and the comparison says per beat whether it would have
made the same move (a replay of a run whose prompt is gone is a failed row, the rest go on).
The deciders are the scripted runner: the recorded one moves, the replaying one agrees on
one beat and not on the other."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from tests.integration.conftest import Cli

RUNNER = f"{shlex.quote(sys.executable)} -m looop.demo.runner --script"


def _script(path: Path, steps: list[dict[str, object]]) -> str:
    path.write_text(json.dumps([{"decision": s} for s in steps]))
    return f"{RUNNER} {shlex.quote(str(path))}"


def test_a_replay_compares_moves_beat_by_beat_and_executes_nothing(
    data: Path, cli: Cli, tmp_path: Path
) -> None:
    recorded = [
        {"action": "write_goal", "id": "ship", "body": "ship v2"},
        {"action": "write_goal", "id": "docs", "body": "write the docs"},
        {"action": "noop", "reason": "quiet"},
    ]
    data.mkdir()
    tick = _script(tmp_path / "recorded.json", recorded)
    cfg = {"runners": {"s": {"tick": tick, "worker": "cat {{prompt_file}}"}}, "default": "s"}
    (data / "config.json").write_text(json.dumps({**cfg, "max_daily_usd": 0}))
    for _ in recorded:
        assert cli("tick", "--force")[0] == 0
    runs = sorted(r["run_id"] for r in json.loads(cli("runs", "--json")[1]))
    assert len(runs) == 3
    (data / "runs" / runs[2] / "prompt.md").unlink()  # gone: a row, not the end

    other = _script(
        tmp_path / "other.json",
        [
            {"action": "write_goal", "id": "ship", "body": "ship it now"},  # same move
            {"action": "write_goal", "id": "release", "body": "cut a release"},  # other target
        ],
    )
    goals = sorted(p.name for p in (data / "goals").iterdir())
    code, out, err = cli("runs", "replay", "--last", "3", "--command", other, "--json")
    assert code == 1, out + err  # one row failed
    rep = json.loads(out)
    assert [(r["run_id"], r["recorded"], r["replayed"], r["verdict"]) for r in rep["rows"]] == [
        (runs[0], "write_goal ship", "write_goal ship", "same"),
        (runs[1], "write_goal docs", "write_goal release", "same action, other target"),
        (runs[2], "noop", None, "failed"),
    ]
    assert "its prompt is gone" in rep["rows"][2]["error"]
    assert (rep["replayed"], rep["same"], rep["agreement"]) == (2, 1, 0.5)
    assert sorted(p.name for p in (data / "goals").iterdir()) == goals  # nothing executed
    assert not (data / "goals" / "release.md").exists()
    kept = [r for r in json.loads(cli("runs", "--json")[1]) if r["run_id"].startswith("replay-")]
    assert len(kept) == 2 and all(r["status"] == "replayed" for r in kept)  # reviewable


def test_a_replay_without_a_decider_or_runs_is_refused_in_one_line(data: Path, cli: Cli) -> None:
    data.mkdir()
    (data / "config.json").write_text(json.dumps({"tick_command": "true", "worker_command": "x"}))
    code, _, err = cli("runs", "replay", "--last", "2")
    assert code == 2 and err.count("\n") == 1 and "--runner R, --command CMD" in err
    code, _, err = cli("runs", "replay", "--command", "true")
    assert code == 1 and err.count("\n") == 1 and "no decide runs to replay" in err
