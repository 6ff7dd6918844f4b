"""X-MultiTask as its public code computes it (Wizaaard/X-MultiTask, commit 4398d00).

The released learner (``base_estimators/xmultitask_learner.py``, class ``XMultiTaskLearner``)
fits **one decision per run**; its two "tasks" are the two treatment arms: one network
(``base_models.py``, ``MultiTaskNet``, lines 38-78) with a shared trunk and a head per arm,
``m0`` and ``m1``. :class:`XMultiTaskReleased` computes what that code computes, decision by
decision (``fit_tasks`` fits an independent copy per decision), and lists here every place
where it departs from the method the paper describes (line numbers of
``xmultitask_learner.py`` unless stated):

1. **IPW weights overwritten by ones** (lines 83-86): the inverse-propensity weights are sliced
   and then replaced by ``torch.ones_like``. Even without that line they would be inert: the
   criterion is ``nn.CrossEntropyLoss()`` with its default mean reduction (line 40), a scalar,
   so ``(criterion(...) * w).mean()`` (lines 88-89) only rescales it; and the weights are sliced
   by batch *position* (line 83) from loaders that shuffle (line 51), so they would not belong
   to the rows of the batch.
2. **Arms as tasks, paired batches**: each optimisation step takes one shuffled batch of
   controls and one of treated patients (``zip`` of two loaders with ``drop_last=True``, lines
   51 and 75), so an epoch has ``min(n_0, n_1) // batch_size`` steps and the two arms' mean
   losses are added with equal weight whatever their sizes (line 92); the trunk sees the two
   batches in separate forward passes (lines 80-81). No validation split, no early stopping:
   all epochs are run (lines 118-125).
3. **Double L2 penalty**: ``lambda_reg`` is Adam's ``weight_decay`` (lines 37-38) *and* an
   explicit ``lambda_reg * sum(p**2)`` in the loss (line 90).
4. **Stage-2 targets are probabilities minus integer labels** (lines 132-139): for a control,
   ``softmax(m1(x))[y] - y``; for a treated patient, ``y - softmax(m0(x))[y]``, with ``y`` the
   class *index* (0..3), not a one-hot vector; the effect networks (one output per arm) are
   regressed on them with squared error (lines 141-149).
5. **D1 = D0** (lines 232-243): both imputed differences are computed from the outcome heads
   at the same ``x``, ``D1 = D0 = softmax(m1(x)) - softmax(m0(x))``, so the propensity-weighted
   average ``e D1 + (1 - e) D0`` (line 246) is just ``mu1(x) - mu0(x)``.
6. **Softmax over one output** (lines 249-251): the stage-2 outputs pass through a softmax
   over a single column, which is identically 1, so ``tau1 - tau0 = 0``. The squared-error
   term of stage 2 therefore has zero gradient; only the weight penalties of item 3 move the
   effect networks, and their outputs never reach the effect.
7. **Combination** (lines 255-256): ``e [e D1 + (1 - e) D0] + (1 - e) (tau1 - tau0)``, which by
   items 5 and 6 is ``e(x) [mu1(x) - mu0(x)]``: a T-learner difference on a shared trunk,
   shrunk toward zero by the propensity.

Not reproduced: the released propensity model is a separate network (``predict_propensity``,
lines 153-182, softmax of its class-1 output, clipped to ``[1e-5, 1 - 1e-5]``); ours is the
package's seeded logistic regression with the same clip. The released heads have
``num_task_specific_layers`` of Linear-BatchNorm-ReLU-Dropout halving the width (``base_models.py``
lines 56-69); ours are :class:`~ehrcausal.learners.multitask.MultiTaskNet` heads
(``n_head_layers`` Linear-ReLU layers). Covariates are standardised on the fitted rows (the
released preprocessing min-max scales the float columns, ``preprocessing/preprocessing.py``
lines 482-485), and its tuned sizes (``configs/learners_config.json``: width 2560, 4 + 4
layers) are replaced by the chapter's small ones. The released code is classification only;
for a continuous outcome (vector of D domains) we run the same stage 1 with squared error on
standardised outcomes and no stage 2 (which, by item 6, could not change the effect).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..runtime import child_seeds, resolve_device, torch_seed
from ..validation import check_int, check_number, warn_overlap
from .base import store_params
from .multioutcome import MultiOutcomeLearner, OutcomeTask
from .multitask import MultiTaskNet
from .registry import register
from .torch_scaffold import Standardiser, predict_chunked

__all__ = [
    "XMultiTaskReleased",
    "paired_arm_batches",
    "released_combination",
    "released_stage2_targets",
]


def paired_arm_batches(
    n_control: int, n_treated: int, batch_size: int, generator: torch.Generator
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of the released schedule: pairs (control batch, treated batch).

    Each arm's rows are shuffled and cut into full batches of ``batch_size`` (an incomplete
    last batch is dropped, ``drop_last=True``); the epoch zips the two lists, so it has
    ``min(n_control // batch_size, n_treated // batch_size)`` steps.
    """
    perm_c = torch.randperm(n_control, generator=generator)
    perm_t = torch.randperm(n_treated, generator=generator)
    steps = min(n_control // batch_size, n_treated // batch_size)
    return [
        (perm_c[i * batch_size : (i + 1) * batch_size], perm_t[i * batch_size : (i + 1) * batch_size])
        for i in range(steps)
    ]


def released_stage2_targets(p_other: np.ndarray, labels: np.ndarray, treated: bool) -> np.ndarray:
    """The released stage-2 targets: probability of the observed class minus the class index.

    ``p_other`` are the class probabilities of the *other* arm's head at each row (``m1`` for
    controls, ``m0`` for treated patients), ``labels`` the integer classes. Controls get
    ``p_other[i, y_i] - y_i``, treated patients ``y_i - p_other[i, y_i]``.
    """
    y = np.asarray(labels, dtype=int)
    p = np.asarray(p_other, dtype=float)[np.arange(len(y)), y]
    return y - p if treated else p - y


def released_combination(
    e: np.ndarray, mu0: np.ndarray, mu1: np.ndarray, tau0_out: np.ndarray, tau1_out: np.ndarray
) -> np.ndarray:
    """The released ``predict_effect``: ``e [e D1 + (1 - e) D0] + (1 - e) (s1 - s0)``.

    ``D1 = D0 = mu1 - mu0`` (both from the outcome heads at the same rows) and ``s_a`` is the
    softmax of the stage-2 output of arm ``a`` over its single column (identically 1).
    """
    e = np.asarray(e, dtype=float)[:, None]
    d1 = mu1 - mu0  # "predictions_treated - imputed_control"
    d0 = mu1 - mu0  # "imputed_treated - predictions_control"
    per_class = e * d1 + (1 - e) * d0

    def softmax(z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=float).reshape(len(z), -1)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    return e * per_class + (1 - e) * (softmax(tau1_out) - softmax(tau0_out))


class XMultiTaskReleased(MultiOutcomeLearner):
    """X-MultiTask as the public code computes it: one decision per fit, arms as tasks.

    See the module docstring for the computation and each departure from the paper, with the
    file and line of the public code. The effect is ``e(x) [mu1(x) - mu0(x)]``.

    Parameters
    ----------
    outcome, n_classes : see :class:`~ehrcausal.learners.multioutcome.MultiOutcomeLearner`.
    hidden, n_layers, n_head_layers, dropout : the network (:class:`MultiTaskNet` with the two
        arms' heads).
    epochs, batch_size, lr : Adam; every epoch is run (no early stopping); ``batch_size`` >= 2
        and at most the smaller arm (the released loaders drop incomplete batches, so a smaller
        arm would leave the network untrained; we refuse it); 32 as the released configuration
        (``configs/learners_config.json``).
    weight_decay : the released ``lambda_reg``, used twice: Adam's weight decay and an explicit
        ``weight_decay * sum(p^2)`` in the loss.
    propensity_clip : the propensity is clipped to ``[clip, 1 - clip]`` (released: 1e-5).
    random_state, device : as the other torch learners.

    Attributes
    ----------
    propensity_model_, outcome_net_, effect_net_ (None for a continuous outcome),
    train_loss_, effect_loss_ (per-epoch mean step losses) and stage2_targets_ (the imputed
    targets of the controls and treated patients).
    """

    def __init__(
        self,
        outcome: str = "class",
        n_classes: int | None = None,
        hidden: int = 64,
        n_layers: int = 2,
        n_head_layers: int = 0,
        dropout: float = 0.1,
        epochs: int = 100,
        batch_size: int = 32,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        propensity_clip: float = 1e-5,
        random_state: int | None = None,
        device: str = "auto",
    ) -> None:
        store_params(self, locals())

    def _fit_one(self, task: OutcomeTask, seed: int, **fit_params: Any) -> None:
        from ..nuisance import make_model, predict_treated

        self._reject_unknown(fit_params)
        hidden = check_int(self.hidden, "hidden", 1)
        epochs = check_int(self.epochs, "epochs", 1)
        try:
            batch_size = check_int(self.batch_size, "batch_size", 2)
        except ValueError as err:
            raise ValueError(
                f"{err} (the shared trunk's BatchNorm layers need two samples per batch)"
            ) from None
        lr = check_number(self.lr, "lr", 0.0, low_open=True)
        lam = check_number(self.weight_decay, "weight_decay", 0.0)
        clip = check_number(self.propensity_clip, "propensity_clip", 0.0, 0.5, high_open=True)
        net_kwargs = {
            "hidden": hidden,
            "n_layers": check_int(self.n_layers, "n_layers", 1),
            "dropout": check_number(self.dropout, "dropout", 0.0, 1.0, high_open=True),
            "n_head_layers": check_int(self.n_head_layers, "n_head_layers", 0),
        }
        arms = [np.flatnonzero(task.T == a) for a in (0, 1)]
        if min(len(a) for a in arms) < batch_size:
            raise ValueError(
                f"batch_size must be at most the smaller arm ({min(len(a) for a in arms)} units): "
                f"the released loaders drop incomplete batches, got {batch_size}"
            )
        self.device_ = resolve_device(self.device)
        s_prop, s_stage1, s_stage2 = child_seeds(seed, 3)
        self.propensity_model_ = make_model("ridge", "classifier", s_prop).fit(task.X, task.T)
        self._clip = max(clip, 1e-12)
        warn_overlap(predict_treated(self.propensity_model_, task.X), "XMultiTaskReleased")
        self.x_scaler_ = Standardiser.fit(task.X)
        self.is_class_ = task.spec.outcome == "class"
        target = task.targets()
        self.y_scaler_ = (Standardiser.identity(target.shape[1]) if self.is_class_
                          else Standardiser.fit(target))
        dev = torch.device(self.device_)
        x = torch.as_tensor(self.x_scaler_.transform(task.X), dtype=torch.float32, device=dev)
        if self.is_class_:
            y = torch.as_tensor(task.Y, dtype=torch.long, device=dev)
        else:
            y = torch.as_tensor(self.y_scaler_.transform(target), dtype=torch.float32, device=dev)
        k = task.spec.n_outputs

        def loss_fn(out: torch.Tensor, yb: torch.Tensor, regression: bool) -> torch.Tensor:
            if regression:
                return F.mse_loss(out, yb.reshape(out.shape))
            return F.cross_entropy(out, yb)

        self.outcome_net_, self.train_loss_ = self._train(
            k, x, y, arms, lambda o, b: loss_fn(o, b, not self.is_class_), net_kwargs, epochs,
            batch_size, lr, lam, s_stage1)
        self.effect_net_, self.effect_loss_, self.stage2_targets_ = None, [], {}
        if self.is_class_:
            p0, p1 = self._outcomes_one(task.X)
            te0 = released_stage2_targets(p1[arms[0]], task.Y[arms[0]], treated=False)
            te1 = released_stage2_targets(p0[arms[1]], task.Y[arms[1]], treated=True)
            self.stage2_targets_ = {"control": te0, "treated": te1}
            z = torch.zeros(len(task.T), dtype=torch.float32, device=dev)
            z[torch.as_tensor(arms[0], device=dev)] = torch.as_tensor(te0, dtype=torch.float32)
            z[torch.as_tensor(arms[1], device=dev)] = torch.as_tensor(te1, dtype=torch.float32)
            self.effect_net_, self.effect_loss_ = self._train(
                1, x, z, arms, lambda o, b: loss_fn(torch.softmax(o, dim=1), b, True),
                net_kwargs, epochs, batch_size, lr, lam, s_stage2)

    def _train(self, k, x, y, arms, loss, net_kwargs, epochs, batch_size, lr, lam, seed):
        """The released loop: paired arm batches, two arm losses plus lam * sum(p^2)."""
        dev = x.device
        rows = [torch.as_tensor(a, device=dev) for a in arms]
        history = []
        with torch_seed(seed):
            net = MultiTaskNet(x.shape[1], [k, k], **net_kwargs).to(dev)
            opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=lam)
            gen = torch.Generator().manual_seed(seed)
            for _ in range(epochs):
                net.train()
                total = 0.0
                steps = paired_arm_batches(len(arms[0]), len(arms[1]), batch_size, gen)
                for bc, bt in steps:
                    ic, it = rows[0][bc.to(dev)], rows[1][bt.to(dev)]
                    out_c = net.heads[0](net(x[ic]))
                    out_t = net.heads[1](net(x[it]))
                    penalty = lam * sum(p.pow(2).sum() for p in net.parameters())
                    step = loss(out_c, y[ic]) + loss(out_t, y[it]) + penalty
                    opt.zero_grad(set_to_none=True)
                    step.backward()
                    opt.step()
                    total += float(step.detach())
                history.append(total / max(len(steps), 1))
                if not np.isfinite(history[-1]):
                    raise FloatingPointError("training diverged; lower the learning rate")
        net.eval()
        return net, history

    def _heads(self, net: MultiTaskNet, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        def both(xb: torch.Tensor) -> dict[str, torch.Tensor]:
            phi = net(xb)
            return {"h0": net.heads[0](phi), "h1": net.heads[1](phi)}

        out = predict_chunked(both, self.x_scaler_.transform(X), device=self.device_,
                              modules=[net])
        return out["h0"], out["h1"]

    def _model_outcomes(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        o0, o1 = self._heads(self.outcome_net_, X)
        if self.is_class_:
            return torch.softmax(torch.as_tensor(o0), 1).numpy(), torch.softmax(
                torch.as_tensor(o1), 1).numpy()
        return o0, o1

    def _outcomes_one(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m0, m1 = self._model_outcomes(X)
        return self.y_scaler_.inverse_transform(m0), self.y_scaler_.inverse_transform(m1)

    def propensity(self, X: Any, task: str | None = None) -> np.ndarray:
        """The clipped propensity of ``task``'s model."""
        from ..nuisance import predict_treated

        spec = self._resolve_task(task)
        est = self._estimator_for(spec.name)
        return predict_treated(est.propensity_model_, self._check_X(X), clip=est._clip)

    def _effect_one(self, X: np.ndarray) -> np.ndarray:
        from ..nuisance import predict_treated

        e = predict_treated(self.propensity_model_, X, clip=self._clip)
        m0, m1 = self._model_outcomes(X)
        if self.effect_net_ is not None:
            t0, t1 = self._heads(self.effect_net_, X)
        else:
            t0 = t1 = np.zeros((len(X), 1))
        return self.y_scaler_.scale_difference(released_combination(e, m0, m1, t0, t1))


register(
    "xmultitask_released",
    XMultiTaskReleased,
    "X-MultiTask as its code computes it: per decision, arms as tasks, effect e(x)(p1 - p0)",
    family="multi_outcome", budget=("epochs", "device"),
)
