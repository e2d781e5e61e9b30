"""The control protocol: one JSON line each way per connection, attach upgrades to frames.

Request  `{"op": ..., ...fields}\\n`; reply `{"ok": bool, "error"?: str, "data": any}\\n`.
`attach` gets no JSON reply: both sides switch to frames `[tag u8][len u32 BE][payload]`.
server→client: OUTPUT raw bytes, EXIT (signaled u8 + code i32 BE), DETACHED (empty);
client→server: INPUT raw bytes, RESIZE (cols u16 + rows u16).
`send` carries text as `text` (UTF-8) or raw bytes as `data_b64` (for named keys and binary).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from looop.home import jsonio  # json's own C encoder, without `json` (re, enum)

if TYPE_CHECKING:
    from socket import socket
    from typing import Any

MAX_LINE = 1024 * 1024  # longest request line the supervisor reads
MAX_REPLY = 64 * 1024 * 1024  # longest reply line a client accepts
MAX_FRAME = 1024 * 1024  # longest client→server frame payload
BACKLOG_MAX = 1024 * 1024  # output replayed to a client when it attaches
CLIENT_QUEUE_MAX = 4 * 1024 * 1024  # queued output per attached client before it is dropped
INPUT_QUEUE_MAX = 8 * 1024 * 1024  # input waiting for the child to read it

# server → client
OUTPUT = 1
EXIT = 2
DETACHED = 3
# client → server
INPUT = 1
RESIZE = 2

HEADER = struct.Struct(">BI")
EXIT_BODY = struct.Struct(">Bi")
SIZE_BODY = struct.Struct(">HH")

SHOT_FORMATS = ("plain", "ansi", "json")  # a `screenshot` request's `format`


def frame(tag: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(tag, len(payload)) + payload


def exit_frame(signaled: bool, code: int | None) -> bytes:
    """EXIT payload; the code defaults to 130 when signaled without one, else 0."""
    if code is None:
        code = 130 if signaled else 0
    return frame(EXIT, EXIT_BODY.pack(1 if signaled else 0, code))


def resize_frame(cols: int, rows: int) -> bytes:
    return frame(RESIZE, SIZE_BODY.pack(max(0, min(cols, 0xFFFF)), max(0, min(rows, 0xFFFF))))


def parse_exit(payload: bytes) -> tuple[bool, int]:
    signaled, code = EXIT_BODY.unpack(payload[: EXIT_BODY.size])
    return bool(signaled), int(code)


def parse_size(payload: bytes) -> tuple[int, int]:
    cols, rows = SIZE_BODY.unpack(payload[: SIZE_BODY.size])
    return int(cols), int(rows)


def encode(obj: Any) -> bytes:
    return jsonio.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def request_line(op: str, **fields: Any) -> bytes:
    return encode({"op": op, **fields})


def ok(data: Any) -> bytes:
    return encode({"ok": True, "data": data})


def error(message: str) -> bytes:
    return encode({"ok": False, "error": message, "data": None})


def read_reply(sock: socket, limit: int = MAX_REPLY) -> bytes:
    """What a peer sends up to its first newline (all of it when it closes first); ValueError
    past `limit` bytes, OSError as the socket raises it."""
    buf = b""
    while b"\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
        if len(buf) > limit:
            raise ValueError("an oversized line")
    return buf


def reply_of(buf: bytes) -> dict[str, Any] | None:
    """The reply object of `buf`'s first line; None when that is no JSON object."""
    try:
        reply = jsonio.loads(buf.split(b"\n", 1)[0].decode("utf-8", "surrogatepass"))
    except ValueError:
        return None
    return reply if isinstance(reply, dict) else None
