"""The home's reading of a pod's answers (remote/kube/podchange.py, act/landfar.py): a pod
that ended or is not running yet is refused in one line before anything is asked; what the
pod answers is its worker's word, read only when it reads as the verb's answer; what the home
acts on with its own credentials (the repository's URL) comes from the Job it made, never
from the pod. The real exec and git: tests/integration/test_pod_land.py."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace
from typing import Any

import pytest

from looop.act.landfar import read_landed
from looop.act.landing import LandError
from looop.remote.kube import manifests as mf
from looop.remote.kube.podchange import ask, job_repos
from looop.sessions.state import SessionError
from looop.workers.errors import ChangeError, Refused


def _ns(obj: Any) -> Any:
    """A manifest as the client's objects read (attributes, snake_case names)."""
    if isinstance(obj, dict):
        snake = {
            "".join("_" + c.lower() if c.isupper() else c for c in k): _ns(v)
            for k, v in obj.items()
        }
        return SimpleNamespace(**snake)
    if isinstance(obj, list):
        return [_ns(x) for x in obj]
    return obj


class Stand:
    """A KubeCluster's reads, as a pod in one state answers them."""

    def __init__(self, job: Any, phase: str | None, out: str = "") -> None:
        self.job, self.phase, self.out = job, phase, out
        self.asked: list[list[str]] = []

    def job_for(self, sid: str) -> Any:
        return self.job

    def pod_for(self, sid: str) -> Any:
        return (
            None
            if self.phase is None
            else SimpleNamespace(status=SimpleNamespace(phase=self.phase))
        )

    def exec_in(self, sid: str, command: list[str], timeout: float = 30.0) -> str:
        self.asked.append(command)
        if self.out.startswith("exit 2:"):  # the exec's own refusal (cluster.py's one line)
            raise SessionError(f"worker {sid}: {self.out[8:]}")
        return self.out


def _job(*repos: str, over: bool = False) -> Any:
    shape = mf.WorkerShape("w1", ["agent"], image="img:1", home="/h", repo=repos[0], repos=repos)
    job = _ns(mf.job(shape))
    cond = [SimpleNamespace(type="Complete", status="True")] if over else []
    job.status = SimpleNamespace(conditions=cond)
    return job


def test_an_ended_pod_is_refused_in_one_line_and_nothing_is_asked() -> None:
    for job in (None, _job("https://git.example/a.git", over=True)):
        b = Stand(job, "Succeeded")
        with pytest.raises(Refused) as got:
            ask(b, "w1", "review", {}, 5)  # type: ignore[arg-type]
        said = str(got.value)
        assert "pod has ended" in said and "wherever it pushed it" in said and "\n" not in said
        assert b.asked == []


def test_a_pod_not_running_yet_is_refused_as_not_yet() -> None:
    b = Stand(_job("https://git.example/a.git"), "Pending")
    with pytest.raises(Refused, match="not running yet"):
        ask(b, "w1", "review", {}, 5)  # type: ignore[arg-type]
    assert b.asked == []


def test_the_request_crosses_as_base64_json_naming_the_worker() -> None:
    b = Stand(_job("https://git.example/a.git"), "Running", '{"diff": ""}\n')
    ask(b, "w1", "diff", {"since": "x"}, 5)  # type: ignore[arg-type]
    (cmd,) = b.asked
    assert cmd[:5] == ["looop", "pod", "change", "diff", "--b64"]
    assert json.loads(base64.b64decode(cmd[5])) == {"since": "x", "id": "w1"}


@pytest.mark.parametrize("out", ["", "not json\n", "[1, 2]\n", "Traceback …\n"])
def test_an_answer_that_does_not_read_is_one_line(out: str) -> None:
    b = Stand(_job("https://git.example/a.git"), "Running", out)
    with pytest.raises(ChangeError) as got:
        ask(b, "w1", "review", {}, 5)  # type: ignore[arg-type]
    assert "nothing this home can read" in str(got.value) and "\n" not in str(got.value)


def test_an_image_whose_looop_has_no_change_verb_is_said_so() -> None:
    b = Stand(
        _job("https://git.example/a.git"), "Running", "exit 2: Error: No such command 'change'."
    )
    with pytest.raises(ChangeError) as got:
        ask(b, "w1", "review", {}, 5)  # type: ignore[arg-type]
    assert "older" in str(got.value) and "image" in str(got.value)


def test_the_pods_own_refusal_is_its_one_line() -> None:
    said = "worker w1 has no worktree — only a worker started with --repo has a change"
    b = Stand(_job("https://git.example/a.git"), "Running", json.dumps({"error": said}))
    with pytest.raises(ChangeError) as got:
        ask(b, "w1", "review", {}, 5)  # type: ignore[arg-type]
    assert str(got.value) == said


def test_the_repositories_are_read_from_the_job_the_home_made() -> None:
    one = Stand(_job("https://git.example/a.git"), "Running")
    assert job_repos(one, "w1") == {"": "https://git.example/a.git"}  # type: ignore[arg-type]
    two = Stand(_job("https://git.example/a.git", "git@git.example:t/b.git"), "Running")
    assert job_repos(two, "w1") == {  # type: ignore[arg-type]
        "a": "https://git.example/a.git",
        "b": "git@git.example:t/b.git",
    }


def _landed(**over: Any) -> dict[str, Any]:
    d = {"wid": "w1", "mode": "ff", "branch": "main", "into": "main", "commit": "c" * 40,
         "url": "", "name": "", "repo": "https://evil.example/x.git", "repos": []}  # fmt: skip
    return {**d, **over}


def test_a_landing_is_named_by_the_jobs_url_never_the_pods() -> None:
    urls = {"": "https://git.example/a.git"}
    (d,) = read_landed("w1", [_landed()], urls)
    assert d.repo == "https://git.example/a.git"


@pytest.mark.parametrize(
    "bad", [{"name": "other"}, {"branch": "--web"}, {"into": "a..b"}, {"mode": "rm"}]
)
def test_a_landing_the_job_never_named_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(LandError) as got:
        read_landed("w1", [_landed(**bad)], {"": "https://git.example/a.git"})
    assert "cannot be read" in str(got.value) and "\n" not in str(got.value)
