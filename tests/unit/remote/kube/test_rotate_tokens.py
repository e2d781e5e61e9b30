"""`looop host rotate-tokens`: a new key voids every worker token handed out, refused while
workers in pods still hold one (unless --force); SSH workers hold none and never stop it."""

from __future__ import annotations

from pathlib import Path

import pytest

from looop.home.paths import Paths
from looop.remote import hosts as reg
from looop.remote import tokens
from tests.clocks import FixedClock
from tests.helpers import Cli, clean_env


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    data = tmp_path / "data"
    data.mkdir()
    env = clean_env(tmp_path / "user", data)
    return Cli(capsys, monkeypatch, data, env, FixedClock())


def test_rotation_voids_tokens_and_spares_a_pod_only_when_forced(cli: Cli) -> None:
    data = cli.data
    paths = Paths.at(data)
    reg.save(data, reg.kube_host(data, "k1", "k8s://ctx/team", image="img:1", cap=0))
    reg.add(data, "s1", "ssh://me@10.1.1.1", 0)
    reg.write_record(data, "on-ssh", "s1", over=False)  # a relay's worker: no token
    reg.write_record(data, "gone", "k1", over=True)  # over: its token no longer matters
    token = tokens.mint(paths, "pod1")

    code, out, _ = cli("host", "rotate-tokens")
    assert code == 0 and "rotated" in out
    assert not tokens.check(paths, "pod1", token)
    fresh = tokens.mint(paths, "pod1")
    assert fresh != token and tokens.check(paths, "pod1", fresh)

    reg.write_record(data, "pod1", "k1", over=False)
    code, _, err = cli("host", "rotate-tokens")
    assert code == 1 and err.count("\n") == 1 and "pod1" in err and "--force" in err
    assert tokens.check(paths, "pod1", fresh)  # refused: nothing changed
    code, _, _ = cli("host", "rotate-tokens", "--force")
    assert code == 0 and not tokens.check(paths, "pod1", fresh)
