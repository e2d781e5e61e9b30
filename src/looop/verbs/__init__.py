"""The `looop` console entry (`console`), the top floor beside cli/: the worker contract's
verbs served without click by their own room (contract/verbs.py), click (cli/) takes every
other; `failure` words what failed as one line. See docs/ARCHITECTURE.md."""
