"""A worker on this machine: agent CLIs launched in PTY sessions with the worker contract
(`contract.md`). Starting one (`launch`: validate everything, then commit; `started` holds
`StartRequest`, the one value a start passes on through launch, dispatch and the SSH or
Kubernetes backend), its git worktree (its box is the sandbox room's; `boxed` rebuilds its walls
from its start record for a verify), its start record (`startrecord`) and resume on the same
conversation (`resume`), a start held for its account's usage window (`startrecord`), needs-input
detection, health and the fleet rows `ls` shows (stuck from the supervisor's mark of its last
output on CLOCK_MONOTONIC), post-conditions (`verify`). `backend` is the one interface every
engine implements, pause and going on included; `LocalBackend` drives the supervisors of
sessions/. A repo worker's change under review: `review` returns the one typed `Review` every
face reads, `reviewsend` drafts a round (act/roundsend.py delivers it)."""
