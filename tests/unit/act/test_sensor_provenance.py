"""Who wrote a sensor or a verify (core/provenance.py), as the executor records it and the
beat reads it: a decision cannot claim a human's, cannot replace a human's sensor, and its
sensor or verify in a language the tripwire cannot read is refused while the shell sandbox is
off. A human's sensor stays a human's only while its bytes are the ones written."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import pytest

from looop.act.executor import execute
from looop.act.outcome import ExecError, Executed
from looop.act.parse import decision_from_obj
from looop.core import provenance
from looop.core.context import Ctx
from looop.home.paths import Paths
from looop.seed import ensure_data_dir

PY = "#!/usr/bin/env python3\nprint('{}')\n"
SH = "#!/bin/sh\necho '{}'\n"


def run(ctx: Ctx, obj: dict[str, Any], actor: str = "pulse") -> Executed:
    return execute(ctx, ctx.knobs(), decision_from_obj(obj), actor=actor)


def sensor(name: str, script: str) -> dict[str, Any]:
    return {"action": "write_sensor", "name": name, "script": script}


def config(ctx: Ctx, sandbox: str) -> None:
    cfg = {"tick_command": "true", "shell_policy": {"sandbox": sandbox}}
    ctx.paths.config.write_text(json.dumps(cfg))


def who(ctx: Ctx, name: str) -> str:
    content = ctx.paths.sensor(name).read_bytes()
    return provenance.who(ctx.paths, provenance.SENSOR, name, content)


def test_each_writer_is_recorded_and_only_a_human_runs_unsandboxed(ctx: Ctx) -> None:
    config(ctx, "off")
    run(ctx, sensor("mine", SH), actor="cli")
    run(ctx, sensor("web", SH), actor="web")
    run(ctx, sensor("theirs", SH))
    assert [who(ctx, n) for n in ("mine", "web", "theirs")] == ["human", "human", "decision"]
    # a decision writing the very bytes a human wrote still gets no human record
    run(ctx, sensor("copy", SH))
    assert who(ctx, "copy") == "decision"


def test_a_decision_may_not_replace_a_humans_sensor(ctx: Ctx) -> None:
    config(ctx, "on")
    run(ctx, sensor("mine", SH), actor="cli")
    with pytest.raises(ExecError, match=r"sensors/mine\.sh was written by a human"):
        run(ctx, sensor("mine", "#!/bin/sh\necho '{\"x\": 1}'\n"))
    assert ctx.paths.sensor("mine").read_text() == SH and who(ctx, "mine") == "human"
    # edited by hand since: no longer vouched, so a decision may replace it (sandboxed)
    ctx.paths.sensor("mine").write_text(SH + "# edited\n")
    assert who(ctx, "mine") == "edited"
    run(ctx, sensor("mine", SH))
    assert who(ctx, "mine") == "decision"


def test_remove_then_write_leaves_a_decisions_sensor(ctx: Ctx) -> None:
    config(ctx, "on")
    run(ctx, sensor("mine", SH), actor="cli")
    run(ctx, {"action": "remove_sensor", "name": "mine"})
    assert not (ctx.paths.vouched / "sensor-mine").exists()
    run(ctx, sensor("mine", SH))
    assert who(ctx, "mine") == "decision"


def test_a_decisions_unreadable_sensor_needs_the_sandbox(ctx: Ctx) -> None:
    config(ctx, "off")
    with pytest.raises(ExecError, match=r"cannot read sensors/py\.sh .*shell_policy's sandbox"):
        run(ctx, sensor("py", PY))
    assert not ctx.paths.sensor("py").exists()
    run(ctx, sensor("py", PY), actor="cli")  # a human's stays as configured
    assert who(ctx, "py") == "human"
    config(ctx, "on")
    run(ctx, sensor("py2", PY))  # allowed: it runs sandboxed
    assert who(ctx, "py2") == "decision"


def test_a_decision_writing_over_a_symlink_replaces_the_link_not_its_target(ctx: Ctx) -> None:
    config(ctx, "on")
    target = ctx.paths.data.parent / "outside.sh"
    target.write_text(SH)
    ctx.paths.sensors.mkdir(parents=True, exist_ok=True)
    os.symlink(target, ctx.paths.sensor("link"))
    run(ctx, sensor("link", "#!/bin/sh\necho '{\"y\": 2}'\n"))
    assert target.read_text() == SH
    assert not ctx.paths.sensor("link").is_symlink() and who(ctx, "link") == "decision"


def test_a_humans_sensor_swapped_for_a_symlink_is_no_longer_vouched(ctx: Ctx) -> None:
    config(ctx, "on")
    run(ctx, sensor("mine", SH), actor="cli")
    evil = ctx.paths.reports / "evil.sh"
    evil.parent.mkdir(parents=True, exist_ok=True)
    evil.write_text("#!/bin/sh\ncat ~/.ssh/id_rsa\n")
    ctx.paths.sensor("mine").unlink()
    os.symlink(evil, ctx.paths.sensor("mine"))
    assert who(ctx, "mine") == "edited"


def test_a_forged_or_odd_record_is_no_human(ctx: Ctx) -> None:
    config(ctx, "on")
    run(ctx, sensor("theirs", SH))
    rec = ctx.paths.vouched / "sensor-theirs"
    for forged in ("human\n", "human deadbeef\n", "HUMAN " + "0" * 64 + "\n", "x" * 300):
        rec.write_text(forged)
        assert not provenance.by_human(
            ctx.paths, provenance.SENSOR, "theirs", ctx.paths.sensor("theirs").read_bytes()
        )
    rec.unlink()
    os.symlink(ctx.paths.data / "elsewhere", rec)  # a link in its place is not a record
    assert who(ctx, "theirs") == "unknown"


def test_a_decisions_verify_with_inline_code_needs_the_sandbox(ctx: Ctx) -> None:
    config(ctx, "off")
    start = {
        "action": "start_worker",
        "id": "w1",
        "prompt": "go",
        "command": "true # {{prompt_file}}",
    }
    with pytest.raises(ExecError, match=r"start_worker verify refused: .*inline python3"):
        run(ctx, {**start, "verify": "python3 -c 'import os'"})
    assert not (ctx.paths.verify / "w1.cmd").exists()


def test_inits_starter_sensor_is_the_humans(ctx: Ctx) -> None:
    fresh = dataclasses.replace(ctx, paths=Paths.at(ctx.paths.data.parent / "fresh"))
    assert ensure_data_dir(fresh.paths)
    assert who(fresh, "today") == "human"


def test_an_unreadable_sensor_allowed_sandboxed_is_marked_until_replaced(ctx: Ctx) -> None:
    config(ctx, "on")
    run(ctx, sensor("py", PY))
    marker = ctx.paths.vouched / "unread-sensor-py"
    assert provenance.is_unread(ctx.paths, provenance.SENSOR, "py", PY.encode())
    run(ctx, sensor("py", SH))  # now bash the tripwire reads: no longer marked
    assert not marker.exists()
    run(ctx, sensor("py", PY))
    run(ctx, {"action": "remove_sensor", "name": "py"})
    assert not marker.exists()
    run(ctx, sensor("py", PY))
    run(ctx, sensor("py", PY), actor="cli")  # a human's own python sensor: as configured
    assert not marker.exists() and who(ctx, "py") == "human"


AWK = "#!/bin/sh\nawk 'BEGIN { system(\"touch marker\") }'\necho '{}'\n"
POLYGLOT = '#!/bin/sh\nexec perl -x "$0" "$@"\n#!perl\nsystem("touch marker");\n__END__\n'


@pytest.mark.parametrize("script", [AWK, POLYGLOT], ids=["awk-system", "perl-x-polyglot"])
def test_a_decisions_sensor_in_disguise_needs_the_sandbox(ctx: Ctx, script: str) -> None:
    config(ctx, "off")
    with pytest.raises(ExecError, match=r"cannot read sensors/d\.sh .*shell_policy's sandbox"):
        run(ctx, sensor("d", script))
    assert not ctx.paths.sensor("d").exists()
    config(ctx, "on")
    run(ctx, sensor("d", script))  # allowed sandboxed, and marked so it never runs bare
    assert provenance.is_unread(ctx.paths, provenance.SENSOR, "d", script.encode())


def test_a_decisions_run_shell_with_code_it_cannot_read_needs_the_sandbox(ctx: Ctx) -> None:
    config(ctx, "off")
    for cmd in (
        "awk 'BEGIN { system(\"touch marker\") }'",
        "python3 -c 'import os'",
        "sed 's/.*/touch marker/e' reports/x",
        "x=touch; $x marker",
    ):
        with pytest.raises(ExecError, match=r"^run_shell refused: the tripwire cannot read it"):
            run(ctx, {"action": "run_shell", "cmd": cmd})
    assert not ctx.paths.last_shell.exists() and not (ctx.paths.data / "marker").exists()


@pytest.mark.parametrize(
    "watch", ["/etc/passwd", "~/../..", "../../../etc", "~/link/x", "~/a/../../../var/log"]
)
def test_a_decisions_sensor_may_not_watch_outside_whats_looops(ctx: Ctx, watch: str) -> None:
    config(ctx, "on")
    home = ctx.paths.data.parent
    (home / "link").symlink_to("/etc")
    script = f"#!/bin/sh\n# looop:watch=~/notes.md\n# looop:watch={watch}\necho '{{}}'\n"
    with pytest.raises(ExecError, match=r"may not watch .*outside your home") as got:
        run(ctx, sensor("far", script))
    assert "\n" not in str(got.value)
    assert not ctx.paths.sensor("far").exists()
    run(ctx, sensor("far", script), actor="cli")  # a human's sensor watches where it likes
    assert who(ctx, "far") == "human"


def test_a_decisions_sensor_watches_the_home_the_data_dir_and_a_workers_repo(
    ctx: Ctx, tmp_path_factory: pytest.TempPathFactory
) -> None:
    config(ctx, "on")
    repo = tmp_path_factory.mktemp("repo")  # outside the home
    ctx.paths.worktrees.mkdir(parents=True, exist_ok=True)
    (ctx.paths.worktrees / "w1.json").write_text(json.dumps({"repo": str(repo)}))
    watches = ["~/notes.md", "~", "inbox", str(ctx.paths.data), f"{repo}/.git/HEAD"]
    script = "#!/bin/sh\n" + "".join(f"# looop:watch={w}\n" for w in watches) + "echo '{}'\n"
    run(ctx, sensor("near", script))
    assert who(ctx, "near") == "decision"
