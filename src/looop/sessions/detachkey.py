"""The detach filter of `looop attach`: a sequence of keys (Ctrl-\\ twice unless
`--detach-keys` names others, in docker's spelling: `ctrl-x,d`) detaches; everything else goes
to the session (the keys withheld too, once another key breaks the sequence).

A key arrives as its legacy byte, a Kitty CSI-u sequence or xterm's modifyOtherKeys form;
releases, repeats and bare modifiers never count as "something else".
"""

from __future__ import annotations

Key = tuple[int, bool]  # a key's character code (lower case) and whether Ctrl is held with it
DEFAULT_KEYS: tuple[Key, ...] = ((ord("\\"), True), (ord("\\"), True))
_CTRL_CHARS = "abcdefghijklmnopqrstuvwxyz@\\]^_"  # docker's ctrl-<value> (ctrl-[ is ESC)
#: A lone ESC (or any unfinished escape sequence) is forwarded after this long without more input.
ESC_FLUSH_S = 0.010
# An escape sequence longer than this is not a key we know; forward it rather than buffer forever.
_MAX_SEQ = 64
# Kitty keyboard protocol: modifiers = 1 + bits; the lock bits do not change which key it is.
_CTRL_BIT = 4
_LOCK_BITS = 64 | 128
_KITTY_PRESS, _KITTY_REPEAT, _KITTY_RELEASE = 1, 2, 3
# Kitty's codes for the modifier keys themselves (left/right shift, ctrl, alt, super, hyper, meta).
_MODIFIER_KEYS = range(57441, 57453)


# What a token is when it is no key of ours: HELD (a release, repeat or bare modifier) breaks
# no sequence begun; OTHER (anything else) releases what was withheld.
_HELD, _OTHER = "held", "other"


def parse_keys(spec: str) -> tuple[Key, ...]:
    """docker's `--detach-keys` spelling: `ctrl-<a-z @ \\ ] ^ _>` or one printable
    character, joined by commas."""
    keys: list[Key] = []
    for word in spec.split(","):
        name = word.strip().lower()
        if name.startswith("ctrl-") and len(name) == 6 and name[5] in _CTRL_CHARS:
            keys.append((ord(name[5]), True))
        elif len(word.strip()) == 1 and word.strip().isprintable():
            keys.append((ord(word.strip()), False))
        else:
            raise ValueError(
                f"--detach-keys {spec!r}: '{word}' is not a key; give ctrl-<a-z, @, \\, ], ^ "
                "or _> or one character, joined by commas (e.g. ctrl-x,d)"
            )
    return tuple(keys)


def _int(text: str, default: int) -> int | None:
    if text == "":
        return default
    return int(text) if text.isdigit() else None


def _ctrl_only(mods: int | None) -> bool:
    return mods is not None and mods >= 1 and ((mods - 1) & ~_LOCK_BITS) == _CTRL_BIT


def _classify_csi(params: bytes, final: int) -> Key | str:
    """Classify a complete CSI sequence (`params` between `ESC [` and the final byte): the
    key it presses, or what else it is."""
    text = params.decode("ascii", errors="replace")
    fields = text.split(";")
    if final == ord("u"):
        code = _int(fields[0].split(":")[0], -1)
        mod_parts = fields[1].split(":") if len(fields) > 1 else [""]
        mods = _int(mod_parts[0], 1)
        event = _int(mod_parts[1], _KITTY_PRESS) if len(mod_parts) > 1 else _KITTY_PRESS
        if code is None or mods is None or event is None:
            return _OTHER
        if code in _MODIFIER_KEYS or event in (_KITTY_REPEAT, _KITTY_RELEASE):
            return _HELD
        if _ctrl_only(mods) or mods == 1:
            return (code, mods != 1)
        return _OTHER
    # xterm modifyOtherKeys: ESC [ 27 ; mods ; code ~
    code = _int(fields[2], -1) if len(fields) == 3 else None
    if final == ord("~") and fields[0] == "27" and code and _ctrl_only(_int(fields[1], 1)):
        return (code, True)
    return _OTHER


def _next_token(buf: bytes, i: int, stops: bytes) -> tuple[int | None, Key | str]:
    """End index and kind of the key starting at buf[i]; end is None when the tail is
    unfinished. `stops`: the legacy bytes of the detach keys, each a token of its own."""
    n = len(buf)
    b = buf[i]
    if b in stops:
        return i + 1, ((ord(chr(b | 0x40).lower()), True) if b < 0x20 else (b, False))
    if b != 0x1B:
        j = i + 1
        while j < n and buf[j] != 0x1B and buf[j] not in stops:
            j += 1
        return j, _OTHER
    if i + 1 >= n:
        return None, _OTHER
    if buf[i + 1] != ord("["):
        # ESC + anything but `[` (Alt+key, SS3): the ESC is a key of its own for our purposes.
        return i + 1, _OTHER
    j = i + 2
    while j < n:
        c = buf[j]
        if 0x40 <= c <= 0x7E:
            return j + 1, _classify_csi(buf[i + 2 : j], c)
        if not 0x20 <= c <= 0x3F or j - i >= _MAX_SEQ:
            return j, _OTHER  # malformed or overlong: pass it through as is
        j += 1
    return None, _OTHER


class DetachFilter:
    """Stdin filter that spots the detach keys (Ctrl-\\ twice by default) and forwards
    everything else.

    The keys of a sequence begun are withheld; any other key releases them to the program,
    followed by that key. Key releases, repeats and bare modifier events (Kitty protocol) in
    between are withheld too and do not break it. An unfinished escape sequence at the end of a
    read waits for the next read, or is forwarded by `flush_pending` once ESC_FLUSH_S has passed.
    """

    def __init__(self, keys: tuple[Key, ...] = DEFAULT_KEYS) -> None:
        self.keys = keys
        self._stops = bytes({ord(chr(c).upper()) & 0x1F if ctrl else c for c, ctrl in keys})
        self._pending = b""
        self._pending_since: float | None = None
        self._held = b""
        self._got = 0  # keys of the sequence pressed so far

    @property
    def armed(self) -> bool:
        """True while a sequence begun is being withheld."""
        return self._got > 0

    @property
    def deadline(self) -> float | None:
        """When `flush_pending` should run (same clock as `now`), or None if nothing waits."""
        return None if self._pending_since is None else self._pending_since + ESC_FLUSH_S

    def feed(self, data: bytes, now: float) -> tuple[bytes, bool]:
        """Bytes to forward for this read, and whether the detach key was completed."""
        buf = self._pending + data
        since = self._pending_since
        self._pending, self._pending_since = b"", None
        out = bytearray()
        i = 0
        while i < len(buf):
            end, kind = _next_token(buf, i, self._stops)
            if end is None:
                self._pending = buf[i:]
                # A tail that continues the old pending sequence keeps its original start time.
                self._pending_since = since if (i == 0 and since is not None) else now
                break
            if self._take(buf[i:end], kind, out):
                return bytes(out), True
            i = end
        return bytes(out), False

    def flush_pending(self, now: float) -> bytes:
        """Forward an unfinished sequence (usually a lone ESC) once it has waited ESC_FLUSH_S."""
        deadline = self.deadline
        if deadline is None or now < deadline:
            return b""
        token = self._pending
        self._pending, self._pending_since = b"", None
        out = bytearray()
        self._take(token, _OTHER, out)
        return bytes(out)

    def _take(self, token: bytes, kind: Key | str, out: bytearray) -> bool:
        if kind == self.keys[self._got] or (self._got and kind == self.keys[0]):
            if kind != self.keys[self._got]:  # a sequence broken by its own first key
                out += self._held
                self._got, self._held = 0, b""
            self._got, self._held = self._got + 1, self._held + token
            if self._got == len(self.keys):
                self._got, self._held, self._pending = 0, b"", b""
                self._pending_since = None
                return True
            return False
        if self._got and kind == _HELD:
            self._held += token
            return False
        out += self._held + token
        self._got, self._held = 0, b""
        return False
