"""Stable digests: the world's (blake2b, fast and the same across versions) and short names
(FNV-1a, kept so running supervisors, sockets and installed units keep the names they have)."""

from __future__ import annotations


def digest(data: bytes, sha256: bool = False) -> str:
    """32 lowercase hex digits of blake2b: for change detection and fingerprints, never a key;
    `sha256`: its 64 hex digits instead, what a vouched-for file's record keeps
    (core/provenance)."""
    # the home's one door to hashlib
    # lazy: OpenSSL (~3 ms); the beat hashes, the contract verbs only name files
    import hashlib

    return (hashlib.sha256(data) if sha256 else hashlib.blake2b(data, digest_size=16)).hexdigest()


def fnv1a_128(data: bytes) -> str:
    """A 128-bit name (homes, units, anchors): must not change under running processes."""
    h = 0x6C62272E07BB014262B821756295C58D
    for b in data:
        h = ((h ^ b) * 0x0000000001000000000000000000013B) & ((1 << 128) - 1)
    return f"{h:032x}"


def fnv1a_64(data: bytes) -> str:
    """A 64-bit name (session sockets, hosts' tags, the session host's key)."""
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def wake_signal(value: object) -> object:
    """The part of a snapshot that wakes the loop: `.signal` if present, else all."""
    if isinstance(value, dict) and "signal" in value:
        return value["signal"]
    return value
