"""A sandboxed claude worker asks nothing on its first screen (workers/firstrun.py): trust is
claude's own sandboxed-session trust, the user's ~/.claude.json is read, never written, and a
user who has not answered claude's questions outside gets one line saying what to run once."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from looop.runners.claude import SANDBOXED
from looop.sandbox.srt import SandboxError
from looop.workers import boxed

LINE = "claude --dangerously-skip-permissions --model opus 'Greet the fleet.'"
KEY = "sk-ant-test-0123456789abcdefghijklmnopqrstuvwxyz"


def returning(home: Path, **extra: object) -> Path:
    """~/.claude.json as a user who has run claude with KEY has it (other keys included), and
    ~/.claude/settings.json as one who accepted its Bypass Permissions warning once."""
    state: dict[str, object] = {
        "hasCompletedOnboarding": True,
        "numStartups": 41,
        "customApiKeyResponses": {"approved": [KEY[-20:]], "rejected": []},
        "projects": {"/home/me/src": {"hasTrustDialogAccepted": True}},
        **extra,
    }
    path = home / ".claude.json"
    path.write_text(json.dumps(state))
    path.chmod(0o600)
    accepted(home / ".claude")
    return path


def accepted(settings_dir: Path, answer: object = True) -> Path:
    """claude's user settings as its Bypass Permissions warning's "Yes, I accept" leaves them."""
    settings_dir.mkdir(exist_ok=True)
    path = settings_dir / "settings.json"
    path.write_text(json.dumps({"theme": "dark", "skipDangerousModePermissionPrompt": answer}))
    return path


def test_a_returning_user_gets_claudes_sandboxed_trust_and_their_file_is_untouched(
    tmp_path: Path,
) -> None:
    path = returning(tmp_path)
    before = path.read_bytes()
    got = boxed.box_env(LINE, {"HOME": str(tmp_path), "ANTHROPIC_API_KEY": KEY})
    assert got == {"CLAUDE_CODE_SANDBOXED": "1"}
    assert path.read_bytes() == before  # no trust planted for a folder the box writes
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert sorted(os.listdir(tmp_path)) == [".claude", ".claude.json"]  # nothing beside them
    assert os.listdir(tmp_path / ".claude") == ["settings.json"]


def test_a_user_logged_in_without_a_key_needs_no_key_approved(tmp_path: Path) -> None:
    (tmp_path / ".claude.json").write_text(json.dumps({"hasCompletedOnboarding": True}))
    accepted(tmp_path / ".claude")
    assert boxed.box_env(LINE, {"HOME": str(tmp_path)}) == SANDBOXED


@pytest.mark.parametrize("state", [None, "{not json", "[]", '{"hasCompletedOnboarding": false}'])
def test_a_user_whose_claude_never_ran_is_told_what_to_run_once(
    tmp_path: Path, state: str | None
) -> None:
    if state is not None:
        (tmp_path / ".claude.json").write_text(state)
    with pytest.raises(SandboxError) as e:
        boxed.box_env(LINE, {"HOME": str(tmp_path), "ANTHROPIC_API_KEY": KEY})
    msg = str(e.value)
    assert "\n" not in msg and "run `claude` once outside looop" in msg
    assert str(tmp_path / ".claude.json") in msg


def test_a_key_claude_never_approved_is_not_approved_on_the_users_behalf(tmp_path: Path) -> None:
    path = returning(tmp_path)
    before = path.read_bytes()
    other = "sk-ant-another-key-zyxwvutsrqponmlkjihgfedcba"
    with pytest.raises(SandboxError, match="has not approved this ANTHROPIC_API_KEY"):
        boxed.box_env(LINE, {"HOME": str(tmp_path), "ANTHROPIC_API_KEY": other})
    assert path.read_bytes() == before


def test_a_rejected_key_says_it_was_rejected(tmp_path: Path) -> None:
    returning(tmp_path, customApiKeyResponses={"approved": [], "rejected": [KEY[-20:]]})
    with pytest.raises(SandboxError, match="told not to use this ANTHROPIC_API_KEY"):
        boxed.box_env(LINE, {"HOME": str(tmp_path), "ANTHROPIC_API_KEY": KEY})


def test_claude_config_dir_is_where_claude_keeps_its_answers(tmp_path: Path) -> None:
    conf = tmp_path / "elsewhere"
    conf.mkdir()
    returning(conf)
    accepted(conf)  # $CLAUDE_CONFIG_DIR/settings.json
    env = {"HOME": str(tmp_path), "CLAUDE_CONFIG_DIR": str(conf), "ANTHROPIC_API_KEY": KEY}
    assert boxed.box_env(LINE, env) == SANDBOXED
    with pytest.raises(SandboxError):
        boxed.box_env(LINE, {**env, "CLAUDE_CONFIG_DIR": str(tmp_path)})


@pytest.mark.parametrize(
    "line",
    [
        LINE,
        "env A=1 claude --permission-mode bypassPermissions 'Greet.'",
        "claude --permission-mode=bypassPermissions 'Greet.'",
        "claude --allow-dangerously-skip-permissions 'Greet.'",
        """claude --dangerously-skip-permissions --settings '{"tui":"default"}' hi""",
    ],
)
@pytest.mark.parametrize("settings", [None, "{}", '{"skipDangerousModePermissionPrompt": false}'])
def test_a_user_who_never_accepted_bypass_mode_is_told_what_to_run_once(
    tmp_path: Path, line: str, settings: str | None
) -> None:
    """Its warning would be asked in the box at every start (the answer goes to the user's
    settings.json, read-only there): refused in one line, nothing written for the user."""
    returning(tmp_path)
    path = tmp_path / ".claude" / "settings.json"
    if settings is None:
        path.unlink()
    else:
        path.write_text(settings)
    with pytest.raises(SandboxError) as e:
        boxed.box_env(line, {"HOME": str(tmp_path), "ANTHROPIC_API_KEY": KEY})
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    assert "run `claude --dangerously-skip-permissions` once outside looop" in msg
    assert (path.read_text() if settings is not None else None) == settings


def test_bypass_mode_accepted_in_the_lines_own_settings_is_accepted(tmp_path: Path) -> None:
    returning(tmp_path)
    (tmp_path / ".claude" / "settings.json").unlink()
    env = {"HOME": str(tmp_path), "ANTHROPIC_API_KEY": KEY}
    yes = '{"skipDangerousModePermissionPrompt":true}'
    own = f"claude --dangerously-skip-permissions --settings '{yes}' hi"
    assert boxed.box_env(own, env) == SANDBOXED
    kept = accepted(tmp_path / "mine")  # --settings FILE, and --settings=FILE
    for spelling in (f"--settings {kept}", f"--settings={kept}"):
        line = f"claude --dangerously-skip-permissions {spelling} hi"
        assert boxed.box_env(line, env) == SANDBOXED, spelling


def test_a_line_not_in_bypass_mode_needs_no_warning_accepted(tmp_path: Path) -> None:
    returning(tmp_path)
    (tmp_path / ".claude" / "settings.json").unlink()
    env = {"HOME": str(tmp_path), "ANTHROPIC_API_KEY": KEY}
    for line in ("claude --model opus hi", "claude --permission-mode plan hi"):
        assert boxed.box_env(line, env) == SANDBOXED, line


@pytest.mark.parametrize(
    "line",
    [
        "pi -p hi",
        "sh -c claude",
        "sh -c opencode",
        "sh -c gemini",
        "claudex go",
        "'",
    ],
)
def test_a_line_that_does_not_run_claude_needs_no_answers(tmp_path: Path, line: str) -> None:
    assert boxed.box_env(line, {"HOME": str(tmp_path)}) == {}


@pytest.mark.parametrize("line", ["/usr/local/bin/claude go", "env A=1 claude go", "X=1 claude"])
def test_claude_by_any_spelling_of_its_line_is_checked(tmp_path: Path, line: str) -> None:
    with pytest.raises(SandboxError, match="run `claude` once"):
        boxed.box_env(line, {"HOME": str(tmp_path)})


def test_opencode_that_ran_once_outside_starts_with_nothing_asked(tmp_path: Path) -> None:
    conf = tmp_path / ".config" / "opencode"
    conf.mkdir(parents=True)
    (conf / ".gitignore").write_text("node_modules\n")
    assert boxed.box_env("opencode --prompt hi", {"HOME": str(tmp_path)}) == {}
    assert sorted(os.listdir(conf)) == [".gitignore"]  # nothing written for it


@pytest.mark.parametrize("env_of", ["home", "xdg"])
def test_opencode_that_never_ran_is_told_what_to_run_once(tmp_path: Path, env_of: str) -> None:
    """Its first start writes a .gitignore into its config folder, read-only in the box: one
    line, not a worker stopped at "Unexpected server error"; $XDG_CONFIG_HOME is where it
    looks when set."""
    (tmp_path / ".config" / "opencode").mkdir(parents=True)
    (tmp_path / ".config" / "opencode" / ".gitignore").write_text("node_modules\n")
    env = {"HOME": str(tmp_path)}
    if env_of == "xdg":
        env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")  # the folder there never ran
    else:
        (tmp_path / ".config" / "opencode" / ".gitignore").unlink()
    with pytest.raises(SandboxError) as e:
        boxed.box_env("env A=1 opencode --prompt hi", env)
    msg = str(e.value)
    assert "run `opencode` once outside looop" in msg and "\n" not in msg
    assert "opencode" in msg.split("(")[1]  # names the folder it looked in


def _gemini_settings(home: Path, settings: object) -> Path:
    conf = home / ".gemini"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "settings.json").write_text(json.dumps(settings))
    return conf / "settings.json"


@pytest.mark.parametrize(
    "settings",
    [{"security": {"auth": {"selectedType": "gemini-api-key"}}}, {"selectedAuthType": "oauth"}],
)
def test_gemini_whose_login_was_chosen_outside_starts_with_nothing_asked(
    tmp_path: Path, settings: object
) -> None:
    path = _gemini_settings(tmp_path, settings)
    before = path.read_bytes()
    assert boxed.box_env("gemini --prompt-interactive hi", {"HOME": str(tmp_path)}) == {}
    assert path.read_bytes() == before  # nothing written for it


@pytest.mark.parametrize(
    "settings", [None, {}, {"security": {"auth": {}}}, {"security": []}, [1], "not json"]
)
def test_gemini_that_never_chose_a_login_is_told_what_to_run_once(
    tmp_path: Path, settings: object
) -> None:
    """Its login dialog would write the answer to settings.json, read-only in the box: one
    line, not a worker stopped at a dialog it cannot save."""
    if settings == "not json":
        (tmp_path / ".gemini").mkdir()
        (tmp_path / ".gemini" / "settings.json").write_text("{")
    elif settings is not None:
        _gemini_settings(tmp_path, settings)
    with pytest.raises(SandboxError) as e:
        boxed.box_env("env A=1 gemini -i hi", {"HOME": str(tmp_path)})
    msg = str(e.value)
    assert "run `gemini` once outside looop" in msg and "\n" not in msg
    assert str(tmp_path / ".gemini" / "settings.json") in msg


def test_gemini_cli_home_is_where_gemini_keeps_its_settings(tmp_path: Path) -> None:
    _gemini_settings(tmp_path / "elsewhere", {"security": {"auth": {"selectedType": "x"}}})
    env = {"HOME": str(tmp_path), "GEMINI_CLI_HOME": str(tmp_path / "elsewhere")}
    assert boxed.box_env("gemini", env) == {}
    with pytest.raises(SandboxError):
        boxed.box_env("gemini", {"HOME": str(tmp_path)})


def _codex_home(home: Path, **files: str) -> Path:
    conf = home / ".codex"
    conf.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (conf / name.replace("_", ".")).write_text(text)
    return conf


@pytest.mark.parametrize(
    "files",
    [
        {"auth_json": '{"OPENAI_API_KEY": "sk-x"}'},
        {"config_toml": 'model_provider = "mine"\n'},
        {"auth_json": '{"tokens": {}}', "config_toml": ""},
    ],
)
def test_codex_that_ran_once_outside_starts_with_nothing_asked(
    tmp_path: Path, files: dict[str, str]
) -> None:
    conf = _codex_home(tmp_path, **files)
    before = sorted(os.listdir(conf))
    assert boxed.box_env("codex --no-daemon 'hi'", {"HOME": str(tmp_path)}) == {}
    assert sorted(os.listdir(conf)) == before  # nothing written for it


@pytest.mark.parametrize(
    "files",
    [None, {}, {"auth_json": "", "config_toml": "", "hooks_json": "{}\n"}],
)
def test_codex_that_never_ran_is_told_what_to_run_once(
    tmp_path: Path, files: dict[str, str] | None
) -> None:
    """Its first start asks how to sign in, and the answer goes to auth.json, read-only in the
    box (the empty placeholders a box leaves where the user had none are no answer): one line,
    not a worker stopped at "Welcome to Codex"."""
    if files is not None:
        _codex_home(tmp_path, **files)
    with pytest.raises(SandboxError) as e:
        boxed.box_env("env A=1 codex --no-daemon hi", {"HOME": str(tmp_path)})
    msg = str(e.value)
    assert "run `codex` once outside looop" in msg and "\n" not in msg
    assert str(tmp_path / ".codex") in msg


def test_codex_home_is_where_codex_keeps_its_login(tmp_path: Path) -> None:
    _codex_home(tmp_path / "elsewhere", auth_json='{"OPENAI_API_KEY": "sk-x"}')
    env = {"HOME": str(tmp_path), "CODEX_HOME": str(tmp_path / "elsewhere" / ".codex")}
    assert boxed.box_env("codex hi", env) == {}
    with pytest.raises(SandboxError, match="run `codex` once"):
        boxed.box_env("codex hi", {"HOME": str(tmp_path)})  # ~/.codex has none
