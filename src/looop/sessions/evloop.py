"""The supervisor's event loop: one thread, one `selectors.DefaultSelector`, nothing else.

A forked supervisor's memory is what it touches, so its loop is small on purpose (no
asyncio, no threads, no typing at runtime): readers and writers by fd, timers on a heap
(`call_later`, cancellable), `call_soon`, a monotonic `time()`, and signals through
`signal.set_wakeup_fd` on a non-blocking pipe, their handlers run on the loop, never inside
the signal handler.

On top sit the few awaitables the lifecycle and the control socket are written with: a
`Future`, a `Task` that drives a coroutine over futures, an `Event`, a `Lock`, `sleep` and
`within` (a bounded wait that never cancels what it waits for).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import sys
from collections import deque
from heapq import heappop, heappush
from time import monotonic
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Generator, Iterable

_IN, _OUT = selectors.EVENT_READ, selectors.EVENT_WRITE


def log(msg: str) -> None:
    """A line on the supervisor's stderr (`supervisor.err`)."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"looop-supervisor[{os.getpid()}]: {msg}\n")
        sys.stderr.flush()


def log_failure(msg: str, e: BaseException | None = None) -> None:
    """`log(msg)`, then `e` (else the exception being handled) as the interpreter prints an
    uncaught one: with its C printer (`sys.__excepthook__`), so a supervisor that fails loads
    no `traceback` (and its tokenize)."""
    log(msg)
    e = e if e is not None else sys.exception()
    if e is None:
        return
    with contextlib.suppress(OSError, ValueError):
        sys.__excepthook__(type(e), e, e.__traceback__)
        sys.stderr.flush()


class Cancelled(BaseException):
    """A task was cancelled (raised inside its coroutine at the await it was parked on)."""


class Handle:
    """A scheduled callback; `cancel` makes it a no-op."""

    __slots__ = ("args", "fn", "seq", "when")

    def __init__(self, when: float, seq: int, fn: Callable[..., object], args: tuple[Any, ...]):
        self.when = when
        self.seq = seq
        self.fn: Callable[..., object] | None = fn
        self.args = args

    def __lt__(self, other: Handle) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)

    def cancel(self) -> None:
        self.fn = None
        self.args = ()


def _ignore(signum: int, frame: object) -> None:
    """The Python-level handler of a loop signal: the wakeup fd carries it to the loop."""


class Loop:
    """One thread's loop. `run_until(fut)` runs it until `fut` is done."""

    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()
        self._readers: dict[int, Callable[[], object]] = {}
        self._writers: dict[int, Callable[[], object]] = {}
        self._ready: deque[Handle] = deque()
        self._timers: list[Handle] = []
        self._seq = 0
        self._signals: dict[int, Callable[[], object]] = {}
        self._saved: dict[int, Any] = {}
        self._wake_r = self._wake_w = -1
        self._old_wakeup = -1
        self.closed = False
        self.on_error: Callable[[str, BaseException], None] = log_failure

    # ---- time and callbacks
    @staticmethod
    def time() -> float:
        return monotonic()

    def call_soon(self, fn: Callable[..., object], *args: Any) -> Handle:
        self._seq += 1
        h = Handle(0.0, self._seq, fn, args)
        self._ready.append(h)
        return h

    def call_later(self, delay: float, fn: Callable[..., object], *args: Any) -> Handle:
        self._seq += 1
        h = Handle(monotonic() + max(0.0, delay), self._seq, fn, args)
        heappush(self._timers, h)
        return h

    # ---- fds
    def _watch(self, table: dict[int, Callable[[], object]], fd: int, fn: Any) -> bool:
        """Set (or, `fn` None, drop) `fd`'s callback in `table`; False when none was to drop."""
        if fn is not None:
            table[fd] = fn
        elif table.pop(fd, None) is None:
            return False
        mask = (_IN if fd in self._readers else 0) | (_OUT if fd in self._writers else 0)
        sel = self._sel
        with contextlib.suppress(KeyError):
            if sel.get_key(fd).events == mask:
                return True
            sel.unregister(fd)  # a closed fd's too: the kernel dropped it already
        if mask:
            sel.register(fd, mask)
        return True

    def add_reader(self, fd: int, fn: Callable[[], object]) -> None:
        self._watch(self._readers, fd, fn)

    def remove_reader(self, fd: int) -> bool:
        return self._watch(self._readers, fd, None)

    def add_writer(self, fd: int, fn: Callable[[], object]) -> None:
        self._watch(self._writers, fd, fn)

    def remove_writer(self, fd: int) -> bool:
        return self._watch(self._writers, fd, None)

    # ---- signals
    def add_signal_handler(self, sig: int, fn: Callable[[], object]) -> None:
        """Run `fn` on the loop whenever `sig` arrives (main thread only, as for asyncio)."""
        if self._wake_r < 0:
            self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            self._old_wakeup = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
            self.add_reader(self._wake_r, self._on_signals)
        if sig not in self._saved:
            self._saved[sig] = signal.signal(sig, _ignore)
        self._signals[sig] = fn

    def _on_signals(self) -> None:
        while True:
            try:
                data = os.read(self._wake_r, 256)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                return
            for signum in data:
                fn = self._signals.get(signum)
                if fn is not None:
                    self.call_soon(fn)

    # ---- running
    def _run_once(self) -> None:
        timers = self._timers
        while timers and timers[0].fn is None:
            heappop(timers)
        timeout: float | None = None
        if self._ready:
            timeout = 0.0
        elif timers:
            timeout = max(0.0, timers[0].when - monotonic())
        # hang-up and error wake readers and writers both: the callback finds out which
        for key, ev in self._sel.select(timeout):
            for flag, table in ((_IN, self._readers), (_OUT, self._writers)):
                fn = table.get(key.fd) if ev & flag else None
                if fn is not None:
                    self._ready.append(Handle(0.0, 0, fn, ()))
        now = monotonic()
        while timers and timers[0].when <= now:
            h = heappop(timers)
            if h.fn is not None:
                self._ready.append(h)
        # Only what is ready now: callbacks scheduled meanwhile wait for the next turn.
        for _ in range(len(self._ready)):
            h = self._ready.popleft()
            fn = h.fn
            if fn is None:
                continue
            try:
                fn(*h.args)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as e:
                self.on_error(f"callback {getattr(fn, '__qualname__', fn)!s} failed", e)

    def run_until(self, fut: Future) -> None:
        while not fut.done():
            self._run_once()

    def run_for(self, seconds: float) -> None:
        """Turn the loop for about `seconds` (tests)."""
        self.run_until(sleep(self, seconds))

    def close(self) -> None:
        """Restore the signal dispositions and close the loop's own descriptors."""
        if self.closed:
            return
        self.closed = True
        for sig, old in self._saved.items():
            with contextlib.suppress(OSError, ValueError, TypeError):
                signal.signal(sig, old)
        self._saved.clear()
        if self._wake_r >= 0:
            with contextlib.suppress(ValueError):
                signal.set_wakeup_fd(self._old_wakeup)
            for fd in (self._wake_r, self._wake_w):
                os.close(fd)
            self._wake_r = self._wake_w = -1
        self._sel.close()
        for h in self._ready:  # a task that never got to run: close it quietly
            owner = getattr(h.fn, "__self__", None)
            if isinstance(owner, Task) and not owner.done():
                owner.coro.close()
        self._ready.clear()
        self._timers.clear()

    # ---- awaitables
    def future(self) -> Future:
        return Future(self)

    def task(self, coro: Coroutine[Any, Any, Any]) -> Task:
        return Task(self, coro)

    def kept(self, coro: Coroutine[Any, Any, Any], tasks: set[Task], what: str) -> Task:
        """A task held in `tasks` while it runs; a failure logged as `what`'s."""
        t = Task(self, coro)
        tasks.add(t)

        def done(_f: Future) -> None:
            tasks.discard(t)
            exc = None if t.cancelled() else t.exception()
            if exc is not None:
                log(f"{what} failed: {exc!r}")

        t.add_done_callback(done)
        return t


class Future:
    """A result to come. Await it inside a `Task`; callbacks run on the loop."""

    __slots__ = ("_callbacks", "_result", "_state", "loop")

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self._state = 0  # 0 pending, 1 result, 2 exception, 3 cancelled
        self._result: Any = None
        self._callbacks: list[Callable[[Future], object]] = []

    def done(self) -> bool:
        return self._state != 0

    def cancelled(self) -> bool:
        return self._state == 3

    def result(self) -> Any:
        if self._state == 1:
            return self._result
        if self._state == 2:
            raise self._result
        if self._state == 3:
            raise Cancelled()
        raise RuntimeError("the result is not ready")

    def exception(self) -> BaseException | None:
        return self._result if self._state == 2 else None

    def _settle(self, state: int, value: Any) -> None:
        if self._state:
            return
        self._state, self._result = state, value
        callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            self.loop.call_soon(fn, self)

    def set_result(self, value: Any) -> None:
        self._settle(1, value)

    def cancel(self) -> bool:
        if self._state:
            return False
        self._settle(3, None)
        return True

    def add_done_callback(self, fn: Callable[[Future], object]) -> None:
        if self._state:
            self.loop.call_soon(fn, self)
        else:
            self._callbacks.append(fn)

    def remove_done_callback(self, fn: Callable[[Future], object]) -> None:
        self._callbacks = [f for f in self._callbacks if f is not fn]

    def __await__(self) -> Generator[Future, None, Any]:
        if not self._state:
            yield self
        return self.result()


class Task(Future):
    """Drives a coroutine: each future it awaits wakes it when done."""

    __slots__ = ("_cancelling", "_waiting", "coro")

    def __init__(self, loop: Loop, coro: Coroutine[Any, Any, Any]) -> None:
        super().__init__(loop)
        self.coro = coro
        self._waiting: Future | None = None
        self._cancelling = False
        loop.call_soon(self._step, None)

    def _step(self, exc: BaseException | None) -> None:
        if self._state:
            return
        if self._cancelling:
            self._cancelling = False
            exc = Cancelled()
        try:
            fut = self.coro.throw(exc) if exc is not None else self.coro.send(None)
        except StopIteration as stop:
            self.set_result(stop.value)
        except Cancelled:
            self._settle(3, None)
        except BaseException as e:
            self._settle(2, e)
        else:
            if not isinstance(fut, Future):
                self.loop.call_soon(self._step, RuntimeError(f"a task awaited {fut!r}"))
                return
            self._waiting = fut
            fut.add_done_callback(self._wake)

    def _wake(self, fut: Future) -> None:
        if fut is not self._waiting:  # a cancel detached the task from it meanwhile
            return
        self._waiting = None
        state = fut._state
        self._step(fut._result if state == 2 else Cancelled() if state == 3 else None)

    def _cancel_now(self) -> None:
        if self._state or not self._cancelling:
            return  # it ended, or the cancel was thrown in already
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting.remove_done_callback(self._wake)
        self._step(None)

    def cancel(self) -> bool:
        """Throw `Cancelled` into the coroutine where it waits. What it awaited is left
        alone (it may be shared: a child's exit, the session's end)."""
        if self._state:
            return False
        self._cancelling = True
        self.loop.call_soon(self._cancel_now)
        return True


class Event:
    """Set once (or again after `clear`); `wait()` is a future done when it is set."""

    __slots__ = ("_set", "_waiters", "loop")

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self._set = False
        self._waiters: list[Future] = []

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if self._set:
            return
        self._set = True
        waiters, self._waiters = self._waiters, []
        for f in waiters:
            f.set_result(True)

    def clear(self) -> None:
        self._set = False

    def wait(self) -> Future:
        f = Future(self.loop)
        if self._set:
            f.set_result(True)
        else:
            self._waiters.append(f)
        return f


class Lock:
    """One holder at a time; the others wait in order (`async with lock:`)."""

    __slots__ = ("_waiters", "locked", "loop")

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self.locked = False
        self._waiters: deque[Future] = deque()

    async def __aenter__(self) -> None:
        if not self.locked:
            self.locked = True
            return
        f = Future(self.loop)
        self._waiters.append(f)
        try:
            await f
        except Cancelled:
            if f.cancel():  # still queued: release() skips it now
                raise
            self._release()  # it was handed the lock meanwhile: pass it on
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._release()

    def _release(self) -> None:
        while self._waiters:
            f = self._waiters.popleft()
            if not f.done():
                f.set_result(None)  # the lock passes straight to the next waiter
                return
        self.locked = False


def sleep(loop: Loop, seconds: float) -> Future:
    f = Future(loop)
    h = loop.call_later(seconds, f.set_result, None)
    f.add_done_callback(lambda _f: h.cancel())
    return f


def within(loop: Loop, futs: Future | Iterable[Future], seconds: float | None) -> Future:
    """A future that is True once every one of `futs` is done, or False after `seconds` (None:
    never). What it waits for is never cancelled (a shared result stays shared)."""
    pending = [futs] if isinstance(futs, Future) else [f for f in futs]
    out = Future(loop)
    left = [sum(1 for f in pending if not f.done())]
    if not left[0]:
        out.set_result(True)
        return out

    def one(_f: Future) -> None:
        left[0] -= 1
        if left[0] <= 0:
            out.set_result(True)

    for f in pending:
        if not f.done():
            f.add_done_callback(one)
    if seconds is not None:
        timer = loop.call_later(seconds, out.set_result, False)
        out.add_done_callback(lambda _f: timer.cancel())
    return out
