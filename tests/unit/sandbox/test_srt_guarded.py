"""The shell and tool settings srt would keep read-only in a worktree it started in, found
by looop (srt starts elsewhere, so its placeholders never land in the worktree)."""

from __future__ import annotations

import os
from pathlib import Path

from looop.sandbox.checkout import srt_guarded


def make(top: Path, *names: str) -> None:
    for name in names:
        p = top / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x\n")


def found(top: Path) -> set[str]:
    return {os.path.relpath(p, top) for p in srt_guarded(str(top))}


def test_what_exists_is_found_as_deep_as_srt_looks(tmp_path: Path) -> None:
    make(
        tmp_path,
        ".mcp.json",
        ".gitmodules",
        "a/.bashrc",
        "a/b/.zshrc",
        "a/b/c/.profile",  # three folders down: past srt's depth
        ".vscode/settings.json",
        "a/.idea/x.xml",
        "a/b/.vscode/settings.json",  # a folder two down: past srt's depth for folders
        ".claude/commands/go.md",
        ".claude/settings.json",  # not srt's (claude's own settings are its runner's)
        "sub/.git/hooks/pre-commit",
        "sub/.git/config",
        "src/main.py",
    )
    assert found(tmp_path) == {
        ".mcp.json",
        ".gitmodules",
        "a/.bashrc",
        "a/b/.zshrc",
        ".vscode",
        "a/.idea",
        ".claude/commands",
        "sub/.git/hooks",
        "sub/.git/config",
    }


def test_names_are_matched_without_case_and_missing_ones_are_not_listed(tmp_path: Path) -> None:
    make(tmp_path, ".BashRC", ".VSCode/x", "README")
    (tmp_path / ".claude").mkdir()  # no commands/ or agents/ in it
    assert found(tmp_path) == {".BashRC", ".VSCode"}


def test_no_symlinked_folder_or_node_modules_is_entered(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    make(outside, ".bashrc", "deep/.mcp.json")
    top = tmp_path / "tree"
    make(top, "node_modules/pkg/.bashrc", "README")
    (top / "linked").symlink_to(outside)
    (top / ".profile").symlink_to(outside / ".bashrc")  # the name itself: denied as srt would
    assert found(top) == {".profile"}


def test_a_worktrees_own_git_file_adds_nothing(tmp_path: Path) -> None:
    (tmp_path / ".git").write_text("gitdir: /elsewhere\n")
    assert found(tmp_path) == set()
    assert srt_guarded(str(tmp_path / "missing")) == []
