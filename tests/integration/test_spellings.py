"""v1.0's spellings keep working: `w` for worker and for every `write`, `ss`, `logs`,
`screenshot --plain`, tell bodies that start with a dash, and shell completion that offers
the ids a verb takes (bash, zsh and fish) — none of them crowding `--help`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.human.tellbox import take_tells
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.helpers import Cli, outside_env, stop_sessions, wire

pytestmark = pytest.mark.timeout(90)


def test_w_writes_goals_sensors_playbook_and_schedules(cli: Cli, data: Path) -> None:
    assert cli("init", "--no-sandbox")[0] == 0
    assert cli("goal", "w", "ship", "ship v2")[0] == 0
    assert (data / "goals" / "ship.md").read_text().strip() == "ship v2"
    assert cli("sensor", "w", "ci", "echo '{}'")[0] == 0
    assert (data / "sensors" / "ci.sh").exists()
    assert cli("playbook", "w", "be brief")[0] == 0
    assert "be brief" in (data / "PLAYBOOK.md").read_text()
    assert cli("schedule", "w", "digest", "--every", "1d")[0] == 0
    assert (data / "schedules" / "digest.json").exists()
    # the journal says each was written, as `write` would
    journal = (data / "journal.md").read_text()
    assert all(w in journal for w in ("ship", "ci", "playbook", "digest"))
    # hidden: help lists `write` once, no `w` row
    code, out, _ = cli("goal", "--help")
    assert (
        code == 0
        and "write" in out
        and not any(line.split()[:1] == ["w"] for line in out.splitlines())
    )


def test_w_is_worker_and_the_session_aliases_read(cli: Cli, data: Path) -> None:
    assert cli("init", "--no-sandbox")[0] == 0
    code, out, _ = cli("w", "list")
    assert code == 0 and out.splitlines()[0].split()[:2] == ["ID", "HEALTH"]
    assert cli("w", "ls")[1] == out
    for alias, verb in (("ss", "shot"), ("logs", "log")):
        a, b = cli(alias, "nosuch"), cli(verb, "nosuch")
        assert a[0] == b[0] != 0 and a[2] == b[2]  # the same verb, the same refusal
    code, out, _ = cli("--help")
    aliases = out[out.index("Aliases") :]
    assert "ss = shot" in aliases and "logs = log" in aliases and "w = worker" in aliases
    verbs = out[out.index("Commands") : out.index("Aliases")]
    assert not any(line.split()[:1] in (["ss"], ["logs"], ["w"]) for line in verbs.splitlines())


def _env(ctx: Ctx) -> dict[str, str]:
    env = outside_env()
    env["LOOOP_DATA_DIR"] = str(ctx.paths.data)
    return env


def _looop(ctx: Ctx, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "looop", *args],
        env={**_env(ctx), **extra},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_dash_leading_tells_and_screenshot_plain(ctx: Ctx) -> None:
    wire(ctx, [], worker="bash -c 'echo hello-screen; exec sleep 300' x {{prompt_file}}")
    start_worker(ctx, ctx.knobs(), StartRequest("t1", "x"))
    try:
        r = _looop(ctx, "tell", "t1", "--no-verify", "is", "wrong")
        assert r.returncode == 0 and "t1-1" in r.stdout, r.stderr
        r = _looop(ctx, "tell", "t1", "-x")
        assert r.returncode == 0, r.stderr
        r = _looop(ctx, "tell", "t1", "--help")  # help, never a message
        assert r.returncode == 0 and "Usage" in r.stdout
        assert take_tells(ctx.paths.tells, "t1") == ["--no-verify is wrong", "-x"]

        from looop.sessions.client import expect

        expect(ctx.paths.data, "t1", "hello-screen", timeout_s=20, clock=ctx.clock)
        plain = _looop(ctx, "screenshot", "t1", "--plain")
        assert plain.returncode == 0 and "hello-screen" in plain.stdout
        assert _looop(ctx, "ss", "t1").stdout == plain.stdout
        assert "\x1b[" not in plain.stdout
    finally:
        stop_sessions(ctx.paths.data)


def _complete(ctx: Ctx, shell: str, words: list[str]) -> list[str]:
    """What the shell's completion asks looop for, the way its script asks."""
    line = " ".join(words)
    if shell == "bash" or shell == "zsh":
        extra = {"COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}
    else:
        extra = {"COMP_WORDS": line, "COMP_CWORD": words[-1]}
    r = _looop(ctx, _LOOOP_COMPLETE=f"{shell}_complete", **extra)
    assert r.returncode == 0, r.stderr
    out = [ln for ln in r.stdout.splitlines() if ln]
    if shell == "bash":
        return [ln.split(",", 1)[1] for ln in out]
    if shell == "zsh":
        return r.stdout.splitlines()[1::3]  # type, value, help: one triple per item
    return [ln.split(",", 1)[1] if "," in ln else ln for ln in out]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_offers_ids(ctx: Ctx, shell: str) -> None:
    from looop.human.mailbox import answer, new_ask

    d = ctx.paths.data
    (d / "goals").mkdir()
    for g in ("ship", "tidy"):
        (d / "goals" / f"{g}.md").write_text(g)
    (d / "sensors").mkdir()
    (d / "sensors" / "ci.sh").write_text("echo {}")
    (d / "schedules").mkdir()
    (d / "schedules" / "digest.json").write_text("{}")
    for sid in ("pulse", "w1", "w2"):
        (d / "sessions" / sid).mkdir(parents=True)
    new_ask(ctx.paths.asks, ctx.paths.answers, "w1", "a?", None, [], 1.0)
    new_ask(ctx.paths.asks, ctx.paths.answers, "w2", "b?", None, [], 1.0)
    answer(ctx.paths.asks, ctx.paths.answers, "w2-1", "yes", 2.0)

    assert _complete(ctx, shell, ["looop", "goal", "archive", ""]) == ["ship", "tidy"]
    assert _complete(ctx, shell, ["looop", "goal", "w", "t"]) == ["tidy"]
    assert _complete(ctx, shell, ["looop", "sensor", "rm", ""]) == ["ci"]
    assert _complete(ctx, shell, ["looop", "answer", ""]) == ["w1-1"]  # answered ones are not
    assert _complete(ctx, shell, ["looop", "tell", ""]) == ["w1", "w2"]  # not the pulse
    assert _complete(ctx, shell, ["looop", "log", ""]) == ["pulse", "w1", "w2"]
    assert _complete(ctx, shell, ["looop", "schedule", "rm", ""]) == ["digest"]
    # nothing to offer where there is no data dir yet: no error either
    empty = Ctx(**{**ctx.__dict__, "paths": type(ctx.paths).at(d.parent / "none")})
    assert _complete(empty, shell, ["looop", "goal", "archive", ""]) == []


def test_completion_scripts_name_looop(cli: Cli) -> None:
    for shell in ("bash", "zsh", "fish"):
        code, out, _ = cli("completion", shell)
        assert code == 0 and "_LOOOP_COMPLETE" in out


def test_watch_since_is_checked_before_the_screen(cli: Cli) -> None:
    code, _, err = cli("watch", "--since", "yesterday")
    assert code == 2 and "--since" in err and "give a duration" in err
    code, _, err = cli("watch", "-s", "1d")  # a good window: then the terminal is wanted
    assert code != 0 and "needs a terminal" in err
