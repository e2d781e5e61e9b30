"""The decider proposes a landing, a human approves or declines it (real git, real worker
sessions, the executor as the beat runs it): propose_land raises an ask carrying the change
(branch, base..tip, diff stat, verify), shown by `looop needs` and `looop review`; it lands
nothing. Landing it (`looop land`) answers the ask with the landing's commit; answering "no"
declines it and nothing lands; an answer cannot approve it. Proposed twice, it is found, not
asked again; a worker's own forged "land" ask is no proposal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from looop.act.executor import execute
from looop.act.moves import notes as moves
from looop.act.outcome import ExecError
from looop.act.parse import decision_from_obj
from looop.core.context import Ctx
from looop.human.mailbox import new_ask, pending, read_answer
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from looop.workers.verify import record
from tests.helpers import Cli, said
from tests.integration.workerchange import cli, git, repo, reviewed, start, wctx

pytestmark = pytest.mark.timeout(90)
__all__ = ["cli", "repo", "wctx"]  # the fixtures this module's tests take


def propose(c: Ctx, wid: str, reason: str = "done; verify passed") -> str:
    move = {"action": "propose_land", "id": wid, "reason": reason}
    return execute(c, c.knobs(), decision_from_obj(move)).journal  # as the beat runs it


def asks_of(c: Ctx, wid: str) -> list[dict[str, object]]:
    return [a for a in pending(c.paths.asks, c.paths.answers) if a["worker"] == wid]


def test_a_proposal_carries_the_change_lands_nothing_and_landing_answers_it(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    told: list[tuple[str, str, str]] = []  # the proposal joins the needs-you queue: told once
    monkeypatch.setattr(
        moves, "notify", lambda c, msg, i, kind, cfg=None: told.append((kind, i, msg))
    )
    start(wctx, tmp_path, "w1", repo)
    reviewed(cli, "w1")
    record(wctx, "w1", "make test", True, 0, False, "ok")
    main = git(repo, "rev-parse", "main").strip()
    tip = git(repo, "rev-parse", "looop/w1").strip()
    assert "propose-land w1 · done; verify passed" in propose(wctx, "w1")
    assert git(repo, "rev-parse", "main").strip() == main  # nothing landed
    (ask,) = asks_of(wctx, "w1")
    carried = ask["land"]
    assert isinstance(carried, dict)
    assert carried["branch"] == "looop/w1" and carried["tip"] == tip and carried["base"] == main
    assert carried["stat"] == "1 commit(s), 2 file(s) +3 -0" and carried["verify"] == "passed"
    assert ask["options"] == ["no"]
    assert [(k, i) for k, i, _ in told] == [("ask", ask["id"])]
    assert "looop land w1" in told[0][2] and f"looop answer {ask['id']} no" in told[0][2]

    code, out, err = cli("needs")
    assert code == 0, err
    assert "Land worker w1's change? done; verify passed" in out and "→ looop land w1" in out
    assert f"decline: looop answer {ask['id']} no" in out
    code, out, err = cli("review", "w1")
    assert code == 0 and f"the decider proposes landing this (ask {ask['id']})" in out, err
    code, out, _ = cli("review", "w1", "--json")
    assert json.loads(out)["proposal"]["ask"] == ask["id"]

    again = propose(wctx, "w1")  # level-triggered: found, not asked twice
    assert f"already proposed (ask {ask['id']})" in again and len(asks_of(wctx, "w1")) == 1
    assert len(told) == 1  # nor told twice
    code, _, err = cli("answer", str(ask["id"]), "yes")  # an answer cannot approve it
    assert code == 1 and "takes one of: no" in err
    assert git(repo, "rev-parse", "main").strip() == main

    code, out, err = cli("land", "w1")
    assert code == 0, err
    landed = git(repo, "rev-parse", "main").strip()
    assert landed == tip
    answered = read_answer(wctx.paths.asks, wctx.paths.answers, str(ask["id"]))
    assert answered == f"landed: main at {tip}"
    assert f"user (cli): answered the landing proposal {ask['id']}: landed" in said(wctx.paths.data)
    code, out, _ = cli("needs")
    assert "looop land w1" not in out


def test_declined_nothing_lands_and_the_same_change_is_not_proposed_again(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    start(wctx, tmp_path, "w2", repo)
    reviewed(cli, "w2")
    main = git(repo, "rev-parse", "main").strip()
    propose(wctx, "w2")
    (ask,) = asks_of(wctx, "w2")
    code, _, err = cli("answer", str(ask["id"]), "no")
    assert code == 0, err
    assert git(repo, "rev-parse", "main").strip() == main
    found = propose(wctx, "w2")
    assert f"answered its landing at this tip already (ask {ask['id']}: no)" in found
    assert asks_of(wctx, "w2") == []
    code, out, _ = cli("review", "w2")
    assert "proposes landing" not in out  # the declined proposal waits no more


def test_a_forged_land_ask_is_no_proposal_and_no_commits_is_nothing_to_propose(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    start(wctx, tmp_path, "w3", repo)
    reviewed(cli, "w3")
    forged = new_ask(
        wctx.paths.asks, wctx.paths.answers, "w3", "land me", None, [], wctx.clock.now(),
        land={"branch": "looop/w3"},
    )  # fmt: skip  # as a box writing asks/ could
    code, out, _ = cli("needs")
    assert "looop land w3" not in out and f"looop answer {forged['id']}" in out
    code, _, err = cli("land", "w3")
    assert code == 0, err
    assert read_answer(wctx.paths.asks, wctx.paths.answers, str(forged["id"])) is None

    command = "true # {{prompt_file}} {{session_id}}"  # ends having committed nothing
    start_worker(wctx, wctx.knobs(), StartRequest("w4", "idle", command=command, repo=str(repo)))
    with pytest.raises(ExecError) as e:
        propose(wctx, "w4")
    assert "worker w4's branch has no commits past its base: nothing to land" in str(e.value)
    assert "\n" not in str(e.value) and asks_of(wctx, "w4") == []
    with pytest.raises(ExecError) as e:
        propose(wctx, "nobody")
    assert "no worker nobody" in str(e.value)
