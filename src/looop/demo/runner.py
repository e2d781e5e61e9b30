"""A scripted tick runner: reads the prompt, writes the next scripted decision, like an agent would.

Script: a JSON list of steps, consumed in order. A step is one of
  {"decision": {...}, "when": "text", "say": "line"}  write it (if `when` is in the prompt)
  {"raw": "text"}                                     write these exact bytes as the decision
  {"no_decision": true}                               exit 0 without a decision
  {"exit": 3, "stderr": "boom"}                       crash with this code
  {"hang": true}                                      never finish (timeout tests)
  {"garbage": "text"}                                 print text, write nothing
  {"stale": {...}, "exit": 2}                         write a decision, then fail
  {"stream": ["json line", ...]}                      print these lines first (stream rendering)
  {"sleep": 1.5, ...}                                 think this long before acting
The position is kept in <script>.pos so each run takes the next step.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from looop.home import jsonio, store, where


def _next_step(script: Path) -> tuple[int, dict[str, Any] | None]:
    steps = jsonio.loads(script.read_text(encoding="utf-8"))
    pos_file = script.with_name(script.name + ".pos")
    try:
        pos = int(pos_file.read_text().strip() or "0")
    except (FileNotFoundError, ValueError):
        pos = 0
    # counts every call, so tests can see the AI was skipped; atomic: a reader never sees it empty
    store.atomic_write(pos_file, str(pos + 1), durable=False)
    if pos >= len(steps):
        return pos, None
    step = steps[pos]
    return pos, step if isinstance(step, dict) else {"raw": jsonio.dumps(step)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="looop-scripted-runner")
    ap.add_argument("--script", required=True)
    ap.add_argument("prompt_file", nargs="?")
    args = ap.parse_args(argv)
    if args.prompt_file:
        prompt = Path(args.prompt_file).read_text(encoding="utf-8", errors="replace")
    else:
        prompt = sys.stdin.buffer.read().decode("utf-8", "replace")
    sys.stdout.write(f"scripted runner: read a prompt of {len(prompt)} chars\n")
    try:
        return _act(Path(args.script), prompt)
    except OSError as e:  # a full or read-only disk: one line, as an agent CLI says it
        where_ = f" ({e.filename})" if e.filename else ""
        sys.stderr.write(f"scripted runner: {e.strerror or e}{where_}: no decision written\n")
        return 1


def _act(script: Path, prompt: str) -> int:
    out = sys.stdout
    pos, step = _next_step(script)
    data = Path(os.environ.get("LOOOP_DATA_DIR", "."))
    decision_file = Path(os.environ.get("LOOOP_DECISION") or data / where.DECISION)
    if step is None:
        out.write("scripted runner: script exhausted; choosing noop\n")
        decision_file.write_text(jsonio.dumps({"action": "noop", "reason": "script exhausted"}))
        return 0
    for line in step.get("stream", []):
        out.write(line + "\n")
    if "sleep" in step:
        out.write("scripted runner: thinking…\n")
        out.flush()
        time.sleep(float(step["sleep"]))
    if step.get("hang"):
        out.flush()
        while True:
            time.sleep(3600)
    if "garbage" in step:
        out.write(str(step["garbage"]) + "\n")
        return 0
    if step.get("no_decision"):
        out.write("scripted runner: ending the turn without a decision\n")
        return 0
    if "stale" in step:
        decision_file.write_text(jsonio.dumps(step["stale"]))
    if "exit" in step:
        sys.stderr.write(str(step.get("stderr", "scripted failure")) + "\n")
        return int(step["exit"])
    when = step.get("when")
    if when and when not in prompt:
        out.write(f"scripted runner: step {pos + 1} expected {when!r} in the prompt; noop\n")
        decision_file.write_text(jsonio.dumps({"action": "noop", "reason": "unexpected world"}))
        return 0
    if "say" in step:
        out.write(str(step["say"]) + "\n")
    if "raw" in step:
        raw = step["raw"]
        decision_file.write_bytes(
            raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else bytes(raw)
        )
        return 0
    decision = step.get("decision", {"action": "noop", "reason": "empty step"})
    decision_file.write_text(jsonio.dumps(decision, ensure_ascii=False))
    out.write(f"scripted runner: wrote {decision.get('action')} to .decision.json\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
