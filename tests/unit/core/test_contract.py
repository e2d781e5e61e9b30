"""The home's contract answerer (contract/requests.py): a request is checked, run as its worker
against the home data dir, and answered once per key — also by a new answerer on the same
data dir (the answering process restarted), and also when the run itself was cut."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from looop.contract import requests as ans
from looop.contract.answering import MAX_STARTS, Refusal
from looop.contract.requests import Answerer, Home
from looop.core.context import Ctx
from looop.human.mailbox import answer, pending
from looop.remote import hosts
from looop.remote.hosts import remote_worker

pytestmark = [pytest.mark.timeout(60), pytest.mark.process]  # real processes

LOOOP = str(Path(sys.executable).with_name("looop"))
KEY = "k" * 12


@pytest.fixture
def home(ctx: Ctx) -> Ctx:
    """The home: the real `looop` of this checkout, asks polled quickly; pw1 is a worker it
    started away from home."""
    hosts.write_record(ctx.paths.data, "pw1", "k8s-a", over=False)
    return replace(ctx, bin=LOOOP, env={**ctx.env, "LOOOP_ASK_POLL_MS": "50"})


def _answerer(home: Ctx) -> Answerer:
    return Answerer(Home.of(home), remote_worker(home.paths.data), self_only=True)


def _req(*argv: str, key: str = KEY, worker: str = "pw1", **more: Any) -> dict[str, Any]:
    return {"v": 1, "key": key, "worker": worker, "argv": list(argv), **more}


def _ledger(home: Ctx) -> list[dict[str, Any]]:
    p = home.paths.cost_ledger
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


def _asks(home: Ctx) -> list[Path]:
    a = home.paths.asks
    return sorted([*a.glob("pw1-*.json"), *(a / "archive").glob("pw1-*.json")])


def _until(cond: Any, what: str, timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


# --- once per key ------------------------------------------------------------------------


def test_a_key_runs_once_and_its_answer_is_kept(home: Ctx) -> None:
    a = _answerer(home)
    req = _req("cost", "report", "session", "pw1", "claude", "0.25")
    first = a.run(req)
    assert first["code"] == 0 and "recorded $0.25" in first["out"]
    assert a.run(req) == first  # the retry: the stored answer
    assert len(_ledger(home)) == 1 and _ledger(home)[0]["key"] == KEY
    # the row is the worker's, and the home ran it as that worker
    assert _ledger(home)[0]["id"] == "pw1"
    other = a.run(_req("cost", "report", "session", "pw1", "claude", "0.25", key="other-key"))
    assert other["code"] == 0 and len(_ledger(home)) == 2


def test_the_relays_and_web_apis_plain_verbs_are_answered_in_their_process(home: Ctx) -> None:
    """As at the host's door (contract/answering.py): a claim, told or cost report starts no run
    (its entry has no `pid`); an ask is a run of the home's `looop`."""
    a = _answerer(home)
    for key, argv in (
        ("plain-key-1", ["claim", "lease-x"]),
        ("plain-key-2", ["told"]),
        ("plain-key-3", ["cost", "report", "session", "pw1", "claude", "0.1"]),
    ):
        got = a.run(_req(*argv, key=key))
        entry = home.paths.data / ".contract" / "pw1" / key
        assert got["code"] == 0, got
        assert (entry / "code").exists() and not (entry / "pid").exists(), argv
    asked = a.start(a.check(_req("ask", "--prompt", "ok?", key="ask-key-1")))
    entry = home.paths.data / ".contract" / "pw1" / "ask-key-1"
    _until(lambda: (entry / "pid").exists(), "the ask's run")
    _until(lambda: pending(home.paths.asks, home.paths.answers), "the ask on file")
    answer(home.paths.asks, home.paths.answers, "pw1-1", "yes", home.clock.now())
    assert asked.done.wait(30) and asked.answer["out"] == "yes\n"


def test_a_new_answerer_gives_the_stored_answer_without_running_again(home: Ctx) -> None:
    req = _req("claim", "lease-a")
    first = _answerer(home).run(req)
    assert first == {"out": "claimed lease-a\n", "err": "", "code": 0}
    entry = home.paths.data / ".contract" / "pw1" / KEY
    runs = json.loads((entry / "req.json").read_text())["starts"]
    again = _answerer(home).run(req)  # the answering process restarted
    assert again == first
    assert json.loads((entry / "req.json").read_text())["starts"] == runs == 1


def test_an_ask_in_flight_across_a_restart_is_asked_once(home: Ctx) -> None:
    req = _req("ask", "--prompt", "which colour?", "--options", "red,blue")
    first = _answerer(home).start(_answerer(home).check(req))
    _until(lambda: pending(home.paths.asks, home.paths.answers), "the ask")
    # the answerer is gone (a restart): a new one joins the run still going
    second = _answerer(home)
    run = second.start(second.check(req))
    assert not run.done.wait(0.5)
    assert len(_asks(home)) == 1
    answer(home.paths.asks, home.paths.answers, "pw1-1", "blue", home.clock.now())
    assert run.done.wait(20) and first.done.wait(20)
    assert run.answer == first.answer and run.answer["out"] == "blue\n"
    assert run.answer["code"] == 0
    assert len(_asks(home)) == 1


def test_an_ask_whose_run_was_cut_waits_on_the_same_question(home: Ctx) -> None:
    """The run dies before its answer (the machine went down): the next one finds the ask
    its key made instead of asking again."""
    a = _answerer(home)
    req = _req("ask", "--prompt", "ship it?")
    run = a.start(a.check(req))
    _until(lambda: pending(home.paths.asks, home.paths.answers), "the ask")
    entry = home.paths.data / ".contract" / "pw1" / KEY
    os.killpg(int((entry / "pid").read_text()), signal.SIGKILL)
    _until(lambda: json.loads((entry / "req.json").read_text())["starts"] == 2, "a new start")
    assert not run.done.is_set()
    answer(home.paths.asks, home.paths.answers, "pw1-1", "yes", home.clock.now())
    assert run.done.wait(20)
    assert run.answer["out"] == "yes\n" and run.answer["code"] == 0
    assert len(_asks(home)) == 1


@pytest.mark.parametrize(
    ("argv", "count"),
    [
        (("cost", "report", "session", "pw1", "claude", "0.5"), "ledger"),
        (("tell", "hw1", "look left"), "tells"),
    ],
)
def test_an_effect_made_before_a_cut_is_not_made_twice(
    home: Ctx, argv: tuple[str, ...], count: str
) -> None:
    """Cut after the verb did its work and before its answer was kept: run again, it finds
    its own row or tell by the key."""
    hosts.write_record(home.paths.data, "hw1", "k8s-a", over=False)  # a live tell target
    req = _req(*argv)
    first = _answerer(home).run(req)
    assert first["code"] == 0, first
    entry = home.paths.data / ".contract" / "pw1" / KEY
    (entry / "code").unlink()
    again = _answerer(home).run(req)
    assert json.loads((entry / "req.json").read_text())["starts"] == 2
    assert again == first
    if count == "ledger":
        assert len(_ledger(home)) == 1
    else:
        tells = home.paths.tells
        assert len([*tells.glob("hw1-*.json"), *(tells / "consumed").glob("hw1-*.json")]) == 1


def test_a_run_cut_too_often_is_answered_not_started_again(home: Ctx) -> None:
    entry = home.paths.data / ".contract" / "pw1" / KEY
    entry.mkdir(parents=True)
    (entry / "req.json").write_text(json.dumps({"v": 1, "starts": MAX_STARTS}))
    got = _answerer(home).run(_req("cost", "report", "session", "pw1", "claude", "1"))
    assert got["code"] == 75 and "cut 3 times" in got["err"] and got["err"].count("\n") == 1
    assert _ledger(home) == []


# --- who may speak -----------------------------------------------------------------------


def test_a_worker_the_home_did_not_start_away_or_that_is_over_is_refused(home: Ctx) -> None:
    a = _answerer(home)
    with pytest.raises(Refusal) as no:
        a.check(_req("told", worker="stranger"))
    assert no.value.status == 403 and "no worker this home started away" in no.value.message
    hosts.mark_over(home.paths.data, "pw1", 0)
    with pytest.raises(Refusal) as over:
        a.check(_req("told"))
    assert over.value.status == 403 and "over" in over.value.message
    got = a.run(_req("cost", "report", "session", "pw1", "claude", "1"))
    assert got["code"] == 2 and got["err"].startswith("looop: ") and got["err"].count("\n") == 1
    assert _ledger(home) == [] and not (home.paths.data / ".contract").exists()


def test_a_run_whose_worker_ends_meanwhile_is_ended(
    home: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ans, "CHECK_S", 0.2)
    a = _answerer(home)
    run = a.start(a.check(_req("ask", "--prompt", "still there?")))
    _until(lambda: pending(home.paths.asks, home.paths.answers), "the ask")
    hosts.mark_over(home.paths.data, "pw1", 0)
    assert run.done.wait(20)
    assert run.answer["code"] == 3 and "over" in run.answer["err"]


@pytest.mark.parametrize(
    ("argv", "ok"),
    [
        (["told"], True),
        (["told", "pw1"], True),
        (["told", "w2"], False),
        (["ask", "w2", "--prompt", "x"], False),
        (["ask", "--prompt", "w2"], True),  # w2 is the question, not a worker
        (["ask", "-p", "x", "--", "w2"], False),
        (["claim", "x", "--session", "w2"], False),
        (["claim", "x", "--session=w2"], False),
        (["unclaim", "--session", "pw1", "x"], True),
        (["cost", "report", "session", "pw1", "claude", "1"], True),
        (["cost", "report", "session", "other", "claude", "1"], False),  # would pause another
        (["cost"], False),
        (["cost", "--json"], False),
        (["tell", "w2", "hello"], True),
    ],
)
def test_a_worker_token_speaks_only_as_its_worker(home: Ctx, argv: list[str], ok: bool) -> None:
    a = _answerer(home)
    if ok:
        assert a.check(_req(*argv)).argv == tuple(argv)
    else:
        with pytest.raises(Refusal) as no:
            a.check(_req(*argv))
        assert no.value.status == 403
    # the SSH relay's own machines are trusted with the rest (tests/hosts/test_contract.py)
    assert Answerer(Home.of(home), remote_worker(home.paths.data), self_only=False).check(
        _req(*argv)
    )


# --- bad requests ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status", "says"),
    [
        (None, 400, "protocol 1"),
        ("ask", 400, "protocol 1"),
        ([1], 400, "protocol 1"),
        ({**_req("told"), "v": 2}, 400, "protocol 1"),
        ({k: v for k, v in _req("told").items() if k != "key"}, 400, "key"),
        (_req("told", key="short"), 400, "key"),
        (_req("told", key="../../etc/x"), 400, "key"),
        (_req("told", key="k" * 65), 400, "key"),
        (_req("rm", "-rf"), 400, "not a contract verb"),
        (_req(), 400, "no verb"),
        ({**_req("told"), "argv": "told"}, 400, "no verb"),
        ({**_req("told"), "argv": ["told", 3]}, 400, "no verb"),
        (_req("tell", "w2", "a\x00b"), 400, "NUL"),
        (_req("tell", "w2", "x" * (65 << 10)), 413, "KiB"),
        (_req("tell", "w2", "-", stdin="x" * (65 << 10)), 413, "stdin"),
        (_req("tell", "w2", "-", stdin=["x"]), 413, "stdin"),
        ({**_req("told"), "worker": None}, 400, "no worker"),
        (_req("told", worker="../pw1"), 400, "invalid worker id"),
    ],
)
def test_a_bad_request_is_refused_in_one_line_and_nothing_runs(
    home: Ctx, raw: Any, status: int, says: str
) -> None:
    a = _answerer(home)
    with pytest.raises(Refusal) as no:
        a.check(raw)
    assert no.value.status == status and says in no.value.message
    got = a.run(raw)
    assert got["code"] == 2 and got["out"] == "" and got["err"].count("\n") == 1
    assert not (home.paths.data / ".contract").exists()


def test_stdin_and_the_worker_reach_the_verb(home: Ctx, tmp_path: Path) -> None:
    """What the verb is handed: the request's stdin, its argv, the worker's id and the home
    data dir (a stand-in `looop` that shows them)."""
    fake = tmp_path / "fake-looop"
    fake.write_text(
        '#!/bin/sh\necho "argv=$* sid=$LOOOP_SESSION_ID data=$LOOOP_DATA_DIR"; cat; exit 7\n'
    )
    fake.chmod(0o755)
    a = Answerer(
        Home.of(replace(home, bin=str(fake))), remote_worker(home.paths.data), self_only=True
    )
    got = a.run(_req("tell", "hw1", "-", stdin="from stdin\n"))
    assert got == {
        "out": f"argv=tell hw1 - sid=pw1 data={home.paths.data}\nfrom stdin\n",
        "err": "",
        "code": 7,
    }


# --- pruning -----------------------------------------------------------------------------


def _done(home: Ctx, worker: str, key: str, mtime: float) -> Path:
    d = home.paths.data / ".contract" / worker / key
    d.mkdir(parents=True)
    for name, text in (("out", ""), ("err", ""), ("code", "0\n"), ("req.json", "{}")):
        (d / name).write_text(text)
        os.utime(d / name, (mtime, mtime))
    return d


def test_pruning_keeps_the_newest_per_worker_and_nothing_old(
    home: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ans, "KEEP_PER_WORKER", 3)
    now = time.time()
    for i in range(6):
        _done(home, "pw1", f"key-pw1-{i:03d}", now - 100 + i)
    _done(home, "pw2", "key-pw2-new", now - 10)
    _done(home, "pw2", "key-pw2-old", now - ans.KEEP_S - 10)
    # begun a day ago and never finished, nobody at it: given up
    stale = home.paths.data / ".contract" / "pw2" / "key-pw2-stale"
    stale.mkdir()
    (stale / "req.json").write_text("{}")
    os.utime(stale / "req.json", (now - ans.KEEP_S - 10,) * 2)
    # ... but one whose run still holds its flock stays, however old
    held = home.paths.data / ".contract" / "pw2" / "key-pw2-held"
    held.mkdir()
    (held / "req.json").write_text("{}")
    os.utime(held / "req.json", (now - ans.KEEP_S - 10,) * 2)
    from looop.home import locks

    fd = locks.try_flock(held / "lock")
    assert fd is not None
    try:
        gone = _answerer(home).prune(now)
    finally:
        os.close(fd)
    assert gone == sorted(
        [f"pw1/key-pw1-{i:03d}" for i in range(3)] + ["pw2/key-pw2-old", "pw2/key-pw2-stale"]
    )
    left = sorted(p.name for p in (home.paths.data / ".contract").glob("*/*"))
    assert left == [*(f"key-pw1-{i:03d}" for i in range(3, 6)), "key-pw2-held", "key-pw2-new"]


def test_pruning_has_a_global_bound(home: Ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ans, "KEEP_DONE", 4)
    now = time.time()
    for w in range(3):
        for i in range(3):
            _done(home, f"pw{w}", f"key-{w}-{i:04d}", now - 100 + 10 * w + i)
    _answerer(home).prune(now)
    left = sorted(p.name for p in (home.paths.data / ".contract").glob("*/*"))
    assert left == ["key-1-0002", "key-2-0000", "key-2-0001", "key-2-0002"]
    assert not (home.paths.data / ".contract" / "pw0").exists()  # an emptied worker's dir goes
