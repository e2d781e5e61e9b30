"""Needs-input detection measured: the detector (workers/needsinput.judge with each CLI's
profile patterns) over the labelled corpus of real screens (tests/corpus/needs/: recorded
from the real claude, codex, pi, opencode and gemini against the scripted model server by
tests/realcli/record_needs.py, each labelled by a human before the detector looked).
Precision >= 99 % and recall >= 97 % per CLI; bench/bench_needs_corpus.py prints the table."""

from __future__ import annotations

import pytest

from tests.corpus.needs.score import CLIS, labels, score

PRECISION, RECALL = 0.99, 0.97
# pi asks before nothing (it has no approval prompt); every other CLI's corpus holds one
ASKS = {"claude", "codex", "opencode", "gemini"}


def test_the_corpus_holds_200_screens_of_every_kind() -> None:
    assert sum(len(labels(cli)) for cli in CLIS) >= 200
    for cli in CLIS:
        kinds = set(score(cli).kinds)
        want = {"idle", "busy", "error", "long-output"} | ({"approval"} if cli in ASKS else set())
        assert want <= kinds, (cli, sorted(want - kinds))


@pytest.mark.parametrize("cli", CLIS)
def test_the_detector_is_precise_and_finds_the_waiting_screens(cli: str) -> None:
    s = score(cli)
    assert s.waiting and s.screens - s.waiting, (cli, "needs waiting and not-waiting screens")
    assert s.precision >= PRECISION and s.recall >= RECALL, (
        f"{cli}: precision {s.precision:.3f}, recall {s.recall:.3f}\n" + "\n".join(s.wrong)
    )


@pytest.mark.parametrize("cli", CLIS)
def test_a_waiting_screen_is_said_for_what_it_is(cli: str) -> None:
    # an idle box under a long answer quoting a prompt is idle, not an approval
    assert score(cli).wrong == []
