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
``cfr_mmd``             CFR with an RBF-MMD penalty (torch)
``dragonnet``           DragonNet without targeted regularisation (torch)
``dragonnet_tr``        DragonNet with targeted regularisation (torch)
``cfr_wass_ens``        CFR-Wass averaged over 5 independently seeded networks (torch)
``aace``                AACE: DR pseudo-outcomes in annotation space, regressed on phi
``aace_no_crossfit``    AACE without cross-fitting (as the public code)
``aace_weighted``       AACE with inverse annotation-propensity weights
``risk_based``          risk-based policy: control-outcome model on phi (a ranking score)
``oracle``              the true effect regressed on phi (the representation's ceiling)
``xmultitask``          X-MultiTask as described (IPW loss, X-learner stage 2)
``xmultitask_released`` X-MultiTask as released (both defects reproduced)
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
register("cfr_mmd", CFR, "CFR, MMD penalty (Shalit et al. 2017)", **_TORCH, ipm="mmd")
register("dragonnet", DragonNet, "DragonNet (Shi et al. 2019)", **_TORCH, targeted_reg=False)
register("dragonnet_tr", DragonNet, "DragonNet + targeted regularisation", **_TORCH, targeted_reg=True)
register(
    "cfr_wass_ens", CFR, "CFR-Wass, deep ensemble of 5 networks (ours)", **_TORCH, ipm="wass",
    n_ensemble=5,
)

# Chapter learners register themselves on import (annotation-assisted; multi-outcome; multitask
# prediction from several modalities, which has no treatment and its own protocol).
from .aace import AACE, Oracle, RiskBased  # noqa: E402
from .m3h import HAIMGBT, M3H, MultiTaskLearner, SingleTask  # noqa: E402
from .metalearners_mc import MetaLearnerMC  # noqa: E402
from .multioutcome import MultiOutcomeLearner  # noqa: E402
from .multitask import DCNPD, MultiOutcomeTARNet, XMultiTask  # noqa: E402

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
    "DragonNet",
    "AACE",
    "RiskBased",
    "Oracle",
    "MultiOutcomeLearner",
    "XMultiTask",
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
