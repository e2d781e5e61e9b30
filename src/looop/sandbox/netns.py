"""Listening sockets made inside a running box's network namespace, from outside it: how a
filter started anew (sandbox/netfilter.py) takes back the proxy ports of the boxes its dead
predecessor served, without anything in the box.

A forked child joins the user namespace that owns the box's network namespace (bubblewrap made
it as this user, so this user holds every capability in it), then the network namespace,
makes the listeners and passes them back over a socket pair. The child exits at once: the
caller's own namespaces never change."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
import socket

from looop.sandbox.netjoin import listen

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
NS_GET_USERNS = 0xB701  # _IO(0xb7, 0x1): the user namespace that owns a namespace
CHILD_TIMEOUT_S = 10.0


def own_net() -> int:
    return os.stat("/proc/self/ns/net").st_ino


def box_pid(mark: str, lines: dict[int, bytes], ours: int) -> int | None:
    """A process of the box whose command lines carry `mark` (bubblewrap's --setenv of its
    credentials) that is inside the box's network, not ours (`ours`: our namespace's inode)."""
    want = mark.encode("utf-8", "surrogateescape")
    for pid, line in sorted(lines.items()):
        if want not in line:
            continue
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino != ours:
                return pid
        except OSError:
            continue
    return None


def listen_in(pid: int, ports: list[int]) -> list[socket.socket]:
    """Sockets listening on `ports` in the network namespace of `pid`. Raises OSError."""
    here, there = socket.socketpair()
    with here, there:
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the forked child, which never returns
            here.close()
            _child(there, pid, ports)
        there.close()
        here.settimeout(CHILD_TIMEOUT_S)
        try:
            msg, fds, _, _ = socket.recv_fds(here, 512, len(ports))
        except OSError:
            os.kill(child, signal.SIGKILL)  # it said nothing in time: it ends here
            raise
        finally:
            os.waitpid(child, 0)
    socks = [socket.socket(fileno=fd) for fd in fds]
    if msg != b"ok" or len(socks) != len(ports):
        for s in socks:
            s.close()
        raise OSError(msg.decode("utf-8", "replace") or "the namespace helper said nothing")
    return socks


def _child(back: socket.socket, pid: int, ports: list[int]) -> None:
    code = 1
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        net = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        user = fcntl.ioctl(net, NS_GET_USERNS)
        steps = [(user, CLONE_NEWUSER, "user"), (net, CLONE_NEWNET, "network")]
        if os.fstat(user).st_ino == os.stat("/proc/self/ns/user").st_ino:
            steps = steps[1:]  # owned by ours (no user namespace of its own): not re-entered
        for fd, kind, name in steps:
            if libc.setns(fd, kind) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"cannot enter the box's {name} namespace: {os.strerror(err)}")
        socks = [listen(p) for p in ports]
        socket.send_fds(back, [b"ok"], [s.fileno() for s in socks])
        code = 0
    except BaseException as e:  # the child reports anything, then exits
        with contextlib.suppress(OSError):
            back.sendall(str(e).encode("utf-8", "replace")[:400])
    finally:
        os._exit(code)
