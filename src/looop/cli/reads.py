"""The read verbs: journal, help, and completion (the shell's script, by click itself; `config`
its first spelling, hidden). A module of their own, apart from the pulse's lifecycle verbs, so
`looop journal` loads what reading needs and not the pulse, the demo, doctor and the web
daemon (about 150 of looop's modules) to print a file; `looop runs` is cli/runs.py's."""

from __future__ import annotations

import os
import re
import select
import sys
from datetime import datetime
from pathlib import Path

import click
from click.shell_completion import get_completion_class

from looop.act.journal import journal_row
from looop.cli.app import make_ctx
from looop.cli.commands import ALIASES, count
from looop.cli.root import cli, did_you_mean
from looop.core.context import Ctx
from looop.home import jsonio, store
from looop.home.config import knob_lines
from looop.seed import package_text


@click.command(
    "help",
    help="Print the manual (through $PAGER or less on a terminal), one section of it "
    "(`looop help sandbox`), or the help of one verb (`looop help worker start`).",
    # v1.0's `help` takes no options: `help --json` is still a request for help
    context_settings={"ignore_unknown_options": True},
)
@click.argument("topic", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def help_cmd(ctx: click.Context, topic: tuple[str, ...]) -> None:
    words = [w for w in topic if not w.startswith("-")]
    if words:
        click.echo(_topic_help(words))
        return

    text = _manual()
    if sys.stdout.isatty():
        click.echo_via_pager(text)  # 700 lines: $PAGER (else less) on a terminal, as git does
    else:
        click.echo(text)


def _manual() -> str:
    """The manual as `looop help` prints it: the knobs' table filled in, this home's paths."""
    text = package_text("manual.md").rstrip().replace("{{knobs}}", "\n".join(knob_lines()))
    c = make_ctx(events_to=None)
    return f"{text}\n\nPATHS\n  config    {c.paths.config}\n  data dir  {c.paths.data}"


# a section's heading: capital words at the start of a line (`SPEND CONTROL`, `CONFIG  (…`)
HEADING = re.compile(r"([A-Z][A-Z]+(?: [A-Z]+)*)(?=\s|$)")


def manual_sections(text: str) -> dict[str, str]:
    """The manual's sections by name, each from its heading to the next heading."""
    out: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []
    for line in [*text.splitlines(), "END"]:
        m = HEADING.match(line)
        if m is None:
            lines.append(line)
            continue
        if name is not None:
            out[name] = "\n".join(lines).rstrip()
        name, lines = m.group(1), [line]
    return out


def _topic_help(words: list[str]) -> str:
    """A section of the manual named in any case (`sandbox`, `spend control`, `exit-codes`),
    with the verb's options after it when a verb has that name (`asks`); else a verb's help."""
    sections = manual_sections(_manual())
    name = " ".join(" ".join(words).replace("-", " ").replace("_", " ").split()).upper()
    section = sections.get(name)
    if section is None:
        return _verb_help(_topic_words(words), list(sections))
    verb = cli.get_command(click.Context(cli), name.lower()) if len(words) == 1 else None
    if verb is None or verb.hidden:  # `config`: the section, never completion's old spelling
        return section
    return f"{section}\n\n{_verb_help([name.lower()], list(sections))}"


def _topic_words(words: list[str]) -> list[str]:
    """`worker-start` and `worker_start` name `worker start`, as a topic does in v1.0's manual;
    a verb whose own name has a dash (`wait-idle`) stays whole."""
    if len(words) == 1 and cli.get_command(click.Context(cli), words[0]) is None:
        split = [w for w in words[0].replace("_", "-").split("-") if w]
        if len(split) > 1:
            return split
    return words


def _verb_help(words: list[str], topics: list[str]) -> str:
    """The --help text of `looop WORD…`, walking groups one word at a time."""
    cmd: click.Command = cli
    sub = click.Context(cli, info_name="looop")
    for n, word in enumerate(words):
        where = " ".join(["looop", *words[:n]])
        if not isinstance(cmd, click.Group):
            raise click.UsageError(
                f"`{where}` has no subcommands — `looop help {' '.join(words[:n])}`"
            )
        found = cmd.get_command(sub, word)
        if found is None:
            choices = [c for c in cmd.list_commands(sub) if n or c not in ALIASES]
            if n == 0:
                hint = did_you_mean(word, choices + [t.lower() for t in topics])
                raise click.UsageError(
                    f"no topic or verb '{word}' in `looop help`{hint} (topics: "
                    f"{', '.join(topics)}; verbs: `looop --help`)"
                )
            hint = did_you_mean(word, choices)
            raise click.UsageError(f"`{where}` has no '{word}'{hint} (`{where} --help` lists them)")
        cmd = found
        sub = click.Context(cmd, info_name=word, parent=sub)
    return cmd.get_help(sub)


@click.command("journal", help="Print the journal (one line per executed move).")
@click.option("-n", "--tail", "tail", type=count(), default=None, help="Only the last N lines.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until Ctrl-C.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (NDJSON).")
@click.option(
    "--all", "with_events", is_flag=True, help="Workers' ends and answers too (events.jsonl)."
)
def journal_cmd(tail: int | None, follow: bool, as_json: bool, with_events: bool) -> None:
    ctx = make_ctx(events_to=None)
    p = ctx.paths.journal
    start: tuple[tuple[int, int], int] | None = None
    if with_events and follow:
        raise click.UsageError("--all reads what happened so far: drop -f, or follow without it")
    if with_events:
        moves = [ln for ln in (store.read_text(p) or "").splitlines() if ln.strip()]
        lines = sorted(moves + _event_lines(ctx), key=lambda ln: str(journal_row(ln)["at"] or ""))
    elif follow:
        # one read fixes where following starts: a line appended meanwhile is not lost
        raw, start = _read_from(p)
        lines = [ln for ln in raw.decode("utf-8", "replace").splitlines() if ln.strip()]
    elif tail is not None:
        lines = store.tail_lines(p, tail)
    else:
        text = store.read_text(p)
        lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    if tail is not None:
        lines = lines[-tail:] if tail else []
    if not lines and not follow:
        if as_json:
            return  # an empty stream, not prose a parser would choke on
        click.echo(f"no journal yet ({p}).")
        return
    for ln in lines:
        click.echo(_journal_json(ln) if as_json else ln)
    if follow:
        try:
            _follow_journal(p, as_json, start)
        except KeyboardInterrupt:
            return  # Ctrl-C is how a follow ends: exit 0, no traceback


JOURNALED_EVENTS = ("worker_ended", "answer")  # what happened besides moves (RULE 1)


def _event_lines(ctx: Ctx) -> list[str]:
    """The events `journal --all` shows, as journal lines stamped in local time."""
    got = []
    for path in (ctx.paths.events.with_name(ctx.paths.events.name + ".1"), ctx.paths.events):
        for raw in (store.read_text(path) or "").splitlines():
            try:
                rec = jsonio.loads(raw)
                when = datetime.fromisoformat(str(rec["ts"]).replace("Z", "+00:00"))
            except (ValueError, KeyError, TypeError):
                continue
            if rec.get("event") in JOURNALED_EVENTS and isinstance(rec.get("line"), str):
                stamp = ctx.clock.local(when.timestamp()).strftime("%Y-%m-%d %H:%M")
                got.append(f"- {stamp} {' '.join(rec['line'].split())}")
    return got


def _read_from(p: Path) -> tuple[bytes, tuple[tuple[int, int], int] | None]:
    """The journal's whole lines and ((dev, inode), offset after them); (b"", None) when
    absent."""
    try:
        with store.open_regular(p) as f:
            raw = f.read()
            st = os.fstat(f.fileno())
    except FileNotFoundError:
        return b"", None
    whole = raw[: raw.rfind(b"\n") + 1]  # a half-written last line is printed once complete
    return whole, ((st.st_dev, st.st_ino), len(whole))


def _journal_json(line: str) -> str:
    return jsonio.dumps(journal_row(line), ensure_ascii=False)


def _follow_journal(
    p: Path, as_json: bool, start: tuple[tuple[int, int], int] | None, poll_s: float = 0.5
) -> None:
    """tail -f from `start`: print appended lines; a rotated journal is read from its start."""
    follower = store.Follower(p, start)
    while True:
        select.select([], [], [], poll_s)  # a journal has no change signal to block on
        for ln in follower.lines():
            click.echo(_journal_json(ln) if as_json else ln)


SHELLS = ["zsh", "bash", "fish"]


def _print_script(shell: str | None) -> None:
    if shell is None:
        raise click.UsageError(
            'name a shell: eval "$(looop completion zsh)" (or bash, fish) in your rc file'
        )
    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(cli, {}, "looop", "_LOOOP_COMPLETE").source())


@click.command(
    "completion", help='Print a shell completion script: eval "$(looop completion zsh)".'
)
@click.argument("shell", required=False, type=click.Choice(SHELLS))
def completion_cmd(shell: str | None) -> None:
    _print_script(shell)


@click.command("config", hidden=True, help="The old spelling of `looop completion`.")
@click.argument("shell", required=False, type=click.Choice(SHELLS))
def config_cmd(shell: str | None) -> None:
    if shell is None:  # someone after the config file, not a completion script
        raise click.UsageError(
            "`looop config zsh|bash|fish` is the old spelling of `looop completion zsh`; the "
            "config file is described by `looop help config` (`looop status` names its path)"
        )
    _print_script(shell)
