"""The `looop` console entry: the worker contract's verbs an agent calls in a loop (claim,
unclaim, tell, told, cost report) served without click by their own room, every other verb
by click (cli/root.py); fewer garbage collections, and a verb ended without the interpreter's
teardown once nothing is left for it to do."""

from __future__ import annotations

import atexit
import gc
import os
import sys
from typing import TYPE_CHECKING

from looop.contract.verbs import BOX_VERBS, serve
from looop.home.terminal import SafeStream
from looop.verbs.failure import fail, fail_for

if TYPE_CHECKING:
    from typing import Any, NoReturn

    from looop.home.clock import Clock

GC_THRESHOLD = 50_000  # allocations between young collections (Python's default: 700)


def main() -> None:
    # Fewer collections: a verb ends before its garbage matters; a long-lived process sets
    # Python's own thresholds back (core/gcpolicy.py).
    gc.set_threshold(GC_THRESHOLD)
    _std_fds()
    code: Any = 0
    try:
        run()
    except SystemExit as e:
        code = e.code
    if _ended():
        _exit_now(code)
    raise SystemExit(code)


def _std_fds() -> None:
    """A closed stdin, stdout or stderr (`looop status >&-`) is /dev/null: a file looop opens
    would otherwise take its number, and what is said to that stream would land in the file."""
    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        try:
            os.fstat(fd)
            continue
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # the lowest free number: `fd`, the ones below open
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, "w" if fd else "r", closefd=False))  # noqa: SIM115 (the stream)


def _ended() -> bool:
    """A verb whose work is over, with no other thread and no exit hook: nothing the
    interpreter's teardown would still do that anyone could notice, while freeing a few
    hundred modules one by one costs a human's verb ~9 ms, near its whole work."""
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        return False
    return atexit._ncallbacks() == 0


def _exit_now(code: Any) -> None:
    """Exit as SystemExit(code) would, without the interpreter's teardown: the output is
    flushed first, and no verb keeps another buffered file open past its work (home/store.py
    writes through descriptors it closes)."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code & 0xFF
    else:
        try:
            sys.stderr.write(f"{code}\n")
        except (OSError, ValueError):
            pass
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a reader that went away: nothing left to say to it
    os._exit(status)


def _failed(why: str | Exception, env: dict[str, str]) -> NoReturn:
    """A refused argument (`why` its words) or a verb's exception, worded as click words it."""
    if isinstance(why, str):
        fail(why)
    fail_for(why, env)


def _check_utf8(args: list[str], env: dict[str, str]) -> None:
    """Arguments are text: a byte that is not UTF-8 (decoded by Python as a lone surrogate)
    would be journaled mangled and hashed differently from what ran, so it is refused."""
    for i, arg in enumerate(args, 1):
        if "\0" in arg:  # no exec'd argv holds one; a path with it would crash a verb
            _failed(f"argument {i} holds a NUL byte; pass text without it", env)
        if arg.isascii():
            continue
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = arg.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
            _failed(
                f"argument {i} is not valid UTF-8: '{shown[:60]}'; pass UTF-8 text — inside a "
                "shell command, write such bytes as printf escapes (printf '\\xff')",
                env,
            )


# Verbs whose job is a terminal's own bytes, asked for explicitly; every other verb's text
# output is defused (home/terminal.py: SafeStream).
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


def run(
    argv: list[str] | None = None,
    env: dict[str, str] | None = None,
    clock: Clock | None = None,
) -> None:
    """The one place that reads the process's arguments and environment.

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
    _check_utf8(args, env)
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
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _served(args: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    """A contract verb in its plain spelling, served here without click; a sandboxed worker's
    goes through its box's door."""
    if args and args[0] in BOX_VERBS and env.get("LOOOP_DOOR"):
        # lazy: the way home (socket, ~4 ms on a contract verb): a boxed worker's verb only
        from looop.remote.boxdoor import knock

        raise SystemExit(knock(args, env))
    return serve(args, env, clock)


def _root_help(args: list[str], env: dict[str, str]) -> bool:
    """`looop --help` as click renders it at 80 columns (cli/help.txt, held to it by
    tests/unit/cli/test_help_examples.py), without loading click (four Python starts' worth);
    a narrower terminal gets click's own wrapping."""
    if args not in (["--help"], ["-h"]):
        return False
    cols = env.get("COLUMNS", "")  # the terminal measured as click does (shutil's way)
    if not cols.isdigit() or int(cols) == 0:
        try:
            cols = str(os.get_terminal_size(sys.__stdout__.fileno()).columns)  # type: ignore[union-attr]
        except (AttributeError, OSError, ValueError):
            cols = "80"
    if int(cols) < 80:
        return False
    text = os.path.join(os.path.dirname(os.path.dirname(__file__)), "cli", "help.txt")
    with open(text, encoding="utf-8") as f:
        sys.stdout.write(f.read())
    return True


def _dispatch(args: list[str], env: dict[str, str], clock: Clock | None) -> None:
    try:
        if _served(args, env, clock) or _root_help(args, env):
            return
        # lazy: click (~20 ms): every verb a human types, never a contract verb
        from looop.cli.root import run_click

        run_click(args, env, clock)
    except BrokenPipeError:
        # stdout went away (`looop journal | head`): exit quietly like a well-behaved filter
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(0) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as e:
        _failed(e, env)
