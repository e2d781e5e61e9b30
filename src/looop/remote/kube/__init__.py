"""Workers as Kubernetes Jobs (`k8s://CONTEXT/NAMESPACE`), one Job per worker.

`target.py` reads the spelling, `manifests.py` builds the Job and what it mounts as plain
dicts (every input checked before any is built), `backend.py` is the engine behind
`workers/backend.Backend` for a registered `k8s://` host, over the official client (the
`looop[k8s]` extra, imported only when this engine is used) on `cluster.py`'s reads and
calls (remote/dispatch.py starts its workers), `podrun.py` is what runs inside the
container: one session in the foreground on a PTY, and `shim.py` is the pod's `$LOOOP_BIN`.
The registry both kinds of host share is remote/hosts.py; this package never imports
remote/ssh.
docs/KUBERNETES.md says what crosses the network and what was verified.
"""
