"""A sensor run's verdict: what it leaves as its snapshot, its output when that is one safe
JSON object, else the failure shape that says why (timed out, over the byte cap, not JSON,
exited non-zero or killed), with the note looop adds to the sensor's .err file. Apart from
running the sensors because it judges a run already ended: it reads what the run left, never
a process, the pool or the sandbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from looop.core.pool import Run
from looop.core.proc import Kind
from looop.core.readings import Reading
from looop.home import jsonio

EXIT_TIMEOUT = 124
EXIT_NOT_EXECUTABLE = 126
EXIT_SPAWN = 127
STDERR_DETAIL = 1024  # stderr tail quoted inside a failure snapshot
HEAD_CHARS = 200
_SHAPE = '{"signal":{…},"detail":{…}}'


def failure_snapshot(rc: int, message: str, stderr: bytes) -> dict[str, Any]:
    """The normalised failure: `signal` carries only the exit code, so it wakes once."""
    tail = stderr[-STDERR_DETAIL:].decode("utf-8", "replace").strip()
    return {
        "detail": {"message": message, "stderr": tail},
        "signal": {"error": True, "exit_code": rc},
    }


def oversize_snapshot(cap: int, seen: int) -> dict[str, Any]:
    """Size-stable: the byte count lives in `detail`, so a growing blob wakes only once."""
    return {
        "detail": {
            "bytes_at_least": seen,
            "message": f"sensor printed more than {cap} bytes and was stopped; print one small "
            f"{_SHAPE} object, not a raw dump (cap: LOOOP_SENSOR_MAX_BYTES)",
        },
        "signal": {"cap": cap, "error": "oversize"},
    }


def not_json_snapshot(out: bytes) -> dict[str, Any]:
    text, unsafe = out.strip(), ""
    try:  # why valid JSON is still refused (a lone surrogate, NaN, too deep), if it is
        jsonio.safe_loads(
            text.decode("utf-8"), max_depth=_MAX_DEPTH, max_int_digits=_MAX_INT_DIGITS
        )
    except jsonio.UnsafeJSON as e:
        unsafe = str(e)
    except ValueError:
        pass
    if not text:
        why = f"sensor printed nothing; print one JSON object like {_SHAPE}"
    elif unsafe:
        why = f"sensor output {unsafe}"
    else:
        why = f"sensor output is not valid UTF-8 JSON; print one JSON object like {_SHAPE}"
    head = text.decode("utf-8", "replace")[:HEAD_CHARS]
    return {"detail": {"head": head, "message": why}, "signal": {"error": "not-json"}}


# A sensor's JSON must be carried into the hash, the prompt and status without surprises.
_MAX_DEPTH = 64
_MAX_INT_DIGITS = 4000


def parse_output(out: bytes) -> tuple[bytes, Any] | None:
    """(the snapshot bytes: stripped + newline, the value) for valid UTF-8 JSON output, else
    None. The one parse of a sensor's output: the beat's Reading carries the value."""
    try:
        text = out.decode("utf-8").strip()
        value = jsonio.safe_loads(text, max_depth=_MAX_DEPTH, max_int_digits=_MAX_INT_DIGITS)
    except ValueError:  # UnicodeDecodeError, JSONDecodeError and UnsafeJSON are all ValueErrors
        return None
    return text.encode() + b"\n", value


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


@dataclass(frozen=True)
class Verdict:
    body: bytes
    ok: bool
    error: str | None = None
    note: str | None = None  # appended to the .err file: looop's own explanation
    value: Any = field(default=None, repr=False)  # the snapshot's JSON, parsed once

    def reading(self, name: str, secs: float) -> Reading:
        """The beat's reading of this run (its snapshot in place)."""
        return Reading(name, self.value, True, self.ok, secs, error=self.error, body=self.body)


def _failed(snap: dict[str, Any], error: str | None, note: str | None) -> Verdict:
    return Verdict((jsonio.canonical(snap) + "\n").encode(), False, error, note, snap)


def failure_verdict(rc: int, message: str, stderr: bytes, *, note: bool) -> Verdict:
    return _failed(failure_snapshot(rc, message, stderr), message, message if note else None)


def judge(run: Run, timeout: int, cap: int, left: int = 0) -> Verdict:
    err = run.err.data()
    ended = run.exit()
    if ended.kind is Kind.TIMEOUT:
        msg = (
            f"sensor timed out after {timeout}s and was killed; make it faster or raise "
            "LOOOP_SENSOR_TIMEOUT (0 disables the timeout)"
        )
        return failure_verdict(EXIT_TIMEOUT, msg, err, note=True)
    if ended.kind is Kind.OVERSIZE:
        snap = oversize_snapshot(cap, run.out.seen)
        msg = f"output over the {cap}-byte cap (LOOOP_SENSOR_MAX_BYTES)"
        return _failed(snap, msg, snap["detail"]["message"])
    rc = ended.code
    assert rc is not None  # a finished run has a return code, even a lost one
    if ended.kind is Kind.LOST:
        msg = "sensor could not be stopped after SIGKILL; check the script for stuck I/O"
        return failure_verdict(rc, msg, err, note=True)
    if not ended.ok:
        if ended.signal is not None:
            how = f"killed by {ended.signal_name or f'signal {ended.signal}'} (exit {rc})"
        else:
            how = f"exited with code {rc}"
        msg = f"sensor {how}; fix the script or its environment"
        last = _one_line(err.decode("utf-8", "replace"))
        return _failed(failure_snapshot(rc, msg, err), f"{how}: {last}" if last else how, None)
    notes = []
    if run.why == "orphan":
        notes.append(
            "the script exited but a background process kept its output open, so the "
            "group was killed; send background output elsewhere (cmd >/dev/null 2>&1 &)"
        )
    if left:
        notes.append(
            f"{left} background process(es) the script left behind were killed when it "
            "ended; a sensor must not start daemons (nothing it starts outlives it)"
        )
    note = "\n".join(notes) or None
    parsed = parse_output(run.out.data())
    if parsed is None:
        snap = not_json_snapshot(run.out.data())
        msg = snap["detail"]["message"]
        return _failed(snap, msg, msg)
    return Verdict(parsed[0], ok=True, note=note, value=parsed[1])
