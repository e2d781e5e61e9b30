"""Inside the worker's container: `looop pod run` runs one session in the foreground.

The session is an ordinary supervised PTY session in the pod's own data dir (an emptyDir at
/looop), so `output.log`, `looop shot` and `looop send` inside the pod work as they do at
home. This process stays in front of it: it copies `output.log` to stdout as it grows (the
pod's log, which `kubectl logs` and the home's `log`/`shot` read), reaps what the container
hands to PID 1, turns SIGTERM (the Job deleted) into the session's own kill, and exits with
the session's `wait` code, which the cluster keeps as the container's exitCode.
"""

from __future__ import annotations

import base64
import contextlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from looop.core.context import Ctx
from looop.home import store
from looop.home.logfiles import open_view
from looop.remote.shim import script
from looop.sessions import client, spawner
from looop.sessions.state import SessionError, get_session, wait_code
from looop.workers.treerecord import Tree, git_in, load, save

READ_CHUNK = 256 * 1024


def contract_shim(root: Path, looop: str) -> Path:
    """`$LOOOP_BIN` inside the pod (remote/shim.py): the contract verbs go home to
    the web API when the pod has a way home (LOOOP_HOME_URL, LOOOP_HOME_TOKEN), the session's
    own verbs (flag, kill …) run on the pod's looop."""
    path = root / "bin" / "looop"
    path.parent.mkdir(parents=True, exist_ok=True)
    store.atomic_write(path, script(sys.executable, looop), 0o755)
    return path


def run(
    root: Path,
    sid: str,
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    size: tuple[int, int],
    out: BinaryIO,
    stopping: Callable[[], bool],
    pause: Callable[[float], None],
    max_pids: int = 0,
) -> int:
    """Start the session, follow its log to `out` until it is over and drained; its code.
    `stopping()` turns true on SIGTERM; `pause(s)` waits between reads (a signal cuts it).
    `max_pids`: the worker's process bound (the pod's worker_max_pids, the home's: its
    Job's env), held by RLIMIT_NPROC in a pod (core/limits); its memory and disk are the
    container's limits."""
    session = spawner.spawn(
        root,
        sid,
        list(argv),
        cwd=cwd,
        env=env,
        size=size,
        host_idle_s=0,
        bounds=(max_pids, 0),
    )
    offset = 0  # logical: the log rotates in the pod too (home/logfiles.py)
    killed = False
    while True:
        over = not get_session(root, sid).alive
        got = _copy(session.dir, offset, out)
        offset += got
        # as PID 1 a container's init collects every orphan; elsewhere only our children
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0] != 0:
                pass
        if over and got == 0:
            break
        if stopping() and not killed:
            killed = True
            with contextlib.suppress(SessionError):  # it ended meanwhile
                client.kill(root, sid)
        if got == 0:
            pause(0.05)
    code = wait_code(get_session(root, sid))
    return 137 if code is None else code & 0xFF


def _copy(sdir: str, offset: int, out: BinaryIO) -> int:
    """What the log holds from `offset` on (one chunk) to `out`; how far the offset moves
    (past bytes rotated away unread too: they are gone)."""
    with open_view(sdir, offset) as view:
        start = max(offset, view.start)
        data = view.read(start, READ_CHUNK)
    if data:
        out.write(data)
        out.flush()
    return start - offset + len(data)


def send(root: Path, sid: str, b64: str, newline: bool) -> dict[str, object]:
    """`looop pod send`: the exact bytes the home sent (base64), typed into the session."""
    try:
        data = base64.b64decode(b64.encode("ascii"), validate=True)
    except ValueError:
        raise SessionError("pod send: --b64 is not base64") from None
    return client.send(root, sid, data, newline)


# -- its checkouts, as the review and land code reads them

CHECKOUTS_ENV = "LOOOP_CHECKOUTS"  # the Job's folder names of several repos, in order


def _clone(ctx: Ctx, wid: str, path: str, part: str, parts: tuple[str, ...]) -> Tree | None:
    git = os.path.join(path, ".git")
    if not os.path.isdir(git):
        return None
    probe = Tree(wid, path, "", "", path, git, git, origin="?")
    facts = []
    for args in (
        ("symbolic-ref", "-q", "--short", "HEAD"),
        ("rev-parse", "--verify", "--quiet", "HEAD^{commit}"),
        ("remote", "get-url", "origin"),
    ):
        done = git_in(ctx.env, path, *args, tree=probe)
        if done.returncode != 0 or not done.stdout.strip():
            return None
        facts.append(done.stdout.strip())
    branch, base, url = facts
    return Tree(wid, path, branch, base, path, git, git, origin=url, part=part, parts=parts)


def record_checkouts(ctx: Ctx, wid: str, workdir: str, names: Sequence[str]) -> list[Tree]:
    """`looop pod run`, before its session starts: each clone the init containers made of
    worker `wid` (`workdir` the one repository's checkout, or, `names`: several, the folder
    holding each) recorded as a worker checkout record in the pod's own data dir — a clone
    (`origin` its URL), on the branch it was cloned on, its base the commit it stood at — so
    the pod's `looop pod change` reads the change with the code a worker at home is reviewed
    with (workers/review.py). Only where none is: a `pod run` begun again in the same pod keeps
    the first base; a clone git cannot read is left unrecorded (its review then says it has no
    checkout). What was recorded, in order."""
    if load(ctx, wid) is not None:
        return []
    parts = tuple(names) if len(names) > 1 else ()
    places = [(os.path.join(workdir, n), n) for n in parts] or [(workdir, "")]
    trees = [_clone(ctx, wid, path, part, parts if i == 0 else ()) for i, (path, part) in
             enumerate(places)]  # fmt: skip
    got = [t for t in trees if t is not None]
    if len(got) != len(trees):
        return []  # a change is never shown or landed half
    for tree in reversed(got):  # the first, which names the others, last
        save(ctx, tree)
    return got
