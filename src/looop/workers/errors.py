"""The workers room's errors: one line the CLI prints as `looop: …` (a LooopError).

`Unreached` and its kinds are how every engine (`workers/backend.Backend`: this machine's, an
SSH host's, a Kubernetes Job's) says why it could not do what a face asked of a worker; each
face maps the kind to its own answer in one table (the web's in web/reads.py), never by
asking where the worker runs."""

from __future__ import annotations

from looop.home.errors import LooopError
from looop.home.sessionfiles import SessionError


class WorkerError(LooopError):
    pass


class StartHeld(LooopError):
    """A start held as `scheduled` for its account's usage-window reset: not a failure; the
    message says until when and why (home/usagewindows)."""


class Unreached(LooopError):
    """A worker a face named could not be reached as asked: one of the kinds below."""


class NoSuchWorker(Unreached, SessionError):
    """No worker by that id, here or on any host."""


class WorkerOver(Unreached, SessionError):
    """The worker has ended: nothing runs to type into, pause, resize or attach to."""


class HostUnreachable(Unreached):
    """The worker's host does not answer: it is not taken for dead, nothing is reaped."""


class Refused(Unreached, SessionError):
    """What was asked cannot be done to this worker where it runs (a pod's fixed size, an
    attach from afar, a host record that no longer reads): the line says what to do instead."""


class ChangeError(Refused):
    """The worker's change cannot be read where it runs (no checkout, a git that fails, a pod):
    the line says why (workers/review.py)."""
