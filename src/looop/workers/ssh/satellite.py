"""The remote end: `looop satellite KEY OP` on a host, JSON in on stdin, JSON out on stdout.

Each home has its own satellite data dir on the host (`~/.local/share/looop/satellite/KEY`),
where the SAME PTY supervisors of `sessions/` run its workers; the home never parses human
output. Versioned: a request of another protocol is refused in one line."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from looop.core import store
from looop.core.context import Ctx
from looop.core.errors import LooopError
from looop.core.presets import substitute_prompt_file
from looop.sessions import client
from looop.sessions.logs import read_log
from looop.sessions.state import Session, SessionError, get_session, list_sessions, reap, wait_code
from looop.workers.fleet import last_output
from looop.workers.ssh.link import PROTOCOL, SATELLITES

KEY_RE = re.compile(r"[0-9a-f]{16}")
RELAY = "relay.sock"
# What a remote worker's own `looop` sends home (workers/ssh/shim.py), the rest runs here.
RELAYED = ("ask", "claim", "unclaim", "tell", "told", "cost")


def satellite_dir(env: dict[str, str], key: str) -> Path:
    if not KEY_RE.fullmatch(key):
        raise LooopError(f"bad satellite key {key!r} (16 hex digits)")
    home = env.get("HOME", "")
    if not home.startswith("/"):
        raise LooopError("HOME is not set on this host: the satellite has nowhere to live")
    return Path(home) / SATELLITES / key


def _row(s: Session) -> dict[str, Any]:
    return {
        "id": s.id,
        "state": s.state,
        "alive": s.alive,
        "exit_code": wait_code(s) if not s.alive else None,
        "label": s.label,
        "note": s.note,
        "started_at": s.started_at,
        "last_change": s.last_change,
        "last_output_unix": last_output(str(s.dir)),
    }


def _shim(d: Path, real: str) -> str:
    """`looop` on a remote worker's PATH: the contract verbs go home, the rest run here."""
    path = d / "bin" / "looop"
    store.atomic_write(
        path,
        f"#!{sys.executable}\nimport sys\nfrom looop.workers.ssh.shim import main\n"
        "raise SystemExit(main(sys.argv[1:]))\n",
    )
    os.chmod(path, 0o755)
    return str(path.parent)


def handle(ctx: Ctx, op: str, req: dict[str, Any], version: str) -> dict[str, Any]:
    if req.get("v") != PROTOCOL:
        return {"error": f"this host's looop {version} speaks satellite protocol {PROTOCOL}"}
    root = ctx.paths.data
    try:
        return _handle(ctx, root, op, req, version)
    except (SessionError, LooopError) as e:
        return {"error": str(e)}


def _sid(req: dict[str, Any]) -> str:
    # lazy: only this path needs it (keeps the verbs that skip it light)
    from looop.sessions.state import validate_id  # the same check as every verb

    sid = req.get("id")
    if not isinstance(sid, str):
        raise LooopError("the request names no worker id")
    return validate_id(sid)


def _handle(ctx: Ctx, root: Path, op: str, req: dict[str, Any], version: str) -> dict[str, Any]:
    if op == "hello":
        relay = root / RELAY
        if req.get("fresh"):
            store.remove(relay)  # a dead master's forward: a fresh one binds it again
        root.mkdir(parents=True, exist_ok=True)
        return {
            "version": version,
            "protocol": PROTOCOL,
            "dir": str(root),
            "relay": str(relay),
            "python": sys.version.split()[0],
            "uid": os.geteuid(),
        }
    if op == "ls":
        return {"workers": [_row(s) for s in list_sessions(root)]}
    if op == "spawn":
        return _spawn(ctx, root, req)
    sid = _sid(req)
    if op == "reach":
        try:
            s = get_session(root, sid)
        except SessionError:
            return {"reach": "over", "exit_code": None}
        return {"reach": "alive" if s.alive else "over", "exit_code": wait_code(s)}
    if op == "screen":
        return client.screenshot(root, sid, str(req.get("format", "plain")), bool(req.get("trim")))
    if op == "log":
        text, off = read_log(root, sid, int(req.get("since", 0)), bool(req.get("raw")))
        return {"text": text, "offset": off}
    if op == "send":
        return client.send(root, sid, str(req.get("text", "")), bool(req.get("newline")))
    if op == "key":
        names = req.get("names")
        return client.send_keys(root, sid, [str(n) for n in names or []])
    if op == "kill":
        try:
            return client.kill(root, sid)
        except SessionError:
            return {"killed": False}
    if op == "wait":
        t = req.get("timeout")
        return {"code": client.wait(root, sid, float(t) if t is not None else None, ctx.clock)}
    raise LooopError(f"unknown satellite verb {op!r}")


def _spawn(ctx: Ctx, root: Path, req: dict[str, Any]) -> dict[str, Any]:
    from looop.workers.launch import worker_argv  # lazy: only a start needs the argv rules

    sid = _sid(req)
    line, prompt, extra = req.get("line"), req.get("prompt"), req.get("env")
    if not isinstance(line, str) or not isinstance(prompt, str) or not isinstance(extra, dict):
        raise LooopError("a spawn needs line, prompt and env")
    try:
        if get_session(root, sid).alive:
            raise LooopError(f"worker {sid} is already running on this host")
    except SessionError:
        pass
    reap(root, sid)
    prompt_path = root / "prompts" / f"{sid}.md"
    store.atomic_write(prompt_path, prompt)
    work = root / "work" / sid
    work.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in ctx.env.items() if not k.startswith("LOOOP_")}
    env.update({str(k): str(v) for k, v in extra.items()})
    real = ctx.bin
    shim = _shim(root, real)
    env["PATH"] = shim + os.pathsep + ctx.env.get("PATH", "/usr/bin:/bin")
    env["LOOOP_BIN"] = os.path.join(shim, "looop")  # the contract says "$LOOOP_BIN" claim …
    env["LOOOP_DATA_DIR"] = str(root)
    env["LOOOP_REAL_BIN"] = real
    env["LOOOP_RELAY_SOCK"] = str(root / RELAY)
    env["LOOOP_WORKSPACE"] = str(work)
    real_line = substitute_prompt_file(line, prompt_path)
    argv = worker_argv(real_line, env["PATH"])
    size = req.get("size") or [120, 40]
    s = client.spawn(
        root,
        sid,
        argv,
        cwd=work,
        env=env,
        size=(int(size[0]), int(size[1])),
        host_idle_s=ctx.knobs().real("session_host_idle"),
    )
    return {"row": _row(s)}
