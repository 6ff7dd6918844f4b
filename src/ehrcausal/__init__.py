"""ehrcausal: causal and multitask learning from multimodal health records.

The package supplies the learners, metrics and data loaders that the study's chapters use:

- :mod:`ehrcausal.data` -- :class:`~ehrcausal.data.CausalDataset` and loaders (IHDP, ...);
- :mod:`ehrcausal.learners` -- CATE learners under one EconML-like protocol, in a registry;
- :mod:`ehrcausal.metrics` -- effect, policy, ranking and prediction metrics;
- :mod:`ehrcausal.chapters` -- the chapters' experiments, tables, figures and readings;
- :mod:`ehrcausal.runner` -- the runner that executes the chapters and builds the book.
"""

__version__ = "0.1.0"
