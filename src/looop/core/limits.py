"""A worker's bounds the kernel keeps (how many processes, how much memory) and a worker paused
whole.

A worker's run group (core/cgroup) is where it is killed whole; the bounds live beside it:
on cgroup v1 in groups of the same name in the `pids` and `memory` hierarchies, which the
supervisor enters with the run group for the spawn, so the child is born inside all of them;
on cgroup v2 in the run group itself, where its parent has the controllers enabled. A bound
no hierarchy can hold is named, so the caller says once that it is not enforced. Where no
cgroup holds the process bound (a user who is not root: an SSH host's, a pod's), the run is
born under RLIMIT_NPROC instead (`nproc_bound`): the kernel refuses a fork once its user runs
what it ran at the start plus the bound (threads count, as in a pids cgroup).

A worker is paused whole by freezing its run group (cgroup.freeze on v2, freezer.state on
v1): every process in it stops, however it left its process group or session (a sandbox's
inner agent runs in bubblewrap's new session, which a SIGSTOP of the group never reached).
Only `os` and `resource`: the supervisor's start-up imports this.
"""

from __future__ import annotations

import os
import resource

from looop.core import cgroup

PIDS, MEMORY = "pids", "memory"
# v1 files: the limit, and where the kernel counts what it did at it (and that count's key)
_V1 = {PIDS: ("pids.max", "pids.events"), MEMORY: ("memory.limit_in_bytes", "memory.oom_control")}
_V2 = {PIDS: ("pids.max", "pids.events"), MEMORY: ("memory.max", "memory.events")}
_HIT = {PIDS: "max", MEMORY: "oom_kill"}  # a fork refused, a process killed


def _v1_place(controller: str, proc_cgroup: str, base: str) -> tuple[str, str] | None:
    """(mount point, this process's path there) of a v1 hierarchy holding `controller`."""
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3 or controller not in parts[1].split(","):
            continue
        mnt = os.path.join(base, parts[1])
        if os.path.exists(os.path.join(mnt, "cgroup.procs")):
            return mnt, parts[2]
    return None


def _v1_group(name: str, controller: str, proc_cgroup: str, base: str) -> cgroup.Group | None:
    """A group `name` in the v1 hierarchy of `controller`, in the `looop` folder there (a
    supervisor left any worker's bounds first: cgroup.escape)."""
    place = _v1_place(controller, proc_cgroup, base)
    if place is None:
        return None
    mnt, own = place
    folder = mnt + cgroup.folder_for(own)
    path = os.path.join(folder, name)
    try:
        os.makedirs(folder, exist_ok=True)
        os.mkdir(path)
    except FileExistsError:
        pass
    except OSError:
        return None
    return cgroup.Group(cgroup.V1, path, cgroup.under(mnt, own))


def bound(
    group: cgroup.Group | None,
    name: str,
    pids: int,
    memory: int,
    base: str = cgroup.BASE,
    proc_cgroup: str | None = None,
) -> list[str]:
    """Bound the run group `group` (made for the worker `name`) to `pids` processes and
    `memory` bytes (0: no bound); the ones no cgroup could hold ([] when all are kept)."""
    if proc_cgroup is None:
        proc_cgroup = cgroup.read("/proc/self/cgroup") or ""
    want = [(c, n) for c, n in ((PIDS, pids), (MEMORY, memory)) if n > 0]
    if group is None:
        return [c for c, _ in want]
    missed = []
    for controller, n in want:
        if group.kind == cgroup.V2 and cgroup.write(
            os.path.join(group.path, _V2[controller][0]), str(n)
        ):
            continue
        extra = _v1_group(name, controller, proc_cgroup, base)
        if extra is None or not _limit_v1(extra.path, controller, n):
            if extra is not None:
                extra.remove()
            missed.append(controller)
            continue
        group.bounds.append(extra)
    return missed


def _limit_v1(path: str, controller: str, n: int) -> bool:
    if not cgroup.write(os.path.join(path, _V1[controller][0]), str(n)):
        return False
    if controller == MEMORY:  # where swap is counted, it is bounded too (never below the limit)
        cgroup.write(os.path.join(path, "memory.memsw.limit_in_bytes"), str(n))
    return True


def hits(group: cgroup.Group, controller: str) -> int:
    """How often the kernel held the group at a bound: processes killed for memory, forks
    refused for processes (v2: the run group's own files; v1: its bound groups')."""
    total = 0
    files = [os.path.join(group.path, _V2[controller][1])] if group.kind == cgroup.V2 else []
    files += [os.path.join(b.path, _V1[controller][1]) for b in group.bounds]
    for path in files:
        for line in (cgroup.read(path) or "").splitlines():
            key, _, value = line.partition(" ")
            if key == _HIT[controller] and value.strip().isdigit():
                total += int(value)
    return total


def freeze(group: cgroup.Group, on: bool) -> bool:
    """Freeze (`on`) or thaw every process of the group, whichever way it was started; False
    where the group cannot be frozen (the caller signals the process tree instead)."""
    if group.kind == cgroup.V2:
        return cgroup.write(os.path.join(group.path, "cgroup.freeze"), "1" if on else "0")
    return cgroup.write(os.path.join(group.path, "freezer.state"), "FROZEN" if on else "THAWED")


def frozen(group: cgroup.Group) -> bool:
    """Whether the group is frozen (or freezing) now."""
    if group.kind == cgroup.V2:
        return (cgroup.read(os.path.join(group.path, "cgroup.freeze")) or "").strip() == "1"
    state = (cgroup.read(os.path.join(group.path, "freezer.state")) or "").strip()
    return state in ("FROZEN", "FREEZING")


def enforceable(pids: int, memory: int, base: str = cgroup.BASE) -> list[str]:
    """The bounds neither a cgroup nor (processes, for a user not root) RLIMIT_NPROC could
    hold here, from a probe group made and removed at once."""
    group = cgroup.make(f"probe-{os.getpid()}", base)
    try:
        missed = bound(group, f"probe-{os.getpid()}", pids, memory, base)
        return [m for m in missed if m != PIDS or os.getuid() == 0]
    finally:
        if group is not None:
            group.remove()


def user_tasks(uid: int) -> int:
    """How many tasks (threads) processes of real user `uid` run now, as RLIMIT_NPROC counts
    them (only those this process can see: a PID namespace hides the rest)."""
    total = 0
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return 0
    for pid in pids:
        real, threads = -1, 1
        for line in (cgroup.read(f"/proc/{pid}/status") or "").splitlines():
            key, _, value = line.partition(":")
            words = value.split()
            if key == "Uid" and words and words[0].isdigit():
                real = int(words[0])
            elif key == "Threads" and value.strip().isdigit():
                threads = int(value)
        if real == uid:
            total += threads
    return total


def nproc_bound(pids: int) -> int | None:
    """Bound what this process spawns next to `pids` more tasks than its user runs now
    (RLIMIT_NPROC's soft limit, the hard one kept); the soft limit it had, for
    `nproc_restore` once the spawn is done (this process's own threads are never held by
    its run's bound). None where it holds nothing (root passes it by)."""
    uid = os.getuid()
    if pids <= 0 or uid == 0:
        return None
    want = user_tasks(uid) + pids
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
        if hard != resource.RLIM_INFINITY and hard < want:
            want = hard  # as near as the host lets it be
        resource.setrlimit(resource.RLIMIT_NPROC, (want, hard))
    except (OSError, ValueError):
        return None
    return soft


def nproc_restore(soft: int) -> None:
    try:
        _, hard = resource.getrlimit(resource.RLIMIT_NPROC)
        resource.setrlimit(resource.RLIMIT_NPROC, (soft, hard))
    except (OSError, ValueError):
        pass


def nproc_full(pid: int) -> bool:
    """Whether the run `pid` (born under nproc_bound) is at its process bound now: its user
    runs as many tasks as its soft RLIMIT_NPROC, so its next fork fails."""
    soft = None
    for line in (cgroup.read(f"/proc/{pid}/limits") or "").splitlines():
        if line.startswith("Max processes"):
            word = line[len("Max processes") :].split()[:1]
            soft = int(word[0]) if word and word[0].isdigit() else None
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return False
    return soft is not None and user_tasks(uid) >= soft


def _pids_group_full(folder: str) -> bool | None:
    """A pids group's word: as many tasks in it as pids.max allows, so its next fork fails
    (not pids.events' count of refused forks: it never goes down once a flood ended); None
    where the group holds no process bound."""
    most = (cgroup.read(os.path.join(folder, "pids.max")) or "").strip()
    if not most.isdigit():
        return None
    now = (cgroup.read(os.path.join(folder, "pids.current")) or "").strip()
    return now.isdigit() and int(now) >= int(most)


def pids_full(pid: int, base: str = cgroup.BASE) -> bool:
    """Whether the run `pid` is at its process bound now, however it is held: the pids group
    it was born in (v1 or v2), else its RLIMIT_NPROC (nproc_full)."""
    for line in (cgroup.read(f"/proc/{pid}/cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3 or parts[2] in ("", "/"):
            continue
        if parts[1] == "":  # v2: the unified mount, at the base or beside the v1 ones
            folders = [base + parts[2], os.path.join(base, "unified") + parts[2]]
        elif PIDS in parts[1].split(","):
            folders = [os.path.join(base, parts[1]) + parts[2]]
        else:
            continue
        for folder in folders:
            said = _pids_group_full(folder)
            if said is not None:
                return said
    return nproc_full(pid)
