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
