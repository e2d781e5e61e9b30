"""`looop watch`: a Textual app. A worker's screen replayed through the sessions room's
emulator, the fleet table, and keys that act through the same executor as the CLI (journaled as
`watch:`), confirmed first where they cannot be taken back; `review` is a worker's review pane
(r), drawn from the review's JSON, whose comment, send and land go through the web room's same
functions."""
