"""Tests of the AACE learners, the risk-based policy and the oracle.

The model factory and the cross-fitting engine they use are tested in ``test_nuisance.py``.

The synthetic generator below mimics the AACE setting on arrays: five binary expert facts and
two binary tabular confounders span the annotation space; the representation phi is a noisy
linear embedding of the facts plus the tabular columns; treatment is strongly confounded by the
facts; the effect is linear in the facts and anti-aligned with the baseline risk (the sickest do
not benefit most), and lower outcomes are better.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.ensemble import RandomForestRegressor
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, LogisticRegression

import ehrcausal.learners.aace as aace_module  # noqa: F401  (registers the learners)
from ehrcausal.learners import make
from ehrcausal.learners.aace import AACE, Oracle, RiskBased
from ehrcausal.metrics import autoc, pehe
from ehrcausal.nuisance import aipw_scores
from ehrcausal.runtime import child_seeds

N_FACTS, N_TAB, EMB_DIM = 5, 2, 16


def simulate_annotated(
    n: int,
    seed: int,
    *,
    annotated_fraction: float = 0.5,
    annotation_logit: tuple[float, float, float] | None = None,
    noise: float = 1.0,
) -> dict[str, np.ndarray]:
    """Synthetic annotated cohort.

    F ~ Bernoulli facts (5), C ~ Bernoulli tabular confounders (2);
    phi = [F W + N(0, noise^2) (16 dims), C] with W ~ N(0, 1) drawn from the same seed;
    logit e = -1 + 1.5 F0 + 1.2 F1 - F2 + 0.8 F3 + 0.8 C0, e clipped to [0.05, 0.95];
    M0 = 1 + 1.5 F0 + 1.2 F1 + 0.5 F2 + 0.4 F4 + 0.8 C0 + 0.5 C1 (baseline risk);
    tau = -0.5 + 0.8 F0 + 0.6 F1 - 1.2 F2 - F3 - 0.8 F4 (negative = beneficial; the high-risk
    facts F0, F1 reduce the benefit); Y = M0 + T tau + N(0, 1).
    Annotation: uniform with ``annotated_fraction``, or, with ``annotation_logit = (b0, bT, bC)``,
    P(annotated) = sigmoid(b0 + bT T + bC C0) (depends on treatment and a tabular confounder).
    """
    rng = np.random.default_rng(seed)
    F = rng.binomial(1, [0.35, 0.3, 0.4, 0.45, 0.3], size=(n, N_FACTS)).astype(float)
    C = rng.binomial(1, [0.5, 0.4], size=(n, N_TAB)).astype(float)
    W = rng.normal(size=(N_FACTS, EMB_DIM))
    phi = np.hstack([F @ W + rng.normal(scale=noise, size=(n, EMB_DIM)), C])
    logit = -1.0 + 1.5 * F[:, 0] + 1.2 * F[:, 1] - 1.0 * F[:, 2] + 0.8 * F[:, 3] + 0.8 * C[:, 0]
    e = np.clip(1.0 / (1.0 + np.exp(-logit)), 0.05, 0.95)
    T = rng.binomial(1, e)
    m0 = (
        1.0 + 1.5 * F[:, 0] + 1.2 * F[:, 1] + 0.5 * F[:, 2] + 0.4 * F[:, 4]
        + 0.8 * C[:, 0] + 0.5 * C[:, 1]
    )
    tau = -0.5 + 0.8 * F[:, 0] + 0.6 * F[:, 1] - 1.2 * F[:, 2] - 1.0 * F[:, 3] - 0.8 * F[:, 4]
    Y = m0 + T * tau + rng.normal(size=n)
    if annotation_logit is None:
        p_annotated = np.full(n, annotated_fraction)
    else:
        b0, b_t, b_c = annotation_logit
        p_annotated = 1.0 / (1.0 + np.exp(-(b0 + b_t * T + b_c * C[:, 0])))
    annotated = rng.uniform(size=n) < p_annotated
    annotations = F.copy()
    annotations[~annotated] = np.nan
    return {
        "phi": phi, "T": T, "Y": Y, "annotations": annotations, "C": C, "tau": tau, "e": e,
        "m0": m0, "annotated": annotated,
    }


def fit_learner(est, d: dict[str, np.ndarray], rows: slice | np.ndarray = slice(None)):
    """Fit any of the three learners on ``rows`` of ``d`` with the inputs it needs."""
    Y, T, X = d["Y"][rows], d["T"][rows], d["phi"][rows]
    if isinstance(est, AACE):
        return est.fit(Y, T, X=X, annotations=d["annotations"][rows], confounders=d["C"][rows])
    if isinstance(est, Oracle):
        return est.fit(Y, T, X=X, tau=d["tau"][rows])
    return est.fit(Y, T, X=X)


@pytest.fixture(scope="module")
def small() -> dict[str, np.ndarray]:
    return simulate_annotated(400, seed=1)


@pytest.fixture(scope="module")
def large() -> dict[str, np.ndarray]:
    """8000 records: fit on the first 6000 (50 % annotated), evaluate on the last 2000."""
    return simulate_annotated(8000, seed=0)


FIT, TEST = slice(0, 6000), slice(6000, 8000)


def _scores(est, d) -> tuple[float, float]:
    """(PEHE, AUTOC) on the held-out rows; treat-first = most negative effect (lower Y better)."""
    eff = est.effect(d["phi"][TEST])
    return pehe(d["tau"][TEST], eff), autoc(-d["tau"][TEST], -eff)


# ---------------------------------------------------------------------------------------------
# protocol and registry
# ---------------------------------------------------------------------------------------------


def test_registry_names_make_and_fit(small):
    expected = {
        "aace": (AACE, {"cv": 5, "annotation_weighting": False}),
        "aace_no_crossfit": (AACE, {"cv": 1}),
        "aace_weighted": (AACE, {"annotation_weighting": True, "cv": 5}),
        "risk_based": (RiskBased, {}),
        "oracle": (Oracle, {}),
    }
    for name, (cls, params) in expected.items():
        est = make(name, random_state=0)
        assert type(est) is cls
        for key, value in params.items():
            assert est.get_params()[key] == value, (name, key)
        assert fit_learner(est, small) is est
        assert est.effect(small["phi"]).shape == (400,)
    assert AACE.estimates_effect and Oracle.estimates_effect and not RiskBased.estimates_effect


def test_protocol(small):
    est = AACE(nuisance="ridge", cv=3, random_state=0)
    with pytest.raises(NotFittedError):
        est.effect(small["phi"])
    assert fit_learner(est, small) is est
    tau = est.effect(small["phi"])
    assert tau.shape == (400,) and np.isfinite(tau).all()
    assert est.ate(small["phi"]) == pytest.approx(tau.mean())
    with pytest.raises(ValueError, match="columns"):
        est.effect(small["phi"][:, :5])
    # parameters are stored unchanged and survive clone
    params = est.get_params()
    assert params == {
        "nuisance": "ridge", "final": "ridge", "cv": 3, "propensity_clip": 0.05,
        "annotation_weighting": False, "annotation_clip": 0.05, "target": "select",
        "candidates": None, "selection": "r_loss", "selection_cv": 5, "random_state": 0,
    }
    copy = clone(est)
    assert copy.get_params() == params and not hasattr(copy, "final_model_")
    np.testing.assert_allclose(fit_learner(copy, small).effect(small["phi"]), tau)
    # fitted attributes
    n_ann = int(small["annotated"].sum())
    assert est.n_annotated_ == n_ann
    np.testing.assert_array_equal(est.annotated_, small["annotated"])
    assert est.pseudo_outcomes_.shape == est.propensity_.shape == (n_ann,)
    assert ((est.propensity_ >= 0.02) & (est.propensity_ <= 0.98)).all()
    np.testing.assert_array_equal(est.annotation_weights_, np.ones(n_ann))
    assert len(est.nuisance_models_) == 3
    for p in (RiskBased(random_state=0), Oracle(random_state=0)):
        assert clone(p).get_params() == p.get_params()


def test_annotations_as_dataframe(small):
    base = fit_learner(AACE(nuisance="ridge", cv=2, random_state=0), small).effect(small["phi"])
    frame = pd.DataFrame(small["annotations"], columns=[f"fact{i}" for i in range(N_FACTS)])
    est = AACE(nuisance="ridge", cv=2, random_state=0).fit(
        small["Y"], small["T"], X=small["phi"], annotations=frame, confounders=small["C"]
    )
    np.testing.assert_allclose(est.effect(small["phi"]), base)


def test_val_mask_and_unknown_fit_arguments_are_rejected(small):
    # nothing here is early-stopped: a validation mask is refused like any unknown argument
    Y, T, X = small["Y"], small["T"], small["phi"]
    mask = np.arange(400) < 100
    with pytest.raises(ValueError, match="unexpected fit argument.*val_mask.*annotations"):
        AACE(nuisance="ridge", cv=2).fit(Y, T, X=X, annotations=small["annotations"],
                                         val_mask=mask)
    with pytest.raises(ValueError, match="unexpected fit argument.*val_mask"):
        RiskBased().fit(Y, T, X=X, val_mask=mask)
    with pytest.raises(ValueError, match="unexpected fit argument.*'weights'.*tau"):
        Oracle().fit(Y, T, X=X, tau=small["tau"], weights=mask)
    assert not hasattr(RiskBased(), "fitted_")


def test_pseudo_outcomes_are_out_of_fold_aipw(small):
    # every annotated row's psi uses the nuisance models of the one fold that held it out
    est = fit_learner(AACE(nuisance="linear", cv=3, random_state=0), small)
    rows = small["annotated"]
    A = np.hstack([small["annotations"], small["C"]])[rows]
    y, t = small["Y"][rows], small["T"][rows]
    psi = np.full(len(y), np.nan)
    for (train, test), models in zip(est.folds_, est.nuisance_models_, strict=True):
        assert not np.intersect1d(train, test).size
        e = np.clip(models["propensity"].predict_proba(A[test])[:, 1], 0.05, 0.95)
        psi[test] = aipw_scores(
            y[test], t[test], models["mu0"].predict(A[test]), models["mu1"].predict(A[test]), e
        )
        # stratified folds: each held-out fold keeps the treated share
        assert abs(t[test].mean() - t.mean()) < 0.05
    np.testing.assert_allclose(est.pseudo_outcomes_, psi)
    # the folds and the models get independent child seeds of the nuisance seed
    seed_nuis = child_seeds(0, 3)[0]
    model_seed = child_seeds(seed_nuis, 2)[1]
    forest = fit_learner(AACE(nuisance="forest", cv=2, random_state=0), small)
    assert {m.random_state for fold in forest.nuisance_models_ for m in fold.values()} == {
        model_seed
    }


# ---------------------------------------------------------------------------------------------
# what the methods should do
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted_large(large):
    return {
        "aace": fit_learner(AACE(nuisance="ridge", cv=5, random_state=0), large, FIT),
        "risk_based": fit_learner(RiskBased(random_state=0), large, FIT),
        "oracle": fit_learner(Oracle(random_state=0), large, FIT),
    }


def test_aace_beats_risk_based_and_is_near_the_oracle(large, fitted_large):
    pehe_aace, autoc_aace = _scores(fitted_large["aace"], large)
    pehe_risk, autoc_risk = _scores(fitted_large["risk_based"], large)
    pehe_oracle, autoc_oracle = _scores(fitted_large["oracle"], large)
    # measured: AUTOC AACE 0.79, oracle 0.80, risk-based -0.19 (the sickest do not benefit most)
    assert autoc_risk < 0.0
    assert autoc_aace > autoc_risk + 0.5
    assert autoc_aace > 0.8 * autoc_oracle
    # measured: PEHE AACE 0.47 vs oracle 0.45
    assert pehe_aace < 1.5 * pehe_oracle
    assert pehe_oracle < pehe_aace  # the oracle is the floor for this model family


def test_oracle_recovers_an_effect_in_its_model_family(large):
    phi = large["phi"][FIT]
    tau = 0.3 * phi[:, 0] - 0.2 * phi[:, 3] + 1.0
    est = Oracle(final="linear", random_state=0)
    est.fit(large["Y"][FIT], large["T"][FIT], X=phi, tau=tau)
    assert pehe(tau, est.effect(phi)) < 1e-8


def test_oracle_needs_tau(small):
    with pytest.raises(ValueError, match="true effect: pass tau"):
        Oracle().fit(small["Y"], small["T"], X=small["phi"])
    with pytest.raises(ValueError, match="different numbers of rows"):
        Oracle().fit(small["Y"], small["T"], X=small["phi"], tau=small["tau"][:-1])


def test_risk_based_ranks_highest_predicted_control_outcome_first(large, fitted_large):
    est = fitted_large["risk_based"]
    phi = large["phi"][TEST]
    risk = est.risk(phi)
    np.testing.assert_allclose(est.effect(phi), -risk)
    first = np.argsort(est.effect(phi), kind="stable")[:100]  # treat-first: ascending effect
    assert risk[first].min() >= np.quantile(risk, 0.95) - 1e-12
    # the risk model learns the control outcome, not the treated one
    assert np.corrcoef(risk, large["m0"][TEST])[0, 1] > 0.9
    flipped = RiskBased(lower_is_better=False, random_state=0)
    fit_learner(flipped, large, FIT)
    np.testing.assert_allclose(flipped.effect(phi), risk)


def test_risk_based_uses_control_units_only(small):
    d = dict(small)
    shifted = d["Y"] + 100.0 * d["T"]  # treated outcomes far away
    a = RiskBased(random_state=0).fit(d["Y"], d["T"], X=d["phi"])
    b = RiskBased(random_state=0).fit(shifted, d["T"], X=d["phi"])
    np.testing.assert_allclose(a.risk(d["phi"]), b.risk(d["phi"]))
    with pytest.raises(NotFittedError):
        RiskBased().risk(d["phi"])


def test_crossfitting_changes_pseudo_outcomes():
    # Flexible nuisances evaluated on their own training rows absorb part of the noise, so the
    # in-sample pseudo-outcomes of cv=1 are less variable than the cross-fitted ones (measured
    # variance 6.2 vs 27.7). On this generator (n=2000, 50 % annotated, gbm nuisances) the
    # measured PEHE is 0.65 cross-fitted and 0.51 without: the facts are discrete (128 cells),
    # so the own-observation bias is small, while gbm propensities fitted on 4/5 of the rows are
    # overconfident out of fold and make the cross-fitted pseudo-outcomes heavy-tailed. The
    # ordering depends on the generator, so only the mechanism is asserted.
    d = simulate_annotated(2000, seed=3)
    cross = fit_learner(AACE(nuisance="gbm", cv=5, random_state=0), d)
    same = fit_learner(AACE(nuisance="gbm", cv=1, random_state=0), d)
    assert len(cross.nuisance_models_) == 5 and len(same.nuisance_models_) == 1
    assert cross.pseudo_outcomes_.shape == same.pseudo_outcomes_.shape
    assert np.max(np.abs(cross.pseudo_outcomes_ - same.pseudo_outcomes_)) > 0.1
    assert np.var(same.pseudo_outcomes_) < 0.8 * np.var(cross.pseudo_outcomes_)
    for est in (cross, same):
        assert pehe(d["tau"], est.effect(d["phi"])) < 1.0


def test_annotation_weighting_corrects_the_propensity():
    # Annotation favours treated records (and C0): among annotated records the share treated is
    # far above the cohort's, so an unweighted propensity model on the annotated rows is biased
    # upward; 1/pi weights restore the cohort's law and the true e(a).
    d = simulate_annotated(6000, seed=0, annotation_logit=(-2.0, 3.0, 1.5))
    rows = d["annotated"]
    assert d["T"][rows].mean() > d["T"].mean() + 0.2
    plain = fit_learner(AACE(nuisance="ridge", random_state=0), d)
    weighted = fit_learner(AACE(nuisance="ridge", annotation_weighting=True, random_state=0), d)
    err_plain = np.mean(np.abs(plain.propensity_ - d["e"][rows]))
    err_weighted = np.mean(np.abs(weighted.propensity_ - d["e"][rows]))
    # measured: mean |e_hat - e| 0.20 unweighted vs 0.02 weighted
    assert err_weighted < 0.3 * err_plain
    assert abs(np.mean(weighted.propensity_ - d["e"][rows])) < 0.05
    assert np.mean(plain.propensity_ - d["e"][rows]) > 0.1
    # weights are 1/pi normalised to mean one: up-weight the under-annotated controls
    w = weighted.annotation_weights_
    assert w.mean() == pytest.approx(1.0)
    assert w[d["T"][rows] == 0].mean() > 2.0 * w[d["T"][rows] == 1].mean()
    assert weighted.annotation_model_ is not None and plain.annotation_model_ is None


def test_annotation_weights_reach_every_model():
    # with cv=1 and linear models every stage can be refitted by hand with the same weights
    d = simulate_annotated(1500, seed=2, annotation_logit=(-1.0, 2.0, 1.0))
    est = fit_learner(
        AACE(nuisance="linear", final="linear", cv=1, annotation_weighting=True, target="dr",
             random_state=0), d
    )
    rows = d["annotated"]
    w = est.annotation_weights_
    assert w.std() > 0.2  # the weights are far from uniform here
    A = np.hstack([d["annotations"], d["C"]])[rows]
    t, y = d["T"][rows], d["Y"][rows]
    fold = est.nuisance_models_[0]
    for arm in (0, 1):
        ref = LinearRegression().fit(A[t == arm], y[t == arm], sample_weight=w[t == arm])
        np.testing.assert_allclose(fold[f"mu{arm}"].coef_, ref.coef_, atol=1e-8)
    ref_e = LogisticRegression(C=1e6, max_iter=2000).fit(A, t, sample_weight=w)
    np.testing.assert_allclose(fold["propensity"].coef_, ref_e.coef_, atol=1e-3)
    ref_final = LinearRegression().fit(d["phi"][rows], est.pseudo_outcomes_, sample_weight=w)
    np.testing.assert_allclose(est.final_model_.coef_, ref_final.coef_, atol=1e-8)
    unweighted = LinearRegression().fit(d["phi"][rows], est.pseudo_outcomes_)
    assert not np.allclose(est.final_model_.coef_, unweighted.coef_, atol=1e-3)


def test_annotation_weighting_with_everything_annotated_is_a_no_op(small):
    d = dict(small)
    full = d["annotations"].copy()
    rng = np.random.default_rng(0)
    missing = np.isnan(full[:, 0])
    full[missing] = rng.binomial(1, 0.4, size=(int(missing.sum()), N_FACTS))
    kw = {"nuisance": "ridge", "cv": 2, "random_state": 0}
    a = AACE(annotation_weighting=True, **kw).fit(
        d["Y"], d["T"], X=d["phi"], annotations=full, confounders=d["C"]
    )
    b = AACE(**kw).fit(d["Y"], d["T"], X=d["phi"], annotations=full, confounders=d["C"])
    np.testing.assert_array_equal(a.annotation_weights_, np.ones(400))
    np.testing.assert_allclose(a.effect(d["phi"]), b.effect(d["phi"]))


# ---------------------------------------------------------------------------------------------
# seeds
# ---------------------------------------------------------------------------------------------


def _walk_random_states(est: AACE):
    models = [est.final_model_, est.annotation_model_]
    models += [m for fold in est.nuisance_models_ for m in fold.values()]
    for model in models:
        for key, value in model.get_params(deep=True).items():
            if key.split("__")[-1] == "random_state":
                yield key, value


def test_random_state_reaches_every_model(small):
    kw = {"nuisance": "gbm", "cv": 2, "annotation_weighting": True}
    a = fit_learner(AACE(random_state=7, **kw), small)
    b = fit_learner(AACE(random_state=7, **kw), small)
    c = fit_learner(AACE(random_state=8, **kw), small)
    np.testing.assert_array_equal(a.effect(small["phi"]), b.effect(small["phi"]))
    assert not np.allclose(a.effect(small["phi"]), c.effect(small["phi"]))
    seeds = list(_walk_random_states(a))
    # 2 folds x 3 gbm models, plus the annotation model's logistic regression
    assert len(seeds) == 7
    assert all(isinstance(v, int) for _, v in seeds)
    proto = RandomForestRegressor(n_estimators=5)
    forest = fit_learner(RiskBased(model=proto, random_state=3), small)
    assert forest.final_model_.random_state is not None and proto.random_state is None
    again = fit_learner(RiskBased(model=proto, random_state=3), small)
    np.testing.assert_array_equal(forest.effect(small["phi"]), again.effect(small["phi"]))


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


def test_bad_input(small):
    d = small
    Y, T, X, ann, C = d["Y"], d["T"], d["phi"], d["annotations"], d["C"]
    est = AACE(nuisance="ridge", cv=2, random_state=0)

    partly = ann.copy()
    rows = np.flatnonzero(d["annotated"])[:3]
    partly[rows, 1] = np.nan
    with pytest.raises(ValueError, match="3 annotation row\\(s\\) are partly NaN"):
        est.fit(Y, T, X=X, annotations=partly)
    with pytest.raises(ValueError, match="annotations have 399 rows but Y, T and X have 400"):
        est.fit(Y, T, X=X, annotations=ann[:-1])
    inf = ann.copy()
    inf[rows[0], 0] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        est.fit(Y, T, X=X, annotations=inf)

    few = np.full_like(ann, np.nan)
    few[:3] = 1.0
    with pytest.raises(ValueError, match="only 3 annotated row\\(s\\); at least 2 \\* cv = 4"):
        est.fit(Y, T, X=X, annotations=few)

    one_arm = np.full_like(ann, np.nan)
    treated = np.flatnonzero(T == 1)[:50]
    one_arm[treated] = 0.0
    with pytest.raises(ValueError, match="0 control \\(T=0\\) unit\\(s\\)"):
        est.fit(Y, T, X=X, annotations=one_arm)

    with pytest.raises(ValueError, match="unknown model kind 'xgb'; known kinds: ridge"):
        AACE(nuisance="xgb").fit(Y, T, X=X, annotations=ann)
    with pytest.raises(ValueError, match="unknown model kind"):
        RiskBased(model="nope").fit(Y, T, X=X)
    with pytest.raises(ValueError, match="confounders"):
        est.fit(Y, T, X=X, annotations=ann, confounders=C[:-2])
    with pytest.raises(ValueError, match="annotations must be numeric"):
        est.fit(Y, T, X=X, annotations=np.full(ann.shape, "yes", dtype=object))
    with pytest.raises(ValueError, match="cv must be an integer >= 1"):
        AACE(cv=0).fit(Y, T, X=X, annotations=ann)
    with pytest.raises(ValueError, match="propensity_clip"):
        AACE(propensity_clip=0.5).fit(Y, T, X=X, annotations=ann)
    with pytest.raises(ValueError, match="annotation_clip"):
        AACE(annotation_clip=0.0).fit(Y, T, X=X, annotations=ann)


def test_aace_records_data_chosen_nuisances(small):
    from ehrcausal.nuisance import Auto

    auto = Auto(candidates=("ridge", "poly"))
    for cv in (1, 3):
        est = fit_learner(AACE(nuisance=auto, cv=cv, random_state=0), small)
        chosen = {role: sel.name for role, sel in est.nuisance_selection_.items()}
        assert set(chosen) == {"outcome", "propensity"}
        assert set(chosen.values()) <= {"ridge", "poly"}
        # the chosen kinds are the ones cross-fitted
        named = fit_learner(AACE(nuisance=(chosen["outcome"], chosen["propensity"]), cv=cv,
                                 random_state=0), small)
        np.testing.assert_allclose(est.pseudo_outcomes_, named.pseudo_outcomes_)
    assert fit_learner(AACE(nuisance="ridge", cv=2, random_state=0), small).nuisance_selection_ == {}
