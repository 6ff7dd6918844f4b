r"""Experiments of the chapter on direct effect modifiers read from clinical text (NEXIS).

A simulated randomised trial with enrolment notes (:func:`ehrcausal.data.simulate_trial_notes`)
is embedded (TF-IDF + SVD, or MiniLM: :mod:`ehrcausal.text`), a TopK sparse autoencoder
(:class:`ehrcausal.learners.sae.TopKSAE`) trained on a larger *unlabelled* corpus of notes from
the same simulator turns the embeddings into sparse neurons, and each neuron is labelled by the
concept most correlated with it on that corpus (:func:`~ehrcausal.learners.sae.neuron_labels`).
The searches of :mod:`ehrcausal.discovery` run on two candidate spaces:

- ``"neurons"``: the SAE neurons of whole notes; a selection is scored by the set of its
  neurons' labels against the true direct modifiers (several neurons with one label count
  once);
- ``"mention_neurons"``: the neurons of an SAE trained on the *mentions* of the notes (each
  note split into its clauses by :func:`ehrcausal.text.mentions.split_mentions`, each distinct
  mention embedded once, MiniLM or TF-IDF + SVD); a participant's value of a neuron is its
  largest activation over the participant's mentions (:func:`ehrcausal.text.mentions.max_pool`),
  and it is labelled and scored like the whole-note neurons;
- ``"concepts"``: the 24 latent concepts themselves (what a perfect reader of the notes would
  give), scored directly.

Scores: IoU, precision and recall (:func:`ehrcausal.discovery.selection_metrics`), and the share
of the selected labels that are proxies of a modifier. Under the null (``effect = 0``) the
family-wise error is the share of trials in which a method selects anything.

The policy section learns, on half of a trial, a rule from the NEXIS neurons (treat where the
OLS estimate ``b_T + g' z_S`` of the effect is positive) and a causal forest's rule on all
neurons, and scores both by their *true* value on the other half,
``mean(pi mu1 + (1 - pi) mu0)``.

The CDISC pilot section (:func:`ehrcausal.data.load_cdisc_pilot`) searches the pre-treatment
history terms and medications (one 0/1 candidate per term recorded for at least 5 patients)
for modifiers of the effect of xanomeline on the ADAS-Cog change at week 24, then plants
modifiers on that real text: ``Y' = Y + delta sd(Y) T (z_a - z_b)`` for two terms ``a``,
``b`` drawn per seed among those recorded for 15-50 % of the patients, and measures recovery.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..cache import stable_hash
from ..data import load_cdisc_pilot, simulate_trial_notes
from ..data.dataset import CausalDataset
from ..data.trial import extra_proxies
from ..discovery import (
    Discovery,
    distinct_columns,
    forest_importance,
    lasso_interactions,
    marginal,
    nexis,
    selection_metrics,
    subgroup_effects,
)
from ..learners.sae import TopKSAE, neuron_labels
from ..runtime import child_seeds
from ..text import TfidfSVD, embed
from ..text.embeddings import MINILM_BACKENDS
from ..text.mentions import MentionEncoder, is_negated, max_pool, split_notes
from ..text.notes import TRIAL_CONCEPTS, TRIAL_WORDINGS, phrase_tables
from ..validation import check_int, check_number
from .base import ChapterConfig, parse_list
from .report import Md, ci, metric_table, paired_difference, pm, summarise

#: the searches compared, in the chapter's order: key -> label
METHODS: dict[str, str] = {
    "nexis": "NEXIS",
    "nexis_released": "NEXIS, released gate",
    "marginal_bonferroni": "marginal, Bonferroni",
    "marginal_bh": "marginal, BH",
    "lasso": "LASSO interactions",
    "forest": "causal forest, top k",
}
#: the methods run under the null (the others have no error-rate claim)
NULL_METHODS: tuple[str, ...] = ("nexis", "nexis_released", "marginal_bonferroni", "marginal_bh")
SPACES: tuple[str, ...] = ("neurons", "mention_neurons", "concepts")
#: how the chapter names a candidate space of :data:`SPACES`
SPACE_LABELS: dict[str, str] = {"neurons": "whole-note neurons",
                                "mention_neurons": "per-mention neurons",
                                "concepts": "concepts"}
#: what an autoencoder reads: a whole note, or each of its mentions (pooled by the max)
UNITS: tuple[str, ...] = ("note", "mention")
#: the autoencoder sizes of :meth:`Config.dictionary`
DICTIONARIES: tuple[str, ...] = ("main", "ceiling", "mention", "mention_fine")
#: rows of a mention autoencoder's training batch (a note has about ten mentions)
MENTION_BATCH_SIZE = 256
#: variances of the tests: key -> (cov_type, small_sample) of :func:`ehrcausal.discovery.nexis`
VARIANCES: dict[str, tuple[str, bool]] = {
    "nonrobust": ("nonrobust", True),
    "HC1": ("HC1", False),
    "HC2": ("HC1", True),
    "CR1S": ("cluster", False),
    "CR2": ("cluster", True),
}
#: how the chapter names a variance
VARIANCE_LABELS: dict[str, str] = {
    "nonrobust": "homoskedastic",
    "HC1": "HC1, t(n − q − 2)",
    "HC2": "HC2, Satterthwaite df",
    "CR1S": "CR1S, t(G − 1)",
    "CR2": "CR2 (diagonal), Satterthwaite df",
}
EMBEDDINGS: tuple[str, ...] = ("tfidf", "minilm")
#: seed of the unlabelled corpus (kept apart from every trial replicate's seed)
CORPUS_SEED_OFFSET = 10_007


@dataclass(kw_only=True)
class Config(ChapterConfig):
    """The chapter's knobs (see the notebook's ``parameters`` cell)."""

    n: int = 600
    effect: float = 1.0
    sizes: Any = "300,600"
    effects: Any = "0.5,1.0"
    n_modifiers: int = 3
    proxy_correlation: float = 0.8
    corpus: int = 2000
    embedding: str = "tfidf"
    n_latents: int = 128
    k: int = 8
    svd_components: int = 64
    ceiling_dictionary: Any = None
    mention_embedding: str = "tfidf"
    mention_dictionary: Any = "64,1"
    fine_mention_dictionary: Any = "128,1"
    drop_negated: bool = True
    mention_seeds: int = 2
    null_seeds: int = 50
    null_n: int = 300
    null_clusters: int = 20
    methods: Any = "nexis,nexis_released,marginal_bonferroni,marginal_bh,lasso,forest"
    runtime_neurons: Any = "256,1024"
    runtime_n: int = 2000
    cdisc_seeds: int = 20
    cdisc_effect: float = 1.0
    wording: str = "varied"
    mention_noise: float = 1.0
    misspelling_rate: float = 0.02
    compare_minilm: bool = False
    minilm_backend: str = "torch"
    proxies_per_modifier: int = 3
    sae_batch_size: int = 32
    ceiling: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self.n = check_int(self.n, "n", 50)
        self.effect = check_number(self.effect, "effect", 0.0)
        self.sizes = parse_list(self.sizes, int, "sizes")
        self.effects = parse_list(self.effects, float, "effects")
        self.n_modifiers = check_int(self.n_modifiers, "n_modifiers", 1, 6)
        self.proxy_correlation = check_number(self.proxy_correlation, "proxy_correlation", 0, 1)
        self.corpus = check_int(self.corpus, "corpus", 100)
        if self.embedding not in EMBEDDINGS:
            raise ValueError(f"embedding must be one of {EMBEDDINGS}, got {self.embedding!r}")
        self.n_latents = check_int(self.n_latents, "n_latents", 8)
        self.k = check_int(self.k, "k", 1, self.n_latents)
        self.svd_components = check_int(self.svd_components, "svd_components", 2)
        if self.ceiling_dictionary is not None:
            sizes = parse_list(self.ceiling_dictionary, int, "ceiling_dictionary")
            if len(sizes) != 3:
                raise ValueError("ceiling_dictionary must hold three integers (neurons, k, SVD "
                                 f"dimensions) or be None, got {self.ceiling_dictionary!r}")
            check_int(sizes[1], "ceiling_dictionary k", 1, check_int(sizes[0],
                      "ceiling_dictionary neurons", 8))
            check_int(sizes[2], "ceiling_dictionary SVD dimensions", 2)
            self.ceiling_dictionary = sizes
        if self.mention_embedding not in EMBEDDINGS:
            raise ValueError(f"mention_embedding must be one of {EMBEDDINGS}, "
                             f"got {self.mention_embedding!r}")
        for knob in ("mention_dictionary", "fine_mention_dictionary"):
            sizes = parse_list(getattr(self, knob), int, knob)
            if len(sizes) != 2:
                raise ValueError(f"{knob} must hold two integers (neurons, k), got "
                                 f"{getattr(self, knob)!r}")
            check_int(sizes[1], f"{knob} k", 1, check_int(sizes[0], f"{knob} neurons", 8))
            setattr(self, knob, sizes)
        self.mention_seeds = check_int(self.mention_seeds, "mention_seeds", 1)
        self.null_seeds = check_int(self.null_seeds, "null_seeds", 1)
        self.null_n = check_int(self.null_n, "null_n", 50)
        self.null_clusters = check_int(self.null_clusters, "null_clusters", 0)
        self.methods = parse_list(self.methods, str, "methods")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"methods {unknown} unknown; choose from {list(METHODS)}")
        self.runtime_neurons = parse_list(self.runtime_neurons, int, "runtime_neurons")
        self.runtime_n = check_int(self.runtime_n, "runtime_n", 100)
        self.cdisc_seeds = check_int(self.cdisc_seeds, "cdisc_seeds", 1)
        self.cdisc_effect = check_number(self.cdisc_effect, "cdisc_effect", 0.0)
        if self.wording not in TRIAL_WORDINGS:
            raise ValueError(f"wording must be one of {TRIAL_WORDINGS}, got {self.wording!r}")
        self.mention_noise = check_number(self.mention_noise, "mention_noise", 0.0, 1.0)
        self.misspelling_rate = check_number(self.misspelling_rate, "misspelling_rate", 0.0, 0.5)
        for flag in ("ceiling", "compare_minilm", "drop_negated"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag} must be True or False, got {getattr(self, flag)!r}")
        if self.minilm_backend not in MINILM_BACKENDS:
            raise ValueError(f"minilm_backend must be one of {list(MINILM_BACKENDS)}, "
                             f"got {self.minilm_backend!r}")
        self.proxies_per_modifier = check_int(self.proxies_per_modifier,
                                              "proxies_per_modifier", 1, 3)
        extra_proxies(self.n_modifiers, self.proxies_per_modifier)  # raises if too many
        self.sae_batch_size = check_int(self.sae_batch_size, "sae_batch_size", 1)

    def trial(self, n: int, effect: float, seed: int, **kw: Any) -> CausalDataset:
        """One simulated trial at this configuration's modifiers, proxies and notes (wording,
        mention noise and misspellings, unless ``kw`` sets them)."""
        for knob, value in self.notes().items():
            kw.setdefault(knob, value)
        return simulate_trial_notes(n, seed, effect=effect, n_modifiers=self.n_modifiers,
                                    proxy_correlation=self.proxy_correlation,
                                    proxies_per_modifier=self.proxies_per_modifier, **kw)


    def dictionary(self, which: str = "main") -> tuple[int, int, int]:
        """Neurons, k and SVD dimensions of the autoencoder: ``"main"`` (``n_latents``, ``k``,
        ``svd_components``), ``"ceiling"`` (``ceiling_dictionary``, else the main one),
        ``"mention"`` (``mention_dictionary`` with ``svd_components``: the per-mention one) or
        ``"mention_fine"`` (``fine_mention_dictionary``: the ceiling's second per-mention one)."""
        if which not in DICTIONARIES:
            raise ValueError(f"which must be one of {DICTIONARIES}, got {which!r}")
        if which in ("mention", "mention_fine"):
            n_latents, k = (self.mention_dictionary if which == "mention"
                            else self.fine_mention_dictionary)
            return n_latents, k, self.svd_components
        if which == "ceiling" and self.ceiling_dictionary is not None:
            n_latents, k, svd = self.ceiling_dictionary
            return n_latents, k, svd
        return self.n_latents, self.k, self.svd_components

    def notes(self) -> dict[str, Any]:
        """The knobs of the notes as configured (``wording``, ``mention_noise``,
        ``misspelling_rate``)."""
        return {"wording": self.wording, "mention_noise": self.mention_noise,
                "misspelling_rate": self.misspelling_rate}


def label(method: str) -> str:
    """How the chapter names a method."""
    return METHODS.get(method, method)


# ---------------------------------------------------------------------------------------------
# Representation
# ---------------------------------------------------------------------------------------------


@dataclass
class Representation:
    """Embedding + TopK SAE fitted on the unlabelled corpus, with the neurons' labels.

    ``unit="note"``: the SAE reads whole notes (TF-IDF + SVD, or MiniLM). ``unit="mention"``:
    it reads mentions (``mentions`` embeds them) and a note's value of a neuron is the largest
    activation over its mentions (:func:`ehrcausal.text.mentions.max_pool`).
    """

    embedding: str
    sae: TopKSAE
    labels: pd.DataFrame
    tfidf: TfidfSVD | None = None
    readings: dict[str, Any] = field(default_factory=dict)
    backend: str = "torch"
    device: str = "cpu"
    unit: str = "note"
    mentions: MentionEncoder | None = None
    drop_negated: bool = False
    _mention_acts: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """TF-IDF + SVD of the notes, or their MiniLM embedding (cached on disk by
        :func:`ehrcausal.text.embed`, with a progress bar while it encodes); whole notes only."""
        if self.unit != "note":
            raise ValueError("embed is for whole-note representations; use neurons")
        if self.tfidf is not None:
            return self.tfidf.transform(list(texts))
        return embed(list(texts), "minilm", backend=self.backend, device=self.device)

    def mention_activations(self, mentions: Sequence[str]) -> np.ndarray:
        """SAE activations of each mention string (rows in order); each distinct string is
        embedded and encoded once per representation."""
        assert self.mentions is not None
        new = sorted({m for m in mentions if m not in self._mention_acts})
        if new:
            A = self.sae.transform(self.mentions.transform(new))
            self._mention_acts.update(zip(new, A, strict=True))
        return np.stack([self._mention_acts[m] for m in mentions])

    def neurons(self, texts: Sequence[str]) -> np.ndarray:
        """SAE activations of the notes (n, n_latents); per mention, max-pooled per note, for
        a per-mention representation."""
        if self.unit == "note":
            return self.sae.transform(self.embed(texts))
        flat, owners = read_mentions(texts, self.drop_negated)
        return max_pool(self.mention_activations(flat), owners, len(texts))


def read_mentions(texts: Sequence[str], drop_negated: bool) -> tuple[list[str], np.ndarray]:
    """The mentions of ``texts`` and the note of each (:func:`ehrcausal.text.mentions.split_notes`),
    without the negated ones (:func:`~ehrcausal.text.mentions.is_negated`) if ``drop_negated``."""
    flat, owners = split_notes(list(texts))
    if drop_negated:
        keep = [not is_negated(m) for m in flat]
        flat = [m for m, k in zip(flat, keep, strict=True) if k]
        owners = owners[np.asarray(keep, dtype=bool)]
    return flat, owners


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


_REPRESENTATIONS: dict[str, Representation] = {}


def representation(cfg: Config, embedding: str | None = None, *, dictionary: str = "main",
                   unit: str = "note", sae_seed: int | None = None,
                   **notes: Any) -> Representation:
    """Fit the embedding (TF-IDF only) and the SAE on ``cfg.corpus`` unlabelled notes, written
    as ``cfg`` says or with the note knobs ``notes`` (``wording``, ``mention_noise``,
    ``misspelling_rate``); ``embedding`` overrides ``cfg.embedding`` (``cfg.mention_embedding``
    for ``unit="mention"``); ``dictionary`` chooses the autoencoder's size
    (:meth:`Config.dictionary`; a per-mention representation takes ``"mention"`` unless
    ``"mention_fine"`` is asked for);
    ``sae_seed`` seeds the autoencoder's training (default ``cfg.seed``; the corpus and the
    TF-IDF keep ``cfg.seed``).

    A fitted representation is kept for the life of the process, keyed by everything it
    depends on, so the chapter's sections share it.
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    if unit == "mention":
        embedding = embedding or cfg.mention_embedding
        dictionary = dictionary if dictionary == "mention_fine" else "mention"
    embedding = embedding or cfg.embedding
    if embedding not in EMBEDDINGS:
        raise ValueError(f"embedding must be one of {EMBEDDINGS}, got {embedding!r}")
    notes = {**cfg.notes(), **notes}
    sizes = cfg.dictionary(dictionary)
    sae_seed = cfg.seed if sae_seed is None else sae_seed
    key = stable_hash({"config": config_key(cfg), "embedding": embedding, "notes": notes,
                       "dictionary": sizes, "unit": unit, "sae_seed": sae_seed})
    if key not in _REPRESENTATIONS:
        _REPRESENTATIONS[key] = _fit_representation(cfg, embedding, notes, sizes, unit,
                                                    sae_seed)
    return _REPRESENTATIONS[key]


def _fit_representation(cfg: Config, embedding: str, notes: dict[str, Any],
                        sizes: tuple[int, int, int], unit: str = "note",
                        sae_seed: int = 0) -> Representation:
    n_latents, k, svd = sizes
    corpus = cfg.trial(cfg.corpus, 0.0, cfg.seed + CORPUS_SEED_OFFSET, **notes)
    tfidf, encoder = None, None
    if unit == "mention":
        flat, owners = read_mentions(corpus.text, cfg.drop_negated)
        encoder = MentionEncoder(embedding, backend=cfg.minilm_backend, device=cfg.device_used,
                                 n_components=svd, random_state=cfg.seed).fit(flat)
        distinct, inverse = np.unique(np.asarray(flat, dtype=object), return_inverse=True)
        E = encoder.transform(list(distinct))[inverse]  # every occurrence is a training row
        batch = MENTION_BATCH_SIZE
    elif embedding == "tfidf":
        tfidf = TfidfSVD(n_components=svd, random_state=cfg.seed).fit(corpus.text)
        E = tfidf.transform(corpus.text)
        batch = cfg.sae_batch_size
    else:
        E = embed(corpus.text, "minilm", backend=cfg.minilm_backend, device=cfg.device_used)
        batch = cfg.sae_batch_size
    sae = TopKSAE(n_latents, k, epochs=cfg.epochs or 30, batch_size=batch,
                  random_state=sae_seed, device=cfg.device_used)
    with _one_torch_thread():  # small batches: a second thread costs more than it brings
        sae.fit(E)
    if unit == "mention":
        A = max_pool(sae.transform(E), owners, len(corpus.text))
    else:
        A = sae.transform(E)
    concepts = corpus.modalities["records"][corpus.meta["concepts"]]
    labels = neuron_labels(A, concepts)
    labelled = labels.dropna(subset=["label"])
    mods = corpus.meta["modifiers"]
    best = concept_alignment(A, concepts)
    readings = {
        "corpus_n": cfg.corpus, "n_latents": n_latents, "sae_k": k,
        "embedding": _embedding_label(embedding, unit, svd, cfg.minilm_backend),
        "sae_dead": sae.dead_, "sae_epochs": sae.history_.n_epochs,
        "sae_r2": sae.explained_variance_, "n_labelled": len(labelled),
        "concepts_covered": int(labelled.label.nunique()),
        "median_label_corr": float(labelled.correlation.median()) if len(labelled) else np.nan,
        "modifier_neurons": int(labelled.label.isin(mods).sum()),
        "alignment_median": float(np.median(best)),
        "alignment_modifiers": float(np.mean(best[[list(concepts.columns).index(c)
                                                   for c in mods]])),
        "note_example": Md("> " + corpus.text[0].replace("\n", " ")),
    }
    if unit == "mention":
        readings.update(mention_readings(sae, labels, corpus, encoder, cfg.drop_negated))
    return Representation(embedding, sae, labels, tfidf, readings, cfg.minilm_backend,
                          cfg.device_used, unit, encoder, cfg.drop_negated and unit == "mention")


def _embedding_label(embedding: str, unit: str, svd: int, backend: str) -> str:
    what = (f"TF-IDF + SVD ({svd} dimensions)" if embedding == "tfidf"
            else f"MiniLM (all-MiniLM-L6-v2, 384 dimensions, {backend})")
    return what if unit == "note" else f"{what} of each mention, max over the mentions"


#: the kinds of a concept's mention in the phrase table, as the chapter names them
MENTION_KINDS: dict[str, str] = {"present": "stated", "hedge": "hedged", "absent": "negated"}


def mention_kinds(mentions: Sequence[str], style: str = "normal") -> pd.DataFrame:
    """For each mention string, the concept and kind (stated, hedged, negated) of the phrase
    of the trial phrase table it is exactly (case-insensitive; ``{k}`` a number); both None
    for a mention that is no phrase of the table (the opening, the closing, a misspelt
    phrase). A diagnostic of the simulation: the representations never see it."""
    pats: list[Any] = []
    info: list[tuple[str, str]] = []
    for mode, kind in MENTION_KINDS.items():
        p, names = _phrase_patterns(style, (mode,))
        pats += p
        info += [(c, kind) for c in names]
    rows = []
    for m in mentions:
        low = m.lower()
        hit = next((info[i] for i, p in enumerate(pats) if p.fullmatch(low)), (None, None))
        rows.append({"concept": hit[0], "kind": hit[1]})
    return pd.DataFrame(rows, index=pd.Index(list(mentions), name="mention"))


def mention_readings(sae: TopKSAE, labels: pd.DataFrame, corpus: CausalDataset,
                     encoder: MentionEncoder | None, drop_negated: bool) -> dict[str, Any]:
    """What a per-mention autoencoder does with each kind of mention, on its corpus.

    For concept ``c`` with neurons ``J_c`` (those named ``c``), a mention *fires* ``c`` when
    ``max_{j in J_c} a_mj > 0`` (a mention dropped as negated fires nothing). Per kind (``c``
    stated, hedged or negated, and mentions of other concepts), the share of the corpus's
    mentions of that kind that fire ``c``, averaged over the concepts with neurons
    (``mention_fire_<kind>``, and per concept in ``mention_fire_table`` for the modifiers and
    proxies). Misspelt phrases are left out (no exact match). ``mention_negated_cue`` is the
    share of the negated mentions that open with a negation word (dropped when
    ``drop_negated``).
    """
    flat, _ = split_notes(corpus.text)
    distinct, inverse = np.unique(np.asarray(flat, dtype=object), return_inverse=True)
    assert encoder is not None
    A = sae.transform(encoder.transform(list(distinct)))
    cue = np.array([is_negated(m) for m in distinct])
    if drop_negated:
        A[cue] = 0.0
    kinds = mention_kinds(list(distinct), corpus.meta["knobs"]["style"])
    counts = np.bincount(inverse, minlength=len(distinct)).astype(float)
    lab = labels.label.to_numpy(dtype=object)
    rows = []
    for c in TRIAL_CONCEPTS:
        J = np.flatnonzero(lab == c)
        if not len(J):
            continue
        fires = A[:, J].max(axis=1) > 0
        row: dict[str, Any] = {"concept": c, "neurons": len(J)}
        for kind in (*MENTION_KINDS.values(), "other concepts"):
            mask = ((kinds.concept == c) & (kinds.kind == kind) if kind != "other concepts"
                    else kinds.concept.notna() & (kinds.concept != c)).to_numpy()
            w = counts[mask]
            row[kind] = float((w * fires[mask]).sum() / w.sum()) if w.sum() else np.nan
        rows.append(row)
    fire = pd.DataFrame(rows).set_index("concept")
    roles = {**{c: "direct modifier" for c in corpus.meta["modifiers"]},
             **{c: "proxy" for c in corpus.meta["proxies"]}}
    shown = fire.loc[[c for c in roles if c in fire.index]].copy()
    shown.insert(0, "role", [roles[c] for c in shown.index])
    neg = (kinds.kind == "negated").to_numpy()
    out: dict[str, Any] = {
        "mention_count": len(flat), "mention_distinct": len(distinct),
        "mention_negated_cue": float((counts * (neg & cue)).sum() / (counts * neg).sum())
        if neg.any() else np.nan,
        "mention_dropped": int(counts[cue].sum()) if drop_negated else 0,
        "mention_per_note": len(flat) / len(corpus.text),
        "mention_fire_table": shown.round(2),
    }
    for kind in (*MENTION_KINDS.values(), "other concepts"):
        out[f"mention_fire_{kind.replace(' ', '_')}"] = float(fire[kind].mean())
    return out


def concept_alignment(activations: np.ndarray, concepts: pd.DataFrame) -> np.ndarray:
    """Per concept, the largest Pearson correlation of its indicator with any neuron."""
    A = np.asarray(activations, dtype=float)
    F = concepts.to_numpy(dtype=float)

    def _std(M: np.ndarray) -> np.ndarray:
        sd = M.std(axis=0)
        return (M - M.mean(axis=0)) / np.where(sd > 0, sd, 1.0)

    return (_std(F).T @ _std(A) / A.shape[0]).max(axis=1)


def _phrase_patterns(style: str, modes: Sequence[str]) -> tuple[list[Any], list[str]]:
    """Compiled patterns of the trial phrase table's phrases of ``modes``, and their concepts."""
    import re

    table = phrase_tables("trial")[style]["concepts"]
    pats, names = [], []
    for c in TRIAL_CONCEPTS:
        for mode in modes:
            for phrase in table[c][mode]:
                rx = re.escape(phrase.lower()).replace(re.escape("{k}"), r"\d+")
                pats.append(re.compile(rx))
                names.append(c)
    return pats, names


def phrase_indicators(texts: Sequence[str], style: str = "normal") -> tuple[np.ndarray,
                                                                           np.ndarray]:
    """An oracle dictionary: one 0/1 column per phrase of the trial phrase table.

    A column is 1 where the note contains the phrase (case-insensitive; ``{k}`` matches a
    number; a misspelt phrase is missed). Each column is named by its concept, whatever the
    mode (stated, hedged or negated). Columns that never or always occur and affine
    duplicates are dropped. This is what a sparse autoencoder with one neuron per phrase, and
    nothing else, would give.
    """
    pats, names = _phrase_patterns(style, ("present", "hedge", "absent"))
    low = [t.lower() for t in texts]
    Z = np.array([[1.0 if p.search(t) else 0.0 for p in pats] for t in low]).reshape(
        len(low), len(pats))
    keep = distinct_columns(Z)
    return Z[:, keep], np.asarray(names, dtype=object)[keep]


def mention_indicators(texts: Sequence[str], style: str = "normal", *,
                       hedged: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """An oracle dictionary with the wordings merged: one 0/1 column per concept.

    A column is 1 where the note *states* the concept in any of its wordings (a phrase of the
    table's ``present`` mode; hedges and negations do not count; a misspelt phrase is missed),
    and is named by the concept. With faithful mentions and no misspellings it equals the
    concept; otherwise it is the concept read through the note. Columns that never or always
    occur are dropped. This is what a sparse autoencoder with one neuron per concept, reading
    only what the note says, would give. ``hedged=True`` counts a hedged mention (the table's
    ``hedge`` mode) as a statement too: the reader who takes "possible X" for X.
    """
    if not isinstance(hedged, bool):
        raise ValueError(f"hedged must be True or False, got {hedged!r}")
    pats, names = _phrase_patterns(style, ("present", "hedge") if hedged else ("present",))
    low = [t.lower() for t in texts]
    hits = np.array([[1.0 if p.search(t) else 0.0 for p in pats] for t in low]).reshape(
        len(low), len(pats))
    concepts = list(dict.fromkeys(names))
    Z = np.column_stack([hits[:, [i for i, c in enumerate(names) if c == name]].max(axis=1)
                         for name in concepts])
    keep = distinct_columns(Z)
    return Z[:, keep], np.asarray(concepts, dtype=object)[keep]


def label_table(rep: Representation, modifiers: Sequence[str], proxies: Sequence[str],
                top: int = 3) -> pd.DataFrame:
    """For each modifier and proxy concept: its neurons and their best correlation."""
    rows = []
    for role, names in (("direct modifier", modifiers), ("proxy", proxies)):
        for c in names:
            sub = rep.labels[rep.labels.label == c].sort_values("correlation", ascending=False)
            rows.append({"concept": c, "role": role, "neurons": len(sub),
                         "best correlation": f"{sub.correlation.max():.2f}" if len(sub) else "–",
                         "top neurons": ", ".join(str(i) for i in sub.index[:top])})
    return pd.DataFrame(rows).set_index("concept")


# ---------------------------------------------------------------------------------------------
# Searches
# ---------------------------------------------------------------------------------------------


def run_method(method: str, Y: np.ndarray, T: np.ndarray, Z: np.ndarray, *, k: int, seed: int,
               n_estimators: int, **kw: Any) -> Discovery:
    """One search by its chapter key."""
    if method == "nexis":
        return nexis(Y, T, Z, **kw)
    if method == "nexis_released":
        return nexis(Y, T, Z, released=True, **kw)
    if method == "marginal_bonferroni":
        return marginal(Y, T, Z, **kw)
    if method == "marginal_bh":
        return marginal(Y, T, Z, correction="bh", **kw)
    if method == "lasso":
        return lasso_interactions(Y, T, Z, random_state=seed)
    if method == "forest":
        return forest_importance(Y, T, Z, k=k, n_estimators=n_estimators, random_state=seed)
    raise ValueError(f"unknown method {method!r}")


#: the representations of a trial's spaces: one (used for ``"neurons"``), or one per space
Reps = Representation | dict[str, Representation] | None


def _rep_of(reps: Reps, space: str) -> Representation:
    rep = reps.get(space) if isinstance(reps, dict) else reps
    if rep is None:
        raise ValueError(f"space {space!r} needs a fitted representation")
    return rep


def candidates(rep: Reps, ds: CausalDataset, space: str) -> tuple[np.ndarray, np.ndarray]:
    """The candidate matrix of a space and the name of each of its columns (``rep``: the
    representation of the neuron spaces, or a dict of them by space)."""
    if space == "concepts":
        names = np.asarray(ds.meta["concepts"], dtype=object)
        return ds.modalities["records"][list(names)].to_numpy(dtype=float), names
    if space == "phrases":
        return phrase_indicators(ds.text, ds.meta["knobs"]["style"])
    if space == "mentions":
        return mention_indicators(ds.text, ds.meta["knobs"]["style"])
    if space not in ("neurons", "mention_neurons", "mention_neurons_fine"):
        raise ValueError(f"unknown candidate space {space!r}")
    r = _rep_of(rep, space)
    Z = r.neurons(ds.text)
    keep = distinct_columns(Z)  # dead neurons and exact duplicates
    return Z[:, keep], r.labels.label.to_numpy(dtype=object)[keep]


def score(selected: np.ndarray, names: np.ndarray, ds: CausalDataset) -> dict[str, float]:
    """Selection metrics of the labels of the selected columns against the true modifiers."""
    labs = {str(x) for x in names[np.asarray(selected, dtype=int)] if x is not None}
    out = selection_metrics(sorted(labs), ds.meta["modifiers"])
    out["proxy_share"] = (len(labs & set(ds.meta["proxies"])) / len(labs)) if labs else 0.0
    out["any"] = float(len(selected) > 0)
    out["n_columns"] = float(len(selected))
    return out


def variance_kwargs(variance: str, ds: CausalDataset) -> dict[str, Any]:
    """The test keywords of a :data:`VARIANCES` key (cluster ids from the trial's sites)."""
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {list(VARIANCES)}, got {variance!r}")
    cov_type, small = VARIANCES[variance]
    kw: dict[str, Any] = {"cov_type": cov_type, "small_sample": small}
    if cov_type == "cluster":
        kw["clusters"] = ds.modalities["site"]
    return kw


def run_trial(cfg: Config, rep: Reps, *, n: int, effect: float, seed: int,
              spaces: Sequence[str], methods: Sequence[str], clusters: int = 0,
              cov_types: Sequence[str] = ("nonrobust",), **trial_kw: Any) -> list[dict[str, Any]]:
    """Simulate one trial; run every method on every space; one row per (space, method)."""
    ds = cfg.trial(n, effect, seed, clusters=clusters, **trial_kw)
    rows = []
    for space in spaces:
        Z, names = candidates(rep, ds, space)
        for method in methods:
            for cov in cov_types:
                kw: dict[str, Any] = {}
                if method.startswith(("nexis", "marginal")):
                    kw = variance_kwargs(cov, ds)
                elif cov != "nonrobust":
                    continue
                res = run_method(method, ds.Y, ds.T, Z, k=cfg.n_modifiers, seed=seed,
                                 n_estimators=cfg.n_estimators or 100, **kw)
                rows.append({"space": space, "method": method, "cov_type": cov, "n": n,
                             "effect": effect, "seed": seed, "clusters": clusters,
                             "selected": [int(j) for j in res.selected],
                             **score(res.selected, names, ds)})
    return rows


def main_representations(cfg: Config) -> dict[str, Representation]:
    """The representations of the chapter's neuron spaces: whole notes (``cfg.embedding``,
    the main dictionary) and mentions (``cfg.mention_embedding``, ``cfg.mention_dictionary``)."""
    return {"neurons": representation(cfg),
            "mention_neurons": representation(cfg, unit="mention")}


def sweep(cfg: Config, rep: Reps) -> pd.DataFrame:
    """Recovery against n (at ``cfg.effect``) and against the effect size (at ``cfg.n``), on
    every space of :data:`SPACES` (``rep``: :func:`main_representations`)."""
    cells = ([{"n": n, "effect": cfg.effect} for n in cfg.sizes]
             + [{"n": cfg.n, "effect": e} for e in cfg.effects if e != cfg.effect
                or cfg.n not in cfg.sizes])
    rows = []
    for cell in cells:
        for r, seed in enumerate(cfg.seeds):
            for row in run_trial(cfg, rep, n=cell["n"], effect=cell["effect"], seed=seed,
                                 spaces=SPACES, methods=cfg.methods):
                rows.append({**row, "replicate": r})
    return pd.DataFrame(rows)


#: the candidate spaces of the representation ceiling, in order: key -> label
CEILING_SPACES: dict[str, str] = {
    "concepts": "concepts (the truth)",
    "phrases": "phrase dictionary (oracle)",
    "mentions": "mention dictionary (oracle)",
    "neurons": "whole-note neurons",
    "mention_neurons": "per-mention neurons",
    "mention_neurons_fine": "per-mention neurons, finer dictionary",
}


#: the notes of the representation ceiling: key -> (label, knobs of the notes). "written"
#: is the chapter's own notes (``Config.notes``); the others change the knobs they name.
NOTE_SETTINGS: dict[str, tuple[str, dict[str, Any]]] = {
    "written": ("as written", {}),
    "faithful": ("faithful mentions", {"wording": "varied", "mention_noise": 0.0,
                                       "misspelling_rate": 0.0}),
    "canonical": ("one wording", {"wording": "canonical"}),
    "canonical_faithful": ("one wording, faithful mentions",
                           {"wording": "canonical", "mention_noise": 0.0,
                            "misspelling_rate": 0.0}),
}


def target_met(nexis_iou: float, marginal_iou: float) -> str:
    """The issue's target: NEXIS IoU >= 0.8 where marginal Bonferroni's is < 0.3."""
    return "met" if nexis_iou >= 0.8 and marginal_iou < 0.3 else "not met"


def ceiling(cfg: Config) -> pd.DataFrame:
    """NEXIS and marginal Bonferroni at the main design on the candidate spaces of
    :data:`CEILING_SPACES`, for each note setting of :data:`NOTE_SETTINGS` (per setting, a
    whole-note autoencoder of the ceiling's size, :meth:`Config.dictionary`, and two per-mention
    ones, ``mention_dictionary`` and ``fine_mention_dictionary``, are trained on a corpus
    written that way). ``alignment`` is the neurons' mean best
    correlation with a modifier (NaN for the other spaces)."""
    rows = []
    for setting, (_, knobs) in NOTE_SETTINGS.items():
        notes = {**cfg.notes(), **knobs}
        reps = {"neurons": representation(cfg, dictionary="ceiling", **notes),
                "mention_neurons": representation(cfg, unit="mention", **notes),
                "mention_neurons_fine": representation(cfg, unit="mention",
                                                       dictionary="mention_fine", **notes)}
        for r, seed in enumerate(cfg.seeds):
            for row in run_trial(cfg, reps, n=cfg.n, effect=cfg.effect, seed=seed,
                                 spaces=list(CEILING_SPACES),
                                 methods=["nexis", "marginal_bonferroni"], **notes):
                rep = reps.get(row["space"])
                rows.append({**row, "setting": setting, "replicate": r,
                             "alignment": rep.readings["alignment_modifiers"] if rep
                             else np.nan})
    return pd.DataFrame(rows)


def ceiling_readings(table: pd.DataFrame, cfg: Config) -> dict[str, Any]:
    """The ceiling table (IoU mean ± s.e. per note setting and space), its numbers
    (``ceil_<setting>_<space>_<method>``), the target's verdict per setting and space
    (``ceil_target_<setting>_<space>``) and the neurons' alignment (``ceil_align_<setting>``;
    ``ceil_malign_`` and ``ceil_falign_`` for the per-mention neurons)."""
    n_latents, k, svd = cfg.dictionary("ceiling")
    out: dict[str, Any] = {"ceil_dictionary": f"{n_latents} neurons with k = {k} on "
                                              f"{svd} SVD dimensions",
                           "ceil_fine_neurons": cfg.fine_mention_dictionary[0],
                           "ceil_fine_k": cfg.fine_mention_dictionary[1]}
    cells = []
    for (setting, space), g in table.groupby(["setting", "space"], sort=False):
        s = summarise(g, ["iou"], by="method").set_index("method")
        row: dict[str, Any] = {"notes": NOTE_SETTINGS[setting][0],
                               "candidates": CEILING_SPACES[space]}
        for m in ("nexis", "marginal_bonferroni"):
            row[label(m)] = pm(s.loc[m, "iou_mean"], s.loc[m, "iou_se"], 2)
            out[f"ceil_{setting}_{space}_{m}"] = float(s.loc[m, "iou_mean"])
        verdict = target_met(s.loc["nexis", "iou_mean"], s.loc["marginal_bonferroni", "iou_mean"])
        row["target"] = verdict
        out[f"ceil_target_{setting}_{space}"] = verdict
        align = float(g.alignment.iloc[0])
        row["best neuron–modifier correlation"] = "–" if np.isnan(align) else f"{align:.2f}"
        cells.append(row)
    out["ceiling_table"] = pd.DataFrame(cells).set_index(["notes", "candidates"])
    for setting in NOTE_SETTINGS:
        for space, key in (("neurons", "ceil_align"), ("mention_neurons", "ceil_malign"),
                           ("mention_neurons_fine", "ceil_falign")):
            sub = table[(table.setting == setting) & (table.space == space)]
            if len(sub):
                out[f"{key}_{setting}"] = float(sub.alignment.iloc[0])
    return out


#: the note settings of the per-mention seed check (:func:`mention_seed_runs`)
SEED_SETTINGS: tuple[str, ...] = ("written", "faithful")


def mention_seed_runs(cfg: Config) -> pd.DataFrame:
    """NEXIS and marginal Bonferroni on per-mention neurons at the main design, for
    ``cfg.mention_seeds`` seeds of the autoencoder's training (``cfg.seed + s``; ``s = 0`` is
    the chapter's own autoencoder), with the notes as written and with faithful mentions
    (:data:`SEED_SETTINGS`): how much the grouping an autoencoder finds, and so the verdict,
    depends on its seed."""
    rows = []
    for setting in SEED_SETTINGS:
        notes = {**cfg.notes(), **NOTE_SETTINGS[setting][1]}
        for s in range(cfg.mention_seeds):
            rep = representation(cfg, unit="mention", sae_seed=cfg.seed + s, **notes)
            for r, seed in enumerate(cfg.seeds):
                for row in run_trial(cfg, {"mention_neurons": rep}, n=cfg.n, effect=cfg.effect,
                                     seed=seed, spaces=["mention_neurons"],
                                     methods=["nexis", "marginal_bonferroni"], **notes):
                    rows.append({**row, "setting": setting, "sae_seed": s, "replicate": r,
                                 "alignment": rep.readings["alignment_modifiers"]})
    return pd.DataFrame(rows)


def mention_seed_readings(table: pd.DataFrame) -> dict[str, Any]:
    """The seed table (IoU mean ± s.e. over trials per setting and seed, with the verdict),
    and per setting the smallest and largest NEXIS IoU over seeds (``mseed_<setting>_min``,
    ``_max``) and the number of seeds meeting the target (``mseed_<setting>_met``)."""
    out: dict[str, Any] = {"mseed_n": int(table.sae_seed.nunique())}
    cells = []
    for (setting, s), g in table.groupby(["setting", "sae_seed"], sort=False):
        m = summarise(g, ["iou"], by="method").set_index("method")
        verdict = target_met(m.loc["nexis", "iou_mean"], m.loc["marginal_bonferroni", "iou_mean"])
        cells.append({"notes": NOTE_SETTINGS[setting][0], "autoencoder seed": int(s),
                      "NEXIS": pm(m.loc["nexis", "iou_mean"], m.loc["nexis", "iou_se"], 2),
                      "marginal, Bonferroni": pm(m.loc["marginal_bonferroni", "iou_mean"],
                                                 m.loc["marginal_bonferroni", "iou_se"], 2),
                      "best neuron–modifier correlation": f"{g.alignment.iloc[0]:.2f}",
                      "target": verdict, "_nexis": float(m.loc["nexis", "iou_mean"])})
    df = pd.DataFrame(cells)
    for setting in SEED_SETTINGS:
        sub = df[df.notes == NOTE_SETTINGS[setting][0]]
        if len(sub):
            out[f"mseed_{setting}_min"] = float(sub._nexis.min())
            out[f"mseed_{setting}_max"] = float(sub._nexis.max())
            out[f"mseed_{setting}_met"] = int((sub.target == "met").sum())
    out["mention_seed_table"] = df.drop(columns="_nexis").set_index(["notes", "autoencoder seed"])
    return out


#: the representations compared at the main design: key -> (unit, embedding, name in prose)
COMPARISONS: dict[str, tuple[str, str, str]] = {
    "tfidf": ("note", "tfidf", "whole-note TF-IDF"),
    "minilm": ("note", "minilm", "whole-note MiniLM"),
    "mention_tfidf": ("mention", "tfidf", "per-mention TF-IDF"),
    "mention_minilm": ("mention", "minilm", "per-mention MiniLM"),
}


def comparisons(cfg: Config) -> list[str]:
    """The representations :func:`embedding_comparison` runs: TF-IDF of whole notes and of
    mentions always; MiniLM of mentions when it is the chapter's mention embedding or
    ``compare_minilm``; MiniLM of whole notes only with ``compare_minilm`` (minutes of CPU)."""
    keys = ["tfidf", "mention_tfidf"]
    if cfg.compare_minilm or cfg.mention_embedding == "minilm":
        keys.append("mention_minilm")
    if cfg.compare_minilm:
        keys.insert(1, "minilm")
    return keys


def embedding_comparison(cfg: Config) -> pd.DataFrame:
    """NEXIS and marginal Bonferroni at the main design, with the chapter's notes, on the
    neurons of each representation of :func:`comparisons` (whole-note autoencoders of the
    ceiling's size, per-mention ones of ``mention_dictionary``)."""
    rows = []
    for key in comparisons(cfg):
        unit, emb, _ = COMPARISONS[key]
        rep = representation(cfg, emb, dictionary="ceiling", unit=unit)
        for r, seed in enumerate(cfg.seeds):
            for row in run_trial(cfg, rep, n=cfg.n, effect=cfg.effect, seed=seed,
                                 spaces=["neurons"], methods=["nexis", "marginal_bonferroni"]):
                rows.append({**row, "embedding": key, "replicate": r,
                             "embedding_label": rep.readings["embedding"],
                             "alignment": rep.readings["alignment_modifiers"],
                             "sae_r2": rep.readings["sae_r2"]})
    return pd.DataFrame(rows)


def embedding_readings(table: pd.DataFrame, cfg: Config) -> dict[str, Any]:
    """The comparison table, ``emb_<key>_<method>``, ``emb_target_<key>`` and a sentence for
    the prose (``embedding_reading``), which says which representations did not run."""
    out: dict[str, Any] = {}
    cells = []
    for emb, g in table.groupby("embedding", sort=False):
        s = summarise(g, ["iou", "precision", "recall"], by="method").set_index("method")
        row: dict[str, Any] = {"representation": g.embedding_label.iloc[0]}
        for m in ("nexis", "marginal_bonferroni"):
            row[f"{label(m)}: IoU"] = pm(s.loc[m, "iou_mean"], s.loc[m, "iou_se"], 2)
            out[f"emb_{emb}_{m}"] = float(s.loc[m, "iou_mean"])
        row["NEXIS precision"] = f"{s.loc['nexis', 'precision_mean']:.2f}"
        row["NEXIS recall"] = f"{s.loc['nexis', 'recall_mean']:.2f}"
        row["best neuron–modifier correlation"] = f"{g.alignment.iloc[0]:.2f}"
        row["reconstruction R²"] = f"{g.sae_r2.iloc[0]:.2f}"
        verdict = target_met(s.loc["nexis", "iou_mean"], s.loc["marginal_bonferroni", "iou_mean"])
        row["target"] = verdict
        out[f"emb_target_{emb}"] = verdict
        cells.append(row)
    out["embedding_table"] = pd.DataFrame(cells).set_index("representation")
    words = [f"{COMPARISONS[e][2]} neurons give NEXIS {out[f'emb_{e}_nexis']:.2f} against "
             f"{out[f'emb_{e}_marginal_bonferroni']:.2f} for marginal tests (target "
             f"{out[f'emb_target_{e}']})" for e in COMPARISONS if f"emb_{e}_nexis" in out]
    missing = [COMPARISONS[e][2] for e in COMPARISONS if f"emb_{e}_nexis" not in out]
    out["embedding_reading"] = Md(
        f"With the notes as written, at the main design ({len(cfg.seeds)} trial(s)), "
        + "; ".join(words) + "."
        + (f" Not run at this profile: {' and '.join(missing)} (`compare_minilm = False`; "
           "embedding notes with a transformer costs minutes of CPU)." if missing else ""))
    return out


METRICS = {"iou": "IoU", "precision": "precision", "recall": "recall",
           "proxy_share": "proxy share", "n_columns": "columns selected"}


def main_table(results: pd.DataFrame, cfg: Config, space: str) -> pd.DataFrame:
    """Mean ± s.e. of the metrics at the main design (``cfg.n``, ``cfg.effect``)."""
    sub = results[(results.space == space) & (results.n == cfg.n)
                  & (results.effect == cfg.effect)]
    s = summarise(sub, list(METRICS), by="method").set_index("method")
    s = s.loc[[m for m in cfg.methods if m in s.index]]
    return metric_table(s, METRICS, digits=2, index=[label(m) for m in s.index])


def main_readings(results: pd.DataFrame, cfg: Config) -> dict[str, Any]:
    """The headline numbers: IoU of NEXIS and of marginal Bonferroni in each space."""
    # `replicates` is glued once, by the notebook's setup cell (a key glued twice fails the book)
    out: dict[str, Any] = {"n_main": cfg.n, "effect_main": cfg.effect}
    for space in SPACES:
        sub = results[(results.space == space) & (results.n == cfg.n)
                      & (results.effect == cfg.effect)]
        s = summarise(sub, ["iou", "proxy_share"], by="method").set_index("method")
        for m in ("nexis", "marginal_bonferroni"):
            if m in s.index:
                out[f"iou_{m}_{space}"] = Md(pm(s.loc[m, "iou_mean"], s.loc[m, "iou_se"], 2))
                out[f"iou_{m}_{space}_mean"] = float(s.loc[m, "iou_mean"])
                out[f"proxy_{m}_{space}"] = float(s.loc[m, "proxy_share_mean"])
        if {"nexis", "marginal_bonferroni"} <= set(s.index):
            out[f"target_{space}"] = target_met(s.loc["nexis", "iou_mean"],
                                                s.loc["marginal_bonferroni", "iou_mean"])
    for space in SPACES:
        out[f"main_table_{space}"] = main_table(results, cfg, space)
    return out


def sweep_figure(results: pd.DataFrame, cfg: Config, space: str = "neurons") -> Any:
    """IoU, precision and recall against n and against the effect size."""
    import matplotlib.pyplot as plt

    from ..plots import learner_palette, legend_right, mean_se_lines

    sub = results[results.space == space]
    panels = [("n", sub[sub.effect == cfg.effect]), ("effect", sub[sub.n == cfg.n])]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5), sharey=True)
    colours = learner_palette(list(METHODS.values()))
    for row, (x, data) in enumerate(panels):
        s = summarise(data, ["iou", "precision", "recall"], by=["method", x])
        for col, metric in enumerate(("iou", "precision", "recall")):
            ax = axes[row, col]
            mean_se_lines(ax, s, x, metric, cfg.methods, labels=METHODS, palette=colours,
                          by="method")
            ax.set_xlabel("participants n" if x == "n" else "effect size")
            ax.set_title(METRICS[metric])
            if x == "n":
                ax.set_xscale("log")
    legend_right(axes[0, -1])
    fig.suptitle(f"Recovery of the direct modifiers ({SPACE_LABELS.get(space, space)})")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Null, stale gate, runtime
# ---------------------------------------------------------------------------------------------


def null_runs(cfg: Config, rep: Reps) -> pd.DataFrame:
    """``cfg.null_seeds`` trials without modifiers (effect 0), individually and by cluster:
    every space of :data:`SPACES` with the homoskedastic test; the robust variances and the
    cluster-randomised trials on the whole-note neurons (``rep``: :func:`main_representations`)."""
    seeds = child_seeds(cfg.seed + 1, cfg.null_seeds)
    rows = []
    for s in seeds:
        rows += run_trial(cfg, rep, n=cfg.null_n, effect=0.0, seed=s, spaces=SPACES,
                          methods=[m for m in NULL_METHODS if m in cfg.methods])
        rows += run_trial(cfg, rep, n=cfg.null_n, effect=0.0, seed=s, spaces=("neurons",),
                          methods=["nexis", "marginal_bonferroni"], cov_types=("HC1", "HC2"))
        if cfg.null_clusters:
            rows += run_trial(cfg, rep, n=cfg.null_n, effect=0.0, seed=s, spaces=("neurons",),
                              methods=["nexis", "marginal_bonferroni"],
                              clusters=cfg.null_clusters,
                              cov_types=("nonrobust", "CR1S", "CR2"))
    return pd.DataFrame(rows)


def null_table(null: pd.DataFrame, alpha: float = 0.05) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Share of null trials selecting anything (FWER) with its binomial s.e., against alpha."""
    rows, readings = [], {}
    for (clusters, space, method, cov), g in null.groupby(
            ["clusters", "space", "method", "cov_type"], sort=False):
        p = float(g["any"].mean())
        R = len(g)
        se = float(np.sqrt(max(p * (1 - p), alpha * (1 - alpha)) / R))
        design = "individual" if clusters == 0 else f"{clusters} sites"
        ok = p <= alpha + 2 * se
        rows.append({"design": design, "space": SPACE_LABELS.get(space, space),
                     "method": label(method),
                     "variance": VARIANCE_LABELS.get(cov, cov), "trials": R,
                     "FWER": pm(p, np.sqrt(p * (1 - p) / R), 3),
                     "within α + 2 s.e.": "yes" if ok else "no"})
        key = f"fwer_{'ind' if clusters == 0 else 'cl'}_{space}_{method}_{cov}"
        readings[key] = p
    readings["null_trials"] = int(null.seed.nunique())
    R = readings["null_trials"]
    se = float(np.sqrt(alpha * (1 - alpha) / max(R, 1)))
    readings["fwer_bound"] = alpha + 2 * se

    def words(design: str, variances: Sequence[str]) -> list[str]:
        out = []
        for v in variances:
            p = readings.get(f"fwer_{design}_neurons_nexis_{v}")
            if p is not None:
                verdict = "within" if p <= alpha + 2 * se else "above"
                out.append(f"{p:.2f} with {VARIANCE_LABELS[v]} ({verdict} α + 2 s.e.)")
        return out

    ind, cl = words("ind", ("HC1", "HC2")), words("cl", ("nonrobust", "CR1S", "CR2"))
    text = []
    if ind:
        text.append("With individual randomisation and robust variances, the share of null "
                    "trials in which NEXIS selects a neuron is " + " and ".join(ind) + ".")
    if cl:
        text.append("Under cluster randomisation it is " + ", ".join(cl[:-1])
                    + (" and " if len(cl) > 1 else "") + cl[-1] + ".")
    readings["robust_reading"] = Md(" ".join(text) or "No robust null trials were run.")
    return pd.DataFrame(rows), readings


def gate_readings(results: pd.DataFrame) -> dict[str, Any]:
    """Where the released (stale) gate and the fixed gate select differently."""
    a = results[results.method == "nexis"].set_index(["space", "n", "effect", "seed"])
    b = results[results.method == "nexis_released"].set_index(["space", "n", "effect", "seed"])
    if a.empty or b.empty:
        return {"gate_runs": 0, "gate_differ": 0, "gate_iou_diff": Md("–")}
    b = b.loc[a.index]
    differ = [sa != sb for sa, sb in zip(a.selected, b.selected, strict=True)]
    paired = results[results.method.isin(["nexis", "nexis_released"])].assign(
        run=lambda d: d.space + d.n.astype(str) + d.effect.astype(str) + d.seed.astype(str))
    d, se = paired_difference(paired, "nexis", "nexis_released", "iou", by="run",
                              column="method")
    return {"gate_runs": len(a), "gate_differ": int(sum(differ)),
            "gate_iou_diff": Md(pm(d, se, 3))}


def runtime(cfg: Config, neurons: Sequence[int] | None = None, n: int | None = None,
            k: int = 16) -> pd.DataFrame:
    """Wall-clock seconds of NEXIS (and marginal tests) on SAE-like sparse neurons.

    Activations: each unit has ``k`` active neurons (exponential values), three of them modify
    the effect; the timing includes input checks and standardisation.
    """
    rows = []
    n = cfg.runtime_n if n is None else n
    for m in (cfg.runtime_neurons if neurons is None else neurons):
        rng = np.random.default_rng(m)
        Z = np.zeros((n, m))
        cols = rng.integers(0, m, size=(n, k))
        Z[np.arange(n)[:, None], cols] = rng.exponential(size=(n, k))
        T = rng.integers(0, 2, n)
        Y = Z[:, :3].sum(axis=1) + T * (Z[:, :3] @ np.array([1.0, -1.0, 0.8])) + rng.normal(size=n)
        for method in ("nexis", "marginal_bonferroni"):
            start = time.perf_counter()
            run_method(method, Y, T, Z, k=3, seed=0, n_estimators=10)
            rows.append({"neurons": m, "n": n, "method": label(method),
                         "seconds": time.perf_counter() - start})
    return pd.DataFrame(rows)


def runtime_figure(times: pd.DataFrame) -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for method, g in times.groupby("method", sort=False):
        ax.plot(g.neurons, g.seconds, marker="o", label=method)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("neurons (candidates)")
    ax.set_ylabel("seconds")
    ax.legend()
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# From modifiers to a policy
# ---------------------------------------------------------------------------------------------


@dataclass
class SelectedPolicies:
    """Two policies from selected columns ``Z_S``, learned on one sample.

    - OLS: ``Y ~ 1 + T + Z_S + T Z_S`` gives ``tau(z) = b_T + g' z_S``; treat where it is
      positive (``higher="better"``) or negative (``higher="worse"``).
    - A depth-2 policy tree (``econml.policy.PolicyTree``, Athey & Wager 2021) on ``Z_S``
      maximising the AIPW welfare: scores ``psi_i`` (:func:`ehrcausal.nuisance.aipw_scores`)
      with the OLS fit as outcome model and the sample's treated share as the (randomised)
      propensity; rewards ``[0, psi]`` (``[0, -psi]`` when higher is worse). Without selected
      columns the tree treats everyone or no one by the sign of the mean score.
    """

    seed: int = 0
    higher: str = "better"
    min_leaf: int = 20

    def fit(self, Y: np.ndarray, T: np.ndarray, ZS: np.ndarray) -> SelectedPolicies:
        from econml.policy import PolicyTree

        from ..nuisance import aipw_scores

        t = np.asarray(T, dtype=float)
        ZS = np.asarray(ZS, dtype=float).reshape(len(t), -1)
        X = np.column_stack([np.ones(len(t)), t, ZS, t[:, None] * ZS])
        self.beta_ = np.linalg.lstsq(X, Y, rcond=None)[0]
        q = ZS.shape[1]
        mu0 = self.beta_[0] + ZS @ self.beta_[2:2 + q]
        mu1 = mu0 + self.effect(ZS)
        psi = aipw_scores(Y, T, mu0, mu1, np.full(len(t), t.mean()))
        gain = psi if self.higher == "better" else -psi
        self.mean_gain_ = float(gain.mean())
        self.tree_ = None
        if q:
            self.tree_ = PolicyTree(max_depth=2, min_samples_leaf=self.min_leaf, honest=False,
                                    random_state=self.seed)
            self.tree_.fit(ZS, np.column_stack([np.zeros(len(t)), gain]))
        return self

    def effect(self, ZS: np.ndarray) -> np.ndarray:
        """The OLS effect estimate ``b_T + g' z_S``."""
        ZS = np.asarray(ZS, dtype=float).reshape(len(ZS), -1)
        q = ZS.shape[1]
        return self.beta_[1] + ZS @ self.beta_[2 + q:]

    def ols_treat(self, ZS: np.ndarray) -> np.ndarray:
        tau = self.effect(ZS)
        return tau > 0 if self.higher == "better" else tau < 0

    def tree_treat(self, ZS: np.ndarray) -> np.ndarray:
        ZS = np.asarray(ZS, dtype=float).reshape(len(ZS), -1)
        if self.tree_ is None:
            return np.full(len(ZS), self.mean_gain_ > 0)
        return self.tree_.predict(ZS).astype(int) == 1


def policy_values(cfg: Config, reps: Reps) -> tuple[pd.DataFrame, pd.DataFrame]:
    """True values of policies learned on half of each trial, on the other half.

    Policies: NEXIS neurons (treat where ``b_T + g' z_S > 0``, OLS on the learning half), a
    depth-2 policy tree on the NEXIS neurons (:class:`SelectedPolicies`), a causal forest on
    all neurons (treat where its effect estimate is positive), treat all, treat none, and the
    oracle (treat where the true effect is positive), on the whole-note neurons; and, when
    ``reps`` has a per-mention representation, the OLS rule of NEXIS on its neurons. Also
    returns the subgroup effects (HC1) of the whole-note neurons NEXIS selects on the first
    replicate.
    """
    rep = _rep_of(reps, "neurons")
    mention_rep = reps.get("mention_neurons") if isinstance(reps, dict) else None
    from econml.grf import CausalForest

    rows, groups = [], []
    for r, seed in enumerate(cfg.seeds):
        ds = cfg.trial(2 * cfg.n, cfg.effect, seed)
        Z = rep.neurons(ds.text)
        half = np.random.default_rng(seed).permutation(len(ds.Y)) < cfg.n
        learn, test = half, ~half
        keep_cols = distinct_columns(Z[learn])
        Z = Z[:, keep_cols]
        names = rep.labels.label.to_numpy(dtype=object)[keep_cols]
        res = nexis(ds.Y[learn], ds.T[learn], Z[learn])
        S = res.selected
        t = ds.T[learn].astype(float)
        rule = SelectedPolicies(seed=seed).fit(ds.Y[learn], ds.T[learn], Z[learn][:, S])
        tau_sel = rule.effect(Z[test][:, S])
        tree_treat = rule.tree_treat(Z[test][:, S])
        keep = np.count_nonzero(Z[learn], axis=0) >= 5
        forest = CausalForest(n_estimators=max(4, (cfg.n_estimators or 100) // 4 * 4),
                              min_samples_leaf=10, random_state=seed, n_jobs=1)
        forest.fit(Z[learn][:, keep], t, ds.Y[learn])
        tau_cf = forest.predict(Z[test][:, keep]).ravel()
        mu0, mu1, tau = ds.mu0[test], ds.mu1[test], ds.tau[test]
        extra: list[tuple[str, np.ndarray]] = []
        if mention_rep is not None:
            Zm = mention_rep.neurons(ds.text)
            Zm = Zm[:, distinct_columns(Zm[learn])]
            Sm = nexis(ds.Y[learn], ds.T[learn], Zm[learn]).selected
            rule_m = SelectedPolicies(seed=seed).fit(ds.Y[learn], ds.T[learn], Zm[learn][:, Sm])
            extra.append(("NEXIS per-mention neurons", rule_m.effect(Zm[test][:, Sm]) > 0))
        for name, treat in (("NEXIS neurons", tau_sel > 0), *extra,
                            ("NEXIS neurons, depth-2 tree", tree_treat),
                            ("causal forest, all neurons", tau_cf > 0),
                            ("treat all", np.ones_like(tau, bool)),
                            ("treat none", np.zeros_like(tau, bool)), ("oracle", tau > 0)):
            rows.append({"replicate": r, "policy": name,
                         "value": float(np.where(treat, mu1, mu0).mean()),
                         "treated": float(treat.mean())})
        if r == 0:
            for j in S:
                g = subgroup_effects(ds.Y, ds.T, Z[:, j])
                groups.append({
                    "neuron": int(keep_cols[j]), "label": names[j],
                    "active": int(g["active_n"]),
                    "effect if active": ci(g["active_effect"], g["active_effect"]
                                           - 1.96 * g["active_se"], g["active_effect"]
                                           + 1.96 * g["active_se"]),
                    "effect if inactive": ci(g["inactive_effect"], g["inactive_effect"]
                                             - 1.96 * g["inactive_se"], g["inactive_effect"]
                                             + 1.96 * g["inactive_se"]),
                })
    return pd.DataFrame(rows), pd.DataFrame(groups)


def policy_readings(values: pd.DataFrame) -> dict[str, Any]:
    s = summarise(values, ["value", "treated"], by="policy").set_index("policy")
    table = metric_table(s, {"value": "true value (higher is better)", "treated": "share treated"},
                         digits=3)
    out: dict[str, Any] = {"policy_table": table}
    d, se = paired_difference(values, "NEXIS neurons", "causal forest, all neurons", "value",
                              column="policy")
    out["policy_nexis_vs_forest"] = Md(pm(d, se, 3))
    d, se = paired_difference(values, "oracle", "NEXIS neurons", "value", column="policy")
    out["policy_regret_nexis"] = Md(pm(d, se, 3))
    if "NEXIS per-mention neurons" in set(values.policy):
        d, se = paired_difference(values, "NEXIS per-mention neurons", "NEXIS neurons", "value",
                                  column="policy")
        out["policy_mention_vs_note"] = Md(pm(d, se, 3))
    return out


# ---------------------------------------------------------------------------------------------
# The CDISC pilot
# ---------------------------------------------------------------------------------------------


def cdisc_search(ds: CausalDataset | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """NEXIS and marginal Bonferroni on the pilot's term indicators (homoskedastic, HC1, HC2)."""
    ds = load_cdisc_pilot() if ds is None else ds
    terms = ds.modalities["terms"]
    keep = distinct_columns(terms.to_numpy(dtype=float))
    Z = terms.to_numpy(dtype=float)[:, keep]
    names = np.asarray(terms.columns, dtype=object)[keep]
    rows = []
    for method in ("nexis", "marginal_bonferroni"):
        for cov in ("nonrobust", "HC1", "HC2"):
            cov_type, small = VARIANCES[cov]
            res = run_method(method, ds.Y, ds.T, Z, k=2, seed=0, n_estimators=10,
                             cov_type=cov_type, small_sample=small)
            p = res.pvalues[np.isfinite(res.pvalues)]
            rows.append({"method": label(method), "variance": VARIANCE_LABELS[cov],
                         "selected": ", ".join(names[res.selected]) or "none",
                         "smallest p": f"{p.min():.2g}",
                         "Bonferroni level": f"{0.05 / len(p):.2g}"})
    arms = pd.Series(ds.meta["arm"]).value_counts()
    readings = {
        "cdisc_n": len(ds.Y), "cdisc_treated": int(ds.T.sum()), "cdisc_terms": Z.shape[1],
        "cdisc_terms_mh": int(sum(str(c).startswith("mh:") for c in names)),
        "cdisc_arms": ", ".join(f"{k} {v}" for k, v in arms.items()),
        "cdisc_ate": float(ds.Y[ds.T == 1].mean() - ds.Y[ds.T == 0].mean()),
        "cdisc_text_example": Md("> " + ds.text[0]),
    }
    return pd.DataFrame(rows), readings


def cdisc_planted(cfg: Config, ds: CausalDataset | None = None) -> pd.DataFrame:
    """Recovery of two modifiers planted on the pilot's real terms (module docstring)."""
    ds = load_cdisc_pilot() if ds is None else ds
    terms = ds.modalities["terms"]
    keep = distinct_columns(terms.to_numpy(dtype=float))
    Z = terms.to_numpy(dtype=float)[:, keep]
    share = Z.mean(axis=0)
    pool = np.flatnonzero((share >= 0.15) & (share <= 0.5))
    rows = []
    sd = float(ds.Y.std())
    for s in child_seeds(cfg.seed + 2, cfg.cdisc_seeds):
        a, b = np.random.default_rng(s).choice(pool, size=2, replace=False)
        Y = ds.Y + cfg.cdisc_effect * sd * ds.T * (Z[:, a] - Z[:, b])
        for method in ("nexis", "marginal_bonferroni", "marginal_bh"):
            res = run_method(method, Y, ds.T, Z, k=2, seed=s, n_estimators=10)
            m = selection_metrics(res.selected, [a, b])
            rows.append({"seed": s, "method": method, **m})
    return pd.DataFrame(rows)


def cdisc_readings(planted: pd.DataFrame) -> dict[str, Any]:
    s = summarise(planted, ["iou", "precision", "recall"], by="method").set_index("method")
    table = metric_table(s, {"iou": "IoU", "precision": "precision", "recall": "recall"},
                         digits=2, index=[label(m) for m in s.index])
    return {"cdisc_planted_table": table, "cdisc_planted_seeds": int(planted.seed.nunique()),
            "cdisc_iou_nexis": Md(pm(s.loc["nexis", "iou_mean"], s.loc["nexis", "iou_se"], 2))}


def cdisc_policy(cfg: Config, ds: CausalDataset | None = None) -> pd.DataFrame:
    """Doubly robust values of policies learned from the pilot's terms (lower ADAS-Cog is better).

    Over ``min(cfg.cdisc_seeds, 20)`` random halvings, each half in turn learns (NEXIS on the
    term indicators, then :class:`SelectedPolicies` with ``higher="worse"``) and the other
    half evaluates: ``V = mean_i [pi_i G1_i + (1 - pi_i) G0_i]`` with ``G1 = m1 + T (Y - m1) /
    e``, ``G0 = m0 + (1 - T)(Y - m0) / (1 - e)``, ``m0, m1`` the arm means of the learning half
    and ``e`` the treated share of the evaluating half (randomised). ``V`` is the mean
    ADAS-Cog change if the policy were followed. One row per halving, half and policy.
    """
    ds = load_cdisc_pilot() if ds is None else ds
    terms = ds.modalities["terms"]
    Z_all = terms.to_numpy(dtype=float)
    Y, T = ds.Y, ds.T
    rows = []
    for s in child_seeds(cfg.seed + 3, min(cfg.cdisc_seeds, 20)):
        half = np.random.default_rng(s).permutation(len(Y)) < len(Y) // 2
        for part, (learn, ev) in enumerate(((half, ~half), (~half, half))):
            keep = distinct_columns(Z_all[learn])
            Z = Z_all[:, keep]
            res = nexis(Y[learn], T[learn], Z[learn])
            S = res.selected
            rule = SelectedPolicies(seed=s, higher="worse").fit(Y[learn], T[learn],
                                                                Z[learn][:, S])
            m1, m0 = Y[learn][T[learn] == 1].mean(), Y[learn][T[learn] == 0].mean()
            t, y = T[ev], Y[ev]
            e = t.mean()
            g1 = m1 + t * (y - m1) / e
            g0 = m0 + (1 - t) * (y - m0) / (1 - e)
            for name, treat in (("NEXIS terms", rule.ols_treat(Z[ev][:, S])),
                                ("NEXIS terms, depth-2 tree", rule.tree_treat(Z[ev][:, S])),
                                ("treat all", np.ones(ev.sum(), bool)),
                                ("treat none", np.zeros(ev.sum(), bool))):
                v = np.where(treat, g1, g0)
                rows.append({"seed": s, "part": part, "policy": name, "value": float(v.mean()),
                             "treated": float(treat.mean()), "selected": len(S),
                             "n_learn": int(learn.sum())})
    return pd.DataFrame(rows)


def cdisc_policy_readings(values: pd.DataFrame) -> dict[str, Any]:
    """Mean DR value and treated share per policy over halvings (the spread is not an s.e.:
    halvings of one sample are dependent)."""
    g = values.groupby("policy", sort=False)
    table = pd.DataFrame({
        "DR value: mean ADAS-Cog change (lower is better)": g.value.mean().map("{:.2f}".format),
        "spread over halvings (sd)": g.value.std().map("{:.2f}".format),
        "share treated": g.treated.mean().map("{:.2f}".format),
    })
    d = (values[values.policy == "NEXIS terms"].value.to_numpy()
         - values[values.policy == "treat all"].value.to_numpy())
    return {"cdisc_policy_table": table,
            "cdisc_policy_splits": int(values.seed.nunique()),
            "cdisc_policy_any_selected": float((values.selected > 0).mean()),
            "cdisc_policy_half": int(values.n_learn.min()),
            "cdisc_policy_nexis_minus_all": float(d.mean())}


__all__ = [
    "cdisc_search", "cdisc_planted", "cdisc_readings", "cdisc_policy", "cdisc_policy_readings",
    "SelectedPolicies",
    "Config", "METHODS", "NULL_METHODS", "SPACES", "VARIANCES", "VARIANCE_LABELS",
    "variance_kwargs", "Representation", "representation", "concept_alignment",
    "phrase_indicators", "CEILING_SPACES", "ceiling", "ceiling_readings",
    "label_table", "run_method", "candidates", "score", "run_trial", "sweep", "main_table",
    "main_readings", "sweep_figure", "null_runs", "null_table", "gate_readings", "runtime",
    "runtime_figure", "policy_values", "policy_readings", "mention_indicators",
    "NOTE_SETTINGS", "target_met", "embedding_comparison", "embedding_readings",
    "CACHE_VERSION", "PARTS", "config_key", "Part", "cached", "SPACE_LABELS", "UNITS",
    "MENTION_BATCH_SIZE", "MENTION_KINDS", "mention_kinds", "mention_readings",
    "main_representations", "COMPARISONS", "comparisons", "read_mentions", "SEED_SETTINGS",
    "DICTIONARIES",
    "mention_seed_runs", "mention_seed_readings",
]


# ---------------------------------------------------------------------------------------------
# The chapter's result cache
# ---------------------------------------------------------------------------------------------

#: bump when a part's output changes meaning without a change of the package's code
CACHE_VERSION = 3
#: the cached parts of the chapter, in the notebook's order
PARTS: tuple[str, ...] = ("representation", "sweep", "ceiling", "mention_seeds", "embeddings",
                          "null", "policy",
                          "cdisc_search", "cdisc_planted", "cdisc_policy")


def config_key(cfg: Config) -> dict[str, Any]:
    """Every knob of ``cfg`` that changes a result: all fields, the device as resolved."""
    from dataclasses import fields

    return {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name != "device"}


@dataclass(frozen=True)
class Part:
    """One cached part of the chapter (its name in :data:`PARTS`) under one configuration."""

    name: str
    cfg: Config = field(compare=False)

    def key(self) -> dict[str, Any]:
        """The cache key: chapter, part, version and every knob of the configuration (the
        store adds the package's version and a fingerprint of its code)."""
        return {"chapter": "nexis_text_trials", "part": self.name, "version": CACHE_VERSION,
                "config": config_key(self.cfg)}


def _json(value: Any) -> Any:
    """``value`` as JSON would give it back (numpy scalars as Python numbers), so a computed
    part and a cached one are the same objects."""
    import json

    def native(x: Any) -> Any:
        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, np.ndarray):
            return x.tolist()
        raise TypeError(f"cannot store {type(x).__name__} in the chapter cache")

    return json.loads(json.dumps(value, default=native))


def _frame(df: pd.DataFrame) -> dict[str, Any]:
    """A table as records, with the names of its index (None for a plain row number)."""
    named = any(name is not None for name in df.index.names)
    return {"index": list(df.index.names) if named else None,
            "records": (df.reset_index() if named else df).to_dict("records")}


def _unframe(stored: dict[str, Any]) -> pd.DataFrame:
    df = pd.DataFrame(stored["records"])
    return df.set_index(stored["index"]) if stored["index"] and len(df) else df


def _readings(values: dict[str, Any]) -> dict[str, Any]:
    """Readings with their kinds kept: Markdown, tables, plain values."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, Md):
            out[k] = {"md": str(v)}
        elif isinstance(v, pd.DataFrame):
            out[k] = {"frame": _frame(v)}
        else:
            out[k] = {"value": v}
    return out


def _unreadings(stored: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in stored.items():
        out[k] = (Md(v["md"]) if "md" in v else _unframe(v["frame"]) if "frame" in v
                  else v["value"])
    return out


def _compute_part(part: Part) -> Any:
    """Run one part (with one BLAS thread, warnings silenced) and return it in its stored
    (JSON) form."""
    import warnings

    from ..runtime import blas_threads

    cfg, name = part.cfg, part.name
    # one BLAS thread: the linear algebra here is many small products, and idle BLAS threads
    # spin (the smoke ceiling took 16 s of CPU with two threads and 4 s with one)
    with warnings.catch_warnings(), blas_threads(1):
        # a cached rerun shows no warning, so a fresh run must not either (nbval compares them)
        warnings.simplefilter("ignore")
        if name == "representation":
            rep = representation(cfg)
            mrep = representation(cfg, unit="mention")
            truth = cfg.trial(cfg.n, cfg.effect, cfg.seeds[0])
            mods, proxies = truth.meta["modifiers"], truth.meta["proxies"]
            out: Any = _readings({
                **rep.readings, "modifiers": ", ".join(mods), "proxies": ", ".join(proxies),
                "label_table": label_table(rep, mods, proxies),
                **{f"m_{k}": v for k, v in mrep.readings.items() if k != "note_example"},
                "m_label_table": label_table(mrep, mods, proxies)})
        elif name == "sweep":
            out = _frame(sweep(cfg, main_representations(cfg)))
        elif name == "ceiling":
            out = _frame(ceiling(cfg))
        elif name == "embeddings":
            out = _frame(embedding_comparison(cfg))
        elif name == "mention_seeds":
            out = _frame(mention_seed_runs(cfg))
        elif name == "null":
            out = _frame(null_runs(cfg, main_representations(cfg)))
        elif name == "policy":
            values, groups = policy_values(cfg, main_representations(cfg))
            out = {"values": _frame(values), "groups": _frame(groups)}
        elif name == "cdisc_search":
            table, readings = cdisc_search()
            out = {"table": _frame(table), "readings": _readings(readings)}
        elif name == "cdisc_planted":
            out = _frame(cdisc_planted(cfg))
        elif name == "cdisc_policy":
            out = _frame(cdisc_policy(cfg))
        else:
            raise ValueError(f"part must be one of {PARTS}, got {name!r}")
    return _json(out)


def cached(name: str, cfg: Config, cache_dir: Any = None) -> Any:
    """A part of the chapter (:data:`PARTS`), read from the result cache under ``cache_dir``
    when it holds it, else computed and stored (``cache_dir=None``: always computed).

    Returned as the notebook uses it: a DataFrame (``sweep``, ``ceiling``, ``mention_seeds``,
    ``embeddings``, ``null``, ``cdisc_planted``, ``cdisc_policy``), the glued readings
    (``representation``), a
    pair of DataFrames (``policy``: values and subgroups) or a table and its readings
    (``cdisc_search``). A computed part goes through the same JSON form as a stored one, so
    both give identical numbers.
    """
    # econml's estimators import dowhy, which turns on sympy's printing of numbers in IPython
    # (a PNG and a LaTeX form besides the text): a fresh run imports it when it fits a policy
    # tree, a cached one never would, so the glued outputs would differ. Import it always.
    import econml.policy  # noqa: F401

    from .base import run_cached

    if name not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {name!r}")
    stored = run_cached(_compute_part, [Part(name, cfg)], cache_dir=cache_dir,
                        namespace="nexis_text_trials", progress=False)[0]
    if name == "representation":
        return _unreadings(stored)
    if name == "policy":
        return _unframe(stored["values"]), _unframe(stored["groups"])
    if name == "cdisc_search":
        return _unframe(stored["table"]), _unreadings(stored["readings"])
    return _unframe(stored)
