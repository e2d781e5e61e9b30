"""Whether two failures are the same way of failing: a failure's last line with the noise
that changes on every run taken out — durations, clock times and dates, long numbers (a pid,
an epoch, a port), decimals, and ids (a commit's hex, a temp file's name) — each replaced by
`#`. Small whole numbers stay (`1 failed` and `2 failed` are two failures), as do words.

Hand-written, not a regex: views/outcomes.py, which calls it, sits on `looop ls`'s fast path
and `re` costs that verb its load."""

from __future__ import annotations

NOISE = "#"
# what a number followed by one of these is: a duration, whatever its size
UNITS = frozenset(
    {"ns", "us", "µs", "ms", "s", "sec", "secs", "second", "seconds", "m", "min", "mins",
     "minute", "minutes", "h", "hr", "hrs", "hour", "hours"}
)  # fmt: skip
JOINS = ".:,-"  # inside a number when digits stand on both sides (3.5, 01:23:45, 2026-11-27)
LONG = 4  # digits from which a whole number is noise (a pid, an epoch, a year, a port)
HEX = frozenset("0123456789abcdefABCDEF")


def _word_end(line: str, i: int) -> int:
    """Where the word starting at `i` ends: letters and digits, and a join between digits."""
    n = len(line)
    j = i
    while j < n:
        c = line[j]
        between = j > i and line[j - 1].isdigit() and j + 1 < n and line[j + 1].isdigit()
        if not (c.isalnum() or (c in JOINS and between)):
            break
        j += 1
    return j


def _an_id(word: str) -> bool:
    """A commit's hex or a generated name (mktemp's): long, digits and letters mixed."""
    digits = sum(c.isdigit() for c in word)
    if len(word) >= 7 and digits and all(c in HEX for c in word):
        return True
    return len(word) >= 8 and digits >= 2 and sum(c.isalpha() for c in word) >= 2


def _number(word: str) -> tuple[str, str] | None:
    """(the number, what follows it) when the word starts with a digit; else None."""
    if not word[0].isdigit():
        return None
    k = 0
    while k < len(word) and (word[k].isdigit() or word[k] in JOINS):
        k += 1
    return word[:k], word[k:]


def _noise(num: str, unit: str) -> bool:
    digits = sum(c.isdigit() for c in num)
    return digits >= LONG or any(c in JOINS for c in num) or unit in UNITS


def same_way(line: str) -> str:
    """The line with its noise replaced, to compare with another failure's."""
    words: list[str] = []  # words and what stands between them, in order
    i, n = 0, len(line)
    while i < n:
        if not line[i].isalnum():
            words.append(line[i])
            i += 1
            continue
        j = _word_end(line, i)
        words.append(line[i:j])
        i = j
    out: list[str] = []
    for k, w in enumerate(words):
        got = _number(w) if w[0].isalnum() else None
        if not w[0].isalnum():
            out.append(w)  # what stands between words
        elif _an_id(w):
            out.append(NOISE)
        elif got is None:
            out.append(w)  # a word
        else:
            num, unit = got
            after = words[k + 2] if k + 2 < len(words) and words[k + 1] == " " else ""
            noisy = _noise(num, unit) or (not unit and after in UNITS)
            out.append(NOISE + unit if noisy else w)
    return "".join(out)
