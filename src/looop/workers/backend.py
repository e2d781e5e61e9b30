"""Where a worker's session runs: one interface, several engines.

The pulse stays on one machine; a worker's session may run here (the PTY supervisor of
`sessions/`), on another host over SSH, or in a Kubernetes Job. Every session verb reaches a
worker through this interface, so `ls`, `shot`, `log`, `send`, `key`, `wait`, `kill`, a
pause and its going on, and the web view read the same for each. `LocalBackend` is the
first engine: a thin face over `sessions/client`, `sessions/state` and `sessions/hold`.

`reach` is three-valued on purpose: a host that dropped off the network is not a dead worker
(`unreachable`), and nothing is reaped or re-run on its account. What a face asked and could
not be done is said by its kind (workers/errors.py: `NoSuchWorker`, `WorkerOver`,
`HostUnreachable`, `Refused`), so no face asks where a worker runs to choose its answer.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from looop.home.clock import Clock
from looop.home.logfiles import output_at
from looop.home.stamps import utc_stamp_ms
from looop.sessions import client, hold
from looop.sessions.logs import log_tail, offset_at, read_log
from looop.sessions.state import (
    SessionError,
    get_session,
    mark_dead,
    session_dir,
    wait_code,
)
from looop.workers.errors import HostUnreachable, NoSuchWorker, Refused, Unreached, WorkerOver

if TYPE_CHECKING:  # a hint only
    from looop.core.context import Ctx
    from looop.home.store import AnyPath
    from looop.workers.review import Review

Reach = Literal["alive", "over", "unreachable"]
Say = Callable[[str], None]  # where a line of text goes
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Ways(Protocol[T_co]):
    """A worker's change as the home reviews, comments on, sends back and lands it, one way
    per engine (act/landing.py here, act/landfar.py on an SSH host or in a pod):
    they sit above this room, so each engine is handed all and takes its own (`change`)."""

    def here(self, sid: str) -> T_co: ...

    def host(self, sid: str, host: str) -> T_co: ...

    def pod(self, sid: str, backend: Any) -> T_co: ...


class Backend(Protocol):
    """One engine that runs worker sessions. Errors a user can cause are `SessionError`
    (one line), of a kind of `Unreached` where one fits (workers/errors.py); `reach` never
    raises for a session that is merely over."""

    kind: str  # "local", "ssh", "kubernetes"

    def reach(self, sid: str) -> Reach: ...

    def look(self, sid: str) -> Reach:
        """`reach` for a face that names a worker: one by no such id is `NoSuchWorker`."""

    def known(self, sid: str) -> None:
        """Nothing when the engine has worker `sid`, running or ended; else `NoSuchWorker`.
        No host is asked (a face opening on a worker, `looop watch ID`)."""

    def resize(self, sid: str, cols: int, rows: int) -> dict[str, Any]:
        """The worker's terminal made COLSxROWS (it sees SIGWINCH); an engine whose size is
        fixed refuses in one line (`Refused`)."""

    def detach(self, sid: str) -> dict[str, Any]:
        """Every terminal attached to the worker let go."""

    def attach(
        self, sid: str, passthrough: bool, env: Mapping[str, str], detach_keys: str = ""
    ) -> int:
        """This terminal on the worker until it detaches (0) or the worker ends (its code);
        `env`: this terminal's (its locale); `detach_keys`: docker's spelling (`ctrl-x,d`).
        An engine that cannot refuses in one line, naming the way that does reach it
        (`Refused`)."""

    def screen(self, sid: str, fmt: str = "plain", trim: bool = True) -> dict[str, Any]: ...

    def log(self, sid: str, since: int = 0, raw: bool = False) -> tuple[str, int]: ...

    def offset_at(self, sid: str, when: float) -> int:
        """Where the output since wall time `when` begins, as a `log` offset (a little before
        it; 0 when the worker's log starts later): `log --since 10m`."""
        ...

    def output(self, sid: str, since: int | None, most: int) -> tuple[int, int, bytes]:
        """Raw output for a terminal emulator (`looop watch`'s pane), by logical offsets:
        (where the bytes start, the end, the bytes) from `since` (None: only the last
        `most`), at most the last `most`. An engine whose log is not on this disk refuses
        in one line: its screen is asked for instead (`screen`)."""

    def send(self, sid: str, text: str | bytes, newline: bool = True) -> dict[str, Any]:
        """Type `text`; one ending in Enter (CR) has its Enter pressed once the text shows on
        the worker's screen (sessions/client.send, on whichever machine runs the worker)."""

    def key(self, sid: str, names: Sequence[str]) -> dict[str, Any]: ...

    def wait(self, sid: str, timeout_s: float | None) -> int: ...

    def kill(self, sid: str) -> dict[str, Any]: ...

    def restart(self, sid: str) -> dict[str, Any]: ...

    def exit_status(self, sid: str) -> int | None: ...

    def pause(self, sid: str) -> bool:
        """Freeze everything the worker runs until `go_on`; whether it was live. An engine
        that cannot freeze a worker refuses in one line (SessionError)."""

    def go_on(self, sid: str) -> bool:
        """Let a paused worker go on, all of it; whether it was live."""

    # the watching verbs (`log`, `log -f`, `expect`, `wait-idle`) and a kill's second look:
    # each engine answers them its own way (a disk here, polled reads away: workers/polled)

    def tail(self, sid: str, lines: int | None, raw: bool, grep: str | None) -> str: ...

    def follow(self, sid: str, since: int, raw: bool, out: Say, note: Say) -> int:
        """`log -f`: new text to `out` until the worker is over; its exit code. `note`: a
        read that failed and is tried again, said once."""

    def expect(self, sid: str, pattern: str, **how: Any) -> tuple[int, str | None, int]:
        """(0 matched | 1 the worker ended first | 124 timeout, the match, the offset). `how`:
        sessions/client.expect's since, from_now, screen, raw and timeout_s, every engine's."""

    def wait_idle(self, sid: str, settle_s: float, timeout_s: float | None) -> bool: ...

    def found_over(self, sid: str, err: SessionError) -> str | None:
        """After a kill refused with `err`: what a worker already over was found as (a
        level-triggered kill's success), None when it is not over or not known."""

    # the worker's change, read where its checkouts are (workers/review.py)

    def diff(self, sid: str) -> dict[str, Any]:
        """`looop worker diff`: {"id", "diff", "cut"}, the text bounded (review.MAX_DIFF); a
        worker with no checkout, or one whose git fails, refuses in one line (ChangeError)."""

    def review(self, sid: str) -> Review:
        """Its change as `looop review` reads it (commits, files, verify, rounds); refused
        in one line as `diff` is."""

    def change(self, sid: str, ways: Ways[T]) -> T:
        """This engine's way of `ways`: where worker `sid`'s change is read and landed."""


class LocalBackend:
    """Sessions on this machine: the PTY supervisors under `<data>/sessions/`."""

    kind = "local"

    def __init__(self, root: AnyPath, clock: Clock, ctx: Ctx | None = None) -> None:
        self.root = os.fspath(root)
        self.clock = clock
        self.ctx = ctx  # the home whose workers' changes it reads (diff, review)

    def reach(self, sid: str) -> Reach:
        try:
            s = get_session(self.root, sid)
        except SessionError:
            return "over"
        return "alive" if s.alive else "over"

    def look(self, sid: str) -> Reach:
        return "alive" if self._at(sid, get_session, self.root, sid).alive else "over"

    def known(self, sid: str) -> None:
        self._at(sid, get_session, self.root, sid)

    def _at(self, sid: str, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)`, a session's refusal said as its kind: no worker by that id, one that
        has ended, else as the session said it."""
        try:
            return fn(*args)
        except SessionError as e:
            kind = self._kind(sid, e)
            if kind is e:
                raise
            raise kind from e

    def _kind(self, sid: str, e: SessionError) -> SessionError:
        if isinstance(e, Unreached):
            return e
        try:
            if not os.path.exists(session_dir(self.root, sid)):
                return NoSuchWorker(str(e))
            alive = get_session(self.root, sid).alive
        except SessionError:
            return e  # a bad id, a record that does not read: as it said
        return e if alive else WorkerOver(str(e))

    def screen(self, sid: str, fmt: str = "plain", trim: bool = True) -> dict[str, Any]:
        return self._at(sid, client.screenshot, self.root, sid, fmt, trim)

    def log(self, sid: str, since: int = 0, raw: bool = False) -> tuple[str, int]:
        return self._at(sid, read_log, self.root, sid, since, raw)

    def offset_at(self, sid: str, when: float) -> int:
        return self._at(sid, offset_at, self.root, sid, when)

    def output(self, sid: str, since: int | None, most: int) -> tuple[int, int, bytes]:
        # a session gone reads as empty at 0: its pane sees a log replaced and starts over
        return output_at(session_dir(self.root, sid), since, most)

    def send(self, sid: str, text: str | bytes, newline: bool = True) -> dict[str, Any]:
        return self._at(sid, client.send, self.root, sid, text, newline)

    def key(self, sid: str, names: Sequence[str]) -> dict[str, Any]:
        return self._at(sid, client.send_keys, self.root, sid, names)

    def resize(self, sid: str, cols: int, rows: int) -> dict[str, Any]:
        return self._at(sid, client.resize, self.root, sid, cols, rows)

    def detach(self, sid: str) -> dict[str, Any]:
        return self._at(sid, client.detach, self.root, sid)

    def attach(
        self, sid: str, passthrough: bool, env: Mapping[str, str], detach_keys: str = ""
    ) -> int:
        # lazy: asyncio and termios, for an attach only (every other verb drives through here)
        from looop.sessions.attach import attach, utf8_locale

        self.look(sid)  # an unknown id in one line, before the terminal is taken
        return attach(
            self.root, sid, passthrough=passthrough, utf8=utf8_locale(env), detach_keys=detach_keys
        )

    def wait(self, sid: str, timeout_s: float | None) -> int:
        return self._at(sid, client.wait, self.root, sid, timeout_s, self.clock)

    def kill(self, sid: str) -> dict[str, Any]:
        return self._at(sid, client.kill, self.root, sid)

    def restart(self, sid: str) -> dict[str, Any]:
        return self._at(sid, client.restart, self.root, sid)

    def exit_status(self, sid: str) -> int | None:
        return wait_code(self._at(sid, get_session, self.root, sid))

    def pause(self, sid: str) -> bool:
        return hold.pause(self.root, sid)  # the whole run, its box's inside too

    def go_on(self, sid: str) -> bool:
        return hold.go_on(self.root, sid)

    def tail(self, sid: str, lines: int | None, raw: bool, grep: str | None) -> str:
        return self._at(sid, log_tail, self.root, sid, lines, raw, grep)

    def follow(self, sid: str, since: int, raw: bool, out: Say, note: Say) -> int:
        return self._at(sid, client.follow, self.root, sid, since, raw, out, self.clock)

    def expect(self, sid: str, pattern: str, **how: Any) -> tuple[int, str | None, int]:
        return client.expect(self.root, sid, pattern, clock=self.clock, **how)

    def wait_idle(self, sid: str, settle_s: float, timeout_s: float | None) -> bool:
        return self._at(sid, client.wait_idle, self.root, sid, settle_s, timeout_s, self.clock)

    def diff(self, sid: str) -> dict[str, Any]:
        return _change_readers()[0](self._ctx(sid), sid)

    def review(self, sid: str) -> Review:
        return _change_readers()[1](self._ctx(sid), sid)

    def change(self, sid: str, ways: Ways[T]) -> T:
        return ways.here(sid)

    def _ctx(self, sid: str) -> Ctx:
        if self.ctx is None:  # an engine made for sessions alone (a test's)
            raise Refused(f"worker {sid}'s change is not read by this engine")
        return self.ctx

    def found_over(self, sid: str, err: SessionError) -> str | None:
        try:
            s = get_session(self.root, sid)
        except SessionError:
            return None
        if s.alive:
            return None
        if s.supervisor_died:  # it never wrote its end: written now
            mark_dead(session_dir(self.root, sid), utc_stamp_ms(self.clock.now()))
            return f"worker {sid} was already dead (its supervisor had died)"
        if s.state == "killed":
            return f"worker {sid} had already been killed"
        return f"worker {sid} had already exited (code {s.exit_code})"


def live(b: Backend, sid: str) -> None:
    """Nothing when worker `sid` runs and its host answers; else why not, by its kind (no
    worker by that id, one that has ended, a host that does not answer)."""
    reach = b.look(sid)
    if reach == "unreachable":
        raise HostUnreachable("its host does not answer")
    if reach == "over":
        raise WorkerOver(f"worker {sid} is not running")


def _change_readers() -> tuple[Callable[[Ctx, str], dict[str, Any]], Callable[[Ctx, str], Review]]:
    """workers/review's diff and review readers: kill, send, shot and the beat's moves come to
    this module too, and read no change."""
    # lazy: git and the review's readers (~35 ms of imports), for a diff or a review only
    from looop.workers.review import diff_of, review_of

    return diff_of, review_of
