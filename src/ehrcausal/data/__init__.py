"""Data sets as one dataclass, their loaders and simulators of multimodal records."""

from .cardiac import simulate_cardiac
from .cdisc_pilot import load_cdisc_pilot
from .dataset import SPLITS, CausalDataset
from .eunomia import load_eunomia
from .haim import load_haim_mimic_mm
from .ihdp import N_REALIZATIONS as IHDP_REALIZATIONS
from .ihdp import load_ihdp
from .mimic import build_mimic_cohort
from .mover import load_mover_spine
from .multimodal import MultimodalDataset, modality_recoverability, simulate_multimodal
from .respiratory import simulate_respiratory
from .spine import simulate_spine
from .splits import protocol_split
from .trial import simulate_trial_notes

__all__ = [
    "CausalDataset",
    "SPLITS",
    "load_ihdp",
    "protocol_split",
    "IHDP_REALIZATIONS",
    "simulate_respiratory",
    "simulate_cardiac",
    "simulate_spine",
    "simulate_trial_notes",
    "build_mimic_cohort",
    "load_mover_spine",
    "MultimodalDataset",
    "simulate_multimodal",
    "modality_recoverability",
    "load_cdisc_pilot",
    "load_eunomia",
    "load_haim_mimic_mm",
]
