"""looop.sessions: a PTY session manager usable on its own (stdlib + avt).

One supervisor process per session (`looop.sessions.supervisor`), state on disk under
`root/sessions/<id>/`, a private unix socket for live operations. Callers import from the
home modules: `state` (Session, get_session, list_sessions, …), `spawner` (spawn) and
`client` (send, kill, wait, screenshot, …). The package itself loads nothing, so the session
host and each supervisor, started as `python -m looop.sessions.…`, pay only for what they run.
"""
