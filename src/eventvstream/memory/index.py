"""A FAISS vector index with explicit ids, a lock, and atomic persistence.

- Ids are the SQLite event ids. FAISS never de-duplicates ids, so every write is an *upsert*:
  remove the id, then add it.
- Exact inner-product search (``IndexIDMap2(IndexFlatIP)``) while the index is small; past
  ``exact_max`` vectors it is rebuilt as an ``IndexIVFFlat`` (nlist ≈ 4·√n, trained on a sample)
  searched with ``nprobe`` lists — sub-linear search at a small recall cost. A rebuild from SQL
  (``from_parts``) makes the IVF index directly, chunk by chunk.
- One ``RLock`` guards every call: FAISS indexes are not safe for a write concurrent with
  anything, and a save must not race a search.
- ``save`` replaces the file atomically (``fsutil.atomic_path``): a crash leaves either the old
  index or the new one, never half of one.
"""

from __future__ import annotations

import threading
from pathlib import Path

import faiss
import numpy as np

from eventvstream.fsutil import atomic_path


def _as_matrix(vectors: np.ndarray, dim: int) -> np.ndarray:
    matrix = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(-1, dim))
    return matrix


class VectorIndex:
    def __init__(self, dim: int, *, exact_max: int = 50_000, nprobe: int = 32) -> None:
        self.dim = dim
        self.exact_max = exact_max
        self.nprobe = nprobe
        self._lock = threading.RLock()
        self._index: faiss.Index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    # -- properties ----------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return "ivf" if isinstance(self._index, faiss.IndexIVF) else "exact"

    def __len__(self) -> int:
        with self._lock:
            return int(self._index.ntotal)

    # -- writes --------------------------------------------------------------------------------
    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))
        if ids.size == 0:
            return
        matrix = _as_matrix(vectors, self.dim)
        with self._lock:
            self._index.remove_ids(ids)
            self._index.add_with_ids(matrix, ids)
            if self.kind == "exact" and self._index.ntotal > self.exact_max:
                self._upgrade_to_ivf()

    def remove(self, ids: np.ndarray) -> int:
        ids = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))
        with self._lock:
            return int(self._index.remove_ids(ids)) if ids.size else 0

    def _all(self) -> tuple[np.ndarray, np.ndarray]:
        """Every (id, vector) held — to rebuild the index in another form."""
        index = self._index
        if isinstance(index, faiss.IndexIDMap2):
            ids = faiss.vector_to_array(index.id_map).astype(np.int64)
            vectors = index.index.reconstruct_n(0, index.ntotal)
            return ids, vectors
        invlists = index.invlists
        ids_parts, vec_parts = [], []
        for list_no in range(index.nlist):
            size = invlists.list_size(list_no)
            if not size:
                continue
            ids_parts.append(
                faiss.rev_swig_ptr(invlists.get_ids(list_no), size).astype(np.int64).copy()
            )
            codes = faiss.rev_swig_ptr(invlists.get_codes(list_no), size * index.code_size)
            vec_parts.append(np.frombuffer(codes.copy(), dtype=np.float32).reshape(size, self.dim))
        if not ids_parts:
            return np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32)
        return np.concatenate(ids_parts), np.concatenate(vec_parts)

    def _upgrade_to_ivf(self) -> None:
        ids, vectors = self._all()
        self._index = build_ivf(ids, vectors, self.dim, self.nprobe)

    @classmethod
    def from_parts(
        cls,
        dim: int,
        ids: list[np.ndarray],
        vectors: list[np.ndarray],
        *,
        exact_max: int = 50_000,
        nprobe: int = 32,
    ) -> VectorIndex:
        """A new index of every (ids, vectors) chunk, for a rebuild from SQL (distinct ids).

        Built in its final form at once: past ``exact_max`` an IVF index trained on a sample
        drawn across all chunks, not a flat index filled and then copied into an IVF one, and
        each chunk added once with no ``remove_ids`` before it (there is nothing to replace).
        The lists are emptied as the chunks go in, so their memory is freed on the way.
        """
        result = cls(dim, exact_max=exact_max, nprobe=nprobe)
        total = sum(len(part) for part in ids)
        if total > exact_max:
            result._index = train_ivf(vectors, total, dim, nprobe)
        ids.reverse()
        vectors.reverse()
        while ids:
            part_ids = np.ascontiguousarray(ids.pop(), dtype=np.int64)
            result._index.add_with_ids(_as_matrix(vectors.pop(), dim), part_ids)
        return result

    # -- search --------------------------------------------------------------------------------
    def search(
        self, queries: np.ndarray, k: int, *, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, ids) per query by inner product (cosine for unit vectors);
        missing results have id -1. ``allowed_ids`` restricts the search to those ids."""
        matrix = _as_matrix(queries, self.dim)
        with self._lock:
            if self._index.ntotal == 0 or k <= 0:
                n = len(matrix)
                return np.zeros((n, max(k, 0)), np.float32), -np.ones((n, max(k, 0)), np.int64)
            params = None
            if isinstance(self._index, faiss.IndexIVF):
                params = faiss.SearchParametersIVF(nprobe=self.nprobe)
            if allowed_ids is not None:
                selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed_ids, np.int64))
                if params is None:
                    params = faiss.SearchParameters(sel=selector)
                else:
                    params.sel = selector
                self._selector = selector  # keep alive for the call
            scores, ids = self._index.search(matrix, k, params=params)
        return scores, ids

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp, self._lock:
            faiss.write_index(self._index, str(tmp))

    @classmethod
    def load(cls, path: Path, dim: int, *, exact_max: int, nprobe: int) -> VectorIndex:
        """Raises ``RuntimeError``/``ValueError`` on a corrupt or mismatched file."""
        index = faiss.read_index(str(path))
        if index.d != dim:
            raise ValueError(f"index dimension {index.d} != {dim}")
        if not isinstance(index, faiss.IndexIDMap2 | faiss.IndexIVF):
            raise ValueError(f"unexpected index type {type(index).__name__}")
        result = cls(dim, exact_max=exact_max, nprobe=nprobe)
        result._index = index  # read_index already returns the concrete, owning wrapper
        return result


def build_ivf(ids: np.ndarray, vectors: np.ndarray, dim: int, nprobe: int) -> faiss.IndexIVFFlat:
    """An IVF-Flat inner-product index over (ids, vectors), trained on up to 64 vectors/list."""
    index = train_ivf([vectors], len(ids), dim, nprobe)
    index.add_with_ids(np.ascontiguousarray(vectors, np.float32), np.ascontiguousarray(ids))
    return index


def train_ivf(parts: list[np.ndarray], n: int, dim: int, nprobe: int) -> faiss.IndexIVFFlat:
    """An empty IVF-Flat inner-product index for ``n`` vectors (nlist ≈ 4·√n), trained on up
    to 64 vectors per list drawn at random from the chunks ``parts`` (``n`` rows in all)."""
    nlist = max(1, min(65536, int(4 * np.sqrt(max(n, 1)))))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.train(_sample(parts, n, nlist * 64, dim))
    # A hash-table direct map lets remove_ids find arbitrary (non-sequential) ids without a scan.
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    index.nprobe = nprobe
    return index


def _sample(parts: list[np.ndarray], n: int, size: int, dim: int) -> np.ndarray:
    """Up to ``size`` of the ``n`` rows of the chunks ``parts``, drawn without replacement
    (all of them when there are no more), as one contiguous float32 matrix."""
    if n <= size:
        return _as_matrix(np.concatenate(parts) if len(parts) > 1 else parts[0], dim)
    picks = np.sort(np.random.default_rng(0).choice(n, size, replace=False))
    starts = np.cumsum([0] + [len(part) for part in parts])
    per_part = np.split(picks, np.searchsorted(picks, starts[1:-1]))
    chosen = [
        part[rows - start] for part, rows, start in zip(parts, per_part, starts[:-1], strict=True)
    ]
    return _as_matrix(np.concatenate(chosen), dim)
