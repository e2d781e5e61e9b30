"""Named keys for `key`: case-insensitive names mapped to the bytes a terminal would send.

Cursor and function keys use the normal-mode (non-DECCKM) forms, as a plain xterm sends them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from looop.home.sessionfiles import SessionError

if TYPE_CHECKING:
    from collections.abc import Sequence

# Canonical spelling first in each group (names split at spaces); every alias maps to the same
# bytes.
_GROUPS: tuple[tuple[tuple[str, ...], bytes], ...] = tuple(
    (tuple(names.split()), seq.encode())
    for names, seq in (
        ("Enter Return CR", "\r"), ("Tab", "\t"), ("S-Tab BTab Shift-Tab", "\x1b[Z"),
        ("Esc Escape", "\x1b"), ("Space", " "), ("Backspace BS", "\x7f"),
        ("Up", "\x1b[A"), ("Down", "\x1b[B"), ("Right", "\x1b[C"), ("Left", "\x1b[D"),
        ("Home", "\x1b[H"), ("End", "\x1b[F"), ("Insert Ins", "\x1b[2~"), ("Delete Del", "\x1b[3~"),
        ("PageUp PgUp", "\x1b[5~"), ("PageDown PgDn", "\x1b[6~"),
        *((f"F{i}", f"\x1bO{c}") for i, c in enumerate("PQRS", 1)),
        *((f"F{i}", f"\x1b[{n}~") for i, n in enumerate((15, 17, 18, 19, 20, 21, 23, 24), 5)),
    )
)  # fmt: skip

_FIXED: dict[str, bytes] = {name.lower(): seq for names, seq in _GROUPS for name in names}

# Control combinations: C-x, Ctrl-x, Ctrl+x, ^x. Letters plus the punctuation that has a C0 code.
_CTRL_PREFIXES = ("ctrl-", "ctrl+", "c-", "c+", "^")
_CTRL_PUNCT = "@[\\]^_"

#: Every fixed key name (aliases included), for help text; control combos are described by
#: CTRL_FORMS.
KEY_NAMES: tuple[str, ...] = tuple(name for names, _ in _GROUPS for name in names)

#: How control combinations are spelled, for help text.
CTRL_FORMS = "C-a…C-z (also Ctrl-x, ^x), C-@, C-Space, C-[, C-\\, C-], C-^, C-_"

_HINT = "Enter, Tab, Esc, Space, Backspace, Up, Down, PageUp, Home, F1…F12, C-c"


def _ctrl_byte(rest: str) -> bytes | None:
    """The C0 byte for the part after a control prefix, or None if it has none."""
    if rest == "space":
        return b"\x00"
    if len(rest) != 1:
        return None
    ch = rest.upper()
    if ("A" <= ch <= "Z") or ch in _CTRL_PUNCT:
        return bytes([ord(ch) - 0x40])
    return None


def key_bytes(name: str) -> bytes:
    """The bytes for one key name; SessionError when the name is unknown."""
    low = name.strip().lower()
    seq = _FIXED.get(low)
    if seq is not None:
        return seq
    for prefix in _CTRL_PREFIXES:
        if low.startswith(prefix):
            ctrl = _ctrl_byte(low[len(prefix) :])
            if ctrl is not None:
                return ctrl
    raise SessionError(f"unknown key `{name}`: use a name such as {_HINT}")


def encode_keys(names: Sequence[str]) -> bytes:
    """Concatenate the bytes of several key names; every name is checked before any is used."""
    if not names:
        raise SessionError("no key given: name at least one key, e.g. Enter or C-c")
    return b"".join(key_bytes(name) for name in names)
