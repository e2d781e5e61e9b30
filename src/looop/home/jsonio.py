"""The house's one way to read and write JSON text (files: store.read_json, store.write_json,
atomic): `loads` and `dumps` are json's own, `safe_loads` for untrusted text with its guards,
`canonical` for the compact sorted form looop hashes, compares and writes its state in.

Untrusted input (decisions, sensor output, a box's files) goes through `safe_loads`: valid JSON
that Python would choke on later is refused there, with the place named, instead of crashing a
beat downstream — lone surrogates (`"\\ud800"` cannot be written as UTF-8), NaN/Infinity,
numbers too large to use, nesting past a depth, and (optionally) NUL characters.
"""

from __future__ import annotations

from functools import cache
from json import JSONDecoder, detect_encoding
from json import dumps as dumps
from json import loads as loads
from typing import Any


def plain(value: Any) -> Any:
    """JSON's values of a record (a NamedTuple: an object, its nested records too); json
    itself writes a NamedTuple as a list."""
    if isinstance(value, tuple):
        if hasattr(value, "_asdict"):
            return {k: plain(v) for k, v in value._asdict().items()}
        return [plain(v) for v in value]
    return value


def canonical(value: Any) -> str:
    """Compact, sorted, UTF-8 unescaped, one line: the form looop hashes, compares and keeps
    its state in."""
    return dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def placed(e: ValueError) -> str:
    """Where text failed to parse, as json words it (`Expecting value at line 1 column 2`);
    any other ValueError's own words."""
    msg, line, col = (getattr(e, k, None) for k in ("msg", "lineno", "colno"))
    return f"{msg} at line {line} column {col}" if msg is not None else str(e)


_FLOAT_CHARS = 400


class UnsafeJSON(ValueError):
    """Valid JSON whose values looop will not carry; the message names the field."""


KEY_SHOWN = 60  # characters of one key an error line shows


def where(path: list[str | int]) -> str:
    """A field path as `a.b[2].c` (or `top` for the whole value). Keys come from untrusted
    JSON: control characters show as escapes and a long key is cut, so the path stays on
    the one line of its error."""
    return (
        "".join(f"[{p}]" if isinstance(p, int) else f".{_key(p)}" for p in path).lstrip(".")
        or "top"
    )


def _key(key: str) -> str:
    shown = "".join(
        f"\\x{ord(c):02x}" if ord(c) < 32 or 127 <= ord(c) < 160 else c for c in key[:KEY_SHOWN]
    )
    return shown + ("…" if len(key) > KEY_SHOWN else "")


class Saturated(int):
    """An integer past the digits allowed, held at the largest it may be (its sign kept);
    `digits` says how long it was. Never int() of the whole token: its cost grows with it."""

    digits: int


def _int_parser(max_digits: int, saturate: bool = False) -> Any:
    def parse(token: str) -> int:
        digits = len(token) - token.startswith("-")
        if digits > max_digits:
            if saturate:
                held = Saturated(("-" if token.startswith("-") else "") + "9" * max_digits)
                held.digits = digits
                return held
            raise UnsafeJSON(
                f"holds an integer of {digits} digits (at most {max_digits}); "
                "write a realistic number"
            )
        return int(token)

    return parse


def _float(token: str) -> float:
    value = float(token[:_FLOAT_CHARS])
    if len(token) > _FLOAT_CHARS or value in (float("inf"), float("-inf")):
        raise UnsafeJSON(f"holds a number too large to use ({token[:24]}…)")
    return value


def _refused_constant(token: str) -> float:
    raise UnsafeJSON(f"holds {token}, which is not a JSON number; write a real number")


def bad_text(text: str, allow_nul: bool = True) -> str | None:
    """Why a string cannot be carried (a NUL, a lone surrogate), or None when it can."""
    if not allow_nul and "\x00" in text:
        return "must not contain NUL characters"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            return (
                f"holds an unpaired surrogate (\\u{ord(text[e.start]):04x}); "
                "write valid Unicode text"
            )
    return None


def check_values(obj: Any, max_depth: int, allow_nul: bool = True) -> None:
    """Every string and key encodes as UTF-8 (and holds no NUL), nesting stays shallow."""
    stack: list[tuple[Any, list[str | int]]] = [(obj, [])]
    while stack:
        value, path = stack.pop()
        if len(path) > max_depth:
            raise UnsafeJSON(f"is nested too deeply (limit {max_depth} levels)")
        if isinstance(value, str):
            why = bad_text(value, allow_nul)
            if why:
                raise UnsafeJSON(f"field '{where(path)}' {why}")
        elif isinstance(value, dict):
            for key, item in value.items():
                why = bad_text(key, allow_nul)
                if why:
                    raise UnsafeJSON(f"a key in '{where(path)}' {why}")
                stack.append((item, [*path, key]))
        elif isinstance(value, list):
            stack.extend((item, [*path, i]) for i, item in enumerate(value))


def safe_loads(
    text: str | bytes,
    *,
    max_depth: int = 64,
    max_int_digits: int = 60,
    allow_nul: bool = True,
    check: bool = True,
    saturate: bool = False,
) -> Any:
    """json.loads for untrusted text; UnsafeJSON (a ValueError) names what is wrong.

    json.JSONDecodeError still comes out for text that is not JSON at all. check=False leaves
    the string check to the caller (to name the field in its own words). saturate=True holds
    an integer past max_int_digits at the largest it may be (a Saturated) rather than
    refusing it: the caller says where one may stand."""
    if isinstance(text, bytes):
        text = text.decode(detect_encoding(text), "surrogatepass")  # as json.loads reads bytes
    try:
        obj = _decoder(max_int_digits, saturate).decode(text)
    except RecursionError:
        raise UnsafeJSON(f"is nested too deeply (limit {max_depth} levels)") from None
    # ASCII text without a \u escape holds no NUL nor surrogate, and no deeper nesting than
    # it has brackets: a state file's usual shape passes without a walk over its values
    plain = text.isascii() and "\\u" not in text
    if check and not (plain and text.count("[") + text.count("{") <= max_depth):
        check_values(obj, max_depth, allow_nul)
    return obj


@cache
def _decoder(max_int_digits: int, saturate: bool) -> JSONDecoder:
    """One decoder per guard: building one (its scanner) costs more than a state file's parse."""
    parse_int = _int_parser(max_int_digits, saturate)
    return JSONDecoder(parse_int=parse_int, parse_float=_float, parse_constant=_refused_constant)
