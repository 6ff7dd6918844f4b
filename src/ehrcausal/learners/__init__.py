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
from .registry import available, describe, make, register

register("ols", OLSTLearner, "OLS T-learner: a linear regression per arm")
register("s_learner", SLearner, "S-learner (EconML), random forest")
register("t_learner", TLearner, "T-learner (EconML), random forests")
register("x_learner", XLearner, "X-learner (EconML), random forests")
register("dr_learner", DRLearner, "DR-learner (EconML), cross-fitted")
register("r_learner", RLearner, "R-learner (EconML NonParamDML)")
register("causal_forest", CausalForest, "Causal forest (EconML CausalForestDML)")
register("tarnet", TARNet, "TARNet (Shalit et al. 2017)")
register("cfr_wass", CFR, "CFR, Wasserstein penalty (Shalit et al. 2017)", ipm="wass")
register("cfr_mmd", CFR, "CFR, MMD penalty (Shalit et al. 2017)", ipm="mmd")
register("dragonnet", DragonNet, "DragonNet (Shi et al. 2019)", targeted_reg=False)
register("dragonnet_tr", DragonNet, "DragonNet + targeted regularisation", targeted_reg=True)
register(
    "cfr_wass_ens", CFR, "CFR-Wass, deep ensemble of 5 networks (ours)", ipm="wass", n_ensemble=5
)

NEURAL = ("tarnet", "cfr_wass", "cfr_mmd", "dragonnet", "dragonnet_tr", "cfr_wass_ens")

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
    "NEURAL",
    "make",
    "available",
    "describe",
    "register",
]
