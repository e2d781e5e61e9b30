"""The gap of a worker's output.log that could not be written (sessions/outputnotes.Gap): tried
again after a backoff that doubles and stays bounded, then one line saying how many bytes
it lost and over what span."""

from __future__ import annotations

import pytest

from looop.sessions.outputnotes import RETRY_MAX_S, RETRY_S, Gap

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_failed_log_is_tried_again_after_a_bounded_doubling_wait() -> None:
    clock = Clock()
    gap = Gap(clock, clock)
    assert not gap.due()  # nothing lost: nothing to try
    gap.failed()
    waits = []
    for _ in range(10):
        start = clock.now
        while not gap.due():
            clock.now += 0.25
        waits.append(clock.now - start)
        gap.failed()  # the disk is still full
    assert waits[0] == RETRY_S and waits[1] == 2 * RETRY_S
    assert max(waits) == RETRY_MAX_S and waits[-1] == RETRY_MAX_S


def test_the_note_names_the_bytes_and_the_span_and_the_wait_starts_over() -> None:
    clock = Clock()
    gap = Gap(clock, clock)
    gap.failed()
    gap.lost += 300
    clock.now += 5
    gap.failed()  # the first failure's time is the gap's start
    gap.lost += 12
    clock.now += 70
    note = gap.said("output.log write failed: No space left on device")
    assert note == (
        "output.log lost 312 bytes of output between 2027-01-15T08:00:00Z and "
        "2027-01-15T08:01:15Z (output.log write failed: No space left on device)"
    )
    gap.closed()
    assert gap.since is None and gap.lost == 0 and not gap.due()
    gap.failed()
    clock.now += RETRY_S
    assert gap.due()  # back to the first wait
