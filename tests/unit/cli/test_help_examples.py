"""Every verb's --help shows an example a user can paste, and says what its --json prints.

The walk reads the click tree as `looop --help` does (the lazy root loads each verb), so a
verb added to cli/commands.py or to a group without an entry in cli/verbs.txt fails here."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
import pytest

import looop.cli
from looop.cli.commands import HIDDEN
from looop.cli.root import EXAMPLES, cli, did_you_mean

pytestmark = pytest.mark.unit


def _tree() -> list[tuple[list[str], click.Command]]:
    """(path, command) for the root, every visible verb and every visible subcommand."""
    out: list[tuple[list[str], click.Command]] = [([], cli)]
    root = click.Context(cli, info_name="looop")

    def walk(cmd: click.Command, path: list[str], ctx: click.Context) -> None:
        if not isinstance(cmd, click.Group):
            return
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is None or sub.hidden or name in HIDDEN:
                continue
            out.append(([*path, name], sub))
            walk(sub, [*path, name], click.Context(sub, parent=ctx, info_name=name))

    walk(cli, [], root)
    return out


def _help(path: list[str]) -> str:
    ctx = click.Context(cli, info_name="looop")
    cmd: click.Command = cli
    for word in path:
        assert isinstance(cmd, click.Group)
        got = cmd.get_command(ctx, word)
        assert got is not None
        cmd = got
        ctx = click.Context(cmd, parent=ctx, info_name=word)
    return cmd.get_help(ctx)


def _examples(text: str) -> list[str]:
    lines = text.split("Examples:\n", 1)[1].splitlines()
    return [line.strip() for line in lines if line.startswith("    looop")]


def _resolves_to(example: str) -> click.Command:
    """The command an example line runs, walking the tree one word at a time."""
    words = shlex.split(example.split("  # ")[0].split(" | ")[0].split(" && ")[0])[1:]
    ctx = click.Context(cli, info_name="looop")
    cmd: click.Command = cli
    for word in words:
        if not isinstance(cmd, click.Group):
            break
        sub = cmd.get_command(ctx, word)
        if sub is None:
            break
        cmd = sub
        ctx = click.Context(cmd, parent=ctx, info_name=word)
    return cmd


def test_the_tree_is_walked_whole() -> None:
    """The walk reaches groups' subcommands and aliases (so the test below sees them all)."""
    paths = {" ".join(p) for p, _ in _tree()}
    assert {"worker start", "goal rm", "ls", "logs", "service install", "status"} <= paths


@pytest.mark.parametrize("path", [p for p, _ in _tree()], ids=lambda p: " ".join(p) or "looop")
def test_every_verb_has_an_example_of_itself(path: list[str]) -> None:
    text = _help(path)
    assert "Examples:" in text, f"`looop {' '.join(path)} --help` shows no example"
    shown = _examples(text)
    assert shown, f"`looop {' '.join(path)} --help`: an Examples section with no looop line"
    if not path:
        return
    own = [_resolves_to(line) for line in shown]
    cmd = next(c for p, c in _tree() if p == path)
    # a group's examples name its subcommands; a verb's name the verb itself (or its alias)
    if isinstance(cmd, click.Group):
        assert any(o is cmd or o in cmd.commands.values() for o in own), shown
    else:
        assert cmd in own, f"`looop {' '.join(path)}`: no example runs it: {shown}"


@pytest.mark.parametrize("path", [p for p, _ in _tree()], ids=lambda p: " ".join(p) or "looop")
def test_every_json_flag_says_what_it_prints(path: list[str]) -> None:
    cmd = next(c for p, c in _tree() if p == path)
    _help(path)  # loads the verb as --help does
    for p in cmd.params:
        if isinstance(p, click.Option) and "--json" in p.opts:
            assert p.help, f"`looop {' '.join(path)} --json` has no description"


def test_a_verb_without_an_example_fails_the_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: a verb that loses its entry shows no Examples section."""
    monkeypatch.delitem(EXAMPLES, "tell")
    cmd = next(c for p, c in _tree() if p == ["tell"])
    monkeypatch.setattr(cmd, "epilog", None)
    assert "Examples:" not in _help(["tell"])


def test_key_help_lists_every_key_name() -> None:
    from looop.sessions.keys import KEY_NAMES

    text = " ".join(_help(["key"]).split())
    for name in KEY_NAMES:
        assert f" {name}," in text or f" {name}." in text, name
    assert "C-a" in text


@pytest.mark.parametrize(
    ("word", "wanted"),
    [
        ("start", ["up", "worker start"]),
        ("stop", ["down", "kill"]),
        ("ps", ["ls"]),
        ("rm", ["kill", "goal rm"]),
        ("logs", ["log"]),
    ],
)
def test_did_you_mean_knows_other_tools_words(word: str, wanted: list[str]) -> None:
    from looop.cli.commands import ALIASES, COMMANDS

    verbs = [v for v in COMMANDS if v not in ALIASES and v not in HIDDEN and v != word]
    said = did_you_mean(word, verbs, frozenset(ALIASES))
    for w in wanted:
        assert f"`{w}`" in said, said


def test_no_example_is_kept_for_a_verb_that_is_gone() -> None:
    paths = {" ".join(p) for p, _ in _tree()}
    assert set(EXAMPLES) - paths == set()


def test_the_verb_list_says_what_each_verb_says_of_itself() -> None:
    """`looop --help` reads its rows from cli/verbs.txt (cli/root.py's SHORT), loading no
    verb: each row is the verb's own first sentence, and every verb it shows has one."""
    from looop.cli.commands import ALIASES
    from looop.cli.root import SHORT

    shown = {tuple(path): cmd for path, cmd in _tree() if len(path) == 1}
    verbs = {path[0]: cmd for path, cmd in shown.items() if path[0] not in ALIASES}
    assert set(SHORT) == set(verbs)
    for verb, cmd in verbs.items():
        assert SHORT[verb] == cmd.get_short_help_str(10**6), verb


def test_the_root_help_served_without_click_is_clicks_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_help_option", None)  # click keeps the one a bare Context made
    # 78: what click makes of an 80-column terminal
    want = cli.make_context("looop", [], terminal_width=78).get_help() + "\n"
    got = (Path(looop.cli.__file__).parent / "help.txt").read_text(encoding="utf-8")
    assert got == want, (
        "src/looop/cli/help.txt is stale: COLUMNS=80 python -c 'from looop.cli.root import "
        'run_click; run_click(["--help"], {})\' > src/looop/cli/help.txt'
    )


def test_the_root_help_names_every_agent_cli() -> None:
    """`looop init`'s row in the root help is written out (version loads no runner profile):
    it names the CLIs runners/ knows, in their order, and a custom one."""
    from looop.cli.root import SHORT_HELP
    from looop.runners import names

    assert f"choose the agent CLI ({', '.join((*names(), 'custom'))})\n" in SHORT_HELP
