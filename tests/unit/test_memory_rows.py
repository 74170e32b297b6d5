"""Row codecs: what goes into the events table comes back out, field by field."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from eventvstream.errors import EvsError
from eventvstream.memory.rows import (
    COLUMN_NAMES,
    COLUMNS,
    INSERT_SQL,
    decode_row,
    encode_new,
    vectors_of,
)
from eventvstream.memory.schema import MIGRATIONS, SCHEMA_VERSION


def _events_table() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    for version in range(1, SCHEMA_VERSION + 1):
        conn.executescript(MIGRATIONS[version])
    return conn


def test_column_names_match_the_schema() -> None:
    conn = _events_table()
    names = tuple(r[1] for r in conn.execute("PRAGMA table_info(events)"))
    assert names == COLUMN_NAMES


def test_encode_then_decode_round_trips_every_field() -> None:
    conn = _events_table()
    values = {
        "stream": "cam1",
        "owner": "key7",
        "source": "abc",
        "source_index": 4,
        "start": 1.5,
        "end": 3.25,
        "frames": 6,
        "embedding": np.arange(4, dtype=np.float32),
        "keyframes": [{"t": 2.0, "frame_index": 4}],
        "labels": [["cat", 0.9]],
        "boundaries": {"opened_by": {"reason": "start"}},
        "caption": "a cat",
        "text": "a cat sits",
        "text_embedding": np.ones(3, dtype=np.float32),
    }
    cursor = conn.execute(INSERT_SQL, encode_new(values, seq=9, now=100.0))
    row = decode_row(conn.execute(f"SELECT {COLUMNS} FROM events").fetchone())
    assert row.id == cursor.lastrowid
    assert (row.stream, row.owner, row.source, row.source_index) == ("cam1", "key7", "abc", 4)
    assert (row.start, row.end, row.frames) == (1.5, 3.25, 6)
    assert np.array_equal(row.embedding, values["embedding"])
    assert row.keyframes == values["keyframes"] and row.labels == values["labels"]
    assert row.boundaries == values["boundaries"]
    assert (row.caption, row.text) == ("a cat", "a cat sits")
    assert row.text_embedding is not None and np.array_equal(row.text_embedding, np.ones(3))
    assert (row.merge_count, row.seq, row.created, row.updated) == (0, 9, 100.0, 100.0)


def test_vectors_of_decodes_a_chunk_and_names_a_wrong_sized_vector() -> None:
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4)
    rows = [(7, vectors[0].tobytes()), (3, vectors[1].tobytes()), (9, vectors[2].tobytes())]
    ids, decoded = vectors_of(rows, 4, "embedding")
    assert ids.dtype == np.int64 and ids.tolist() == [7, 3, 9]
    np.testing.assert_array_equal(decoded, vectors)
    assert vectors_of([], 4, "embedding")[1].shape == (0, 4)
    rows[1] = (3, np.zeros(6, np.float32).tobytes())
    with pytest.raises(EvsError, match="event 3 has a 6-d embedding") as caught:
        vectors_of(rows, 4, "embedding")
    assert caught.value.code == "dimension_mismatch"
