"""`looop demo`: a few beats a newcomer can follow, offline, in a throwaway data dir."""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from looop.core.context import Ctx
from looop.core.events import Emitter
from looop.home import jsonio, store
from looop.home.clock import Clock
from looop.home.paths import Paths
from looop.home.sessionfiles import remove_tree
from looop.home.terminal import colour_on
from looop.home.where import program_on
from looop.loop.tick import tick
from looop.seed import ensure_data_dir

PLAYBOOK = """# PLAYBOOK (demo)

You keep my inbox empty. Files arrive in inbox/; filing one means moving it to done/.
Never delete anything. When the inbox is empty, do nothing.
"""

INBOX_SENSOR = """#!/usr/bin/env bash
# How many files wait in inbox/? Only the count wakes the loop; the clock is detail.
n=$(find inbox -maxdepth 1 -type f 2>/dev/null | wc -l | tr -d ' ')
printf '{"signal":{"inbox":%d},"detail":{"checked_at":"%s"}}\\n' "$n" "$(date +%T)"
"""

SCRIPT = [
    {
        "when": '"inbox":2',
        "say": "two files wait and no goal covers them: set the goal first",
        "decision": {
            "action": "write_goal",
            "id": "inbox-zero",
            "body": "goal: inbox/ is empty; every file is filed in done/\n",
            "journal": "inbox holds 2 files: goal inbox-zero set",
        },
    },
    {
        "when": "inbox-zero.md",
        "say": "the goal exists and files wait: file them (reversible)",
        "decision": {
            "action": "run_shell",
            "cmd": "mkdir -p done && mv inbox/* done/",
            "reason": "file the inbox",
            "journal": "filed 2 files into done/",
        },
    },
    {
        "when": '"inbox":0',
        "say": "the inbox is empty: the goal holds, nothing to do",
        "decision": {
            "action": "noop",
            "reason": "inbox empty",
            "journal": "inbox empty: goal inbox-zero holds",
        },
    },
    {
        "when": '"inbox":1',
        "say": "a new file arrived: file it",
        "decision": {
            "action": "run_shell",
            "cmd": "mv inbox/* done/",
            "reason": "file new mail",
            "journal": "filed the new file into done/",
        },
    },
    {
        "when": '"inbox":0',
        "decision": {"action": "noop", "reason": "inbox empty", "journal": "inbox empty again"},
    },
]


def _say(text: str, color: bool) -> None:
    sys.stdout.write(("\n\x1b[1m" + text + "\x1b[0m\n") if color else f"\n{text}\n")
    sys.stdout.flush()


def build_demo_dir(root: Path) -> Paths:
    """A data dir wired to the scripted runner, with a PLAYBOOK and one sensor."""
    paths = Paths.at(root)
    store.atomic_write(paths.playbook, PLAYBOOK)
    store.atomic_write(paths.sensor("inbox"), INBOX_SENSOR, mode=0o755)
    script = root / "demo-script.json"
    store.atomic_write(script, jsonio.dumps(SCRIPT, indent=1))
    tick_cmd = (
        f"{shlex.quote(sys.executable)} -m looop.demo.runner --script {shlex.quote(str(script))}"
    )
    cfg = {
        "default": "scripted",
        "runners": {
            "scripted": {"tick": tick_cmd, "worker": "bash -c 'cat {{prompt_file}}; sleep 5'"}
        },
        "max_daily_usd": 0,
    }
    store.atomic_write(paths.config, jsonio.dumps(cfg, indent=2) + "\n")
    (root / "inbox").mkdir()
    for name in ("invoice-041.pdf", "notes.txt"):
        (root / "inbox" / name).write_text("demo\n")
    return paths


def _spelling(bin: str, env: Mapping[str, str]) -> str:
    """How the user's shell reaches this looop: `looop` when their PATH finds this very one,
    else its path (`make demo` runs .venv/bin/looop, which no PATH names)."""
    found = program_on("looop", env.get("PATH"))
    if found and os.path.realpath(found) == os.path.realpath(bin):
        return "looop"
    return shlex.quote(bin)


def try_next(root: Path, bin: str, env: Mapping[str, str]) -> str:
    """What to type next, in the user's own shell, and how to clean up after."""
    looop = _spelling(bin, env)
    dir_ = shlex.quote(str(root))
    rows = [
        (f"export LOOOP_DATA_DIR={dir_}", "point looop at the demo's data dir"),
        (f"{looop} status", "the loop at a glance"),
        (f"{looop} journal", "every move, one line each"),
        (f"{looop} runs", "each decide, replayable (runs show <id>)"),
        (f"{looop} tick --dry-run", "the exact prompt the next decision would get"),
        (f"{looop} help", "the manual"),
        (f"rm -rf {dir_}; unset LOOOP_DATA_DIR", "when done: the throwaway dir goes"),
    ]
    width = max(len(cmd) for cmd, _ in rows)
    out = ["try next (in this shell):"]
    out += [f"  {cmd.ljust(width)}  # {why}" for cmd, why in rows]
    activate = os.path.join(os.path.dirname(bin), "activate")
    if looop != "looop" and os.path.isfile(activate):
        out.append(f"  (or `. {shlex.quote(activate)}` first, then type plain `looop`)")
    return "\n".join(out) + "\n"


def run_demo(
    env: Mapping[str, str], clock: Clock, bin: str, keep: bool = True, fast: bool = False
) -> int:
    """The narrated demo; env, clock and how children call looop come from the entry point."""
    root = Path(tempfile.mkdtemp(prefix="looop-demo-"))
    ctx, color = _demo_ctx(root, env, clock, bin)
    pause = 0.0 if fast else 0.8
    t0 = time.monotonic()
    _play(ctx, root, color, pause)
    return _finish(ctx, root, color, t0, keep, env)


def _demo_ctx(root: Path, env: Mapping[str, str], clock: Clock, bin: str) -> tuple[Ctx, bool]:
    """The demo's data dir made, and the Ctx its beats run with (children see that dir)."""
    paths = build_demo_dir(root)
    ensure_data_dir(paths)
    color = colour_on(sys.stdout.isatty(), env)
    em = Emitter(clock=clock, events_path=paths.events, stream=sys.stdout, color=color)
    child_env = {k: v for k, v in env.items() if k != "LOOOP_LOG_FORMAT"}
    child_env.update(LOOOP_DATA_DIR=str(root), LOOOP_CONFIG=str(paths.config))
    return Ctx(paths=paths, clock=clock, env=child_env, events=em, bin=bin), color


def _beat(ctx: Ctx, title: str, color: bool, pause: float, force: bool = False) -> None:
    """One narrated beat: what the sensor read, what the runner said, what was journaled."""
    paths = ctx.paths
    _say(title, color)
    out = tick(ctx, force=force)
    snap = store.read_text(paths.snapshots / "sensor-inbox.json") or "{}"
    sys.stdout.write(f"  reading  sensor-inbox: {snap.strip()}\n")
    if out.run_id:
        log = store.read_text(paths.run_dir(out.run_id) / "output.log") or ""
        said = [
            ln.split("] ", 1)[-1]
            for ln in log.splitlines()
            if "scripted runner:" not in ln and ln.strip()
        ]
        if said:
            sys.stdout.write(f"  runner   {said[-1]}\n")
    if out.executed is not None:
        sys.stdout.write(f"  journal  {out.executed.journal}\n")
    time.sleep(pause)


def _play(ctx: Ctx, root: Path, color: bool, pause: float) -> None:
    """The script: seven beats, a human's file dropped in before the fifth."""
    _say(
        f"looop demo · data dir {root}\n"
        "A scripted runner stands in for the agent CLI, so this runs offline.\n"
        "Each beat: run sensors -> hash the world -> if it changed, ask for ONE move -> "
        "looop executes it and journals it.",
        color,
    )
    _beat(
        ctx,
        "beat 1 · first beat of a pulse always decides; the inbox sensor reads 2 files",
        color,
        pause,
        force=True,
    )
    _beat(
        ctx, "beat 2 · the new goal changed the world, so the runner is asked again", color, pause
    )
    _beat(
        ctx,
        "beat 3 · run_shell moved the files; the sensor's signal changed (2 -> 0)",
        color,
        pause,
    )
    _beat(
        ctx,
        "beat 4 · nothing changed (only the sensor's detail, its clock, moved): no AI call",
        color,
        pause,
    )
    (root / "inbox" / "receipt-7.pdf").write_text("demo\n")
    _beat(
        ctx,
        "beat 5 · a human drops a file into inbox/; the reading changes and wakes the loop",
        color,
        pause,
    )
    _beat(ctx, "beat 6 · filed again; the loop settles", color, pause)
    _beat(ctx, "beat 7 · unchanged world: skipped, nothing spent", color, pause)


def _finish(
    ctx: Ctx, root: Path, color: bool, t0: float, keep: bool, env: Mapping[str, str]
) -> int:
    """The journal shown, the data dir kept or removed, and 0 only if it went as scripted."""
    lines = store.tail_lines(ctx.paths.journal, 20)
    _say("journal.md — one line per executed move:", color)
    for ln in lines:
        sys.stdout.write(f"  {ln}\n")
    ok = len(lines) == 5 and not any((root / "inbox").iterdir())
    _say(f"done in {time.monotonic() - t0:.1f}s · data dir: {root}", color)
    if keep:
        sys.stdout.write(try_next(root, ctx.bin, env))
    else:
        remove_tree(os.fspath(root))
        sys.stdout.write(f"removed {root} (--no-keep)\n")
    if not ok:
        sys.stderr.write("looop demo: the beats did not go as scripted — see the events above\n")
        return 1
    return 0
