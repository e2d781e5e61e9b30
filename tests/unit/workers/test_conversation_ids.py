"""A worker's fresh conversation id is a version-4 UUID (claude's --session-id refuses
anything else), a new one each start, and passes the start record's own id check."""

from __future__ import annotations

import uuid

from looop.workers.startrecord import mint, valid_id


def test_a_minted_id_is_a_fresh_version_4_uuid() -> None:
    ids = [mint() for _ in range(200)]
    assert len(set(ids)) == len(ids)
    for conv in ids:
        parsed = uuid.UUID(conv)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == conv  # the canonical spelling: lower case, 8-4-4-4-12
        assert valid_id(conv)
