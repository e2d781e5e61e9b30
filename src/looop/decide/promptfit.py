"""The pieces a prompt is made of (a body capped on its own, an item left out whole, the marker
of a cut) and how the prompt is kept under its total cap (`fit`)."""

from __future__ import annotations

from dataclasses import dataclass

from looop.decide.defuse import escape_body
from looop.home import store


def marker(n: int, what: str = "more chars") -> str:
    return f"[… truncated by looop: {n} {what} …]"


@dataclass
class Body:
    """One inlined body. `keep` chars of `raw` survive its cap; the cut is marked visibly."""

    label: str
    raw: str
    keep: int = -1

    def __post_init__(self) -> None:
        if self.keep < 0:
            self.keep = len(self.raw)

    def render(self) -> str:
        cut = len(self.raw) - self.keep
        if cut <= 0:
            text = escape_body(self.raw)
        else:
            head = escape_body(self.raw[: self.keep]).rstrip("\n")
            text = (head + "\n" if head else "") + marker(cut)
        return text.rstrip("\n") + "\n"


# What each kind of item is and its place when the total cap leaves items out: the budget goes
# to the lowest rank first, so the goals are the last to go and the volatile lines the first.
KINDS = {
    "goal": (0, "goal", "archive or merge goals"),
    "reading": (1, "sensor reading", "merge or quiet sensors"),
    "volatile": (2, "reading's every-beat field", "quiet the sensors whose detail moves"),
    "changed": (2, "changed reading", "quiet the sensors whose detail moves"),
    "moving": (3, "moving reading", "quiet the sensors whose detail moves"),
}


@dataclass
class Item:
    """One goal, reading or moving part of a reading: over the total cap it is left out whole,
    never cut. `first`: within its kind, items with a higher value get the budget first."""

    kind: str  # a key of KINDS
    parts: list[str | Body]
    first: int = 0
    kept: bool = True

    def render(self) -> str:
        return "".join(p if isinstance(p, str) else p.render() for p in self.parts)


@dataclass
class Gap:
    """Where a section says how many of its items the total cap left out (empty if none)."""

    kind: str
    left_out: int = 0
    limit: int = 0

    def render(self) -> str:
        if not self.left_out:
            return ""
        n, (_, what, tidy) = self.left_out, KINDS[self.kind]
        said = f"{what}{'' if n == 1 else 's'} left out to keep the prompt under "
        return marker(n, f"{said}{self.limit} bytes — {tidy}") + "\n"


Part = str | Body | Item | Gap


def render(parts: list[Part]) -> str:
    kept = (p for p in parts if not isinstance(p, Item) or p.kept)
    return "".join(p if isinstance(p, str) else p.render() for p in kept)


def size(text: str) -> int:
    return len(store.encode(text))


def fit(head: list[Part], parts: list[Part], now: str, limit: int, notes: dict[str, str]) -> str:
    """Keep the prompt under `limit` bytes (0: no limit): the budget goes to the goals first,
    then the readings in section order, then what moves of them (the latest change first, so
    the oldest change is the first left out); the first item of a kind that does not fit is
    left out whole with every one after it, as v1.0 stops a section (a marker in its section
    counts them). Everything else is capped per item and never cut here: the instructions,
    constitution, PLAYBOOK, asks, journal and NOW."""
    every = [*head, *parts, now]
    if limit <= 0 or size(render(every)) <= limit:
        return render(every)
    items = [p for p in parts if isinstance(p, Item)]
    gaps = [p for p in parts if isinstance(p, Gap)]
    for gap in gaps:  # room for each marker at its largest count
        gap.limit, gap.left_out = limit, sum(1 for i in items if i.kind == gap.kind)
    for item in items:
        item.kept = False
    room = limit - size(render(every))
    order = sorted(range(len(items)), key=lambda n: (KINDS[items[n].kind][0], -items[n].first))
    stopped: set[str] = set()
    for n in order:
        item = items[n]
        need = size(item.render())
        item.kept = item.kind not in stopped and need <= room
        if not item.kept:
            stopped.add(item.kind)
        room -= need if item.kept else 0
    for gap in gaps:
        gap.left_out = sum(1 for i in items if i.kind == gap.kind and not i.kept)
        if gap.left_out:
            k, what = gap.left_out, KINDS[gap.kind][1]
            notes[what] = (
                f"{k} {what}{'' if k == 1 else 's'} left out (total prompt over {limit} bytes)"
            )
    text = render(every)
    over = size(text) - limit
    if over > 0:
        notes["total prompt"] = (
            f"total prompt {over} bytes over its {limit}-byte cap: its fixed sections are never cut"
        )
    return text
