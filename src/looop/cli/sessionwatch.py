"""Watch sessions: shot, log, expect, wait-idle (what a session shows, and when it settles;
`wait` is cli/wait.py's). Which session a verb means, and on which host, is cli/sessions.py's."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Mapping
from typing import Any

import click

from looop.cli import idcomplete
from looop.cli.commands import MAX_OFFSET, count, home_here
from looop.cli.sessions import duration_arg, session_of, since_time, target_sid, way_at
from looop.home import jsonio
from looop.home.clock import Clock
from looop.home.errors import LooopError
from looop.sessions.logs import compile_pattern, log_end, log_tail, pick_lines
from looop.workers.backend import Backend
from looop.workers.ids import live_workers


@click.command(
    "shot",
    help="Print a session's current screen (a dead one replays its log). Without SID: the one "
    "live worker's (v1.0's `ss`), refused when there are several.",
)
@click.argument("sid", required=False, shell_complete=idcomplete.sessions)
@click.option("--format", "fmt", type=click.Choice(["plain", "ansi", "json"]), default=None)
@click.option("--ansi", is_flag=True, help="Same as --format ansi.")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--plain", is_flag=True, help="Same as --format plain (the default; v1.0's flag).")
@click.option("--trim/--no-trim", default=True, show_default=True, help="Drop trailing blank rows.")
def shot_cmd(
    sid: str | None, fmt: str | None, ansi: bool, as_json: bool, plain: bool, trim: bool
) -> None:
    asked = [f"--{n}" for n, on in (("json", as_json), ("ansi", ansi), ("plain", plain)) if on]
    if fmt is not None:
        asked.append(f"--format {fmt}")
    if len(asked) > 1:
        raise click.UsageError(f"give one format, not {' and '.join(asked)}")
    fmt = fmt or ("json" if as_json else "ansi" if ansi else "plain")
    data, _, env, clock = home_here()
    target = target_sid(_only_live_worker(data) if sid is None else sid, False)
    shot = way_at(data, env, clock, target).screen(target, fmt, trim)
    click.echo(jsonio.dumps(shot, sort_keys=True) if fmt == "json" else str(shot["text"]))


def _only_live_worker(data: str) -> str:
    """The id `ss` shows when given none: the one live worker; with none or several, which
    screen is meant is unclear, so it asks for an id instead of guessing."""

    ids = sorted(s.id for s in live_workers(data))
    if len(ids) == 1:
        return ids[0]
    if not ids:
        raise LooopError("no live worker: give a session id (`looop ls -a` lists them)")
    raise LooopError(f"{len(ids)} live workers ({', '.join(ids)}): give the id of one")


@click.command("log", help="Print a session's output (ANSI stripped unless --raw).")
@click.argument("sid", required=False, shell_complete=idcomplete.sessions)
@click.option("--all", "every", is_flag=True, help="With -f: every live worker, new ones too.")
@click.option("--tail", "-n", type=count(), default=None, help="Last N lines.")
@click.option("--grep", default=None, help="Only lines matching this regex (before --tail).")
@click.option(
    "--since",
    "since_text",
    default=None,
    metavar="WHEN",
    help="Output since a time: 10m, 2h, 1d ago or 2026-11-27T09:00 (to within about 10 s; "
    "a pod's from the API's sinceSeconds).",
)
@click.option(
    "--from-byte", "since", type=count(0, MAX_OFFSET), default=None, help="From this byte offset."
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the session ends.")
@click.option("--raw", is_flag=True, help="Keep escape sequences.")
@click.option("--json", "as_json", is_flag=True, help='{"text","offset","done"} from --from-byte.')
def log_cmd(
    sid: str | None,
    every: bool,
    tail: int | None,
    grep: str | None,
    since_text: str | None,
    since: int | None,
    follow: bool,
    raw: bool,
    as_json: bool,
) -> None:
    if every != (sid is None) or (every and not follow):
        raise click.UsageError("give a session id, or -f --all for every live worker")
    data, _, env, clock = home_here()
    if sid is None:
        raise SystemExit(_follow_all(data, env, clock, raw, grep))
    when = None
    if since_text is not None:
        since, when = _since(clock, since_text, since)
    s = target_sid(sid, False)
    way = way_at(data, env, clock, s)
    if when is not None:
        since = way.offset_at(s, when)
    if follow:
        if tail is not None and since is None and way.kind == "local":  # a pod's: from 0
            since = _tail_first(data, s, tail, raw, grep)
        raise SystemExit(_follow(way, s, since, raw, grep))
    if as_json or since is not None:
        text, offset = way.log(s, since or 0, raw)
        text = pick_lines(text, grep, tail)
        if as_json:
            done = way.reach(s) == "over"
            click.echo(jsonio.dumps({"text": text, "offset": offset, "done": done}))
        else:
            sys.stdout.write(text)
        return
    text = way.tail(s, tail, raw, grep)
    sys.stdout.write(text if not text or text.endswith("\n") else text + "\n")


def _follow_all(
    data: str, env: Mapping[str, str], clock: Clock, raw: bool, grep: str | None
) -> int:
    """`log -f --all`: what every live worker prints from now on, each line led by its id
    (as `docker compose logs -f`); a worker started meanwhile is followed from its start."""
    pat = compile_pattern(grep) if grep else None
    at: dict[str, int] = {}
    part: dict[str, str] = {}
    first = True
    try:
        while True:
            for s in sorted(w.id for w in live_workers(data)):
                way = way_at(data, env, clock, s)
                if s not in at:  # one begun before us: from its end; a new one: whole
                    at[s] = 0
                    if first:
                        local = way.kind == "local"
                        at[s] = log_end(data, s) if local else way.log(s, 0, raw)[1]
                    click.echo(f"looop: following {s} (Ctrl-C to stop)", err=True)
                text, at[s] = way.log(s, at[s], raw)
                lines = (part.get(s, "") + text).split("\n")
                part[s] = lines.pop()
                shown = [f"{s} | {ln}\n" for ln in lines if pat is None or pat.search(ln)]
                sys.stdout.write("".join(shown))
            sys.stdout.flush()
            first = False
            time.sleep(0.25)
    except KeyboardInterrupt:
        return 0


def _since(clock: Clock, text: str, offset: int | None) -> tuple[int | None, float | None]:
    """`--since WHEN`: (None, its wall time); bare digits are v1.0's `--since OFFSET`."""
    if offset is not None:
        raise click.UsageError("give --since WHEN or --from-byte N, not both")
    if text.isdigit():
        return int(count(0, MAX_OFFSET).convert(int(text), None, None)), None
    return None, since_time(text, clock)


def _tail_first(data: str, s: str, tail: int, raw: bool, grep: str | None) -> int:
    """`log -f -n N`: the last N lines first; the offset what comes is read from."""
    start = log_end(data, s)
    shown = log_tail(data, s, tail, raw, grep, end=start)
    if shown:
        sys.stdout.write(shown + "\n")
        sys.stdout.flush()
    return start


def _follow(way: Backend, s: str, since: int | None, raw: bool, grep: str | None) -> int:
    """`log -f`: with --grep only the lines that match (whole lines: a part line waits for
    its end); a read that fails and is tried again is said once on stderr."""
    pat = compile_pattern(grep) if grep else None
    part = [""]

    def out(text: str) -> None:
        if pat is not None:
            lines = (part[0] + text).split("\n")
            part[0] = lines.pop()
            text = "".join(ln + "\n" for ln in lines if pat.search(ln))
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()

    def note(line: str) -> None:
        click.echo(f"looop: {line}", err=True)

    code = way.follow(s, since or 0, raw, out, note)
    if pat is not None and part[0] and pat.search(part[0]):
        sys.stdout.write(part[0] + "\n")  # the last line, which no newline ended
    return code


@click.command(
    "expect",
    help="Block until REGEX appears (exit 0), the session ends (1) or the timeout passes (124).",
)
@click.argument("sid", shell_complete=idcomplete.sessions)
@click.argument("pattern")
@click.option("--timeout", default=None, help="Duration (30s default; 0/none = forever).")
@click.option(
    "--since",
    type=count(0, MAX_OFFSET),
    default=None,
    help="Scan from this byte offset (e.g. from `send --json`).",
)
@click.option("--from-now", is_flag=True, help="Only output that arrives from now on.")
@click.option("--screen", is_flag=True, help="Match the rendered screen, not the log.")
@click.option("--raw", is_flag=True, help="Match escape sequences too.")
@click.option("--json", "as_json", is_flag=True)
def expect_cmd(sid: str, pattern: str, timeout: str | None, as_json: bool, **how: Any) -> None:
    try:
        re.compile(pattern)
    except re.error as e:
        raise click.UsageError(f"bad regex {pattern!r}: {e}") from None
    way, target = session_of(sid, False)
    # how: since, from_now, screen, raw
    code, matched, offset = way.expect(
        target, pattern, timeout_s=duration_arg(timeout, 30.0), **how
    )
    if as_json:
        click.echo(jsonio.dumps({"matched": matched, "offset": offset, "code": code}))
    elif matched is not None:
        click.echo(matched)
    raise SystemExit(code)


@click.command("wait-idle", help="Block until the session's output has been quiet for --settle.")
@click.argument("sid", shell_complete=idcomplete.sessions)
@click.option("--settle", default="500ms", show_default=True)
@click.option("--timeout", default=None, help="Duration (30s default; 0/none = forever).")
def wait_idle_cmd(sid: str, settle: str, timeout: str | None) -> None:
    way, target = session_of(sid, False)
    quiet, limit = duration_arg(settle, 0.5) or 0.0, duration_arg(timeout, 30.0)
    raise SystemExit(0 if way.wait_idle(target, quiet, limit) else 124)
