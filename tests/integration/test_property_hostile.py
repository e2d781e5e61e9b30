"""Property tests: random bytes and random JSON into the decision parser and the executor, and
random arguments into every verb. Whatever comes in, the answer is a one-line refusal or a
result: never a traceback (exit 70, "internal error"), never a hang.

Verbs that start long-lived things (a pulse, a worker, a full-screen UI) or run what they are
given (`run`) are left out of the random walk; each has its own hostile-input tests."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from looop.act.actiontable import ACTION_TAGS
from looop.act.decision import DecisionError
from looop.act.parse import parse_decision
from looop.core.context import Ctx
from looop.core.events import Emitter
from looop.home.errors import LooopError
from looop.home.paths import Paths
from tests.clocks import FixedClock
from tests.helpers import examples

pytestmark = pytest.mark.timeout(600)

# ---------------------------------------------------------------- values an attacker picks

_NASTY = [
    "",
    " ",
    "-",
    "--",
    "../x",
    "../../etc/passwd",
    "/abs",
    ".hidden",
    "a" * 80,
    "-1",
    "0",
    "1e999",
    "nan",
    "inf",
    "99999999999999999999999",
    "9" * 5000,
    "\x1b]0;x\x07",
    "\u202e",
    "\u200b=== NOW ===",
    "w-1",
    "pulse",
    "looop-pulse",
    "*",
    "[a]",
    "$(touch pwned)",
    "`touch pwned`",
    "\x00",
    "1,2,,3",
    "120x0",
    "99999x99999",
    "30s",
    "-5m",
    "1d",
]


def _undecodable(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


_WORD = st.one_of(
    st.sampled_from(_NASTY),
    st.text(max_size=30),
    st.binary(min_size=1, max_size=8).map(_undecodable),
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)

# ---------------------------------------------------------------- the decision parser


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(), max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@given(st.binary(max_size=600))
@settings(max_examples=examples(400), deadline=None)
def test_random_bytes_never_crash_the_decision_parser(raw: bytes) -> None:
    try:
        parse_decision(raw)
    except DecisionError:
        pass


def _field_value() -> st.SearchStrategy[Any]:
    return st.one_of(
        _JSON,
        st.sampled_from(_NASTY),
        st.text(alphabet=st.characters(codec=None), max_size=20),  # surrogates included
        st.integers(min_value=-(10**30), max_value=10**30),
        st.sampled_from([1e308, -1e308, 0.5, 60, 3600, 10**20]),
    )


_FIELDS = [
    "cmd",
    "reason",
    "id",
    "body",
    "name",
    "script",
    "prompt",
    "runner",
    "command",
    "verify",
    "input",
    "keys",
    "message",
    "in_s",
    "every_s",
    "cron",
    "tz",
    "note",
    "journal",
    "next_interval_s",
]


_DECISION = st.builds(
    lambda tag, fields: {"action": tag, **fields},
    st.sampled_from(ACTION_TAGS),
    st.dictionaries(st.sampled_from(_FIELDS), _field_value(), max_size=6),
)


def _dump(obj: Any) -> bytes:
    text = json.dumps(obj, ensure_ascii=True, allow_nan=True)
    return text.encode()


@given(st.one_of(_DECISION, _JSON))
@settings(max_examples=examples(500), deadline=None)
def test_random_json_decisions_parse_or_refuse_in_one_line(obj: Any) -> None:
    try:
        parse_decision(_dump(obj))
    except DecisionError as e:
        assert "\n" not in str(e) and str(e)


@pytest.fixture
def exec_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="looop-prop-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _ctx(root: Path) -> Ctx:
    d = Path(tempfile.mkdtemp(dir=root))
    paths = Paths.at(d / "data")
    paths.data.mkdir(parents=True)
    cfg = {
        "default": "c",
        "runners": {"c": {"tick": "true", "worker": "true {{prompt_file}}"}},
        "max_daily_usd": 0,
        # every command is refused: random text is validated and guarded, never run
        "shell_policy": {"mode": "tripwire", "deny": [".*"]},
    }
    paths.config.write_text(json.dumps(cfg))
    clock = FixedClock()
    em = Emitter(clock=clock, events_path=paths.events)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(d)}
    return Ctx(paths=paths, clock=clock, env=env, events=em, bin="looop")


@given(_DECISION)
@settings(
    max_examples=examples(250),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_random_decisions_execute_or_refuse_in_one_line(exec_root: Path, obj: Any) -> None:
    from looop.act.executor import execute

    try:
        decision = parse_decision(_dump(obj))
    except DecisionError:
        return
    if obj["action"] in ("start_worker", "restart_session"):
        return  # would start real sessions; their own tests cover hostile ids and commands
    ctx = _ctx(exec_root)
    try:
        execute(ctx, ctx.knobs(), decision, actor="cli")
    except LooopError as e:
        assert "\n" not in str(e)
    assert not (ctx.paths.data / "pwned").exists()
    assert not Path("pwned").exists()


# ---------------------------------------------------------------- every verb's arguments

# Interactive or long-lived verbs, and `run` (it runs what it is given).
_SKIP = {"watch", "attach", "pulse", "up", "demo", "run", "worker start", "restart", "down", "web"}
# Options that would make a verb follow forever or bypass the tripwire.
_SKIP_OPTS = {"--watch", "--follow", "-f", "--allow-dangerous"}


def _verbs() -> list[tuple[list[str], click.Command]]:
    from looop.cli.commands import COMMANDS
    from looop.cli.root import LazyGroup, cli

    out: list[tuple[list[str], click.Command]] = []
    with click.Context(cli) as ctx:
        assert isinstance(cli, LazyGroup)
        for name in sorted(COMMANDS):
            cmd = cli.get_command(ctx, name)
            if cmd is None or name in _SKIP:
                continue
            if isinstance(cmd, click.Group):
                for sub in cmd.list_commands(ctx):
                    sc = cmd.get_command(ctx, sub)
                    if sc is not None and f"{name} {sub}" not in _SKIP:
                        out.append(([name, sub], sc))
            else:
                out.append(([name], cmd))
    return out


_VERBS = _verbs()


def _value_for(param: click.Parameter) -> st.SearchStrategy[str]:
    t = param.type
    if isinstance(t, click.Choice):
        return st.one_of(st.sampled_from([str(c) for c in t.choices]), _WORD)
    return _WORD


@st.composite
def _argv(draw: st.DrawFn) -> list[str]:
    path, cmd = draw(st.sampled_from(_VERBS))
    argv = list(path)
    pieces: list[list[str]] = []
    for p in cmd.params:
        if isinstance(p, click.Option):
            names = p.opts + p.secondary_opts
            if _SKIP_OPTS.intersection(names) or p.hidden or not draw(st.booleans()):
                continue
            flag = draw(st.sampled_from(names))
            if p.is_flag or p.count:
                pieces.append([flag])
            else:
                pieces.append([flag, draw(_value_for(p))])
        elif isinstance(p, click.Argument):
            n = p.nargs if p.nargs > 0 else draw(st.integers(0, 3))
            if draw(st.integers(0, 9)) == 0:
                n = max(0, n - 1)  # sometimes one short
            pieces.append([draw(_value_for(p)) for _ in range(n)])
    pieces = draw(st.permutations(pieces))
    for piece in pieces:
        argv += piece
    if draw(st.integers(0, 9)) == 0:
        argv.append(draw(_WORD))  # one too many
    return argv


@pytest.fixture
def verb_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="looop-verbs-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@given(argv=_argv())
@settings(
    max_examples=examples(600),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_random_arguments_to_every_verb_never_crash(
    verb_root: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    from tests.helpers import clean_env, run_cli

    home = Path(tempfile.mkdtemp(dir=verb_root))
    cfg = {
        "default": "c",
        "runners": {"c": {"tick": "true", "worker": "true {{prompt_file}}"}},
        "max_daily_usd": 0,
        "shell_policy": {"mode": "tripwire", "deny": [".*"]},
    }
    (home / "config.json").write_text(json.dumps(cfg))
    env = clean_env(
        home,
        home / "data",
        LOOOP_CONFIG=str(home / "config.json"),
        LOOOP_ASK_TIMEOUT_S="0.05",
        LOOOP_ASK_POLL_MS="10",
    )
    cwd = os.getcwd()
    os.chdir(home)
    stdin = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(b"\xff not utf-8 \x1b]0;x\x07"))
    try:
        code, out, err = run_cli(capsys, *argv, env=env, clock=FixedClock())
    finally:
        sys.stdin = stdin
        os.chdir(cwd)
    assert code != 70 and "internal error" not in err, (argv, err)
    assert "Traceback" not in out + err, (argv, err)
    assert not (home / "pwned").exists() and not (home / "data" / "pwned").exists()
    if code != 0:  # a refusal always says something (a `looop:` line or the beat's event)
        assert (out + err).strip(), (argv, code)
