"""A sandboxed worker of each preset runner, with the real srt and bubblewrap, goes after the
files the user's own CLI reads outside the box (claude's ~/.claude.json and settings, codex's
config and rules, pi's settings and models, opencode's config and provider cache): every write,
new file or replacement fails and the user's files stay as they were, while the CLI's own
session folder (what it writes in a session) stays writable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from looop.home.paths import Paths
from tests.sandbox.test_sandboxed_worker import Box

pytestmark = pytest.mark.timeout(120)

# per preset: files the user's CLI reads (made with "user" in them before the start), files
# it would obey were they planted, and the session folder the box must still write
USERS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "claude": (
        (".claude.json", ".claude/settings.json", ".claude/.credentials.json"),
        (".claude/settings.local.json", ".claude/hooks/run.sh", ".claude/commands/go.md"),
        ".claude/projects",
    ),
    "codex": (
        (".codex/config.toml", ".codex/AGENTS.md", ".codex/auth.json"),
        (".codex/rules/default.rules", ".codex/prompts/go.md", ".codex/packages/app-server"),
        ".codex/sessions",
    ),
    "pi": (
        (".pi/agent/settings.json", ".pi/agent/models.json", ".pi/agent/auth.json"),
        (".pi/agent/extensions/x.ts", ".pi/agent/bin/rg", ".pi/agent/AGENTS.md"),
        ".pi/agent/sessions",
    ),
    "opencode": (
        (".config/opencode/opencode.json", ".config/opencode/.gitignore"),
        (".config/opencode/plugin/x.ts", ".cache/opencode/node_modules/x/index.js"),
        ".local/share/opencode",
    ),
}

PROBE = r"""
r="$LOOOP_WORKSPACE/results"
for f in __FILES__; do
  if echo planted > "$HOME/$f" 2>/dev/null; then echo "write $f" >> "$r"; fi
  if echo planted > "$HOME/$f.new" 2>/dev/null && mv -f "$HOME/$f.new" "$HOME/$f" 2>/dev/null
  then echo "replace $f" >> "$r"; fi
done
for f in __PLANTS__; do
  if mkdir -p "$(dirname "$HOME/$f")" 2>/dev/null && echo planted > "$HOME/$f" 2>/dev/null
  then echo "plant $f" >> "$r"; fi
done
if mkdir -p "$HOME/__STATE__" && echo mine > "$HOME/__STATE__/mine" 2>/dev/null
then echo state=ok >> "$r"; fi
echo end >> "$r"
"""


@pytest.mark.parametrize("runner", sorted(USERS))
def test_a_box_cannot_change_what_the_users_own_cli_reads(
    tmp_path: Path, srt: Path, runner: str
) -> None:
    files, plants, state = USERS[runner]
    box = Box(tmp_path, srt, "on")
    cfg = json.loads((box.data / "config.json").read_text())
    cfg["default"] = runner
    cfg["runners"] = {runner: {"worker": "true {{prompt_file}}"}}
    (box.data / "config.json").write_text(json.dumps(cfg))
    for f in files:
        path = box.home / f
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("user\n")
    script = (
        PROBE.replace("__FILES__", " ".join(files))
        .replace("__PLANTS__", " ".join(plants))
        .replace("__STATE__", state)
    )
    box.start("w1", script)
    assert box.wait("w1") == 0, box.looop("log", "w1").stdout
    got = (box.room("w1") / "work" / "results").read_text().splitlines()
    # the box ran to its end, wrote its CLI's session folder, and nothing of the user's
    assert got == ["state=ok", "end"], got
    assert (box.home / state / "mine").read_text() == "mine\n"
    for f in files:
        assert (box.home / f).read_text() == "user\n", f
    for f in plants:
        assert not (box.home / f).exists(), f


def test_a_codex_box_cannot_create_what_codex_obeys_where_the_user_has_none(
    tmp_path: Path, srt: Path
) -> None:
    """A user with no ~/.codex/config.toml, AGENTS.md, AGENTS.override.md, hooks.json or
    auth.json (a login codex would believe, issue 50): the box finds each there already (made
    before it started, holding what codex reads as none) and can neither write nor replace
    it; outside they hold that still."""
    names = [f".codex/{n}" for n in CODEX_NONE]
    box = Box(tmp_path, srt, "on")
    cfg = json.loads((box.data / "config.json").read_text())
    cfg["default"] = "codex"
    cfg["runners"] = {"codex": {"worker": "true {{prompt_file}}"}}
    (box.data / "config.json").write_text(json.dumps(cfg))
    assert not any((box.home / n).exists() for n in names)
    script = (
        PROBE.replace("__FILES__", " ".join(names))
        .replace("__PLANTS__", " ".join(f"{n}" for n in names))
        .replace("__STATE__", ".codex/sessions")
    )
    box.start("w1", script)
    assert box.wait("w1") == 0, box.looop("log", "w1").stdout
    got = (box.room("w1") / "work" / "results").read_text().splitlines()
    assert got == ["state=ok", "end"], got
    for name, none in CODEX_NONE.items():
        assert (box.home / ".codex" / name).read_text() == none, name


# what codex 0.169 reads as none, measured by hand: an empty auth.json is "Sign in" (no login)
CODEX_NONE = {
    "config.toml": "",
    "AGENTS.md": "",
    "AGENTS.override.md": "",
    "hooks.json": "{}\n",
    "auth.json": "",
}


def test_a_codex_decider_cannot_plant_a_login(tmp_path: Path, srt: Path) -> None:
    """The tick runner of a codex runner, sandboxed: where the user has no ~/.codex/auth.json
    its box can neither create nor replace one, and its decision still goes through."""
    box = Box(tmp_path, srt, "on")
    script = tmp_path / "decider.sh"
    script.write_text(
        'a="$HOME/.codex/auth.json"\n'
        'if echo \'{"OPENAI_API_KEY":"sk-planted"}\' > "$a"; then echo wrote > "$TMPDIR/r"; fi\n'
        'if echo x > "$a.new" && mv -f "$a.new" "$a"; then echo moved >> "$TMPDIR/r"; fi\n'
        'printf \'%s\' \'{"action":"noop","journal":"codex decided"}\' > "$LOOOP_DECISION"\n'
    )
    cfg = json.loads((box.data / "config.json").read_text())
    cfg["default"] = "codex"
    cfg["runners"] = {"codex": {"tick": f"bash {script}", "worker": "true {{prompt_file}}"}}
    (box.data / "config.json").write_text(json.dumps(cfg))
    done = box.looop("tick", "--force")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "codex decided" in (box.data / "journal.md").read_text()
    assert (box.home / ".codex" / "auth.json").read_text() == ""
    assert not (Paths.at(box.data).rooms / "+tick" / "tmp" / "r").exists()  # both refused
