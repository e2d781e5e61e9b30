"""The home's network filter process (`python -m looop.sandbox.netfilter`): looop's filtering proxy
(sandbox/netproxy.py) served on the home's unix socket (bound again if the runtime dir is
emptied: the filter is found, and kept single, by its abstract name), and on every box's own
proxy ports, which each box hands over as its first step (sandbox/netjoin.py) so that no relay
stays in the box. It forgets the boxes that ended (their records, and their ports with them)
and exits once none is left and no connection came for its idle time, or its home is
removed."""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable

from looop.core.proctitle import show_role
from looop.home.peers import holder, peer
from looop.sandbox import netns
from looop.sandbox.door import HomeDoor
from looop.sandbox.netboxes import Boxes, command_lines
from looop.sandbox.netproxy import Busy, Door, find_box, handle

MAX_OPEN = 1024  # connections served at once, every box of the home together
MAX_JOIN_PORTS = 4  # a box hands over its HTTP and SOCKS ports
SWEEP_S = 5.0
GRACE_S = 60.0


class Ports:
    """The boxes' own proxy ports, listening in each box's network and handed over by the box
    (sandbox/netjoin.py): the filter accepts on them itself, so no relay stays in a box. Changed
    from any thread; the accepting thread applies the changes."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.held: dict[str, list[socket.socket]] = {}
        self.todo: list[tuple[bool, socket.socket]] = []  # (accept on it, the socket)
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_w.setblocking(False)
        self.closed = False
        self.own: list[socket.socket] = []  # the filter's socket bound anew (Addresses)

    def listen_also(self, sock: socket.socket) -> None:
        """Accept on `sock` too, as on the filter's own socket (bound anew after a wipe)."""
        with self.lock:
            self.own.append(sock)
            self.todo.append((True, sock))
        self._wake()

    def hold(self, user: str, socks: list[socket.socket]) -> None:
        with self.lock:
            old = self.held.pop(user, [])
            self.held[user] = socks
            self.todo += [(False, s) for s in old] + [(True, s) for s in socks]
        self._wake()

    def drop(self, user: str) -> None:
        with self.lock:
            self.todo += [(False, s) for s in self.held.pop(user, [])]
        self._wake()

    def close(self) -> None:
        """Have `serve` return (and close the ports it holds): a listener is never closed
        under the thread accepting on it, which could then accept on whatever socket takes
        the freed descriptor number next."""
        with self.lock:
            self.closed = True
        self._wake()

    def holding(self) -> list[socket.socket]:
        with self.lock:
            return [s for socks in self.held.values() for s in socks]

    def accepting(self) -> list[socket.socket]:
        """What a serve started anew accepts on: the boxes' ports and the filter's own."""
        with self.lock:
            return [*self.own, *(s for socks in self.held.values() for s in socks)]

    def users(self) -> list[str]:
        with self.lock:
            return list(self.held)

    def owner(self, sock: socket.socket) -> str:
        """The box whose own port `sock` is ("": the filter's socket)."""
        with self.lock:
            return next((u for u, socks in self.held.items() if sock in socks), "")

    def _wake(self) -> None:
        try:
            self.wake_w.send(b"x")
        except BlockingIOError:
            pass  # a wake-up is pending already

    def changes(self) -> list[tuple[bool, socket.socket]]:
        with self.lock:
            todo, self.todo = self.todo, []
        return todo


def serve(
    listener: socket.socket,
    boxes: Boxes,
    busy: Busy | None = None,
    most: int = MAX_OPEN,
    ports: Ports | None = None,
    door: Door | None = None,
    name: socket.socket | None = None,
    knocked: Callable[[], str] | None = None,
) -> None:
    """Accept on `listener` (and on the boxes' ports, where a connection speaks for that box
    only, whatever credentials it shows) until it is closed: a thread per
    connection, at most `most` at once (one box opening thousands must not starve the home's
    other boxes of threads: past the bound a connection is closed at once, as a full backlog
    would refuse it). On `name` (the filter's abstract name) only this user's knock is
    answered: `knocked()` says whether the filter serves on its socket."""
    slots = threading.BoundedSemaphore(most)
    ports = ports or Ports()
    mine = [listener, ports.wake_r] + ([name] if name is not None else [])
    sel = _watch(selectors.DefaultSelector(), [(True, p) for p in mine + ports.accepting()])

    def hello(conn: socket.socket) -> str:
        return join(conn, boxes, ports)

    def run(conn: socket.socket, knock: bool, bound: str) -> None:
        try:
            if knock:
                answer(conn, knocked or (lambda: "ok"))
            else:
                handle(conn, boxes, busy=busy, hello=hello, door=door, bound=bound)
        finally:
            slots.release()

    while True:
        for key, _ in sel.select():
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if sock is ports.wake_r:
                sock.recv(4096)
                _watch(sel, ports.changes())
                if ports.closed:
                    _watch(sel, [(False, p) for p in ports.holding()])
                    return
                continue
            if sock.fileno() < 0 and sock is not listener:
                continue  # a box's port closed by a change applied in this same round
            try:
                conn, _ = sock.accept()
            except BlockingIOError:
                continue  # the client went before we took it
            except OSError:
                if sock is listener:
                    return
                sel.unregister(sock)  # a box's port that broke: its connections fail alone
                continue
            if not slots.acquire(blocking=False):
                conn.close()
                continue
            args = (conn, sock is name, ports.owner(sock))
            threading.Thread(target=run, args=args, daemon=True).start()


KNOCK = b"?"  # on the filter's name: "do you serve on your socket?"


def answer(conn: socket.socket, knocked: Callable[[], str]) -> None:
    """A knock on the filter's name: "ok" once it serves on its socket, else why not; only to
    this user (an abstract name has no permissions), anything else closed unanswered."""
    try:
        conn.settimeout(5)
        if peer(conn)[1] == os.geteuid() and conn.recv(1) == KNOCK:
            conn.sendall(knocked().encode("utf-8", "replace") + b"\n")
    except OSError:
        pass
    finally:
        conn.close()


def _watch(
    sel: selectors.BaseSelector, changes: list[tuple[bool, socket.socket]]
) -> selectors.BaseSelector:
    """Accept on the ports added (a serve started anew after a fault: every port held), no
    longer on those dropped (closed here)."""
    registered = {k.fileobj for k in sel.get_map().values()}
    for add, port in changes:
        if add and port.fileno() >= 0 and port not in registered:
            port.setblocking(False)
            sel.register(port, selectors.EVENT_READ)
            registered.add(port)
        elif not add:
            try:
                sel.unregister(port)
            except (KeyError, ValueError):
                pass  # never accepted on (held and dropped at once), or broke
            port.close()
    return sel


def join(conn: socket.socket, boxes: Boxes, ports: Ports) -> str:
    """A box handing over its listening ports (sandbox/netjoin.py): "ok" once they are held, else
    why not. Only sockets that listen for TCP, on the ports named, from a registered box."""
    conn.recv(1)  # the HELLO
    data, socks = b"", []
    try:
        while b"\n" not in data and len(data) <= 1024:
            got, fds, _, _ = socket.recv_fds(conn, 1024, MAX_JOIN_PORTS + 1)
            for fd in fds:
                try:
                    socks.append(socket.socket(fileno=fd))
                except OSError:
                    os.close(fd)  # not a socket: refused below, as a count that differs
            if not got:
                break
            data += got
        words = data.decode("utf-8", "replace").split()
        why = _join_refusal(words, socks, boxes)
        if why is None:
            ports.hold(words[0], socks)
            socks = []
            try:
                boxes.joined(words[0], [int(w) for w in words[2:]])
            except OSError as e:  # served all the same; only a filter started anew loses them
                sys.stderr.write(f"looop-netfilter: cannot note a box's ports: {e}\n")
            return "ok"
        return why
    finally:
        for s in socks:
            s.close()


def _join_refusal(words: list[str], socks: list[socket.socket], boxes: Boxes) -> str | None:
    if len(words) < 3 or not all(w.isdigit() for w in words[2:]):
        return "not a box's ports: USER TOKEN PORT... with the listening sockets"
    if find_box(boxes, words[0], words[1]) is None:
        return "no such box"
    if len(words) - 2 != len(socks) or len(socks) > MAX_JOIN_PORTS:
        return f"{len(words) - 2} ports named, {len(socks)} sockets given"
    for word, s in zip(words[2:], socks, strict=True):
        listens = s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        if s.family not in (socket.AF_INET, socket.AF_INET6) or s.type != socket.SOCK_STREAM:
            return f"port {word}: not a TCP socket"
        if not listens or s.getsockname()[1] != int(word):
            return f"port {word}: not a socket listening on it"
    return None


def reclaim(boxes: Boxes, ports: Ports, lines: dict[int, bytes]) -> int:
    """Listen again on the ports of every box still running that handed its ports to a filter
    before this one (which died: they closed with it); the number taken back. A box that
    cannot be entered stays without network until it is started again."""
    ours, taken = netns.own_net(), 0
    for rec in boxes.joins():
        user, mark, want = rec["user"], str(rec.get("mark") or ""), rec["ports"]
        if user in ports.users() or not isinstance(want, list):
            continue
        pid = netns.box_pid(mark, lines, ours) if mark else None
        if pid is None or not all(isinstance(p, int) and 0 < p < 65536 for p in want):
            continue
        try:
            ports.hold(user, netns.listen_in(pid, want))
        except OSError as e:
            sys.stderr.write(f"looop-netfilter: box {mark[:12]}…: {e}\n")
            continue
        taken += 1
    return taken


class Addresses:
    """Where the filter listens. Its name (an abstract unix name: no file, so a tmp cleaner
    cannot take it) keeps it single and answers this user's knock; its socket (a path: a box
    binds it in its own network namespace, where no abstract name of ours reaches) is bound
    again when the runtime dir was emptied under it."""

    def __init__(self, path: str, ports: Ports) -> None:
        self.path, self.ports = path, ports
        self.lock = threading.Lock()
        self.ident: tuple[int, int] | None = None  # (st_dev, st_ino) of the socket we bound

    def bind(self) -> socket.socket:
        """The socket at `path`, listening (whatever was there before is gone: no filter of
        this home serves but this one, its name says so)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(self.path)
        sock.listen(128)
        st = os.stat(self.path)
        self.ident = (st.st_dev, st.st_ino)
        return sock

    def ours(self) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self.ident

    def serving(self) -> str:
        """ "ok" once the filter's socket is there (bound again when it went), else why not."""
        with self.lock:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                return self._again()
            except OSError as e:
                return f"no: {self.path}: {e.strerror}"
            if (st.st_dev, st.st_ino) == self.ident:
                return "ok"
            return f"no: {self.path} is not the filter's socket: remove it"  # nor ours to take

    def _again(self) -> str:
        folder = os.path.dirname(self.path)
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
        except OSError as e:
            return f"no: cannot make {folder}: {e.strerror}"
        st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
            return f"no: {folder} is not a private directory of this user"
        try:
            self.ports.listen_also(self.bind())
        except OSError as e:
            return f"no: cannot listen on {self.path}: {e.strerror}"
        return "ok"


def take_name(name: str) -> tuple[socket.socket | None, bool]:
    """The filter's abstract name, listening, and whether another filter of this user holds it
    (that one serves: this one leaves). Another user's squat is said, and the filter serves
    without its name (found by its socket, as before names)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    for _ in range(40):
        try:
            sock.bind("\0" + name[1:])
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise
            if holder("\0" + name[1:]) is not None:
                sock.close()
                return None, True
            time.sleep(0.05)  # bound, not yet listening (it starts), or another user's
            continue
        sock.listen(16)
        return sock, False
    sock.close()
    sys.stderr.write(f"looop-netfilter: another user holds {name}; serving without it\n")
    return None, False


def main(argv: list[str]) -> int:
    """`python -m looop.sandbox.netfilter SOCKET BOXES IDLE_S [@NAME] [--ready-fd N]`, run in the
    home's data dir: serve until no box is left and no connection came for IDLE_S, or the
    data dir is removed, or TERM. NAME: its abstract name (`@` for the leading NUL)."""
    ready = -1
    if len(argv) >= 2 and argv[-2] == "--ready-fd":
        ready = int(argv[-1])
        argv = argv[:-2]
    if len(argv) not in (3, 4) or (len(argv) == 4 and not argv[3].startswith("@")):
        sys.stderr.write("usage: python -m looop.sandbox.netfilter SOCKET BOXES IDLE_S [@NAME]\n")
        return 2
    path, root, idle_arg = argv[:3]
    # looop's own: the sweep of a run's supervisor that adopts it (it was started from a box's
    # launcher) spares it by this name, as it spares the hosts
    show_role(f"looop: network filter {path}", "looop-netfilter")
    named, elsewhere = take_name(argv[3]) if len(argv) == 4 else (None, False)
    if elsewhere:
        _ready(ready)  # another filter of this home serves
        return 0
    ports = Ports()
    addresses = Addresses(path, ports)
    listener = addresses.bind()
    boxes = Boxes(root)
    reclaim(boxes, ports, command_lines())  # before any thread: it forks
    busy = Busy(time.monotonic())
    door = HomeDoor(os.getcwd(), dict(os.environ), boxes.speaking)
    args = (listener, boxes, busy, MAX_OPEN, ports, door, named, addresses.serving)
    server = threading.Thread(target=serve, args=args, daemon=True)
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    _ready(ready)
    while not stop.wait(SWEEP_S):
        if os.stat(".").st_nlink == 0:
            break  # its home (the data dir it runs in) is gone: no box of it starts again
        if not server.is_alive():  # a fault of ours: the boxes keep their ports, served anew
            server = threading.Thread(target=serve, args=args, daemon=True)
            server.start()
        addresses.serving()  # its socket back first, then its boxes' records beside it
        if _sweep(boxes, ports) == 0 and _quiet(busy, max(1.0, float(idle_arg))):
            break
    if addresses.ours():
        os.unlink(path)  # never another's: a filter started after a wipe may be serving there
    ports.close()
    server.join(5)
    listener.close()
    return 0


def _quiet(busy: Busy, idle_s: float) -> bool:
    with busy.lock:
        return busy.open == 0 and time.monotonic() - busy.last > idle_s


def _ready(fd: int) -> None:
    if fd >= 0:
        os.write(fd, b"ok\n")
        os.close(fd)


def _sweep(boxes: Boxes, ports: Ports) -> int:
    """Forget the boxes that ended, and their ports with them; the number left."""
    lines = [line.decode("latin-1") for line in command_lines().values()]
    left = boxes.sweep(lines, time.time(), GRACE_S)
    for user in ports.users():
        if boxes.record(user) is None:
            ports.drop(user)  # its box ended: its network goes with it
    return left


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
