"""The book's chapter experiments: the code behind each chapter's tables, figures and numbers.

A chapter notebook stays a story; the loops it runs (simulate, represent, fit, score) and the
tables, figures and sentences it shows live here, where they are tested and can be reused by
anyone who reruns a chapter on other data.

- :mod:`~ehrcausal.chapters.base` -- what every chapter experiment shares (parameters, seeds,
  budgets, the design grid, fit-input routing, the cached runner);
- :mod:`~ehrcausal.chapters.report` -- summaries, paired comparisons, the verdict sentence,
  number formats, results tables and glue helpers;
- :mod:`~ehrcausal.chapters.ihdp`, :mod:`~ehrcausal.chapters.aace`,
  :mod:`~ehrcausal.chapters.xmultitask` -- one module per chapter.
"""
