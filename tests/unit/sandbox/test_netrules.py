"""The network rules' parts srt's proxy cannot be asked about here (no name on this machine
resolves where a rebinding attacker points one): which resolved addresses an allowed name may
be dialled at, and which entries a list may hold. Their verdicts on spellings of a destination
are held against srt's own proxy in tests/sandbox/test_netrules_parity.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from looop.sandbox import netrules

pytestmark = pytest.mark.unit

LISTS = netrules.parse_lists(["api.example.com", "10.1.2.3:8080", "[fd00::5]"])
NONE_LOCAL: list[str] = []


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.9.9.9", "a loopback address"),
        ("::1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),  # mapped: the IPv4 it carries
        ("64:ff9b::7f00:1", "a loopback address"),  # NAT64 of 127.0.0.1
        ("2002:7f00:1::1", "a loopback address"),  # 6to4 of 127.0.0.1
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("169.254.169.254", "a link-local address"),  # most clouds' instance metadata
        ("fe80::1", "a link-local address"),
        ("fe80::1%eth0", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("255.255.255.255", "the broadcast address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("not-an-address", "an unparsable address"),
        ("93.184.215.14", None),  # an ordinary public address
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", None),
    ],
)
def test_an_allowed_name_resolving_somewhere_it_must_not_reach_is_refused(
    address: str, why: str | None
) -> None:
    assert netrules.vet(LISTS, "api.example.com", 443, address, NONE_LOCAL) == why


def test_an_address_the_list_names_by_ip_is_kept_on_its_port_only() -> None:
    # a private address is no class of its own: named by IP, it is reachable on that port
    assert netrules.vet(LISTS, "api.example.com", 8080, "10.1.2.3", NONE_LOCAL) is None
    assert netrules.vet(LISTS, "api.example.com", 443, "10.1.2.3", NONE_LOCAL) is None
    lo = netrules.parse_lists(["svc.internal.test", "127.0.0.1:9000"])
    assert netrules.vet(lo, "svc.internal.test", 9000, "127.0.0.1", NONE_LOCAL) is None
    assert netrules.vet(lo, "svc.internal.test", 9001, "127.0.0.1", NONE_LOCAL) == (
        "a loopback address"
    )


def test_this_machines_own_addresses_are_refused_to_a_name() -> None:
    local = ["192.0.2.7", "2001:db8::7"]
    assert netrules.vet(LISTS, "api.example.com", 443, "192.0.2.7", local) == (
        "one of this host's addresses"
    )
    assert netrules.vet(LISTS, "api.example.com", 443, "2001:db8::7", local) == (
        "one of this host's addresses"
    )
    assert netrules.vet(LISTS, "api.example.com", 443, "192.0.2.8", local) is None


def test_a_loopback_name_reaches_loopback_and_nothing_else() -> None:
    lists = netrules.parse_lists(["localhost"])
    assert netrules.vet(lists, "localhost", 8080, "127.0.0.1", NONE_LOCAL) is None
    assert netrules.vet(lists, "localhost", 8080, "::1", NONE_LOCAL) is None
    assert netrules.vet(lists, "LocalHost.", 8080, "93.184.215.14", NONE_LOCAL) == (
        "a non-loopback address"
    )
    assert netrules.is_loopback_name("db.localhost") and not netrules.is_loopback_name("lhost")


def test_the_deny_list_wins_over_the_allow_list() -> None:
    lists = netrules.parse_lists(
        ["*.example.com", "10.0.0.9", "10.0.0.8"], ["bad.example.com", "10.0.0.9"]
    )
    assert netrules.verdict(lists, "bad.example.com", 443) == "denied by the deny list"
    assert netrules.verdict(lists, "good.example.com", 443) is None
    assert netrules.verdict(lists, "10.0.0.9", 443) == "denied by the deny list"
    assert netrules.verdict(lists, "10.0.0.8", 443) is None
    # an allowed name resolving to a denied address reaches nothing there
    assert netrules.vet(lists, "good.example.com", 443, "10.0.0.9", NONE_LOCAL) == (
        "a deny-listed address"
    )
    assert netrules.vet(lists, "good.example.com", 443, "10.0.0.8", NONE_LOCAL) is None


@pytest.mark.parametrize(
    "entry",
    [
        "*",
        "*.com",
        "com",
        "http://example.com",
        "example.com/path",
        "example.*",
        ".example.com",
        "example.com.",
        "2001:db8::1",
        "2001:db8::1:443",
        "example.com:0",
        "example.com:65536",
        "example.com:08",
    ],
)
def test_a_list_entry_srt_would_refuse_is_refused_by_name(entry: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(entry))):
        netrules.parse_lists([entry])


@pytest.mark.parametrize(
    "entry",
    [
        "example.com",
        "*.example.com",
        "localhost",
        "example.com:443",
        "[2001:db8::1]",
        "[2001:db8::1]:443",
        "[::1]",
        "10.1.2.3",
        "10.1.2.3:8080",
        "xn--nxasmq6b.example.org",
    ],
)
def test_the_entries_a_user_writes_are_accepted(entry: str) -> None:
    assert netrules.valid_entry(entry)


def test_local_addresses_are_read_from_the_kernels_tables(tmp_path: Path) -> None:
    net = tmp_path / "net"
    net.mkdir()
    (net / "fib_trie").write_text(
        "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 10.0.0.5\n        /32 host LOCAL\n"
        "     |-- 10.0.0.255\n        /32 link BROADCAST\n"
        "Local:\n     |-- 10.0.0.5\n        /32 host LOCAL\n"
        "     |-- 127.0.0.1\n        /32 host LOCAL\n"
    )
    (net / "if_inet6").write_text(
        "00000000000000000000000000000001 01 80 10 80       lo\n"
        "fe800000000000000000000000000001 02 40 20 80     eth0\n"
    )
    assert netrules.local_addresses(str(tmp_path)) == ["10.0.0.5", "127.0.0.1", "::1", "fe80::1"]
    assert netrules.local_addresses(str(tmp_path / "none")) == []
