"""What every heavy room needs and nothing that needs a room: the context every room receives
(`context.Ctx`: paths, clock, environment, events), one way to run child processes (`proc`:
spawn, bounded tails, group kill, the exit classifier; `pool`: many runs on one loop), a
runner's command line with its prompt file (`promptfile`),
the typed sensor output every heavy room passes around (`readings`: `Reading`, `Snapshot`),
what a long-lived process shows in `ps` (`proctitle`), and containment (`procs`, `cgroup`, with
the pen the pulse sits in so a beat moves no process)."""
