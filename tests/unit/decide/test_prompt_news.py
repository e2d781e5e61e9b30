"""A sensor reading that names a worker or its branch is that worker's news: the prompt shows
its signal in the worker's own item, and tells the decider to tell that worker (issue 57)."""

from __future__ import annotations

import json
from typing import Any

from looop.act.actiontable import taught
from looop.core.context import Ctx
from looop.decide.order import write_shown
from looop.decide.prompt import PromptExtras, build_prompt
from looop.decide.promptinputs import NEWS_CAP

RED = {"result": "fail", "failing": ["tests/test_x.py::test_one"]}


def _reading(ctx: Ctx, name: str, value: dict[str, Any]) -> None:
    ctx.paths.snapshots.mkdir(exist_ok=True)
    (ctx.paths.snapshots / f"{name}.json").write_text(json.dumps(value) + "\n")


def _fleet(ctx: Ctx) -> None:
    workers = {wid: {"pending_tells": 0, "branch": f"looop/{wid}"} for wid in ("w1", "w2")}
    workers["w3"] = {"pending_tells": 0}  # no worktree: no branch
    signal = [{"id": w, "state": "running", "exit_code": None} for w in workers]
    _reading(ctx, "sys-sessions", {"signal": signal, "detail": {"count": 3, "workers": workers}})


def _prompt(ctx: Ctx) -> str:
    built = build_prompt(ctx, ctx.knobs(), PromptExtras(actions=taught()))
    write_shown(ctx.paths.data, built.shown)
    return built.text


def _item(text: str, label: str) -> dict[str, Any]:
    """The worker's item as it is now, as JSON: its last entry from READINGS THAT MOVE on
    (an item that changed since it was drawn there is told again under SINCE THEN)."""
    late = text[text.index("=== READINGS THAT MOVE") :]
    return dict(json.loads(late.split(f"--- {label}\n")[-1].splitlines()[0]))


def test_a_red_reading_naming_a_branch_shows_beside_its_worker(ctx: Ctx) -> None:
    _fleet(ctx)
    _reading(ctx, "sensor-tests", {"signal": RED, "detail": {"branch": "looop/w1", "tail": "x"}})
    text = _prompt(ctx)
    w1 = _item(text, "sys-sessions.json worker w1")
    assert w1["news"] == {"sensor-tests.json": RED}
    assert w1["signal"]["id"] == "w1"  # beside the worker's own signal
    assert "news" not in _item(text, "sys-sessions.json worker w2")
    assert "natural move is to tell that\nworker with steer_session" in text


def test_a_reading_naming_a_worker_by_id_or_several_branches(ctx: Ctx) -> None:
    _fleet(ctx)
    _reading(ctx, "sensor-pager", {"signal": {"page": 1}, "detail": {"worker": "w3"}})
    prs = {"signal": {"checks": "failing"}, "detail": {"branch": ["looop/w2", "main", 7]}}
    _reading(ctx, "sensor-github", prs)
    text = _prompt(ctx)
    assert _item(text, "sys-sessions.json worker w3")["news"] == {"sensor-pager.json": {"page": 1}}
    assert _item(text, "sys-sessions.json worker w2")["news"] == {
        "sensor-github.json": {"checks": "failing"}
    }
    assert "news" not in _item(text, "sys-sessions.json worker w1")


def test_names_that_match_no_worker_and_looops_own_readings_are_no_news(ctx: Ctx) -> None:
    _fleet(ctx)
    _reading(ctx, "sensor-tests", {"signal": RED, "detail": {"branch": "looop/gone"}})
    _reading(ctx, "sensor-odd", {"signal": RED, "detail": {"worker": {"id": "w1"}}})
    _reading(ctx, "sys-claims", {"signal": {}, "detail": {"worker": "w1"}})
    text = _prompt(ctx)
    for wid in ("w1", "w2", "w3"):
        assert "news" not in _item(text, f"sys-sessions.json worker {wid}")


def test_a_huge_news_signal_is_cut_not_repeated_whole(ctx: Ctx) -> None:
    _fleet(ctx)
    big = {"failing": ["t" * 50 for _ in range(100)]}
    _reading(ctx, "sensor-tests", {"signal": big, "detail": {"branch": "looop/w1"}})
    news = _item(_prompt(ctx), "sys-sessions.json worker w1")["news"]["sensor-tests.json"]
    assert isinstance(news, str) and len(news) < NEWS_CAP + 40 and "cut by looop" in news


def test_news_stays_late_so_a_red_test_moves_only_the_workers_short_item(ctx: Ctx) -> None:
    _fleet(ctx)
    _reading(ctx, "sensor-tests", {"signal": {"result": "pass"}, "detail": {"branch": "looop/w1"}})
    first = _prompt(ctx)
    _reading(ctx, "sensor-tests", {"signal": RED, "detail": {"branch": "looop/w1"}})
    second = _prompt(ctx)
    settled = second[: second.index("=== READINGS THAT MOVE")]
    assert settled == first[: first.index("=== READINGS THAT MOVE")]
    assert _item(second, "sys-sessions.json worker w1")["news"] == {"sensor-tests.json": RED}


def _prs(w1_checks: str) -> dict[str, Any]:
    """A github-like reading of many pull requests, each entry naming its branch."""
    prs = [
        {"number": n, "branch": f"looop/w{n}", "checks": "pass", "review": "none"}
        for n in range(2, 40)
    ]
    prs.insert(0, {"number": 1, "branch": "looop/w1", "checks": w1_checks, "review": "none"})
    branches = [p["branch"] for p in prs]
    return {
        "signal": {"pull_requests": prs, "assigned_issues": [12]},
        "detail": {"branch": branches},
    }


def test_a_reading_about_many_branches_gives_each_worker_only_its_own_entry(ctx: Ctx) -> None:
    """Thirty-nine pull requests: w1's own, failing, is its news, not cut off by the others'."""
    _fleet(ctx)
    _reading(ctx, "sensor-github", _prs("fail"))
    text = _prompt(ctx)
    news = _item(text, "sys-sessions.json worker w1")["news"]["sensor-github.json"]
    one = {"number": 1, "branch": "looop/w1", "checks": "fail", "review": "none"}
    assert news == {"pull_requests": [one], "assigned_issues": [12]}
    two = _item(text, "sys-sessions.json worker w2")["news"]["sensor-github.json"]
    assert [p["number"] for p in two["pull_requests"]] == [2]


def test_another_workers_entry_changing_moves_no_news_of_this_one(ctx: Ctx) -> None:
    _fleet(ctx)
    quiet = _prs("pass")
    _reading(ctx, "sensor-github", quiet)
    first = _item(_prompt(ctx), "sys-sessions.json worker w2")["news"]
    quiet["signal"]["pull_requests"][0]["checks"] = "fail"  # w1's pull request goes red
    _reading(ctx, "sensor-github", quiet)
    second = _prompt(ctx)
    assert _item(second, "sys-sessions.json worker w2")["news"] == first
    w1 = _item(second, "sys-sessions.json worker w1")["news"]["sensor-github.json"]
    assert w1["pull_requests"][0]["checks"] == "fail"


def test_a_list_signal_keeps_the_workers_entries_and_those_naming_no_one(ctx: Ctx) -> None:
    _fleet(ctx)
    signal = [{"worker": "w3", "page": 1}, {"worker": "w1", "page": 2}, {"page": 3}, "x"]
    _reading(ctx, "sensor-pager", {"signal": signal, "detail": {"worker": ["w1", "w3"]}})
    text = _prompt(ctx)
    w1 = _item(text, "sys-sessions.json worker w1")["news"]["sensor-pager.json"]
    assert w1 == [{"worker": "w1", "page": 2}, {"page": 3}, "x"]
    w3 = _item(text, "sys-sessions.json worker w3")["news"]["sensor-pager.json"]
    assert w3 == [{"worker": "w3", "page": 1}, {"page": 3}, "x"]


def test_two_workers_on_one_branch_name_both_get_the_news(ctx: Ctx) -> None:
    """The same branch name in two repositories: neither worker's news is dropped."""
    workers = {w: {"pending_tells": 0, "branch": "fix-login"} for w in ("w1", "w2")}
    signal = [{"id": w, "state": "running", "exit_code": None} for w in workers]
    _reading(ctx, "sys-sessions", {"signal": signal, "detail": {"count": 2, "workers": workers}})
    _reading(ctx, "sensor-tests", {"signal": RED, "detail": {"branch": "fix-login"}})
    text = _prompt(ctx)
    for wid in ("w1", "w2"):
        assert _item(text, f"sys-sessions.json worker {wid}")["news"] == {"sensor-tests.json": RED}
