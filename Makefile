# The study's two commands:   make book   (main job)   and   make test   (CI).
# GNU make. Everything is installed from pinned versions (requirements.lock, mathjax@3.2.2,
# axe-core@4.10.2).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Interpreter that creates the virtualenv (Python 3.11).
PYTHON_BOOT ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp
STUDY := $(PY) -m ehrcausal.runner
# nbval re-executes the executed chapters (book/chapters/, written by `$(STUDY) run`) and compares
# every output with the stored one; tests/nbval_sanitize.cfg masks only timings, progress bars,
# dates, addresses, temporary paths and commit hashes, never numbers of results. It runs the
# chapters one after another: two at a time (pytest-xdist, --dist loadfile) measured slower.
NBVAL := $(PY) -m pytest --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

# `make study` knobs: profile (smoke, default, paper), device (auto, cpu, cuda), parallel chapters
# (also the unit tests' processes, pytest-xdist; two threads per process on two cores would
# oversubscribe them, so each uses one).
PROFILE ?= default
DEVICE ?= auto
JOBS ?= 2
CHAPTERS ?=
FORCE ?=

# MathJax 3 from the npm registry, served by the book from book/_vendor/static/mathjax.
MATHJAX_VERSION := 3.2.2
VENDOR := book/_vendor
MATHJAX_JS := $(VENDOR)/static/mathjax/tex-mml-chtml.js
# axe-core from the npm registry: the render tests run it on every page (accessibility).
AXE_VERSION := 4.10.2
AXE_JS := $(VENDOR)/node_modules/axe-core/axe.min.js
VENDOR_STAMP := $(VENDOR)/.installed-mathjax-$(MATHJAX_VERSION)-axe-core-$(AXE_VERSION)

# Stage timings of `make test` (bash's `time`).
export TIMEFORMAT := [stage took %1R s]

.PHONY: help setup vendor browser study book build pdf test lint unit nbval clean distclean

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 12

# ---------------------------------------------------------------------------------------------
# Installation
# ---------------------------------------------------------------------------------------------
setup: $(STAMP)  ## create/refresh .venv from requirements.lock (idempotent)

$(STAMP): requirements.lock pyproject.toml
	@if [ ! -x "$(PY)" ] || ! "$(PY)" -c "" 2>/dev/null; then \
	  if [ -z "$(PYTHON_BOOT)" ]; then echo "error: no python3.11 or python3 on PATH" >&2; exit 1; fi; \
	  echo "creating $(VENV) with $(PYTHON_BOOT)"; \
	  rm -rf "$(VENV)"; "$(PYTHON_BOOT)" -m venv "$(VENV)"; \
	fi
	$(PY) -m pip install -r requirements.lock
	$(PY) -m pip install --no-deps -e .
	touch $(STAMP)

vendor: $(VENDOR_STAMP)  ## install MathJax and axe-core (npm, pinned) into book/_vendor/

# One npm call for both packages (npm prunes what a later --no-save call does not name); the
# stamp names the versions, so changing one reinstalls.
$(VENDOR_STAMP):
	npm install --no-save --no-package-lock --no-audit --no-fund --prefix $(VENDOR) \
	  mathjax@$(MATHJAX_VERSION) axe-core@$(AXE_VERSION)
	test "$$(node -p "require('./$(VENDOR)/node_modules/mathjax/package.json').version")" = "$(MATHJAX_VERSION)"
	test "$$(node -p "require('./$(VENDOR)/node_modules/axe-core/package.json').version")" = "$(AXE_VERSION)"
	mkdir -p $(VENDOR)/static
	ln -sfn ../node_modules/mathjax/es5 $(VENDOR)/static/mathjax
	test -f $(MATHJAX_JS) && test -f $(AXE_JS)
	rm -f $(VENDOR)/.installed-*
	touch $@

browser:  ## install Debian's chromium-headless-shell (render tests) if no Chromium is present
	@if command -v chromium-headless-shell >/dev/null 2>&1 || command -v chromium >/dev/null 2>&1; then \
	  echo "browser: $$(command -v chromium-headless-shell || command -v chromium)"; \
	else \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends chromium-headless-shell; \
	fi

# ---------------------------------------------------------------------------------------------
# The study and the book
# ---------------------------------------------------------------------------------------------
study: setup  ## run the chapters: make study PROFILE=paper DEVICE=cuda [JOBS=1 CHAPTERS=.. FORCE=1]
	$(STUDY) run --profile $(PROFILE) --device $(DEVICE) --jobs $(JOBS) \
	  $(if $(CHAPTERS),--chapters $(CHAPTERS)) $(if $(FORCE),--force)

build: setup vendor  ## build the Jupyter Book from the executed chapters into _build/html
	$(STUDY) build

book: setup vendor  ## main job: every chapter at PROFILE (`default`), then the book
	$(STUDY) run --profile $(PROFILE) --device $(DEVICE) --jobs $(JOBS)
	$(STUDY) build
	@echo "book: _build/html/index.html"

pdf: setup browser  ## one PDF of the built book (after `make book`): _build/pdf/book.pdf
	$(STUDY) pdf

# ---------------------------------------------------------------------------------------------
# Tests (CI: .ci/run). The IHDP data ship in data/ (see data/README.md); nothing to set.
# ---------------------------------------------------------------------------------------------
test: setup vendor browser  ## lint, unit tests, smoke study, nbval on its chapters, book, render tests, PDF
	@echo "== lint"; time $(PY) -m ruff check src tests benchmarks
	@echo "== unit tests (two processes, one BLAS/torch thread each)"; \
	  time OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -n $(JOBS) -m "not book" tests
	@echo "== study (smoke profile)"; time $(STUDY) run --profile smoke --jobs $(JOBS) --no-progress
	@echo "== nbval (re-execute the executed chapters, compare every output)"; \
	  time EHRCAUSAL_PROFILE=smoke $(NBVAL) book/chapters/*.ipynb
	@echo "== book"; time $(STUDY) build
	@echo "== render tests (chromium) and the PDF"; time $(PY) -m pytest -m book tests/test_book_render.py tests/test_book_pdf.py

lint: setup  ## ruff
	$(PY) -m ruff check src tests benchmarks

unit: setup  ## unit tests only (JOBS processes)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -n $(JOBS) -m "not book" tests

nbval: setup  ## re-execute the executed chapters and compare every output (after `make study`)
	EHRCAUSAL_PROFILE=$(PROFILE) $(NBVAL) book/chapters/*.ipynb

clean:  ## remove build outputs, executed chapters and the manifest (keeps .venv, book/_vendor)
	rm -rf _build book/_generated .study-cache .pytest_cache .ruff_cache
	find book/chapters -mindepth 1 ! -name README.md -delete 2>/dev/null || true

distclean: clean  ## also remove the virtualenv and vendored MathJax
	rm -rf $(VENV) $(VENDOR)
