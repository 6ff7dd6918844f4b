"""Clinical notes: rendering notes from simulated records, and text representations."""

from .embeddings import TfidfSVD, embed
from .notes import render_cardiac_notes, render_finding_notes, render_respiratory_notes
from .recoverability import fact_recoverability

__all__ = [
    "embed",
    "TfidfSVD",
    "render_respiratory_notes",
    "render_cardiac_notes",
    "render_finding_notes",
    "fact_recoverability",
]
