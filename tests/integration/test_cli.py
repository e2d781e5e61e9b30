"""The CLI as a user meets it: verbs, one-line errors, stdin bodies, no side effects on --help."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from looop.home.paths import Paths
from tests.helpers import Cli

pytestmark = pytest.mark.timeout(60)


def test_version_and_help(data: Path, cli: Cli) -> None:
    from looop import __version__

    assert cli("version")[1] == f"looop {__version__}\n"
    code, out, _ = cli("help")
    assert code == 0 and "ONE BEAT" in out and f"data dir  {data}" in out
    code, out, _ = cli("help", "goal")
    assert code == 0 and "archive" in out
    code, _, err = cli("help", "nope")
    assert code == 2 and err.count("\n") == 1 and "looop help" in err


def test_root_help_loads_neither_click_nor_a_verb(cli: Cli) -> None:
    """`looop --help` is typed at a prompt: it pays for no verb module and not for click."""
    probe = (
        "import json, sys\n"
        "from looop.verbs.console import run\n"
        "run(['--help'])\n"
        "mods = [m for m in sys.modules if m == 'click' or m.startswith('looop.cli.')]\n"
        "sys.stderr.write(json.dumps(mods))\n"
    )
    env = {**cli.child_env(), "COLUMNS": "100"}
    p = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, timeout=20)
    assert p.stdout.startswith(b"Usage: looop [OPTIONS]") and b"worktrees" in p.stdout
    assert json.loads(p.stderr) == []
    # a terminal narrower than the text gets click's own wrapping
    narrow = subprocess.run(
        [sys.executable, "-m", "looop", "--help"],
        env={**cli.child_env(), "COLUMNS": "60"},
        capture_output=True,
        timeout=20,
    )
    assert narrow.returncode == 0 and b"\n  agent-driven work.\n" in narrow.stdout


def test_help_has_no_side_effects(data: Path, cli: Cli) -> None:
    for args in (
        ["goal", "write", "--help"],
        ["run", "--help"],
        ["init", "--help"],
        ["pulse", "--help"],
        ["--help"],
        ["goal"],
    ):
        code, out, _ = cli(*args)
        assert code == 0 and "Usage" in out
    assert not data.exists()


def test_usage_errors_are_one_line(data: Path, cli: Cli) -> None:
    for args in (["bogus"], ["goal", "write"], ["journal", "-n", "x"], ["tick", "--nope"]):
        code, out, err = cli(*args)
        assert code != 0 and out == "" and err.count("\n") == 1, (args, err)
        assert err.startswith("looop: ")


def test_steering_verbs_go_through_the_executor(data: Path, cli: Cli) -> None:
    code, out, _ = cli("goal", "write", "ship", "goal: ship v1", "--journal", "set ship")
    assert code == 0 and (data / "goals" / "ship.md").read_text() == "goal: ship v1\n"
    code, _, _ = cli("goal", "write", "piped", "-", stdin="goal: from stdin\n")
    assert code == 0 and (data / "goals" / "piped.md").read_text() == "goal: from stdin\n"
    code, out, _ = cli("goal", "list", "--json")
    ids = [g["id"] for g in json.loads(out)]
    assert "ship" in ids and "piped" in ids
    code, _, _ = cli("goal", "archive", "ship")
    assert code == 0 and (data / "goals" / "archive" / "ship.md").exists()
    code, _, err = cli("goal", "write", "../etc", "x")
    assert code == 1 and "invalid goal id" in err and err.count("\n") == 1
    code, _, err = cli("goal", "archive", "ghost")
    assert code == 1 and "ghost" in err
    journal = (data / "journal.md").read_text().splitlines()
    assert journal[0].endswith(" set ship") and len(journal) == 3
    events = [json.loads(ln) for ln in (data / "events.jsonl").read_text().splitlines()]
    assert [e["action"] for e in events if e["event"] == "steered"] == ["goal", "goal", "archive"]


def test_an_archived_goal_says_why(data: Path, cli: Cli) -> None:
    for gid in ("a", "b", "c"):
        assert cli("goal", "write", gid, f"goal: {gid}")[0] == 0
    assert cli("goal", "archive", "a")[0] == 0  # archive: done unless told
    assert cli("goal", "rm", "b")[0] == 0  # rm: dropped
    assert cli("goal", "archive", "c", "--reason", "superseded")[0] == 0
    code, _, err = cli("goal", "write", "d", "x")
    code, _, err = cli("goal", "archive", "d", "--reason", "bored")
    assert code != 0 and err.count("\n") == 1 and "done" in err  # the choices are named
    assert (data / "goals" / "d.md").exists()
    code, out, _ = cli("goal", "list", "--archived", "--json")
    assert {r["id"]: r["reason"] for r in json.loads(out)} == {
        "a": "done",
        "b": "dropped",
        "c": "superseded",
    }
    code, out, _ = cli("goal", "list", "--archived")
    assert any(ln.split()[:2] == ["b", "dropped"] for ln in out.splitlines())
    journal = (data / "journal.md").read_text()
    assert "archive-goal b (dropped)" in journal and "archive-goal c (superseded)" in journal
    events = [json.loads(ln) for ln in (data / "events.jsonl").read_text().splitlines()]
    said = {e["id"]: e["reason"] for e in events if e["event"] == "goal_archived"}
    assert said == {"a": "done", "b": "dropped", "c": "superseded"}


def test_run_shows_output_and_fails_cleanly(data: Path, cli: Cli) -> None:
    code, out, _ = cli("run", "--", "echo", "hello world")
    assert code == 0 and "hello world\n" in out
    code, out, err = cli("run", "--reason", "probe", "--", "sh", "-c", "echo bad >&2; exit 4")
    assert code == 1 and "bad" in err and "run_shell exited 4: probe" in err
    assert not list((data / ".wal").glob("*")) if (data / ".wal").exists() else True


def test_sensor_and_playbook_verbs(data: Path, cli: Cli) -> None:
    code, _, _ = cli("sensor", "write", "ci", 'echo \'{"signal":{"red":false}}\'')
    assert code == 0
    mode = (data / "sensors" / "ci.sh").stat().st_mode
    assert mode & stat.S_IXUSR
    code, out, _ = cli("sensor", "run", "ci")
    assert code == 0 and '{"signal":{"red":false}}' in out
    code, out, _ = cli("sensor", "list")
    assert '{"red":false}' in out
    code, _, err = cli("sensor", "run", "ghost")
    assert code == 1 and "ghost" in err
    cli("playbook", "write", "# v1")
    cli("playbook", "write", "# v2")
    assert (data / "PLAYBOOK.md").read_text() == "# v2\n"
    code, out, _ = cli("playbook", "history")
    assert len(out.strip().splitlines()) == 2  # the starter and v1


def test_new_data_dir_is_seeded_once(data: Path, cli: Cli) -> None:
    cli("goal", "list")  # a read: seeds nothing
    assert not data.exists()
    cli("run", "--", "true")
    for f in (
        "PLAYBOOK.md",
        "goals/setup.md",
        "goals/playbook-daily.md",
        "sensors/today.sh",
        ".gitignore",
        "config.json",
    ):
        assert (data / f).exists(), f
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    (data / "goals" / "setup.md").write_text("goal: mine\n")
    (data / "PLAYBOOK.md").unlink()
    cli("run", "--", "true")
    assert not (data / "PLAYBOOK.md").exists()  # not re-seeded
    assert (data / "goals" / "setup.md").read_text() == "goal: mine\n"


def test_init_presets_and_guards(data: Path, cli: Cli) -> None:
    code, out, _ = cli("init", "--runner", "pi")
    cfg = json.loads((data / "config.json").read_text())
    assert (
        code == 0 and cfg["default"] == "pi" and "{{prompt_file}}" in cfg["runners"]["pi"]["worker"]
    )
    code, _, err = cli("init", "--runner", "codex")
    assert code == 1 and "--force" in err
    code, out, _ = cli("init", "--runner", "codex", "--force")
    assert code == 0 and json.loads((data / "config.json").read_text())["default"] == "codex"
    code, _, err = cli("init", "--runner", "custom", "--force")
    assert code == 1 and "--tick-command" in err
    code, _, err = cli(
        "init",
        "--runner",
        "custom",
        "--force",
        "--tick-command",
        "x",
        "--worker-command",
        "y",
    )
    assert code == 1 and "{{prompt_file}}" in err
    code, out, _ = cli(
        "init",
        "--runner",
        "custom",
        "--force",
        "--tick-command",
        "my-agent -p",
        "--worker-command",
        "my-agent {{prompt_file}}",
    )
    assert code == 0 and "not on PATH" in out
    cfg = json.loads((data / "config.json").read_text())
    assert cfg["runners"]["custom"] == {"tick": "my-agent -p", "worker": "my-agent {{prompt_file}}"}


def test_init_keeps_knobs_and_warns_root_for_claude(data: Path, cli: Cli) -> None:
    data.mkdir()
    (data / "config.json").write_text(
        '{"tick_command": "a", "worker_command": "b {{prompt_file}}", "interval": 30}'
    )
    del cli.env["IS_SANDBOX"]  # claude's root check reads it
    code, out, _ = cli("init", "--runner", "claude", "--force")
    assert code == 0
    assert json.loads((data / "config.json").read_text())["interval"] == 30
    if os.geteuid() == 0:
        assert "IS_SANDBOX=1" in out


def test_tick_dry_run_prints_prompt_and_calls_nothing(data: Path, cli: Cli) -> None:
    data.mkdir()
    (data / "config.json").write_text(
        json.dumps(
            {"tick_command": "touch runner-was-called", "worker_command": "x {{prompt_file}}"}
        )
    )
    code, out, _ = cli("tick", "--dry-run")
    assert code == 0
    for section in (
        "=== CONSTITUTION",
        "=== PLAYBOOK ===",
        "=== GOALS ===",
        "=== SENSOR READINGS ===",
        "=== RECENT JOURNAL ===",
        "=== NOW ===",
    ):
        assert section in out
    assert out.index("=== PLAYBOOK ===") < out.index("=== NOW ===")
    assert not (data / "runner-was-called").exists()
    assert not (data / "runs").exists() or not list((data / "runs").iterdir())


def test_journal_runs_and_status(data: Path, cli: Cli) -> None:
    code, out, _ = cli("journal")
    assert code == 0 and "no journal yet" in out
    data.mkdir()
    (data / "config.json").write_text(
        json.dumps(
            {
                "tick_command": 'printf \'%s\' \'{"action":"noop","journal":"all quiet"}\' '
                "> .decision.json",
                "worker_command": "x {{prompt_file}}",
            }
        )
    )
    assert cli("tick")[0] == 0
    code, out, _ = cli("journal", "-n", "1")
    assert out.strip().endswith("all quiet")
    code, out, _ = cli("runs", "--json")
    rows = json.loads(out)
    assert rows[0]["status"] == "decided" and rows[0]["action"] == "noop"
    code, out, _ = cli("runs", "show", rows[0]["run_id"])
    assert code == 0 and "prompt.md" in out
    code, _, err = cli("runs", "show", "../etc")
    assert code == 1 and err.count("\n") == 1
    code, out, _ = cli("status", "--json")
    st = json.loads(out)
    assert st["pulse"]["running"] is False and st["last_tick"]["hash"]
    assert st["journal_tail"][-1].endswith("all quiet")
    code, out, _ = cli("status")
    assert "pulse:     stopped" in out and "all quiet" in out


def test_status_reports_a_broken_config_whole_and_exits_1(data: Path, cli: Cli) -> None:
    data.mkdir()
    (data / "config.json").write_text('{"interval": "soon", "tick_command": "x"}')
    code, out, err = cli("status")
    # the whole status still prints (no trace); exit 1 tells a script the config is wrong
    assert code == 1 and "'interval'" in out and "data dir:" in out and err == ""


def test_broken_pipe_exits_quietly(data: Path, cli: Cli) -> None:
    data.mkdir()
    lines = "".join(f"- 2026-01-01 00:00 line {i}\n" for i in range(50000))
    (data / "journal.md").write_text(lines)
    p = subprocess.run(
        f"{sys.executable} -m looop journal | head -1",
        shell=True,
        env=cli.child_env(),  # buffered, as a user's shell runs it
        capture_output=True,
        timeout=30,
    )
    assert p.stdout.decode().startswith("- 2026-01-01 00:00 line 0")
    assert p.stderr == b""


def test_demo_runs_offline(cli: Cli) -> None:
    env = cli.child_env()
    del env["LOOOP_DATA_DIR"]  # the demo makes its own
    p = subprocess.run(
        [sys.executable, "-m", "looop", "demo", "--fast", "--no-keep"],
        env=env,
        capture_output=True,
        timeout=60,
    )
    out = p.stdout.decode()
    assert p.returncode == 0, out + p.stderr.decode()
    assert "world unchanged — no AI call" in out
    journal_lines = [ln for ln in out.splitlines() if ln.startswith("  journal  ")]
    assert len(journal_lines) == 5
    gone = next(ln for ln in out.splitlines() if ln.startswith("removed "))
    assert not Path(gone.split()[1]).exists()  # --no-keep: no "try next" on a dir now gone


def test_paths_are_absolutised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    p = Paths.resolve({"LOOOP_DATA_DIR": "rel"}, Path.cwd())
    assert p.data == tmp_path / "rel"


def test_completion_scripts_register_themselves(data: Path, cli: Cli) -> None:
    code, out, _ = cli("config", "zsh")
    assert code == 0 and "#compdef looop" in out and "_LOOOP_COMPLETE" in out
    code, out, _ = cli("config", "bash")
    assert code == 0 and "complete " in out and "looop" in out
    code, _, err = cli("config")
    assert code == 2 and "zsh" in err and err.count("\n") == 1


def test_completion_completes_verbs(cli: Cli) -> None:
    env = cli.child_env(_LOOOP_COMPLETE="bash_complete", COMP_WORDS="looop go", COMP_CWORD="1")
    p = subprocess.run([sys.executable, "-m", "looop"], env=env, capture_output=True, timeout=30)
    assert "goal" in p.stdout.decode()


def test_sensor_run_json_is_one_object_per_sensor(data: Path, cli: Cli) -> None:
    script = '#!/bin/sh\necho \'{"signal":{"n":1},"detail":"d"}\'\n'
    assert cli("sensor", "write", "a", script)[0] == 0
    assert cli("sensor", "write", "b", "#!/bin/sh\nexit 3\n")[0] == 0
    code, out, _ = cli("sensor", "run", "--json")
    rows = {r["name"]: r for r in map(json.loads, out.splitlines())}
    assert code == 1  # one sensor failed, as without --json
    assert rows["sensor-a"]["ok"] is True and rows["sensor-a"]["reading"]["signal"] == {"n": 1}
    assert rows["sensor-b"]["ok"] is False


def test_playbook_history_lists_versions_of_one_second_newest_first(data: Path, cli: Cli) -> None:
    """Twelve versions of one second as an earlier looop named them (`-2` … `-12`, which a
    plain sort puts out of order): `playbook history` lists them newest first all the same."""
    hist = data / "playbook.d"
    hist.mkdir(parents=True)
    stamp = "20250614-100000"
    for n in range(1, 13):
        (hist / (f"{stamp}.md" if n == 1 else f"{stamp}-{n}.md")).write_text(f"v{n}\n")
    code, out, err = cli("playbook", "history", "--json")
    assert code == 0, err
    got = [(hist / f"{row['version']}.md").read_text() for row in json.loads(out)]
    assert got == [f"v{n}\n" for n in range(12, 0, -1)]
