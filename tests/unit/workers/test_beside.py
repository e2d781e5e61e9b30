"""A review's and a landing's git in the worktree runs beside their git in the repository
(workers/review.beside): its answer or its error reaches the caller, and no run of it is left
behind when the caller stops early."""

from __future__ import annotations

import threading

import pytest

from looop.home.errors import LooopError
from looop.workers.review import beside


def test_the_answer_comes_back_and_the_work_ran_on_another_thread() -> None:
    where: list[str] = []

    def work(a: int, b: int) -> int:
        where.append(threading.current_thread().name)
        return a + b

    with beside(work, 2, 3) as answer:
        assert answer() == 5
    assert where and where[0] != threading.current_thread().name


def test_its_error_is_raised_in_the_caller() -> None:
    def fails() -> None:
        raise LooopError("git status in /w: it failed")

    with pytest.raises(LooopError, match="it failed"), beside(fails) as answer:
        answer()


def test_a_caller_that_stops_early_waits_for_it() -> None:
    started, release = threading.Event(), threading.Event()
    done: list[bool] = []

    def slow() -> None:
        started.set()
        release.wait(10)
        done.append(True)

    def stop_early() -> None:
        with beside(slow):
            assert started.wait(10)
            threading.Timer(0.05, release.set).start()
            raise LooopError("the base moved")

    with pytest.raises(LooopError, match="base moved"):
        stop_early()
    assert done == [True]  # it had ended before the caller went on


def test_no_work_is_none_and_starts_no_thread() -> None:
    before = threading.active_count()
    with beside(None) as answer:
        assert threading.active_count() == before
        assert answer() is None
