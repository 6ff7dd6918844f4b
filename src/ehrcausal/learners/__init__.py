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
#: the learners that need nothing but (Y, T, X): the IHDP benchmark's "all"
CATE_LEARNERS = tuple(available())

# Chapter learners register themselves on import (annotation-assisted; multi-outcome).
from .aace import AACE, Oracle, RiskBased  # noqa: E402
from .metalearners_mc import MetaLearnerMC  # noqa: E402
from .multioutcome import MultiOutcomeLearner  # noqa: E402
from .multitask import DCNPD, MultiOutcomeTARNet, XMultiTask  # noqa: E402

#: annotation-assisted policy learners and their baselines (the AACE chapter)
AACE_LEARNERS = ("aace", "aace_no_crossfit", "aace_weighted", "risk_based", "oracle")
#: learners for class or multi-domain outcomes, single- or multitask (the X-MultiTask chapter)
MULTI_OUTCOME_LEARNERS = (
    "xmultitask", "xmultitask_released", "dcn_pd", "mc_tarnet",
    "mc_s_learner", "mc_t_learner", "mc_x_learner",
)
#: the torch learners among them (they take ``epochs`` and ``device``)
TORCH_MULTI_OUTCOME = ("xmultitask", "xmultitask_released", "dcn_pd", "mc_tarnet")

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
    "CATE_LEARNERS",
    "AACE_LEARNERS",
    "MULTI_OUTCOME_LEARNERS",
    "TORCH_MULTI_OUTCOME",
    "AACE",
    "RiskBased",
    "Oracle",
    "MultiOutcomeLearner",
    "XMultiTask",
    "MultiOutcomeTARNet",
    "DCNPD",
    "MetaLearnerMC",
    "make",
    "available",
    "describe",
    "register",
]
