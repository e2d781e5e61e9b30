"""Anthropic's sandbox runtime (`srt`: bubblewrap plus a filtering network proxy on Linux) as
every sandboxed thing looop starts uses it — a worker (sandbox/worker.py), run_shell, the
decider (sandbox/worker.tick_argv): what each preset's CLI talks to and keeps, the secrets
no one reads, whether srt can run here, and its settings file and inner line."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping
from typing import NamedTuple

from looop.home import jsonio, store, where
from looop.home.errors import LooopError
from looop.home.where import expand, program_on
from looop.runners import RUNNERS, profile
from looop.runners.runnerprofile import RunnerProfile
from looop.sandbox import boxhost
from looop.sandbox.boxhost import Home
from looop.sandbox.endpoints import Endpoint, endpoints, goes_direct, listed

# Per preset CLI, from its profile (runners/__init__.py); a custom runner gets only the user's list.
# The model API it talks to.
RUNNER_DOMAINS = {p.name: p.domains for p in RUNNERS}
# What it writes under $HOME in a session (its conversations, logs, caches of its own): the only
# part of its state a box may write. The rest (RUNNER_CONFIG) is read-only there.
RUNNER_STATE = {p.name: p.state for p in RUNNERS}
# What it reads and the user's own CLI outside reads too (its settings, answers, credentials,
# plugins, the code it runs): read-only in a box, so nothing a box writes there runs, or is
# believed, when the user next starts the CLI.
RUNNER_CONFIG = {p.name: p.config for p in RUNNERS}
# Inside a folder of its state the box may write, what the CLI runs or obeys when it starts
# (settings, hooks, rules, skills, its own helper binaries): read-only inside. Folders are made
# when missing (empty, harmless), so a box cannot plant them; a missing file is not (srt would
# leave a placeholder file on the host, which the CLI could not parse).
RUNNER_LOCKED = {p.name: p.locked for p in RUNNERS if p.locked}
# Of those files, what the user has none of is made before the box starts, holding what the
# CLI reads as none, so the box cannot create it either: a name is held inside a box only by a
# mount on it, whose point must be on the host (srt's own placeholder for a missing one is
# removed when its wrapper exits, which lets a running box create the name). A login file may be
# one (its profile says why: an empty file is its "no login").
RUNNER_PLACEHOLDERS = {p.name: p.placeholders for p in RUNNERS if p.placeholders}
# Secrets and other tools' settings under $HOME that no worker reads.
HOME_SECRETS = (
    "~/.ssh", "~/.aws", "~/.gnupg", "~/.config", "~/.netrc", "~/.docker", "~/.kube", "~/.azure",
    "~/.git-credentials", "~/.npmrc", "~/.pypirc",
)  # fmt: skip
_PROGRAMS = {"bwrap": "bubblewrap", "socat": "socat", "rg": "ripgrep"}
# What the loop's own boxes (the decider, run_shell) may read of the data dir: the world the
# prompt tells the decider about, so its one narrow query can look. Paths under the data dir.
WORLD = ("PLAYBOOK.md", "goals", "reports", "snapshots")


def data_walls(data: str, allow: list[str]) -> tuple[list[str], list[str]]:
    """(denyRead, allowRead) for looop's data dir: denied whole — its credentials
    (.lock/web-token, .lock/worker-token-key, web.log), every state file, and whatever is made
    there after the box started (srt mounts an empty tmpfs over it) — with only `allow`
    (paths under it) bound back. Default deny, never a list of what to hide."""
    return [data], [os.path.join(data, a) for a in allow]


class SandboxError(LooopError):
    pass


def missing(env: dict[str, str], proc: str = "/proc") -> list[str]:
    """What keeps srt from running here, one phrase each with how to install it; [] = ready."""
    return _check(env, proc)[0]


def _check(env: dict[str, str], proc: str) -> tuple[list[str], str | None]:
    """(missing's list, srt's path or None), srt looked up once."""
    path = env.get("PATH", "")
    out: list[str] = []
    given = env.get("LOOOP_SRT", "").strip()
    prog = srt_program(env)
    if given and prog is None:
        out.append(f"srt (LOOOP_SRT={given} is not an executable file)")
    elif prog is None:
        out.append(
            "srt (npm install -g @anthropic-ai/sandbox-runtime, or set LOOOP_SRT to its path)"
        )
    if program_on("node", path) is None:
        out.append("node (Node.js, which srt runs on: apt-get install nodejs)")
    for prog_name, pkg in _PROGRAMS.items():
        if program_on(prog_name, path) is None:
            out.append(f"{prog_name} (apt-get install {pkg})")
    out.extend(_userns_missing(proc))
    return out, prog


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().strip() or "x")
    except (OSError, ValueError):
        return None


def _userns_missing(proc: str) -> list[str]:
    """bubblewrap needs user namespaces: off by sysctl, or denied by AppArmor to non-root."""
    fix = "user namespaces ({} — bubblewrap needs them)"
    if _read_int(os.path.join(proc, "sys/user/max_user_namespaces")) == 0:
        return [fix.format("sysctl -w user.max_user_namespaces=15000")]
    if os.geteuid() == 0:
        return []
    if _read_int(os.path.join(proc, "sys/kernel/unprivileged_userns_clone")) == 0:
        return [fix.format("sysctl -w kernel.unprivileged_userns_clone=1")]
    if _read_int(os.path.join(proc, "sys/kernel/apparmor_restrict_unprivileged_userns")) == 1:
        return [
            fix.format(
                "AppArmor restricts them: add a bwrap profile or sysctl -w "
                "kernel.apparmor_restrict_unprivileged_userns=0"
            )
        ]
    return []


def srt_program(env: dict[str, str]) -> str | None:
    """LOOOP_SRT when set (it must be executable), else `srt` on PATH."""
    given = env.get("LOOOP_SRT", "").strip()
    if given:
        return given if os.path.isfile(given) and os.access(given, os.X_OK) else None
    return program_on("srt", env.get("PATH", ""))


# What the sandbox's filter (looop's, or srt's own proxy) answers a host off the allowlist with.
DENIED_MARK = "blocked by network allowlist"
DOMAINS_KEY = '"sandbox": {"domains": [...]}'


def explain_denied(failure: str, output: str, who: str) -> str:
    """A failed run's one line, with what allows the host when the sandbox's filter refused one."""
    if DENIED_MARK not in failure and DENIED_MARK not in output:
        return failure
    return (
        f"{failure} — the sandbox of {who} refused a host its allowlist does not name: add it to "
        f"the config's {DOMAINS_KEY} (the runner's or the top level's)"
    )


WORKER_OFF = 'start it with --no-sandbox / SANDBOX: "off"'
SHELL_OFF = 'set "shell_policy": {"sandbox": "off"}'


def require(env: dict[str, str], who: str, proc: str = "/proc", off: str = WORKER_OFF) -> str:
    """srt's path, or one line naming everything missing (never a fallback to no sandbox)."""
    gone, prog = _check(env, proc)
    if gone:
        raise SandboxError(
            f"{who} cannot run sandboxed: missing " + "; ".join(gone) + " — install it, or "
            f"{off} to run it unsandboxed"
        )
    assert prog is not None
    return prog


class RunnerParts(NamedTuple):
    """What a runner's CLI needs inside srt, by its preset (a custom runner: nothing)."""

    state: list[str]  # what it writes under $HOME (RUNNER_STATE), ~ unexpanded
    allow_read: list[str]  # its own folders under ~/.config, which is hidden otherwise
    locked: list[str]  # its settings that run code when it starts, as they exist now
    domains: list[str]  # its model API: the preset's, and the endpoint the user pointed it at
    endpoints: list[Endpoint]  # that endpoint (sandbox/endpoints.py), with where it was set


def check_endpoints(parts: RunnerParts, domains: list[str], who: str) -> None:
    """Refuse now, in one line, a runner surely pointed at an endpoint its sandbox would
    refuse: its CLI would retry the proxy's refusal of a TLS tunnel for minutes."""
    for e in parts.endpoints:
        if e.in_use and not e.auto and not listed(e.entry, domains):
            raise SandboxError(
                f"{who} is pointed at {e.entry} ({e.source}), which its sandbox lets through "
                "only when the config names it (a file in the CLI's state could have been "
                f'written by a sandboxed worker): add "{e.entry}" to the config\'s {DOMAINS_KEY}'
            )


def make_state(runner: str, home: str | None, runners: tuple[RunnerProfile, ...] = RUNNERS) -> None:
    """srt binds only what exists: the runner CLI's state folders, the folders it makes at its
    start and those of its locked ones (a trailing /) are made now, and its placeholders."""
    p = profile(runner, runners)
    if p is None:
        return
    locked = [d for d in p.locked if d.endswith("/")]
    for item in (*p.state, *p.made, *locked):
        got = expand(item.rstrip("/"), home)
        if got is not None:
            os.makedirs(got, exist_ok=True)
    for item, none in p.placeholders:
        got = expand(item, home)
        if got is not None and not os.path.lexists(got):
            store.create_new(got, none, 0o600)  # False: made meanwhile, by the user's CLI


def runner_parts(
    runner: str,
    home: str | None,
    env: Mapping[str, str] | None = None,
    runners: tuple[RunnerProfile, ...] = RUNNERS,
) -> RunnerParts:
    """`env`: the runner's environment, whose base URLs (and its CLI's provider files under
    `home`) name the endpoint it is pointed at; that host:port is allowed with the rest."""
    found = endpoints(runner, env or {}, home, runners)
    p = profile(runner, runners)
    state = list(p.state) if p else []
    config = p.config if p else ()
    locked = [
        got
        for item in (p.locked if p else ())
        if (got := expand(item.rstrip("/"), home)) is not None and os.path.lexists(got)
    ]
    return RunnerParts(
        state=state,
        allow_read=[s for s in (*state, *config) if s.startswith("~/.config/")],
        locked=locked,
        domains=[*(p.domains if p else ()), *(e.entry for e in found if e.auto)],
        endpoints=found,
    )


def argv(
    srt: str,
    path: str,
    settings: dict[str, object],
    line: str,
    tmp: str,
    home: Home | None = None,
    door: str = "",
) -> list[str]:
    """Write srt's `settings` (from conf) at `path`; the argv that runs `line` under them
    with `tmp` as its TMPDIR (`door`: the worker whose box it is; see argvs)."""
    return argvs(srt, path, settings, [line], tmp, home, door)[0]


def argvs(
    srt: str,
    path: str,
    settings: dict[str, object],
    lines: list[str],
    tmp: str,
    home: Home | None = None,
    door: str = "",
) -> list[list[str]]:
    """argv for each of `lines`, the settings written once (a beat's sandboxed sensors).
    With the `home`, each line is wrapped by that home's sandbox host (sandbox/boxhost.py) and
    runs as bubblewrap's own line, no srt process beside it; without one, or where srt's
    library is not beside `srt`, under `srt -s SETTINGS -c LINE`. Raises SandboxError when
    the host cannot wrap it. `door`: the worker whose box each line is, registered as such
    with the home's filter, which then answers its contract verbs (contract/requests.py)."""
    # every box is denied looop's runtime dirs: the filter's record of every box, every socket
    fs = settings["filesystem"]
    assert isinstance(fs, dict)
    hidden = boxhost.runtime_dirs(home.base if home is not None else "/tmp")
    fs["denyRead"] = _hidden([*fs["denyRead"], *map(os.path.realpath, hidden)])
    domains = _save(path, settings)
    inner = [_inner(line, tmp, domains) for line in lines]
    lib = boxhost.library(srt) if home is not None else None
    if home is None or lib is None:
        return [[srt, "-s", path, "-c", line] for line in inner]
    try:
        boxhost.ensure(home, lib)  # up now, so a host that cannot start is said here
    except boxhost.HostError as e:
        raise SandboxError(f"the sandbox cannot be set up: {e}") from None
    run = [sys.executable, "-m", "looop.sandbox.boxrun", lib, home.base, home.data, path]
    return [[*run, line, door] if door else [*run, line] for line in inner]


def policy_files(config: str, home: str | None) -> list[str]:
    """The human's policy a box must never write: the config, and each file its lines name by
    path (a notification hook's script, a runner's wrapper), `sandbox` lists aside."""
    try:
        obj: object = jsonio.safe_loads(store.read_regular(config, 16 << 20))
    except (OSError, ValueError):
        obj = None
    out, todo = [config], [obj]
    while todo:
        v = todo.pop()
        if isinstance(v, dict):
            todo.extend(x for k, x in v.items() if k != "sandbox")
        elif isinstance(v, list):
            todo.extend(v)
        elif isinstance(v, str):
            words = (w.strip("'\"") for w in v.split())
            got = (expand(w, home) for w in words if w.startswith(("/", "~/")))
            out.extend(p for p in got if p is not None and os.path.isfile(p))
    return out


def _guard(files: list[str], write: list[str]) -> list[str]:
    """What keeps a box from writing `files` its `write` folders hold: each such file and the
    folder on its way just below the writable one (a box could rename that folder and put a
    file of its own at the path; a mount point cannot be renamed)."""
    out = []
    for f in files:
        for w in write:
            if f == w or f.startswith(w.rstrip("/") + "/"):
                out.append(os.path.join(w, os.path.relpath(f, w).split("/")[0]))
    return out


def conf(
    write: list[str],
    deny: list[str],
    allow_read: list[str],
    domains: list[str],
    home: str | None,
    config: str,
    locked: list[str] | None = None,
) -> dict[str, object]:
    """srt's settings file: paths with ~ expanded and symlinks resolved, no repeats; what is
    denied, denied under every spelling a bind mount gives it (home/where.py). The `config`
    is hidden, and it and what it runs are never writable (policy_files)."""

    def paths(items: list[str]) -> list[str]:
        # as the kernel will see them: bind mounts follow symlinks, so name the target
        got = (expand(item, home) for item in items)
        return list(dict.fromkeys(os.path.realpath(p) for p in got if p is not None))

    guarded = _guard(paths(policy_files(config, home)), paths(write))
    return {
        "network": {"allowedDomains": list(dict.fromkeys(domains)), "deniedDomains": []},
        "filesystem": {
            "denyRead": _hidden(paths([*deny, config])),
            "allowRead": paths(allow_read),
            "allowWrite": paths(write),
            "denyWrite": list(dict.fromkeys([*paths(locked or []), *guarded])),
        },
    }


def _hidden(paths: list[str]) -> list[str]:
    """A bind mount shows a hidden folder under a second path: hidden there too."""
    return list(dict.fromkeys([*paths, *where.mount_aliases(paths)]))


def _inner(line: str, tmp: str, domains: list[str]) -> str:
    """The line srt runs: TMPDIR set inside, not for srt (srt binds its proxy's unix sockets
    in TMPDIR, and a socket path over 107 bytes cannot be bound); IS_SANDBOX=1, which is true
    there and is what a CLI asks of a root user before it takes a flag that skips its
    permission asks (a preset's: as root, every sandboxed decide and worker of that CLI
    failed without it); no_proxy cleared when a loopback or private address is
    allowlisted (srt's no_proxy sends those straight to the sandbox's own, empty network; the
    host's are reached only through the proxy)."""
    pre = [f"export TMPDIR={shlex.quote(tmp)}", "export IS_SANDBOX=1"]
    if any(goes_direct(d) for d in domains):
        pre.append("unset no_proxy NO_PROXY")
    return "; ".join([*pre, line])


def _save(path: str, settings: dict[str, object]) -> list[str]:
    store.atomic_write(path, jsonio.dumps(settings, indent=2) + "\n")
    net = settings["network"]
    assert isinstance(net, dict)
    return list(net["allowedDomains"])
