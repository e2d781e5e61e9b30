"""A session's liveness read light: what `tell`, `claim` and `unclaim` ask of a session, with
no pathlib, re or enum, so those hot verbs stay near a bare interpreter's start.

The reads are state.py's own (it imports them from here): meta.json names the session,
status.json its state, and a live session's supervisor holds an flock on `lock`."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from typing import TYPE_CHECKING

from looop.home import store
from looop.home.errors import CorruptState, LooopError, nearest
from looop.home.hashing import fnv1a_64 as fnv1a_64  # the supervisor's name for its group
from looop.home.where import HOST_WORKERS, HOSTS, SESSIONS

if TYPE_CHECKING:
    from typing import Any

    from looop.home.store import AnyPath

    Obj = dict[str, Any]  # a JSON object as read
    Listing = list[Obj]  # list_light's answer: the sessions' light dicts

# The `state` strings of status.json (states.SessionState's values; a test holds them equal).
STATE_NAMES = ("starting", "running", "exited", "killed")
LIVE_NAMES = frozenset({"starting", "running"})

META = "meta.json"
STATUS = "status.json"
LOG = "output.log"
LOCK = "lock"
ENDED = "ended"  # empty; made after a final status.json, so a listing skips it at one stat
NOTE = "note"

_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
SOCKET_DIR = "/tmp"


class SessionError(LooopError):
    """A session problem the user can act on (one line)."""


def valid_id(sid: str) -> bool:
    """state.validate_id's rule: 1-64 letters, digits, '.', '_' or '-', not `.` or `..`."""
    return 0 < len(sid) <= 64 and _ID_CHARS.issuperset(sid) and sid not in (".", "..")


def check_id(sid: str) -> str:
    """`sid` when it is a valid session id, else SessionError saying what one looks like."""
    if not isinstance(sid, str) or not valid_id(sid):
        raise SessionError(f"invalid session id `{sid}`: use 1-64 letters, digits, '.', '_' or '-'")
    return sid


# -- control socket path (strings: the supervisor binds it without pathlib) -----------------


def socket_file(root: AnyPath, sid: str) -> str:
    """Short and private: `/tmp/looop-<uid>/<fnv64(root)>/<fnv64(id)>.sock` (< sun_path)."""
    base = os.path.join(SOCKET_DIR, f"looop-{os.geteuid()}")
    rooted = os.path.join(base, fnv1a_64(os.path.abspath(root).encode()))
    return os.path.join(rooted, f"{fnv1a_64(check_id(sid).encode())}.sock")


def ensure_private_dir(path: AnyPath) -> None:
    """Create (0700) or verify a directory we own that is not a symlink. Missing parents
    are made too (0700): a LOOOP_RUNTIME_DIR named before it exists."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), 0o700, exist_ok=True)
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as e:
            raise SessionError(
                f"cannot make {path}: {e.strerror} (make its folder or pick another)"
            ) from None
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise SessionError(f"{path} is not a directory (remove it so sessions can bind sockets)")
    if st.st_uid != os.geteuid():
        raise SessionError(f"{path} belongs to another user; remove it or fix its owner")
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)


def ensure_socket_file(root: AnyPath, sid: str) -> str:
    """The socket's path with its two private dirs made."""
    path = socket_file(root, sid)
    rooted = os.path.dirname(path)
    ensure_private_dir(os.path.dirname(rooted))
    ensure_private_dir(rooted)
    return path


def read_meta(sdir: AnyPath) -> dict[str, Any] | None:
    """meta.json, None when missing; CorruptState when present but unreadable."""
    path = os.path.join(sdir, META)
    meta = store.read_json_object(path)
    if meta is not None and not (
        isinstance(meta.get("id"), str) and isinstance(meta.get("cmd"), list)
    ):
        raise CorruptState(f"{path} lacks id/cmd; delete the session dir to reset")
    return meta


def read_status(sdir: AnyPath) -> dict[str, Any] | None:
    """status.json, None when missing or unreadable (writes are atomic, so that means absent)."""
    try:
        status = store.read_json_object(os.path.join(sdir, STATUS))
    except CorruptState:
        return None
    if status is None or status.get("state") not in STATE_NAMES:
        return None
    return status


def lock_held(sdir: AnyPath) -> bool:
    """True while a supervisor holds `lock`. A shared probe, so probes never block each other."""
    try:
        fd = os.open(os.path.join(sdir, LOCK), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as e:
        return e.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    finally:
        os.close(fd)
    return False


def no_session(data: AnyPath, sid: str) -> SessionError:
    near = nearest(sid, session_ids(str(data)), 2)
    hint = f"did you mean {' or '.join(f'`{n}`' for n in near)}? " if near else ""
    return SessionError(f"no worker or session `{sid}` — {hint}`looop ls` lists them")


def unreadable(sid: str, e: CorruptState) -> SessionError:
    return SessionError(f"session `{sid}` has unreadable state: {e}")


def live(data: str, sid: str) -> bool | None:
    """Whether session `sid` runs now, as get_session(data, sid).alive says it; None where
    get_session raises SessionError (a bad id, no such session, unreadable meta.json).
    An OSError get_session would raise (its note is not a file) comes out the same."""
    if not valid_id(sid):
        return None
    try:
        got = read_state(os.path.join(data, SESSIONS, sid))
    except CorruptState:
        return None
    return None if got is None else bool(got[2]["alive"])


def int_or_none(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def label(state: str, alive: bool, exit_code: int | None) -> str:
    """What a session's state reads as in a list: starting, running, dead, exit:N, killed."""
    if state in LIVE_NAMES:
        return state if alive else "dead"
    if state == "exited":
        return f"exit:{exit_code}" if exit_code is not None else "exited"
    return "killed"


def read_state(sdir: str, seen: Obj | None = None) -> tuple[Obj, Obj, Obj] | None:
    """(meta, status, load_light's dict) of the session in `sdir`: the one reading of a
    session's files that state.load_session builds on too; None without meta.json. `seen`:
    its status.json as the caller read it a moment before (read here when empty)."""
    meta = read_meta(sdir)
    if meta is None:
        return None
    status = seen or read_status(sdir) or {}
    state = str(status.get("state", "starting"))
    alive = state in LIVE_NAMES and lock_held(sdir)
    if state in LIVE_NAMES and not alive:
        # the supervisor may have written its end and let go of the lock between the two
        # reads: it writes before it lets go, so the status read after the lock is the truth
        status = read_status(sdir) or status
        state = str(status.get("state", state))
    exit_code = int_or_none(status.get("exit_code"))
    started = str(meta.get("started_at", ""))
    light = {
        "id": str(meta["id"]),
        "state": state,
        "alive": alive,
        "exit_code": exit_code,
        "label": label(state, alive, exit_code),
        "note": store.read_text(os.path.join(sdir, NOTE)),
        "started_at": started,
        "last_change": str(status.get("last_change", started)),
        "dir": sdir,
        "cwd": cwd if isinstance(cwd := meta.get("cwd"), str) else None,  # the web's branch
        "contain": meta.get("contain") if meta.get("contain") in ("cgroup", "sweep") else None,
        "limit": limit if (limit := status.get("limit")) in ("memory", "pids") else None,
        "prompt": status.get("prompt") if isinstance(status.get("prompt"), str) else None,
    }
    return meta, status, light


def load_light(sdir: str, seen: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """state.load_session's reading of one session as a dict of the fields `status` and `ls`
    show (id, state, alive, exit_code, label, note, started_at, last_change, dir, `prompt`: what
    its quiet screen asks, sessions/lifecycle); None without meta.json; CorruptState or OSError
    where load_session raises them."""
    got = read_state(sdir, seen)
    return None if got is None else got[2]


def get_light(data: str, sid: str) -> dict[str, Any]:
    """load_light of session `sid`, raising SessionError where state.get_session does (a bad
    id, no such session, unreadable state)."""
    sdir = os.path.join(data, SESSIONS, check_id(sid))
    try:
        s = load_light(sdir)
    except CorruptState as e:
        raise unreadable(sid, e) from e
    if s is None:
        raise no_session(data, sid)
    return s


def session_ids(data: str) -> list[str]:
    """The ids of the session dirs there are, live or not, from one listing ([] when there is
    no sessions dir yet; OSError when it cannot be listed)."""
    try:
        return [name for name in os.listdir(os.path.join(data, SESSIONS)) if valid_id(name)]
    except FileNotFoundError:
        return []


def worker_ids(data: str) -> list[str]:
    """session_ids and the ids of the home's records of its workers on hosts."""
    ids = session_ids(data)
    with contextlib.suppress(OSError):
        away = os.listdir(os.path.join(data, HOSTS, HOST_WORKERS))
        ids += [n[:-5] for n in away if n.endswith(".json") and valid_id(n[:-5])]
    return ids


def attempts_of(data: str, group: str) -> list[str]:
    """The attempts at one task, `<group>.1`, `<group>.2` … (a start with attempts), in order,
    here or on a host; [] when `group` is itself a worker."""
    ids = worker_ids(data)
    if group in ids:
        return []
    got = {s for s in ids if s.startswith(f"{group}.") and s[len(group) + 1 :].isdigit()}
    return sorted(got, key=lambda s: int(s[len(group) + 1 :]))


def list_light(
    data: str, live_only: bool = False, ids: list[str] | None = None
) -> list[dict[str, Any]]:
    """state.list_sessions as load_light dicts: newest last_change first, a session dir whose
    files cannot be read skipped. OSError when the sessions dir itself cannot be listed.
    `live_only`: the live sessions alone, a finished one passed over after one read (its
    status.json), so finished sessions kept for days cost `ls` next to nothing. `ids`: the
    caller's session_ids, when it listed them already."""
    out = []
    prefix = os.path.join(data, SESSIONS, "")  # joined once: `status` passes every id kept
    for name in session_ids(data) if ids is None else ids:
        sdir = prefix + name
        seen = live_status(sdir) if live_only else {}
        if seen is None:
            continue
        try:
            s = load_light(sdir, seen)  # its status.json read once
        except (CorruptState, OSError):
            continue
        if s is not None and (s["alive"] or not live_only):
            out.append(s)
    out.sort(key=lambda s: s["last_change"], reverse=True)
    return out


def _runs(sdir: str) -> bool:
    """Whether the session in `sdir` runs now, as load_session's `alive` says, from its status
    and lock alone: the beat asks this of every worker, so no meta.json is parsed (it only has
    to be there)."""
    return live_status(sdir) is not None and os.path.isfile(f"{sdir}/{META}") and lock_held(sdir)


def live_ids(data: str, but: str = "") -> list[str]:
    """The ids of the sessions that run now (`but` left out), sorted; [] with no sessions dir,
    OSError when it cannot be listed."""
    prefix = os.path.join(data, SESSIONS, "")
    return sorted(i for i in session_ids(data) if i != but and _runs(prefix + i))


def any_live(data: str, but: str = "") -> bool:
    """Whether any session but `but` runs now: the first found answers (the pulse's cadence)."""
    prefix = os.path.join(data, SESSIONS, "")
    return any(i != but and _runs(prefix + i) for i in session_ids(data))


def live_status(sdir: str) -> dict[str, Any] | None:
    """None only for a session whose status.json says it ended (a final state never comes
    back); else its status ({} when unreadable: anything but an end is read in full)."""
    try:
        os.stat(sdir + os.sep + ENDED)
        return None  # written after the final status (a new run of the id starts a new dir)
    except OSError:
        pass
    try:
        status = read_status(sdir) or {}
    except OSError:
        return {}
    return status if status.get("state", "starting") in LIVE_NAMES else None


def flag_note(data: str, sid: str, text: str | None) -> str:
    """Raise (`text`) or lower (None) a session's ⚑, its note, and say so; the sessions folder
    is touched too, as a pulse's listing reads a finished session again only once it changed."""
    note = os.path.join(data, SESSIONS, sid, NOTE)
    if text is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(note)
    else:
        os.makedirs(os.path.dirname(note), exist_ok=True)
        store.atomic_write(note, text)
    with contextlib.suppress(OSError):
        os.utime(os.path.dirname(os.path.dirname(note)))
    return f"unflagged {sid}" if text is None else f"⚑ {sid}: {text}"


def remove_tree(path: str, dir_fd: int | None = None) -> bool:
    """A folder and all in it removed, never through a link (one at `path` is left, as one
    that turns up inside while it runs); whether it is gone now. What cannot be removed is
    left, as shutil.rmtree's ignore_errors leaves it. Not shutil: its compression modules
    would load into every verb that removes a folder, ~3 ms. `dir_fd`: `path` is in it."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except OSError:
        return False
    try:
        with os.scandir(fd) as entries:
            inside = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
        for name, folder in inside:
            if folder:
                remove_tree(name, fd)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=fd)
    finally:
        os.close(fd)
    try:
        os.rmdir(path, dir_fd=dir_fd)
    except OSError:
        return False
    return True
