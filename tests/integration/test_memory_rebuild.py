"""A cache built from the database holds exactly what the database holds: a new replica's
first open (rebuild), and a replay after a save, on the SQLite file and on PostgreSQL
(``pg_support.py``). The replay reads in chunks; the tests make the chunks tiny so that every
path crosses many chunk boundaries."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from eventvstream.memory import MemoryBank, caches
from eventvstream.memory.index import VectorIndex, _sample

DIM = 16


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(caches, "REPLAY_CHUNK_BYTES", 4 * DIM * 37)  # 37 rows a chunk


def unit_vectors(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def events(vectors: np.ndarray, start: float, *, merge_every: int = 0) -> list[dict]:
    """One event per vector, 3 s apart; with ``merge_every``, every such event repeats the
    vector before it right after it, so consolidation merges it into that slot."""
    result, t = [], start
    for i, v in enumerate(vectors):
        same = merge_every and i % merge_every == 1
        vector = vectors[i - 1] if same else v
        t = t + 2.0 if same else t + 3.0
        result.append({"start": t, "end": t + 2.0, "frames": 4, "embedding": vector,
                       "keyframes": [], "labels": [], "boundaries": {}})  # fmt: skip
    return result


def cache_content(index: VectorIndex) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) held by a cache, by id."""
    ids, vectors = index._all()
    order = np.argsort(ids)
    return ids[order], vectors[order]


def stored_content(bank: MemoryBank, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of the rows with a ``column`` vector, read through the row decoder (not
    the replay path under test), by id."""
    rows = [r for r in bank.events() if getattr(r, column) is not None]
    rows.sort(key=lambda r: r.id)
    vectors = np.array([getattr(r, column) for r in rows], np.float32).reshape(-1, DIM)
    return np.array([r.id for r in rows], np.int64), vectors


def assert_same(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> None:
    assert len(a[0]) == len(np.unique(a[0]))  # no id twice
    np.testing.assert_array_equal(a[0], b[0])  # the same ids ...
    np.testing.assert_array_equal(a[1], b[1])  # ... with bit-identical vectors


def write_history(bank: MemoryBank) -> None:
    """Inserts, merges (a slot's vector replaced), captions on some slots (the text column is
    NULL on the others), a deleted stream: every kind of change a replay must apply."""
    for k, stream in enumerate(("cam0", "cam1", "gone")):
        bank.add_many(events(unit_vectors(300, seed=k), 0.0, merge_every=5), stream=stream)
    texts = unit_vectors(120, seed=50)
    for row, vector in zip(bank.events(stream="cam1")[:120], texts, strict=True):
        bank.set_text(row.id, f"text {row.id}", vector)
    assert bank.forget_stream("gone") > 0


def test_a_new_replicas_cache_equals_the_writers(memory_settings, tmp_path):
    writer = MemoryBank(memory_settings(tmp_path / "a", exact_max=200), visual_dim=DIM)
    write_history(writer)
    expected = {name: cache_content(index) for name, index in writer.indexes.items()}
    assert writer.indexes["visual"].kind == "ivf"
    if writer.store.backend.shared:  # PostgreSQL: a second replica on an empty directory
        replica_dir = tmp_path / "b"
    else:  # SQLite: one process per file, so the same directory without its cache files
        writer.close()
        for name in ("visual.faiss", "text.faiss", "index.json"):
            (tmp_path / "a" / name).unlink()
        replica_dir = tmp_path / "a"
    with MemoryBank(memory_settings(replica_dir, exact_max=200)) as replica:
        assert replica.indexes.keys() == expected.keys() == {"visual", "text"}
        for name, index in replica.indexes.items():
            assert_same(cache_content(index), expected[name])
        assert_same(expected["visual"], stored_content(replica, "embedding"))
        assert_same(expected["text"], stored_content(replica, "text_embedding"))
        assert replica.indexes["visual"].kind == "ivf"  # built as IVF at once, and it searches
        probe = expected["visual"][1][7]
        assert replica.search(probe, k=1)[0].event.id == expected["visual"][0][7]
    writer.close()


def test_a_replay_after_a_save_applies_every_later_change_once(memory_settings, tmp_path):
    bank = MemoryBank(memory_settings(tmp_path, exact_max=200), visual_dim=DIM)
    bank.add_many(events(unit_vectors(250, seed=1), 0.0), stream="cam0")
    bank.add_many(events(unit_vectors(100, seed=2), 0.0), stream="gone")
    bank.checkpoint()
    saved = bank.last_of_stream("cam0")
    again = bank.add(events(saved.embedding[None], saved.end - 3.0)[0], stream="cam0")
    assert again.merged and again.id == saved.id  # a saved slot's vector changes
    write_history(bank)  # inserts, merges, captions, and "gone" (saved before) deleted
    # what kill -9 leaves: no save, no close
    if bank._follower is not None:
        bank._follower.stop()
    bank.store.close()
    bank._lock_file.close()
    with MemoryBank(memory_settings(tmp_path, exact_max=200)) as reopened:
        assert_same(
            cache_content(reopened.indexes["visual"]), stored_content(reopened, "embedding")
        )
        text = reopened.indexes["text"]
        assert_same(cache_content(text), stored_content(reopened, "text_embedding"))


def test_from_parts_holds_every_chunk_flat_or_ivf():
    vectors = unit_vectors(1000, seed=3)
    ids = np.arange(5000, 6000, dtype=np.int64)[::-1].copy()  # any order, not 0..n
    cuts = [0, 1, 300, 301, 999, 1000]
    for exact_max, kind in ((5000, "exact"), (400, "ivf")):
        parts_ids = [ids[a:b] for a, b in itertools.pairwise(cuts)]
        parts_vectors = [vectors[a:b] for a, b in itertools.pairwise(cuts)]
        index = VectorIndex.from_parts(DIM, parts_ids, parts_vectors, exact_max=exact_max)
        assert index.kind == kind and parts_ids == [] and parts_vectors == []
        order = np.argsort(ids)
        assert_same(cache_content(index), (ids[order], vectors[order]))


def test_the_training_sample_is_drawn_across_all_chunks():
    vectors = unit_vectors(1000, seed=4)
    parts = [vectors[:10], vectors[10:600], vectors[600:]]
    sample = _sample(parts, 1000, 300, DIM)
    assert sample.shape == (300, DIM) and sample.flags.c_contiguous
    rows = {v.tobytes(): i for i, v in enumerate(vectors)}
    picked = [rows[v.tobytes()] for v in sample]  # every row is one of the vectors ...
    assert len(set(picked)) == 300  # ... none twice
    assert min(picked) < 300 and max(picked) > 700  # from the whole range, not one chunk
    assert _sample(parts, 1000, 5000, DIM).shape == (1000, DIM)  # fewer than asked: all
