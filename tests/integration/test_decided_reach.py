"""A decision reaches no further than the decider (real PTY sessions, a real interactive bash):
a sandboxed decider may not type into, send keys to or restart a human's unsandboxed shell
unless the human started it `--steerable`; whatever a decision types passes the tripwire as a
shell line would; and a human's own steering is never held back."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from looop.act.decision import Decision, DecisionError
from looop.act.executor import execute
from looop.act.moves.sessions import SendKey, SteerSession
from looop.act.outcome import ExecError
from looop.act.parse import decision_from_obj
from looop.core.context import Ctx
from looop.home.paths import Paths
from looop.home.sandboxpolicy import OFF
from looop.sessions.client import expect, send, send_keys
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.clocks import FixedClock
from tests.helpers import stop_sessions, wait_until, wire

pytestmark = pytest.mark.timeout(90)

# a human's plain interactive shell: no rc files, a prompt easy to wait for
SHELL = "env PS1='ready$ ' bash --norc --noprofile -i # {{prompt_file}}"
BOXED = {"mode": "tripwire", "sandbox": "on"}  # the decider's shell runs sandboxed


@pytest.fixture
def hctx(tmp_path: Path, ctx: Ctx) -> Any:
    """A data dir whose home is a folder of its own (a canary inside), the decider boxed."""
    data = tmp_path / "hdata"
    data.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    (home / "canary").write_text("still here\n")
    c = replace(
        ctx,
        paths=Paths.at(data),
        clock=FixedClock(t=time.time()),
        env={**ctx.env, "HOME": str(home)},
    )
    wire(c, [], worker=SHELL, shell_policy=BOXED)
    yield c
    stop_sessions(c.paths.data)


def _shell(c: Ctx, sid: str, steerable: bool = False) -> Path:
    """A human starts an unsandboxed shell; its working directory is its room's work folder."""
    opt_in = {"steerable": True} if steerable else {}
    start_worker(c, c.knobs(), StartRequest(sid, "a shell", sandbox=OFF, **opt_in))
    assert expect(c.paths.data, sid, r"ready\$", timeout_s=20, clock=c.clock)[0] == 0
    return c.paths.rooms / sid / "work"


def _decide(c: Ctx, obj: dict[str, Any]) -> str:
    """The decision as the pulse runs it; its refusal's one line."""
    with pytest.raises(ExecError) as e:
        execute(c, c.knobs(), decision_from_obj(obj))
    assert "\n" not in str(e.value)
    return str(e.value)


def _synced(c: Ctx, sid: str, word: str) -> None:
    """A human's line typed after the refused move has run: anything sent before it ran too."""
    at = send(c.paths.data, sid, f"echo {word}-$((1+1))")["offset"]
    assert expect(c.paths.data, sid, f"{word}-2", since=at, timeout_s=20, clock=c.clock)[0] == 0


def test_a_boxed_decider_cannot_reach_into_a_humans_unsandboxed_shell(hctx: Ctx) -> None:
    cwd = _shell(hctx, "sh")
    for obj in (
        {"action": "steer_session", "id": "sh", "input": "touch pwned"},
        {"action": "send_key", "id": "sh", "keys": ["Up", "Enter"]},
        {"action": "restart_session", "id": "sh"},
    ):
        why = _decide(hctx, obj)
        assert why.startswith(f"{obj['action']} refused: worker sh runs unsandboxed")
        assert "--steerable" in why
    # the human steers it as ever: typing, keys (their last command again), both work
    send(hctx.paths.data, "sh", "touch by-human")
    wait_until(lambda: (cwd / "by-human").exists(), 20, "the human's command")
    (cwd / "by-human").unlink()
    send_keys(hctx.paths.data, "sh", ["Up", "Enter"])
    wait_until(lambda: (cwd / "by-human").exists(), 20, "the human's recalled command")
    _synced(hctx, "sh", "after")
    assert not (cwd / "pwned").exists()
    journal = hctx.paths.journal
    assert not journal.exists() or "steer" not in journal.read_text()


def test_a_decision_reaches_an_unboxed_shell_only_while_the_decider_is_unboxed(
    hctx: Ctx,
) -> None:
    wire(hctx, [], worker=SHELL)  # no sandbox anywhere: the decider has no walls to keep
    cwd = _shell(hctx, "sh")
    execute(hctx, hctx.knobs(), decision_from_obj(
        {"action": "steer_session", "id": "sh", "input": "touch decided"}
    ))  # fmt: skip
    wait_until(lambda: (cwd / "decided").exists(), 20, "the decision's line")


def test_a_human_opt_in_lets_decisions_steer_and_the_tripwire_reads_the_text(
    hctx: Ctx,
) -> None:
    cwd = _shell(hctx, "sh", steerable=True)
    execute(hctx, hctx.knobs(), decision_from_obj(
        {"action": "steer_session", "id": "sh", "input": "touch steered"}
    ))  # fmt: skip
    wait_until(lambda: (cwd / "steered").exists(), 20, "the decision's line")
    home = Path(hctx.env["HOME"])
    for text, needle in (
        ("rm -rf ~x\x7f", "control character"),  # the DEL would edit `~x` into `~`
        ("touch a\x1b[Arm", "control character"),
        ("!!", "history"),  # bash runs the last line again
        ("echo !-1", "history"),
        ("^a^b", "history"),
        ("fc -s", "history"),
    ):
        why = _decide(hctx, {"action": "steer_session", "id": "sh", "input": text})
        assert needle in why, why
    for keys in (["Up", "Enter"], ["C-p", "Enter"], ["C-r"], ["Up"]):
        why = _decide(hctx, {"action": "send_key", "id": "sh", "keys": keys})
        assert "history" in why and "looop key" in why, why
    # keys that recall nothing still go
    execute(hctx, hctx.knobs(), decision_from_obj(
        {"action": "send_key", "id": "sh", "keys": ["C-c", "Down", "Enter"]}
    ))  # fmt: skip
    _synced(hctx, "sh", "end")
    assert (home / "canary").read_text() == "still here\n"


def test_the_tripwire_reads_what_a_decision_types(hctx: Ctx) -> None:
    wire(hctx, [], worker=SHELL)  # no sandbox anywhere: the decider may type into it
    _shell(hctx, "sh")
    home = Path(hctx.env["HOME"])
    for text in (
        "rm -rf ~",
        "cd /tmp\rrm -rf ~",  # a second line, after an Enter of its own
        "!rm -rf ~",  # an agent CLI's shell mode
        "echo ok; rm -rf $HOME",
    ):
        why = _decide(hctx, {"action": "steer_session", "id": "sh", "input": text})
        assert why.startswith("steer_session input refused by the shell tripwire"), why
    _synced(hctx, "sh", "end")
    assert (home / "canary").read_text() == "still here\n"
    # run_shell refuses the same text the same way
    why = _decide(hctx, {"action": "run_shell", "cmd": "rm -rf ~"})
    assert why.startswith("run_shell refused by the shell tripwire")


def test_steerable_is_a_humans_word_never_a_decisions(hctx: Ctx) -> None:
    obj = {"action": "start_worker", "id": "sh", "prompt": "x", "steerable": True}
    d = decision_from_obj(obj)
    with pytest.raises(Exception, match="only a human lets decisions steer") as e:
        execute(hctx, hctx.knobs(), d)  # the pulse's move
    assert "\n" not in str(e.value)
    assert not (hctx.paths.sessions / "sh").exists()
    with pytest.raises(DecisionError, match="steerable"):
        decision_from_obj({**obj, "steerable": "yes"})


def test_moves_made_as_a_human_are_not_held_back(hctx: Ctx) -> None:
    cwd = _shell(hctx, "sh")
    typed = Decision(SteerSession("sh", "touch web-typed"), "web: typed")
    execute(hctx, hctx.knobs(), typed, actor="web")
    wait_until(lambda: (cwd / "web-typed").exists(), 20, "the web's line")
    (cwd / "web-typed").unlink()
    execute(hctx, hctx.knobs(), Decision(SendKey("sh", ("Up", "Enter")), "web: keys"), actor="web")
    wait_until(lambda: (cwd / "web-typed").exists(), 20, "the web's recalled line")
