"""The exit classifier and the bounded tail without processes; waiting and group ends with."""

from __future__ import annotations

import os
import select
import signal
import subprocess
from pathlib import Path

import pytest

from looop.core.proc import Exit, Kind, Tail, classify, end_group, spawn, wait_exit
from looop.home.clock import SystemClock

pytestmark = pytest.mark.process  # real processes: not make check's tier


@pytest.mark.parametrize(
    ("returncode", "kind", "code"),
    [
        (0, Kind.OK, 0),
        (1, Kind.EXIT, 1),
        (2, Kind.EXIT, 2),
        (125, Kind.EXIT, 125),
        (126, Kind.NOT_EXECUTABLE, 126),
        (127, Kind.NOT_FOUND, 127),
        (128, Kind.EXIT, 128),
        (255, Kind.EXIT, 255),
    ],
)
def test_an_exit_code_is_classified_by_its_number(returncode: int, kind: Kind, code: int) -> None:
    ended = classify(returncode)
    assert ended == Exit(kind, code, None)
    assert ended.ok is (kind is Kind.OK)
    assert ended.signal_name is None


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGSEGV, signal.SIGINT])
def test_death_by_signal_reads_as_the_shell_reports_it(sig: signal.Signals) -> None:
    ended = classify(-int(sig))
    assert ended.kind is Kind.SIGNAL
    assert ended.code == 128 + int(sig)  # what $? says in a shell
    assert ended.signal == int(sig)
    assert ended.signal_name == sig.name
    assert not ended.ok


def test_a_signal_the_os_does_not_name_is_still_a_signal() -> None:
    ended = classify(-99)
    assert (ended.kind, ended.code, ended.signal, ended.signal_name) == (Kind.SIGNAL, 227, 99, None)


def test_a_signal_exit_is_not_mistaken_for_a_plain_code() -> None:
    # exit 137 by hand and death by SIGKILL share the code, not the kind
    assert classify(137).kind is Kind.EXIT
    assert classify(-9).kind is Kind.SIGNAL
    assert classify(137).code == classify(-9).code


@pytest.mark.parametrize("returncode", [None, 0, 1, -9, -15, 127])
def test_why_looop_stopped_it_wins_over_how_it_died(returncode: int | None) -> None:
    assert classify(returncode, timed_out=True).kind is Kind.TIMEOUT
    assert classify(returncode, oversize=True).kind is Kind.OVERSIZE
    assert classify(returncode, lost=True).kind is Kind.LOST
    # a deadline that fired while a flood was being cut off is still a timeout
    assert classify(returncode, timed_out=True, oversize=True, lost=True).kind is Kind.TIMEOUT
    assert classify(returncode, oversize=True, lost=True).kind is Kind.OVERSIZE


def test_a_timeout_keeps_the_code_it_died_with() -> None:
    assert classify(-9, timed_out=True) == Exit(Kind.TIMEOUT, 137, 9)
    assert classify(None, timed_out=True) == Exit(Kind.TIMEOUT, None, None)


def test_a_run_never_seen_to_exit_is_lost() -> None:
    assert classify(None) == Exit(Kind.LOST, None, None)


def test_tail_keeps_exactly_the_last_bytes_and_counts_all() -> None:
    tail = Tail(10)
    sent = b""
    for i in range(200):
        chunk = f"<{i}>".encode()
        tail.add(chunk)
        sent += chunk
        assert tail.data() == sent[-10:]
    assert tail.seen == len(sent)
    assert len(tail.buf) <= 20  # bounded memory, whatever was sent


def test_tail_without_a_bound_keeps_everything_until_cleared() -> None:
    tail = Tail(None)
    for _ in range(100):
        tail.add(b"x" * 1000)
    assert tail.data() == b"x" * 100_000
    tail.clear()
    assert tail.data() == b""
    assert tail.seen == 100_000  # clearing forgets the bytes, not how many there were


def test_tail_text_is_the_last_chars_even_when_a_char_is_cut() -> None:
    tail = Tail(8)
    tail.add("aé€😀".encode())  # 1 + 2 + 3 + 4 bytes: the kept 8 start inside "é"
    assert tail.text(100) == "\ufffd€😀"
    assert tail.text(1) == "😀"


# ------------------------------------------------------------------ with real processes


def _spawn(script: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    return spawn(["bash", "-c", script], cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})


def _close(proc: subprocess.Popen[bytes]) -> None:
    for f in (proc.stdout, proc.stderr):
        if f is not None:
            f.close()


@pytest.mark.timeout(10)
def test_wait_exit_gives_up_at_the_deadline_and_never_reaps(tmp_path: Path) -> None:
    clock = SystemClock()
    proc = _spawn("exit 0", tmp_path)
    try:
        assert wait_exit(proc, clock.monotonic() + 5, clock)
        # still a zombie, so its pid (the group id) cannot be handed to anyone else
        assert proc.returncode is None
        assert os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        slow = _spawn("sleep 30", tmp_path)
        t0 = clock.monotonic()
        assert not wait_exit(slow, t0 + 0.3, clock)
        assert 0.25 <= clock.monotonic() - t0 < 3
        end_group(slow, 0.1, clock)
        _close(slow)
    finally:
        end_group(proc, 0.1, clock)
        _close(proc)
    assert proc.returncode == 0


@pytest.mark.timeout(10)
def test_end_group_ends_a_member_that_ignores_sigterm(tmp_path: Path) -> None:
    clock = SystemClock()
    proc = _spawn("(trap '' TERM; exec sleep 30) & echo $!; wait", tmp_path)
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    line = b""
    while not line.endswith(b"\n"):
        assert select.select([fd], [], [], 5)[0], "bash never said its child's pid"
        chunk = os.read(fd, 100)
        assert chunk
        line += chunk
    child = os.pidfd_open(int(line))  # readable once that child exits, whoever its parent
    try:
        t0 = clock.monotonic()
        end_group(proc, 0.5, clock)
        assert classify(proc.returncode).signal_name == "SIGTERM"  # bash itself obeyed
        # the member that shrugged off SIGTERM got SIGKILL once bash was gone
        assert select.select([child], [], [], 3)[0], "a member that ignored SIGTERM survived"
        assert clock.monotonic() - t0 < 3
    finally:
        os.close(child)
        _close(proc)
