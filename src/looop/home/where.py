"""Where the data dir and the config file are: the one rule, on plain strings.

Paths.resolve wraps these in pathlib; the hot verbs use the strings as they are (pathlib alone
costs them ~10 ms). The strings are spelled as pathlib spells them, so a message naming a file
reads the same on either path.

And every spelling by which this machine reaches one folder (below): a bind mount is a second
path to the same inode, as a symlink is. The data dir is named by one spelling everywhere (its
runtime keys, its locks and sockets, the sandbox's walls), and a box's walls deny every other
spelling a bind mount gives it (sandbox/srt.py)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from looop.home.errors import LooopError

if TYPE_CHECKING:
    from collections.abc import Mapping


def _nonempty(env: Mapping[str, str], key: str) -> str | None:
    v = env.get(key, "")
    return v if v.strip() else None


def norm(path: str) -> str:
    """`str(PurePosixPath(path))`: repeated slashes and `.` parts dropped, `..` kept."""
    if not path:
        return "."
    root = ""
    if path.startswith("/"):
        root = "//" if path.startswith("//") and not path.startswith("///") else "/"
    parts = [p for p in path.split("/") if p and p != "."]
    return (root + "/".join(parts)) or "."


def join(base: str, name: str) -> str:
    """`str(PurePosixPath(base) / name)` for a normalised base and a normalised relative name."""
    if name == ".":
        return base
    if base == ".":
        return name
    return base + name if base.endswith("/") else base + "/" + name


def expand(path: str, home: str | None) -> str | None:
    """`~` and `~/…` under `home` (None: no home to put them under); any other path as it is."""
    if path == "~" or path.startswith("~/"):
        if not home:
            return None
        return os.path.join(home, path[2:]) if path != "~" else home
    return path


def _absolute(path: str, cwd: str) -> str:
    path = norm(os.path.expanduser(path))
    return path if path.startswith("/") else join(norm(cwd), path)


def resolve(env: Mapping[str, str], cwd: str) -> tuple[str, str]:
    """(data dir, config file): $LOOOP_DATA_DIR, else ${XDG_STATE_HOME:-~/.local/state}/looop;
    $LOOOP_CONFIG, else config.json in the data dir; relative ones taken from cwd. A data dir
    with no config.json yet reads the seed era's `${XDG_CONFIG_HOME:-~/.config}/looop.json` or
    v1.0's `~/.config/looop/config.json` when one is there (`status` names the file).
    Both by their one spelling (`canonical`, below): a symlink or a bind mount to a home is
    that home, for its locks, its runtime keys and its sandbox's walls."""
    raw = _nonempty(env, "LOOOP_DATA_DIR")
    if raw is None:
        state = _nonempty(env, "XDG_STATE_HOME")
        if state is None:
            home = _nonempty(env, "HOME")
            if home is None:
                raise LooopError("HOME is not set: set LOOOP_DATA_DIR to choose a data dir")
            state = join(norm(home), ".local/state")
        raw = join(norm(state), "looop")
    data = canonical(_absolute(raw, cwd))
    cfg = _nonempty(env, "LOOOP_CONFIG")
    config = canonical(_absolute(cfg, cwd)) if cfg else join(data, "config.json")
    if not cfg and not os.path.exists(config):
        config = _earlier_config(env) or config
    return data, config


def _earlier_config(env: Mapping[str, str]) -> str | None:
    """A config an earlier looop wrote outside the data dir, if one is there."""
    home = _nonempty(env, "HOME")
    xdg = _nonempty(env, "XDG_CONFIG_HOME") or (join(norm(home), ".config") if home else None)
    if xdg is None:
        return None
    for name in ("looop.json", "looop/config.json"):
        path = join(norm(xdg), name)
        if os.path.isfile(path):
            return path
    return None


def runtime_base(env: Mapping[str, str]) -> str:
    """Where looop's preloaded hosts keep their private dir: `$LOOOP_RUNTIME_DIR` (absolute),
    else /tmp. A test run or a second install sets it so it never shares a host with yours."""
    base = env.get("LOOOP_RUNTIME_DIR") or "/tmp"
    if not base.startswith("/"):
        raise LooopError(f"LOOOP_RUNTIME_DIR={base!r} is not absolute: give an absolute path")
    return base


def runtime_dir(base: str) -> str:
    """This user's private dir (0700) for the sockets of looop's preloaded hosts."""
    return join(base, f"looop-{os.geteuid()}")


# The data dir's layout, spelled once: Paths (home/paths.py) builds its paths from these, and
# a hot verb that stays on strings joins them (`join(data, SESSIONS)`); no module spells one by
# hand (tests/unit/test_layout.py)
SESSIONS = "sessions"  # <data>/sessions/<id>: one folder per session (the pulse's too)
HOSTS = "hosts"  # <data>/hosts: registered hosts; hosts/workers/<id>.json: workers away
HOST_WORKERS = "workers"  # under HOSTS: the home's record of each worker it started away
LOCKS = ".lock"  # <data>/.lock: the pulse's lock, pid and the small state locks
CLAIMS = "claims"
ASKS = "asks"
ANSWERS = "answers"
TELLS = "tells"
GOALS = "goals"
SNAPSHOTS = "snapshots"
SCHEDULES = "schedules"
SCHEDULE_MARKS = ".schedule-marks.json"
VERIFY = "verify"
REPORTS = "reports"
PROMPTS = "prompts"
EVENTS = "events.jsonl"
JOURNAL = "journal.md"
PLAYBOOK = "PLAYBOOK.md"
COST_LEDGER = "cost.jsonl"
COST_UNMETERED = ".cost-unmetered"
DECIDE_LEDGER = ".decide-ledger.json"
DECISION = ".decision.json"
GITIGNORE = ".gitignore"
PORTS = "ports"  # <data>/ports/<port>: the worker whose $LOOOP_PORT it is (workers/ports)
REVIEWS = "reviews"  # <data>/reviews/<id>.json its comment rounds; <id>.land.json: a proposal
WORKTREES = "worktrees"  # <data>/worktrees: repo workers' checkouts and their records
SANDBOX = "sandbox"  # <data>/sandbox/<id>: a sandboxed worker's (or +tick's, +run_shell's) own
SANDBOX_SETTINGS = "srt.json"  # a sandboxed start writes <data>/sandbox/<id>/srt.json
USAGE_WINDOWS = ".usage-windows.json"  # accounts at their usage limit (home/usagewindows)
USAGE_HELD = "scheduled"  # a start held for its account's reset: scheduled/<id>.json
PROVIDER_LIMIT = ".provider-limit.json"  # a runner at its usage limit (loop/alerts), in <data>
LIMIT_SCHEDULE = "provider-limit"  # its one-shot wake at the reset: schedules/<this>.json


def host_workers(data: str) -> str:
    """Where the home keeps its records of the workers it started on other hosts."""
    return join(join(data, HOSTS), HOST_WORKERS)


def host_record(data: str, wid: str) -> str:
    return join(host_workers(data), f"{wid}.json")


def sandboxed(data: str, wid: str) -> bool:
    """Whether the worker's current run is sandboxed: its srt settings are there (a start
    writes them, a start without a sandbox removes them). One stat, for `ls` and `status`."""
    return os.path.isfile(os.path.join(data, SANDBOX, wid, SANDBOX_SETTINGS))


# -- a folder's spellings (bind mounts) ----------------------------------------------------

MOUNTINFO = "/proc/self/mountinfo"
_ESCAPES = {"\\040": " ", "\\011": "\t", "\\012": "\n", "\\134": "\\"}


def _unescape(field: str) -> str:
    """mountinfo's octal escapes (space, tab, newline, backslash) undone."""
    if "\\" not in field:
        return field
    for k, v in _ESCAPES.items():
        field = field.replace(k, v)
    return field


def mount_table(text: str) -> list[tuple[str, str, str]]:
    """(device, root within that device, mount point) of each line of a mountinfo, in order."""
    out = []
    for line in text.splitlines():
        f = line.split(" ")
        if len(f) >= 5 and f[4].startswith("/") and f[3].startswith("/"):
            out.append((f[2], _unescape(f[3]), _unescape(f[4])))
    return out


def _under(path: str, top: str) -> str | None:
    """What of `path` lies below `top` ('' when they are equal), None when it is not there."""
    if top == "/":
        return path[1:] if path.startswith("/") else None
    if path == top:
        return ""
    return path[len(top) + 1 :] if path.startswith(top + "/") else None


def _join(top: str, rest: str) -> str:
    return top if not rest else (top.rstrip("/") + "/" + rest)


def spellings(path: str, text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """For an absolute, symlink-free `path`: ([(mount root, spelling)] of every mount that
    shows the same folder, its own included; [mount points that show a part of it]).
    The mount a path is on is the last one with the longest point above it (a later mount
    on the same point hides an earlier one)."""
    mounts = mount_table(text)
    on: tuple[str, str, str] | None = None
    for m in mounts:
        if _under(path, m[2]) is not None and (on is None or len(m[2]) >= len(on[2])):
            on = m
    if on is None:
        return [("/", path)], []
    rest = _under(path, on[2])
    assert rest is not None
    inner = _join(on[1], rest)  # the folder as its device names it
    whole: list[tuple[str, str]] = []
    parts: list[str] = []
    for dev, root, point in mounts:
        if dev != on[0]:
            continue
        below = _under(inner, root)
        if below is not None:
            whole.append((root, _join(point, below)))
        elif _under(root, inner) is not None:
            parts.append(point)  # a bind of something inside the folder
    return whole, parts


def read_mountinfo(proc: str = MOUNTINFO) -> str:
    try:
        with open(proc, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except OSError:
        return ""


def mount_aliases(paths: list[str], proc: str = MOUNTINFO) -> list[str]:
    """Every other path under which a bind mount shows one of `paths` (absolute, symlinks
    resolved) or a part of it: what a box that sees the whole file system must be denied
    besides the paths themselves."""
    text = read_mountinfo(proc)
    out: list[str] = []
    for path in paths:
        whole, parts = spellings(path, text)
        out.extend(s for s in [*(s for _, s in whole), *parts] if s != path)
    return list(dict.fromkeys(out))


def canonical(path: str, proc: str = MOUNTINFO) -> str:
    """One spelling of the folder at `path` whichever way it is reached: symlinks resolved,
    and among the bind mounts that show it, the spelling through the mount of the widest
    root (the original, not a bind of a part), then the one mounted first (a later bind of
    the same root, e.g. of / elsewhere, is not the original). A spelling is taken only when
    it is the same inode; a path not there yet is only resolved."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError:
        return real
    whole, _ = spellings(real, read_mountinfo(proc))
    best: tuple[int, int, str] = (1 << 30, 0, real)
    for i, (root, spelled) in enumerate(whole):
        key = (len(root), i, spelled)
        if key < best and _same(spelled, st):
            best = key
    return best[2]


def _same(path: str, st: os.stat_result) -> bool:
    try:
        other = os.stat(path)
    except OSError:
        return False
    return (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino)


def program_on(name: str, path: str | None) -> str | None:
    """What `name` runs as, as shutil.which finds it: itself when it names a folder, else the
    first executable file of that name on `path` (None: the system's default path; "":
    nowhere). Not shutil: its compression modules would load into every verb that asks,
    ~3 ms."""
    if os.path.dirname(name):
        return name if _runs(name) else None
    if path == "":
        return None
    dirs = (os.defpath if path is None else path).split(os.pathsep)
    return next((f for d in dirs if _runs(f := os.path.join(d, name))), None)


def _runs(path: str) -> bool:
    return os.access(path, os.X_OK) and os.path.isfile(path)
