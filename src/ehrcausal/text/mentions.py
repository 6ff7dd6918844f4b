r"""The mentions of a clinical note, embedded one by one and pooled per note.

A whole-note embedding mixes the eight or nine things a note states into one vector. Here a
note is first split into its *mentions*, the clauses a clinician writes one after another, by
punctuation that real notes have: a sentence ends at a full stop followed by a space (or at the
end of the note), a list item at a semicolon, and a section label at a colon followed by a
space. "Screening visit: 68-year-old man. History: no renal impairment; obese, BMI 24; history
of depression. Consented and enrolled." gives "Screening visit", "68-year-old man", "History",
"no renal impairment", "obese, BMI 24", "history of depression" and "Consented and enrolled".
Nothing else is assumed: not which section holds the history, nor any phrase list. Commas
stay inside a mention ("chronic heart failure, NYHA class II" is one finding), and a full stop
inside a number ("1.5 mg") does not end a sentence.

A mention that *opens* with a negation word (:data:`NEGATION_CUES`: "no gout", "not on
glucose-lowering drugs", "never smoked", "non-smoker") states an absence
(:func:`is_negated`). The cues are the commonest pre-negation triggers of NegEx (Chapman et al.
2001, *J Biomed Inform* 34:301-310) that can open a clause; the rule is generic English, not
read off any phrase list, and it misses negative findings written as normality ("thyroid
function normal").

:func:`split_notes` flattens the mentions of many notes with the index of the note each came
from; :class:`MentionEncoder` embeds each *distinct* mention string once per process
(all-MiniLM-L6-v2 through :func:`ehrcausal.text.embed`, so the vectors are also cached on disk,
or a TF-IDF + SVD fitted on the mentions of a corpus); :func:`max_pool` gives each note, per
feature, the largest value over its mentions:

.. math:: z_{ij} = \max_{m \in M(i)} a_{mj}, \qquad z_{ij} = 0 \text{ if } M(i) = \emptyset,

where :math:`M(i)` is the set of mentions of note :math:`i` and :math:`a_{mj} \ge 0` the
activation of feature :math:`j` on mention :math:`m` (a sparse autoencoder's neurons). A neuron
that reads one kind of mention is then, per note, the indicator (times its strength) that the
note contains such a mention, whichever other mentions it has.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from .embeddings import MINILM_BACKENDS, TfidfSVD, check_texts, embed

__all__ = ["MENTION_MODELS", "NEGATION_CUES", "split_mentions", "split_notes", "is_negated",
           "max_pool", "MentionEncoder"]

#: how :class:`MentionEncoder` embeds a mention
MENTION_MODELS: tuple[str, ...] = ("minilm", "tfidf")

#: words that make a mention a negation when it opens with one of them (module docstring)
NEGATION_CUES: frozenset[str] = frozenset(
    {"no", "not", "never", "non", "without", "denies", "denied", "negative"})
_FIRST_WORD = re.compile(r"[\s\-,;:.]+")

# a boundary: whitespace after a full stop, semicolon or colon; trailing punctuation is stripped
_BOUNDARY = re.compile(r"(?<=[.;:])\s+")
_SPACES = re.compile(r"\s+")


def split_mentions(note: str) -> list[str]:
    """The mentions of one note, in order (module docstring): the note is cut after every
    full stop, semicolon or colon that a space follows; each piece loses its trailing
    punctuation and surrounding spaces (inner runs of spaces become one); empty pieces go."""
    if not isinstance(note, str):
        raise ValueError(f"note must be a str, got {type(note).__name__}")
    out = []
    for piece in _BOUNDARY.split(note.strip()):
        text = _SPACES.sub(" ", piece).strip().rstrip(".;:").strip()
        if text:
            out.append(text)
    return out


def is_negated(mention: str) -> bool:
    """Whether ``mention`` opens with a negation word of :data:`NEGATION_CUES` (case-insensitive;
    a hyphen ends a word, so "non-smoker" opens with "non")."""
    if not isinstance(mention, str):
        raise ValueError(f"mention must be a str, got {type(mention).__name__}")
    words = _FIRST_WORD.split(mention.strip().lower(), maxsplit=1)
    return words[0] in NEGATION_CUES


def split_notes(notes: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """All mentions of ``notes``, flattened in order, and the index of the note of each (a
    non-decreasing int array; a note without mentions contributes none)."""
    notes = check_texts(notes, "notes")
    per = [split_mentions(t) for t in notes]
    owners = np.repeat(np.arange(len(notes)), [len(p) for p in per])
    return [m for p in per for m in p], owners


def max_pool(values: Any, owners: Any, n: int) -> np.ndarray:
    """Per note, the largest value of each column over its mentions (0 for a note without
    mentions): ``values`` (n_mentions, d), non-negative; ``owners`` the note index of each row
    (any order), in ``[0, n)``."""
    V = np.asarray(values, dtype=float)
    own = np.asarray(owners)
    if V.ndim != 2 or own.ndim != 1 or len(own) != len(V):
        raise ValueError(f"values must be 2-d with one row per owner; got shapes {V.shape} and "
                         f"{own.shape}")
    if len(V) and (V.min() < 0 or not np.isfinite(V).all()):
        raise ValueError("values must be finite and non-negative (activations)")
    if len(own) and (own.min() < 0 or own.max() >= n):
        raise ValueError(f"owners must lie in [0, {n}), got {own.min()}..{own.max()}")
    out = np.zeros((n, V.shape[1]))
    if len(own):
        order = np.argsort(own, kind="stable")
        own, V = own[order], V[order]
        starts = np.flatnonzero(np.r_[True, own[1:] != own[:-1]])
        out[own[starts]] = np.maximum.reduceat(V, starts, axis=0)
    return out


class MentionEncoder:
    """Embeds mention strings, each distinct string once per encoder.

    ``model="minilm"``: all-MiniLM-L6-v2 (:func:`ehrcausal.text.embed`, ``backend``,
    ``device``); the strings not seen before are embedded together, in sorted order, so a
    rerun makes the same requests and reads them from :func:`embed`'s disk cache. (A string's
    vector can differ in the last float digits with the strings it is batched with, as with
    any change of batch size: 2e-7 at most on a sample of 400 mentions.) ``model="tfidf"``: a
    :class:`~ehrcausal.text.TfidfSVD` (``n_components``, ``random_state``) fitted by
    :meth:`fit` on a corpus's mentions. ``transform`` returns one unit-norm row per input
    string, in order.
    """

    def __init__(self, model: str = "minilm", *, backend: str = "torch", device: str = "cpu",
                 n_components: int = 64, random_state: int = 0,
                 cache_dir: Any = None) -> None:
        if model not in MENTION_MODELS:
            raise ValueError(f"model must be one of {MENTION_MODELS}, got {model!r}")
        if backend not in MINILM_BACKENDS:
            raise ValueError(f"backend must be one of {list(MINILM_BACKENDS)}, got {backend!r}")
        self.model = model
        self.backend = backend
        self.device = device
        self.n_components = n_components
        self.random_state = random_state
        self.cache_dir = cache_dir
        self.tfidf_: TfidfSVD | None = None
        self.memo_: dict[str, np.ndarray] = {}
        self.n_embedded_ = 0

    def fit(self, mentions: Sequence[str]) -> MentionEncoder:
        """Fit the TF-IDF + SVD on ``mentions`` (every occurrence counts); MiniLM has nothing to
        fit. Returns self."""
        mentions = check_texts(mentions, "mentions")
        if self.model == "tfidf":
            self.tfidf_ = TfidfSVD(n_components=self.n_components,
                                   random_state=self.random_state).fit(mentions)
            self.memo_ = {}
        return self

    def transform(self, mentions: Sequence[str]) -> np.ndarray:
        """One row per mention, in order; each distinct string is embedded once."""
        mentions = check_texts(mentions, "mentions")
        if self.model == "tfidf" and self.tfidf_ is None:
            raise ValueError("fit the TF-IDF mention encoder before transform")
        new = sorted({m for m in mentions if m not in self.memo_})
        if new:
            if self.model == "minilm":
                E = embed(new, "minilm", backend=self.backend, device=self.device,
                          cache_dir=self.cache_dir, progress=False)
            else:
                assert self.tfidf_ is not None
                E = self.tfidf_.transform(new)
            self.memo_.update(zip(new, np.asarray(E, dtype=np.float32), strict=True))
            self.n_embedded_ += len(new)
        return np.stack([self.memo_[m] for m in mentions])
