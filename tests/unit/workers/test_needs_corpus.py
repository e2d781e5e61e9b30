"""Needs-input detection measured: the detector (workers/needsinput.judge with each CLI's
profile patterns) over the labelled corpus of real screens (tests/corpus/needs/: recorded
from the real claude, codex, pi, opencode and gemini against the scripted model server by
tests/realcli/record_needs.py, each labelled by a human before the detector looked).
Precision >= 99 % and recall >= 97 % per CLI; bench/bench_needs_corpus.py prints the table.
The custom screens (commands no profile knows, recorded by record_custom.py) are judged by
the rule every worker's quiet screen is judged by (home/screenrules.prompt)."""

from __future__ import annotations

import pytest

from looop.home.screenrules import prompt
from tests.corpus.needs.score import CLIS, CUSTOM, HERE, WAITS, labels, score

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


def test_the_generic_rule_finds_a_custom_cli_s_prompts_and_the_kernel_keeps_it_precise() -> None:
    s = score(CUSTOM)
    assert {"prompt", "busy", "shell"} <= set(s.kinds)
    assert s.precision >= PRECISION and s.recall >= 0.90, "\n".join(s.wrong)
    # a build log paused on `Linking:` reads as a prompt to the text alone: the kernel, which
    # sees no reader waiting on the terminal, is what keeps it out
    alone = score(CUSTOM, text_alone=True)
    assert alone.precision < s.precision
    assert any("Linking:" in w for w in alone.wrong)


@pytest.mark.parametrize("cli", CLIS)
def test_the_generic_rule_takes_no_cli_screen_for_a_prompt(cli: str) -> None:
    # a CLI worker's quiet screen is judged by it too: none of theirs may read as a prompt
    said = {n: prompt((HERE / cli / n).read_text(), None) for n in labels(cli)}
    assert [f"{n}: {v}" for n, v in said.items() if v and labels(cli)[n] not in WAITS] == []
