"""Landing a worker's change is a human's action only: no row of the action table lands,
merges or pushes, so no decision can name it, and the prompt never teaches it — the decider
may only propose it (propose_land: an ask), and no action's code reaches the landing code;
and the land config's bad values are each one line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from looop.act.actiontable import ACTION_TAGS, all_actions
from looop.act.decision import DecisionError
from looop.act.landpr import DEFAULT_PR, land_config, pr_argv
from looop.act.parse import decision_from_obj
from looop.home.errors import LooopError

ACTIONS = all_actions()

PROPOSING = {"propose_land"}  # raises an ask for the human: it lands nothing (below)
SRC = Path(__file__).resolve().parents[3] / "src"
# the only code that lands (a pod's: landthere in the pod, landfar from its home)
LANDING = {"looop.act.landing", "looop.act.landpr", "looop.act.landthere", "looop.act.landfar"}


def test_no_action_lands_merges_or_pushes() -> None:
    words = ("land", "merge", "push", "pull_request")
    assert not [t for t in ACTION_TAGS if t not in PROPOSING and any(w in t for w in words)]
    named = [a.__name__ for a in ACTIONS if a.tag not in PROPOSING]
    assert not [n for n in named if any(w in n.lower() for w in words)]
    for tag in ("land", "land_worker", "merge_worker", "approve_land", "land_change"):
        with pytest.raises((DecisionError, LooopError)):
            decision_from_obj({"action": tag, "id": "w1"})
    taught = "\n".join(a.teach for a in ACTIONS)
    assert "looop land" not in taught and "never you" in taught


def _file(module: str) -> Path | None:
    base = SRC / Path(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(module: str) -> set[str]:
    """The looop modules `module` imports anywhere in its file (a function's too)."""
    path = _file(module)
    if path is None:
        return set()
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("looop")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("looop"):
            out.add(str(node.module))
            out |= {
                f"{node.module}.{a.name}" for a in node.names if _file(f"{node.module}.{a.name}")
            }
    return out


def test_no_actions_code_reaches_the_landing_code() -> None:
    """Every module an action's perform could run, followed import by import through looop:
    none is the landing's. (The faces that land — cli, web, tui — import it; no move does.)"""
    todo = sorted({a.__module__ for a in ACTIONS} | {"looop.act.executor"})
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo += sorted(_imports(module) - seen)
    assert "looop.act.moves.workers" in seen and "looop.workers.review" in seen
    assert not seen & LANDING, sorted(seen & LANDING)


def test_the_land_config_defaults_to_a_fast_forward_and_gh() -> None:
    got = land_config({})
    assert got.merge == "ff" and got.remote == "origin" and got.pr_timeout_s == 120
    assert " ".join(got.pr_command) == DEFAULT_PR


def test_the_pr_command_is_filled_word_by_word_never_split_again() -> None:
    words = land_config({"land": {"pr_command": "glab mr create -s {branch} -t {title}"}})
    fill = {"branch": "looop/w1", "base": "main", "title": "a {body}; rm -rf /", "body": "/b"}
    argv = pr_argv(words.pr_command, {**fill, "remote": "origin"})
    assert argv == ["glab", "mr", "create", "-s", "looop/w1", "-t", "a {body}; rm -rf /"]


@pytest.mark.parametrize(
    ("land", "said"),
    [
        ("ff", "'land' must be an object"),
        ({"merge": "rebase"}, 'land.merge must be "ff" or "merge"'),
        ({"remote": "--upload-pack=x"}, "land.remote must be a remote's name"),
        ({"pr_command": "gh 'unclosed"}, "land.pr_command must be a command line"),
        ({"pr_timeout_s": True}, "land.pr_timeout_s must be seconds"),
        ({"pr_timeout_s": 7200}, "land.pr_timeout_s must be seconds"),
    ],
)
def test_bad_land_config_is_one_line(land: object, said: str) -> None:
    with pytest.raises(LooopError) as e:
        land_config({"land": land})
    assert said in str(e.value) and "\n" not in str(e.value)
