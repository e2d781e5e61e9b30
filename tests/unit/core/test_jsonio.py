"""The light JSON module says exactly what the json package says, for values and for errors."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from looop.home import jsonio

VALUES: list[Any] = [
    {},
    [],
    "",
    0,
    -1.5,
    1e300,
    10**40,
    True,
    None,
    {"b": [1, 2, {"c": None}], "a": 'é\u2028\x1b[31m\\"', "z": {}, "y": []},
    [[[[]]], {"k": [{}]}],
    {"emoji": "😀", "nul": "\x00", "tab": "\t"},
    ["\ud800"],  # a lone surrogate: json writes its escape
    (1, 2),
    {"f": float("nan"), "g": float("inf"), "h": -0.0},
]


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("ascii_only", [True, False])
def test_dumps_matches_json(value: Any, ascii_only: bool) -> None:
    for opts in (
        {"sort_keys": True, "separators": (",", ":")},
        {"indent": 2, "sort_keys": True},
        {"indent": 2},
        {},
    ):
        assert jsonio.dumps(value, ensure_ascii=ascii_only, **opts) == json.dumps(
            value, ensure_ascii=ascii_only, **opts
        )


def test_dumps_default_and_refusal_match_json() -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd"

    assert jsonio.dumps({"x": Odd()}, default=str) == json.dumps({"x": Odd()}, default=str)
    assert jsonio.dumps({"x": Odd()}, indent=2, default=str) == json.dumps(
        {"x": Odd()}, indent=2, default=str
    )
    with pytest.raises(TypeError, match="not JSON serializable"):
        jsonio.dumps({"x": Odd()})
    # non-string keys: json coerces them, and so do we
    assert jsonio.dumps({1: 2, None: 3}, indent=2) == json.dumps({1: 2, None: 3}, indent=2)


TEXTS = [
    '{"a": [1, 2.5, "x\\u00e9"], "b": null}',
    "  [true, false]\n",
    '"\\ud800"',
    "123",
    "",
    "   ",
    "{",
    '{"a": 1} x',
    "[1,]",
    "\ufeff{}",
    '{"a": NaN}',
    '["\x01"]',
    "[" * 50 + "]" * 50,
]


@pytest.mark.parametrize("text", TEXTS)
def test_loads_matches_json_value_or_error(text: str) -> None:
    def outcome(fn: Any) -> tuple[str, str]:
        try:
            return "ok", repr(fn(text))
        except ValueError as e:
            return type(e).__name__, str(e)

    assert outcome(jsonio.loads) == outcome(json.loads)


def test_bytes_go_through_json() -> None:
    assert jsonio.loads(b'{"a": 1}') == {"a": 1}


def test_jsonsafe_still_refuses_what_it_refused() -> None:
    for text, words in (
        ('{"n": NaN}', "not a JSON number"),
        ('{"n": 1e999}', "too large"),
        ('{"n": ' + "9" * 70 + "}", "integer of 70 digits"),
        ('{"s": "\\udc00"}', "unpaired surrogate"),
        ("[" * 100 + "]" * 100, "nested too deeply"),
    ):
        with pytest.raises(jsonio.UnsafeJSON, match=words):
            jsonio.safe_loads(text)
    with pytest.raises(json.JSONDecodeError, match="Expecting property name"):
        jsonio.safe_loads("{oops")


BAD_TEXT = ["{garbage\n", "[1,", '{"a" 1}', '{"a":1,}', '"\x01"', "[1] x", "", "nul"]


@pytest.mark.timeout(60)
@pytest.mark.process
def test_bad_text_raises_jsons_error_in_a_fresh_interpreter() -> None:
    """Where `json` is not loaded yet (a hot verb's own process, unlike this test's), the C
    scanner cannot word its error; loads still raises json's JSONDecodeError, never crashes."""
    probe = (
        "import sys\n"
        "from looop.home import jsonio\n"
        "assert 'json' not in sys.modules\n"
        "for t in sys.argv[1:]:\n"
        "    try:\n"
        "        jsonio.loads(t)\n"
        "    except ValueError as e:\n"
        "        print(type(e).__name__, e)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", probe, *BAD_TEXT], capture_output=True, text=True, timeout=50
    )
    assert r.returncode == 0, r.stderr
    want = []
    for t in BAD_TEXT:
        with pytest.raises(json.JSONDecodeError) as e:
            json.loads(t)
        want.append(f"JSONDecodeError {e.value}")
    assert r.stdout.splitlines() == want
