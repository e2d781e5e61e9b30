"""Entry point: a click-free fast path for the hottest read verbs, lazy click for the rest."""

from __future__ import annotations

import os
import sys
import time

from looop import __version__
from looop.core.termstream import SafeStream

TYPE_CHECKING = False  # not `from typing`: importing typing costs the hot path ~3 ms

if TYPE_CHECKING:
    from typing import NoReturn

    from looop.core.clock import Clock


def _fail(msg: str, code: int = 1) -> NoReturn:
    # lazy: only a failure pays for it (messages may quote untrusted text)
    from looop.core.termsafe import line_for_terminal

    sys.stderr.write(f"looop: {line_for_terminal(msg)}\n")
    raise SystemExit(code)


def _clock(env: dict[str, str], clock: Clock | None) -> Clock:
    if clock is not None:
        return clock
    from looop.core.clock import SystemClock  # lazy: hot path: `version` needs no clock

    return SystemClock(env.get("TZ"))


def _fast(argv: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    """Handle `version`, `status [--json]`, `claim`/`unclaim`, `tick [--force]` without click."""
    if argv[:1] in (["claim"], ["unclaim"]):
        from looop.cli.lease import parse_fast, run_lease  # lazy: only claim/unclaim need it

        parsed = parse_fast(argv)
        if parsed is not None:
            raise SystemExit(run_lease(*parsed, env, _clock(env, clock)))
    if argv[:1] == ["tick"]:
        from looop.cli.tickfast import parse_fast as parse_tick  # lazy: only tick needs it

        force = parse_tick(argv)
        if force is not None:
            from looop.cli.tickfast import run_tick  # lazy: only tick runs a beat

            run_tick(env, _clock(env, clock), force)
            return True
    if argv in (["version"], ["--version"], ["-V"]):
        sys.stdout.write(f"looop {__version__}\n")
        return True
    if argv and argv[0] in ("status", "state") and set(argv[1:]) <= {"--json"}:
        # lazy: only status loads its renderer and reader (`version` stays bare)
        from pathlib import Path

        from looop.cli.render import print_status
        from looop.core.paths import Paths
        from looop.loop.status import gather_status

        st = gather_status(Paths.resolve(env, Path.cwd()), env, _clock(env, clock))
        print_status(st, as_json="--json" in argv)
        return True
    return False


def _check_utf8(args: list[str]) -> None:
    """Arguments are text: a byte that is not UTF-8 (decoded by Python as a lone surrogate)
    would be journaled mangled and hashed differently from what ran, so it is refused."""
    for i, arg in enumerate(args, 1):
        if arg.isascii():
            continue
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = arg.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
            _fail(
                f"argument {i} is not valid UTF-8: '{shown[:60]}'; pass UTF-8 text — inside a "
                "shell command, write such bytes as printf escapes (printf '\\xff')"
            )


def _crash_report(exc: BaseException, env: dict[str, str]) -> NoReturn:
    """A bug, not bad input: one line for the user, the traceback in a file for a developer."""
    import traceback  # lazy: only a crash pays for it

    if env.get("LOOOP_DEBUG", "").strip() not in ("", "0"):
        raise exc
    trace = "".join(traceback.format_exception(exc))
    name = f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    where = "nowhere (could not write a crash file)"
    dirs: list[str] = []
    try:
        # lazy: only a crash pays for it
        from pathlib import Path

        from looop.core.paths import Paths

        dirs.append(str(Paths.resolve(env, Path.cwd()).data / "crash"))
    except Exception:
        pass
    import tempfile  # lazy: only a crash pays for it

    dirs.append(tempfile.gettempdir())
    for d in dirs:
        try:
            os.makedirs(d, exist_ok=True)
            path = os.path.join(d, name)
            with open(path, "x", encoding="utf-8", errors="backslashreplace") as f:
                f.write(trace)
            where = path
            break
        except Exception:
            continue
    first = " ".join(str(exc).split())[:200]
    _fail(
        f"internal error ({type(exc).__name__}: {first}) — this is a bug in looop; the details "
        f"are in {where} (set LOOOP_DEBUG=1 to see them here)",
        70,
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
    return args[0] in ("log", "shot", "screenshot") and (
        bool(_RAW_FLAGS.intersection(args)) or "ansi" in args
    )


def main(
    argv: list[str] | None = None,
    env: dict[str, str] | None = None,
    clock: Clock | None = None,
) -> None:
    """The entry point: the one place that reads the process's arguments and environment.

    Tests pass argv, an env and a frozen clock instead of touching the process's own."""
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
            _dispatch(args, env, clock)
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


def _dispatch(args: list[str], env: dict[str, str], clock: Clock | None) -> None:
    try:
        if _fast(args, env, clock):
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
    except OSError as e:
        # lazy: only a failing write pays for them
        import errno

        from looop.core.store import NotRegular

        if isinstance(e, NotRegular):
            _fail(
                f"{e.filename} is {e.strerror} — something else stands where looop keeps a "
                "file; move it away (looop recreates what it needs)"
            )
        if e.errno in (
            errno.EROFS,
            errno.EACCES,
            errno.EPERM,
            errno.ENOSPC,
            errno.EDQUOT,
            errno.ENOTDIR,
            errno.EISDIR,
            errno.ENAMETOOLONG,
            errno.ELOOP,
            errno.EMFILE,
            errno.ENFILE,
            errno.EIO,
        ):
            where = e.filename or "the data dir"
            # no claim about side effects here: a move may have run before the write failed
            _fail(
                f"cannot use {where}: {e.strerror} — check the path, free space or fix "
                "permissions (or point LOOOP_DATA_DIR elsewhere)"
            )
        _crash_report(e, env)
    except Exception as e:
        from looop.core.errors import LooopError  # lazy: hot path: `version` never fails

        if isinstance(e, LooopError):
            _fail(str(e))
        _crash_report(e, env)
