"""A worker's wait on a human's answer (`looop ask`), apart from the mailbox itself: only the
ask waits, so only it loads the watching (inotify) that wakes it; `looop answer`, a web
answer and a beat's read of the asks do not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from looop.core.watching import Watcher
from looop.home.clock import Clock
from looop.human.mailbox import archive, read_answer
from looop.human.tellbox import take_tells

RESYNC_S = 30.0  # a watched answer's wait still reads it this often (a missed wake)


def await_answer(
    asks: Path,
    answers: Path,
    tells: Path,
    ask_id: str,
    worker: str,
    clock: Clock,
    poll_s: float,
    timeout_s: float | None,
    said: Callable[[str], object] | None = None,
) -> tuple[str, list[str]] | None:
    """Block until the human answers `ask_id`: (answer, queued tells for the worker), the ask
    archived; None when timeout_s passes first. The answer is a file another process writes:
    inotify on the answers folder wakes this the moment it lands (core/watching.py); poll_s
    is the fallback where nothing can be watched. `said` hears, once, that the answer on file
    is unreadable (the wait goes on)."""
    deadline = clock.monotonic() + timeout_s if timeout_s else None
    told_broken = False
    with Watcher() as watcher:

        def arm() -> bool:
            # before each read: an answer landing between the read and the wait still wakes;
            # again once a folder came (answers/ made by the first answer): its files anew
            watcher.forget()
            # no answers/ yet (this home's first answer makes it): its making is watched in
            # the data dir, which marks the watches stale, and the answer's name anew above
            seen = watcher.watch(str(answers / f"{ask_id}.json")) or watcher.watch(str(answers))
            # the ask archived or removed unanswered
            return watcher.watch(str(asks / f"{ask_id}.json")) and seen

        step = max(poll_s, RESYNC_S) if arm() else poll_s  # watched: the poll is a resync only
        while True:
            if watcher.stale:
                arm()
            text = read_answer(asks, answers, ask_id)
            if text is None and said is not None and not told_broken:
                # there now yet unread: landed since the read, or unreadable if a read says so
                if (answers / f"{ask_id}.json").exists():
                    text = read_answer(asks, answers, ask_id)
                    told_broken = text is None
                if told_broken:
                    said(
                        f"the answer to {ask_id} on file (answers/{ask_id}.json) is unreadable: "
                        f"still waiting; `looop answer {ask_id} --force …` replaces it"
                    )
            if text is not None:
                archive(asks, ask_id)
                return text, take_tells(tells, worker)  # queued steering rides along
            left = None if deadline is None else deadline - clock.monotonic()
            if left is not None and left <= 0:
                return None
            watcher.wait(step if left is None else min(step, left))
