"""Workers away from home: on an SSH host (`ssh/`) or as a Kubernetes Job (`kube/`), the two
never importing each other. What both share lives here: the host registry and placement
(`hosts.py`), where a start goes (`dispatch.py`), each remote worker's backend
(`engine.py`), sys-sessions with hosts (`probe.py`), the home's answer to a worker's contract
verb (`answer.py`) and the worker side's call home (`callhome.py`), per-worker tokens
(`tokens.py`), the repo URL rules (`repospec.py`); `wing.py` is the one entry a start away and
the pulse reach them through; lighter callers import `engine.py` alone. Local
worker lifecycle stays in `workers/`, which never imports this room."""
