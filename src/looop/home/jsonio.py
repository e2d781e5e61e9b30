"""The house's one way to read and write JSON text (files: store.read_json, store.write_json,
atomic): `loads` and `dumps` as json's own, `safe_loads` for untrusted text with its guards,
`canonical` for the compact sorted form looop hashes, compares and writes its state in.

Over CPython's C accelerator (`_json`), without importing the `json` package: `import json`
pulls in `re` and `enum` (~5-8 ms, measured: docs/BENCHMARKS.md), a third of a hot verb's
whole budget. The C scanner and encoder are what `json` itself runs; this module drives them
directly for the spellings looop uses and falls back to `json` wherever it would differ — text
that fails to parse (so the error message is json's own, word for word), indented output of
values the encoder below does not know, and interpreters without `_json`.

Untrusted input (decisions, sensor output, a box's files) goes through `safe_loads`: valid JSON
that Python would choke on later is refused there, with the place named, instead of crashing a
beat downstream — lone surrogates (`"\\ud800"` cannot be written as UTF-8), NaN/Infinity,
numbers too large to use, nesting past a depth, and (optionally) NUL characters.
"""

from __future__ import annotations

TYPE_CHECKING = False  # imported on the hot path: no `typing`

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_c_scanner: Any = None
_c_encoder: Any = None
_str_utf8: Any = None
_str_ascii: Any = None
try:
    from _json import encode_basestring as _str_utf8
    from _json import encode_basestring_ascii as _str_ascii
    from _json import make_encoder as _c_encoder
    from _json import make_scanner as _c_scanner
except ImportError:  # another interpreter: json's pure-Python paths do the work
    pass

_WS = " \t\n\r"


class _Hooks:
    """What the C scanner reads off json's decoder object."""

    __slots__ = (
        "memo",
        "object_hook",
        "object_pairs_hook",
        "parse_constant",
        "parse_float",
        "parse_int",
        "strict",
    )

    def __init__(self, parse_int: Any, parse_float: Any, parse_constant: Any, strict: bool) -> None:
        self.strict = strict
        self.object_hook = None
        self.object_pairs_hook = None
        self.parse_int = parse_int
        self.parse_float = parse_float
        self.parse_constant = parse_constant
        self.memo: dict[str, str] = {}


def _json() -> Any:
    """The `json` package, for what this module leaves to it (see the module doc): bad text
    (json words the error), a value the light encoder does not know, or no `_json`."""
    import json  # lazy: the door to json (re, enum: ~8 ms), for those cases alone

    return json


def _json_loads(text: str | bytes, hooks: _Hooks) -> Any:
    return _json().loads(
        text,
        parse_int=hooks.parse_int,
        parse_float=hooks.parse_float,
        parse_constant=hooks.parse_constant,
        strict=hooks.strict,
    )


def _constant(name: str) -> float:
    return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


def loads(
    text: str | bytes,
    *,
    parse_int: Callable[[str], Any] = int,
    parse_float: Callable[[str], Any] = float,
    parse_constant: Callable[[str], Any] = _constant,
    strict: bool = True,
) -> Any:
    """json.loads(text, ...) with the same result and the same exceptions."""
    hooks = _Hooks(parse_int, parse_float, parse_constant, strict)
    if _c_scanner is None or not isinstance(text, str) or text.startswith("\ufeff"):
        return _json_loads(text, hooks)
    start = len(text) - len(text.lstrip(_WS))
    default = parse_int is int and parse_float is float and parse_constant is _constant
    # json's own decoder keeps one scanner too: it clears its memo after every scan
    scan = _PLAIN_SCAN if default and strict and _PLAIN_SCAN is not None else _c_scanner(hooks)
    try:
        obj, end = scan(text, start)
    except StopIteration:
        return _json_loads(text, hooks)  # raises json's own "Expecting value" error
    except SystemError:
        # The C scanner words its errors with json.decoder's JSONDecodeError, looked up in
        # sys.modules only: before `json` is loaded it fails without an exception (CPython
        # 3.11's raise_errmsg). json itself then reads the text and raises its own error.
        return _json_loads(text, hooks)
    except ValueError as e:
        if type(e) is ValueError or e.__class__.__name__ == "JSONDecodeError":
            return _json_loads(text, hooks)
        raise  # a hook's own error (UnsafeJSON): the caller's words
    if text[end:].strip(_WS):
        return _json_loads(text, hooks)  # "Extra data", worded by json
    return obj


_PLAIN_SCAN: Any = _c_scanner(_Hooks(int, float, _constant, True)) if _c_scanner else None


def _default(o: Any) -> Any:
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


def dumps(
    obj: Any,
    *,
    sort_keys: bool = False,
    separators: tuple[str, str] | None = None,
    ensure_ascii: bool = True,
    indent: int | None = None,
    default: Callable[[Any], Any] | None = None,
    allow_nan: bool = True,
) -> str:
    """json.dumps(obj, ...) for these options, byte for byte."""
    if _c_encoder is None or indent is not None:  # indented: for a person, json's own
        return _json_dumps(obj, sort_keys, separators, ensure_ascii, indent, default, allow_nan)
    enc = _str_ascii if ensure_ascii else _str_utf8
    item_sep, key_sep = separators or (", ", ": ")
    if isinstance(obj, str):
        return enc(obj)  # type: ignore[no-any-return]
    encoder = _c_encoder(
        {}, default or _default, enc, None, key_sep, item_sep, sort_keys, False, allow_nan
    )
    return "".join(encoder(obj, 0))


def _json_dumps(
    obj: Any,
    sort_keys: bool,
    separators: tuple[str, str] | None,
    ensure_ascii: bool,
    indent: int | None,
    default: Callable[[Any], Any] | None,
    allow_nan: bool,
) -> str:
    out: str = _json().dumps(
        obj,
        sort_keys=sort_keys,
        separators=separators,
        ensure_ascii=ensure_ascii,
        indent=indent,
        default=default,
        allow_nan=allow_nan,
    )
    return out


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
    try:
        obj = loads(
            text,
            parse_int=_int_parser(max_int_digits, saturate),
            parse_float=_float,
            parse_constant=_refused_constant,
        )
    except RecursionError:
        raise UnsafeJSON(f"is nested too deeply (limit {max_depth} levels)") from None
    if check:
        check_values(obj, max_depth, allow_nul)
    return obj
