"""Workers on other hosts over the user's own OpenSSH: the registry, one multiplexed link per
host, the satellite the remote `looop` runs, and the relay that brings a remote worker's
contract verbs home. See docs/HOSTS.md."""
