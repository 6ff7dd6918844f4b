"""Targets of AACE's final stage in annotation space, and their selection from data alone.

Known answers: with a noiseless outcome that is linear in the annotation space and nuisances
of the right (linear) family, every target equals the true effect on every annotated row, and
the final stage recovers it from a representation that contains the annotations. The selection
rule is checked on two constructed cases where one target is far better than another, in
opposite directions.
"""

from __future__ import annotations

import numpy as np
import pytest

from ehrcausal.learners import available, make, spec
from ehrcausal.learners.aace import AACE, SELECTION_LOSSES, TARGETS, target_variants
from ehrcausal.metrics import pehe


def cohort(n: int, seed: int, *, noise: float = 0.0, interaction: float = 0.0,
           constant: float | None = None, confounding: float = 1.0) -> dict[str, np.ndarray]:
    """Three binary facts F (annotations) and one binary confounder C; phi = [F, C, junk].

    logit e = -0.3 + confounding (1.2 F0 - 0.8 F1 + 0.6 C); M0 = 1 + F0 + 0.5 F1 - 0.5 F2 + C
    + interaction * 4 F0 F1 (a term no linear model holds); tau = -1 + 0.8 F0 - 1.2 F1 + 0.5 F2
    (or ``constant``); Y = M0 + T tau + N(0, noise^2).
    """
    rng = np.random.default_rng(seed)
    F = rng.binomial(1, [0.5, 0.4, 0.5], size=(n, 3)).astype(float)
    C = rng.binomial(1, 0.5, size=(n, 1)).astype(float)
    e = 1 / (1 + np.exp(-(-0.3 + confounding * (1.2 * F[:, 0] - 0.8 * F[:, 1] + 0.6 * C[:, 0]))))
    T = rng.binomial(1, e)
    m0 = 1 + F[:, 0] + 0.5 * F[:, 1] - 0.5 * F[:, 2] + C[:, 0] + interaction * 4 * F[:, 0] * F[:, 1]
    tau = (-1 + 0.8 * F[:, 0] - 1.2 * F[:, 1] + 0.5 * F[:, 2] if constant is None
           else np.full(n, constant))
    Y = m0 + T * tau + rng.normal(scale=noise, size=n) if noise else m0 + T * tau
    phi = np.hstack([F, C, rng.normal(size=(n, 2))])
    return {"Y": Y, "T": T, "F": F, "C": C, "phi": phi, "tau": tau}


def fit(est: AACE, d: dict[str, np.ndarray]) -> AACE:
    return est.fit(d["Y"], d["T"], X=d["phi"], annotations=d["F"], confounders=d["C"])


def test_every_target_is_registered_as_a_variant():
    variants = target_variants()
    assert set(variants) == set(TARGETS)
    for target, name in variants.items():
        assert spec(name).family == "aace" and make(name).get_params()["target"] == target
    assert make("aace").get_params()["target"] == "select"
    assert set(variants.values()) <= set(available("aace"))


def test_noiseless_linear_outcome_every_target_recovers_tau():
    d = cohort(400, 0)
    est = fit(AACE(nuisance="linear", final="linear", cv=2, random_state=0), d)
    assert set(est.targets_) == set(TARGETS)
    for name in TARGETS:
        np.testing.assert_allclose(est.targets_[name], d["tau"], atol=1e-8, err_msg=name)
        np.testing.assert_allclose(est.effect_of_target(d["phi"], name), d["tau"], atol=1e-8,
                                   err_msg=name)
    # all targets are exact, so every held-out loss is the same and the first one is chosen
    assert est.target_ == next(iter(TARGETS))


@pytest.mark.parametrize("target", list(TARGETS))
def test_constant_effect_is_recovered_on_average(target):
    d = cohort(3000, 1, noise=1.0, constant=-0.7)
    est = fit(AACE(nuisance="linear", target=target, cv=2, random_state=0), d)
    assert est.target_ == target and est.target_losses_ == {}
    assert abs(est.effect(d["phi"]).mean() + 0.7) < 0.1


def test_single_target_variant_equals_the_same_target_inside_the_selection():
    d = cohort(300, 2, noise=1.0)
    chooser = fit(AACE(nuisance="ridge", cv=3, random_state=4), d)
    for target in ("plugin", "x", "r"):
        alone = fit(AACE(nuisance="ridge", cv=3, target=target, random_state=4), d)
        np.testing.assert_allclose(alone.effect(d["phi"]),
                                   chooser.effect_of_target(d["phi"], target))


@pytest.mark.parametrize("loss", list(SELECTION_LOSSES))
def test_selection_prefers_the_smooth_target_when_the_outcome_model_is_right(loss):
    # linear outcome models are right, propensities extreme and the noise large: the DR score is
    # unbiased but very noisy, the plug-in is exact up to estimation error
    d = cohort(1500, 3, noise=2.0, confounding=3.0)
    est = fit(AACE(nuisance="linear", cv=2, candidates=("dr", "plugin"), selection=loss,
                   random_state=0), d)
    true = {t: pehe(d["tau"], est.effect_of_target(d["phi"], t)) for t in ("dr", "plugin")}
    assert true["plugin"] < true["dr"]
    assert est.target_ == "plugin" and est.target_losses_["plugin"] < est.target_losses_["dr"]
    np.testing.assert_allclose(est.effect(d["phi"]), est.effect_of_target(d["phi"], "plugin"))


def test_selection_prefers_dr_when_the_outcome_model_is_biased():
    # an interaction no linear outcome model holds, with a right (logistic) propensity: the
    # plug-in difference is biased, the DR score corrects it
    d = cohort(3000, 4, noise=0.3, interaction=1.0, confounding=2.0)
    est = fit(AACE(nuisance=("linear", "ridge"), cv=2, candidates=("plugin", "dr"),
                   random_state=0), d)
    true = {t: pehe(d["tau"], est.effect_of_target(d["phi"], t)) for t in ("dr", "plugin")}
    assert true["dr"] < true["plugin"]
    assert est.target_ == "dr"


def test_bad_target_options_are_refused():
    d = cohort(100, 5, noise=1.0)
    for params, match in [
        ({"target": "ipw"}, "target must be 'select' or one of dr, plugin"),
        ({"candidates": ("dr", "bogus")}, "candidates must be a non-empty list"),
        ({"candidates": ()}, "candidates must be a non-empty list"),
        ({"candidates": "dr"}, "candidates must be a non-empty list"),
        ({"selection": "pehe"}, "selection must be one of dr_loss, r_loss"),
        ({"selection_cv": 1}, "selection_cv"),
    ]:
        with pytest.raises(ValueError, match=match):
            fit(AACE(nuisance="linear", cv=2, **params), d)
    few = cohort(100, 5, noise=1.0)
    few["T"] = np.where(np.arange(100) < 4, 1, 0)  # 4 treated
    with pytest.raises(ValueError, match="4 treated .* at least selection_cv = 5"):
        fit(AACE(nuisance="linear", cv=2, random_state=0), few)
    fit(AACE(nuisance="linear", cv=2, selection_cv=4, random_state=0), few)
    est = fit(AACE(nuisance="linear", cv=2, target="dr", random_state=0), d)
    with pytest.raises(ValueError, match="target 'plugin' was not fitted; fitted targets: dr"):
        est.effect_of_target(d["phi"], "plugin")
