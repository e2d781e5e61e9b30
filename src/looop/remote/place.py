"""Placement: which host a worker goes to, by one documented rule — SSH and Kubernetes hosts
alike, each with its cap.

With `--host NAME` (or a decision's `host`) it goes there, within that host's cap. Without
one, and with hosts registered, it goes where the most capacity is left: each host's cap
minus its live workers (a host without a cap counts as the home's `max_workers`, and an
unlimited home as unlimited), the home (`local`) counted as a host with `max_workers`; a tie
goes to the home first, then to hosts in name order. Load is counted from the home's
records, so placing costs no network round trip. A worker with a repo is placed by its repo
first (remote/dispatch.py): a path stays home, a URL goes to a host."""

from __future__ import annotations

from pathlib import Path

from looop.remote import hosts as reg
from looop.remote.hosts import LOCAL, AnyHost, HostError

UNLIMITED = 1 << 30


def loads(data: Path) -> list[tuple[AnyHost, int]]:
    live: dict[str, int] = {}
    for rec in reg.records(data).values():
        if not rec.get("over"):
            live[rec["host"]] = live.get(rec["host"], 0) + 1
    return [(h, live.get(h.name, 0)) for h in reg.all_hosts(data)]


def room(cap: int, live: int) -> int:
    return (cap if cap > 0 else UNLIMITED) - live


def check_room(data: Path, name: str) -> AnyHost:
    for h, n in loads(data):
        if h.name == name:
            if h.cap and n >= h.cap:
                raise HostError(
                    f"host {name} is full: {n} live workers (cap {h.cap}); kill one, raise "
                    f"its cap, or start the worker elsewhere"
                )
            return h
    return reg.lookup(data, name)  # says there is no such host


def choose(data: Path, local_live: int, max_workers: int, home: bool = True) -> str:
    """The host with the most room left (LOCAL for the home); a tie prefers the home.
    `home` False: the hosts only (a worker whose repo is a URL, which only a host clones)."""
    best, best_room = LOCAL, room(max_workers, local_live) if home else -UNLIMITED
    for h, n in loads(data):
        r = room(h.cap or max_workers, n)
        if r > best_room:
            best, best_room = h.name, r
    if best_room <= 0:
        raise HostError(
            f"every host is full (the home's max_workers {max_workers} and each host's cap) "
            "— kill a worker or raise a cap"
            if home
            else "every host is full (each host's cap), and only a host clones a repo URL — "
            "kill a worker there or raise a cap"
        )
    return best
