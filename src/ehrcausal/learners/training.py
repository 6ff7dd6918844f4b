"""One training loop for every torch learner of the package.

``train_module`` runs mini-batch Adam on a model-specific loss, monitors a validation loss
after each epoch, keeps the best weights and stops after ``patience`` epochs without
improvement (early stopping on a validation split; with no validation rows it trains for
all epochs and keeps the last weights). A validation loss that is never finite is an error,
not a silent return of the initial weights. The learning rate may decay in steps
(``lr * lr_decay ** (step // lr_decay_steps)``, as cfrnet's ``tf.train.exponential_decay``
with ``staircase=True``). It is deterministic for a seed: the shuffling generator and torch's
initialisation are both seeded.

The batch schedules (:func:`permuted_batches`, the default, and :func:`alternating_batches`)
live here too; building, seeding, standardising and predicting are in
:mod:`ehrcausal.learners.torch_scaffold`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..validation import check_int, check_number

# loss_fn(module, batch) -> (training loss to minimise, monitored validation criterion)
LossFn = Callable[[nn.Module, dict[str, torch.Tensor]], tuple[torch.Tensor, torch.Tensor]]
# batch_sampler(n_train, generator) -> list of index tensors into the training rows (one epoch)
BatchSampler = Callable[[int, torch.Generator], list[torch.Tensor]]


@dataclass
class TrainingHistory:
    """Per-epoch training and validation losses; the epoch whose weights were kept."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False

    @property
    def n_epochs(self) -> int:
        return len(self.train_loss)


def permuted_batches(batch_size: int, min_size: int = 2) -> BatchSampler:
    """The default epoch: a seeded permutation of the training rows cut into ``batch_size`` chunks.

    A last chunk smaller than ``min_size`` joins the previous one. The default 2 merges a final
    batch of a single unit (one unit's gradient step is noise, and BatchNorm cannot train on
    it); ``min_size=1`` keeps every chunk.
    """
    batch_size = check_int(batch_size, "batch_size", 1)
    min_size = check_int(min_size, "min_size", 1)

    def sample(n: int, generator: torch.Generator) -> list[torch.Tensor]:
        perm = torch.randperm(n, generator=generator)
        chunks = [perm[i : i + batch_size] for i in range(0, n, batch_size)]
        if len(chunks) > 1 and len(chunks[-1]) < min_size:
            last = chunks.pop()  # popped first: the merge must land on the new last chunk
            chunks[-1] = torch.cat([chunks[-1], last])
        return chunks

    return sample


def alternating_batches(t_train: np.ndarray, batch_size: int) -> BatchSampler:
    """Epochs of alternating treated and control batches (DCN-PD's schedule, Alaa et al. 2017).

    Each arm's training rows (``t_train`` is the treatment of the training rows) are permuted
    and cut into ``batch_size`` chunks; the epoch takes a treated chunk, then a control chunk,
    and so on, so every batch holds a single arm.
    """
    batch_size = check_int(batch_size, "batch_size", 1)
    arms = [torch.as_tensor(np.flatnonzero(np.asarray(t_train) == a)) for a in (1, 0)]

    def sample(n: int, generator: torch.Generator) -> list[torch.Tensor]:
        per_arm = []
        for rows in arms:
            perm = rows[torch.randperm(len(rows), generator=generator)]
            per_arm.append([perm[i : i + batch_size] for i in range(0, len(perm), batch_size)])
        out = []
        for i in range(max(len(b) for b in per_arm)):
            out += [b[i] for b in per_arm if i < len(b)]
        return out

    return sample


def train_module(
    module: nn.Module,
    loss_fn: LossFn,
    data: dict[str, torch.Tensor],
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float = 0.0,
    decay_params: list[nn.Parameter] | None = None,
    patience: int = 30,
    seed: int = 0,
    progress: bool = False,
    desc: str = "training",
    batch_sampler: BatchSampler | None = None,
    lr_decay: float = 1.0,
    lr_decay_steps: int = 100,
) -> TrainingHistory:
    """Train ``module`` in place and return its history.

    data -- tensors with the same first dimension (already on the module's device);
    train_idx / val_idx -- row indices of the training and validation parts;
    decay_params -- parameters that get ``weight_decay`` (all parameters when None);
    batch_sampler -- how one epoch is cut into mini-batches: ``batch_sampler(n_train, generator)``
    returns index tensors into the training rows, drawing any randomness from ``generator``
    (default: a seeded random permutation cut into consecutive ``batch_size`` chunks, a final
    chunk of one unit merged into the previous one);
    lr_decay, lr_decay_steps -- the learning rate is ``lr * lr_decay ** (k // lr_decay_steps)``
    after ``k`` optimizer steps (``lr_decay=1`` keeps it constant).
    ``epochs``, ``batch_size``, ``patience`` and ``lr_decay_steps`` are integers >= 1 and
    ``seed`` >= 0 (floats, strings and booleans are refused, never converted); ``lr`` > 0,
    ``weight_decay`` >= 0, ``lr_decay`` in (0, 1]. With validation rows, a monitored loss that is
    NaN at every epoch raises ``FloatingPointError`` (the weights would otherwise be the
    initial ones).
    """
    from tqdm import tqdm

    epochs = check_int(epochs, "epochs", 1)
    batch_size = check_int(batch_size, "batch_size", 1)
    patience = check_int(patience, "patience", 1)
    seed = check_int(seed, "seed", 0)
    lr = check_number(lr, "lr", 0.0, low_open=True)
    weight_decay = check_number(weight_decay, "weight_decay", 0.0)
    lr_decay = check_number(lr_decay, "lr_decay", 0.0, 1.0, low_open=True)
    lr_decay_steps = check_int(lr_decay_steps, "lr_decay_steps", 1)

    device = next(module.parameters()).device
    tr = {k: v[torch.as_tensor(train_idx, device=v.device)] for k, v in data.items()}
    va = {k: v[torch.as_tensor(val_idx, device=v.device)] for k, v in data.items()}
    n_train = len(train_idx)
    if decay_params is None:
        groups = [{"params": list(module.parameters()), "weight_decay": weight_decay}]
    else:
        ids = {id(p) for p in decay_params}
        rest = [p for p in module.parameters() if id(p) not in ids]
        groups = [
            {"params": list(decay_params), "weight_decay": weight_decay},
            {"params": rest, "weight_decay": 0.0},
        ]
    opt = torch.optim.Adam(groups, lr=lr)
    schedule = (
        torch.optim.lr_scheduler.StepLR(opt, step_size=lr_decay_steps, gamma=lr_decay)
        if lr_decay < 1.0
        else None
    )
    sampler = permuted_batches(batch_size) if batch_sampler is None else batch_sampler
    gen = torch.Generator().manual_seed(seed)
    hist = TrainingHistory()
    best_state: dict[str, torch.Tensor] | None = {
        k: v.detach().clone() for k, v in module.state_dict().items()
    }
    best = float("inf")
    since_best = 0
    bar = tqdm(range(epochs), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        module.train()
        total = 0.0
        seen = 0
        epoch_batches = sampler(n_train, gen)
        for idx in epoch_batches:
            idx = idx.to(device)
            batch = {k: v[idx] for k, v in tr.items()}
            opt.zero_grad(set_to_none=True)
            loss, _ = loss_fn(module, batch)
            loss.backward()
            opt.step()
            if schedule is not None:
                schedule.step()
            total += float(loss.detach()) * len(idx)
            seen += len(idx)
        hist.train_loss.append(total / max(seen, 1))
        if not np.isfinite(hist.train_loss[-1]):
            raise FloatingPointError(
                f"training diverged at epoch {epoch} (loss {hist.train_loss[-1]}); "
                "lower the learning rate"
            )
        if len(val_idx) == 0:  # no validation rows: train for all epochs, keep the last weights
            hist.val_loss.append(float("nan"))
            hist.best_epoch = epoch
            best_state = None
            continue
        module.eval()
        with torch.no_grad():
            _, monitored = loss_fn(module, va)
        val = float(monitored)
        hist.val_loss.append(val)
        if val < best - 1e-7:
            best, since_best, hist.best_epoch = val, 0, epoch
            best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        else:
            since_best += 1
            if since_best >= patience:
                hist.stopped_early = True
                break
        if progress:
            bar.set_postfix(train=f"{hist.train_loss[-1]:.3f}", val=f"{val:.3f}")
    if len(val_idx) and hist.best_epoch < 0:
        raise FloatingPointError(
            f"the validation loss was not finite (NaN) at any of the {hist.n_epochs} epochs, so "
            "no weights could be selected; check the validation rows (both arms present) and the "
            "loss"
        )
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return hist
