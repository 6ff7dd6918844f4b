"""Multitask learners for many clinical tasks from several modalities (the ``multitask`` family).

M3H (Bertsimas & Ma 2024, *M3H: Multimodal Multitask Machine Learning for Healthcare*, arXiv
2404.18975) learns binary, multiclass, regression and clustering tasks at once from tabular,
time-series, language and vision inputs, with a *task attention* that balances a task's own
signal (self-exploitation) against the other tasks' (cross-exploration). No code is public and
the paper's abstract does not give the layer's equations: the network below is **our
interpretation** of the public description (per-task queries from task embeddings, keys and
values from the shared representation, an identity term for the source task).

The protocol of the family (not the CATE protocol: there is no treatment)::

    est = make("m3h", random_state=0, epochs=50)
    est.fit(modalities, targets, tasks=tasks)     # returns self
    est.predict(modalities)                       # DataFrame: class / value / cluster per task
    est.predict_scores(modalities)                # task -> probabilities or values
    est.task_losses(modalities, targets)          # held-out loss per task

``modalities`` maps some of ``"tabular"`` (DataFrame), ``"timeseries"``
(:class:`~ehrcausal.data.multimodal.IrregularSeries`), ``"text"`` (notes, None where missing)
and ``"image"`` (array (n, 64, 64), NaN where missing) to row-aligned data; ``targets`` has a
column per task (NaN where a label is missing); ``tasks`` has ``name`` and ``problem_class``
(``binary``, ``multiclass``, ``regression``, ``clustering``) and optionally ``n_classes``.

**The network** (:class:`M3HNet`; hidden width ``h``):

1. one encoder per modality, each ending in a linear layer (a ReLU at the end would zero part
   of every embedding before the modalities are averaged): an MLP on the standardised tabular
   row (missing values set to the training mean); a 1-D CNN over the time series binned in
   4-hour bins (mean value and observed-mask channels), averaged over bins, then a linear
   layer; a linear layer on the note's TF-IDF/SVD representation
   (:class:`~ehrcausal.text.TfidfSVD`, fitted on the training notes); a small CNN on the image
   (2 x 2 average pooling done once, a 4 x 4 patch convolution with stride 4, a 3 x 3
   convolution with stride 2, a linear layer);
2. fusion: ``f_i = sum_m a_im (e_im + p_m) / sum_m a_im`` with ``a_im`` = 1 when patient
   ``i`` has modality ``m`` (a missing modality is masked, never imputed into the mean) and
   ``p_m`` a learned modality embedding, then a residual block ``h_i = f_i + MLP(f_i)`` (one
   hidden ReLU layer). The residual form keeps every direction of ``f`` available to the
   heads; a plain ``ReLU(W f)`` lost a quarter of its units (never positive) and with them
   task-specific signals, e.g. single laboratory markers;
3. task tokens: ``x_it = ReLU(W_x h_i + E_t)`` with ``E_t`` the embedding of task ``t``;
4. task attention: ``q_t = W_q E_t``, ``k_ij = W_k x_ij``, ``v_ij = W_v x_ij``,
   ``A_itj = softmax_j(q_t' k_ij / sqrt(h))`` and the balanced weights
   ``A'_it. = beta_t e_t + (1 - beta_t) A_it.`` (``e_t`` the unit vector of the source task);
   ``o_it = sum_j A'_itj v_ij``. ``beta`` is the ``balance`` parameter: 1 is pure
   self-exploitation, 0 pure cross-exploration; ``balance="learned"`` learns
   ``beta_t = sigmoid(theta_t)`` per task (initialised at 1/2). ``attention_scale`` ``c``
   multiplies the logits (``softmax_j(c q_t' k_ij / sqrt(h))``, an inverse temperature; 1 by
   default) and ``attention_decay=False`` leaves ``W_q`` and ``W_k`` out of the weight decay
   (with it, they get no gradient that resists the decay when no task gains by choosing
   another's token, and shrink until the weights are uniform). ``token_maps="per_task"``
   gives each task its own token map, ``x_it = ReLU(W_x^(t) h_i + b_t + E_t)`` (drawn after
   every other parameter, so the default network is unchanged): with one shared ``W_x`` the
   tokens differ only by ``E_t`` and hold much the same content;
5. one linear head per task on ``o_it``: a logit (binary, binary cross-entropy), ``C`` logits
   (multiclass, cross-entropy) or a value (regression, squared error on the standardised
   target). The training loss is the mean over tasks of ``w_t`` times each task's mean loss
   over its labelled rows (missing labels masked); ``task_weighting="equal"`` sets ``w_t = 1``,
   ``"normalised"`` sets ``w_t = 1 / L0_t`` with ``L0_t`` the loss of the constant prediction
   on the training labels (the label entropy for a class task, 1 for a standardised target), so
   that every task starts at loss 1.
6. the per-task linear skip (``skip=True``, the default): each head's output gets
   ``+ S_t' s_i``, with ``s_i`` the inputs read linearly -- the standardised tabular row, the
   bin averages of the time-series channels and observed-masks, and the note's TF-IDF/SVD
   vector, each zero where the modality is missing -- and ``S_t`` a per-task matrix that
   starts at zero (weight decay as the rest). Why: one shared representation of width ``h``
   has to carry every task's private marker; a diagnosis read from one laboratory value lost
   AUC through it against one network per task (the M3H chapter measures M3H with and
   without the skip against the same single-task baseline). The skip gives each task a
   direct linear path to its own marker, while everything nonlinear and everything shared
   (encoders, fusion, attention) stays the M3H network's. The single-task networks have the
   same skip, so the comparison stays one architecture against itself.

7. with ``cluster_loss="dec"``, the clustering task is a head on the shared
   representation trained by a clustering loss, that of DEC (Xie, Girshick & Farhadi 2016,
   *Unsupervised deep embedding for clustering analysis*, ICML, Section 3.1, eqs. 1-3):
   learned centres
   ``mu_1..mu_k`` (``k`` clusters), the soft assignment ``q_ik = (1 + ||h_i - mu_k||^2)^-1 /
   sum_j (1 + ||h_i - mu_j||^2)^-1`` (a Student t kernel with one degree of freedom), the
   target ``p_ik = (q_ik^2 / f_k) / sum_j (q_ij^2 / f_j)`` with ``f_k = sum_i q_ik``, and the
   loss ``KL(P || Q) = (1/n) sum_i sum_k p_ik log(p_ik / q_ik)`` with ``P`` held fixed
   (:func:`dec_assignments`, :func:`dec_target`, :func:`dec_loss`). Its gradient reaches the
   centres and, through ``h``, the encoders and the fusion every head reads. Choices, fixed
   before any result: the target ``P`` is recomputed on every mini-batch from that batch's
   ``Q`` (``f_k`` over the batch, where DEC's eq. 3 sums it over every row), so the loss needs
   no state beyond the centres; the centres start at those of k-means (``n_init=4``, seeded)
   on ``h`` of the training rows of the untrained network (DEC starts from the embedding of a
   pretrained stacked autoencoder, its Section 3.2; here the supervised tasks shape ``h``
   while the loss acts, and the single-task network below has nothing to pretrain on); the
   clustering term is one
   more task in the training loss's mean over tasks, with weight 1 under both
   ``task_weighting`` options, and in the validation loss early stopping reads (with
   ``early_stopping="per_task"`` the centres and ``h`` of the clustering term's own best
   epoch give its read-out). A patient's cluster is ``argmax_k q_ik`` (DEC's read-out: the
   head the loss trains, as a binary head's prediction is its probability). The clustering
   labels are never read in training or in the read-out (only their count ``k``).
   **Not the default**, because the loss has a degenerate minimum the network reaches: ``P``
   is computed from ``Q``, and a uniform ``Q`` (every patient equally near every centre)
   gives ``P = Q`` and a loss of zero, as does a one-hot ``Q``; the encoders can get there by
   moving ``h``, and our networks have no pretrained embedding to start from (and the
   single-task one no other loss holding ``h`` in place). In the M3H
   chapter's default run, without reading any label, the fitted heads put most held-out
   patients in one cluster (the chapter glues the share) and the single-task network trained
   on the loss alone stopped at its first epochs. The chapter reports the loss beside the
   default with both read-outs.

Early stopping (``early_stopping``): ``"joint"`` keeps the weights of the epoch with the lowest
validation loss (the same weighted mean over tasks); ``"per_task"`` keeps, for each task, the
weights of the epoch with that task's lowest validation loss, predicts each task with its own
weights, and stops after ``patience`` epochs in which no task improved (the single-task
learner gets this per task by construction).

The clustering task without the loss (``cluster_loss="none"``, the default; and a second
read-out the M3H chapter reports beside ``argmax q``): after training, a rule reads what the
heads read: the shared
representation ``h_i`` and the inputs read linearly ``s_i`` (item 6; also when
``skip=False``). Each of the two blocks is standardised column by column, reduced to its
leading ``k - 1`` principal components and scaled to total variance 1; the clusters minimise
the within-cluster sum of squares of the concatenation, ``[P_h h_i / c_h, P_s s_i / c_s]``,
by k-means (Lloyd's algorithm, k-means++ starts, seeded), everything fitted on the training
rows; a patient's cluster is the nearest centre (:class:`BlockClusters`). Why ``k - 1``
components: the centres of ``k`` clusters span at most ``k - 1`` directions, and the
continuous relaxation of k-means is solved by the leading ``k - 1`` principal components
(Ding & He 2004, *K-means clustering via principal component analysis*, ICML, doi
10.1145/1015330.1015408), so each block enters through the subspace where k-means acts on it,
with equal weight. Why both blocks: ``h`` carries what the supervised tasks taught the
network, which holds the phenotype only when the tasks share its causes; the inputs carry it
whatever the tasks. Rules measured before this one was chosen (NMI against the phenotype on
held-out rows of the chapter's default cohorts, two replicates per knob level; the labels
were used to measure, never inside the rule): ``h`` alone; ``[h, s]`` with every column
standardised, or with each block scaled to equal total variance (``h``'s few strong
directions dominated both); the leading ``2 (k - 1)`` components per block (lower than
``k - 1``). The weighting is fixed, not chosen on the phenotype labels.

Variants: ``m3h_no_attention`` (hard parameter sharing: every head reads ``h_i``),
``single_task`` (the same network with one task, one network per task; for the clustering task,
M3H's rule on what a network trained on one task alone has: the block ``s`` alone; with the
clustering loss, the same network trained on that loss alone and read the same way, ``argmax
q``; either way the phenotype's gain measures what the supervised tasks add to ``h``; with
``side_by_side=True``, the default, the per-task networks are trained
together as one stacked module: their parameters are stacked and their forward passes
vectorised (``torch.func``), they see the same mini-batches, the training loss is the *sum* of
their own losses, so no parameter is shared and each network's gradient is that of its own
loss, and each is kept at its own best validation epoch; training runs until no network has
improved for ``patience`` epochs, so a network may train longer than it would alone, never on
another task's loss) and ``haim_gbt`` (HAIM, Soenksen et al. 2022: gradient-boosted trees per task on the
concatenated per-modality features of :func:`~ehrcausal.data.multimodal.summary_features`;
LightGBM here, where HAIM used XGBoost with 200 trees of depth 5 and learning rate 0.3).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ..data.multimodal import IMAGE_SIZE, MODALITIES, PROBLEM_CLASSES, IrregularSeries
from ..data.multimodal import summary_features as modality_summary
from ..runtime import check_seed, child_seeds, resolve_device
from ..validation import check_int, check_number
from .base import store_params
from .registry import register
from .torch_scaffold import Standardiser, check_torch_params, predict_chunked, train_network

__all__ = [
    "TaskSpec",
    "check_tasks",
    "check_modalities",
    "MultiTaskLearner",
    "M3HNet",
    "M3H",
    "SingleTask",
    "HAIMGBT",
    "BlockClusters",
    "linear_inputs",
    "dec_assignments",
    "dec_target",
    "dec_loss",
    "CLUSTER_LOSSES",
    "task_interdependence",
    "tim_targets",
    "scarce_labels",
    "SOURCE_PREFIX",
    "spearman_offdiagonal",
]

N_BINS = 12
#: whether the networks have the per-task linear skip from the inputs by default
SKIP_DEFAULT = True
#: the clustering task's training loss: DEC's (module docstring, item 7) or none (the rule only)
CLUSTER_LOSSES = ("dec", "none")


# ---------------------------------------------------------------------------------------------
# Checking the inputs
# ---------------------------------------------------------------------------------------------


class TaskSpec:
    """One task: its name, problem class and number of classes (0 for regression)."""

    def __init__(self, name: str, problem_class: str, n_classes: int) -> None:
        self.name, self.problem_class, self.n_classes = name, problem_class, n_classes

    @property
    def out_dim(self) -> int:
        return {"binary": 1, "multiclass": self.n_classes, "regression": 1}.get(
            self.problem_class, 0)

    def __repr__(self) -> str:
        return f"TaskSpec({self.name!r}, {self.problem_class!r}, {self.n_classes})"


def check_tasks(tasks: Any, Y: Any) -> tuple[list[TaskSpec], pd.DataFrame]:
    """The task specifications and the targets (a float DataFrame, one column per task).

    ``ValueError`` for: ``tasks`` without ``name`` / ``problem_class``; an unknown problem class;
    a task without a column in ``Y``; a task with no label; labels outside a class task's
    classes (binary 0/1; multiclass and clustering 0..C-1) or non-finite regression targets.
    """
    if not isinstance(tasks, pd.DataFrame) or not {"name", "problem_class"} <= set(tasks):
        raise ValueError("tasks must be a DataFrame with columns 'name' and 'problem_class'")
    if len(tasks) == 0:
        raise ValueError("tasks is empty: give at least one task")
    if tasks["name"].duplicated().any():
        raise ValueError(f"task names must be unique, got {list(tasks['name'])}")
    if not isinstance(Y, pd.DataFrame):
        raise ValueError(f"Y must be a DataFrame of targets (one column per task), got "
                         f"{type(Y).__name__}")
    specs = []
    for _, row in tasks.iterrows():
        name, cls = str(row["name"]), row["problem_class"]
        if cls not in PROBLEM_CLASSES:
            raise ValueError(f"task {name!r} has unknown problem class {cls!r}; allowed: "
                             f"{PROBLEM_CLASSES}")
        if name not in Y.columns:
            raise ValueError(f"task {name!r} has no column in Y")
        try:
            y = np.asarray(Y[name], dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"targets of task {name!r} must be numeric (NaN where missing)"
                             ) from exc
        obs = y[np.isfinite(y)]
        if len(obs) == 0:
            raise ValueError(f"task {name!r} has no labels (every target is missing)")
        if np.isinf(y).any():
            raise ValueError(f"targets of task {name!r} must be finite or NaN")
        if cls == "binary":
            k = 2
            if not np.isin(obs, (0.0, 1.0)).all():
                raise ValueError(f"binary task {name!r} needs labels 0/1")
        elif cls in ("multiclass", "clustering"):
            given = row.get("n_classes", np.nan) if "n_classes" in tasks else np.nan
            k = int(given) if np.isfinite(given) and given > 0 else int(obs.max()) + 1
            if (obs != np.round(obs)).any() or obs.min() < 0 or obs.max() >= k:
                raise ValueError(f"{cls} task {name!r} needs integer labels in 0..{k - 1}")
            if cls == "multiclass" and k < 3:
                raise ValueError(f"multiclass task {name!r} needs at least 3 classes, got {k}")
        else:
            k = 0
        specs.append(TaskSpec(name, cls, k))
    return specs, Y[[s.name for s in specs]].astype(float).reset_index(drop=True)


def check_modalities(X: Any, n: int | None = None) -> dict[str, Any]:
    """The modalities as a dict, after checking their names, lengths and image shape.

    ``ValueError`` for: not a mapping, no known modality, an unknown name, lengths that
    disagree (with each other or with ``n``), images not of shape (n, 64, 64), and a patient
    with every modality missing (the error names the first such rows).
    """
    if not isinstance(X, Mapping):
        raise ValueError(f"X must be a mapping of modality name to data, got {type(X).__name__}")
    unknown = sorted(set(X) - set(MODALITIES))
    if unknown:
        raise ValueError(f"unknown modality {unknown}; allowed: {MODALITIES}")
    if not X:
        raise ValueError(f"X has no modality; give at least one of {MODALITIES}")
    mods = {m: X[m] for m in MODALITIES if m in X}
    lengths = {m: len(v) for m, v in mods.items()}
    if n is not None:
        lengths["targets"] = n
    if len(set(lengths.values())) != 1:
        raise ValueError(f"modalities and targets must have the same rows, got {lengths}")
    if "image" in mods:
        img = np.asarray(mods["image"], dtype=np.float32)
        if img.ndim != 3 or img.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"image must have shape (n, {IMAGE_SIZE}, {IMAGE_SIZE}) (one "
                             f"single-channel picture per patient), got {img.shape}")
        mods["image"] = img
    if "tabular" in mods:
        mods["tabular"] = pd.DataFrame(mods["tabular"]).reset_index(drop=True)
    if "timeseries" in mods and not isinstance(mods["timeseries"], IrregularSeries):
        raise ValueError("timeseries must be an IrregularSeries (values and hours arrays)")
    avail = availability(mods)
    empty = np.flatnonzero(~avail.any(axis=1))
    if len(empty):
        raise ValueError(f"patient(s) at rows {empty[:5].tolist()} have every modality missing; "
                         "drop them or give at least one modality")
    return mods


def availability(mods: Mapping[str, Any]) -> np.ndarray:
    """Boolean (n, 4): which of :data:`MODALITIES` each patient has (absent key: none)."""
    n = len(next(iter(mods.values())))
    out = np.zeros((n, len(MODALITIES)), dtype=bool)
    for j, m in enumerate(MODALITIES):
        if m not in mods:
            continue
        v = mods[m]
        if m == "tabular":
            out[:, j] = np.isfinite(v.to_numpy(dtype=float)).any(axis=1)
        elif m == "timeseries":
            out[:, j] = v.observed()
        elif m == "text":
            out[:, j] = np.array([t is not None and str(t).strip() != "" for t in v])
        else:
            out[:, j] = np.isfinite(v).all(axis=(1, 2))
    return out


# ---------------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------------


class M3HNet(nn.Module):
    """Encoders, masked fusion, task tokens, task attention and per-task heads (module doc)."""

    def __init__(self, dims: Mapping[str, int], hidden: int, out_dims: Sequence[int],
                 attention: bool, balance: float | str, skip: bool = False,
                 attention_scale: float = 1.0, token_maps: str = "shared",
                 clusters: Sequence[int] = ()) -> None:
        super().__init__()
        h = hidden
        self.dims = dict(dims)
        enc: dict[str, nn.Module] = {}
        if "tabular" in dims:
            enc["tabular"] = nn.Sequential(nn.Linear(dims["tabular"], h), nn.ReLU(),
                                           nn.Linear(h, h))
        if "timeseries" in dims:
            enc["timeseries"] = nn.Sequential(
                nn.Conv1d(dims["timeseries"], h, 3, padding=1), nn.ReLU(),
                nn.Conv1d(h, h, 3, padding=1), nn.ReLU())
            self.ts_out = nn.Linear(h, h)
        if "text" in dims:
            enc["text"] = nn.Linear(dims["text"], h)
        if "image" in dims:
            enc["image"] = nn.Sequential(
                nn.Conv2d(1, 8, 4, stride=4), nn.ReLU(),
                nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                nn.Linear(256, h))
        self.encoders = nn.ModuleDict(enc)
        self.modality_emb = nn.Parameter(torch.zeros(len(MODALITIES), h))
        self.fuse = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Linear(h, h))
        T = len(out_dims)
        self.out_dims = list(out_dims)
        width = max(max(out_dims), 1)
        self.attention = attention
        self.attention_scale = float(attention_scale)
        self.task_emb = nn.Parameter(0.1 * torch.randn(T, h))
        self.tok = nn.Linear(h, h)
        self.Wq, self.Wk, self.Wv = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.learn_balance = balance == "learned"
        init = 0.0 if self.learn_balance else math.log(max(float(balance), 1e-6)
                                                          / max(1 - float(balance), 1e-6))
        self.balance_logit = nn.Parameter(torch.full((T,), init),
                                          requires_grad=self.learn_balance)
        self.fixed_balance = None if self.learn_balance else float(balance)
        self.head_w = nn.Parameter(torch.randn(T, h, width) / math.sqrt(h))
        self.head_b = nn.Parameter(torch.zeros(T, width))
        # the per-task linear skip from the inputs (module docstring), zero at the start
        self.skip_w = (nn.Parameter(torch.zeros(T, skip_width(dims), width)) if skip
                       else None)
        # per-task token maps (drawn last, so that a network without them is unchanged)
        self.tok_w = self.tok_b = None
        if token_maps == "per_task":
            bound = 1 / math.sqrt(h)
            self.tok_w = nn.Parameter(torch.empty(T, h, h).uniform_(-bound, bound))
            self.tok_b = nn.Parameter(torch.empty(T, h).uniform_(-bound, bound))
        # the centres of each clustering task's loss (module docstring, item 7), set by
        # k-means on h before training (:func:`init_centres`); none without the loss
        self.centres = nn.ParameterList([nn.Parameter(torch.zeros(k, h)) for k in clusters])

    def skip_inputs(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(batch, d): the inputs of the linear skip (:func:`linear_inputs`)."""
        return linear_inputs(batch, self.dims)

    def outputs(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``out`` (batch, T, width), the shared representation ``h`` and, with attention,
        the attention weights ``A`` (batch, T, T)."""
        hs = self.shared(batch)
        out, A = self.task_outputs(hs)
        if self.skip_w is not None:
            out = out + torch.einsum("bd,tdw->btw", self.skip_inputs(batch), self.skip_w)
        res = {"out": out, "h": hs}
        if A is not None:
            res["A"] = A
        for c, mu in enumerate(self.centres):
            res[f"q{c}"] = dec_assignments(hs, mu)
        return res

    def shared(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The fused representation ``h`` (batch, hidden)."""
        avail = batch["avail"]
        total = 0.0
        for j, m in enumerate(MODALITIES):
            if m not in self.encoders:
                continue
            if m == "timeseries":
                e = self.ts_out(self.encoders[m](batch[m].transpose(1, 2)).mean(dim=2))
            elif m == "image":
                e = self.encoders[m](batch[m].unsqueeze(1))
            else:
                e = self.encoders[m](batch[m])
            total = total + avail[:, j : j + 1] * (e + self.modality_emb[j])
        fused = total / avail.sum(dim=1, keepdim=True).clamp(min=1.0)
        return fused + self.fuse(fused)

    def beta(self) -> torch.Tensor:
        """The self-exploitation weight of each task (T,)."""
        if self.fixed_balance is not None:
            return torch.full_like(self.balance_logit, self.fixed_balance)
        return torch.sigmoid(self.balance_logit)

    def task_outputs(self, hs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-task head outputs (batch, T, width) and attention weights (batch, T, T)."""
        if not self.attention:
            z = hs.unsqueeze(1).expand(-1, len(self.out_dims), -1)
            A = None
        else:
            if self.tok_w is None:
                x = F.relu(self.tok(hs).unsqueeze(1) + self.task_emb.unsqueeze(0))  # (B, T, h)
            else:
                x = F.relu(torch.einsum("bh,tkh->btk", hs, self.tok_w) + self.tok_b
                           + self.task_emb)
            q = self.Wq(self.task_emb)  # (T, h)
            k, v = self.Wk(x), self.Wv(x)
            A = torch.softmax(torch.einsum("th,bjh->btj", q, k) * (
                self.attention_scale / math.sqrt(q.shape[1])), dim=2)
            b = self.beta().view(1, -1, 1)
            eye = torch.eye(len(self.out_dims), device=hs.device).unsqueeze(0)
            z = torch.einsum("btj,bjh->bth", b * eye + (1 - b) * A, v)
        out = torch.einsum("bth,thw->btw", z, self.head_w) + self.head_b
        return out, A

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.outputs(batch)["out"]


def linear_inputs(batch: Mapping[str, torch.Tensor], dims: Mapping[str, int]) -> torch.Tensor:
    """(batch, d): the inputs a network reads linearly -- the standardised tabular row, the bin
    averages of the time-series channels and masks, and the note's TF-IDF/SVD vector, each zero
    where the modality is missing (those of the modalities in ``dims``; no columns when only
    the image is given). The linear skip's inputs and the block ``s`` of the clustering rule."""
    avail = batch["avail"]
    parts = [torch.zeros((len(avail), 0), dtype=avail.dtype, device=avail.device)]
    for j, m in enumerate(MODALITIES):
        if m not in dims or m == "image":
            continue
        x = batch[m].mean(dim=1) if m == "timeseries" else batch[m]
        parts.append(avail[:, j : j + 1] * x)
    return torch.cat(parts, dim=1)


def skip_width(dims: Mapping[str, int]) -> int:
    """Width of :func:`linear_inputs` for the encoder input widths ``dims``."""
    return sum(d for m, d in dims.items() if m != "image")


def dec_assignments(h: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """DEC's soft assignment (Xie, Girshick & Farhadi 2016, eq. 1): ``q_ik = (1 + ||h_i -
    mu_k||^2)^-1 / sum_j (1 + ||h_i - mu_j||^2)^-1``, a Student t kernel with one degree of
    freedom. ``h`` (rows, d), ``centres`` (k, d); returns (rows, k), each row summing to 1."""
    kernel = 1.0 / (1.0 + torch.cdist(h, centres).pow(2))
    return kernel / kernel.sum(dim=1, keepdim=True)


def dec_target(q: torch.Tensor) -> torch.Tensor:
    """DEC's target distribution (eq. 3): ``p_ik = (q_ik^2 / f_k) / sum_j (q_ij^2 / f_j)`` with
    ``f_k = sum_i q_ik`` the soft frequency of cluster ``k`` over the rows of ``q``. Squaring
    sharpens each row towards its confident assignment; dividing by ``f_k`` keeps a large
    cluster from absorbing the others. Computed without gradient (the target is held fixed)."""
    with torch.no_grad():
        w = q.pow(2) / q.sum(dim=0, keepdim=True).clamp(min=1e-12)
        return w / w.sum(dim=1, keepdim=True)


def dec_loss(q: torch.Tensor) -> torch.Tensor:
    """The clustering loss of the soft assignments ``q`` (rows, k): ``KL(P || Q)`` with ``P =``
    :func:`dec_target` ``(q)`` held fixed, as a mean over rows, ``(1/n) sum_i sum_k p_ik log(p_ik
    / q_ik)`` (DEC, eq. 2, which sums over rows; the mean puts it on the scale of the other
    tasks' per-row losses)."""
    p = dec_target(q)
    return (p * (torch.log(p.clamp(min=1e-12)) - torch.log(q.clamp(min=1e-12)))).sum(
        dim=1).mean()


class _Ensemble(nn.Module):
    """M networks of one architecture trained side by side: their parameters are stacked
    (one tensor per parameter name, ``torch.func.stack_module_state``) and the M forward passes
    run as one vectorised call (``vmap(functional_call)``) on the same mini-batch. Member ``m``
    of ``S`` task slots fills the output columns ``m S .. m S + S - 1`` of (batch, M S, width).

    The members share no parameter, so the gradient of a sum of the members' losses with
    respect to member ``m``'s parameters is the gradient of member ``m``'s loss, and Adam
    (element-wise) updates each member as it would alone; every member starts from the state of
    ``net``.
    """

    def __init__(self, net: M3HNet, members: int) -> None:
        super().__init__()
        import copy

        self.members, self.slots = members, len(net.out_dims)
        self.names = [k for k, _ in net.named_parameters()]
        self.stacked = nn.ParameterList([
            nn.Parameter(p.detach().unsqueeze(0).repeat(members, *([1] * p.dim())).clone(),
                         requires_grad=p.requires_grad) for _, p in net.named_parameters()])
        self.__dict__["base"] = copy.deepcopy(net).to("meta")  # not a submodule: no state

    def member_params(self, m: int) -> dict[str, torch.Tensor]:
        """Member ``m``'s parameters by name (views of the stacked tensors)."""
        return {k: p[m] for k, p in zip(self.names, self.stacked, strict=True)}

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        from torch.func import functional_call, vmap

        def one(params: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> torch.Tensor:
            return functional_call(self.base, params, (b,))

        params = dict(zip(self.names, self.stacked, strict=True))
        out = vmap(one, in_dims=(0, None))(params, dict(batch))  # (M, B, S, width)
        return out.transpose(0, 1).reshape(out.shape[1], -1, out.shape[3])

    def outputs(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"out": self(batch)}


class _LossPlan:
    """Index tensors that let the per-task losses be computed in a few vectorised operations."""

    def __init__(self, specs: Sequence[TaskSpec], device: str) -> None:
        def idx(cls: str) -> torch.Tensor:
            return torch.as_tensor([t for t, s in enumerate(specs) if s.problem_class == cls],
                                   dtype=torch.long, device=device)

        self.binary, self.regression = idx("binary"), idx("regression")
        self.multiclass = [(t, s.n_classes) for t, s in enumerate(specs)
                           if s.problem_class == "multiclass"]
        self.n_tasks = len(specs)

    def terms(self, out: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean loss over the labelled rows of each task (T,); NaN where a task has none."""
        total = out.new_zeros(self.n_tasks)
        count = mask.sum(dim=0).to(out.dtype)
        m = mask.to(out.dtype)
        if len(self.binary):
            b = self.binary
            bce = F.binary_cross_entropy_with_logits(out[:, b, 0], y[:, b], reduction="none")
            total = total.index_add(0, b, (bce * m[:, b]).sum(dim=0))
        if len(self.regression):
            r = self.regression
            se = (out[:, r, 0] - y[:, r]) ** 2
            total = total.index_add(0, r, (se * m[:, r]).sum(dim=0))
        for t, k in self.multiclass:
            ce = F.cross_entropy(out[:, t, :k], y[:, t].long().clamp(0, k - 1), reduction="none")
            total = total.index_add(0, torch.tensor([t], device=out.device),
                                    (ce * m[:, t]).sum().view(1))
        return torch.where(count > 0, total / count.clamp(min=1.0),
                           torch.full_like(total, float("nan")))


# ---------------------------------------------------------------------------------------------
# The family's protocol
# ---------------------------------------------------------------------------------------------


class MultiTaskLearner(BaseEstimator):
    """Base of the ``multitask`` family: checks, fitted state, predictions and losses."""

    fit_inputs: tuple[str, ...] = ()

    def fit(self, X: Mapping[str, Any], Y: pd.DataFrame, *, tasks: pd.DataFrame,
            **fit_params: Any) -> MultiTaskLearner:
        """Fit every task of ``tasks`` on the modalities ``X`` and the targets ``Y``."""
        if hasattr(self, "fitted_"):
            del self.fitted_
        unknown = sorted(set(fit_params) - set(self.fit_inputs))
        if unknown:
            raise ValueError(f"unexpected fit argument(s) {unknown}; {type(self).__name__} "
                             f"accepts {list(self.fit_inputs) or 'none'}")
        specs, y = check_tasks(tasks, Y)
        mods = check_modalities(X, len(y))
        self.tasks_ = specs
        self.modalities_ = tuple(mods)
        self._fit(mods, y, specs, **fit_params)
        self.fitted_ = True
        return self

    def _check_X(self, X: Any) -> dict[str, Any]:
        check_is_fitted(self, "fitted_")
        mods = check_modalities(X)
        if set(mods) != set(self.modalities_):
            raise ValueError(f"X has modalities {sorted(mods)} but the learner was fitted on "
                             f"{sorted(self.modalities_)}")
        return mods

    def predict_scores(self, X: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Task -> P(y=1) (binary, (n,)), class probabilities ((n, C)), predicted value
        (regression) or cluster index (clustering)."""
        return self._scores(self._check_X(X))

    def predict(self, X: Mapping[str, Any]) -> pd.DataFrame:
        """One column per task: predicted class (binary at 1/2), value or cluster."""
        scores = self.predict_scores(X)
        out = {}
        for s in self.tasks_:
            v = scores[s.name]
            if s.problem_class == "binary":
                out[s.name] = (v >= 0.5).astype(int)
            elif s.problem_class == "multiclass":
                out[s.name] = v.argmax(axis=1)
            else:
                out[s.name] = v
        return pd.DataFrame(out)

    def task_losses(self, X: Mapping[str, Any], Y: pd.DataFrame) -> pd.Series:
        """Mean loss of each supervised task over the labelled rows of ``Y``: binary
        cross-entropy, cross-entropy, or squared error of the target standardised with the
        training moments (so that tasks are on one scale)."""
        scores = self.predict_scores(X)
        out = {}
        for s in self.tasks_:
            if s.problem_class == "clustering":
                continue
            y = np.asarray(Y[s.name], dtype=float)
            m = np.isfinite(y)
            p = scores[s.name][m]
            if s.problem_class == "binary":
                p = np.clip(p, 1e-7, 1 - 1e-7)
                out[s.name] = float(-np.mean(y[m] * np.log(p) + (1 - y[m]) * np.log(1 - p)))
            elif s.problem_class == "multiclass":
                pk = np.clip(p[np.arange(m.sum()), y[m].astype(int)], 1e-7, 1)
                out[s.name] = float(-np.mean(np.log(pk)))
            else:
                mu, sd = self.target_scale_[s.name]
                out[s.name] = float(np.mean(((y[m] - p[:]) / sd) ** 2))
        return pd.Series(out)

    def _target_scales(self, y: pd.DataFrame, rows: np.ndarray) -> None:
        self.target_scale_ = {}
        for s in self.tasks_:
            if s.problem_class == "regression":
                v = y[s.name].to_numpy()[rows]
                v = v[np.isfinite(v)]
                self.target_scale_[s.name] = (float(v.mean()), float(v.std()) or 1.0)

    # to implement
    def _fit(self, mods: dict[str, Any], y: pd.DataFrame, specs: list[TaskSpec],
             **fit_params: Any) -> None:
        raise NotImplementedError

    def _scores(self, mods: dict[str, Any]) -> dict[str, np.ndarray]:
        raise NotImplementedError


def _val_rows(n: int, val_fraction: float, seed: int, val_mask: Any) -> tuple[np.ndarray,
                                                                                np.ndarray]:
    if val_mask is not None:
        mask = np.asarray(val_mask)
        if mask.dtype != bool or mask.shape != (n,):
            raise ValueError(f"val_mask must be a boolean array of length {n}, got dtype "
                             f"{mask.dtype} and shape {mask.shape}")
    else:
        mask = np.zeros(n, dtype=bool)
        k = int(round(val_fraction * n))
        mask[np.random.default_rng(seed).choice(n, size=k, replace=False)] = True
    tr, va = np.flatnonzero(~mask), np.flatnonzero(mask)
    if len(tr) == 0:
        raise ValueError("the training part is empty; use a smaller validation part")
    return tr, va


class _Inputs:
    """Turns modalities into network tensors, with the scalings fitted on the training rows."""

    def __init__(self, mods: Mapping[str, Any], rows: np.ndarray, seed: int) -> None:
        from ..text.embeddings import TfidfSVD

        self.dims: dict[str, int] = {}
        if "tabular" in mods:
            tab = mods["tabular"].to_numpy(dtype=float)
            self.columns = list(mods["tabular"].columns)
            fill = np.nanmean(tab[rows], axis=0)
            self.tab_fill = np.where(np.isfinite(fill), fill, 0.0)
            self.tab_scale = Standardiser.fit(self._fill(tab), rows)
            self.dims["tabular"] = tab.shape[1]
        if "timeseries" in mods:
            ts = mods["timeseries"]
            v = ts.values[rows]
            with np.errstate(invalid="ignore"):
                mean = np.nanmean(v, axis=(0, 2)) if np.isfinite(v).any() else np.zeros(
                    v.shape[1])
                sd = np.nanstd(v, axis=(0, 2)) if np.isfinite(v).any() else np.ones(v.shape[1])
            self.ts_mean = np.nan_to_num(mean)
            self.ts_sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
            self.dims["timeseries"] = 2 * v.shape[1]
        if "text" in mods:
            notes = [mods["text"][i] for i in rows.tolist()]
            notes = [t for t in notes if t is not None and str(t).strip()]
            self.text = None
            if len(notes) >= 10:
                k = min(32, len(notes) - 1)
                try:
                    self.text = TfidfSVD(n_components=k, min_df=2, random_state=seed).fit(notes)
                except ValueError:
                    self.text = None
            self.dims["text"] = self.text.n_features_out_ if self.text is not None else 1
        if "image" in mods:
            self.dims["image"] = IMAGE_SIZE

    def _fill(self, tab: np.ndarray) -> np.ndarray:
        return np.where(np.isfinite(tab), tab, self.tab_fill)

    def tensors(self, mods: Mapping[str, Any], device: str) -> dict[str, torch.Tensor]:
        n = len(next(iter(mods.values())))
        out = {"avail": availability(mods).astype(np.float32)}
        if "tabular" in self.dims:
            tab = mods["tabular"][self.columns].to_numpy(dtype=float)
            out["tabular"] = self.tab_scale.transform(self._fill(tab)).astype(np.float32)
        if "timeseries" in self.dims:
            ts = mods["timeseries"]
            scaled = replace(ts, values=(ts.values - self.ts_mean[None, :, None])
                             / self.ts_sd[None, :, None])
            out["timeseries"] = scaled.binned(N_BINS).astype(np.float32)
        if "text" in self.dims:
            Z = np.zeros((n, self.dims["text"]), dtype=np.float32)
            has = [i for i, t in enumerate(mods["text"]) if t is not None and str(t).strip()]
            if self.text is not None and has:
                Z[has] = self.text.transform([mods["text"][i] for i in has])
            out["text"] = Z
        if "image" in self.dims:
            img = np.nan_to_num(np.asarray(mods["image"], dtype=np.float32), nan=0.0)
            out["image"] = img.reshape(n, IMAGE_SIZE // 2, 2, IMAGE_SIZE // 2, 2).mean(axis=(2, 4))
        return {k: torch.as_tensor(v, device=device) for k, v in out.items()}


def _task_weights(specs: Sequence[TaskSpec], Y: np.ndarray) -> np.ndarray:
    """``1 / L0_t``: the inverse of each task's loss under the constant prediction of its
    training labels (entropy of the label frequencies for binary and multiclass tasks; 1 for a
    standardised regression target), so that every task starts at loss 1."""
    out = np.ones(len(specs))
    for j, s in enumerate(specs):
        y = Y[:, j][np.isfinite(Y[:, j])]
        if s.problem_class == "regression" or len(y) == 0:
            continue
        k = 2 if s.problem_class == "binary" else s.n_classes
        f = np.bincount(y.astype(int), minlength=k) / len(y)
        f = f[f > 0]
        out[j] = 1.0 / max(float(-(f * np.log(f)).sum()), 0.05)
    return out


#: the spec of a task slot without labels (a member of :class:`_Ensemble` learning one task)
_NO_LABEL = TaskSpec("", "binary", 2)


class _TaskCheckpoints:
    """Early stopping per task: the weights at each task's best validation loss.

    Called on every epoch's validation pass with the per-task losses; keeps, for each task,
    the state of the epoch where its validation loss was lowest. The monitored value returned
    to the training loop is the sum of the per-task best losses so far, which falls whenever
    any task improves, so training stops after ``patience`` epochs in which no task improved.
    """

    def __init__(self, n_tasks: int) -> None:
        self.best = np.full(n_tasks, np.inf)
        self.epoch_of = np.full(n_tasks, -1)
        self.saved: dict[int, dict[str, torch.Tensor]] = {}
        self.epoch = -1

    def update(self, net: nn.Module, terms: torch.Tensor) -> torch.Tensor:
        self.epoch += 1
        v = terms.cpu().numpy().astype(float)
        better = np.isfinite(v) & (v < self.best - 1e-7)
        if better.any():
            self.best[better] = v[better]
            self.epoch_of[better] = self.epoch
            self.saved[self.epoch] = {k: t.detach().clone() for k, t in net.state_dict().items()}
            live = set(self.epoch_of.tolist())
            self.saved = {e: st for e, st in self.saved.items() if e in live}
        finite = self.best[np.isfinite(self.best)]
        return torch.tensor(float(finite.sum()) if len(finite) else float("nan"))

    def states(self) -> list[tuple[dict[str, torch.Tensor], np.ndarray]]:
        """(state, task indices) for every epoch that is some task's best."""
        return [(st, np.flatnonzero(self.epoch_of == e)) for e, st in sorted(self.saved.items())]


def _kmeans(Z: np.ndarray, k: int, seed: int) -> Any:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=4, random_state=seed).fit(Z)


class BlockClusters:
    """k-means on blocks of features, each entering through its leading ``k - 1`` principal
    components with total variance 1 (the module docstring: M3H's clustering task).

    ``fit(blocks)`` takes the training rows of each block (arrays with one row per patient;
    blocks without columns are skipped); per block ``b``: columns standardised with the
    training moments (a constant column is centred only), the leading ``q_b = min(k - 1, d_b,
    n - 1)`` principal components ``P_b``, divided by ``c_b``, the square root of their total
    variance on the training rows (1 where it is 0). The features are ``[P_1 x_1 / c_1, ...]``
    and the clusters those of k-means (``n_init=4``, seeded) on the training rows.
    ``predict(blocks)`` gives each row's nearest centre.
    """

    def __init__(self, k: int, seed: int) -> None:
        self.k = check_int(k, "k", 2)
        self.seed = check_seed(seed)

    def fit(self, blocks: Sequence[np.ndarray]) -> BlockClusters:
        from sklearn.decomposition import PCA

        blocks = self._check(blocks)
        n = len(blocks[0])
        if n < self.k:
            raise ValueError(f"BlockClusters needs at least k={self.k} rows, got {n}")
        self.parts_: list[tuple[int, np.ndarray, np.ndarray, Any, float]] = []
        for j, B in enumerate(blocks):
            if B.shape[1] == 0:
                continue
            mu, sd = B.mean(axis=0), B.std(axis=0)
            sd = np.where(sd > 0, sd, 1.0)
            Z = (B - mu) / sd
            q = min(self.k - 1, B.shape[1], n - 1)
            pca = PCA(n_components=q, svd_solver="full").fit(Z)
            P = pca.transform(Z)
            scale = float(np.sqrt(P.var(axis=0).sum())) or 1.0
            self.parts_.append((j, mu, sd, pca, scale))
        if not self.parts_:
            raise ValueError("BlockClusters needs at least one block with columns")
        self.n_blocks_ = len(blocks)
        self.km_ = _kmeans(self.transform(blocks), self.k, self.seed)
        return self

    def transform(self, blocks: Sequence[np.ndarray]) -> np.ndarray:
        """The concatenated, scaled principal components (rows, sum of ``q_b``)."""
        blocks = self._check(blocks)
        if len(blocks) != self.n_blocks_:
            raise ValueError(f"blocks: expected {self.n_blocks_} blocks, got {len(blocks)}")
        return np.column_stack([pca.transform((blocks[j] - mu) / sd) / scale
                                for j, mu, sd, pca, scale in self.parts_])

    def predict(self, blocks: Sequence[np.ndarray]) -> np.ndarray:
        """The cluster of each row (0..k-1), as floats like the other tasks' predictions."""
        return self.km_.predict(self.transform(blocks)).astype(float)

    @staticmethod
    def _check(blocks: Sequence[np.ndarray]) -> list[np.ndarray]:
        out = [np.asarray(B, dtype=float) for B in blocks]
        if not out or any(B.ndim != 2 for B in out):
            raise ValueError("blocks must be a non-empty sequence of 2-d arrays (rows, columns)")
        if len({len(B) for B in out}) != 1:
            raise ValueError(f"blocks must have the same rows, got {[len(B) for B in out]}")
        if any(not np.isfinite(B).all() for B in out):
            raise ValueError("blocks must be finite")
        return out


def _check_cluster_loss(value: Any) -> str:
    if not isinstance(value, str) or value not in CLUSTER_LOSSES:
        raise ValueError(f"cluster_loss must be one of {CLUSTER_LOSSES}, got {value!r}")
    return value


def _init_centres(net: M3HNet, data: Mapping[str, torch.Tensor], rows: np.ndarray,
                  seed: int) -> None:
    """Set each clustering loss's centres to those of k-means (``n_init=4``, ``seed``) on the
    shared representation ``h`` of the training ``rows`` of the untrained network ``net``."""
    keys = [k for k in data if k not in ("y", "ymask")]
    idx = torch.as_tensor(rows, device=data["avail"].device)
    with torch.no_grad():
        H = torch.cat([net.shared({k: data[k][idx[i : i + 1024]] for k in keys})
                       for i in range(0, len(idx), 1024)]).cpu().numpy().astype(float)
    for mu in net.centres:
        km = _kmeans(H, len(mu), seed)
        with torch.no_grad():
            mu.copy_(torch.as_tensor(km.cluster_centers_, dtype=mu.dtype))


class _DecReadout:
    """A clustering task trained by the clustering loss: its ``index`` among the network's
    soft assignments (``q<index>``) and its ``k`` clusters; a patient's cluster is the argmax
    of ``q``."""

    def __init__(self, index: int, k: int) -> None:
        self.index, self.k = index, k


class M3H(MultiTaskLearner):
    """M3H as interpreted in the module docstring; ``attention=False`` is hard sharing.

    Parameters: ``hidden`` width; ``attention`` (task attention or hard sharing); ``balance``
    (self-exploitation weight beta in [0, 1], or ``"learned"``); ``skip`` (the per-task linear
    skip from the inputs, item 6 of the module docstring); ``attention_scale`` and
    ``attention_decay`` (the attention's logit scale and whether its query and key maps get
    weight decay, item 4); ``token_maps`` (``"shared"`` or ``"per_task"``, item 4);
    ``task_weighting``
    (``"equal"`` or ``"normalised"``), ``early_stopping`` (``"joint"`` or ``"per_task"``) and
    ``cluster_loss`` (``"dec"`` or ``"none"``, item 7), see the module docstring; the training
    parameters of
    :func:`~ehrcausal.learners.torch_scaffold.check_torch_params`; ``random_state``;
    ``device``. ``fit`` takes ``val_mask`` (boolean, True for the early-stopping rows).
    """

    fit_inputs = ("val_mask",)

    def __init__(self, hidden: int = 32, attention: bool = True, balance: float | str = 0.5,
                 skip: bool = SKIP_DEFAULT, task_weighting: str = "equal",
                 early_stopping: str = "joint", attention_scale: float = 1.0,
                 attention_decay: bool = True, token_maps: str = "shared",
                 cluster_loss: str = "none", epochs: int = 60,
                 batch_size: int = 128, lr: float = 3e-3, weight_decay: float = 1e-4, patience: int = 10,
                 val_fraction: float = 0.2, random_state: int = 0, device: str = "auto") -> None:
        store_params(self, locals())

    def _check_options(self) -> None:
        if self.task_weighting not in ("equal", "normalised"):
            raise ValueError(f"task_weighting must be 'equal' or 'normalised', got "
                             f"{self.task_weighting!r}")
        if self.early_stopping not in ("joint", "per_task"):
            raise ValueError(f"early_stopping must be 'joint' or 'per_task', got "
                             f"{self.early_stopping!r}")
        if not isinstance(self.skip, (bool, np.bool_)):
            raise ValueError(f"skip must be True or False, got {self.skip!r}")
        if not isinstance(self.attention_decay, (bool, np.bool_)):
            raise ValueError(f"attention_decay must be True or False, got "
                             f"{self.attention_decay!r}")
        check_number(self.attention_scale, "attention_scale", 0.0, low_open=True)
        if self.token_maps not in ("shared", "per_task"):
            raise ValueError(f"token_maps must be 'shared' or 'per_task', got "
                             f"{self.token_maps!r}")
        _check_cluster_loss(self.cluster_loss)

    def _check_balance(self) -> float | str:
        if self.balance == "learned":
            return "learned"
        if isinstance(self.balance, str):
            raise ValueError(f"balance must be a number in [0, 1] or 'learned', got "
                             f"{self.balance!r}")
        return check_number(self.balance, "balance", 0.0, 1.0)

    def _fit(self, mods: dict[str, Any], y: pd.DataFrame, specs: list[TaskSpec],
             val_mask: Any = None, inputs: _Inputs | None = None,
             members: Sequence[Sequence[int | None]] | None = None) -> None:
        """Fit one network on every supervised task or, with ``members``, one network per
        member trained side by side (:class:`_Ensemble`): member ``m`` learns the supervised
        tasks ``members[m]`` (indices; None is a slot without labels), its loss is what it
        would be alone, the training loss is the sum over members, and early stopping is per
        output column (each member's task at its own best validation epoch)."""
        params = check_torch_params(self)
        balance = self._check_balance()
        self._check_options()
        if not isinstance(self.attention, (bool, np.bool_)):
            raise ValueError(f"attention must be True or False, got {self.attention!r}")
        seed = check_seed(self.random_state)
        self.device_ = resolve_device(self.device)
        n = len(y)
        tr, va = _val_rows(n, params.val_fraction, seed, val_mask)
        self._target_scales(y, tr)
        self.inputs_ = _Inputs(mods, tr, seed) if inputs is None else inputs
        supervised = [s for s in specs if s.problem_class != "clustering"]
        self.supervised_ = supervised
        clustering = [s for s in specs if s.problem_class == "clustering"]
        # the clustering loss (item 7 of the module docstring); side-by-side members learn
        # supervised tasks only
        dec = clustering if self.cluster_loss == "dec" and members is None else []
        Y = np.column_stack([y[s.name].to_numpy() for s in supervised]) if supervised else (
            np.zeros((n, 0)))
        for j, s in enumerate(supervised):
            if s.problem_class == "regression":
                mu, sd = self.target_scale_[s.name]
                Y[:, j] = (Y[:, j] - mu) / sd
        if members is not None:  # one column per member and slot; a None slot has no label
            cols = [t for m in members for t in m]
            slot_specs = [supervised[t] if t is not None else _NO_LABEL for t in cols]
            Y = np.column_stack([Y[:, t] if t is not None else np.full(n, np.nan)
                                 for t in cols])
            out_dims = [max(max(s.out_dim for s in supervised), 1)] * len(members[0])
        else:
            slot_specs = supervised
            out_dims = [s.out_dim for s in supervised] or [1]
        data = self.inputs_.tensors(mods, self.device_)
        data["y"] = torch.as_tensor(np.nan_to_num(Y), dtype=torch.float32, device=self.device_)
        data["ymask"] = torch.as_tensor(np.isfinite(Y), device=self.device_)
        dims = self.inputs_.dims

        def build() -> nn.Module:
            net = M3HNet(dims, params.hidden, out_dims, bool(self.attention), balance,
                         skip=bool(self.skip), attention_scale=float(self.attention_scale),
                         token_maps=self.token_maps, clusters=[s.n_classes for s in dec])
            if dec:
                _init_centres(net, data, tr, seed)
            return net if members is None else _Ensemble(net, len(members))

        def decay(net: nn.Module) -> list[nn.Parameter]:
            """Every parameter but the query and key maps (``attention_decay=False``)."""
            named = (zip(net.names, net.stacked, strict=True) if isinstance(net, _Ensemble)
                     else net.named_parameters())
            return [p for k, p in named if not k.startswith(("Wq.", "Wk."))]

        plan = _LossPlan(slot_specs, self.device_)
        weights = torch.as_tensor(
            _task_weights(slot_specs, Y[tr]) if self.task_weighting == "normalised"
            else np.ones(len(slot_specs)), dtype=torch.float32, device=self.device_)
        per_task = self.early_stopping == "per_task" or members is not None
        picker = (_TaskCheckpoints(len(slot_specs) + len(dec)) if per_task and len(va)
                  else None)
        shape = (len(members), len(members[0])) if members is not None else None

        def loss_fn(net: nn.Module, batch: dict[str, torch.Tensor]):
            res = net.outputs(batch) if dec else {"out": net(batch)}
            out = res["out"]
            terms = plan.terms(out, batch["y"], batch["ymask"]) * weights
            if dec:  # one more term per clustering task, in the mean over tasks (weight 1)
                terms = torch.cat([terms, torch.stack(
                    [dec_loss(res[f"q{c}"]) for c in range(len(dec))])])
            if shape is None:
                ok = torch.isfinite(terms)
                loss = terms[ok].mean() if ok.any() else out.sum() * 0.0
            else:  # each member's own mean over its labelled slots, summed over members
                t = terms.view(shape)
                ok = torch.isfinite(t)
                own = torch.where(ok, t, torch.zeros_like(t)).sum(dim=1) / ok.sum(
                    dim=1).clamp(min=1)
                loss = own.sum() + out.sum() * 0.0
            if picker is not None and not net.training:  # the validation pass of an epoch
                return loss, picker.update(net, terms.detach())
            return loss, loss.detach()

        self.task_states_ = None
        self.n_out_ = len(slot_specs)
        if supervised or dec:
            self.net_, self.history_ = train_network(
                build, loss_fn, data, tr, va, params=params, seed=seed, device=self.device_,
                desc=type(self).__name__,
                decay=None if self.attention_decay else decay)
            if picker is not None:
                self.task_states_ = picker.states()
        else:
            from ..runtime import torch_seed

            with torch_seed(seed):
                self.net_ = build().to(self.device_).eval()
            self.history_ = None
        self.clusters_: dict[str, Any] = {}
        if dec:
            for c, s in enumerate(dec):
                self.clusters_[s.name] = _DecReadout(c, s.n_classes)
        elif clustering:
            blocks = self._cluster_blocks({k: v[torch.as_tensor(tr, device=self.device_)]
                                           for k, v in data.items()})
            for s in clustering:
                self.clusters_[s.name] = BlockClusters(s.n_classes, seed).fit(blocks)

    def cluster_blocks(self, X: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The two blocks the clustering task reads, for the rows of ``X``: ``"h"``, the shared
        representation (rows, hidden), and ``"s"``, the inputs read linearly (rows, d; no
        columns when only the image is given). See the module docstring."""
        h, inputs = self._cluster_blocks(self.inputs_.tensors(self._check_X(X), self.device_))
        return {"h": h, "s": inputs}

    def _cluster_blocks(self, data: dict[str, torch.Tensor]) -> list[np.ndarray]:
        """What the clustering task reads (module docstring): the shared representation ``h``
        and the inputs read linearly ``s`` (:meth:`_linear_block`)."""
        keys = list(data)

        def forward(idx: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"h": self.net_.shared({k: data[k][idx[:, 0].long().to(self.device_)]
                                           for k in keys})}

        n = len(data["avail"])
        res = predict_chunked(forward, np.arange(n)[:, None].astype(np.float32),
                              device=self.device_, modules=[self.net_], chunk_size=1024)
        return [res["h"], self._linear_block(data)]

    def _linear_block(self, data: dict[str, torch.Tensor]) -> np.ndarray:
        """The block ``s`` of the clustering rule, (rows, d): :func:`linear_inputs` of the
        rows (no columns when only the image is given)."""
        if not skip_width(self.net_.dims):
            return np.zeros((len(data["avail"]), 0))
        with torch.no_grad():
            return linear_inputs(data, self.net_.dims).cpu().numpy().astype(float)

    def _forward_all(self, data: dict[str, torch.Tensor]
                     ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Every output of the network for the encoded rows ``data`` (``inputs_.tensors``)."""
        n = len(data["avail"])
        keys = list(data)
        X = np.arange(n)[:, None].astype(np.float32)

        def forward(idx: torch.Tensor) -> dict[str, torch.Tensor]:
            rows = idx[:, 0].long().to(self.device_)
            return self.net_.outputs({k: data[k][rows] for k in keys})

        res = predict_chunked(forward, X, device=self.device_, modules=[self.net_],
                              chunk_size=1024)
        if self.task_states_:
            final = {k: v.clone() for k, v in self.net_.state_dict().items()}
            try:
                for state, idx in self.task_states_:
                    self.net_.load_state_dict(state)
                    part = predict_chunked(forward, X, device=self.device_,
                                           modules=[self.net_], chunk_size=1024)
                    heads = idx[idx < self.n_out_]
                    res["out"][:, heads] = part["out"][:, heads]
                    for c in idx[idx >= self.n_out_] - self.n_out_:  # a clustering loss
                        res[f"q{c}"] = part[f"q{c}"]
            finally:
                self.net_.load_state_dict(final)
                self.net_.eval()
        return res, res.get("h")

    def _scores(self, mods: dict[str, Any]) -> dict[str, np.ndarray]:
        data = self.inputs_.tensors(mods, self.device_)
        res, H = self._forward_all(data)
        out = res["out"]
        scores: dict[str, np.ndarray] = {}
        for t, s in enumerate(self.supervised_):
            o = out[:, t]
            if s.problem_class == "binary":
                scores[s.name] = 1 / (1 + np.exp(-o[:, 0]))
            elif s.problem_class == "multiclass":
                e = np.exp(o[:, : s.n_classes] - o[:, : s.n_classes].max(axis=1, keepdims=True))
                scores[s.name] = e / e.sum(axis=1, keepdims=True)
            else:
                mu, sd = self.target_scale_[s.name]
                scores[s.name] = o[:, 0] * sd + mu
        if self.clusters_:
            blocks = [H, self._linear_block(data)]  # h as the heads read it, computed once
            for name, clusters in self.clusters_.items():
                scores[name] = (res[f"q{clusters.index}"].argmax(axis=1).astype(float)
                                if isinstance(clusters, _DecReadout)
                                else clusters.predict(blocks))
        return {s.name: scores[s.name] for s in self.tasks_}

    def attention_matrix(self, X: Mapping[str, Any]) -> pd.DataFrame:
        """Mean over patients of the learned cross-task attention ``A`` (source row, auxiliary
        column) among the supervised tasks; the cheap TIM proxy. Needs ``attention=True``."""
        mods = self._check_X(X)
        if not self.attention:
            raise ValueError("attention_matrix needs attention=True (m3h)")
        res, _ = self._forward_all(self.inputs_.tensors(mods, self.device_))
        names = [s.name for s in self.supervised_]
        return pd.DataFrame(res["A"].mean(axis=0), index=names, columns=names)

    def balances(self) -> pd.Series:
        """The self-exploitation weight beta of each supervised task after fit."""
        check_is_fitted(self, "fitted_")
        b = self.net_.beta().detach().cpu().numpy()
        return pd.Series(b, index=[s.name for s in self.supervised_])


def _alone(spec: TaskSpec, y: pd.DataFrame) -> list[TaskSpec]:
    """The checked task list of a network trained on the task ``spec`` alone."""
    one = pd.DataFrame([{"name": spec.name, "problem_class": spec.problem_class,
                         "n_classes": spec.n_classes}])
    return check_tasks(one, y)[0]


class SingleTask(MultiTaskLearner):
    """The M3H network (hard sharing) fitted once per task on that task alone.

    The clustering task, with ``cluster_loss="dec"``, gets the same network trained on the
    clustering loss alone (item 7 of the module docstring; no supervised task, so its centres
    start from the untrained network as M3H's do) and read by ``argmax q`` as M3H's: the two
    differ only in whether the supervised tasks shaped ``h`` too, so the gain on the phenotype
    measures multitask learning. With ``cluster_loss="none"`` (the default) it reads what a
    network trained on one task alone has for it without a loss: the inputs read linearly
    (``s``, :func:`linear_inputs`), clustered by M3H's rule on that one block
    (:class:`BlockClusters`: leading ``k - 1`` principal components, k-means), fitted on the
    training rows; M3H's rule reads ``[h, s]``. Where no input is read linearly (only the
    image), it then falls back to k-means on the standardised per-modality summary features
    (as :class:`HAIMGBT`).
    ``side_by_side=True``
    trains the per-task networks together as one stacked module (no shared parameter; see the
    module docstring), ``False`` one after the other; the other parameters are :class:`M3H`'s.
    """

    fit_inputs = ("val_mask",)

    def __init__(self, hidden: int = 32, skip: bool = SKIP_DEFAULT,
                 task_weighting: str = "equal", early_stopping: str = "joint",
                 side_by_side: bool = True, cluster_loss: str = "none", epochs: int = 60,
                 batch_size: int = 128,
                 lr: float = 3e-3, weight_decay: float = 1e-4, patience: int = 10,
                 val_fraction: float = 0.2, random_state: int = 0,
                 device: str = "auto") -> None:
        store_params(self, locals())

    def _fit(self, mods: dict[str, Any], y: pd.DataFrame, specs: list[TaskSpec],
             val_mask: Any = None) -> None:
        p = self.get_params()
        side_by_side = p.pop("side_by_side")
        if not isinstance(side_by_side, (bool, np.bool_)):
            raise ValueError(f"side_by_side must be True or False, got {side_by_side!r}")
        _check_cluster_loss(self.cluster_loss)
        check_torch_params(self)
        seed = check_seed(self.random_state)
        tr, _ = _val_rows(len(y), check_number(self.val_fraction, "val_fraction", 0.0, 1.0,
                                                 high_open=True), seed, val_mask)
        self._target_scales(y, tr)
        inputs = _Inputs(mods, tr, seed)  # one text encoder and scaling for every task

        def network(tasks: list[TaskSpec],
                    members: Sequence[Sequence[int | None]] | None = None) -> M3H:
            """A fitted hard-sharing network on ``tasks`` (side by side with ``members``)."""
            est = M3H(attention=False, **p)
            est.tasks_ = tasks
            est.modalities_ = tuple(mods)
            est._fit(mods, y[[t.name for t in tasks]], tasks, val_mask=val_mask,
                     inputs=inputs, members=members)
            est.fitted_ = True
            return est

        self.models_: dict[str, Any] = {}
        supervised = [s for s in specs if s.problem_class != "clustering"]
        for s in specs:
            if s.problem_class != "clustering":
                continue
            if self.cluster_loss == "dec":  # the network trained on its clustering loss alone
                self.models_[s.name] = network(_alone(s, y))
            else:
                self.models_[s.name] = (
                    _InputClusters(s.n_classes, seed, inputs).fit(mods, tr)
                    if skip_width(inputs.dims) else
                    _FeatureClusters(s.n_classes, seed).fit(mods, tr))
        if side_by_side and supervised:  # one network per task, trained side by side
            est = network(supervised, members=[(t,) for t in range(len(supervised))])
            for s in supervised:
                self.models_[s.name] = est
            return
        for s in supervised:
            self.models_[s.name] = network(_alone(s, y))

    def _scores(self, mods: dict[str, Any]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        done: dict[int, dict[str, np.ndarray]] = {}
        for s in self.tasks_:
            m = self.models_[s.name]
            if isinstance(m, (_FeatureClusters, _InputClusters)):
                out[s.name] = m.predict(mods)
                continue
            if id(m) not in done:  # the side-by-side networks predict every task at once
                done[id(m)] = m.predict_scores(mods)
            out[s.name] = done[id(m)][s.name]
        return out


class _InputClusters:
    """M3H's clustering rule (:class:`BlockClusters`) on the inputs read linearly alone
    (:func:`linear_inputs`), with the scalings of ``inputs``: the single-task clustering."""

    def __init__(self, k: int, seed: int, inputs: _Inputs) -> None:
        self.k, self.seed, self.inputs = k, seed, inputs

    def block(self, mods: Mapping[str, Any]) -> np.ndarray:
        """The inputs read linearly, (rows, d)."""
        with torch.no_grad():
            return linear_inputs(self.inputs.tensors(mods, "cpu"), self.inputs.dims).numpy()

    def fit(self, mods: Mapping[str, Any], rows: np.ndarray) -> _InputClusters:
        self.rule = BlockClusters(self.k, self.seed).fit([self.block(mods)[rows]])
        return self

    def predict(self, mods: Mapping[str, Any]) -> np.ndarray:
        return self.rule.predict([self.block(mods)])


class _FeatureClusters:
    """k-means on the imputed, standardised concatenated summary features."""

    def __init__(self, k: int, seed: int) -> None:
        self.k, self.seed = k, seed

    def fit(self, mods: Mapping[str, Any], rows: np.ndarray) -> _FeatureClusters:
        self.features = _FlatFeatures(mods, rows, self.seed)
        self.km = _kmeans(self.features.standardised(mods)[rows], self.k, self.seed)
        return self

    def predict(self, mods: Mapping[str, Any]) -> np.ndarray:
        return self.km.predict(self.features.standardised(mods)).astype(float)


class _FlatFeatures:
    """HAIM-style concatenated per-modality features, text encoder fitted on training rows."""

    def __init__(self, mods: Mapping[str, Any], rows: np.ndarray, seed: int) -> None:
        from ..text.embeddings import TfidfSVD

        self.text = None
        if "text" in mods:
            notes = [mods["text"][i] for i in rows.tolist()]
            notes = [t for t in notes if t is not None and str(t).strip()]
            if len(notes) >= 10:
                self.text = TfidfSVD(n_components=min(32, len(notes) - 1),
                                     random_state=seed).fit(notes)
        X = self.raw(mods)
        fill = np.nanmedian(X[rows], axis=0)
        self.fill = np.where(np.isfinite(fill), fill, 0.0)
        self.scale = Standardiser.fit(np.where(np.isfinite(X), X, self.fill), rows)

    def raw(self, mods: Mapping[str, Any]) -> np.ndarray:
        feats = modality_summary(mods, text_encoder=self.text, image_pool=8)
        return np.column_stack([f.to_numpy(dtype=float) for f in feats.values()])

    def standardised(self, mods: Mapping[str, Any]) -> np.ndarray:
        X = self.raw(mods)
        return self.scale.transform(np.where(np.isfinite(X), X, self.fill))


class HAIMGBT(MultiTaskLearner):
    """HAIM-style baseline: gradient-boosted trees per task on concatenated features.

    Features: :func:`~ehrcausal.data.multimodal.summary_features` of every modality (tabular
    values; 7 statistics per time-series channel; a 32-d TF-IDF/SVD of the note; 8 x 8 pooled
    pixels), concatenated, missing values left to the trees. One LightGBM model per task
    (``n_estimators`` trees of depth ``max_depth``, learning rate ``learning_rate``; HAIM's
    XGBoost used 200, 5 and 0.3); the clustering task is k-means on the standardised features.
    """

    def __init__(self, n_estimators: int = 100, max_depth: int = 5, learning_rate: float = 0.1,
                 random_state: int = 0) -> None:
        store_params(self, locals())

    def _fit(self, mods: dict[str, Any], y: pd.DataFrame, specs: list[TaskSpec]) -> None:
        import lightgbm as lgb

        n_est = check_int(self.n_estimators, "n_estimators", 1)
        depth = check_int(self.max_depth, "max_depth", 1)
        lr = check_number(self.learning_rate, "learning_rate", 0.0, low_open=True)
        seed = check_seed(self.random_state)
        rows = np.arange(len(y))
        self.features_ = _FlatFeatures(mods, rows, seed)
        X = self.features_.raw(mods)
        self._target_scales(y, rows)
        self.models_ = {}
        common = {"n_estimators": n_est, "max_depth": depth, "learning_rate": lr,
                  "random_state": seed, "n_jobs": 1, "verbose": -1, "num_leaves": 2**depth - 1}
        for s in specs:
            if s.problem_class == "clustering":
                self.models_[s.name] = _FeatureClusters(s.n_classes, seed).fit(mods, rows)
                continue
            v = y[s.name].to_numpy()
            m = np.isfinite(v)
            if s.problem_class == "regression":
                model = lgb.LGBMRegressor(**common)
            else:
                model = lgb.LGBMClassifier(**common)
            self.models_[s.name] = model.fit(X[m], v[m] if s.problem_class == "regression"
                                             else v[m].astype(int))

    def _scores(self, mods: dict[str, Any]) -> dict[str, np.ndarray]:
        X = self.features_.raw(mods)
        out = {}
        for s in self.tasks_:
            m = self.models_[s.name]
            if isinstance(m, _FeatureClusters):
                out[s.name] = m.predict(mods)
            elif s.problem_class == "regression":
                out[s.name] = m.predict(X)
            else:
                p = m.predict_proba(X)
                if s.problem_class == "binary":
                    out[s.name] = p[:, 1] if p.shape[1] == 2 else np.full(len(X), float(
                        m.classes_[0]))
                else:
                    full = np.zeros((len(X), s.n_classes))
                    full[:, m.classes_.astype(int)] = p
                    out[s.name] = full
        return out


# ---------------------------------------------------------------------------------------------
# The task-interdependence score
# ---------------------------------------------------------------------------------------------


def task_interdependence(
    estimator: M3H,
    X: Mapping[str, Any],
    Y: pd.DataFrame,
    tasks: pd.DataFrame,
    *,
    sources: Sequence[str],
    auxiliaries: Sequence[str],
    eval_mask: np.ndarray,
    fit_mask: np.ndarray,
    val_mask: np.ndarray | None = None,
    source_fraction: float = 1.0,
) -> tuple[pd.DataFrame, float]:
    """TIM[s, j]: relative change in source ``s``'s held-out loss when ``j`` is learned with it.

    ``TIM[s, j] = (L_s({s}) - L_s({s, j})) / L_s({s})``, where ``L_s(S)`` is the mean loss of
    task ``s`` (as :meth:`MultiTaskLearner.task_losses`) on the ``eval_mask`` rows of the
    network of ``estimator`` (an :class:`M3H`, its parameters) trained on the ``fit_mask`` rows
    with the tasks ``S``. Positive: learning ``j`` jointly helps ``s``; negative: it hurts.

    **The regime.** ``source_fraction`` < 1 makes the source *label-scarce*: in every fit, ``s``
    learns from a random fraction ``source_fraction`` of its training labels
    (:func:`scarce_labels`, stratified by class; the rows of ``val_mask`` keep all their
    labels, they only choose the epoch), while ``j`` learns from all of its own. The draw is the
    same for ``s`` alone and ``s`` with every ``j``; :func:`tim_targets` builds the columns.

    **Common random numbers.** The two losses come from separate fits, so their difference
    carries fit-to-fit noise (a different initialisation, mini-batch order or stopping epoch) as
    well as the effect of ``j``. To leave only the effect of ``j``, every network has two task
    slots, the source in the first; "alone" is the same network with the second slot
    unlabelled; all of them start from one initial state and are trained side by side
    (:class:`_Ensemble`) on the same mini-batches for at most ``estimator.epochs`` epochs. The
    fit of ``s`` with ``j`` and the fit of ``s`` alone then differ only in whether ``j``'s
    labels enter the loss. Without ``val_mask`` the last weights are scored; with it, each
    network's source slot is scored at its own lowest loss of ``s`` on the ``val_mask`` rows,
    and training stops when no network's source has improved for ``estimator.patience`` epochs
    (the auxiliaries' labels on those rows are not used). One training run holds one network per source and one per ordered pair. Returns
    the (sources x auxiliaries) matrix (NaN where ``s == j``) and the seconds it took.
    """
    if not isinstance(estimator, M3H):
        raise ValueError(f"estimator must be an M3H learner, got {type(estimator).__name__}")
    start = time.perf_counter()
    table = tasks.set_index("name")
    names = list(dict.fromkeys([*sources, *auxiliaries]))
    missing = [t for t in names if t not in table.index]
    if missing:
        raise ValueError(f"sources/auxiliaries {missing} are not in tasks")
    sub = table.loc[names].reset_index()
    clustering = list(sub.loc[sub.problem_class == "clustering", "name"])
    if clustering:
        raise ValueError(f"TIM needs a loss: the clustering task(s) {clustering} have none")
    fit_rows = np.flatnonzero(np.asarray(fit_mask, dtype=bool))
    ev = np.flatnonzero(np.asarray(eval_mask, dtype=bool))
    Xf = {k: _rows(v, fit_rows) for k, v in X.items()}
    Xe = {k: _rows(v, ev) for k, v in X.items()}
    Yf, Ye = Y.iloc[fit_rows].reset_index(drop=True), Y.iloc[ev].reset_index(drop=True)
    fraction = check_number(source_fraction, "source_fraction", 0.0, 1.0, low_open=True)
    est = clone(estimator)
    specs, y = check_tasks(sub, Yf)
    mods = check_modalities(Xf, len(y))
    if val_mask is None:
        val = np.zeros(len(y), dtype=bool)
    else:
        val = np.asarray(val_mask, dtype=bool)[fit_rows]
    y, specs = tim_targets(y, specs, sources, fraction=fraction, keep_rows=val,
                           seed=check_seed(estimator.random_state))
    est.tasks_, est.modalities_ = specs, tuple(mods)
    index = {s.name: t for t, s in enumerate(specs)}
    pairs = [(s, j) for s in sources for j in auxiliaries if j != s]
    src = {s: index[SOURCE_PREFIX + s] for s in sources}
    members = [(src[s], None) for s in sources] + [(src[s], index[j]) for s, j in pairs]
    est._fit(mods, y, specs, val_mask=val, members=members)
    est.fitted_ = True
    out = est._forward_all(est.inputs_.tensors(est._check_X(Xe), est.device_))[0]["out"]
    owner = [*sources, *(s for s, _ in pairs)]  # the source task of each network
    losses = [_slot_loss(out[:, 2 * m], Ye[owner[m]].to_numpy(dtype=float),
                         specs[members[m][0]], est.target_scale_) for m in range(len(members))]
    alone = dict(zip(sources, losses[: len(sources)], strict=True))
    tim = pd.DataFrame(np.nan, index=list(sources), columns=list(auxiliaries))
    for (s, j), value in zip(pairs, losses[len(sources):], strict=True):
        tim.loc[s, j] = (alone[s] - value) / alone[s]
    return tim, time.perf_counter() - start


#: prefix of the column of a source task's kept labels in :func:`tim_targets`
SOURCE_PREFIX = "source: "


def tim_targets(y: pd.DataFrame, specs: Sequence[TaskSpec], sources: Sequence[str], *,
                fraction: float, keep_rows: np.ndarray, seed: int
                ) -> tuple[pd.DataFrame, list[TaskSpec]]:
    """The targets of the TIM fits: for each source ``s``, a column ``SOURCE_PREFIX + s`` that
    holds ``s``'s labels on the rows ``keep_rows`` (the early-stopping rows) and, on the other
    rows, only the fraction ``fraction`` of them drawn by :func:`scarce_labels` (``seed``);
    ``y``'s own columns, learned as auxiliaries, keep their labels on the other rows and none on
    ``keep_rows`` (the early-stopping rows choose each network's epoch by its source alone).
    Returns the targets and the specs (``specs`` plus one per source column)."""
    keep_rows = np.asarray(keep_rows, dtype=bool)
    index = {s.name: s for s in specs}
    kept = scarce_labels(y.loc[~keep_rows, list(sources)], specs=[index[s] for s in sources],
                         fraction=fraction, seed=seed)
    out, specs = y.copy(), list(specs)
    out.loc[keep_rows, :] = np.nan
    for s in sources:
        specs.append(TaskSpec(SOURCE_PREFIX + s, index[s].problem_class, index[s].n_classes))
        col = y[s].to_numpy(dtype=float).copy()
        col[~keep_rows] = kept[s].to_numpy()
        out[SOURCE_PREFIX + s] = col
    return out, specs


def scarce_labels(Y: pd.DataFrame, *, specs: Sequence[TaskSpec], fraction: float,
                  seed: int) -> pd.DataFrame:
    """``Y`` with each column keeping a random ``fraction`` of its labels (NaN elsewhere).

    For a class task the draw is stratified (within each class, ``round(fraction * count)``
    labels are kept, at least one), so that the kept labels have the task's class frequencies;
    for a regression task ``round(fraction * count)`` labels are drawn (at least one). Each
    column draws from its own seed stream of ``seed`` (child ``k`` of
    :func:`~ehrcausal.runtime.child_seeds` for column ``k``). ``fraction = 1`` returns a copy.
    """
    out = Y.copy()
    if fraction >= 1.0:
        return out
    for k, (spec, child) in enumerate(zip(specs, child_seeds(seed, len(specs)), strict=True)):
        y = Y.iloc[:, k].to_numpy(dtype=float)
        rng = np.random.default_rng(child)
        groups = ([np.flatnonzero(y == c) for c in np.unique(y[np.isfinite(y)])]
                  if spec.problem_class != "regression" else [np.flatnonzero(np.isfinite(y))])
        keep = np.zeros(len(y), dtype=bool)
        for g in groups:
            if len(g):
                keep[rng.choice(g, size=max(1, int(round(fraction * len(g)))), replace=False)] = True
        col = out.columns[k]
        out[col] = np.where(keep, y, np.nan)
    return out


def _slot_loss(out: np.ndarray, y: np.ndarray, spec: TaskSpec,
               scales: Mapping[str, tuple[float, float]]) -> float:
    """Mean loss of one task's head outputs ``out`` (n, width) over its labelled rows, as
    :meth:`MultiTaskLearner.task_losses` computes it."""
    m = np.isfinite(y)
    o, y = out[m], y[m]
    if spec.problem_class == "binary":
        p = np.clip(1 / (1 + np.exp(-o[:, 0])), 1e-7, 1 - 1e-7)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    if spec.problem_class == "multiclass":
        z = o[:, : spec.n_classes]
        logp = z - z.max(axis=1, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
        return float(-np.mean(np.maximum(logp[np.arange(len(y)), y.astype(int)], np.log(1e-7))))
    mu, sd = scales[spec.name]
    return float(np.mean((o[:, 0] - (y - mu) / sd) ** 2))


def _rows(v: Any, idx: np.ndarray) -> Any:
    if isinstance(v, pd.DataFrame):
        return v.iloc[idx].reset_index(drop=True)
    if isinstance(v, IrregularSeries):
        return v.take(idx)
    if isinstance(v, list):
        return [v[i] for i in idx.tolist()]
    return np.asarray(v)[idx]


def spearman_offdiagonal(score: pd.DataFrame, truth: pd.DataFrame) -> float:
    """Spearman rank correlation of ``score[s, j]`` with ``truth[s, j]`` over the pairs
    ``s != j`` where the score is defined."""
    from scipy.stats import spearmanr

    a, b = [], []
    for s in score.index:
        for j in score.columns:
            if s != j and np.isfinite(score.loc[s, j]):
                a.append(score.loc[s, j])
                b.append(truth.loc[s, j])
    if len(a) < 3:
        raise ValueError("need at least 3 defined pairs for a rank correlation")
    return float(spearmanr(a, b).statistic)


_TORCH = {"family": "multitask", "budget": ("epochs", "device"), "fit_inputs": ("val_mask",)}
register("m3h", M3H, "M3H: modality encoders, fusion, task attention (Bertsimas & Ma 2024)",
         **_TORCH)
register("m3h_no_attention", M3H, "M3H network with hard parameter sharing (no attention)",
         **_TORCH, attention=False)
register("single_task", SingleTask, "the M3H network fitted once per task", **_TORCH)
register("haim_gbt", HAIMGBT, "HAIM: boosted trees per task on concatenated features",
         family="multitask", budget=("n_estimators",))
