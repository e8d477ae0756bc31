"""Per-pipeline chunk bookkeeping, without the official SDK's shared-ledger, blank-id and
duplicate-id bugs. Pure: no HTTP."""

from __future__ import annotations

import logging
import uuid

import pytest

from cspark_async import BatchChunk, ChunkData, SparkSdkError
from cspark_async._ledger import ChunkLedger

log = logging.getLogger("test.ledger")


def _chunk(chunk_id: str, n: int = 2) -> BatchChunk:
    return BatchChunk(id=chunk_id, data=ChunkData(inputs=[{"v": i} for i in range(n)]))


def _is_uuid(text: str) -> bool:
    return str(uuid.UUID(text)) == text


def test_bug7_blank_ids_get_a_fresh_uuid() -> None:
    ledger = ChunkLedger("b", log)
    prepared = ledger.prepare([_chunk(""), _chunk("   ")], "replace")
    assert all(_is_uuid(c.id) for c in prepared)
    assert prepared[0].id != prepared[1].id
    ledger.commit(prepared)
    assert "" not in ledger.stats
    assert set(ledger.stats) == {c.id for c in prepared}


def test_bug8_replace_renames_a_copy_and_never_lowers_the_stats() -> None:
    ledger = ChunkLedger("b", log)
    first = _chunk("dup", 2)
    ledger.commit(ledger.prepare([first], "replace"))
    again = _chunk("dup", 3)
    (sent,) = ledger.prepare([again], "replace")
    ledger.commit([sent])
    assert again.id == "dup"
    assert first.id == "dup"
    assert sent.id != "dup"
    assert _is_uuid(sent.id)
    assert ledger.stats["dup"] == 2
    assert ledger.stats[sent.id] == 3
    assert ledger.stats.records == 5
    assert ledger.stats.chunks == 2


def test_replace_also_applies_within_one_push() -> None:
    ledger = ChunkLedger("b", log)
    prepared = ledger.prepare([_chunk("x"), _chunk("x")], "replace")
    assert prepared[0].id == "x"
    assert prepared[1].id != "x"


def test_ignore_sends_the_duplicate_as_is_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    ledger = ChunkLedger("b", log)
    ledger.commit(ledger.prepare([_chunk("dup", 2)], "ignore"))
    with caplog.at_level(logging.WARNING, logger="test.ledger"):
        (sent,) = ledger.prepare([_chunk("dup", 3)], "ignore")
    assert sent.id == "dup"
    assert "duplicated" in caplog.text
    ledger.commit([sent])
    assert ledger.stats["dup"] == 5  # both pushes count


def test_throw_refuses_the_whole_push_and_reserves_nothing() -> None:
    ledger = ChunkLedger("b", log)
    ledger.commit(ledger.prepare([_chunk("dup")], "throw"))
    with pytest.raises(SparkSdkError, match="'dup' is already used"):
        ledger.prepare([_chunk("fresh"), _chunk("dup")], "throw")
    # "fresh" was not reserved by the refused push.
    assert ledger.prepare([_chunk("fresh")], "throw")[0].id == "fresh"


def test_ids_in_flight_count_as_used_until_released() -> None:
    ledger = ChunkLedger("b", log)
    pending = ledger.prepare([_chunk("a")], "throw")
    with pytest.raises(SparkSdkError):
        ledger.prepare([_chunk("a")], "throw")
    ledger.release(pending)
    assert ledger.prepare([_chunk("a")], "throw")[0].id == "a"
    assert len(ledger.stats) == 0  # released pushes never reach the stats


def test_bug1_ledgers_are_independent() -> None:
    one, two = ChunkLedger("b1", log), ChunkLedger("b2", log)
    one.commit(one.prepare([_chunk("same")], "throw"))
    assert two.prepare([_chunk("same")], "throw")[0].id == "same"
    assert "same" not in two.stats


def test_stats_is_a_snapshot() -> None:
    ledger = ChunkLedger("b", log)
    ledger.commit(ledger.prepare([_chunk("a")], "throw"))
    snapshot = ledger.stats
    ledger.commit(ledger.prepare([_chunk("b")], "throw"))
    assert dict(snapshot) == {"a": 2}
    assert ledger.stats == {"a": 2, "b": 2}


@pytest.mark.parametrize(
    ("chunks", "policy", "message"),
    [
        pytest.param([_chunk("a")], "overwrite", "if_chunk_id_duplicated", id="bad-policy"),
        pytest.param(["not a chunk"], "replace", "must be a BatchChunk", id="not-a-chunk"),
        pytest.param([_chunk("a", 0)], "replace", "holds no records", id="empty"),
        pytest.param(
            [BatchChunk(id="h", data=ChunkData(inputs=[["v"]]))],
            "replace",
            "holds no records",
            id="header-only",
        ),
    ],
)
def test_invalid_chunks(chunks: list[BatchChunk], policy: str, message: str) -> None:
    with pytest.raises(SparkSdkError, match=message):
        ChunkLedger("b", log).prepare(chunks, policy)  # type: ignore[arg-type]


def test_explicit_size_is_kept_and_missing_size_computed() -> None:
    ledger = ChunkLedger("b", log)
    explicit = BatchChunk(id="e", data=ChunkData(inputs=[{"v": 1}]), size=5)
    none_size = BatchChunk(id="n", data=ChunkData(inputs=[["v"], [1], [2]]), size=None)  # type: ignore[arg-type]
    prepared = ledger.prepare([explicit, none_size], "replace")
    assert [c.size for c in prepared] == [5, 2]
