"""Provider usage-limit parsing lives in hot/limits (the fleet's sys-sessions probe and
`looop ls` read a worker's screen through it too); re-exported here for the decide side."""

from __future__ import annotations

from looop.hot.limits import MAX_AHEAD_S as MAX_AHEAD_S
from looop.hot.limits import MINUTE as MINUTE
from looop.hot.limits import SCAN_CHARS as SCAN_CHARS
from looop.hot.limits import Limit as Limit
from looop.hot.limits import find_limit as find_limit
