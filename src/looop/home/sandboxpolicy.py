"""The `sandbox` setting as a value: off, or on with the user's additions to the default policy
(extra writable paths, extra denied reads, extra network domains). Parsed the same way from the
config (top level and per runner), a `start_worker` field and the worker-start flags; what it
means for srt lives in sandbox/worker.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

from looop.home.errors import bad_config_value

if TYPE_CHECKING:
    from typing import Any

SHAPE = '"off", "on" or an object {"write", "deny_read", "domains"}'
KEYS = ("write", "deny_read", "domains")
MAX_ENTRIES = 64


class SandboxPolicy:
    """Immutable: `on` False means no sandbox; the tuples add to the default policy."""

    __slots__ = ("deny_read", "domains", "on", "write")
    on: bool
    write: tuple[str, ...]
    deny_read: tuple[str, ...]
    domains: tuple[str, ...]

    def __init__(
        self,
        on: bool,
        write: tuple[str, ...] = (),
        deny_read: tuple[str, ...] = (),
        domains: tuple[str, ...] = (),
    ) -> None:
        for k, v in (("on", on), ("write", write), ("deny_read", deny_read), ("domains", domains)):
            object.__setattr__(self, k, v)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("SandboxPolicy is immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SandboxPolicy) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[object, ...]:
        return (self.on, self.write, self.deny_read, self.domains)

    def __repr__(self) -> str:
        if not self.on:
            return "SandboxPolicy(off)"
        extra = f"write={self.write!r}, deny_read={self.deny_read!r}, domains={self.domains!r}"
        return f"SandboxPolicy({extra})"


OFF = SandboxPolicy(False)
ON = SandboxPolicy(True)


def _path(v: Any) -> str | None:
    """An absolute path or one under ~/; None when it is neither (the caller names the key)."""
    if not isinstance(v, str) or not v or "\x00" in v or len(v) > 4096:
        return None
    if not (v.startswith("/") or v == "~" or v.startswith("~/")):
        return None
    if any(part == ".." for part in v.split("/")):
        return None  # a path that climbs out reads one way here and another in srt
    return v


def _domain(v: Any) -> str | None:
    """host, *.host, host:port or an IP literal (optionally :port), as srt's allowlist takes."""
    if not isinstance(v, str) or not v or len(v) > 260:
        return None
    if any(c.isspace() or c in "/\\@?#\"'" for c in v) or not v.isascii():
        return None
    return v


def _list(v: Any, check: Any, where: str, what: str) -> tuple[str, ...]:
    if v is None:
        return ()
    if not isinstance(v, list) or len(v) > MAX_ENTRIES:
        raise ValueError(f"{where}|a list of at most {MAX_ENTRIES} {what}")
    out = []
    for n, item in enumerate(v):
        got = check(item)
        if got is None:
            raise ValueError(f"{where}[{n}]|{what}")
        out.append(got)
    return tuple(dict.fromkeys(out))


def parse_sandbox(v: Any, where: str) -> SandboxPolicy:
    """ "off" | "on" | {"write": [path], "deny_read": [path], "domains": [domain]}. Raises
    ValueError("KEY|EXPECTED") so each caller words the one-line error its own way."""
    if isinstance(v, str):
        if v == "off":
            return OFF
        if v == "on":
            return ON
        raise ValueError(f"{where}|{SHAPE}")
    if not isinstance(v, dict):
        raise ValueError(f"{where}|{SHAPE}")
    for key in v:
        if key not in KEYS:
            raise ValueError(f"{where}.{key}|one of " + ", ".join(f'"{k}"' for k in KEYS))
    paths = "absolute paths or paths under ~/ (no '..')"
    return SandboxPolicy(
        True,
        write=_list(v.get("write"), _path, f"{where}.write", paths),
        deny_read=_list(v.get("deny_read"), _path, f"{where}.deny_read", paths),
        domains=_list(
            v.get("domains"), _domain, f"{where}.domains", "domains (host, *.host, host:port)"
        ),
    )


def config_sandbox(obj: dict[str, Any], key: str, source: str, where: str) -> SandboxPolicy | None:
    """The `sandbox` key of a config object (None when absent), a bad value naming its key."""
    if key not in obj:
        return None
    try:
        return parse_sandbox(obj[key], f"{where}{key}")
    except ValueError as e:
        at, expected = str(e).split("|", 1)
        raise bad_config_value(source, at, expected, obj[key]) from None


def resolve(
    worker: SandboxPolicy | None, runner: SandboxPolicy | None, top: SandboxPolicy | None
) -> SandboxPolicy:
    """The most specific setting decides on or off. Turning it on without saying how (`on`,
    `--sandbox`) keeps the additions the config lists for that runner or at the top."""
    chain = [p for p in (worker, runner, top) if p is not None]
    for n, got in enumerate(chain):
        if got == ON:
            for fallback in chain[n + 1 :]:
                if fallback.on and fallback != ON:
                    return fallback
        return got
    return OFF
