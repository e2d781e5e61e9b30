"""A sandboxed worker whose runner is pointed at a local model endpoint (ANTHROPIC_BASE_URL on
the host's loopback), with the real srt and bubblewrap: that endpoint is reached without the
user allowlisting it, and another loopback server is refused at once by the proxy — an answer,
not a connection refused that a CLI would retry for minutes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sandbox.test_sandboxed_worker import Box, Server

pytestmark = pytest.mark.timeout(120)

# KEY=<http code> <seconds> for each request the script makes
PROBE = r"""
r="$LOOOP_WORKSPACE/results"
p() {
  k=$1; shift
  out=$(curl -s -o /dev/null -m 20 -w '%{http_code} %{time_total}' "$@")
  echo "$k=$out" >> "$r"
}
p endpoint "$URL/v1/messages"
p other "http://127.0.0.1:$NO/"
echo end= >> "$r"
"""


@pytest.fixture
def two() -> Iterator[tuple[Server, Server]]:
    endpoint, other = Server("endpoint-ok"), Server("other-reached")
    yield endpoint, other
    endpoint.close()
    other.close()


def _start(
    box: Box, other: Server, runner_env: dict[str, str], url: str = "$ANTHROPIC_BASE_URL"
) -> dict[str, str]:
    box.env.update(runner_env)
    box.start("w1", f'NO={other.port}\nURL="{url}"\n{PROBE}')
    assert box.wait("w1") == 0, box.looop("log", "w1").stdout
    return box.results("w1")


def test_the_runners_own_endpoint_is_reached_without_allowlisting_it(
    tmp_path: Path, srt: Path, two: tuple[Server, Server]
) -> None:
    endpoint, other = two
    box = Box(tmp_path, srt, "on")  # no domains: only the presets' own
    got = _start(box, other, {"ANTHROPIC_BASE_URL": f"http://127.0.0.1:{endpoint.port}"})
    code, _ = got["endpoint"].split()
    assert code == "200", got
    assert endpoint.hits == 1
    # the other loopback server is refused by the proxy, in well under a CLI's retry budget
    code, secs = got["other"].split()
    assert code == "403", got
    assert float(secs) < 5, got
    assert other.hits == 0
    # the settings srt ran under name the endpoint, and only its port
    settings = (box.data / "sandbox" / "w1" / "srt.json").read_text()
    assert f"127.0.0.1:{endpoint.port}" in settings
    assert f"127.0.0.1:{other.port}" not in settings


@pytest.mark.parametrize("where", ["localhost", "settings.json"])
def test_the_endpoint_by_its_other_spelling_or_from_claudes_settings(
    tmp_path: Path, srt: Path, two: tuple[Server, Server], where: str
) -> None:
    endpoint, other = two
    box = Box(tmp_path, srt, "on")
    if where == "localhost":
        env = {"ANTHROPIC_BASE_URL": f"http://localhost:{endpoint.port}"}
    else:
        # set in claude's own settings, not the env: the script reads it back from there
        url = f"http://127.0.0.1:{endpoint.port}"
        settings = {"env": {"ANTHROPIC_BASE_URL": url}}
        (box.home / ".claude" / "settings.json").write_text(json.dumps(settings))
        env = {"ANTHROPIC_BASE_URL_FROM_FILE": url}
    script_env = "${ANTHROPIC_BASE_URL:-$ANTHROPIC_BASE_URL_FROM_FILE}"
    got = _start(box, other, env, script_env)
    assert got["endpoint"].split()[0] == "200", got
    assert endpoint.hits == 1
    assert got["other"].split()[0] == "403", got
    assert other.hits == 0


def test_a_worker_pointed_where_its_sandbox_refuses_does_not_start(
    tmp_path: Path, srt: Path
) -> None:
    box = Box(tmp_path, srt, "on")
    settings = box.home / ".claude" / "settings.json"
    settings.write_text(json.dumps({"env": {"ANTHROPIC_BASE_URL": "https://llm.corp.example"}}))
    marker = box.home / "ran"
    done = box.looop(
        "worker", "start", "w1", "go", "--command", f"touch {marker} # {{{{prompt_file}}}}"
    )
    assert done.returncode != 0
    [line] = done.stderr.strip().splitlines()
    assert "w1" in line and "is pointed at llm.corp.example:443" in line, line
    assert '"sandbox": {"domains": [...]}' in line
    assert not marker.exists()
    assert "Traceback" not in done.stderr
