"""opencode (`opencode`) as a runner: its profile (runners/runnerprofile.py). Its stream is read by
the built-in reader (decide/streams.py); its SQLite store here, read-only: the conversation a
worker began (find_in_store) and each message's spend (store_rows, priced by
loop/clirecords.py). sqlite3 loads only when the store is read, not with the profile."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from looop.home import jsonio
from looop.runners.runnerprofile import PROVIDER_KEYS, RunnerProfile, opens_brief, valid_id

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from sqlite3 import Connection
    from typing import Any, TypeVar

    T = TypeVar("T")


def config_dir(env: Mapping[str, str]) -> str | None:
    """opencode's config folder: $XDG_CONFIG_HOME/opencode, else ~/.config/opencode."""
    base = env.get("XDG_CONFIG_HOME") or (
        os.path.join(env["HOME"], ".config") if env.get("HOME") else None
    )
    return os.path.join(base, "opencode") if base else None


def store(env: Mapping[str, str], conv: str = "") -> str:
    """Its SQLite store (1.x), every conversation's: `<XDG data>/opencode/opencode.db`."""
    base = env.get("XDG_DATA_HOME") or os.path.join(env.get("HOME", "/nonexistent"), ".local/share")
    return os.path.join(base, "opencode", "opencode.db")


def _read(db: str, work: Callable[[Connection], T]) -> T | None:
    """What `work` reads over a read-only connection to the store, a regular file (not a
    symlink); None when there is none or it fails."""
    import sqlite3  # lazy: the store is read by a finder and the meter, not by a verb's profiles

    try:
        if not stat.S_ISREG(os.lstat(db).st_mode):
            return None
        uri = db.replace("%", "%25").replace("?", "%3f").replace("#", "%23")  # its URI escapes
        con = sqlite3.connect(f"file:{uri}?mode=ro", uri=True, timeout=0.2)
    except (OSError, sqlite3.Error):
        return None
    try:
        con.execute("PRAGMA query_only = 1")
        return work(con)
    except sqlite3.Error:
        return None
    finally:
        con.close()


def _object(raw: object) -> dict[str, Any]:
    """A row's JSON data as an object; {} when it is none."""
    try:
        got = jsonio.safe_loads(raw, max_depth=200) if isinstance(raw, str) else None
    except ValueError:
        return {}
    return got if isinstance(got, dict) else {}


def _opens_with_brief(con: Connection, sid: str, wid: str) -> bool:
    """Whether conversation `sid`'s first user message is worker `wid`'s brief."""
    for mid, data in con.execute(
        "SELECT id, data FROM message WHERE session_id = ? ORDER BY time_created, id LIMIT 20",
        (sid,),
    ):
        if _object(data).get("role") != "user":
            continue
        parts = con.execute(
            "SELECT data FROM part WHERE message_id = ? AND instr(data, ?) > 0",
            (mid, f"You are worker `{wid}`"),
        )
        texts = (_object(raw) for (raw,) in parts)
        return any(t.get("type") == "text" and opens_brief(t.get("text"), wid) for t in texts)
    return False


def find_in_store(env: Mapping[str, str], cwd: str, wid: str, since: float) -> str | None:
    """The conversation this worker started: of those its store holds in `cwd` since the start
    (a tick's and other workers' too: they share the data dir), the earliest whose first user
    message is the worker's brief. Bounded in how many are looked at; anything odd is no id."""

    def earliest(con: Connection) -> str | None:
        rows = con.execute(
            "SELECT id FROM session WHERE directory IN (?, ?) AND time_created >= ? "
            "ORDER BY time_created LIMIT 20",
            (cwd, os.path.realpath(cwd), int((since - 2) * 1000)),
        ).fetchall()
        ids = (sid for (sid,) in rows if isinstance(sid, str) and valid_id(sid))
        return next((sid for sid in ids if _opens_with_brief(con, sid, wid)), None)

    return _read(store(env), earliest)


def store_rows(db: str, conv: str, since: int, most: int) -> list[tuple[object, ...]] | None:
    """Conversation `conv`'s messages updated since `since` (its milliseconds), at most `most`:
    (id, time_updated, data: a JSON object, an assistant's with its `cost`, `modelID` and
    `tokens`); None when the store cannot be read."""
    sql = (
        "SELECT id, time_updated, data FROM message WHERE session_id = ? "
        "AND time_updated >= ? ORDER BY time_updated LIMIT ?"
    )
    return _read(db, lambda con: con.execute(sql, (conv, since, most)).fetchall())


def first_run(env: Mapping[str, str], words: Sequence[str]) -> tuple[dict[str, str], str]:
    """opencode asks nothing, but on its first start writes a .gitignore into its config
    folder, read-only in the box: without it, opencode stops ("Unexpected server error")."""
    where = config_dir(env)
    if where is not None and os.path.isfile(os.path.join(where, ".gitignore")):
        return {}, ""
    return {}, (
        f"opencode has not been set up for this user ({where or 'no HOME'} lacks the "
        ".gitignore its first start writes, and the sandbox keeps that folder read-only): "
        "run `opencode` once outside looop, then start the worker again"
    )


PROFILE = RunnerProfile(
    name="opencode",
    preset={
        # with no message argument, `opencode run` reads the message from stdin
        "tick": "opencode run --format json",
        "worker": 'opencode --prompt "$(cat {{prompt_file}})"',
        # opencode names its conversation itself: looop finds it in its store. Its full
        # TUI drops --prompt when given --session (1.18.33); --mini replays the conversation
        # and sends the prompt
        "resume": 'opencode --mini --session {{session_id}} --prompt "$(cat {{prompt_file}})"',
    },
    note=(
        "note: the opencode tick reads its prompt from stdin and uses the `model` of your "
        "opencode config — set one there, or add `--model provider/model` to the tick"
    ),
    domains=("api.anthropic.com", "api.openai.com", "opencode.ai", "models.dev"),
    state=("~/.local/share/opencode", "~/.local/state/opencode"),
    config=("~/.config/opencode", "~/.cache/opencode"),
    made=("~/.cache/opencode/bin",),
    login_env=PROVIDER_KEYS,
    login_files=(
        ("XDG_DATA_HOME", "opencode/auth.json"),
        ("", ".local/share/opencode/auth.json"),
        ("", ".config/opencode/opencode.json"),
    ),
    login_fix="run `opencode auth login`, or set a provider's API key where the pulse starts",
    # its config: {"provider": {NAME: {"options": {"baseURL": …}}}}, of which its `model` picks
    endpoint_files=(("OPENCODE_CONFIG", "", ""), ("", "", ".config/opencode/opencode.json")),
    endpoint_keys=("provider", "*", "options", "baseURL"),
    first_run=first_run,
    mcp="env",  # merged over its config
    mcp_env="OPENCODE_CONFIG_CONTENT",
    # it names its conversation itself: found in its store, as is what each message cost
    find_id=find_in_store,
    session_file=store,
    store_rows=store_rows,
    stream="step",
    # its approval prompt appears with `"permission": {"bash": "ask"}` in its config
    # on its status line at the foot, not in the output above, which may quote it
    busy=(r"esc (?:to )?interrupt[^\n]*(?:\n[^\n]*){0,2}\s*\Z",),
    needs=(
        # at the foot, in place of its box, never a quote of it in the output above
        ("approval", r"△ Permission required(?:\n[^\n]*){0,10}\s*\Z"),
        ("approval", r"Allow once +Allow always +Reject[^\n]*(?:\n[^\n]*){0,4}\s*\Z"),
        # its status line without `esc interrupt` (busy): once a turn ended (with what it
        # cost), and on its start screen for a few seconds before the brief is sent (an idle
        # box counts only once a look 3 s later finds nothing printed since, views/needsinput)
        ("idle", r"ctrl\+p commands *$"),
    ),
)
