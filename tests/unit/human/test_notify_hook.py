"""The `notification` hook: untrusted text (a decision's message, an ask's question) reaches the
hook only as data. Real hooks run by a real bash; a marker file the text tries to create must
stay absent."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.home.hookline import HookLineError, hook_line
from looop.human.notify import fire_hook
from looop.loop.tick import tick
from tests.helpers import examples, runner_calls, until, wire

# Every way the text could turn into code once it is spliced into a shell string.
# The first field has no blank: an unquoted expansion's word splitting keeps it whole.
EVIL = (
    "$(touch${IFS}PWNED);touch${IFS}PWNED done $(touch PWNED) `touch PWNED` "
    "\"; touch PWNED; \" '; touch PWNED; ' "
    '\\"; touch PWNED #\n$(touch PWNED)'
)

# Hooks whose placeholder is not a shell word of its own: refused, never run.
REFUSED = [
    "` ` printf {{message}} printf %s",  # the command name expands to nothing: printf -v runs
    "$EMPTY printf {{message}}",
    "${X}$(true) printf {{message}}",
    'bash -c "echo {{message}} > out"',  # the hook
    "bash -c \"echo '{{message}}' > out\"",
    "sh -c 'echo {{message}} > out'",
    "bash -c 'echo \"{{message}}\" > out'",
    'eval "echo {{message}}" > out',
    'ssh localhost "notify {{message}}"',
    'echo "New: {{message}}" > out',
    "echo 'New: {{message}}' > out",
    "echo $'{{message}}' > out",
    "echo `echo {{message}}` > out",
    'echo "$(echo {{message}})" > out',
    "echo x{{message}} > out",
    "echo {{message}}x > out",
    'echo --text="{{message}}"x > out',
    "echo {{message}}{{id}} > out",
    "echo \\{{message}} > out",
    "bash <<EOF > out\necho {{message}}\nEOF",
    "cat <<-'EOF' > out\n\t{{message}}\n\tEOF",
    'printf %s {{id}} > id; bash -c "echo {{id}}"',
    'echo ok > out # fine\nbash -c "echo {{message}}"',
    # A whole word, but where the shell reads it as a command, code, a name or arithmetic.
    "{{message}}",
    "true && {{message}} > out",
    "echo hi | {{message}}",
    "echo $({{message}}) > out",
    "timeout 5 {{message}}",
    "bash -c {{message}}",
    "eval {{message}}",
    "X=1 eval {{message}}",
    "env X=1 bash {{message}}",
    "sudo -u me sh -c {{message}}",
    "python3 -c {{message}}",
    "echo ok; source {{message}}",
    "ssh localhost notify {{message}}",
    "echo $(( {{message}} + 1 )) > out",
    "(( {{message}} )); echo ok > out",
    "[[ {{message}} -eq 1 ]]; echo ok > out",
    "[ -v {{message}} ]; echo ok > out",
    "test -v {{message}}; echo ok > out",
    "read -r {{message}} <<< 1; echo ok > out",
    "declare {{message}}=1; echo ok > out",
    "printf -v {{message}} %s x; echo ok > out",
    # Its text piped into a program that runs its input, or a substitution run as code.
    "printf %s {{message}} | bash",
    "printf %s {{message}} | cat | sh",
    "printf %s {{message}} | xargs -0 bash -c",
    "printf %s {{message}} | ssh localhost bash",
    "(printf %s {{message}}) | bash",
    "bash <(printf %s {{message}})",
    "source <(printf %s {{message}})",
    "eval $(printf %s {{message}})",
    "$(printf %s {{message}}) > out",
    "let 2>&1 '{{message}}'; echo ok > out",  # found by the generated lines below
    "printf %s {{message}} |& bash",
    '2>&1 let "{{message}}"; echo ok > out',
    "{fd}>&2 eval {{message}}",
    "time -p eval {{message}}",
    "sudo -u me bash {{message}}",
    "case x in x) eval {{message}};; esac",
    "printf {{message}} x > out",
]

# Hooks that keep working: the placeholder is a whole word, so it becomes "$LOOOP_MESSAGE".
KEPT = [
    "printf %s {{message}} > out",
    "printf %s '{{message}}' > out",
    'printf %s "{{message}}" > out',
    "printf %s {{message}}>out",
    "true; printf %s {{message}}|cat > out",
    "echo $(printf %s {{message}}) > /dev/null; printf %s {{message}} > out",
    "(printf %s {{message}}) > out",
    "cat <<< {{message}} | head -c -1 > out",
    "# a comment with {{message}} and don't\nprintf %s {{message}} > out",
    'echo "it\'s" \'a "quote"\' > /dev/null; printf %s {{message}} > out',
    "timeout 5 printf %s {{message}} > out",
    "nice -n 5 printf %s {{message}} > out",
    "X=1 printf %s {{message}} > out",
    "> out printf %s {{message}}",
    "if true; then printf %s {{message}} > out; fi",
    "{ printf %s {{message}}; } > out 2>&1",
    "printf %s {{message}} | tee out > /dev/null",
    "cat <(printf %s {{message}}) > out",
    "echo true | bash; printf %s {{message}} | cat > out",
    "printf %s {{message}} > out || bash -c 'exit 3'",
    "printf %s {{message}} 2>&1 &> out",
    "exec 3> out; printf %s {{message}} >&3",
    "2>/dev/null printf %s {{message}} > out",
    "time -p printf %s {{message}} > out",
    "case x in x) printf %s {{message}} > out;; esac",
    "printf -- %s {{message}} > out",
]


def _events(ctx: Ctx, name: str) -> list[dict[str, Any]]:
    text = (ctx.paths.events.read_text() if ctx.paths.events.exists() else "").splitlines()
    return [r for r in map(json.loads, text) if r["event"] == name]


def _bash_ran(ctx: Ctx, hook: str, message: str) -> Path:
    """Fire the hook with a trailing `touch done` so the test knows when the shell is over."""
    fire_hook(ctx, f"{hook}\ntouch hook.done", message, "w-1", timeout_s=10)
    return ctx.paths.data / "hook.done"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("hook", REFUSED)
def test_a_placeholder_inside_a_string_never_runs_the_text(ctx: Ctx, hook: str) -> None:
    fire_hook(ctx, hook, EVIL, "w-1", timeout_s=10)
    assert until(lambda: _events(ctx, "notify_failed"), 10), "the hook was not refused"
    why = _events(ctx, "notify_failed")[0]["error"]
    assert "$LOOOP_" in why and "word of its own" in why
    assert not (ctx.paths.data / "PWNED").exists()
    assert not (ctx.paths.data / "out").exists()  # refused before any shell started


@pytest.mark.parametrize("hook", REFUSED)
def test_the_config_refuses_such_a_hook_in_one_line(ctx: Ctx, hook: str) -> None:
    ctx.paths.config.write_text(json.dumps({"notification": hook}), encoding="utf-8")
    with pytest.raises(LooopError) as e:
        ctx.config()
    msg = str(e.value)
    assert "\n" not in msg
    assert "'notification'" in msg and "word of its own" in msg
    assert '"$LOOOP_MESSAGE"' in msg or '"$LOOOP_ID"' in msg


@pytest.mark.timeout(30)
@pytest.mark.parametrize("message", [EVIL, "a[$(touch PWNED)]", "touch PWNED", "-v"])
@pytest.mark.parametrize("hook", KEPT)
@pytest.mark.process  # real bash
def test_a_whole_word_placeholder_gets_the_text_verbatim(ctx: Ctx, hook: str, message: str) -> None:
    ctx.paths.config.write_text(json.dumps({"notification": hook}), encoding="utf-8")
    ctx.config()  # accepted
    done = _bash_ran(ctx, hook, message)
    assert until(done.exists, 15)
    assert (ctx.paths.data / "out").read_text() == message
    assert not (ctx.paths.data / "PWNED").exists()
    assert _events(ctx, "notify_failed") == []


def test_a_line_without_placeholders_is_left_as_written() -> None:
    for line in ["echo 'unbalanced", 'notify-send looop "$LOOOP_MESSAGE"', "a <<EOF\n{{x}}"]:
        assert hook_line(line) == line


@pytest.mark.parametrize("hook", REFUSED)
def test_refused_hooks_are_refused_by_the_renderer_itself(hook: str) -> None:
    with pytest.raises(HookLineError):
        hook_line(hook)


@pytest.mark.timeout(30)
@pytest.mark.process  # real bash
def test_bash_agrees_a_rendered_line_is_the_same_command(tmp_path: Path) -> None:
    """The rendering touches only the placeholders: bash -n reads each kept line fine."""
    for hook in KEPT:
        rendered = hook_line(hook)
        assert "{{message}}" not in rendered.replace("with {{message}} and", "")
        r = subprocess.run(["bash", "-n", "-c", rendered], capture_output=True, timeout=10)
        assert r.returncode == 0, (hook, r.stderr)


# ---------------------------------------------------------------- generated hook lines

_FRAGMENTS = [
    *["{{message}}", "'{{message}}'", '"{{message}}"', "{{id}}", "printf %s", "echo", "cat"],
    *["bash", "bash -c", "sh -c", "eval", "source", "read", "declare", "test -v", "let", "-c"],
    *["true;", ";", "|", "||", "&&", "\n", "(", ")", "$(", "<(", "((", "))", "$((", "[[", "]]"],
    *['"', "'", "`", "$'", "\\", "#", "<<<", "<<EOF\n", "\nEOF\n", "x", "=", "X=1", "> out"],
    *["printf", "time -p", "sudo -u me", "2>&1", "|&", "case x in x)", ";;", "esac", "{", "}"],
]
_PAYLOADS = ["touch PWNED", "a[$(touch PWNED)]", "-va[$(touch PWNED)]", EVIL]


@pytest.mark.timeout(300)
@settings(max_examples=examples(150), deadline=None)
@given(st.lists(st.sampled_from(_FRAGMENTS), min_size=1, max_size=8), st.sampled_from(" \t"))
@pytest.mark.process  # real bash
def test_a_generated_hook_line_is_refused_or_never_runs_the_text(
    parts: list[str], blank: str
) -> None:
    line = blank.join(parts)
    try:
        rendered = hook_line(line)
    except HookLineError:
        return
    for payload in _PAYLOADS:
        with tempfile.TemporaryDirectory() as d:
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LOOOP_ID": payload}
            subprocess.run(
                ["bash", "-c", rendered],
                cwd=d,
                env={**env, "LOOOP_MESSAGE": payload},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=10,
            )
            assert not (Path(d) / "PWNED").exists(), (line, rendered, payload)


@pytest.mark.timeout(60)
def test_a_beat_under_such_a_config_fails_in_one_line_and_runs_nothing(ctx: Ctx) -> None:
    """The real beat (scripted decider): the config is refused before anything runs."""
    move = {"action": "send_notification", "message": "$(touch${IFS}PWNED)", "id": "x"}
    script = wire(ctx, [{"decision": move}], notification='bash -c "echo {{message}}"')
    out = tick(ctx, force=True)
    assert out.status == "error"
    assert "'notification'" in (out.error or "") and "\n" not in (out.error or "")
    assert runner_calls(script) == 0
    assert not (ctx.paths.data / "PWNED").exists()
