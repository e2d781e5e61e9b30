"""The supervisor's watch on its control socket's name: a removal of that name (or of its
folder) brings a look soon that binds it again, a neighbour's binds nothing, an idle watch
sets no timer, and where the folder cannot be watched a slow look is the fallback. Real
dnotify (F_NOTIFY, SIGIO: blocked here and taken with sigtimedwait) on a tmp folder; the
loop and the control are stand-ins."""

from __future__ import annotations

import os
import select
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from looop.sessions.control import RESYNC_S, SETTLE_S, SocketWatch


@pytest.fixture(autouse=True)
def sigio_told() -> Iterator[int]:
    """SIGIO caught (its default would end pytest) and told on a pipe, as the loop is told."""
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    old_fd = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    old = signal.signal(signal.SIGIO, lambda *_: None)
    try:
        yield r
    finally:
        signal.signal(signal.SIGIO, old)
        signal.set_wakeup_fd(old_fd)
        os.close(r)
        os.close(w)


class Loop:
    """Records what the watch asks of its loop; the test runs the timers."""

    def __init__(self, told: int) -> None:
        self.told = told
        self.signals: dict[int, Callable[[], object]] = {}
        self.timers: list[tuple[float, Callable[[], object]]] = []

    def add_signal_handler(self, sig: int, fn: Callable[[], object]) -> None:
        self.signals[sig] = fn

    def call_later(self, delay: float, fn: Callable[[], object]) -> None:
        self.timers.append((delay, fn))

    def fire(self) -> None:
        """Run the handler of the SIGIO the kernel sent (waiting at most a second for it)."""
        ready, _, _ = select.select([self.told], [], [], 1.0)
        if ready and signal.SIGIO in os.read(self.told, 64):
            self.signals[signal.SIGIO]()


class Control:
    def __init__(self, path: Path) -> None:
        self.sock_path: str | None = str(path)
        self.rebinds = 0

    def rebind_if_gone(self) -> bool:
        path = Path(cast(str, self.sock_path))
        if path.exists():
            return False
        self.rebinds += 1
        path.parent.mkdir(exist_ok=True)
        path.write_text("")
        return True


def _watch(tmp_path: Path, told: int, live: bool = True) -> tuple[SocketWatch, Loop, Control]:
    folder = tmp_path / "home"
    folder.mkdir()
    (folder / "mine.sock").write_text("")
    (folder / "other.sock").write_text("")
    loop, control = Loop(told), Control(folder / "mine.sock")
    watch = SocketWatch(cast(Any, loop), cast(Any, control), lambda: live)
    watch.start()
    return watch, loop, control


def test_an_idle_watch_sets_no_timer_and_a_neighbour_s_removal_binds_nothing(
    tmp_path: Path, sigio_told: int
) -> None:
    watch, loop, control = _watch(tmp_path, sigio_told)
    assert loop.timers == [] and signal.SIGIO in loop.signals
    (tmp_path / "home" / "other.sock").unlink()
    loop.fire()
    loop.timers.pop()[1]()
    assert control.rebinds == 0 and loop.timers == []
    watch.unwatch()


def test_the_name_removed_brings_a_look_soon_which_binds_again(
    tmp_path: Path, sigio_told: int
) -> None:
    watch, loop, control = _watch(tmp_path, sigio_told)
    (tmp_path / "home" / "mine.sock").unlink()
    loop.fire()
    assert [d for d, _ in loop.timers] == [SETTLE_S]
    loop.timers.pop()[1]()
    assert control.rebinds == 1 and loop.timers == []  # watched again: still no timer
    watch.unwatch()


def test_the_folder_removed_brings_a_look_and_the_new_folder_is_watched(
    tmp_path: Path, sigio_told: int
) -> None:
    watch, loop, control = _watch(tmp_path, sigio_told)
    for f in (tmp_path / "home").iterdir():
        f.unlink()
    (tmp_path / "home").rmdir()
    loop.fire()
    assert [d for d, _ in loop.timers] == [SETTLE_S]  # one look for the whole wipe
    loop.timers.pop()[1]()
    assert control.rebinds == 1
    (tmp_path / "home" / "mine.sock").unlink()  # the new folder is watched
    loop.fire()
    assert [d for d, _ in loop.timers] == [SETTLE_S]
    watch.unwatch()


def test_a_finishing_session_binds_nothing_again(tmp_path: Path, sigio_told: int) -> None:
    watch, loop, control = _watch(tmp_path, sigio_told, live=False)
    (tmp_path / "home" / "mine.sock").unlink()
    loop.fire()
    loop.timers.pop()[1]()
    assert control.rebinds == 0 and loop.timers == []
    watch.unwatch()


def test_a_folder_that_cannot_be_watched_falls_back_to_a_slow_look(
    tmp_path: Path, sigio_told: int
) -> None:
    loop, control = Loop(sigio_told), Control(tmp_path / "missing" / "mine.sock")
    watch = SocketWatch(cast(Any, loop), cast(Any, control), lambda: True)
    watch.start()
    assert [d for d, _ in loop.timers] == [RESYNC_S]
    loop.timers.pop()[1]()  # bound again (its folder made): watched from now on
    assert control.rebinds == 1 and loop.timers == []
    (tmp_path / "missing" / "mine.sock").unlink()
    loop.fire()
    assert [d for d, _ in loop.timers] == [SETTLE_S]
    watch.unwatch()
