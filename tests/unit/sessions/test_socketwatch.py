"""The supervisor's watch on its control socket's name: a removal of that name (or of its
folder) brings a look soon, a neighbour's does not, and with no inotify a slow look is the
fallback. Real inotify on a tmp folder; the loop and the control are stand-ins."""

from __future__ import annotations

import select
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from looop.sessions import socketwatch
from looop.sessions.socketwatch import RESYNC_S, SETTLE_S, SocketWatch


class Loop:
    """Records what the watch asks of its loop; the test runs the timers."""

    def __init__(self) -> None:
        self.readers: dict[int, Callable[[], object]] = {}
        self.timers: list[tuple[float, Callable[[], object]]] = []

    def add_reader(self, fd: int, fn: Callable[[], object]) -> None:
        self.readers[fd] = fn

    def remove_reader(self, fd: int) -> bool:
        return self.readers.pop(fd, None) is not None

    def call_later(self, delay: float, fn: Callable[[], object]) -> None:
        self.timers.append((delay, fn))

    def fire(self) -> None:
        """Serve the readers inotify has made ready (waiting at most a second for them)."""
        ready, _, _ = select.select(list(self.readers), [], [], 1.0)
        for fd in ready:
            self.readers[fd]()


class Control:
    def __init__(self, path: Path) -> None:
        self.sock_path: str | None = str(path)
        self.rebinds = 0

    def rebind_if_gone(self) -> bool:
        self.rebinds += 1
        Path(cast(str, self.sock_path)).parent.mkdir(exist_ok=True)
        return True


def _watch(tmp_path: Path, live: bool = True) -> tuple[SocketWatch, Loop, Control]:
    folder = tmp_path / "home"
    folder.mkdir()
    (folder / "mine.sock").write_text("")
    (folder / "other.sock").write_text("")
    loop, control = Loop(), Control(folder / "mine.sock")
    watch = SocketWatch(cast(Any, loop), cast(Any, control), lambda: live)
    watch.start()
    return watch, loop, control


def test_an_idle_watch_sets_no_timer_and_a_neighbour_s_removal_wakes_no_look(
    tmp_path: Path,
) -> None:
    watch, loop, _ = _watch(tmp_path)
    assert loop.timers == [] and len(loop.readers) == 1
    (tmp_path / "home" / "other.sock").unlink()
    loop.fire()
    assert loop.timers == []
    watch.close()


def test_the_name_removed_brings_a_look_soon_which_binds_again(tmp_path: Path) -> None:
    watch, loop, control = _watch(tmp_path)
    (tmp_path / "home" / "mine.sock").unlink()
    loop.fire()
    assert [d for d, _ in loop.timers] == [SETTLE_S]
    loop.timers.pop()[1]()
    assert control.rebinds == 1 and loop.timers == []  # watched again: still no timer
    watch.close()


def test_the_folder_removed_brings_a_look_and_the_new_folder_is_watched(tmp_path: Path) -> None:
    watch, loop, control = _watch(tmp_path)
    for f in (tmp_path / "home").iterdir():
        f.unlink()
    (tmp_path / "home").rmdir()
    loop.fire()
    assert [d for d, _ in loop.timers] == [SETTLE_S]  # one look for the whole wipe
    loop.timers.pop()[1]()
    assert control.rebinds == 1
    (tmp_path / "home" / "mine.sock").write_text("")
    (tmp_path / "home" / "mine.sock").unlink()  # the new folder is watched
    loop.fire()
    assert [d for d, _ in loop.timers] == [SETTLE_S]
    watch.close()


def test_a_finishing_session_binds_nothing_again(tmp_path: Path) -> None:
    watch, loop, control = _watch(tmp_path, live=False)
    (tmp_path / "home" / "mine.sock").unlink()
    loop.fire()
    loop.timers.pop()[1]()
    assert control.rebinds == 0 and loop.timers == []
    watch.close()


def test_with_no_inotify_a_slow_look_is_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(**_: object) -> None:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(socketwatch, "INotify", refused)
    _, loop, control = _watch(tmp_path)
    assert loop.readers == {} and [d for d, _ in loop.timers] == [RESYNC_S]
    loop.timers.pop()[1]()
    assert control.rebinds == 1 and [d for d, _ in loop.timers] == [RESYNC_S]
