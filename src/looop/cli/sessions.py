"""Drive sessions: send, key, resize, attach, detach, flag, unflag; and what every session
verb shares (`restart`, `prune` and `worktrees` start or end workers: cli/workers.py's):
which session it means, and on which host it runs (the verbs that watch a session are
cli/sessionwatch.py's). `resize`, `attach` and `detach` are operations of the worker's
backend, wherever it runs (a pod's refusal is its engine's one line)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, cast

import click

from looop.cli import idcomplete
from looop.cli.commands import home_here
from looop.home import jsonio
from looop.home.clock import Clock
from looop.home.errors import LooopError
from looop.home.sessionfiles import flag_note
from looop.remote import worker_away
from looop.sessions.detachkey import parse_keys
from looop.sessions.durations import parse_duration, parse_size
from looop.sessions.keys import CTRL_FORMS, KEY_NAMES
from looop.sessions.state import validate_id
from looop.workers.backend import Backend, LocalBackend
from looop.workers.ids import normalise_target, strip_legacy_prefix

if TYPE_CHECKING:
    from looop.core.context import Ctx
    from looop.remote.kube.backend import HostedKube
    from looop.remote.ssh.backend import SshBackend


def target_sid(raw: str, drive: bool) -> str:
    """Verbs that type into or manage a session refuse the pulse; reading it is fine."""
    return normalise_target(raw) if drive else validate_id(strip_legacy_prefix(raw))


def session_of(raw: str, drive: bool) -> tuple[Backend, str]:
    """The backend a session verb drives and the session it means (see target_sid), the
    home read as `status` reads it: strings, no Ctx."""
    data, _, env, clock = home_here()
    sid = target_sid(raw, drive)
    return way_at(data, env, clock, sid), sid


def way_at(
    data: str, env: Mapping[str, str], clock: Clock, sid: str, there: bool = True
) -> Backend:
    """The backend of worker `sid`: a Kubernetes Job's from here, else this machine's
    sessions (see _far for one on an SSH host)."""
    far = _far(data, env, clock, sid, there)
    return far if far is not None else LocalBackend(data, clock)


def _far(
    data: str, env: Mapping[str, str], clock: Clock, sid: str, there: bool = True
) -> Backend | None:
    """A worker away's backend (None: a worker here). On an SSH host the same verb runs
    there, its output streams here and its exit code is this one's: this does not return,
    unless not `there` (an attach drives the host's terminal itself)."""
    far = worker_away(data, env, clock, sid)
    if there and far is not None and far.kind == "ssh":
        argv = _argv_again(click.get_current_context())
        raise SystemExit(cast("SshBackend", far).link.passthrough(argv, tty=False))
    return far


def far_worker(ctx: Ctx, sid: str) -> HostedKube | None:
    """A worker in a Kubernetes Job: its backend, which the verb drives from here (on an
    SSH host: see _far). None: a worker here."""
    return cast("HostedKube | None", _far(str(ctx.paths.data), ctx.env, ctx.clock, sid))


def _argv_again(c: click.Context) -> list[str]:
    """The verb's argv as parsed (options first, then `--` and the arguments), so the host
    runs exactly what was asked."""
    opts: list[str] = []
    args: list[str] = []
    for p in c.command.params:
        v = c.params.get(p.name or "")
        if isinstance(p, click.Argument):
            args += [str(x) for x in v] if isinstance(v, tuple) else ([] if v is None else [str(v)])
        elif isinstance(p, click.Option) and v is not None and v != p.default:
            if p.is_flag:
                if v:
                    opts.append(p.opts[0])
                elif p.secondary_opts:
                    opts.append(p.secondary_opts[0])
            else:
                opts += [p.opts[0], str(v)]
    return [c.info_name or c.command.name or "", *opts, "--", *args]


def since_time(text: str, clock: Clock, flag: str = "--since") -> float:
    """`--since`'s wall time: a duration ago (10m, 2h, 1d) or a time (2026-11-27T09:00, in
    the local zone unless it names one), as docker, kubectl and journalctl take it."""
    try:
        return clock.now() - (parse_duration(text) or 0.0)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.UsageError(
            f"{flag} {text!r}: give a duration (10m, 2h, 1d) or a time (2026-11-27T09:00)"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=clock.zone())).timestamp()


def duration_arg(text: str | None, default: float | None) -> float | None:
    """A duration option in seconds (`default` when not given); a bad one a usage error."""
    if text is None:
        return default
    try:
        return parse_duration(text)
    except ValueError as e:
        raise click.UsageError(str(e)) from None


def emit(data: object, as_json: bool, human: str | None = None) -> None:
    """The verb's result as JSON, else its line (none: a quiet verb without --json)."""
    if as_json or human is not None:
        click.echo(jsonio.dumps(data, sort_keys=True) if as_json else human)


@click.command(
    "send",
    help="Type TEXT into a session, then press Enter (CR) unless -n.",
    context_settings={"ignore_unknown_options": True},
)
@click.argument("sid", shell_complete=idcomplete.sessions)
@click.option(
    "-n", "--no-enter", "--no-newline", "no_newline", is_flag=True, help="Only type; no Enter."
)
@click.option("--json", "as_json", is_flag=True, help='Print {"sent","offset"} (for expect).')
@click.argument("text", nargs=-1, required=True)
def send_cmd(sid: str, no_newline: bool, as_json: bool, text: tuple[str, ...]) -> None:
    way, target = session_of(sid, True)
    # Enter is CR, as a terminal sends it: raw-mode TUIs submit on it (the PTY maps it to NL)
    line = " ".join(text) + ("" if no_newline else "\r")
    emit(way.send(target, line, False), as_json)


@click.command(
    "key",
    help="Send named keys to a session, in order (names are case-insensitive).\n\n"
    f"Keys: {', '.join(KEY_NAMES)}.\n\nControl keys: {CTRL_FORMS}.",
)
@click.argument("sid", shell_complete=idcomplete.sessions)
@click.argument("keys", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True)
def key_cmd(sid: str, keys: tuple[str, ...], as_json: bool) -> None:
    way, target = session_of(sid, True)
    emit(way.key(target, list(keys)), as_json)


@click.command("resize", help="Resize a session's terminal: COLSxROWS (the program sees SIGWINCH).")
@click.argument("sid", shell_complete=idcomplete.sessions)
@click.argument("size")
@click.option("--json", "as_json", is_flag=True)
def resize_cmd(sid: str, size: str, as_json: bool) -> None:
    try:
        cols, rows = parse_size(size)
    except ValueError as e:
        raise LooopError(str(e)) from None
    way, target = session_of(sid, True)
    res = way.resize(target, cols, rows)
    emit(res, as_json, f"resized {sid} to {cols}x{rows}")


@click.command(
    "attach", help="Attach this terminal to a session; Ctrl-\\ twice (or --detach-keys) detaches."
)
@click.argument("sid", shell_complete=idcomplete.sessions)
@click.option(
    "--passthrough",
    is_flag=True,
    help="Pass the worker's bytes to this terminal unfiltered: clipboard writes (OSC 52), "
    "titles and terminal queries included. Only for a worker you trust.",
)
@click.option(
    "--detach-keys",
    default="",
    metavar="KEYS",
    help="The keys that detach, in docker's spelling: ctrl-x,d (default: Ctrl-\\ twice).",
)
def attach_cmd(sid: str, passthrough: bool, detach_keys: str) -> None:
    try:
        parse_keys(detach_keys) if detach_keys else None
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    data, _, env, clock = home_here()
    target = target_sid(sid, True)
    way = way_at(data, env, clock, target, there=False)
    raise SystemExit(way.attach(target, passthrough, env, detach_keys))


@click.command("detach", help="Detach every terminal attached to a session.")
@click.argument("sid", shell_complete=idcomplete.sessions)
@click.option("--json", "as_json", is_flag=True)
def detach_cmd(sid: str, as_json: bool) -> None:
    way, target = session_of(sid, True)
    emit(way.detach(target), as_json, f"detached clients of {sid}")


@click.command("flag", help="Raise a ⚑ on a worker: it needs a human (wakes the pulse once).")
@click.argument("sid", shell_complete=idcomplete.sessions)
@click.argument("message", nargs=-1)
def flag_cmd(sid: str, message: tuple[str, ...]) -> None:
    text = " ".join(message) or "needs attention"
    click.echo(flag_note(home_here()[0], target_sid(sid, True), text))


@click.command("unflag", help="Lower a worker's ⚑.")
@click.argument("sid", shell_complete=idcomplete.sessions)
def unflag_cmd(sid: str) -> None:
    click.echo(flag_note(home_here()[0], target_sid(sid, True), None))
