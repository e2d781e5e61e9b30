"""Each worker's spend as the pulse's last beat metered it (loop/workmeter.py writes
`<data>/.worker-meter.json` with write_state): what `ls`, sys-sessions and the dashboard show.
In the hot room, so every room that shows a worker can read it."""

from __future__ import annotations

import errno
import os
import stat
import zlib
from typing import TYPE_CHECKING

from looop.home import jsonio, store

if TYPE_CHECKING:
    from typing import Any

# Two slots, each written in place (pwrite, no rename) and read back newest-valid-first: a
# beat rewrites the state whole, and a rename over the old file costs ms on ext4 (it flushes
# the new file first), a truncate too. The slot written is the older one, so the newer stays
# whole while it is written; a torn or half-written slot fails its header check (sequence,
# length, CRC-32) and the other is read.
STATE = ".worker-meter.json"
STATES = (STATE, ".worker-meter.1.json")
VERSION = 1
MAGIC = b"looop-meter"


def _slot(path: str) -> tuple[int, bytes] | None:
    """A slot's sequence number and body when its header vouches for it."""
    try:
        raw = store.read_regular(path)  # ours: no cap (a cap would size the read buffer)
    except OSError:
        return None
    head, nl, body = raw.partition(b"\n")
    parts = head.split(b" ")
    if not nl or len(parts) != 4 or parts[0] != MAGIC:
        return None
    try:
        seq, size, crc = int(parts[1]), int(parts[2]), int(parts[3])
    except ValueError:
        return None
    if len(body) != size or zlib.crc32(body) != crc:
        return None
    return seq, body


def read_state(data: str) -> dict[str, Any]:
    """The meter's own file (our writes only: the plain parser), its newest whole slot;
    neither whole: empty, and each worker's file is counted again from its start, the
    ledger's rows kept. "seq" says which write it was."""
    got = [one for name in STATES if (one := _slot(os.path.join(data, name))) is not None]
    for seq, body in sorted(got, reverse=True):
        try:
            obj = jsonio.loads(body.decode("utf-8"))
        except (ValueError, RecursionError):
            continue
        if (
            isinstance(obj, dict)
            and obj.get("v") == VERSION
            and isinstance(obj.get("workers"), dict)
        ):
            obj["seq"] = seq
            return obj
    return {"v": VERSION, "workers": {}, "seq": max((s for s, _ in got), default=0)}


def write_state(data: str, state: dict[str, Any]) -> None:
    """The next write of the state, into the slot the last one did not use (not fsynced: a
    state lost in a crash is rebuilt against the ledger)."""
    seq = int(state.get("seq", 0)) + 1
    state["seq"] = seq
    body = jsonio.canonical(state).encode("utf-8") + b"\n"
    raw = b"%s %d %d %d\n" % (MAGIC, seq, len(body), zlib.crc32(body)) + body
    path = os.path.join(data, STATES[seq % 2])
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
            raise
        store.remove(path)  # a symlink or FIFO in its place: ours to replace
        fd = os.open(path, flags, 0o644)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, f"{path} is not a regular file")
        view = memoryview(raw)
        off = 0
        while off < len(raw):
            off += os.pwrite(fd, view[off:], off)
        os.ftruncate(fd, len(raw))
    finally:
        os.close(fd)


class Spend:
    """One worker's metered spend: USD so far, the CLI read, the last model seen; `usd` is
    None for a worker whose CLI leaves no record looop reads (unmetered)."""

    __slots__ = ("cli", "model", "usd", "wid")

    def __init__(self, wid: str, usd: float | None, cli: str, model: str | None) -> None:
        self.wid, self.usd, self.cli, self.model = wid, usd, cli, model

    def __repr__(self) -> str:
        return f"Spend({self.wid!r}, {self.usd!r}, {self.cli!r}, {self.model!r})"


def spent(data: str) -> dict[str, Spend]:
    """What the last beat's meter counted per worker (readers: ls, status, the dashboard)."""
    out: dict[str, Spend] = {}
    state = read_state(data)
    got = state.get("reported")
    told = got.get("workers") if isinstance(got, dict) else None
    for wid, w in state["workers"].items():
        if not isinstance(w, dict) or "cli" not in w:
            continue
        cli = str(w.get("cli"))
        if w.get("unmetered"):
            out[wid] = Spend(wid, None, cli, None)
            continue
        got = w.get("file")
        f: dict[str, Any] = got if isinstance(got, dict) else {}
        m = f.get("model")
        rec = w.get("recorded", 0)
        usd = rec / 1_000_000 if isinstance(rec, int) else 0.0
        out[wid] = Spend(wid, usd, cli, m if isinstance(m, str) else None)
    # what a worker no CLI record meters said it spent (loop/clirecords.py): its own reports
    for wid, r in (told if isinstance(told, dict) else {}).items():
        n = r.get("micros") if isinstance(r, dict) else None
        if isinstance(n, int) and n > 0:
            out[wid] = Spend(wid, n / 1_000_000, out[wid].cli if wid in out else "?", None)
    return out


# -- per-worker budgets ---------------------------------------------------------------------
# `<data>/budgets/<id>.json` {"usd", "policy"} is set at `worker start --budget`; the beat's
# meter writes `<id>.over` once the worker's metered spend reaches it and acts on the policy.

BUDGETS = "budgets"
POLICIES = ("pause", "stop")
MAX_BUDGET_USD = 10_000.0  # a ceiling above this is a typo, not a cap (CLI and decision alike)


def _budget_path(data: str, wid: str, ext: str) -> str:
    return os.path.join(data, BUDGETS, f"{wid}.{ext}")


def set_budget(data: str, wid: str, usd: float | None, policy: str = "pause") -> None:
    """A worker's spend ceiling in USD (None lifts it) and what happens at it."""
    if usd is None:
        store.remove(_budget_path(data, wid, "json"))
        return
    store.write_json(_budget_path(data, wid, "json"), {"policy": policy, "usd": usd})


def budgets(data: str) -> dict[str, tuple[float, str]]:
    """Each worker's budget (usd, policy); an unreadable one is left out (and said by `ls`)."""
    out: dict[str, tuple[float, str]] = {}
    for wid in _marked(data, ".json"):
        obj = _small_json(_budget_path(data, wid, "json"))
        usd, policy = obj.get("usd"), obj.get("policy")
        if isinstance(usd, int | float) and not isinstance(usd, bool) and usd > 0:
            out[wid] = (float(usd), policy if policy in POLICIES else "pause")
    return out


def over_budget(data: str) -> set[str]:
    """The workers the meter found at their budget (until a human lets them go on)."""
    return set(_marked(data, ".over"))


def _marked(data: str, ext: str) -> list[str]:
    """The worker ids with a `<id><ext>` file in the budgets folder."""
    try:
        with os.scandir(os.path.join(data, BUDGETS)) as it:
            return [e.name[: -len(ext)] for e in it if e.name.endswith(ext)]
    except OSError:
        return []


def mark_over(
    data: str, wid: str, usd: float, budget: float, policy: str, day: str | None = None
) -> None:
    """`day` (the local date, ISO): held by the daily fleet budget, not its own; the beat
    lets it go on once that day is over."""
    obj: dict[str, Any] = {"budget": budget, "policy": policy, "usd": usd}
    if day is not None:
        obj["day"] = day
    store.write_json(_budget_path(data, wid, "over"), obj)


def _over_field(data: str, wid: str, key: str) -> object:
    return _small_json(_budget_path(data, wid, "over")).get(key)


def _small_json(path: str) -> dict[str, Any]:
    """A budget folder's JSON object, {} when missing or unreadable."""
    try:
        obj = jsonio.loads(store.read_regular(path, 4096).decode())
    except (OSError, ValueError, RecursionError, UnicodeDecodeError):
        return {}
    return obj if isinstance(obj, dict) else {}


def over_limit(data: str, wid: str) -> str | None:
    """The bound a worker's over mark says it passed ("disk": loop/diskcheck), None for its
    spend budget."""
    return "disk" if _over_field(data, wid, "limit") == "disk" else None


def held_for_day(data: str, wid: str) -> str | None:
    """The day a worker's over mark holds it for the daily budget (None: its own budget)."""
    day = _over_field(data, wid, "day")
    return day if isinstance(day, str) else None


def let_go_on(data: str, wid: str) -> str | None:
    """The day a human let this worker go on past the daily budget (`worker continue`)."""
    try:
        day = store.read_regular(_budget_path(data, wid, "let"), 64).decode().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return day or None


def clear_over(data: str, wid: str) -> bool:
    """A human lets the worker go on; one held by the daily budget is not held again that
    day (`<id>.let` names it)."""
    day = held_for_day(data, wid)
    if day is not None:
        store.atomic_write(_budget_path(data, wid, "let"), day + "\n")
    return store.remove(_budget_path(data, wid, "over"))
