"""The plain verbs answered by the home itself at its door (contract/answering.py): once by key,
again told so when cut before their answer, never a fourth time, and each answer holding
only its own verb's output; who a caller is, by its parents (sessions/hostdoor.py)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from looop.contract.answering import MAX_STARTS, Request, answer_here, captured, entry, note_start
from looop.sessions.hostdoor import descends, parent_of

NOW = 1_800_000_000.0


def _req(*argv: str, key: str = "key-one-1", worker: str = "w1") -> Request:
    return Request(worker, key, tuple(argv), None)


def _rows(data: Path) -> list[dict[str, object]]:
    ledger = data / "cost.jsonl"
    if not ledger.exists():
        return []
    return [json.loads(line) for line in ledger.read_text().splitlines()]


def test_a_retried_key_gets_the_stored_answer_and_runs_once(tmp_path: Path) -> None:
    req = _req("cost", "report", "session", "w1", "claude", "0.40")
    first = answer_here(req, str(tmp_path), {}, NOW)
    again = answer_here(req, str(tmp_path), {}, NOW + 5)
    assert isinstance(first, dict) and first["code"] == 0
    assert first["out"].startswith("recorded $0.4 for session w1")
    assert again == first
    assert len(_rows(tmp_path)) == 1
    other = answer_here(_req(*req.argv, key="key-two-2"), str(tmp_path), {}, NOW)
    assert isinstance(other, dict) and other["code"] == 0
    assert len(_rows(tmp_path)) == 2  # a new key is a new report


def test_a_verb_cut_before_its_answer_runs_again_told_so(tmp_path: Path) -> None:
    req = _req("cost", "report", "session", "w1", "claude", "0.40")
    first = answer_here(req, str(tmp_path), {}, NOW)
    assert isinstance(first, dict)
    d = Path(entry(str(tmp_path), req))
    (d / "code").unlink()  # the answering process died after the verb, before its answer
    again = answer_here(req, str(tmp_path), {}, NOW + 5)
    assert isinstance(again, dict) and again["code"] == 0
    assert len(_rows(tmp_path)) == 1  # run again with LOOOP_REQUEST_RETRY: counted once
    assert json.loads((d / "req.json").read_text())["starts"] == 2


def test_a_verb_cut_too_often_is_answered_not_run(tmp_path: Path) -> None:
    req = _req("claim", "lease-a")
    d = Path(entry(str(tmp_path), req))
    d.mkdir(parents=True)
    note_start(str(d), req, MAX_STARTS - 1, NOW)
    got = answer_here(req, str(tmp_path), {}, NOW)
    assert isinstance(got, dict) and got["code"] == 75 and "cut 3 times" in got["err"]
    assert not (tmp_path / "claims" / "lease-a.json").exists()


def test_a_claim_is_the_workers_and_its_answer_the_clis(tmp_path: Path) -> None:
    got = answer_here(_req("claim", "lease-a"), str(tmp_path), {}, NOW)
    assert got == {"out": "claimed lease-a\n", "err": "", "code": 0}
    held = json.loads((tmp_path / "claims" / "lease-a.json").read_text())
    assert held["session"] == "w1"
    bad = answer_here(_req("tell", "ghost", "hi", key="key-two-2"), str(tmp_path), {}, NOW)
    assert isinstance(bad, dict) and bad["code"] == 1
    assert (
        bad["err"].startswith("looop: worker ghost is not running") and bad["err"].count("\n") == 1
    )


def test_what_is_not_a_plain_spelling_is_left_to_a_run(tmp_path: Path) -> None:
    for argv in (("ask", "w1", "--prompt", "ok?"), ("kill", "w1"), ("claim", "--help")):
        assert answer_here(_req(*argv), str(tmp_path), {}, NOW) is None
    assert not (tmp_path / ".contract" / "w1").exists()  # nothing started, nothing kept


def test_each_thread_gets_its_own_verbs_output() -> None:
    start = threading.Barrier(2)
    got: dict[str, dict[str, object]] = {}

    def speak(word: str) -> None:
        def verb() -> int:
            start.wait(5)
            for _ in range(200):
                print(word)
            return 0

        got[word] = captured(verb)

    threads = [threading.Thread(target=speak, args=(w,)) for w in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert got["one"]["out"] == "one\n" * 200 and got["two"]["out"] == "two\n" * 200


def test_a_caller_is_known_by_its_parents() -> None:
    me, parent = os.getpid(), os.getppid()
    assert descends(me, parent) and descends(me, me)
    assert not descends(parent, me)
    assert parent_of(me) is not None and parent_of(me)[0] == parent  # type: ignore[index]
    assert parent_of(2**22 + 12345) is None  # no such process


def test_an_answer_the_disk_cannot_hold_is_still_given_and_not_on_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full data dir (ENOSPC) while the home's session host settles a held call: the caller
    gets its answer, the host lives on (a soak saw the host die here), and no half record
    passes for a stored one."""
    import errno

    from looop.contract import answering
    from looop.home import store

    real = store.atomic_write
    calls: list[str] = []

    def full(path: str, data: str, **kw: object) -> None:
        calls.append(os.path.basename(path))
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data, durable=False)

    monkeypatch.setattr(store, "atomic_write", full)
    answer = {"out": "", "err": "refused", "code": 3}
    assert answering.store_answer(tmp_path, answer) == answer
    assert answering.stored(str(tmp_path)) is None
