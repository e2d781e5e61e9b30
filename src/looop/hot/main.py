"""Entry point: a click-free fast path for the hottest read verbs, lazy click for the rest."""

from __future__ import annotations

import os
import sys
import time

from looop import __version__
from looop.hot.termstream import SafeStream

TYPE_CHECKING = False  # not `from typing`: importing typing costs the hot path ~3 ms

if TYPE_CHECKING:
    from looop.hot.clock import Clock


def _clock(env: dict[str, str], clock: Clock | None) -> Clock:
    if clock is not None:
        return clock
    from looop.hot.clock import SystemClock  # lazy: hot path: `version` needs no clock

    return SystemClock(env.get("TZ"))


def _now(clock: Clock | None) -> float:
    return clock.now() if clock is not None else time.time()


# The fast verbs. Each handler parses only the plain spellings of its verb and returns False for
# anything else (--help, odd flags, a mistake it cannot word as click does): click takes those.
# Both faces call the same work function, so output, exit code and files stay the same.


def _fast_version(argv: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    if len(argv) != 1:
        return False
    sys.stdout.write(f"looop {__version__}\n")
    return True


def _fast_status(argv: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    if not set(argv[1:]) <= {"--json"}:
        return False
    # lazy: only status loads its renderer and reader (`version` stays bare)
    from looop.hot import where
    from looop.hot.render import colour_on, print_status
    from looop.hot.status import config_trouble, gather_status_at

    data, config = where.resolve(env, os.getcwd())
    as_json = "--json" in argv  # the JSON lists every worker; the text counts the finished
    st = gather_status_at(data, config, env, _clock(env, clock), all_workers=as_json)
    print_status(st, as_json, colour_on(not as_json and sys.stdout.isatty(), env))
    if config_trouble(st):
        raise SystemExit(1)  # the whole status printed; scripts see the config is wrong
    return True


def _fast_ls(argv: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    flags = set(argv[1:])
    if not flags <= {"-a", "--all", "--json"}:
        return False  # --watch, --interval, --help and mistakes: click's
    # lazy: only ls loads the fleet readers
    from looop.hot import where
    from looop.hot.config import load_config, resolve_knobs
    from looop.hot.errors import LooopError
    from looop.hot.fleet import fleet_rows_at
    from looop.hot.plain import echo
    from looop.hot.render import colour_on, fleet_json, fleet_table

    try:
        data, config = where.resolve(env, os.getcwd())
        warned: list[str] = []
        knobs = resolve_knobs(load_config(config), env, warned.append)
    except LooopError:
        return False  # click's face says it (a broken config warns, then the defaults stand)
    if warned:
        return False  # ... and so are the config warnings, written as events
    rows = fleet_rows_at(
        data,
        _clock(env, clock),
        knobs.num("worker_stuck_secs"),
        bool(flags & {"-a", "--all"}),
        env,
    )
    if "--json" in flags:
        echo(fleet_json(rows))
    else:
        echo(fleet_table(rows, colour_on(sys.stdout.isatty(), env)))
    return True


def _fast_lease(argv: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    from looop.hot.claims import parse_fast, run_lease  # lazy: only claim/unclaim need it

    parsed = parse_fast(argv)
    if parsed is None:
        return False
    raise SystemExit(run_lease(*parsed, env, _now(clock)))


def _fast_told(argv: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    from looop.hot.tells import parse_told, run_told  # lazy: only told needs it

    parsed = parse_told(argv)
    if parsed is None:
        return False
    run_told(*parsed, env)
    return True


def _fast_tell(argv: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    from looop.hot.tells import parse_tell, run_tell  # lazy: only tell needs it

    parsed = parse_tell(argv)
    if parsed is None:
        return False
    run_tell(*parsed, env, _now(clock))
    return True


def _fast_cost(argv: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    from looop.hot.costrow import parse_fast, run_fast  # lazy: only cost reports need it

    parsed = parse_fast(argv)
    if parsed is None:
        return False
    run_fast(parsed, env, _now(clock))
    return True


def _fast_drive(argv: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    from looop.hot.drive import serve  # lazy: only shot/send/key/log read a session

    return serve(argv, env)


class Served(SystemExit):
    """The verb ran in a child of the beat host; this process only waited for its exit code,
    so it ends as a light verb does (see looop.hot.boot)."""


def _fast_tick(
    argv: list[str], env: dict[str, str], clock: Clock | None, caller: int | None = None
) -> bool:
    from looop.hot.tickfast import parse_fast  # lazy: only tick needs it

    force = parse_fast(argv)
    if force is None:
        return False
    if clock is None:  # an injected clock (tests, the beat host's own child) beats here
        from looop.hot.beatclient import beat_remotely  # lazy: only tick talks to the host

        code = beat_remotely(argv, env)
        if code is not None:
            raise Served(code)
    from looop.hot.tickfast import run_tick  # lazy: only tick runs a beat

    run_tick(env, _clock(env, clock), force, caller)
    return True


def _fast_kill(argv: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    from looop.hot.killfast import parse_fast, run_fast  # lazy: only kill needs it

    parsed = parse_fast(argv)
    if parsed is None:
        return False
    if clock is None:  # as a worker start: a child of the beat host runs the move
        from looop.hot.beatclient import beat_remotely  # lazy: only a kill talks to the host

        code = beat_remotely(argv, env)
        if code is not None:
            raise Served(code)
    run_fast(parsed, env, _clock(env, clock))
    return True


def _fast_worker(argv: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    if argv[1:2] == ["kill"]:
        return _fast_kill(argv, env, clock)
    from looop.hot.workerstart import parse_fast, run_fast  # lazy: only worker start needs it

    parsed = parse_fast(argv)
    if parsed is None:
        return False
    if clock is None:  # as a tick: a child of the beat host starts it, the imports paid once
        from looop.hot.beatclient import beat_remotely  # lazy: only a start talks to the host

        code = beat_remotely(argv, env)
        if code is not None:
            raise Served(code)
    run_fast(parsed, env, _clock(env, clock))
    return True


_FAST = {
    "version": _fast_version,
    "--version": _fast_version,
    "-V": _fast_version,
    "status": _fast_status,
    "state": _fast_status,
    "ls": _fast_ls,
    "claim": _fast_lease,
    "unclaim": _fast_lease,
    "told": _fast_told,
    "tell": _fast_tell,
    "cost": _fast_cost,
    "shot": _fast_drive,
    "screenshot": _fast_drive,
    "ss": _fast_drive,
    "send": _fast_drive,
    "key": _fast_drive,
    "log": _fast_drive,
    "logs": _fast_drive,
    "tick": _fast_tick,
    "worker": _fast_worker,
    "w": _fast_worker,
    "kill": _fast_kill,
}
# The fast verbs that end within moments once served (a beat and a worker start do not): the
# console entry (looop.hot.boot) ends their process without the interpreter's teardown.
SHORT_VERBS = frozenset(_FAST) - {"tick", "worker", "w"}


def _fast(
    argv: list[str], env: dict[str, str], clock: Clock | None, caller: int | None = None
) -> bool:
    """Serve the hot verbs without importing click (or typing, pathlib, re, json); True when
    served. Workers call these many times an hour. `caller`: see `main`."""
    if caller is not None and argv[:1] == ["tick"]:
        return _fast_tick(argv, env, clock, caller)
    handler = _FAST.get(argv[0]) if argv else None
    return handler is not None and handler(argv, env, clock)


def _check_utf8(args: list[str]) -> None:
    """Arguments are text: a byte that is not UTF-8 (decoded by Python as a lone surrogate)
    would be journaled mangled and hashed differently from what ran, so it is refused."""
    for i, arg in enumerate(args, 1):
        if "\0" in arg:  # no exec'd argv holds one; a path with it would crash a verb
            from looop.cli.failure import fail  # lazy: only a bad argument pays for it

            fail(f"argument {i} holds a NUL byte; pass text without it")
        if arg.isascii():
            continue
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = arg.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
            from looop.cli.failure import fail  # lazy: only a bad argument pays for it

            fail(
                f"argument {i} is not valid UTF-8: '{shown[:60]}'; pass UTF-8 text — inside a "
                "shell command, write such bytes as printf escapes (printf '\\xff')"
            )


# Verbs whose job is a terminal's own bytes, asked for explicitly; every other verb's text
# output is defused (core.termstream.SafeStream).
_RAW_VERBS = frozenset({"attach", "watch"})
_RAW_FLAGS = frozenset({"--raw", "--ansi", "--format=ansi"})


def _raw_output(args: list[str]) -> bool:
    if not args:
        return False
    if args[0] in _RAW_VERBS:
        return True
    return args[0] in ("log", "logs", "shot", "screenshot", "ss") and (
        bool(_RAW_FLAGS.intersection(args)) or "ansi" in args
    )


def main(
    argv: list[str] | None = None,
    env: dict[str, str] | None = None,
    clock: Clock | None = None,
    *,
    caller: int | None = None,
) -> None:
    """The entry point: the one place that reads the process's arguments and environment.

    Tests pass argv, an env and a frozen clock instead of touching the process's own. The
    beat host's child passes `caller`, the pid of the `looop tick` it runs for (the one a
    user sees, named as the beat's holder)."""
    if env is None:
        env = dict(os.environ)
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "_":  # the seed spelled internal verbs `looop _ claim x`
        args = args[1:]
    for stream in (sys.stdout, sys.stderr):
        # text from agents may hold lone surrogates: print their escapes rather than crash
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):
                pass
    _check_utf8(args)
    try:
        if _raw_output(args):
            _dispatch(args, env, clock)
            return
        out, err = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = SafeStream(out), SafeStream(err)
        try:
            _dispatch(args, env, clock, caller)
        finally:
            sys.stdout, sys.stderr = out, err
    finally:
        _flush_quietly()


def _flush_quietly() -> None:
    """Flush stdout now, so a reader that went away (`looop journal | head`) costs a quiet
    exit here rather than "Exception ignored" from the interpreter's own last flush."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _dispatch(
    args: list[str], env: dict[str, str], clock: Clock | None, caller: int | None = None
) -> None:
    try:
        if _fast(args, env, clock, caller):
            return
        from looop.cli.root import run_click  # lazy: hot path: the fast verbs never load click

        run_click(args, env, clock)
    except BrokenPipeError:
        # stdout went away (`looop journal | head`): exit quietly like a well-behaved filter
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(0) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as e:
        from looop.cli.failure import fail_for  # lazy: hot path: only a failure pays for it

        fail_for(e, env)
