"""v1.0's spellings, run from the outside: multi-word bodies, archives that keep every copy,
removed placeholders, claims with a holder, repeated --options, the schedule floor, and the
small ones (a runner's needs_input is a known key; `log` filters apply to --json and -f)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.human.schedules import MIN_EVERY_S
from looop.loop import guards
from looop.loop.tick import tick
from looop.sessions.state import list_sessions
from tests.helpers import Cli, clean_env, wire

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("verb", "where", "expect"),
    [
        (["goal", "write", "g2", "goal:", "a", "-", "b"], "goals/g2.md", "goal: a - b\n"),
        (["playbook", "write", "# a", "b", "c"], "PLAYBOOK.md", "# a b c\n"),
        (["sensor", "write", "sw", "echo", "hi"], "sensors/sw.sh", "echo hi\n"),
    ],
)
def test_a_body_of_several_words_is_joined_as_v1_does(
    data: Path, cli: Cli, verb: list[str], where: str, expect: str
) -> None:
    code, _, err = cli(*verb)
    assert code == 0, err
    assert (data / where).read_text() == expect


def test_a_worker_prompt_and_an_answer_of_several_words_are_joined(data: Path, cli: Cli) -> None:
    code, _, err = cli(
        "worker", "start", "mw1", "fix", "the", "bug", "--command", "sleep 30 # {{prompt_file}}"
    )
    assert code == 0, err
    try:
        assert "fix the bug" in (data / "prompts" / "mw1.md").read_text()
    finally:
        cli("kill", "mw1")
    asked = data / "asks" / "mw1-1.json"
    asked.parent.mkdir(parents=True, exist_ok=True)
    asked.write_text(json.dumps({"id": "mw1-1", "worker": "mw1", "prompt": "go?", "ts": 1}))
    code, _, err = cli("answer", "mw1-1", "yes", "please")
    assert code == 0, err
    assert json.loads((data / "answers" / "mw1-1.json").read_text())["answer"] == "yes please"


@pytest.mark.parametrize("flag", ["--force-it", "-x"])
def test_a_lone_flag_like_body_is_still_refused(data: Path, cli: Cli, flag: str) -> None:
    code, out, err = cli("goal", "write", "g3", flag)
    assert code != 0 and out == "" and err.count("\n") == 1 and flag in err
    assert not (data / "goals" / "g3.md").exists()
    assert cli("goal", "write", "g3", "--", flag)[0] == 0  # `--` still makes it text
    assert (data / "goals" / "g3.md").read_text() == f"{flag}\n"


def test_archiving_an_id_twice_keeps_both_bodies(data: Path, cli: Cli) -> None:
    for verb in (
        ["goal", "write", "g1", "v2"],
        ["goal", "archive", "g1"],
        ["goal", "write", "g1", "v3"],
        ["goal", "archive", "g1"],
    ):
        assert cli(*verb)[0] == 0, verb
    kept = sorted(p.read_text() for p in (data / "goals" / "archive").iterdir())
    assert kept == ["v2\n", "v3\n"]
    code, out, _ = cli("goal", "archive", "g1")  # nothing left to archive: said, not an error
    assert code == 0 and "already archived" in out
    assert len(list((data / "goals" / "archive").iterdir())) == 2


@pytest.mark.parametrize("name", ["{{model}}", "{{thinking}}"])
def test_a_removed_placeholder_is_refused_with_what_to_write(
    data: Path, cli: Cli, name: str
) -> None:
    code, _, err = cli(
        "worker", "start", "p1", "hi", "--command", f"agent {name} {{{{prompt_file}}}}"
    )
    assert code != 0 and err.count("\n") == 1 and name in err and "into the command" in err
    assert not (data / "sessions" / "p1").exists()
    cfg = json.loads((data / "config.json").read_text())
    runner = cfg["default"]
    cfg["runners"][runner]["worker"] += f" {name}"
    (data / "config.json").write_text(json.dumps(cfg))
    code, _, err = cli("worker", "start", "p2", "hi")
    assert code != 0 and f"runners.{runner}.worker" in err and name in err


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        (["claim", "x", "--session", ""], {}, "--session is empty"),
        (["claim", "x"], {"LOOOP_SESSION_ID": ""}, "LOOOP_SESSION_ID is not set"),
    ],
)
def test_a_claim_needs_a_holder(
    data: Path, cli: Cli, args: list[str], env: dict[str, str], said: str
) -> None:
    cli.env.pop("LOOOP_SESSION_ID", None)
    code, out, err = cli(*args, env_extra=env)
    assert code == 1 and out == "" and said in err and err.count("\n") == 1
    assert not (data / "claims" / "x.json").exists()


def test_options_given_twice_add_up_and_commas_split(data: Path, cli: Cli) -> None:
    import threading

    done: list[tuple[int, str, str]] = []
    t = threading.Thread(
        target=lambda: done.append(
            cli("ask", "w9", "--prompt", "pick", "--options", "a,b", "--options", "c")
        ),
        daemon=True,
    )
    t.start()
    asks = data / "asks"
    for _ in range(200):
        files = list(asks.glob("w9-*.json")) if asks.is_dir() else []
        if files:
            break
        t.join(0.05)
    assert files, "the ask was never written"
    assert json.loads(files[0].read_text())["options"] == ["a", "b", "c"]
    assert cli("answer", files[0].stem, "c")[0] == 0
    t.join(20)
    assert done and done[0][0] == 0 and done[0][1] == "c\n"


def test_a_hand_written_schedule_below_the_floor_reads_invalid(data: Path, cli: Cli) -> None:
    (data / "schedules").mkdir(parents=True, exist_ok=True)
    (data / "schedules" / "fast.json").write_text(json.dumps({"every_s": 5, "anchor": 0}))
    (data / "schedules" / "ok.json").write_text(json.dumps({"every_s": MIN_EVERY_S, "anchor": 0}))
    code, out, _ = cli("schedule", "list", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["fast"]["kind"] == "invalid" and str(MIN_EVERY_S) in json.dumps(rows["fast"])
    assert rows["ok"]["kind"] == "recurring"


def test_a_runners_needs_input_is_a_known_key(data: Path, cli: Cli) -> None:
    assert cli("init", "--runner", "claude", "--no-sandbox")[0] == 0
    cfg = json.loads((data / "config.json").read_text())
    cfg["runners"][cfg["default"]]["needs_input"] = ["Do you want"]
    cfg["runners"][cfg["default"]]["needs_inptu"] = ["typo"]
    (data / "config.json").write_text(json.dumps(cfg))
    _, _, err = cli("ls")
    assert "needs_inptu" in err  # a real typo is still said
    assert "'needs_input'" not in err.replace("did you mean 'needs_input'", "")


def test_log_filters_apply_to_json_and_to_follow(data: Path, cli: Cli) -> None:
    lines = " ".join(f"line{i}" for i in range(1, 7))
    cmd = f"for i in {lines}; do echo $i; done; : {{{{prompt_file}}}}"
    assert cli("worker", "start", "lg", "hi", "--command", cmd)[0] == 0
    assert cli("wait", "lg", "--timeout", "20s")[0] == 0
    code, out, _ = cli("log", "lg", "--grep", "line[35]", "--json")
    assert code == 0 and json.loads(out)["text"] == "line3\nline5\n"
    code, out, _ = cli("log", "lg", "--since", "0", "-n", "2")
    assert code == 0 and out.split() == ["line5", "line6"]
    code, out, _ = cli("log", "lg", "-f", "-n", "2")
    assert code == 0 and out.split() == ["line5", "line6"]
    code, out, _ = cli("log", "lg", "-f", "--grep", "line[246]")
    assert code == 0 and out.split() == ["line2", "line4", "line6"]


def test_log_since_takes_a_time_and_from_byte_the_offset(data: Path, cli: Cli) -> None:
    assert cli("worker", "start", "lt", "hi", "--command", "echo early; : {{prompt_file}}")[0] == 0
    assert cli("wait", "lt", "--timeout", "20s")[0] == 0
    code, out, _ = cli("log", "lt", "--since", "1h")
    assert code == 0 and "early" in out
    code, out, _ = cli("log", "lt", "--since", "2099-01-01T00:00")
    assert code == 0 and "early" not in out
    code, out, _ = cli("log", "lt", "--from-byte", "2", "--json")
    assert code == 0 and json.loads(out)["text"].startswith("rly")
    assert cli("log", "lt", "--since", "lunchtime")[0] == 2


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["help", "--json"], "Kubernetes-shaped"),  # v1.0's help takes no options: the manual
        (["help", "worker-start"], "Usage: looop worker start"),
        (["help", "goal_write"], "Usage: looop goal write"),
        (["help", "wait-idle"], "Usage: looop wait-idle"),  # a verb with a dash stays whole
    ],
)
def test_help_shows_help_for_v1_spellings(
    data: Path, cli: Cli, args: list[str], expect: str
) -> None:
    code, out, err = cli(*args)
    assert code == 0 and expect in out, err


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["ss", "--ansi", "--json", "w1"], "--json and --ansi"),
        (["shot", "--format", "json", "--plain", "w1"], "--plain and --format json"),
        (["watch", "--all", "--since", "1h"], "--all or --since"),
    ],
)
def test_conflicting_formats_and_filters_are_refused(
    data: Path, cli: Cli, args: list[str], said: str
) -> None:
    code, out, err = cli(*args)
    assert code == 2 and out == "" and said in err and err.count("\n") == 1  # a usage error


def test_ss_without_an_id_shows_the_one_live_worker_and_never_guesses(data: Path, cli: Cli) -> None:
    code, _, err = cli("ss")
    assert code == 1 and "no live worker" in err
    started = []
    try:
        for wid in ("s1", "s2"):
            cmd = f"echo ready-{wid} {{{{prompt_file}}}}; exec sleep 60"
            assert cli("worker", "start", wid, "hi", "--command", cmd)[0] == 0
            started.append(wid)
            if wid == "s1":
                assert cli("expect", "s1", "ready-s1", "--timeout", "20s")[0] == 0
                code, out, err = cli("ss")
                assert code == 0 and "ready-s1" in out, err
        code, out, err = cli("ss")
        assert code == 1 and out == "" and "s1, s2" in err
    finally:
        for wid in started:
            cli("kill", wid)


@pytest.mark.parametrize("name", ["looop.json", "looop/config.json"])
def test_a_config_from_an_earlier_version_is_found_and_named(
    data: Path, cli: Cli, tmp_path: Path, name: str
) -> None:
    xdg = tmp_path / "xdg"
    cli.env.pop("LOOOP_CONFIG", None)
    cli.env["XDG_CONFIG_HOME"] = str(xdg)
    old = xdg / name
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({"default": "mine", "runners": {"mine": {"tick": "my-agent -p"}}}))
    code, out, err = cli("status", "--json")
    assert code == 0, err
    st = json.loads(out)
    assert st["config"] == str(old) and st["runner"] == "mine"
    code, out, _ = cli("status")
    assert f"config:    {old}" in out
    (data / "config.json").parent.mkdir(parents=True, exist_ok=True)
    (data / "config.json").write_text(json.dumps({"default": "here", "runners": {"here": {}}}))
    assert json.loads(cli("status", "--json")[1])["config"] == str(data / "config.json")


def test_up_before_init_says_to_run_init_and_writes_nothing(data: Path, cli: Cli) -> None:
    code, out, err = cli("up")
    assert code == 1 and out == "" and err.count("\n") == 1 and "looop init" in err
    assert not (data / "config.json").exists() and not (data / "PLAYBOOK.md").exists()


@pytest.mark.parametrize("flag", ["--command", "--command="])
def test_a_worker_command_without_the_prompt_file_is_refused(
    data: Path, cli: Cli, flag: str
) -> None:
    """v1.0: the prompt file is the worker's only brief, so a command that never names it is
    refused in one line that says where to put it (and how a command with no brief says so)."""
    args = [flag, "sleep 30"] if flag == "--command" else [flag + "sleep 30"]
    code, out, err = cli("worker", "start", "nb1", "fix", "the", "bug", *args)
    assert code != 0 and out == "" and err.count("\n") == 1, (out, err)
    assert "--command has no {{prompt_file}}" in err and "# {{prompt_file}}" in err
    assert not (data / "sessions" / "nb1").exists()
    assert not (data / "prompts" / "nb1.md").exists()  # refused before anything was written
    code, _, err = cli("worker", "start", "nb2", "go", "--command", "sleep 30 # {{prompt_file}}")
    assert code == 0, err  # the escape: a command that takes no brief names it in a comment
    cli("kill", "nb2")


def test_a_runners_worker_command_without_the_prompt_file_is_refused(data: Path, cli: Cli) -> None:
    assert cli("init", "--runner", "claude", "--no-sandbox")[0] == 0
    cfg = json.loads((data / "config.json").read_text())
    cfg["runners"]["claude"]["worker"] = "claude --model opus"
    (data / "config.json").write_text(json.dumps(cfg))
    code, out, err = cli("worker", "start", "nb3", "go")
    assert code != 0 and out == "" and err.count("\n") == 1, err
    assert "lacks {{prompt_file}}" in err and "looop init" in err
    assert not (data / "sessions" / "nb3").exists()
    code, _, err = cli(
        "init", "--runner", "custom", "--tick-command", "a -p", "--worker-command", "b", "--force"
    )
    assert code != 0 and err.count("\n") == 1 and "{{prompt_file}}" in err


def test_a_decided_start_without_the_prompt_file_fails_the_move_and_says_why(ctx: Ctx) -> None:
    """The decider's start_worker with such a command is a failed move whose LAST FAILURE
    names the field and the fix, so the next beat does not repeat it blind."""
    move = {"action": "start_worker", "id": "nb4", "prompt": "go", "command": "sleep 30"}
    wire(ctx, [{"decision": move}])
    out = tick(ctx)
    assert out.status == "failed", out
    assert "start_worker's command has no {{prompt_file}}" in (out.error or "")
    failure = guards.read_last_failure(ctx.paths)
    assert failure is not None and "{{prompt_file}}" in failure["error"]
    assert list_sessions(ctx.paths.data) == []


@pytest.mark.process
@pytest.mark.timeout(90)
def test_init_seeds_the_setup_ask_and_a_waiting_client_wakes_on_it(tmp_path: Path) -> None:
    """v1.0 seeds `setup-1` so the thinnest client, blocked on `looop wait --only-asks`, wakes
    on a fresh home: here `init` writes it, and a real `wait` process returns it at once."""
    data = tmp_path / "data"
    env = clean_env(tmp_path, data, LOOOP_INTERVAL="3600")

    def looop(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "looop", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    tick_cmd = f"{sys.executable} -c 'import sys; sys.exit(3)'"  # never decides: no cost
    done = looop(
        "init", "--runner", "custom", "--tick-command", tick_cmd,
        "--worker-command", "cat {{prompt_file}}", "--no-sandbox",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "ask setup-1" in done.stdout
    # before the pulse runs, no worker waits on it: the human is told what sends one
    shown = looop("asks").stdout.splitlines()
    assert shown[0].split()[:2] == ["setup-1", "STRANDED"]
    assert "`looop up`" in shown[-1] and "looop answer" in shown[-1]
    assert looop("up").returncode == 0
    try:
        waited = looop("wait", "--only-asks", "--json", "--timeout", "30s", timeout=45)
        assert waited.returncode == 0, (waited.stdout, waited.stderr)
        state = json.loads(waited.stdout)
        assert state["changed"] == ["asks"]
        ask = state["asks"]["setup-1"] if isinstance(state["asks"], dict) else state["asks"][0]
        assert ask["worker"] == "setup" and ask["reference"] == "goals/setup.md"
        listed = looop("asks", "--json")
        assert [a["id"] for a in json.loads(listed.stdout)] == ["setup-1"]
        # answered, it is gone; `init --force` again never asks twice
        assert looop("answer", "setup-1", "ready").returncode == 0
        again = looop("init", "--force", "--runner", "custom", "--tick-command", tick_cmd,
                      "--worker-command", "cat {{prompt_file}}", "--no-sandbox")  # fmt: skip
        assert again.returncode == 0 and "ask setup-1" not in again.stdout, again.stderr
        assert json.loads(looop("asks", "--json").stdout) == []
    finally:
        looop("down")


@pytest.mark.process
@pytest.mark.timeout(90)
def test_up_json_logs_the_pulse_as_ndjson(tmp_path: Path) -> None:
    """v1.0's `up --json`: the detached pulse logs one JSON event per line."""
    data = tmp_path / "data"
    env = clean_env(tmp_path, data, LOOOP_INTERVAL="3600")

    def looop(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "looop", *args], env=env, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip

    tick_cmd = f"{sys.executable} -c 'import sys; sys.exit(3)'"
    init = ["init", "--runner", "custom", "--tick-command", tick_cmd, "--no-sandbox"]
    assert looop(*init, "--worker-command", "cat {{prompt_file}}").returncode == 0
    assert looop("up", "--json").returncode == 0
    try:
        done = looop("expect", "pulse", '"event"', "--timeout", "30s")
        assert done.returncode == 0, done.stderr
        lines = [ln for ln in looop("log", "pulse").stdout.splitlines() if ln.strip()]
        events = [json.loads(ln) for ln in lines if ln.startswith("{")]
        assert events and all("event" in e and "ts" in e for e in events), lines
    finally:
        looop("down")
