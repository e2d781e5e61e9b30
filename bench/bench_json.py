"""What the house's one JSON module (home/jsonio) buys a hot verb: loading it against loading
the `json` package, each a fresh interpreter, interleaved with `python -c pass` in the same
run. jsonio drives CPython's C scanner and encoder without `import json` (whose `re` and
`enum` a hot verb would otherwise pay); the machinery stays only while this row shows it."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

ROUNDS = 40
# jsonio must cost a cold start less than half of what `import json` does, over `pass`
TARGET = 0.5


def _time(code: str, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    return time.perf_counter() - t0


def run() -> list[dict[str, object]]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    codes = {
        "pass": "pass",
        "json": "import json; json.loads('{\"a\": [1]}'); json.dumps({'a': 1})",
        "jsonio": "from looop.home import jsonio; jsonio.loads('{\"a\": [1]}'); "
        "jsonio.dumps({'a': 1})",
    }
    took: dict[str, list[float]] = {k: [] for k in codes}
    for code in codes.values():  # warm the page cache and the bytecode
        _time(code, env)
    for r in range(ROUNDS):
        order = list(codes.items())
        for name, code in order if r % 2 else reversed(order):
            took[name].append(_time(code, env))
    base = statistics.median(took["pass"])
    extra = {k: max(0.0, statistics.median(v) - base) for k, v in took.items()}
    ratio = extra["jsonio"] / extra["json"] if extra["json"] else 0.0
    return [
        {
            "name": "json module cold load (jsonio over `import json`)",
            "value": extra["jsonio"] * 1000,
            "min": (min(took["jsonio"]) - min(took["pass"])) * 1000,
            "max": None,
            "unit": "ms",
            "baseline": extra["json"] * 1000,
            "ratio": ratio,
            "target": f"ratio <= {TARGET}",
            "ok": ratio <= TARGET,
            "note": f"json: {ROUNDS} interleaved rounds of three fresh interpreters (`pass`, "
            "`import json` with one loads and dumps, jsonio with the same); value and baseline "
            "are each one's median over `pass`'s. jsonio drives the C accelerator without "
            "`import json` (its re and enum); it stays while this ratio holds.",
        }
    ]
