"""Needs-input detection measured: the detector (workers/needsinput.judge with each CLI's
profile patterns) over the labelled corpus of real screens (tests/corpus/needs/: recorded
from the real claude, codex, pi, opencode and gemini against the scripted model server by
tests/realcli/record_needs.py, each labelled by a human before the detector looked).
Precision >= 99 % and recall >= 97 % per CLI; bench/bench_needs_corpus.py prints the table."""

from __future__ import annotations

import pytest

from tests.corpus.needs.score import CLIS, labels, score

PRECISION, RECALL = 0.99, 0.97


def test_the_corpus_holds_200_screens_of_every_kind() -> None:
    got = {cli: labels(cli) for cli in CLIS}
    assert sum(len(v) for v in got.values()) >= 200
    for cli, lab in got.items():
        kinds = set(lab.values())
        assert {"idle", "busy"} <= kinds, (cli, kinds)
    assert any("approval" in set(v.values()) for v in got.values())


@pytest.mark.parametrize("cli", CLIS)
def test_the_detector_is_precise_and_finds_the_waiting_screens(cli: str) -> None:
    s = score(cli)
    assert s.waiting and s.screens - s.waiting, (cli, "needs waiting and not-waiting screens")
    assert s.precision >= PRECISION and s.recall >= RECALL, (
        f"{cli}: precision {s.precision:.3f}, recall {s.recall:.3f}\n" + "\n".join(s.wrong)
    )
