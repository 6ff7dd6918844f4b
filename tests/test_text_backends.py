"""The MiniLM back-ends of ``embed``: ONNX Runtime (same vectors, same cache) and bfloat16."""

from __future__ import annotations

import numpy as np
import pytest

from ehrcausal.text import embeddings as embed_mod
from ehrcausal.text.embeddings import MINILM_BACKENDS, embed

NOTES = [
    "Patient reports a dry cough for five days, worse at night; denies fever.",
    "Known asthma, uses salbutamol twice daily. Wheeze on examination.",
    "Temperature 38.4 C, oxygen saturation 94% on room air. Crackles at the left base.",
    "Follow up in two weeks.",
    "No significant history. Works as a carpenter, lives with a partner, non-smoker.",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> object:
    """One cache folder for the module: the ONNX graph is exported into it once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def reference(cache) -> np.ndarray:
    return embed(NOTES, device="cpu", cache_dir=False, progress=False)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_onnx_gives_the_reference_vectors(cache, reference, monkeypatch) -> None:
    monkeypatch.setattr(embed_mod, "_ONNX", {})  # export the graph into this module's cache
    onnx = embed(NOTES, device="cpu", cache_dir=cache, progress=False, backend="onnx")
    assert onnx.shape == reference.shape and onnx.dtype == np.float32
    np.testing.assert_allclose(onnx, reference, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)
    # the order of the notes is kept through the length-sorted batches
    one_by_one = embed(NOTES[::-1], device="cpu", batch_size=1, cache_dir=False,
                       progress=False, backend="onnx")
    np.testing.assert_allclose(one_by_one[::-1], reference, atol=1e-5)


def test_onnx_graph_is_exported_once_into_the_cache(cache, monkeypatch) -> None:
    embed(NOTES[:2], device="cpu", cache_dir=cache, progress=False, backend="onnx")
    (graph,) = (cache / "models").glob("minilm-*.onnx")
    stamp = graph.stat().st_mtime_ns
    monkeypatch.setattr(embed_mod, "_ONNX", {})  # a new process: the graph is read, not exported
    embed(NOTES[2:], device="cpu", cache_dir=cache, progress=False, backend="onnx")
    assert graph.stat().st_mtime_ns == stamp
    assert not list((cache / "models").glob(".*.tmp"))


def test_onnx_and_torch_share_cache_entries_bf16_has_its_own(tmp_path, reference,
                                                             monkeypatch) -> None:
    embed(NOTES, device="cpu", cache_dir=tmp_path, progress=False, backend="torch")
    with monkeypatch.context() as m:  # an ONNX request is answered by the torch entry
        m.setattr(embed_mod, "_onnx_minilm", _no_model)
        hit = embed(NOTES, device="cpu", cache_dir=tmp_path, progress=False, backend="onnx")
    np.testing.assert_array_equal(hit, reference)
    bf16 = embed(NOTES, device="cpu", cache_dir=tmp_path, progress=False, backend="bf16")
    assert len(list((tmp_path / "embeddings").glob("*.npz"))) == 2
    assert not np.array_equal(bf16, reference)
    assert _cosines(bf16, reference).min() >= 0.999
    with monkeypatch.context() as m:  # and a bf16 request is answered by its own entry
        m.setattr(embed_mod, "_load_minilm", _no_model)
        again = embed(NOTES, device="cpu", cache_dir=tmp_path, progress=False, backend="bf16")
    np.testing.assert_array_equal(again, bf16)


def _no_model(*args: object) -> None:
    raise AssertionError("a model was run although the cache should have answered")


@pytest.mark.parametrize("bad", ["ONNX", "int8", "", None, 3])
def test_unknown_backend_is_refused(bad) -> None:
    with pytest.raises(ValueError, match="backend must be one of"):
        embed(NOTES, device="cpu", cache_dir=False, progress=False, backend=bad)


def test_backends_are_described() -> None:
    assert set(MINILM_BACKENDS) == {"torch", "onnx", "bf16"}
