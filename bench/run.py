"""Run every bench_*.py module and write docs/BENCHMARKS.md (figures + the command)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return "—" if v is None else str(v)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", default=str(HERE.parent / "docs" / "BENCHMARKS.md"))
    ap.add_argument("only", nargs="*", help="bench module names (default: all)")
    ap.add_argument(
        "--merge",
        action="store_true",
        help="with bench names: write their rows into the existing file (a row of the same "
        "name replaced in place, a new one appended; a note of the same tag before its ':' "
        "replaced), every other row left as the last full run wrote it",
    )
    args = ap.parse_args()
    if args.merge and not args.only:
        ap.error("--merge needs the bench names to merge (e.g. bench_hosts)")
    # each bench makes its own homes: a user's exported LOOOP_* (their config, their data dir)
    # must not reach them; the bench's own knobs (LOOOP_BENCH_*) stay
    for k in [k for k in os.environ if k.startswith("LOOOP_") and "_BENCH_" not in k]:
        del os.environ[k]
    rows: list[dict[str, Any]] = []
    for path in sorted(HERE.glob("bench_*.py")):
        if args.only and path.stem not in args.only:
            continue
        t0 = time.monotonic()
        print(f"running {path.stem} …", flush=True)
        for row in _load(path).run():
            row.setdefault("bench", path.stem)
            rows.append(row)
            print(
                f"  {row['name']}: {_fmt(row['value'])} {row['unit']} "
                f"(baseline {_fmt(row.get('baseline'))}, ratio {_fmt(row.get('ratio'))}, "
                f"target {row.get('target')}) {'ok' if row.get('ok') else 'MISSED'}",
                flush=True,
            )
        print(f"  ({time.monotonic() - t0:.1f}s)")
    lines = [
        "# Benchmarks",
        "",
        "Produced by `make bench` (`python bench/run.py`) on "
        f"{time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, "
        f"{platform.machine()}, {_cpus()} CPUs. Ratios are against a baseline measured in the "
        "same run.",
        "",
        "To reproduce: `make bench` runs every `bench/bench_*.py` and writes this table;",
        "`python bench/run.py bench_cli` runs one (each file's docstring says what it times).",
        "What changed between runs, with the measurements behind it, is in CHANGELOG.md.",
        "",
        "Value is the median; min and max are over the same rounds (blank where a row is one"
        " figure, not a spread).",
        "",
        "| benchmark | value | min | max | baseline | ratio | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [_table_row(r) for r in rows]
    notes = [r["note"] for r in rows if r.get("note")]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    if not args.only:
        Path(args.write).write_text("\n".join(lines) + "\n")
        print(f"wrote {args.write}")
    elif args.merge:
        _merge(Path(args.write), rows, args.only)
        print(f"merged {len(rows)} rows of {', '.join(args.only)} into {args.write}")
    return 0 if all(r.get("ok") for r in rows) else 1


def _table_row(r: dict[str, Any]) -> str:
    return (
        f"| {r['name']} | {_fmt(r['value'])} {r['unit']} | "
        f"{_spread(r.get('min'))} | {_spread(r.get('max'))} | "
        f"{_fmt(r.get('baseline'))} | {_fmt(r.get('ratio'))} | {r.get('target')} | "
        f"{'yes' if r.get('ok') else 'NO'} |"
    )


def _tag(note: str) -> str:
    return note.split(":", 1)[0]


def _merge(path: Path, rows: list[dict[str, Any]], benches: list[str]) -> None:
    """The rows of a few benches into a file a full run wrote, the rest kept as it was."""
    old = path.read_text().splitlines()
    if "|---|---|---|---|---|---|---|---|" not in old:
        sys.exit(f"{path} has no benchmark table: run `make bench` once first")
    start = old.index("|---|---|---|---|---|---|---|---|") + 1
    end = start
    while end < len(old) and old[end].startswith("| "):
        end += 1
    table = old[start:end]
    names = [line[2:].split(" | ", 1)[0] for line in table]
    for r in rows:
        if r["name"] in names:
            table[names.index(r["name"])] = _table_row(r)
        else:
            table.append(_table_row(r))
    rest = old[end:]
    notes = [line[2:] for line in rest if line.startswith("- ")]
    day = time.strftime("%Y-%m-%d")
    when = [  # one line a bench, however many merges: the table is today's, not its history
        f"merged {b}: its rows on {day} (`python bench/run.py --merge {b}`); a row no merge "
        "names is the full run's"
        for b in benches
    ]
    for n in [r["note"] for r in rows if r.get("note")] + when:
        tags = [_tag(k) for k in notes]
        if _tag(n) in tags:
            notes[tags.index(_tag(n))] = n
        else:
            notes.append(n)
    out = old[:start] + table + ["", "Notes:", ""] + [f"- {n}" for n in notes]
    path.write_text("\n".join(out) + "\n")


def _spread(v: object) -> str:
    return "" if v is None else _fmt(v)


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    sys.exit(main())
