"""How the prompt shows the sensor readings: each reading one item, except the system readings
that list many things at once (sys-sessions' workers, sys-goals' goals), which show one item
per worker or goal, so one worker's news moves one short item and not thirty workers' worth.
The ages those two carry grow every beat: they are shown coarsely (a span such as `10-60m`, under
"age"), so they move only when an age crosses into the next span.
A sensor reading that names a worker (`detail.worker`: its id) or a worker's branch
(`detail.branch`), each a string or a list of strings, is that worker's news: its signal is
shown again under "news" in that worker's item, so the decider finds it beside its owner. A
reading about many (github's open pull requests) lists them as entries naming theirs
(`{"branch": …}` or `{"worker": …}`): a worker's news leaves out the entries naming others, so
it is not cut short by theirs and moves only when its own do. Every worker on a branch named
(the same name in two repositories) gets the news."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from looop.core.readings import AGE_KEYS, Reading, split_ages
from looop.home import jsonio

# the system readings shown one item per entry: reading name -> the label of one entry
EACH = {"sys-sessions": "worker", "sys-goals": "goal"}
# a key the prompt leaves out while another that says the same and changes less is shown (the
# snapshot keeps both): a busy worker's output time moves every beat, its idle span seldom; a
# goal's age crosses spans between acts, when it was last acted on changes once per act
SAID_BY = {"last_output_at": "idle_s", "age_s": "last_acted", "last_acted_unix": "last_acted"}
# detail keys of looop's own readings that move by their nature (a worker's output and spend,
# when a goal was acted on): shown late from the first prompt, not once seen moving
MOVES = {
    "sys-sessions": frozenset({"last_output_at", "spend_usd", "uncommitted"}),
    "sys-goals": frozenset({"last_acted", "last_acted_unix"}),
}


NEWS_CAP = 400  # one news signal, in characters of its JSON: a longer one is cut


def _dump(value: Any) -> str:
    return jsonio.canonical(value) + "\n"


def reading_ages(reading: Reading) -> tuple[Any, dict[str, dict[str, Any]]]:
    """A system reading's value without its ages (None when it is not a JSON reading of
    AGE_KEYS), and the ages by item."""
    if reading.name not in AGE_KEYS or not reading.is_json:
        return None, {}
    return split_ages(reading)


def _named(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _brief(signal: Any) -> Any:
    text = jsonio.canonical(signal)
    return signal if len(text) <= NEWS_CAP else text[:NEWS_CAP] + " [… cut by looop …]"


def worker_news(readings: Iterable[Reading]) -> dict[str, dict[str, Any]]:
    """Worker id -> {reading file name: its signal} for each sensor reading whose detail names
    that worker or its branch (sys-sessions says each worker's branch)."""
    readings = list(readings)
    sessions = next((r for r in readings if r.name == "sys-sessions"), None)
    workers = sessions.items_of("workers") if sessions is not None else {}
    branch_of = {
        wid: str(w["branch"])
        for wid, w in workers.items()
        if isinstance(w, dict) and isinstance(w.get("branch"), str)
    }
    news: dict[str, dict[str, Any]] = {}
    for r in readings:
        detail = r.detail
        if r.name.startswith("sys-") or not isinstance(detail, dict):
            continue
        ids, branches = _named(detail.get("worker")), _named(detail.get("branch"))
        named = {w for w in ids if w in workers}
        named |= {wid for wid, b in branch_of.items() if b in branches}
        for wid in sorted(named):
            own = _own_entries(r.signal, wid, branch_of.get(wid))
            news.setdefault(wid, {})[r.file_name] = _brief(own)
    return news


def _elsewhere(entry: Any, wid: str, branch: str | None) -> bool:
    """Whether a signal's entry names another worker or branch (and not this worker's)."""
    if not isinstance(entry, dict) or not ("worker" in entry or "branch" in entry):
        return False
    return entry.get("worker") != wid and (branch is None or entry.get("branch") != branch)


def _own_entries(signal: Any, wid: str, branch: str | None) -> Any:
    """A signal as one worker's news: without the entries of its lists (the signal itself,
    or its top-level values) that name another worker or branch."""

    def mine(entries: list[Any]) -> list[Any]:
        return [e for e in entries if not _elsewhere(e, wid, branch)]

    if isinstance(signal, list):
        return mine(signal)
    if isinstance(signal, dict):
        return {k: mine(v) if isinstance(v, list) else v for k, v in signal.items()}
    return signal


def reading_items(
    reading: Reading, news: Mapping[str, dict[str, Any]] | None = None
) -> list[tuple[str, str]]:
    """(label, text) of each item one reading shows: itself, or for sys-sessions and sys-goals
    the rest of the reading and then one item per worker or goal (its signal entry and its
    detail, without ages, and its ages coarsely under "age"; a worker's `news` under "news")."""
    file_name, name, raw = reading.file_name, reading.name, reading.text
    kept, ages = reading_ages(reading)
    if kept is None:
        return [(file_name, raw)]
    detail = kept.get("detail") if isinstance(kept, dict) else None
    spec = AGE_KEYS[name][0]
    entries = detail.get(spec) if isinstance(detail, dict) else None
    if not isinstance(entries, dict):
        return [(file_name, raw)]
    signal = kept.get("signal")
    by_id: dict[str, Any] = {}
    if isinstance(signal, list):
        for entry in signal:
            if isinstance(entry, dict) and entry.get("id") in entries:
                by_id[str(entry["id"])] = entry
        signal = [e for e in signal if not (isinstance(e, dict) and str(e.get("id")) in by_id)]
    rest = {**kept, "detail": {k: v for k, v in detail.items() if k != spec}}  # type: ignore[union-attr]
    if isinstance(signal, list):
        rest["signal"] = signal
    items = [(file_name, _dump(rest))]
    for item_id, body in entries.items():
        said = body if isinstance(body, dict) else {}
        held = {
            k: v
            for k, v in ages.get(item_id, {}).items()
            if v is not None and said.get(SAID_BY.get(k, "")) is None
        }
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if not _said(SAID_BY.get(k), body, held)}
        one = {"detail": body, **({"signal": by_id[item_id]} if item_id in by_id else {})}
        if held:
            one["age"] = {k.removesuffix("_s"): coarse(v) for k, v in held.items()}
        if news and name == "sys-sessions" and item_id in news:
            one["news"] = news[item_id]
        items.append((f"{file_name} {EACH.get(name, 'item')} {item_id}", _dump(one)))
    return items


def _said(other: str | None, body: dict[str, Any], held: dict[str, Any]) -> bool:
    """Whether `other`, the key that says the same as one of `body`'s, is shown."""
    return other is not None and (other in held or body.get(other) is not None)


# an age's spans: (upper bound in seconds, how it is shown), the last one open
SPANS = ((60, "<1m"), (600, "1-10m"), (3600, "10-60m"), (6 * 3600, "1-6h"), (86400, "6-24h"))
SPANS_OPEN = (7 * 86400, "1-7d", ">7d")


def coarse(age: Any) -> str:
    """An age in seconds as its span: the decider needs how long, not the exact second, and
    the exact second would move the line every beat."""
    if not isinstance(age, int | float) or isinstance(age, bool):
        return str(age)
    for bound, shown in SPANS:
        if age < bound:
            return shown
    return SPANS_OPEN[1] if age < SPANS_OPEN[0] else SPANS_OPEN[2]
