"""How much of each annotated fact can be read back from the note.

In the annotation-supervised setting (Arno & Demeester 2025) the confounders reach a model only
through the clinical note; the expert annotations are the structured facts the note was written
from. Whether a learner on note representations can adjust for a confounder depends on whether
the note still carries it: a negated, hedged, abbreviated or omitted symptom may be unrecoverable.
:func:`fact_recoverability` measures this with a deliberately simple, strong text classifier.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..runtime import check_seed
from ..validation import check_int, check_number
from .embeddings import check_texts

__all__ = ["fact_recoverability"]


def _binary_labels(col: pd.Series, name: object) -> np.ndarray:
    """Values of a 0/1 (or boolean) column without its missing rows, as ints."""
    try:
        y = np.asarray(col, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"facts column {name!r} is not binary (values must be 0/1 or booleans): {exc}"
        ) from exc
    bad = ~np.isin(y, (0.0, 1.0))
    if bad.any():
        shown = ", ".join(f"{v:g}" for v in np.unique(y[bad])[:5])
        raise ValueError(
            f"facts column {name!r} is not binary: found values {{{shown}}} besides 0/1; "
            "one-hot encode multi-level facts (pandas.get_dummies) first"
        )
    return y.astype(int)


def fact_recoverability(
    texts: Sequence[str],
    facts: pd.DataFrame,
    *,
    n_splits: int = 5,
    random_state: int = 0,
    C: float = 10.0,
) -> pd.DataFrame:
    """Cross-validated ROC AUC of predicting each binary fact from the note text.

    For every column f of ``facts`` (rows where f is missing are dropped for that column), a
    pipeline of TF-IDF (word 1-2 grams, sublinear tf ``1 + log tf``) and L2-penalised logistic
    regression, ``P(f = 1 | note) = sigmoid(w' tfidf(note) + b)`` with loss
    ``C sum_i logloss_i + ||w||^2 / 2``, is scored by stratified ``n_splits``-fold
    cross-validation (folds shuffled with ``random_state``); ``auc`` is the mean of the per-fold
    ROC AUCs (Hanley & McNeil 1982).

    What it measures: AUC near 1 means the note states the fact in words a bag of n-grams can
    read (it is recoverable, and a representation of the note can in principle adjust for it);
    AUC near 0.5 means the fact is invisible in the text (omitted, or phrased so that it cannot
    be told apart). Why: in the annotation-supervised causal setting the confounders reach the
    effect model only through the note, so a fact with low AUC is a confounder that no text
    representation can adjust for; this bounds what the text-only learners can achieve. A
    linear bag-of-n-grams classifier is a lower bound on recoverability (a stronger reader may
    do better, e.g. with negations that span more than two words).

    Parameters
    ----------
    texts : n notes.
    facts : DataFrame with n rows (aligned by position) of binary facts: 0/1 or booleans,
        NaN where unannotated.
    n_splits : number of cross-validation folds (at least 2).
    random_state : seed of the fold shuffling (and of the classifier).
    C : inverse L2 penalty. The default is weaker than scikit-learn's C = 1 because the question
        is whether the note carries the fact at all, and a strong penalty on thousands of sparse
        n-gram features understates that on a few hundred notes.

    Returns
    -------
    DataFrame with one row per column of ``facts``: ``fact`` (the column name), ``auc``
    (NaN when the column has a single class or a class with fewer than ``n_splits`` members),
    ``prevalence`` (share of 1s among annotated rows) and ``n`` (annotated rows).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline

    texts = check_texts(texts)
    if not isinstance(facts, pd.DataFrame):
        raise ValueError(f"facts must be a pandas DataFrame, got {type(facts).__name__}")
    if len(facts) != len(texts):
        raise ValueError(f"texts has {len(texts)} notes but facts has {len(facts)} rows")
    if facts.shape[1] == 0:
        raise ValueError("facts has no columns")
    if facts.columns.has_duplicates:
        dup = list(facts.columns[facts.columns.duplicated()].unique())
        raise ValueError(f"facts has duplicate column names {dup[:5]}")
    n_splits = check_int(n_splits, "n_splits", 2)
    C = check_number(C, "C", 0.0, np.inf, low_open=True, high_open=True)
    seed = check_seed(random_state)

    rows = []
    for name in facts.columns:
        col = facts[name].reset_index(drop=True)
        keep = col.notna().to_numpy()
        y = _binary_labels(col[keep], name)
        n = int(keep.sum())
        prevalence = float(y.mean()) if n else float("nan")
        auc = float("nan")
        if n and min(int(y.sum()), n - int(y.sum())) >= n_splits:
            docs = [t for t, k in zip(texts, keep, strict=True) if k]
            pipe = make_pipeline(
                TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                LogisticRegression(C=C, max_iter=1000, random_state=seed),
            )
            cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
            auc = float(np.mean(cross_val_score(pipe, docs, y, cv=cv, scoring="roc_auc")))
        rows.append({"fact": name, "auc": auc, "prevalence": prevalence, "n": n})
    return pd.DataFrame(rows, columns=["fact", "auc", "prevalence", "n"])
