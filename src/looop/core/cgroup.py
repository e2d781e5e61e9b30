"""A cgroup per worker (or per sensor/run_shell run): every process it starts dies with it.

Membership of a cgroup is inherited at fork and no process can leave it by setsid, a double
fork, a new process group or a cleared environment — only by writing to cgroup files, which
is what an accident never does. So killing a group kills everything a run started.

Which kind, in order: cgroup v2 with `cgroup.kill` (pure v2 at /sys/fs/cgroup, or the hybrid
`unified` mount), else the v1 `freezer` hierarchy (freeze, SIGKILL every member, thaw), else
None and the caller falls back to its subreaper sweep. Groups live in a `looop` folder under
the cgroup of whoever makes them, or beside the group it already sits in when that is
looop's own (a worker that starts a worker, the pulse's sensors), so a kill of one never
reaches another. Only `os` (and `select`, a C module): the supervisor's start-up imports this.

A long-lived beat (the pulse) keeps its sensors' group between beats as its `Pen`, nested in
its own cgroup, and sits in it: moving a process costs the kernel a grace period (about 6 ms
on a quiet machine), twice a beat otherwise. It leaves the pen just before it spawns anything
else (an audit hook sees every spawn), and ends it only when a sensor left something in it.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
from signal import SIGKILL

BASE = "/sys/fs/cgroup"
FOLDER = "looop"
MARK = "LOOOP_CONTAIN"  # every run's marker (core/procs): f"{pid}.{random}.{n}"
PEN = "looop-pen"  # a pen's folder: f"{PEN}.{pid}", right under its owner's own cgroup
V2, V1 = "cgroup2", "cgroup1"
# the audit events of every way Python starts a process
_SPAWNED_BY = "subprocess.Popen os.posix_spawn os.posix_spawnp os.fork os.forkpty os.system"
SPAWNS = frozenset([*_SPAWNED_BY.split(), "os.exec", "os.spawn"])


def read(path: str) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        parts = []  # small reads: a big buffer would be pages a forked supervisor writes
        while chunk := os.read(fd, 4096):
            parts.append(chunk)
        return b"".join(parts).decode("ascii", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def write(path: str, text: str) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        os.write(fd, text.encode())
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def own_paths(proc_cgroup: str | None) -> tuple[str | None, str | None]:
    """(v2 path, v1 freezer path) of a process from its /proc/<pid>/cgroup text."""
    v2 = v1 = None
    for line in (proc_cgroup or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2 = parts[2]
        elif "freezer" in parts[1].split(","):
            v1 = parts[2]
    return v2, v1


def home_of(own: str) -> str:
    """Where a process lives for every purpose but its sensors: its pen's parent, if it sits
    in its pen."""
    head, _, last = own.rstrip("/").rpartition("/")
    return (head or "/") if last.startswith(PEN + ".") else own


def folder_for(own: str) -> str:
    """Where new groups go: the `looop` folder already above `own`, else one under it."""
    parts = [p for p in home_of(own).split("/") if p]
    if FOLDER in parts:
        parts = parts[: parts.index(FOLDER) + 1]
    else:
        parts.append(FOLDER)
    return "/" + "/".join(parts)


class Group:
    """One cgroup: `path` its folder, `home` the group its maker goes back to after a spawn."""

    def __init__(self, kind: str, path: str, home: str) -> None:
        self.kind = kind
        self.path = path
        self.home = home
        self.existed = False  # found, not made: a dead run's leftovers may be in it
        self.bounds: list[Group] = []  # v1 groups holding its pids and memory bounds (core/limits)
        # joined once, where it is made (the session host, before it forks)
        self.procs = os.path.join(path, "cgroup.procs")

    def enter(self) -> bool:
        """Move this process in (what it forks next is born inside); `leave` after."""
        for b in self.bounds:
            b.enter()
        return write(self.procs, "0")

    def leave(self) -> None:
        write(os.path.join(self.home, "cgroup.procs"), "0")
        for b in self.bounds:
            b.leave()

    def add(self, pid: int) -> bool:
        return write(self.procs, str(pid))

    def tree(self) -> list[str]:
        """This group's folder and every group below it (a pen in a session's group), parents
        first."""
        out, i = [self.path], 0
        while i < len(out):
            with contextlib.suppress(OSError), os.scandir(out[i]) as it:
                out.extend(e.path for e in it if e.is_dir(follow_symlinks=False))
            i += 1
        return out

    def pids(self) -> list[int]:
        """Every member, of this group and of the groups below it."""
        out: list[int] = []
        for folder in self.tree():
            text = read(os.path.join(folder, "cgroup.procs"))
            out.extend(int(p) for p in (text or "").split() if p.isdigit())
        return out

    def live(self) -> list[int]:
        """Members that have not exited yet (a zombie waits only for its parent)."""
        out = []
        for pid in self.pids():
            stat = read(f"/proc/{pid}/stat")
            if stat is not None and stat.rsplit(")", 1)[-1].split()[:1] not in (["Z"], ["X"]):
                out.append(pid)
        return out

    def kill(self) -> None:
        """SIGKILL every member, not waiting: `live()` says when they are gone."""
        if self.kind == V2 and write(os.path.join(self.path, "cgroup.kill"), "1"):
            return
        state = os.path.join(self.path, "freezer.state")
        frozen = self.kind == V1 and write(state, "FROZEN")  # no fork can race the kills
        for pid in self.pids():
            with contextlib.suppress(OSError):
                os.kill(pid, SIGKILL)
        if frozen:
            write(state, "THAWED")  # a frozen task dies of its SIGKILL only once thawed

    def remove(self) -> bool:
        """Remove the group, the groups below it first (and its bounds' groups)."""
        for folder in reversed([*self.tree(), *(b.path for b in self.bounds)]):
            try:
                os.rmdir(folder)
            except OSError:
                return False
        return True


def _mounts(base: str) -> list[tuple[str, str]]:
    """(kind, mount point) to try, best first."""
    out = []
    for kind, mnt, probe in (
        (V2, base, "cgroup.controllers"),
        (V2, base + "/unified", "cgroup.controllers"),
        (V1, base + "/freezer", "cgroup.procs"),
    ):
        if os.path.exists(os.path.join(mnt, probe)):
            out.append((kind, mnt))
    return out


def under(mnt: str, path: str) -> str:
    return mnt + path.rstrip("/") if path != "/" else mnt


def _places(proc_cgroup: str | None, base: str) -> list[tuple[str, str, str]]:
    """(kind, mount point, the process's path there) for each mount it has a path on, best
    first; `proc_cgroup` is its /proc/<pid>/cgroup text."""
    v2, v1 = own_paths(proc_cgroup)
    out = []
    for kind, mnt in _mounts(base):
        own = v2 if kind == V2 else v1
        if own is not None:
            out.append((kind, mnt, own))
    return out


def _killable(group: Group) -> bool:
    """Whether the kernel lets us kill the group whole: cgroup.kill (v2), or freeze (v1)."""
    needs = "cgroup.kill" if group.kind == V2 else "freezer.state"
    return os.path.exists(os.path.join(group.path, needs))


def make(name: str, base: str = BASE, self_cgroup: str | None = None) -> Group | None:
    """A fresh group `name` for this process's runs, or None where none can be made (no
    cgroupfs, no permission, v2 without cgroup.kill). `self_cgroup`: /proc/self/cgroup's
    text (read when None). A group of that name that exists already is taken as it is: the
    caller kills what is in it only once it knows no live run owns it."""
    if self_cgroup is None:
        self_cgroup = read("/proc/self/cgroup")
    for kind, mnt, own in _places(self_cgroup, base):
        home = under(mnt, home_of(own))
        folder = mnt + folder_for(own)
        path = os.path.join(folder, name)
        try:
            os.makedirs(folder, exist_ok=True)
            os.mkdir(path)
            existed = False
        except FileExistsError:
            existed = True
        except OSError:
            continue
        group = Group(kind, path, home)
        group.existed = existed
        if _killable(group):
            return group
        group.remove()
    return None


class Pen:
    """The sensors' group a beat keeps and sits in (see the module's doc): `enter` before its
    sensors' spawns, `others` once they ended, `close` at the end of its process. Whatever else
    the process spawns (no marker of its own runs in its environment) is born at home: the
    audit hook takes the process out of its pen first. Where no group can be made it is
    `broken` and the caller makes its own groups, as without one."""

    def __init__(self, base: str = BASE) -> None:
        self.base = base
        self.group: Group | None = None
        self.mnt = ""
        self.broken = False
        self.hooked = False
        self.mark = f"{os.getpid()}."  # how this process's runs' markers begin (core/procs)

    def enter(self) -> Group | None:
        """This process in the pen (made, or moved into, only when it is not already)."""
        if self.broken:
            return None
        own = read("/proc/self/cgroup")
        if self._inside(own):
            return self.group
        if self.group is None or not self.group.enter():  # made, or removed by another
            self.group = self._make(own)
            if self.group is None or not self.group.enter():
                self.broken = True
                return None
        self.hook()
        return self.group

    def hook(self) -> None:
        if not self.hooked:
            self.hooked = True
            sys.addaudithook(self._audit)

    def _make(self, own: str | None) -> Group | None:
        for kind, mnt, mine in _places(own, self.base):
            home = under(mnt, home_of(mine))
            path = f"{home}/{PEN}.{os.getpid()}"
            _sweep_dead(home, PEN + ".")  # once a pen: a pulse's
            _sweep_dead(mnt + folder_for(mine), "run-")
            try:
                os.mkdir(path)
            except FileExistsError:
                pass
            except OSError:
                continue
            group = Group(kind, path, home)
            if _killable(group):
                self.mnt = mnt
                return group
            group.remove()
        return None

    def _inside(self, own: str | None) -> bool:
        if self.group is None or own is None:
            return False
        v2, v1 = own_paths(own)
        mine = v2 if self.group.kind == V2 else v1
        return mine is not None and self.group.path == under(self.mnt, mine)

    def others(self) -> list[int]:
        """Live members but this process: what its runs left."""
        if self.group is None:
            return []
        me = os.getpid()
        return [p for p in self.group.live() if p != me]

    def leave(self) -> None:
        """Home, if this process sits in the pen."""
        if self.group is not None and self._inside(read("/proc/self/cgroup")):
            self.group.leave()

    def drop(self) -> Group | None:
        """Out of the pen for good (a run left something in it): the group, for the caller
        to kill and remove; the next `enter` makes a new one."""
        self.leave()
        group, self.group = self.group, None
        return group

    def close(self) -> None:
        """The end of its process: out, and the pen removed (unless something lives in it)."""
        group = self.drop()
        if group is not None:
            group.remove()

    def _audit(self, event: str, args: tuple[object, ...]) -> None:
        if event in SPAWNS and self.group is not None and not self._ours(event, args):
            self.leave()  # whatever this spawns is born at home, not among the sensors

    def _ours(self, event: str, args: tuple[object, ...]) -> bool:
        """Whether the spawn is one of this process's runs (its marker in the environment)."""
        where = 3 if event in ("subprocess.Popen", "os.spawn") else 2
        env = args[where] if len(args) > where and event != "os.system" else None
        try:
            mark = getattr(env, "get", lambda _k: None)(MARK)
        except Exception:  # an odd mapping: not ours, so out first
            return False
        return isinstance(mark, str) and mark.startswith(self.mark)


def _sweep_dead(folder: str, head: str) -> None:
    """Remove the empty groups named `head` + "<pid>." … of processes that are gone: a pen
    or a run group whose process was SIGKILLed inside it (nobody else removes those)."""
    try:
        with os.scandir(folder) as it:
            names = [e.name for e in it if e.name.startswith(head)]
    except OSError:
        return
    for name in names:
        pid = name[len(head) :].partition(".")[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            try:
                os.rmdir(os.path.join(folder, name))
            except OSError:
                pass  # not empty: what is in it is still alive


def escape(base: str = BASE, self_cgroup: str | None = None) -> None:
    """Leave a run's group for the `looop` folder above it: a supervisor or session host that
    a worker (or the pulse) started must not die when that worker's group is killed."""
    if self_cgroup is None:
        self_cgroup = read("/proc/self/cgroup")
    for _kind, mnt, own in _places(self_cgroup, base):
        parts = [p for p in home_of(own).split("/") if p]
        if FOLDER in parts[:-1]:
            write(mnt + folder_for(own) + "/cgroup.procs", "0")
    for line in (self_cgroup or "").splitlines():  # a worker's bounds too (core/limits)
        _n, names, own = [*line.split(":", 2), "", ""][:3]
        if names in ("pids", "memory") and FOLDER in own.split("/")[:-1]:
            write(f"{base}/{names}{folder_for(own)}/cgroup.procs", "0")


# v2 limits a group may carry; a run group looop made has none of them set
_LIMITS = ("memory.max", "memory.high", "memory.swap.max", "pids.max", "cpu.max", "io.max")


def _unlimited(path: str) -> bool:
    for name in _LIMITS:
        text = read(os.path.join(path, name))
        if text is not None and text.split()[:1] not in ([], ["max"]):
            return False
    return True


def in_own_run(caller: str | None, own: str | None, base: str = BASE) -> bool:
    """Whether a process whose /proc/<pid>/cgroup text is `caller` has exactly the cgroup
    limits of one whose text is `own`: every line the same, but for the v2 (or v1 freezer)
    line, which may name one of looop's run groups right inside the `looop` folder that
    `own`'s runs use — so a worker (the pulse) may ask a session host to start a supervisor
    — as long as neither that group nor the folder has a limit set."""
    if caller is None or own is None:
        return caller == own
    mine, theirs = own.splitlines(), caller.splitlines()
    if len(mine) != len(theirs):
        return False
    v2, v1 = own_paths(own)
    mounts = dict(_mounts(base))
    for a, b in zip(mine, theirs, strict=True):
        if a == b:
            continue
        head, _, path = b.partition(":")[2].partition(":")
        ohead, _, opath = a.partition(":")[2].partition(":")
        if head != ohead or a.partition(":")[0] != b.partition(":")[0]:
            return False
        kind = V2 if head == "" and a.startswith("0:") else V1 if "freezer" in head else None
        mine_path = v2 if kind == V2 else v1
        mnt = mounts.get(kind) if kind is not None else None
        if kind is None or mine_path is None or mine_path != opath or mnt is None:
            return False
        if home_of(path) != path:  # the caller sits in its pen: judged where it lives
            if kind == V2 and not _unlimited(mnt + path):
                return False
            path = home_of(path)
            if path == opath:
                continue
        folder = folder_for(mine_path)
        parent, _, name = path.rpartition("/")
        if parent != folder or not name or name in (".", ".."):
            return False
        if kind == V2 and not (_unlimited(mnt + folder) and _unlimited(mnt + path)):
            return False
    return True


def adopt(path: str, base: str = BASE) -> Group | None:
    """The group a dead supervisor recorded in its meta: only a folder inside a `looop`
    folder under a cgroup mount is believed (the file is the worker's to edit)."""
    real = os.path.realpath(path)
    for kind, mnt in _mounts(base):
        rel = real[len(mnt) :] if real.startswith(mnt + "/") else None
        if rel is None:
            continue
        parts = [p for p in rel.split("/") if p]
        if len(parts) >= 2 and parts[-2] == FOLDER and os.path.isdir(real):
            return Group(kind, real, mnt)
    return None


def end(group: Group, rounds: int = 400) -> int:
    """Kill a group whose supervisor is gone, wait (bounded: `rounds` of 5 ms) until it is
    empty and remove it; how many members outlived it."""
    for _ in range(rounds):
        if not group.live():
            break
        group.kill()
        _pause(0.005)
    left = len(group.live())
    if not left:
        group.remove()
    return left


def _pause(secs: float) -> None:
    select.select([], [], [], secs)
