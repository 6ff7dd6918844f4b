"""CATE learners under one protocol, in a registry (``make(name, **params)``, ``available()``).

======================  ==============================================================
name                    learner
======================  ==============================================================
``ols``                 OLS T-learner (one linear regression per arm; "OLS-2")
``s_learner``           EconML S-learner, random-forest outcome model
``t_learner``           EconML T-learner, random-forest outcome models
``x_learner``           EconML X-learner, random forests
``dr_learner``          EconML DR-learner (cross-fitted AIPW pseudo-outcomes)
``r_learner``           EconML NonParamDML (R-learner), random-forest final stage
``causal_forest``       EconML CausalForestDML
``tarnet``              TARNet (torch)
``cfr_wass``            CFR with a Wasserstein (Sinkhorn) penalty (torch)
``cfr_mmd``             CFR with cfrnet's unbiased RBF-MMD penalty, bandwidth 0.1 (torch)
``cfr_mmd_lin``         CFR with cfrnet's squared linear MMD (torch)
``dragonnet``           DragonNet without targeted regularisation (torch)
``dragonnet_tr``        DragonNet with targeted regularisation (torch)
``cfr_wass_ens``        CFR-Wass averaged over 5 independently seeded networks (torch)
``cfr_wass_cfrnet``     CFR-Wass in cfrnet's published IHDP configuration (torch)
``cfr_wass_selected``   CFR-Wass with width, alpha, lr, weight decay chosen per data set (torch)
``aace``                AACE: annotation-space target chosen by held-out R-loss, regressed on phi
``aace_dr``...          AACE with one target: dr, plugin, x, r, r_phi, dr_smooth, overlap,
                        stabilised (``learners.aace.TARGETS``)
``aace_no_crossfit``    AACE, DR target, without cross-fitting (as the public code)
``aace_weighted``       AACE with inverse annotation-propensity weights
``risk_based``          risk-based policy: control-outcome model on phi (a ranking score)
``oracle``              the true effect regressed on phi (the representation's ceiling)
``xmultitask``          X-MultiTask as described (IPW loss, X-learner stage 2)
``xmultitask_released`` X-MultiTask as its public code computes it (per decision)
``dcn_pd``              DCN-PD, propensity dropout
``mc_tarnet``           TARNet for class / multi-domain outcomes, multitask trunk
``mc_s_learner``...     S-, T-, X-learners for class / multi-domain outcomes
``m3h``                 M3H: modality encoders, fusion, task attention (multitask family)
``m3h_no_attention``    the M3H network with hard parameter sharing
``single_task``         the M3H network fitted once per task
``haim_gbt``            HAIM: boosted trees per task on concatenated modality features
======================  ==============================================================
"""

from .base import CATELearner
from .econml_learners import (
    CausalForest,
    DRLearner,
    EconMLLearner,
    RLearner,
    SLearner,
    TLearner,
    XLearner,
)
from .linear import OLSTLearner
from .neural import CFR, DragonNet, NeuralCATELearner, TARNet
from .registry import (
    FAMILIES,
    LearnerSpec,
    available,
    budget_params,
    check_family,
    describe,
    make,
    register,
    spec,
)
from .selection import SelectedCFR

_FOREST = {"family": "cate", "budget": ("n_estimators",)}
_TORCH = {"family": "cate", "budget": ("epochs", "device"), "fit_inputs": ("val_mask",)}

register("ols", OLSTLearner, "OLS T-learner: a linear regression per arm", family="cate")
register("s_learner", SLearner, "S-learner (EconML), random forest", **_FOREST)
register("t_learner", TLearner, "T-learner (EconML), random forests", **_FOREST)
register("x_learner", XLearner, "X-learner (EconML), random forests", **_FOREST)
register("dr_learner", DRLearner, "DR-learner (EconML), cross-fitted", **_FOREST)
register("r_learner", RLearner, "R-learner (EconML NonParamDML)", **_FOREST)
register("causal_forest", CausalForest, "Causal forest (EconML CausalForestDML)", **_FOREST)
register("tarnet", TARNet, "TARNet (Shalit et al. 2017)", **_TORCH)
register("cfr_wass", CFR, "CFR, Wasserstein penalty (Shalit et al. 2017)", **_TORCH, ipm="wass")
register("cfr_mmd", CFR, "CFR, unbiased RBF-MMD penalty as cfrnet (Shalit et al. 2017)",
         **_TORCH, ipm="mmd")
register("cfr_mmd_lin", CFR, "CFR, squared linear MMD penalty as cfrnet (Shalit et al. 2017)",
         **_TORCH, ipm="mmd_lin")
register("dragonnet", DragonNet, "DragonNet (Shi et al. 2019)", **_TORCH, targeted_reg=False)
register("dragonnet_tr", DragonNet, "DragonNet + targeted regularisation", **_TORCH, targeted_reg=True)
register(
    "cfr_wass_ens", CFR, "CFR-Wass, deep ensemble of 5 networks (ours)", **_TORCH, ipm="wass",
    n_ensemble=5,
)
# cfrnet's published IHDP configuration: configs/example_ihdp.txt of clinicalml/cfrnet with
# p_alpha = 0.3 (its README's FAQ). 3 representation layers of 200 and 3 head layers of 100
# (n_in, n_out, dim_in, dim_out), ELU, Adam at 1e-3 decayed by 0.97 every 100 steps (lrate,
# lrate_decay; cfr_net_train.py line 61), batches of 100, weight decay 1e-4 on the heads'
# weights only (p_lambda, rep_weight_decay=0; cfr/cfr_net.py lines 161-165 and 229-249), raw
# outcomes, N(0, 0.1^2/fan_in) weights (weight_init), unit-norm representation (normalization
# 'divide'), reweighting, Wasserstein lambda 10, 30 % validation (val_part), 3000 iterations
# (about 640 epochs of the 471 IHDP training units, so the chapter's epoch budget is not
# applied) and the weights of the best validation objective (no early stopping).
register(
    "cfr_wass_cfrnet", CFR, "CFR-Wass in cfrnet's published IHDP configuration (like for like)",
    family="cate", budget=("device",), fit_inputs=("val_mask",), ipm="wass", alpha=0.3,
    n_head_layers=3, lr_decay=0.97, head_bias_decay=False, early_stopping="objective",
    standardize=False, weight_init=0.1, epochs=640, patience=640, val_fraction=0.3,
)
# A grid of 16 CFR-Wass networks (width 100/200, alpha 0.1/1, lr 1e-3/3e-4, weight decay
# 1e-4/1e-3) trained as one batch per representation width; the one with the smallest factual
# validation error predicts (learners/selection.py).
register(
    "cfr_wass_selected", SelectedCFR,
    "CFR-Wass, width, alpha, learning rate and weight decay chosen per data set by the factual "
    "validation error (ours)", **_TORCH,
)

# Chapter learners register themselves on import (annotation-assisted; multi-outcome; multitask
# prediction from several modalities, which has no treatment and its own protocol).
from .aace import AACE, Oracle, RiskBased  # noqa: E402
from .m3h import HAIMGBT, M3H, MultiTaskLearner, SingleTask  # noqa: E402
from .metalearners_mc import MetaLearnerMC  # noqa: E402
from .multioutcome import MultiOutcomeLearner  # noqa: E402
from .multitask import DCNPD, MultiOutcomeTARNet, XMultiTask  # noqa: E402
from .xmultitask_released import XMultiTaskReleased  # noqa: E402

__all__ = [
    "CATELearner",
    "EconMLLearner",
    "NeuralCATELearner",
    "OLSTLearner",
    "SLearner",
    "TLearner",
    "XLearner",
    "DRLearner",
    "RLearner",
    "CausalForest",
    "TARNet",
    "CFR",
    "SelectedCFR",
    "DragonNet",
    "AACE",
    "RiskBased",
    "Oracle",
    "MultiOutcomeLearner",
    "XMultiTask",
    "XMultiTaskReleased",
    "MultiOutcomeTARNet",
    "DCNPD",
    "MetaLearnerMC",
    "MultiTaskLearner",
    "M3H",
    "SingleTask",
    "HAIMGBT",
    "make",
    "available",
    "describe",
    "register",
    "spec",
    "budget_params",
    "check_family",
    "LearnerSpec",
    "FAMILIES",
]
