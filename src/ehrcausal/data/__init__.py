"""Data sets as one dataclass, their loaders and simulators of multimodal records."""

from .dataset import SPLITS, CausalDataset
from .ihdp import N_REALIZATIONS as IHDP_REALIZATIONS
from .ihdp import load_ihdp, protocol_split

__all__ = ["CausalDataset", "SPLITS", "load_ihdp", "protocol_split", "IHDP_REALIZATIONS"]
