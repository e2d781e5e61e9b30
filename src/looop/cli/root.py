"""The click root group with lazily imported subcommands, and what --help shows of each beyond
its options (cli/verbs.txt)."""

from __future__ import annotations

import importlib
import os
import re
from types import ModuleType
from typing import Any, NoReturn

import click

import looop
from looop.cli.commands import ALIASES, COMMANDS, HIDDEN, SUBVERBS, Entry
from looop.home.clock import Clock
from looop.home.errors import LooopError, UsageMistake, nearest

# The words people bring from docker compose, kubectl, supervisorctl, pm2, systemctl and gh,
# and looop's for them; a suggestion is offered only where its first word is a verb there.
FOREIGN: dict[str, tuple[str, ...]] = {
    "start": ("up", "worker start"),
    "stop": ("down", "kill"),
    "ps": ("ls",),
    "list": ("ls", "list"),
    "rm": ("kill", "goal rm", "rm"),
    "remove": ("kill", "goal rm", "rm"),
    "delete": ("kill", "goal rm", "rm"),
    "logs": ("log",),
    "tail": ("log -f",),
    "top": ("watch",),
    "monit": ("watch",),
    "get": ("ls", "status"),
    "describe": ("status", "shot"),
    "exec": ("run", "send"),
    "new": ("worker start", "goal write"),
    "create": ("worker start", "goal write"),
    "info": ("status",),
}


def _read_verbs(text: str) -> tuple[dict[str, str], dict[str, list[str]], dict[str, str]]:
    """cli/verbs.txt: each command path's row in `looop --help` (`short:`), its examples and
    the words of a --json that says nothing of its own (`json:`)."""
    short: dict[str, str] = {}
    examples: dict[str, list[str]] = {}
    json_help: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if line.startswith("[") and line.endswith("]"):
            key = line[1:-1]
        elif line.startswith(("short: ", "json: ")):
            kind, _, said = line.partition(": ")
            (short if kind == "short" else json_help)[key] = said
        elif line and not line.startswith("#"):
            examples.setdefault(key, []).append(line)
    return short, examples, json_help


# os.path, not pathlib: `looop version` and the verbs that never touch a path skip its imports
with open(os.path.join(os.path.dirname(__file__), "verbs.txt"), encoding="utf-8") as _f:
    SHORT, EXAMPLES, JSON_HELP = _read_verbs(_f.read())


def epilog(key: str) -> str | None:
    lines = EXAMPLES.get(key)
    # \b keeps click from rewrapping the lines into one paragraph
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines) if lines else None


def _show(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(ctx.get_help(), color=ctx.color)
        ctx.exit()


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        version_cmd.callback()  # type: ignore[misc]
        ctx.exit()


def own_help(cmd: click.Command) -> None:
    """Its -h/--help as click's own, worded here: click words it through gettext, which loads
    the locale module (~1 ms of every verb) to say it in English."""
    used = {n for p in cmd.params for n in (*p.opts, *p.secondary_opts)}
    names = [n for n in ("-h", "--help") if n not in used]
    if cmd.add_help_option and names:
        cmd.add_help_option = False
        said = "Show this message and exit."
        cmd.params.append(click.Option(names, is_flag=True, expose_value=False, is_eager=True,
                                       callback=_show, help=said))  # fmt: skip


def attach(cmd: click.Command, key: str) -> None:
    """Give cmd (and a group's subcommands) its examples, --json words and help option, where
    it has none. key: the verb's own spelling (`worker list` for `ls`: cli/commands.ALIASES)."""
    own_help(cmd)
    if cmd.epilog is None:
        cmd.epilog = epilog(key)
    for p in cmd.params:
        if isinstance(p, click.Option) and "--json" in p.opts and not p.help:
            p.help = JSON_HELP.get(key)
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            attach(sub, f"{key} {name}")


def usage_error(msg: str) -> NoReturn:
    """A usage mistake, said as one line by the console's failure words (verbs/failure.py)."""
    raise UsageMistake(msg)


def did_you_mean(word: str, choices: list[str], also: frozenset[str] = frozenset()) -> str:
    """' — did you mean `x`?' for a near miss or another tool's word, else ''. `also`: more
    words another tool's word may lead to (the root's aliases: `ps` -> `ls`)."""
    known = set(choices) | also
    close = [c for c in FOREIGN.get(word.lower(), ()) if c.split()[0] in known]
    close += [c for c in nearest(word, choices, 2) if c not in close]
    return f" — did you mean {' or '.join(f'`{c}`' for c in close[:3])}?" if close else ""


def loaded(family: str) -> ModuleType:
    """A verb's module (COMMANDS, SUBVERBS), loaded when the verb runs, not before."""
    return importlib.import_module(family)


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(c for c in COMMANDS if c not in HIDDEN)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            usage_error(
                f"no verb '{name}'{did_you_mean(name, self._verbs(ctx), frozenset(ALIASES))} "
                "(`looop --help` lists every verb)"
            )
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # the reader went away (`looop journal | head`): a quiet end, as a filter's (click
            # would exit 1); the entry (verbs/console.py) points stdout at /dev/null
            raise click.exceptions.Exit(0) from None

    def _verbs(self, ctx: click.Context) -> list[str]:
        return [c for c in self.list_commands(ctx) if c not in ALIASES]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each verb once; the second spellings in one line below them."""
        names = self._verbs(ctx)
        limit = formatter.width - 6 - max(len(n) for n in names)
        # from the static table: listing the verbs imports none of them
        rows = [
            (name, click.Command(name, help=SHORT[name]).get_short_help_str(limit))
            for name in names
            if name in SHORT
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)
        with formatter.section("Aliases"):
            # wrapped between pairs, never inside one (`ls = worker list` stays whole)
            by_verb: dict[str, list[str]] = {}
            for alias, verb in ALIASES.items():
                by_verb.setdefault(verb, []).append(alias)
            pairs = [f"{', '.join(names)} = {verb}" for verb, names in by_verb.items()]
            room = max(20, formatter.width - formatter.current_indent)
            line = ""
            for pair in pairs:
                if line and len(line) + 2 + len(pair) > room:
                    formatter.write(" " * formatter.current_indent + line + ";\n")
                    line = ""
                line = f"{line}; {pair}" if line else pair
            formatter.write(" " * formatter.current_indent + line + "\n")

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        family = COMMANDS.get(cmd_name)
        if family is None:
            return None
        # its module's NAME_cmd or NAME_group, NAME its own spelling (`ls`: `worker list`'s)
        own = ALIASES.get(cmd_name, cmd_name).split()[-1].replace("-", "_")
        mod = loaded(family)
        cmd = getattr(mod, f"{own}_cmd", None) or getattr(mod, f"{own}_group")
        assert isinstance(cmd, click.Command)
        attach(cmd, ALIASES.get(cmd_name, HIDDEN.get(cmd_name, cmd_name)))
        return cmd


class Subverbs(click.Group):
    """A group some of whose sub-verbs another module adds when it loads (SUBVERBS)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *SUBVERBS.get(self.name or "", ())})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        family = SUBVERBS.get(self.name or "", {}).get(cmd_name)
        if cmd_name not in self.commands and family is not None:
            loaded(family)
            for name, cmd in self.commands.items():  # the family's others too, as they came
                attach(cmd, f"{self.name} {name}")
        return self.commands.get(cmd_name)


# `looop init`'s row names the agent CLIs (runners/__init__.py: names(), held to it by
# tests/unit/cli/test_help_examples.py) without loading their profiles: version pays none
SHORT_HELP = """A tiny, portable, Kubernetes-shaped control loop for agent-driven work.

\b
Start here:
  looop                 start the pulse and stream it (Ctrl-C stops everything)
  looop init            choose the agent CLI (claude, codex, opencode, pi, gemini, custom)
  looop up | down       start / stop the pulse in the background
  looop status          pulse, last beat, failures at a glance
  looop tick --dry-run  print the prompt the next decision would get
  looop demo            an offline demo in a throwaway data dir
  looop help [TOPIC]    the full manual, or one section (sandbox, config, decisions)
"""


@click.group(
    cls=LazyGroup,
    invoke_without_command=True,
    help=SHORT_HELP,
    epilog=epilog(""),
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option("--version", "-V", is_flag=True, expose_value=False, is_eager=True,
              callback=_show_version, help="Show the version and exit.")  # fmt: skip
@click.pass_context
def cli(ctx: click.Context) -> None:
    if ctx.invoked_subcommand is None:  # a bare `looop` is `looop pulse`, through the table
        ctx.exit(loaded(COMMANDS["pulse"]).foreground())


own_help(cli)


@click.command("version", help="Print the version.")
def version_cmd() -> None:  # here: the root is loaded already, a reads family is not
    click.echo(f"looop {looop.__version__}")


def _no_such_subcommand(e: click.UsageError) -> str | None:
    """The unknown word when a group (`looop goal rmm`) was given one, else None; the same
    words on every click version (8.4+ suggests by itself, older ones do not)."""
    if e.ctx is None or not isinstance(e.ctx.command, click.Group):
        return None
    name = getattr(e, "command_name", None)
    if isinstance(name, str):
        return name

    m = re.fullmatch(r"No such command (['\"])(.*)\1\.", e.message)
    return m.group(2) if m else None


def run_click(args: list[str], env: dict[str, str], clock: Clock | None = None) -> None:
    try:
        rv: Any = cli.main(
            args=args, prog_name="looop", standalone_mode=False, obj=Entry(env, clock)
        )
    except click.exceptions.Abort:
        raise SystemExit(130) from None
    except click.exceptions.NoArgsIsHelpError as e:
        # a bare group (`looop goal`) is a request for its help, not a mistake
        click.echo(e.ctx.get_help() if e.ctx is not None else "")
        return
    except click.UsageError as e:
        where = e.ctx.command_path if e.ctx is not None else "looop"
        missing = _no_such_subcommand(e)
        group = e.ctx.command if e.ctx is not None else None
        if missing is not None and e.ctx is not None and isinstance(group, click.Group):
            choices = group.list_commands(e.ctx)
            usage_error(
                f"`{where}` has no '{missing}'{did_you_mean(missing, choices)} "
                f"(`{where} --help` lists them)"
            )
        said = e.format_message()  # a message that names its help already is not told twice
        usage_error(said if "--help`" in said else f"{said} (see `{where} --help`)")
    except click.ClickException as e:
        raise LooopError(e.format_message()) from None
    if isinstance(rv, int) and rv:
        raise SystemExit(rv)
