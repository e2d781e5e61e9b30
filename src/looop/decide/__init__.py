"""One call to the agent. The prompt: its files read in one step (`promptinputs`), then rendered
from those values alone (`prompt`, with its instructions first so the provider's cached prefix
holds; inlined text is defused so it cannot pass for a header, `defuse`; the readings one item
each, split by how often their fields change, `promptinputs`, and drawn, `promptshown`). The
runner CLI run with a tee and a timeout (`runner`; inside srt under its runner's sandbox
setting, sandbox/worker.tick_argv), each preset CLI's stream read (`streams`), and the decide's
spend policy (`spend`: the breakers, the metered call; the meter and the ledger are spend/'s). It
knows nothing of workers or the executor: it returns text and a cost."""
