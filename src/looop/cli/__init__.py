"""The click verbs, one module per family (`lifecycle`, `reads`, `steer`, `schedule`,
`sessions`, `workers`, `mailbox`, `cost`, `hosts`, …), each parsing, calling one room and
rendering; `commands` is the verb table `looop --help` reads and `examples` each verb's example.
A family is cut by what its verbs load, not only by topic: the read verbs live apart from the
pulse's lifecycle, and a steering group's reads (`goal list`) never load the executor its moves
pass through. The verbs a worker calls in a loop (claim, unclaim, tell, told, cost report)
have two faces: their plain spellings are served without click (contract/verbs.py), and
click's face here takes `--help`, the rarer options and every mistake; both call the same work
function, and parity tests hold them alike. Every verb a human types is click's alone."""
