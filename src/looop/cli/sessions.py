"""Drive sessions: send, key, resize, restart, attach, detach, prune, flag, unflag, and
`worktrees` (the kept worktrees of finished workers); and what every session verb shares:
which session it means, and on which host it runs (the verbs that watch a session are
cli/sessionwatch.py's). `resize`, `attach` and `detach` are operations of the worker's
backend, wherever it runs (a pod's refusal is its engine's one line)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from looop.act.moves.far import backend_for, here
from looop.cli import idcomplete
from looop.cli.app import make_ctx, show_rows
from looop.core.context import Ctx
from looop.home import jsonio, where
from looop.home.errors import LooopError
from looop.sessions.client import restart
from looop.sessions.detachkey import parse_keys
from looop.sessions.durations import parse_duration, parse_size
from looop.sessions.keys import CTRL_FORMS, KEY_NAMES
from looop.sessions.state import KEPT, flag, list_sessions, prune_aged, unflag, validate_id
from looop.views.beatlog import relative
from looop.workers.backend import Backend
from looop.workers.ids import normalise_target, strip_legacy_prefix
from looop.workers.kepttrees import kept_trees
from looop.workers.resume import restart_worker
from looop.workers.worktree import end_generation

if TYPE_CHECKING:
    from looop.remote.kube.backend import HostedKube


def target_sid(raw: str, drive: bool) -> str:
    """Verbs that type into or manage a session refuse the pulse; reading it is fine."""
    return normalise_target(raw) if drive else validate_id(strip_legacy_prefix(raw))


def session_of(raw: str, drive: bool) -> tuple[Ctx, str]:
    """The Ctx a session verb runs on and the session it means (see target_sid)."""
    return make_ctx(events_to=None), target_sid(raw, drive)


def far_worker(ctx: Ctx, sid: str, tty: bool = False) -> HostedKube | None:
    """A worker on another host. On an SSH host the same verb runs there, its output streams
    here and its exit code is this one's (remote/ssh): this does not return. In a
    Kubernetes Job: its backend, which the verb drives from here (remote/kube). None: a
    worker here."""
    if not (ctx.paths.data / where.HOSTS / where.HOST_WORKERS / f"{sid}.json").exists():
        return None  # one stat: a home without hosts pays nothing for asking
    # lazy: the SSH and Kubernetes rooms (25-45 ms of CPU), for a worker away only
    from looop.remote.engine import far_session

    return far_session(ctx, sid, _argv_again(click.get_current_context()), tty)


def worker_way(ctx: Ctx, sid: str) -> Backend:
    """The backend a session verb drives: a Kubernetes Job's from here, else this machine's
    sessions (a worker on an SSH host: the verb runs there and this does not return)."""
    far = far_worker(ctx, sid)
    return far if far is not None else here(ctx)


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


def duration_arg(text: str | None, default: float | None) -> float | None:
    """A duration option in seconds (`default` when not given); a bad one a usage error."""
    if text is None:
        return default
    try:
        return parse_duration(text)
    except ValueError as e:
        raise click.UsageError(str(e)) from None


def _emit(data: object, as_json: bool, human: str | None = None) -> None:
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
    ctx, target = session_of(sid, True)
    # Enter is CR, as a terminal sends it: raw-mode TUIs submit on it (the PTY maps it to NL)
    line = " ".join(text) + ("" if no_newline else "\r")
    _emit(worker_way(ctx, target).send(target, line, False), as_json)


@click.command(
    "key",
    help="Send named keys to a session, in order (names are case-insensitive).\n\n"
    f"Keys: {', '.join(KEY_NAMES)}.\n\nControl keys: {CTRL_FORMS}.",
)
@click.argument("sid", shell_complete=idcomplete.sessions)
@click.argument("keys", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True)
def key_cmd(sid: str, keys: tuple[str, ...], as_json: bool) -> None:
    ctx, target = session_of(sid, True)
    _emit(worker_way(ctx, target).key(target, list(keys)), as_json)


@click.command("resize", help="Resize a session's terminal: COLSxROWS (the program sees SIGWINCH).")
@click.argument("sid", shell_complete=idcomplete.sessions)
@click.argument("size")
@click.option("--json", "as_json", is_flag=True)
def resize_cmd(sid: str, size: str, as_json: bool) -> None:
    try:
        cols, rows = parse_size(size)
    except ValueError as e:
        raise LooopError(str(e)) from None
    ctx, target = session_of(sid, True)
    res = backend_for(ctx, target).resize(target, cols, rows)
    _emit(res, as_json, f"resized {sid} to {cols}x{rows}")


@click.command(
    "restart",
    help="Restart a session's command (the log keeps growing); a worker with a recorded agent "
    "conversation starts again on it, dead or alive.",
)
@click.argument("sid", shell_complete=idcomplete.sessions)
@click.option("--json", "as_json", is_flag=True)
def restart_cmd(sid: str, as_json: bool) -> None:
    ctx, target = session_of(sid, True)
    far = far_worker(ctx, target)  # a worker on an SSH host restarts there
    if far is not None:
        raise LooopError(
            f"worker {target} runs in a Kubernetes Job on host {far.host.name}: `looop restart` "
            f"does not reach it — kill it and start it again (`looop kill {target}`)"
        )
    done = restart_worker(ctx, ctx.knobs(), target)
    if done is not None:
        conv = done.get("conversation")
        _emit(done, as_json, f"resumed {target}" + (f" on conversation {conv}" if conv else ""))
        return
    _emit(restart(ctx.paths.data, target), as_json, f"restarting {sid}")


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
    ctx, target = session_of(sid, True)
    way = backend_for(ctx, target)
    raise SystemExit(way.attach(target, passthrough, ctx.env, detach_keys))


@click.command("detach", help="Detach every terminal attached to a session.")
@click.argument("sid", shell_complete=idcomplete.sessions)
@click.option("--json", "as_json", is_flag=True)
def detach_cmd(sid: str, as_json: bool) -> None:
    ctx, target = session_of(sid, True)
    _emit(backend_for(ctx, target).detach(target), as_json, f"detached clients of {sid}")


@click.command(
    "prune",
    help="Remove every finished worker session now (transcripts included); a stopped "
    "pulse's log is kept: it says why it stopped.",
)
@click.option("--dry-run", is_flag=True)
def prune_cmd(dry_run: bool) -> None:
    ctx = make_ctx(events_to=None)
    if dry_run:
        dead = [s.id for s in list_sessions(ctx.paths.data) if not s.alive and s.id not in KEPT]
        click.echo("would remove: " + (", ".join(dead) or "nothing"))
        return
    gone = prune_aged(ctx.paths.data, 0, ctx.clock.now())
    if gone:
        said = make_ctx()  # a kept worktree is said on stderr
        for sid in gone:
            end_generation(said, sid)  # its worktree removed (a dirty one kept and said)
    click.echo(f"pruned {len(gone)} session(s)" + (f": {', '.join(gone)}" if gone else ""))


@click.command("flag", help="Raise a ⚑ on a worker: it needs a human (wakes the pulse once).")
@click.argument("sid", shell_complete=idcomplete.sessions)
@click.argument("message", nargs=-1)
def flag_cmd(sid: str, message: tuple[str, ...]) -> None:
    ctx, s = session_of(sid, True)
    text = " ".join(message) or "needs attention"
    flag(ctx.paths.data, s, text)
    click.echo(f"⚑ {s}: {text}")


@click.command("unflag", help="Lower a worker's ⚑.")
@click.argument("sid", shell_complete=idcomplete.sessions)
def unflag_cmd(sid: str) -> None:
    ctx, s = session_of(sid, True)
    unflag(ctx.paths.data, s)
    click.echo(f"unflagged {s}")


@click.command(
    "worktrees",
    help="List the worktrees of workers that no longer run: id, path, branch, dirty or "
    "clean, kept for how long, when it expires (a dirty one is saved as a patch first).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
def worktrees_cmd(as_json: bool) -> None:
    ctx = make_ctx(events_to=None)
    knobs = ctx.knobs()
    now = ctx.clock.now()
    rows = [k.row(now) for k in kept_trees(ctx, knobs)]

    def line(r: dict[str, Any]) -> str:
        age = relative(-float(r["age_s"])) if isinstance(r["age_s"], int) else "—"
        exp = r["expires_at"]
        if isinstance(exp, int):
            ends = f"expires {relative(exp - now)}"
        elif r["state"] == "dirty":
            ends = "kept until its session is reaped"
        else:
            ends = "removed when its session is reaped"
        head = f"{r['id']:<16} {r['state']:<10} {r['branch']:<24} kept {age:<10}"
        return f"{head} {ends}\n  {r['path']}"

    empty = "no worktrees of workers that no longer run"
    if not show_rows(rows, as_json, empty, line, indent=2, ensure_ascii=False):
        return
    keep = knobs.num("worktree_keep_days")
    click.echo(
        f"a dirty worktree is kept {keep} days (worktree_keep_days), warned 2 days before, "
        "then its work is saved as a patch under <data>/worktrees/ and it is removed"
    )
