"""Where the decider writes its one decision (issue 50): the data dir's `.decision.json` for an
unsandboxed runner, its decide room beside the data dir for a sandboxed one (a box writes
nothing in the data dir), the prompt naming the one file the executor reads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from looop.act.actiontable import taught
from looop.act.executor import take_decision
from looop.act.outcome import ExecError
from looop.core.context import Ctx
from looop.core.promptfile import DECISION_PLACEHOLDER, substitute_path
from looop.decide.prompt import PromptExtras, build_prompt
from looop.decide.spend import decision_file
from looop.home.config import parse_config
from looop.home.paths import Paths


def test_the_sandboxed_answer_lives_beside_the_data_dir_never_in_it(tmp_path: Path) -> None:
    paths = Paths.at(tmp_path / "data")
    boxed = paths.decision_file(True)
    assert paths.decision_file(False) == paths.data / ".decision.json"
    assert boxed.name == ".decision.json" and boxed.parent == paths.decide_room
    assert not boxed.is_relative_to(paths.data)
    assert boxed.is_relative_to(paths.rooms)  # the box's side, where boxes write


def _cfg(runner: dict[str, Any], top: object = None) -> Any:
    obj: dict[str, Any] = {"default": "r", "runners": {"r": runner}}
    if top is not None:
        obj["sandbox"] = top
    return parse_config(obj, "config.json")


@pytest.mark.parametrize(
    ("runner_box", "top", "boxed"),
    [
        (None, None, False),
        ("off", None, False),
        ("on", None, True),
        (None, "on", True),
        ("off", "on", False),  # the runner's own setting wins, as for its workers
    ],
)
def test_the_runner_s_sandbox_setting_picks_the_file(
    ctx: Ctx, runner_box: str | None, top: str | None, boxed: bool
) -> None:
    spec: dict[str, Any] = {"tick": "x", "worker": "x {{prompt_file}}"}
    if runner_box is not None:
        spec["sandbox"] = runner_box
    cfg = _cfg(spec, top)
    runner = cfg.runner()
    assert runner is not None
    assert decision_file(ctx, runner, cfg) == ctx.paths.decision_file(boxed)


def test_the_prompt_names_the_absolute_decision_file(ctx: Ctx) -> None:
    room = str(ctx.paths.decision_file(True))
    text = build_prompt(ctx, ctx.knobs(), PromptExtras(actions=taught(), decision_file=room)).text
    now = text[text.index("=== NOW") :]
    assert f"Decision file: {room}\n" in now
    assert str(ctx.paths.data / ".decision.json") not in text
    plain = build_prompt(ctx, ctx.knobs(), PromptExtras(actions=taught())).text
    assert f"Decision file: {ctx.paths.data / '.decision.json'}\n" in plain


def test_a_runner_command_learns_the_file_from_its_placeholder(tmp_path: Path) -> None:
    answer = tmp_path / "a room" / ".decision.json"
    line = substitute_path(
        f"agent --out {DECISION_PLACEHOLDER} -o '{DECISION_PLACEHOLDER}'",
        DECISION_PLACEHOLDER,
        answer,
    )
    assert line == f"agent --out '{answer}' -o '{answer}'"


def test_only_the_named_file_is_taken(ctx: Ctx) -> None:
    """A decision in the data dir is not the sandboxed run's: the room's file is read, once."""
    ctx.paths.decision.write_text('{"action":"noop","journal":"in the data dir"}')
    room = ctx.paths.decision_file(True)
    assert take_decision(ctx, room) is None
    room.parent.mkdir(parents=True)
    room.write_text('{"action":"noop"}')
    assert take_decision(ctx, room) == b'{"action":"noop"}'
    assert not room.exists() and ctx.paths.decision.exists()


def test_a_link_in_the_room_is_discarded_never_followed(ctx: Ctx, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text('{"action":"noop"}')
    room = ctx.paths.decision_file(True)
    room.parent.mkdir(parents=True)
    room.symlink_to(target)
    with pytest.raises(ExecError, match="discarded"):
        take_decision(ctx, room)
    assert not room.is_symlink() and target.exists()


def test_a_fifo_in_the_room_is_discarded_without_blocking(ctx: Ctx) -> None:
    """A box that leaves a FIFO where its answer goes cannot hang the beat."""
    room = ctx.paths.decision_file(True)
    room.parent.mkdir(parents=True)
    os.mkfifo(room)
    with pytest.raises(ExecError, match="discarded"):
        take_decision(ctx, room)
    assert not os.path.lexists(room)
