"""The filter's input handling under arbitrary input: every host string a box can send gets a
verdict (never an exception), canonical spellings are stable, and what passes the rules is
always something the list names."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from looop.sandbox import netrules
from tests.helpers import examples

pytestmark = pytest.mark.unit

LISTS = netrules.parse_lists(["api.example.com", "*.example.org", "10.1.2.3:8080", "[::1]:9"])
_host_chars = string.ascii_letters + string.digits + "._-:[]%x"
hosts = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=_host_chars, max_size=60),
    st.builds(
        lambda parts: ".".join(parts),
        st.lists(
            st.sampled_from(["0x7f", "0177", "127", "1", "0", "255", "256", "08", ""]), max_size=6
        ),
    ),
)


@settings(max_examples=examples(2000), deadline=None)
@given(host=hosts, port=st.integers(min_value=0, max_value=70000))
def test_every_host_gets_a_verdict_and_only_listed_ones_pass(host: str, port: int) -> None:
    why = netrules.verdict(LISTS, host, port)
    assert why is None or isinstance(why, str)
    canon = netrules.canonical_host(host)
    if canon is not None and ".." not in canon and not canon.endswith("."):
        assert netrules.canonical_host(canon) == canon  # one spelling, stable (real names)
    if why is None:  # it passed: the list names it, as srt's matching reads the list
        spelled = canon or host
        assert any(netrules.matches(spelled, port, e) for e in LISTS.allowed)
        assert netrules.valid_host(host)


@settings(max_examples=examples(2000), deadline=None)
@given(address=st.one_of(st.ip_addresses().map(str), st.text(max_size=50)))
def test_every_resolved_address_gets_a_verdict(address: str) -> None:
    why = netrules.vet(LISTS, "api.example.com", 443, address, ["192.0.2.1"])
    assert why is None or isinstance(why, str)
    if why is None:
        assert netrules.is_ip(address.split("%")[0])
