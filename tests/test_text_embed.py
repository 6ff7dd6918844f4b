"""Text representations (MiniLM, TF-IDF + SVD), their on-disk cache, and fact recoverability."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ehrcausal.cache import stable_hash
from ehrcausal.text import embeddings as embed_mod
from ehrcausal.text.embeddings import MINILM_DIM, TfidfSVD, embed
from ehrcausal.text.recoverability import fact_recoverability

SENTENCES = [
    "The patient has a bad cough and is short of breath.",
    "Patient reports coughing a lot with shortness of breath.",
    "The quarterly invoice was paid by bank transfer on Tuesday.",
    "Fever of 39 degrees since yesterday, no cough.",
]

_SENTENCES = [
    "Patient seen in clinic today.", "History of asthma.", "Current smoker, 20 pack years.",
    "Complains of cough for {d} days.", "Denies chest pain.", "Reports mild fever.",
    "Nasal congestion for {d} days.", "No known drug allergies.", "Chest clear on auscultation.",
    "Mild wheeze on exam.", "Temperature {t} C.", "Plan: rest and fluids.",
    "Follow up in {d} weeks.", "Works as a carpenter.", "Lives with partner.",
    "Sputum is clear.", "Sore throat since yesterday.", "Headache and fatigue.",
    "Symptoms worse at night.", "Review if worse.",
]


def synthetic_notes(n: int, seed: int) -> list[str]:
    """Templated 'notes': 3-6 distinct clinical sentences in random order, random numbers."""
    rng = np.random.default_rng(seed)
    notes = []
    for _ in range(n):
        idx = rng.choice(len(_SENTENCES), size=int(rng.integers(3, 7)), replace=False)
        notes.append(" ".join(
            _SENTENCES[i].format(d=int(rng.integers(1, 10)), t=round(rng.uniform(36, 40), 1))
            for i in idx
        ))
    return notes


@pytest.fixture(scope="module")
def minilm_cpu() -> np.ndarray:
    """MiniLM embeddings of SENTENCES (loads the model once; it stays memoised)."""
    return embed(SENTENCES, "minilm", device="cpu", cache_dir=False, progress=False)


def _no_load(device: str) -> None:
    raise AssertionError("the model was loaded although the cache should have answered")


def _stored(path) -> tuple[np.ndarray, dict]:
    """The embeddings of a cache entry and the key it was stored with (decoded)."""
    with np.load(path, allow_pickle=False) as entry:
        return entry["embeddings"], json.loads(str(entry["key"]))


# ---------------------------------------------------------------------------- MiniLM


def test_minilm_shape_dtype_unit_norm(minilm_cpu: np.ndarray) -> None:
    assert minilm_cpu.shape == (len(SENTENCES), MINILM_DIM)
    assert minilm_cpu.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(minilm_cpu, axis=1), 1.0, atol=1e-5)
    assert np.isfinite(minilm_cpu).all()


def test_minilm_deterministic_and_order_preserved(minilm_cpu: np.ndarray) -> None:
    again = embed(SENTENCES, "minilm", device="cpu", cache_dir=False, progress=False)
    np.testing.assert_array_equal(again, minilm_cpu)
    # batching by length (batch_size=1 and reversed input) must not scramble the rows
    rev = embed(SENTENCES[::-1], "minilm", device="cpu", batch_size=1, cache_dir=False,
                progress=False)
    np.testing.assert_allclose(rev[::-1], minilm_cpu, atol=1e-5)


def test_minilm_semantic_similarity(minilm_cpu: np.ndarray) -> None:
    sim = minilm_cpu @ minilm_cpu.T  # cosine similarity: rows are unit norm
    assert sim[0, 1] > sim[0, 2] + 0.3  # two cough/breathlessness notes vs. an invoice
    assert sim[0, 3] > sim[0, 2]  # a clinical note is closer than a banking sentence


def test_minilm_cache_hit_skips_model_and_corrupt_file_recomputed(
    tmp_path, minilm_cpu: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = embed(SENTENCES, device="cpu", cache_dir=tmp_path, progress=False)
    files = list((tmp_path / "embeddings").glob("*.npz"))
    assert len(files) == 1
    np.testing.assert_array_equal(first, minilm_cpu)
    assert not list((tmp_path / "embeddings").glob("*.tmp"))  # no temporary left behind

    with monkeypatch.context() as m:
        m.setattr(embed_mod, "_load_minilm", _no_load)
        hit = embed(SENTENCES, device="cpu", cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(hit, first)

    # a corrupt file is recomputed and overwritten with a valid one
    files[0].write_bytes(b"this is not a numpy file")
    redo = embed(SENTENCES, device="cpu", cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(redo, first)
    np.testing.assert_array_equal(_stored(files[0])[0], first)

    # a wrong-shaped array under the right key is recomputed too
    with np.load(files[0]) as entry:
        key = entry["key"]
    np.savez(files[0], embeddings=np.zeros((2, 3), dtype=np.float32), key=key)
    redo = embed(SENTENCES, device="cpu", cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(redo, first)
    assert _stored(files[0])[0].shape == (len(SENTENCES), MINILM_DIM)


def test_cache_key_depends_on_texts_and_order(tmp_path) -> None:
    a = embed(SENTENCES[:2], device="cpu", cache_dir=tmp_path, progress=False)
    b = embed(SENTENCES[1:3], device="cpu", cache_dir=tmp_path, progress=False)
    c = embed(SENTENCES[:2][::-1], device="cpu", cache_dir=tmp_path, progress=False)
    assert len(list((tmp_path / "embeddings").glob("*.npz"))) == 3
    assert not np.allclose(a, b)
    np.testing.assert_allclose(c, a[::-1], atol=1e-5)
    # joining texts differently must not collide ("ab" + "c" vs "a" + "bc")
    assert embed_mod.texts_sha256(["ab", "c"]) != embed_mod.texts_sha256(["a", "bc"])


def test_cache_disabled_writes_nothing_and_default_dir_used(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EHRCAUSAL_CACHE", str(tmp_path))
    embed(SENTENCES[:2], device="cpu", cache_dir=False, progress=False)
    assert list(tmp_path.iterdir()) == []
    embed(SENTENCES[:2], device="cpu", cache_dir=None, progress=False)
    assert len(list((tmp_path / "embeddings").glob("*.npz"))) == 1


# ---------------------------------------------------------------------------- TF-IDF


def test_tfidf_shape_norm_determinism() -> None:
    notes = synthetic_notes(120, seed=1)
    Z = embed(notes, "tfidf", n_components=16, random_state=3, cache_dir=False)
    assert Z.shape == (120, 16) and Z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)
    again = embed(notes, "tfidf", n_components=16, random_state=3, cache_dir=False)
    np.testing.assert_array_equal(Z, again)
    # equals the class used directly
    np.testing.assert_array_equal(Z, TfidfSVD(n_components=16, random_state=3).fit_transform(notes))


def test_tfidf_cache_keyed_by_params(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    notes = synthetic_notes(80, seed=2)
    a = embed(notes, "tfidf", n_components=8, cache_dir=tmp_path)
    b = embed(notes, "tfidf", n_components=12, cache_dir=tmp_path)
    assert a.shape == (80, 8) and b.shape == (80, 12)
    assert len(list((tmp_path / "embeddings").glob("*.npz"))) == 2

    def boom(self, X, y=None):
        raise AssertionError("TF-IDF refitted despite a cache hit")

    monkeypatch.setattr(TfidfSVD, "fit_transform", boom)
    np.testing.assert_array_equal(embed(notes, "tfidf", n_components=8, cache_dir=tmp_path), a)


def test_cache_entry_carries_its_key(tmp_path) -> None:
    notes = synthetic_notes(60, seed=10)
    Z = embed(notes, "tfidf", n_components=8, random_state=2, cache_dir=tmp_path)
    (path,) = (tmp_path / "embeddings").glob("*.npz")
    arr, key = _stored(path)
    np.testing.assert_array_equal(arr, Z)
    assert key["model"] == "tfidf"
    assert key["texts"] == embed_mod.texts_sha256(notes)
    assert key["version"]["n_components"] == 8 and key["version"]["random_state"] == 2
    assert "scikit_learn" in key["version"]
    # the file name is derived from that very key
    assert path.stem == stable_hash(key)


def _write_bare_npy(path, arr: np.ndarray) -> None:
    """An old-format entry: a bare .npy array (no key) under the entry's own file name."""
    with open(path, "wb") as f:
        np.save(f, arr)


def _write_npz_without_key(path, arr: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.savez(f, embeddings=arr)


def _write_npz_other_key(path, arr: np.ndarray) -> None:
    """A right-shaped entry stored for other notes (another SHA-256), under this file name."""
    _, key = _stored(path)
    key["texts"] = embed_mod.texts_sha256(["some", "other", "notes"])
    with open(path, "wb") as f:
        np.savez(f, embeddings=arr, key=np.array(json.dumps(key)))


def _write_npz_other_version(path, arr: np.ndarray) -> None:
    """Same notes, but computed with other representation parameters."""
    _, key = _stored(path)
    key["version"]["n_components"] = 99
    with open(path, "wb") as f:
        np.savez(f, embeddings=arr, key=np.array(json.dumps(key)))


@pytest.mark.parametrize(
    "forge",
    [_write_bare_npy, _write_npz_without_key, _write_npz_other_key, _write_npz_other_version],
)
def test_cache_entry_for_another_key_is_recomputed(tmp_path, forge) -> None:
    """A well-formed, right-shaped entry (zeros) not made for this key is never returned."""
    notes = synthetic_notes(60, seed=11)
    real = embed(notes, "tfidf", n_components=8, cache_dir=False)
    first = embed(notes, "tfidf", n_components=8, cache_dir=tmp_path)
    np.testing.assert_array_equal(first, real)
    (path,) = (tmp_path / "embeddings").iterdir()

    forge(path, np.zeros_like(real))
    got = embed(notes, "tfidf", n_components=8, cache_dir=tmp_path)
    np.testing.assert_array_equal(got, real)  # the real embeddings, not the forged zeros
    # ... and the entry was overwritten (atomically: no temporary left) with the right key
    assert [p.name for p in (tmp_path / "embeddings").iterdir()] == [path.name]
    arr, key = _stored(path)
    np.testing.assert_array_equal(arr, real)
    assert key["texts"] == embed_mod.texts_sha256(notes)
    assert key["version"]["n_components"] == 8


def test_tfidf_fit_then_transform_new_texts() -> None:
    train = synthetic_notes(150, seed=4)
    test = synthetic_notes(30, seed=5)
    model = TfidfSVD(n_components=10, random_state=0).fit(train)
    assert model.vocabulary_size_ > 10
    Zt = model.transform(test)
    assert Zt.shape == (30, 10) and Zt.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(Zt, axis=1), 1.0, atol=1e-5)
    # transform of the training notes reproduces fit_transform
    np.testing.assert_allclose(model.transform(train), model.fit_transform(train), atol=1e-5)
    # a note with no known term maps to zero, not NaN
    assert np.array_equal(model.transform(["zzzz qqqq"]), np.zeros((1, 10), np.float32))


def test_tfidf_similar_notes_closer() -> None:
    notes = synthetic_notes(100, seed=6) + [
        "severe cough with sputum and wheeze at night",
        "severe cough with sputum and wheeze worse at night",
    ]
    Z = embed(notes, "tfidf", n_components=20, cache_dir=False)
    sims = Z[:-2] @ Z[-1]
    assert Z[-2] @ Z[-1] > np.quantile(sims, 0.95)


def test_tfidf_unfitted_transform_raises() -> None:
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        TfidfSVD().transform(["a note"])


# ---------------------------------------------------------------------------- recoverability


def _recoverability_data(n: int = 400, seed: int = 0) -> tuple[list[str], pd.DataFrame]:
    rng = np.random.default_rng(seed)
    notes = synthetic_notes(n, seed=seed + 100)
    planted = rng.integers(0, 2, size=n)
    texts = [t + (" Reports hemoptysis." if p else "") for t, p in zip(notes, planted, strict=True)]
    facts = pd.DataFrame({
        "planted": planted,
        "random": rng.integers(0, 2, size=n),
        "constant": np.ones(n, dtype=int),
    })
    return texts, facts


def test_recoverability_planted_random_constant() -> None:
    texts, facts = _recoverability_data()
    res = fact_recoverability(texts, facts, random_state=0).set_index("fact")
    assert list(res.columns) == ["auc", "prevalence", "n"]
    assert res.loc["planted", "auc"] > 0.99
    assert 0.35 < res.loc["random", "auc"] < 0.65
    assert np.isnan(res.loc["constant", "auc"])
    assert res.loc["constant", "prevalence"] == 1.0
    assert res.loc["planted", "prevalence"] == pytest.approx(facts["planted"].mean())
    assert (res["n"] == 400).all()
    # seeded: the same call gives the same numbers
    again = fact_recoverability(texts, facts, random_state=0).set_index("fact")
    pd.testing.assert_frame_equal(res, again)


def test_recoverability_negation_and_hidden_fact() -> None:
    """A fact stated as 'reports X' vs 'denies X' is recoverable; one never written is not."""
    rng = np.random.default_rng(5)
    notes = synthetic_notes(300, seed=9)
    fact = rng.integers(0, 2, size=300)
    texts = [
        t + (" Reports hemoptysis." if f else " Denies hemoptysis.")
        for t, f in zip(notes, fact, strict=True)
    ]
    res = fact_recoverability(texts, pd.DataFrame({"stated": fact}), random_state=1)
    assert res["auc"].iloc[0] > 0.99
    hidden = fact_recoverability(notes, pd.DataFrame({"hidden": fact}), random_state=1)
    assert 0.35 < hidden["auc"].iloc[0] < 0.65


def test_recoverability_nan_rows_and_rare_class() -> None:
    texts, facts = _recoverability_data(n=200, seed=1)
    part = facts["planted"].astype(float)
    part[::4] = np.nan  # a quarter unannotated
    rare = np.zeros(200)
    rare[:3] = 1  # only 3 positives < 5 folds
    bools = facts["planted"].astype(bool).astype(object)
    bools[1::5] = None
    res = fact_recoverability(
        texts, pd.DataFrame({"part": part, "rare": rare, "bools": bools}), n_splits=5
    ).set_index("fact")
    assert res.loc["part", "n"] == 150
    assert res.loc["part", "auc"] > 0.95  # misaligned rows would give ~0.5
    assert res.loc["part", "prevalence"] == pytest.approx(np.nanmean(part))
    assert np.isnan(res.loc["rare", "auc"]) and res.loc["rare", "n"] == 200
    assert res.loc["bools", "n"] == 160 and res.loc["bools", "auc"] > 0.95


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("texts", "match"),
    [
        ([], "empty"),
        ("a single note", "single str"),
        (["ok", "fine", None], r"texts\[2\] is of type NoneType"),
        (["ok", 3.5], r"texts\[1\] is of type float"),
        (None, "required"),
        (np.array([["a", "b"]]), "one-dimensional"),
        ({"a": 1}, "sequence of strings"),
    ],
)
def test_bad_texts(texts, match) -> None:
    with pytest.raises(ValueError, match=match):
        embed(texts, "tfidf", cache_dir=False)


def test_bad_embed_arguments(tmp_path) -> None:
    notes = synthetic_notes(50, seed=7)
    with pytest.raises(ValueError, match="unknown model 'bert'.*minilm, tfidf"):
        embed(notes, "bert", cache_dir=False)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="batch_size must be an integer"):
            embed(notes, "tfidf", batch_size=bad, cache_dir=False)
    with pytest.raises(ValueError, match="n_components must be an integer"):
        embed(notes, "tfidf", n_components=0, cache_dir=False)
    with pytest.raises(ValueError, match="smaller than the TF-IDF vocabulary size"):
        embed(notes, "tfidf", n_components=10_000, cache_dir=False)
    with pytest.raises(ValueError, match="exceeds the number of texts"):
        embed(synthetic_notes(12, seed=8), "tfidf", n_components=20, cache_dir=False)
    with pytest.raises(ValueError, match="no usable terms"):
        embed(["alpha", "beta", "gamma"], "tfidf", n_components=1, cache_dir=False)
    with pytest.raises(ValueError, match="cache_dir must be"):
        embed(notes, "tfidf", cache_dir=3)
    with pytest.raises(ValueError, match="device"):
        embed(notes, "minilm", device="tpu", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="ngram_range"):
        TfidfSVD(n_components=2, ngram_range=(2, 1)).fit(notes)
    assert not (tmp_path / "embeddings").exists()


def test_bad_recoverability_arguments() -> None:
    texts, facts = _recoverability_data(n=40)
    with pytest.raises(ValueError, match="texts has 40 notes but facts has 39 rows"):
        fact_recoverability(texts, facts.iloc[:39])
    with pytest.raises(ValueError, match="must be a pandas DataFrame"):
        fact_recoverability(texts, facts["planted"])
    with pytest.raises(ValueError, match="n_splits must be an integer >= 2"):
        fact_recoverability(texts, facts, n_splits=1)
    with pytest.raises(ValueError, match=r"C must be a number in \(0, inf\)"):
        fact_recoverability(texts, facts, C=0.0)
    with pytest.raises(ValueError, match="'fever' is not binary.*2"):
        fact_recoverability(texts, pd.DataFrame({"fever": np.arange(40) % 3}))
    with pytest.raises(ValueError, match="'smoker' is not binary"):
        fact_recoverability(texts, pd.DataFrame({"smoker": ["yes", "no"] * 20}))
    with pytest.raises(ValueError, match="no columns"):
        fact_recoverability(texts, pd.DataFrame(index=range(40)))
    with pytest.raises(ValueError, match="duplicate column"):
        fact_recoverability(texts, pd.DataFrame(np.zeros((40, 2)), columns=["a", "a"]))
    with pytest.raises(ValueError, match=r"texts\[0\]"):
        fact_recoverability([1] * 40, facts)
