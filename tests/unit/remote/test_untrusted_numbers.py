"""Every number read from outside the home (remote/untrusted.py) is a real value or unknown: no
input raises, and what comes back is within its bound — so no stamp, age or table column
further on can overflow. A pod's exit code and a Job's terminal size go through the same."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from looop.remote import untrusted
from looop.remote.kube import cluster
from looop.remote.kube.target import KubeTarget
from looop.views.workerrows import age

NOW = 1_780_000_000.0
OUTSIDE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=50)
    | st.sampled_from(["2026-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)


@given(OUTSIDE)
def test_no_value_from_outside_raises_or_escapes_its_bound(value: Any) -> None:
    t = untrusted.moment(value, NOW)
    assert t is None or (math.isfinite(t) and 0 < t <= NOW + untrusted.AHEAD_S)
    n = untrusted.count(value, 1000)
    assert n is None or (type(n) is int and 0 <= n <= 1000)
    c = untrusted.exit_code(value)
    assert c is None or (type(c) is int and abs(c) <= untrusted.EXIT_MAX)
    w = untrusted.words(value, 20)
    assert w is None or (isinstance(w, str) and len(w) <= 20)
    s = untrusted.stamp(value, NOW)
    assert s is None or s == value
    assert isinstance(age(NOW - t if t is not None else None), str)


@pytest.mark.parametrize("value", [1e308, math.nan, math.inf, -math.inf, -1.0])
def test_an_age_of_no_real_length_is_shown_as_unknown_or_zero(value: float) -> None:
    assert age(value) in ("—", "0s")


def _pod(code: object) -> Any:
    term = SimpleNamespace(exit_code=code)
    cs = SimpleNamespace(name=cluster.mf.CONTAINER, state=SimpleNamespace(terminated=term))
    return SimpleNamespace(status=SimpleNamespace(container_statuses=[cs]))


@pytest.mark.parametrize(
    ("code", "want"), [(3, 3), (None, 137), ("1", 137), (1e308, 137), (10**40, 137), (True, 137)]
)
def test_a_pods_exit_code_is_an_exit_status_or_unknown(code: object, want: int) -> None:
    job = SimpleNamespace(status=SimpleNamespace(conditions=None))
    assert cluster.exit_code_of(job, _pod(code)) == want


@pytest.mark.parametrize(
    ("spelled", "want"),
    [("100x30", (100, 30)), ("²x30", (80, 24)), ("99999999999x1", (80, 24)), ("0x0", (80, 24))],
)
def test_a_jobs_terminal_size_is_a_real_one(
    spelled: str, want: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    c = cluster.KubeCluster(
        KubeTarget("ctx", "ns"), home=Path("/h"), kubeconfig=None, api_client=object()
    )
    meta = SimpleNamespace(annotations={cluster.mf.SIZE_ANNOTATION: spelled})
    monkeypatch.setattr(c, "job_for", lambda _sid: SimpleNamespace(metadata=meta))
    assert c._size("w1") == want
