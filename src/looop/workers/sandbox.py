"""A worker inside Anthropic's sandbox runtime (`srt`: bubblewrap plus a filtering network proxy
on Linux). The policy becomes srt's settings JSON under the worker's own folder
(`sandbox/<id>/srt.json`); the worker's line runs as `srt -s SETTINGS -c LINE`.

Default policy: the worker writes only its own folders (`sandbox/<id>/work`, its workspace, and
`sandbox/<id>/tmp`, its TMPDIR), the contract's paths (reports/, claims/, asks/, tells/, the
event and cost ledgers) and its runner CLI's own state (~/.claude, ~/.codex, …); it cannot read
~/.ssh, ~/.aws, ~/.gnupg, ~/.config (but its runner's own folder there), looop's config,
journal, runs or other workers' output and briefs; network goes only to its runner's model API
domains plus the user's list. Where srt cannot run, start refuses with one line saying what is
missing: there is no silent fallback to no sandbox."""

from __future__ import annotations

import ipaddress
import json
import os
import shlex
import shutil
from collections.abc import Mapping

from looop.core import store
from looop.core.context import Ctx
from looop.core.errors import LooopError
from looop.core.sandboxpolicy import SandboxPolicy
from looop.workers.fleet import SANDBOX_SETTINGS

TYPE_CHECKING = False  # not `from typing`

if TYPE_CHECKING:
    from looop.workers.worktree import Tree

SETTINGS = SANDBOX_SETTINGS
# The model API each preset's CLI talks to; a custom runner gets only the user's list.
RUNNER_DOMAINS: dict[str, tuple[str, ...]] = {
    "claude": ("api.anthropic.com", "statsig.anthropic.com"),
    "codex": ("api.openai.com", "chatgpt.com", "auth.openai.com"),
    "pi": ("api.anthropic.com",),
    "opencode": ("api.anthropic.com", "api.openai.com", "opencode.ai", "models.dev"),
}
# What each preset's CLI writes under $HOME (session files, settings, caches).
RUNNER_STATE: dict[str, tuple[str, ...]] = {
    "claude": ("~/.claude", "~/.claude.json", "~/.cache/claude"),
    "codex": ("~/.codex",),
    "pi": ("~/.pi",),
    "opencode": (
        "~/.local/share/opencode",
        "~/.config/opencode",
        "~/.cache/opencode",
        "~/.local/state/opencode",
    ),
}
# The runner CLI's own settings that run code when the CLI starts (hooks, plugins, commands,
# MCP servers): read-only inside, so a worker cannot plant what runs when you next use the CLI
# outside the sandbox. Only what exists is locked: srt marks an absent path with a placeholder
# file on the host, which a killed srt would leave behind.
RUNNER_LOCKED: dict[str, tuple[str, ...]] = {
    "claude": (
        "~/.claude/settings.json",
        "~/.claude/settings.local.json",
        "~/.claude/hooks",
        "~/.claude/plugins",
        "~/.claude/commands",
        "~/.claude/agents",
        "~/.claude/skills",
        "~/.claude/CLAUDE.md",
    ),
    "codex": ("~/.codex/config.toml", "~/.codex/AGENTS.md"),
    "pi": ("~/.pi/agent/settings.json", "~/.pi/agent/extensions", "~/.pi/agent/AGENTS.md"),
    "opencode": ("~/.config/opencode",),
}
# Secrets and other tools' settings under $HOME that no worker reads.
HOME_SECRETS = (
    "~/.ssh",
    "~/.aws",
    "~/.gnupg",
    "~/.config",
    "~/.netrc",
    "~/.docker",
    "~/.kube",
    "~/.azure",
    "~/.git-credentials",
    "~/.npmrc",
    "~/.pypirc",
)
_PROGRAMS = {"bwrap": "bubblewrap", "socat": "socat", "rg": "ripgrep"}


class SandboxError(LooopError):
    pass


def folder(ctx: Ctx, wid: str) -> str:
    return os.path.join(str(ctx.paths.data), "sandbox", wid)


def forget(ctx: Ctx, wid: str) -> None:
    """A new start of this id: the last run's settings no longer say anything."""
    store.remove(os.path.join(folder(ctx, wid), SETTINGS))


def _expand(path: str, home: str | None) -> str | None:
    if path == "~" or path.startswith("~/"):
        if not home:
            return None
        return os.path.join(home, path[2:]) if path != "~" else home
    return path


def _realish(path: str) -> str:
    """The path as the kernel will see it: bind mounts follow symlinks, so name the target."""
    return os.path.realpath(path)


def _host(domain: str) -> str:
    """The host part of an allowlist entry (no port, no brackets)."""
    if domain.startswith("["):
        return domain[1:].split("]", 1)[0]
    if domain.count(":") == 1:
        return domain.split(":", 1)[0]
    return domain


def is_loopback(domain: str) -> bool:
    host = _host(domain)
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def missing(env: dict[str, str], proc: str = "/proc") -> list[str]:
    """What keeps srt from running here, one phrase each with how to install it; [] = ready."""
    path = env.get("PATH", "")
    out: list[str] = []
    given = env.get("LOOOP_SRT", "").strip()
    if given and srt_program(env) is None:
        out.append(f"srt (LOOOP_SRT={given} is not an executable file)")
    elif srt_program(env) is None:
        out.append(
            "srt (npm install -g @anthropic-ai/sandbox-runtime, or set LOOOP_SRT to its path)"
        )
    if shutil.which("node", path=path) is None:
        out.append("node (Node.js, which srt runs on: apt-get install nodejs)")
    for prog, pkg in _PROGRAMS.items():
        if shutil.which(prog, path=path) is None:
            out.append(f"{prog} (apt-get install {pkg})")
    out.extend(_userns_missing(proc))
    return out


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
    return shutil.which("srt", path=env.get("PATH", ""))


WORKER_OFF = 'start it with --no-sandbox / "sandbox": "off"'
SHELL_OFF = 'set "shell_policy": {"sandbox": "off"}'


def require(env: dict[str, str], who: str, proc: str = "/proc", off: str = WORKER_OFF) -> str:
    """srt's path, or one line naming everything missing (never a fallback to no sandbox)."""
    gone = missing(env, proc)
    if gone:
        raise SandboxError(
            f"{who} cannot run sandboxed: missing " + "; ".join(gone) + " — install it, or "
            f"{off} to run it unsandboxed"
        )
    prog = srt_program(env)
    assert prog is not None
    return prog


def settings(
    ctx: Ctx,
    wid: str,
    runner: str,
    policy: SandboxPolicy,
    home: str | None,
    tree: Tree | None = None,
) -> dict[str, object]:
    """srt's settings for this worker: the default policy plus the user's additions; with a
    worktree, that worktree and what git needs to commit from it (worktree.sandbox_write)."""
    data = str(ctx.paths.data)
    p = ctx.paths
    mine = folder(ctx, wid)
    write = [
        os.path.join(mine, "work"),
        os.path.join(mine, "tmp"),
        str(p.reports),
        str(p.claims),
        str(p.asks),
        str(p.tells),
        str(p.events),
        str(p.cost_ledger),
        *RUNNER_STATE.get(runner, ()),
        *policy.write,
    ]
    deny = [
        *HOME_SECRETS,
        str(p.config),
        str(p.journal),
        str(p.runs),
        str(p.tick_log),
        str(p.decision),
        str(p.playbook_history),
        *policy.deny_read,
    ]
    # Other workers' terminals and briefs, as they are now (srt hides only what exists).
    for name in _listdir(str(p.sessions)):
        if name != wid:
            deny.append(os.path.join(data, "sessions", name, "output.log"))
    for name in _listdir(os.path.join(data, "sandbox")):
        if name != wid:
            deny.append(os.path.join(data, "sandbox", name))
    for name in _listdir(str(p.prompts)):
        if name != f"{wid}.md":
            deny.append(os.path.join(str(p.prompts), name))
    for name in _listdir(os.path.join(data, "worktrees")):  # other workers' checkouts
        if name not in (wid, f"{wid}.json"):
            deny.append(os.path.join(data, "worktrees", name))
    allow_read = [s for s in RUNNER_STATE.get(runner, ()) if s.startswith("~/.config/")]
    locked = [
        got
        for item in RUNNER_LOCKED.get(runner, ())
        if (got := _expand(item, home)) is not None and os.path.lexists(got)
    ]
    if tree is not None:
        from looop.workers.worktree import sandbox_write  # lazy: only a repo worker

        git_write, git_locked = sandbox_write(tree)
        write.extend(git_write)
        locked.extend(git_locked)
    domains = [*RUNNER_DOMAINS.get(runner, ()), *policy.domains]
    return _conf(write, deny, allow_read, domains, home, locked)


def _conf(
    write: list[str],
    deny: list[str],
    allow_read: list[str],
    domains: list[str],
    home: str | None,
    locked: list[str] | None = None,
) -> dict[str, object]:
    """srt's settings file: paths with ~ expanded and symlinks resolved, no repeats."""

    def paths(items: list[str]) -> list[str]:
        out = []
        for item in items:
            got = _expand(item, home)
            if got is not None:
                out.append(_realish(got))
        return list(dict.fromkeys(out))

    return {
        "network": {"allowedDomains": list(dict.fromkeys(domains)), "deniedDomains": []},
        "filesystem": {
            "denyRead": paths(deny),
            "allowRead": paths(allow_read),
            "allowWrite": paths(write),
            "denyWrite": paths(locked or []),
        },
    }


def _inner(line: str, tmp: str, domains: list[str]) -> str:
    """The line srt runs: TMPDIR set inside, not for srt (srt binds its proxy's unix sockets
    in TMPDIR, and a socket path over 107 bytes cannot be bound); no_proxy cleared when a
    loopback server is allowlisted (srt's no_proxy sends loopback straight to the sandbox's
    own, empty loopback; the host's is reached only through the proxy)."""
    pre = [f"export TMPDIR={shlex.quote(tmp)}"]
    if any(is_loopback(d) for d in domains):
        pre.append("unset no_proxy NO_PROXY")
    return "; ".join([*pre, line])


def _save(path: str, conf: dict[str, object]) -> list[str]:
    store.atomic_write(path, json.dumps(conf, indent=2) + "\n")
    net = conf["network"]
    assert isinstance(net, dict)
    return list(net["allowedDomains"])


SHELL_DIR = "+run_shell"  # under sandbox/: '+' is in no worker id


def shell_argv(ctx: Ctx, policy: SandboxPolicy, cmd: str, env: dict[str, str]) -> list[str]:
    """run_shell's argv under srt: it writes only reports/, its own TMPDIR and the policy's
    `write` list; it cannot read the secrets under $HOME or looop's config; the network
    reaches only the policy's domains. Raises SandboxError when srt cannot run here."""
    srt = require(env, "run_shell", off=SHELL_OFF)
    home = env.get("HOME")
    mine = os.path.join(str(ctx.paths.data), "sandbox", SHELL_DIR)
    tmp = os.path.join(mine, "tmp")
    os.makedirs(tmp, exist_ok=True)
    os.makedirs(str(ctx.paths.reports), exist_ok=True)
    write = [tmp, str(ctx.paths.reports), *policy.write]
    deny = [*HOME_SECRETS, str(ctx.paths.config), *policy.deny_read]
    conf = _conf(write, deny, [], list(policy.domains), home)
    path = os.path.join(mine, SETTINGS)
    domains = _save(path, conf)
    return [srt, "-s", path, "-c", _inner(cmd, tmp, domains)]


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _knobs_only_config(raw: Mapping[str, object], mine: str) -> str:
    """The config as the worker's verbs see it: the knobs only. The real file stays hidden
    (it names hooks and notification URLs, which may carry tokens)."""
    from looop.core.knobs import KNOBS  # lazy: only a sandboxed start copies the knobs

    keys = {k.config_key for k in KNOBS.values() if k.config_key}
    path = os.path.join(mine, "config.json")
    kept = {k: v for k, v in raw.items() if k in keys}
    store.atomic_write(path, json.dumps(kept, indent=2) + "\n")
    return path


def prepare(
    ctx: Ctx,
    wid: str,
    runner: str,
    policy: SandboxPolicy,
    line: str,
    env: dict[str, str],
    raw_config: Mapping[str, object],
    tree: Tree | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The worker's argv under srt and its env (TMPDIR and LOOOP_WORKSPACE its own: with a
    repo, its worktree); writes the settings file. Raises SandboxError when srt cannot run."""
    srt = require(env, f"worker {wid}")
    home = env.get("HOME")
    mine = folder(ctx, wid)
    p = ctx.paths
    # srt binds only what exists: every writable folder is made now, so a first `ask` or a
    # first report can be written from inside.
    for d in (
        os.path.join(mine, "work"),
        os.path.join(mine, "tmp"),
        str(p.reports),
        str(p.claims),
        str(p.asks),
        os.path.join(str(p.asks), "archive"),
        str(p.answers),
        str(p.tells),
        os.path.join(str(p.tells), "consumed"),
    ):
        os.makedirs(d, exist_ok=True)
    for f in (str(p.events), str(p.cost_ledger)):
        with open(f, "a", encoding="utf-8"):
            pass
    for item in RUNNER_STATE.get(runner, ()):
        got = _expand(item, home)
        if got is not None and not item.endswith(".json"):
            os.makedirs(got, exist_ok=True)
    conf = settings(ctx, wid, runner, policy, home, tree)
    domains = _save(os.path.join(mine, SETTINGS), conf)
    inner = _inner(line, os.path.join(mine, "tmp"), domains)
    child = dict(env)
    child["LOOOP_CONFIG"] = _knobs_only_config(raw_config, mine)
    child["LOOOP_WORKSPACE"] = tree.path if tree is not None else os.path.join(mine, "work")
    if tree is not None:
        # the repo's packs are read-only in here: no automatic repack or maintenance
        n = _int(child.get("GIT_CONFIG_COUNT"))
        for i, (k, v) in enumerate((("gc.auto", "0"), ("maintenance.auto", "false")), n):
            child[f"GIT_CONFIG_KEY_{i}"], child[f"GIT_CONFIG_VALUE_{i}"] = k, v
        child["GIT_CONFIG_COUNT"] = str(n + 2)
    return [srt, "-s", os.path.join(mine, SETTINGS), "-c", inner], child


def _int(text: str | None) -> int:
    try:
        return max(0, int(text or "0"))
    except ValueError:
        return 0


def with_note(contract: str, wid: str) -> str:
    """The contract with what a sandboxed worker is told about its walls, as its last rule."""
    head, sep, tail = contract.rpartition("\n---\n")
    if not sep:
        head, sep, tail = contract.rstrip("\n"), "\n", ""
    return f"{head.rstrip()}\n- {_note(wid)}\n{sep}{tail}"


def _note(wid: str) -> str:
    return (
        f'**Sandbox**: you run inside a sandbox. Write your work in "$LOOOP_WORKSPACE" and '
        'scratch files in "$TMPDIR"; deliverables still go to `reports/`. Everything else '
        "is read-only or hidden, and the network reaches only your model API and the domains "
        'the human allowed. A write that fails with "Read-only file system" or a 403 from '
        "the proxy is the sandbox: ask for access instead of working around it. "
        f'`"$LOOOP_BIN" kill {wid}` cannot reach looop from inside: when you are done, '
        "exit your CLI."
    )


def describe(policy: SandboxPolicy) -> str:
    """One line for messages: off, or on with the additions."""
    if not policy.on:
        return "off"
    extra = [
        *(f"write {shlex.quote(w)}" for w in policy.write),
        *(f"deny {shlex.quote(d)}" for d in policy.deny_read),
        *(f"net {d}" for d in policy.domains),
    ]
    return "on" + (f" (+ {', '.join(extra)})" if extra else "")
