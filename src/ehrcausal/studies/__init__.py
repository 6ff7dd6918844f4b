"""Experiment designs of the book's chapters: the code behind each chapter's tables and figures.

A chapter notebook stays a story; the loops it runs (simulate, represent, fit, score) live here,
where they are tested and can be reused by anyone who reruns a chapter on other data.
"""
