"""The house reads and writes JSON one way: `home/jsonio` (loads, dumps, safe_loads for
untrusted text, canonical for the form it hashes and keeps state in; files through `store`).
No other module imports the `json` package (or another JSON library) itself."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pytest

from looop.home import jsonio, store

SRC = Path(__file__).resolve().parents[2] / "src" / "looop"
ONE = SRC / "home" / "jsonio.py"
OTHERS = ("json", "orjson", "ujson", "msgspec")

pytestmark = pytest.mark.unit


def _json_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in OTHERS]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [node.module] if node.module.split(".")[0] in OTHERS else []
    return found


def test_only_jsonio_imports_the_json_package() -> None:
    seen = {
        str(p.relative_to(SRC)): names
        for p in sorted(SRC.rglob("*.py"))
        if p != ONE and (names := _json_imports(p))
    }
    assert seen == {}, "read and write JSON through looop.home.jsonio"


@pytest.mark.parametrize(
    "value",
    [{"b": 1, "a": "é", "c": [1.5, None, True]}, [], "x\u2028y", {"k": {"z": 0, "y": -1}}],
)
def test_canonical_is_the_compact_sorted_unescaped_form(value: object) -> None:
    want = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert jsonio.canonical(value) == want


def test_a_state_file_is_one_canonical_line(tmp_path: Path) -> None:
    store.write_json(tmp_path / "s.json", {"v": 1, "a": "é"}, durable=False)
    assert (tmp_path / "s.json").read_bytes() == '{"a":"é","v":1}\n'.encode()
    assert store.read_json(tmp_path / "s.json") == {"a": "é", "v": 1}


def test_nan_is_refused_where_asked_and_untrusted_text_is_guarded() -> None:
    with pytest.raises(ValueError):
        jsonio.dumps({"x": math.nan}, allow_nan=False)
    assert jsonio.dumps([math.nan]) == "[NaN]"  # json's own default, kept
    with pytest.raises(jsonio.UnsafeJSON):
        jsonio.safe_loads('{"x": NaN}')
    assert math.isnan(jsonio.loads('{"x": NaN}')["x"])  # json's own reading, kept


@pytest.mark.parametrize("text", ['{"a": 1,}', "[1 2]", "", '{"a": 1} x'])
def test_a_parse_error_is_placed_as_json_words_it(text: str) -> None:
    with pytest.raises(ValueError) as got:
        jsonio.loads(text)
    with pytest.raises(json.JSONDecodeError) as want:
        json.loads(text)
    e = want.value
    assert jsonio.placed(got.value) == f"{e.msg} at line {e.lineno} column {e.colno}"
