"""Entry point: a click-free fast path for the hottest read verbs, lazy click for the rest."""

from __future__ import annotations

import os
import sys

import looop
from looop.home.contractverbs import BOX_VERBS
from looop.home.terminal import SafeStream

TYPE_CHECKING = False  # not `from typing`: importing typing costs the hot path ~3 ms

if TYPE_CHECKING:
    from typing import NoReturn

    from looop.home.clock import Clock


# The fast verbs: each verb's face module, loaded only for its verb. A face's `serve` parses only
# the plain spellings of its verb and returns False for anything else (--help, odd flags, a
# mistake it cannot word as click does): click takes those. Both faces call the same work
# function, so output, exit code and files stay the same.
_FACES = {
    "version": "looop.verbs.table",
    "--version": "looop.verbs.table",
    "-V": "looop.verbs.table",
    "status": "looop.verbs.status",
    "state": "looop.verbs.status",
    "ls": "looop.verbs.ls",
    "claim": "looop.verbs.claim",
    "unclaim": "looop.verbs.claim",
    "told": "looop.verbs.told",
    "tell": "looop.verbs.tell",
    "cost": "looop.verbs.cost",
    "shot": "looop.verbs.screen",
    "screenshot": "looop.verbs.screen",
    "ss": "looop.verbs.screen",
    "send": "looop.verbs.screen",
    "key": "looop.verbs.screen",
    "log": "looop.verbs.log",
    "logs": "looop.verbs.log",
    "tick": "looop.verbs.tick",
    "worker": "looop.verbs.worker",
    "w": "looop.verbs.worker",
    "kill": "looop.verbs.kill",
}
# `worker`'s verbs another face serves, handed the argv from that verb on (`kill ID`, `list
# -a`): a start never loads the fleet table's modules.
_WORKER_FACES = {"kill": "looop.verbs.kill", "list": "looop.verbs.ls", "ls": "looop.verbs.ls"}
DOOR_FACE = "looop.remote.boxdoor"

# The fast verbs whose process the console entry (verbs/console.py) ends without the
# interpreter's teardown once served: every one. A beat and a worker start load ~300 modules,
# and freeing them one by one cost more than a status does; what teardown would still do
# (another thread, an exit hook, click's) is checked there before the fast exit is taken.
FACE_VERBS = frozenset(_FACES)


def serve(argv: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    """`looop version`: this module is its face."""
    if len(argv) != 1:
        return False
    sys.stdout.write(f"looop {looop.__version__}\n")
    return True


def _fast(argv: list[str], env: dict[str, str], clock: Clock | None) -> bool:
    """Serve the hot verbs without importing click (or typing, pathlib, re, json); True when
    served. Workers call these many times an hour."""
    name = _FACES.get(argv[0]) if argv else None
    if argv and argv[0] in BOX_VERBS and env.get("LOOOP_DOOR"):
        name = DOOR_FACE  # a sandboxed worker: its contract verbs go through its box's door
    if name is None:
        return False
    if name == _FACES["worker"] and len(argv) > 1 and argv[1] in _WORKER_FACES:
        name, argv = _WORKER_FACES[argv[1]], argv[1:]
    face = __import__(name, fromlist=("serve",))  # lazy: the verb table: a verb loads its face
    served: bool = face.serve(argv, env, clock)
    return served


def _failed(why: str | Exception, env: dict[str, str]) -> NoReturn:
    """A refused argument (`why` its words) or a verb's exception, worded as click words it."""
    from looop.cli.failure import fail, fail_for  # lazy: the failure's door: only it pays

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
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _dispatch(args: list[str], env: dict[str, str], clock: Clock | None) -> None:
    try:
        if _fast(args, env, clock):
            return
        from looop.cli.root import run_click  # lazy: the verb table's click door (not fast verbs)

        run_click(args, env, clock)
    except BrokenPipeError:
        # stdout went away (`looop journal | head`): exit quietly like a well-behaved filter
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(0) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as e:
        _failed(e, env)
