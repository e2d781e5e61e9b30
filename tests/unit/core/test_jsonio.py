"""safe_loads refuses valid JSON that looop will not carry, naming why."""

from __future__ import annotations

import json

import pytest

from looop.home import jsonio


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


def test_the_guards_hold_for_every_call_and_every_shape_of_text() -> None:
    """One decoder per guard is kept, and plain ASCII skips the walk over the values: neither
    lets through what a call's own guards refuse, nor refuses what they allow."""
    assert jsonio.safe_loads('{"n": 123456}', max_int_digits=4000) == {"n": 123456}
    with pytest.raises(jsonio.UnsafeJSON, match="integer of 6 digits"):
        jsonio.safe_loads('{"n": 123456}', max_int_digits=5)
    assert jsonio.safe_loads("[[[1]]]", max_depth=3) == [[[1]]]
    with pytest.raises(jsonio.UnsafeJSON, match="nested too deeply"):
        jsonio.safe_loads("[[[[1]]]]", max_depth=3)
    assert jsonio.safe_loads('{"s": "[[[[{{{{"}', max_depth=3) == {"s": "[[[[{{{{"}
    with pytest.raises(jsonio.UnsafeJSON, match="NUL"):
        jsonio.safe_loads('{"s": "a\\u0000"}', allow_nul=False)
    with pytest.raises(jsonio.UnsafeJSON, match="unpaired surrogate"):
        jsonio.safe_loads(b'{"s": "\\ud800"}')
    assert jsonio.safe_loads('{"s": "\\u00e9"}') == {"s": "é"}
    assert jsonio.safe_loads('{"s": "é"}'.encode("utf-16")) == {"s": "é"}
    assert jsonio.safe_loads(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}  # as json.loads reads bytes
