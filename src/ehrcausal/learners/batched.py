"""Batched training: K independent networks of one architecture trained as one batched module.

A replicate sweep, a deep ensemble and a seed sweep are many small networks of the same shape,
each with its own data. :func:`train_batched` trains K such *members* together and returns, for
each, what :func:`~ehrcausal.learners.torch_scaffold.train_network` would have returned for it
alone: the network with its best weights and its :class:`~ehrcausal.learners.training.TrainingHistory`.

How (Paszke et al. 2019, ``torch.func``): the K networks are built one by one, each under its
own seed (so each starts from the weights the sequential path would give it), and their
parameters are stacked into one tensor per parameter name (``stack_module_state``). One step
draws each member's mini-batch from its own training rows with its own shuffling generator (the
sequential schedule), runs the K forward passes as one vectorised call
(``vmap(functional_call)``: every linear layer becomes one batched matrix product), computes
each member's loss with the learner's own loss function on its slice of the outputs, and takes
one backward pass and one Adam step on the sum of the members' losses. The members share no
parameter, so the gradient of the sum with respect to member k's parameters is the gradient of
member k's loss, and Adam (element-wise) updates each member as it would alone.

Each member keeps its own validation rows, early stopping and best weights, exactly as
:func:`~ehrcausal.learners.training.train_module`: after every epoch its monitored validation
loss is compared with its best; a member that has gone ``patience`` epochs without improving is
*finished*: its loss is masked out (multiplied by nothing: it is left out of the sum) and its
weights are restored after every later step (Adam's momentum would otherwise still move them),
until all members are finished or the epochs run out. Members are grouped by their numbers of
training and validation rows (the mini-batch schedule must line up); each group is one batched
pass.

With one member, or with ``vectorize=False``, the forward passes are not vectorised
(``functional_call`` on each member's slice of the stacked parameters), and the results equal
the sequential path bit for bit, a check of the batching itself. Vectorised, the batched matrix
products round differently from K separate ones (last bits), so members follow their
sequential counterparts closely but not bitwise; the tests say how close, and
``benchmarks/batched_training.py`` how much faster. Dropout is not supported (the random masks
would differ from the sequential path's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..runtime import torch_seed
from ..validation import check_int
from .torch_scaffold import TorchParams
from .training import BatchSampler, LossFn, TrainingHistory, permuted_batches

__all__ = ["fit_batched", "train_batched"]


class _Outputs:
    """Stands in for a network inside a loss function: returns one member's precomputed outputs."""

    def __init__(self, out: Mapping[str, torch.Tensor]) -> None:
        self.out = out

    def __call__(self, x: torch.Tensor) -> Mapping[str, torch.Tensor]:
        return self.out


def _stack(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.stack(list(tensors))


def train_batched(
    build: Callable[[], nn.Module],
    loss_fns: Sequence[LossFn],
    data: Sequence[Mapping[str, torch.Tensor]],
    train_idx: Sequence[np.ndarray],
    val_idx: Sequence[np.ndarray],
    *,
    params: TorchParams,
    seeds: Sequence[int],
    device: str,
    decay: Callable[[nn.Module], list[nn.Parameter]] | None = None,
    batch_sampler: BatchSampler | None = None,
    vectorize: bool = True,
    progress: bool = False,
    desc: str = "batched training",
    lr_decay: float = 1.0,
    lr_decay_steps: int = 100,
) -> tuple[list[nn.Module], list[TrainingHistory]]:
    """Train K members of one architecture together; return their networks and histories.

    Member k has its own loss ``loss_fns[k](net, batch) -> (loss, monitored)`` (the learner's
    loss, as for :func:`~ehrcausal.learners.training.train_module`), its own tensors
    ``data[k]`` (same keys and widths for every member), its own ``train_idx[k]`` and
    ``val_idx[k]``, and its own ``seeds[k]`` (initialisation and shuffling). ``build()`` makes
    one network (all members the same architecture, without dropout); ``decay(net)`` names the
    parameters that get ``params.weight_decay``. ``params`` are the shared training settings;
    the learning rate decays as in the sequential loop (``lr * lr_decay ** (k //
    lr_decay_steps)`` after ``k`` steps, all members stepping together).
    Members with the same numbers of training and validation rows train in one batched pass.
    Returns, in the members' order, the networks (best weights, evaluation mode) and histories.
    """
    k_members = len(seeds)
    if k_members == 0:
        raise ValueError("train_batched needs at least one member (seeds is empty)")
    for name, seq in (("loss_fns", loss_fns), ("data", data), ("train_idx", train_idx),
                      ("val_idx", val_idx)):
        if len(seq) != k_members:
            raise ValueError(f"{name} has {len(seq)} entries for {k_members} seeds")
    seeds = [check_int(s, "seed", 0) for s in seeds]
    groups: dict[tuple[int, int], list[int]] = {}
    for k in range(k_members):
        groups.setdefault((len(train_idx[k]), len(val_idx[k])), []).append(k)
    nets: list[nn.Module | None] = [None] * k_members
    hists: list[TrainingHistory | None] = [None] * k_members
    for members in groups.values():
        out_nets, out_hists = _train_group(
            build, [loss_fns[k] for k in members], [data[k] for k in members],
            [train_idx[k] for k in members], [val_idx[k] for k in members],
            params=params, seeds=[seeds[k] for k in members], device=device, decay=decay,
            batch_sampler=batch_sampler, vectorize=vectorize, progress=progress, desc=desc,
            lr_decay=lr_decay, lr_decay_steps=lr_decay_steps,
        )
        for k, net, hist in zip(members, out_nets, out_hists, strict=True):
            nets[k], hists[k] = net, hist
    return [n for n in nets if n is not None], [h for h in hists if h is not None]


def _train_group(
    build: Callable[[], nn.Module],
    loss_fns: Sequence[LossFn],
    data: Sequence[Mapping[str, torch.Tensor]],
    train_idx: Sequence[np.ndarray],
    val_idx: Sequence[np.ndarray],
    *,
    params: TorchParams,
    seeds: Sequence[int],
    device: str,
    decay: Callable[[nn.Module], list[nn.Parameter]] | None,
    batch_sampler: BatchSampler | None,
    vectorize: bool,
    progress: bool,
    desc: str,
    lr_decay: float,
    lr_decay_steps: int,
) -> tuple[list[nn.Module], list[TrainingHistory]]:
    """One batched pass over members whose training and validation row counts agree."""
    from torch.func import functional_call, stack_module_state, vmap
    from tqdm import tqdm

    K = len(seeds)
    nets = []
    for seed in seeds:  # each member starts from the weights the sequential path gives it
        with torch_seed(seed):
            nets.append(build().to(device))
    if any(isinstance(m, nn.Dropout) and m.p > 0 for m in nets[0].modules()):
        raise ValueError("train_batched does not support dropout > 0")
    template = nets[0]
    stacked, buffers = stack_module_state(nets)
    names = list(stacked)
    if decay is None:
        groups = [{"params": [stacked[n] for n in names], "weight_decay": params.weight_decay}]
    else:
        decayed = {id(p) for p in decay(template)}
        in_decay = {n for n, p in template.named_parameters() if id(p) in decayed}
        groups = [
            {"params": [stacked[n] for n in names if n in in_decay],
             "weight_decay": params.weight_decay},
            {"params": [stacked[n] for n in names if n not in in_decay], "weight_decay": 0.0},
        ]
    opt = torch.optim.Adam(groups, lr=params.lr)
    schedule = (
        torch.optim.lr_scheduler.StepLR(opt, step_size=lr_decay_steps, gamma=lr_decay)
        if lr_decay < 1.0 else None
    )

    def member_forward(p: dict, b: dict, x: torch.Tensor) -> Any:
        return functional_call(template, (p, b), (x,))

    batched_forward = vmap(member_forward)

    def forward(x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Each member's outputs on its rows ``x[k]``."""
        if vectorize and K > 1:
            out = batched_forward(stacked, buffers, x)
            return [{name: v[k] for name, v in out.items()} for k in range(K)]
        return [
            member_forward({n: v[k] for n, v in stacked.items()},
                           {n: v[k] for n, v in buffers.items()}, x[k])
            for k in range(K)
        ]

    dev = torch.device(device)
    keys = list(data[0])
    tr = {key: _stack([d[key][torch.as_tensor(i, device=dev)] for d, i in
                       zip(data, train_idx, strict=True)]) for key in keys}
    va = {key: _stack([d[key][torch.as_tensor(i, device=dev)] for d, i in
                       zip(data, val_idx, strict=True)]) for key in keys}
    n_train, n_val = len(train_idx[0]), len(val_idx[0])
    sampler = permuted_batches(params.batch_size) if batch_sampler is None else batch_sampler
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    rows = torch.arange(K, device=dev)[:, None]
    hists = [TrainingHistory() for _ in range(K)]
    best = [float("inf")] * K
    since_best = [0] * K
    active = [True] * K
    best_state: list[dict[str, torch.Tensor] | None] = [
        {n: v[k].detach().clone() for n, v in stacked.items()} for k in range(K)
    ]
    frozen: dict[int, dict[str, torch.Tensor]] = {}
    template.train()
    bar = tqdm(range(params.epochs), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        running = [k for k in range(K) if active[k]]
        schedules = [sampler(n_train, gens[k]) for k in range(K)]
        totals = [0.0] * K
        seen = [0] * K
        template.train()
        for step in range(len(schedules[0])):
            idx = torch.stack([schedules[k][step] for k in range(K)]).to(dev)
            batch = {key: v[rows, idx] for key, v in tr.items()}
            opt.zero_grad(set_to_none=True)
            outs = forward(batch["x"])
            losses = []
            for k in running:
                loss, _ = loss_fns[k](_Outputs(outs[k]), {key: v[k] for key, v in batch.items()})
                losses.append(loss)
                totals[k] += float(loss.detach()) * idx.shape[1]
                seen[k] += idx.shape[1]
            sum(losses).backward()
            opt.step()
            if schedule is not None:
                schedule.step()
            if frozen:  # finished members keep their weights
                with torch.no_grad():
                    for k, state in frozen.items():
                        for n, v in state.items():
                            stacked[n][k].copy_(v)
        for k in running:
            hists[k].train_loss.append(totals[k] / max(seen[k], 1))
            if not np.isfinite(hists[k].train_loss[-1]):
                raise FloatingPointError(
                    f"training of member {k} (seed {seeds[k]}) diverged at epoch {epoch} "
                    f"(loss {hists[k].train_loss[-1]}); lower the learning rate"
                )
        if n_val == 0:  # no validation rows: every member trains for all epochs, keeps the last
            for k in running:
                hists[k].val_loss.append(float("nan"))
                hists[k].best_epoch = epoch
                best_state[k] = None
            continue
        template.eval()
        with torch.no_grad():
            outs = forward(va["x"])
            for k in running:
                _, monitored = loss_fns[k](_Outputs(outs[k]), {key: v[k] for key, v in va.items()})
                val = float(monitored)
                hists[k].val_loss.append(val)
                if val < best[k] - 1e-7:
                    best[k], since_best[k], hists[k].best_epoch = val, 0, epoch
                    best_state[k] = {n: v[k].detach().clone() for n, v in stacked.items()}
                else:
                    since_best[k] += 1
                    if since_best[k] >= params.patience:
                        hists[k].stopped_early = True
                        active[k] = False
                        frozen[k] = {n: v[k].detach().clone() for n, v in stacked.items()}
        if not any(active):
            break
    for k, hist in enumerate(hists):
        if n_val and hist.best_epoch < 0:
            raise FloatingPointError(
                f"member {k} (seed {seeds[k]}): the validation loss was not finite (NaN) at any "
                f"of its {hist.n_epochs} epochs, so no weights could be selected"
            )
    with torch.no_grad():
        for k, net in enumerate(nets):
            state = best_state[k]
            if state is None:  # no validation: the last weights
                state = {n: v[k].detach().clone() for n, v in stacked.items()}
            net.load_state_dict({**state, **{n: v[k] for n, v in buffers.items()}})
            net.eval()
    return nets, hists


def fit_batched(
    estimators: Sequence[Any],
    Y: Sequence[Any],
    T: Sequence[Any],
    X: Sequence[Any],
    fit_params: Sequence[Mapping[str, Any]] | None = None,
    *,
    vectorize: bool = True,
) -> list[Any]:
    """Fit each estimator on its own ``(Y[i], T[i], X[i])`` as ``fit`` would, networks batched.

    The estimators are learners whose registry entry says ``batched`` (TARNet, CFR, DragonNet:
    :func:`ehrcausal.learners.registry.batched_learners`); ``fit_params[i]`` holds estimator
    i's ``fit`` keywords (``val_mask``). Every estimator is checked and prepared exactly as in
    ``fit`` (boundary checks, validation split, standardisation, member seeds); then all the
    networks (each estimator's ``n_ensemble`` members) of the same architecture and training
    settings train together in :func:`train_batched`, and each estimator keeps its own. Returns
    the estimators, fitted.
    """
    n = len(estimators)
    fit_params = [{} for _ in range(n)] if fit_params is None else list(fit_params)
    for name, seq in (("Y", Y), ("T", T), ("X", X), ("fit_params", fit_params)):
        if len(seq) != n:
            raise ValueError(f"{name} has {len(seq)} entries for {n} estimators")
    for est in estimators:
        if not getattr(est, "supports_batched_training", False):
            raise ValueError(f"{type(est).__name__} does not support batched training")
    plans = [est._batched_plan(y, t, X=x, **dict(fp)) for est, y, t, x, fp
             in zip(estimators, Y, T, X, fit_params, strict=True)]
    groups: dict[Any, list[int]] = {}
    for i, plan in enumerate(plans):
        groups.setdefault(plan.signature, []).append(i)
    trained: list[dict[int, tuple[nn.Module, TrainingHistory]]] = [{} for _ in range(n)]
    for owners in groups.values():
        members = [(i, m) for i in owners for m in range(len(plans[i].seeds))]
        first = plans[owners[0]]
        nets, hists = train_batched(
            first.build, [plans[i].loss for i, _ in members], [plans[i].data for i, _ in members],
            [plans[i].train_idx for i, _ in members], [plans[i].val_idx for i, _ in members],
            params=first.params, seeds=[plans[i].seeds[m] for i, m in members],
            device=first.device, decay=first.decay, vectorize=vectorize,
            **first.train_kwargs,
        )
        for (i, m), net, hist in zip(members, nets, hists, strict=True):
            trained[i][m] = (net, hist)
    for est, plan, done in zip(estimators, plans, trained, strict=True):
        est._batched_adopt(plan, [done[m][0] for m in range(len(plan.seeds))],
                           [done[m][1] for m in range(len(plan.seeds))])
    return list(estimators)
