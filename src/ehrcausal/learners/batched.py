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

The stacked path (:func:`_train_group_stacked`, what :func:`fit_batched` uses when a group has
more than one network) goes further: the learner supplies its loss of all K members at once
(``stacked_loss``, e.g. :meth:`~ehrcausal.learners.neural.NeuralCATELearner._stacked_loss`),
so a step is one loss call instead of K; Adam runs member-wise through torch's fused kernel, so
members may have their own learning rates and weight decays; and members that have finished
leave the stacked tensors instead of being computed and then restored. On a CPU a step of the
default architecture is bound by its matrix products, so batching saves the per-operation
overhead of the sequential loop but cannot beat the processor's floating-point rate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from ..runtime import torch_seed
from ..validation import check_int
from .torch_scaffold import TorchParams
from .training import BatchSampler, LossFn, TrainingHistory, permuted_batches

__all__ = ["fit_batched", "train_batched"]


# stacked_loss(outputs, batch, constants, training) -> (loss, monitored), each (K,): all members
# at once; with training=False only ``monitored`` is used (the validation criterion)
StackedLossFn = Callable[..., tuple[torch.Tensor, torch.Tensor]]
#: Adam's constants, as torch's defaults (Kingma & Ba 2015)
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8


class _Outputs:
    """Stands in for a network inside a loss function: returns one member's precomputed outputs."""

    def __init__(self, out: Mapping[str, torch.Tensor]) -> None:
        self.out = out

    def __call__(self, x: torch.Tensor) -> Mapping[str, torch.Tensor]:
        return self.out


def _stack(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.stack(list(tensors))


def _log_train_losses(hists: Sequence[TrainingHistory], members: Sequence[int],
                      losses: Sequence[float], seeds: Sequence[int], epoch: int) -> None:
    """Append each member's epoch training loss to its history; a member whose loss is not
    finite stops the whole batch with :class:`FloatingPointError` naming it and its seed."""
    for k, loss in zip(members, losses, strict=True):
        hists[k].train_loss.append(loss)
        if not np.isfinite(loss):
            raise FloatingPointError(
                f"training of member {k} (seed {seeds[k]}) diverged at epoch {epoch} "
                f"(loss {loss}); lower the learning rate"
            )


def _stack_rows(data: Sequence[Mapping[str, torch.Tensor]], idx: Sequence[np.ndarray],
                device: torch.device) -> dict[str, torch.Tensor]:
    """Each member's rows ``idx[k]`` of every tensor of ``data[k]``, stacked along a new first
    axis (the members' splits have one size, so the stack is rectangular)."""
    return {key: _stack([d[key][torch.as_tensor(i, device=device)]
                         for d, i in zip(data, idx, strict=True)]) for key in data[0]}


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
    stacked_loss: StackedLossFn | None = None,
    constants: Sequence[Mapping[str, float]] | None = None,
    lrs: Sequence[float] | None = None,
    weight_decays: Sequence[float] | None = None,
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

    The stacked path: with ``stacked_loss(out, batch, const) -> (loss, monitored)``, the loss of
    all members at once (each a (K,) tensor; ``const`` maps each name of ``constants[k]`` to a
    (K,) tensor), ``vectorize`` and more than one member in a group, the group trains by
    :func:`_train_group_stacked`: one loss call per step, finished members dropped from the
    batch, and a member-wise Adam, so ``lrs[k]`` and ``weight_decays[k]`` may differ between
    members (a hyperparameter grid in one pass). Otherwise they must all equal ``params``'.
    """
    k_members = len(seeds)
    if k_members == 0:
        raise ValueError("train_batched needs at least one member (seeds is empty)")
    for name, seq in (("loss_fns", loss_fns), ("data", data), ("train_idx", train_idx),
                      ("val_idx", val_idx)):
        if len(seq) != k_members:
            raise ValueError(f"{name} has {len(seq)} entries for {k_members} seeds")
    seeds = [check_int(s, "seed", 0) for s in seeds]
    lrs = [params.lr] * k_members if lrs is None else [float(v) for v in lrs]
    weight_decays = ([params.weight_decay] * k_members if weight_decays is None
                     else [float(v) for v in weight_decays])
    constants = [{}] * k_members if constants is None else list(constants)
    for name, seq in (("lrs", lrs), ("weight_decays", weight_decays), ("constants", constants)):
        if len(seq) != k_members:
            raise ValueError(f"{name} has {len(seq)} entries for {k_members} seeds")
    groups: dict[tuple[int, int], list[int]] = {}
    for k in range(k_members):
        groups.setdefault((len(train_idx[k]), len(val_idx[k])), []).append(k)
    nets: list[nn.Module | None] = [None] * k_members
    hists: list[TrainingHistory | None] = [None] * k_members
    for members in groups.values():
        if stacked_loss is not None and vectorize and len(members) > 1:
            # members that share a learning rate and weight decay side by side (one Adam call)
            members = sorted(members, key=lambda k: (lrs[k], weight_decays[k]))
            out_nets, out_hists = _train_group_stacked(
                build, stacked_loss, [constants[k] for k in members], [data[k] for k in members],
                [train_idx[k] for k in members], [val_idx[k] for k in members], params=params,
                seeds=[seeds[k] for k in members], lrs=[lrs[k] for k in members],
                weight_decays=[weight_decays[k] for k in members], device=device, decay=decay,
                batch_sampler=batch_sampler, progress=progress, desc=desc, lr_decay=lr_decay,
                lr_decay_steps=lr_decay_steps,
            )
            for k, net, hist in zip(members, out_nets, out_hists, strict=True):
                nets[k], hists[k] = net, hist
            continue
        if len({(lrs[k], weight_decays[k]) for k in members}) > 1:
            raise ValueError(
                "members with different lrs or weight_decays need the stacked path "
                "(stacked_loss, vectorize=True and more than one member of the same row counts)"
            )
        group_params = replace(params, lr=lrs[members[0]],
                               weight_decay=weight_decays[members[0]])
        out_nets, out_hists = _train_group(
            build, [loss_fns[k] for k in members], [data[k] for k in members],
            [train_idx[k] for k in members], [val_idx[k] for k in members],
            params=group_params, seeds=[seeds[k] for k in members], device=device, decay=decay,
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
    tr, va = _stack_rows(data, train_idx, dev), _stack_rows(data, val_idx, dev)
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
        _log_train_losses(hists, running, [totals[k] / max(seen[k], 1) for k in running],
                          seeds, epoch)
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


def _adam_runs(lr: Sequence[float], wd: Sequence[float]) -> list[tuple[int, int, float, float]]:
    """Contiguous runs ``(start, stop, lr, weight_decay)`` of members that share both settings."""
    runs: list[tuple[int, int, float, float]] = []
    for j, setting in enumerate(zip(lr, wd, strict=True)):
        if runs and runs[-1][2:] == setting:
            runs[-1] = (runs[-1][0], j + 1, *setting)
        else:
            runs.append((j, j + 1, *setting))
    return runs


def _adam_step(
    params: dict[str, torch.Tensor],
    state: dict[str, tuple[torch.Tensor, torch.Tensor]],
    step: int,
    runs: Sequence[tuple[int, int, float, float]],
    lr_factor: float,
    decayed: set[str],
) -> None:
    """One Adam step (Kingma & Ba 2015, coupled L2 as ``torch.optim.Adam``) of stacked members.

    Members ``start:stop`` of a run share a learning rate and weight decay: their slices of
    every parameter and of its moments go through torch's fused Adam kernel (the one
    ``torch.optim.Adam(fused=True)`` runs) with that run's settings, so each member moves as
    torch's Adam with its own settings would move it (the update is element-wise). ``step``
    counts this step from 1 (bias correction); only ``decayed`` names get the decay.
    """
    b1, b2 = ADAM_BETAS
    count = torch.tensor(float(step))
    names = [n for n, p in params.items() if p.grad is not None]  # torch's Adam skips the rest
    with torch.no_grad():
        for start, stop, lr, wd in runs:
            for chosen, decay in (([n for n in names if n in decayed], wd),
                                  ([n for n in names if n not in decayed], 0.0)):
                if not chosen:
                    continue
                torch._fused_adam_(
                    [params[n].detach()[start:stop] for n in chosen],
                    [params[n].grad[start:stop] for n in chosen],
                    [state[n][0][start:stop] for n in chosen],
                    [state[n][1][start:stop] for n in chosen],
                    [], [count] * len(chosen), amsgrad=False, lr=lr * lr_factor, beta1=b1,
                    beta2=b2, weight_decay=decay, eps=ADAM_EPS, maximize=False,
                )


def _train_group_stacked(
    build: Callable[[], nn.Module],
    stacked_loss: StackedLossFn,
    constants: Sequence[Mapping[str, float]],
    data: Sequence[Mapping[str, torch.Tensor]],
    train_idx: Sequence[np.ndarray],
    val_idx: Sequence[np.ndarray],
    *,
    params: TorchParams,
    seeds: Sequence[int],
    lrs: Sequence[float],
    weight_decays: Sequence[float],
    device: str,
    decay: Callable[[nn.Module], list[nn.Parameter]] | None,
    batch_sampler: BatchSampler | None,
    progress: bool,
    desc: str,
    lr_decay: float,
    lr_decay_steps: int,
) -> tuple[list[nn.Module], list[TrainingHistory]]:
    """The stacked pass: members' losses in one call, finished members leave the batch.

    Per step: one gather of every running member's mini-batch, one vectorised forward, one call
    of ``stacked_loss``, one backward and one member-wise Adam step (:func:`_adam_step`). Per
    epoch: one vectorised validation forward and loss; members that improved copy their
    weights into the stacked best weights (one masked copy per parameter); members that have
    gone ``patience`` epochs without improving are *removed* from every stacked tensor
    (parameters, Adam moments, rows), so later steps cost only the running members. Each
    member draws its own mini-batches from its own generator, as on the sequential path.
    """
    from torch.func import functional_call, stack_module_state, vmap
    from tqdm import tqdm

    K = len(seeds)
    nets = []
    for seed in seeds:
        with torch_seed(seed):
            nets.append(build().to(device))
    if any(isinstance(m, nn.Dropout) and m.p > 0 for m in nets[0].modules()):
        raise ValueError("train_batched does not support dropout > 0")
    template = nets[0]
    stacked, buffers = stack_module_state(nets)
    stacked = {n: v.detach().clone().requires_grad_(True) for n, v in stacked.items()}
    decayed = ({n for n, _ in template.named_parameters()} if decay is None else
               {n for n, p in template.named_parameters() if id(p) in {id(q) for q in
                                                                       decay(template)}})
    dev = torch.device(device)
    lr, wd = list(lrs), list(weight_decays)
    const = {name: torch.tensor([c[name] for c in constants], dtype=torch.float32, device=dev)
             for name in constants[0]}
    adam = {n: (torch.zeros_like(v), torch.zeros_like(v)) for n, v in stacked.items()}
    best = {n: v.detach().clone() for n, v in stacked.items()}  # all K members, by member

    def member_forward(p: dict, b: dict, x: torch.Tensor) -> Any:
        return functional_call(template, (p, b), (x,))

    forward = vmap(member_forward)
    tr, va = _stack_rows(data, train_idx, dev), _stack_rows(data, val_idx, dev)
    n_train, n_val = len(train_idx[0]), len(val_idx[0])
    sampler = permuted_batches(params.batch_size) if batch_sampler is None else batch_sampler
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    hists = [TrainingHistory() for _ in range(K)]
    best_val = [float("inf")] * K
    since_best = [0] * K
    alive = list(range(K))  # the running members, in the order of the stacked tensors
    n_steps = 0
    template.train()
    bar = tqdm(range(params.epochs), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        A = len(alive)
        schedules = [sampler(n_train, gens[k]) for k in alive]
        totals = torch.zeros(A, device=dev)
        seen = 0
        rows = torch.arange(A, device=dev)[:, None]
        for step in range(len(schedules[0])):
            idx = torch.stack([s[step] for s in schedules]).to(dev)
            batch = {key: v[rows, idx] for key, v in tr.items()}
            out = forward(stacked, buffers, batch["x"])
            loss, _ = stacked_loss(out, batch, const)
            for v in stacked.values():
                v.grad = None
            loss.sum().backward()
            n_steps += 1
            factor = lr_decay ** ((n_steps - 1) // lr_decay_steps)
            _adam_step(stacked, adam, n_steps, _adam_runs(lr, wd), factor, decayed)
            totals += loss.detach() * idx.shape[1]
            seen += idx.shape[1]
        _log_train_losses(hists, alive, (totals / max(seen, 1)).tolist(), seeds, epoch)
        if n_val == 0:  # no validation rows: every member trains for all epochs, keeps the last
            for k in alive:
                hists[k].val_loss.append(float("nan"))
                hists[k].best_epoch = epoch
            continue
        with torch.no_grad():
            _, monitored = stacked_loss(forward(stacked, buffers, va["x"]), va, const,
                                        training=False)
        improved, keep = [], []
        for j, (k, val) in enumerate(zip(alive, monitored.tolist(), strict=True)):
            hists[k].val_loss.append(val)
            if val < best_val[k] - 1e-7:
                best_val[k], since_best[k], hists[k].best_epoch = val, 0, epoch
                improved.append(j)
                keep.append(j)
            else:
                since_best[k] += 1
                if since_best[k] >= params.patience:
                    hists[k].stopped_early = True
                else:
                    keep.append(j)
        if improved:
            local = torch.as_tensor(improved, device=dev)
            target = torch.as_tensor([alive[j] for j in improved], device=dev)
            with torch.no_grad():
                for n, v in stacked.items():
                    best[n][target] = v[local]
        if len(keep) < A:  # finished members leave every stacked tensor
            if not keep:
                break
            sel = torch.as_tensor(keep, device=dev)
            stacked = {n: v.detach()[sel].clone().requires_grad_(True) for n, v in stacked.items()}
            adam = {n: (m[sel], s[sel]) for n, (m, s) in adam.items()}
            buffers = {n: v[sel] for n, v in buffers.items()}
            tr = {key: v[sel] for key, v in tr.items()}
            va = {key: v[sel] for key, v in va.items()}
            lr, wd = [lr[j] for j in keep], [wd[j] for j in keep]
            const = {name: v[sel] for name, v in const.items()}
            alive = [alive[j] for j in keep]
    if n_val == 0:  # the last weights of every member (all trained to the end)
        best = {n: v.detach() for n, v in stacked.items()}
    for k, hist in enumerate(hists):
        if n_val and hist.best_epoch < 0:
            raise FloatingPointError(
                f"member {k} (seed {seeds[k]}): the validation loss was not finite (NaN) at any "
                f"of its {hist.n_epochs} epochs, so no weights could be selected"
            )
    _, all_buffers = stack_module_state(nets)
    with torch.no_grad():
        for k, net in enumerate(nets):
            net.load_state_dict({**{n: v[k] for n, v in best.items()},
                                 **{n: v[k] for n, v in all_buffers.items()}})
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
        key = plan.stacked_signature if vectorize and plan.stacked_loss else plan.signature
        groups.setdefault(key, []).append(i)
    trained: list[dict[int, tuple[nn.Module, TrainingHistory]]] = [{} for _ in range(n)]
    for owners in groups.values():
        members = [(i, m) for i in owners for m in range(len(plans[i].seeds))]
        first = plans[owners[0]]
        nets, hists = train_batched(
            first.build, [plans[i].loss for i, _ in members], [plans[i].data for i, _ in members],
            [plans[i].train_idx for i, _ in members], [plans[i].val_idx for i, _ in members],
            params=first.params, seeds=[plans[i].seeds[m] for i, m in members],
            device=first.device, decay=first.decay, vectorize=vectorize,
            stacked_loss=first.stacked_loss if vectorize else None,
            constants=[plans[i].constants for i, _ in members],
            lrs=[plans[i].params.lr for i, _ in members],
            weight_decays=[plans[i].params.weight_decay for i, _ in members],
            **first.train_kwargs,
        )
        for (i, m), net, hist in zip(members, nets, hists, strict=True):
            trained[i][m] = (net, hist)
    for est, plan, done in zip(estimators, plans, trained, strict=True):
        est._batched_adopt(plan, [done[m][0] for m in range(len(plan.seeds))],
                           [done[m][1] for m in range(len(plan.seeds))])
    return list(estimators)
