"""Workers on other hosts over the user's own OpenSSH: one multiplexed link per host, the
satellite the remote `looop` runs, `SshBackend`, and the relay that brings a remote worker's
contract verbs home. The registry both kinds of host share is remote/hosts.py; this package
never imports remote/kube. See docs/HOSTS.md."""
