"""Benchmark: notes per second of the text representations (MiniLM and TF-IDF + SVD).

Times :func:`ehrcausal.text.embeddings.embed` with the cache off on ``--n`` synthetic clinical-like
notes (templated sentences, numbers, negations, abbreviations in the compact style). The MiniLM
model is loaded and warmed up first; its load time is reported separately.

    python benchmarks/embedding_throughput.py --n 1000 --device cpu --style normal
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

NORMAL = [
    "Patient is a {age}-year-old {sex} presenting with {sym} for {d} days.",
    "Reports {sym}, worse at night.",
    "Denies {neg}.",
    "Possible {sym}, not clearly described.",
    "Past medical history of {hist}.",
    "Smoking history: {pack} pack-years.",
    "Temperature {temp} C, oxygen saturation {sat}% on room air.",
    "On examination the chest is {exam}.",
    "Works as a {job}; lives with {home}.",
    "Plan: {plan}. Review in {d} days if not improving.",
]
COMPACT = [
    "{age}{sx} c/o {sym} x{d}d.",
    "+{sym}.",
    "-{neg}.",
    "?{sym}.",
    "PMH: {hist}.",
    "{pack} PY.",
    "T {temp}, SpO2 {sat}% RA.",
    "Chest: {exam}.",
    "SH: {job}, lives w/ {home}.",
    "P: {plan}, r/v {d}/7.",
]
FILL = {
    "sym": ["cough", "dyspnoea", "chest pain", "nasal congestion", "fever", "sore throat",
            "wheeze", "productive cough", "fatigue", "headache", "coughh", "dyspnea"],
    "neg": ["fever", "chest pain", "haemoptysis", "weight loss", "night sweats", "cough"],
    "hist": ["asthma", "COPD", "hay fever", "hypertension", "no significant illness",
             "type 2 diabetes", "appendectomy in childhood"],
    "exam": ["clear", "wheezy bilaterally", "crackles at the left base", "unremarkable"],
    "job": ["carpenter", "teacher", "self-employed plumber", "nurse", "retired"],
    "home": ["a partner", "family", "two children", "a flatmate"],
    "plan": ["rest and fluids", "amoxicillin 500 mg tds", "salbutamol inhaler",
             "chest X-ray", "paracetamol as needed", "safety-netting advice given"],
}


def synthetic_notes(n: int, style: str = "normal", seed: int = 0) -> list[str]:
    """``n`` clinical-like notes of 4-8 templated sentences in the given style."""
    templates = NORMAL if style == "normal" else COMPACT
    rng = np.random.default_rng(seed)
    notes = []
    for _ in range(n):
        k = int(rng.integers(4, 9))
        idx = rng.choice(len(templates), size=k, replace=False)
        values = {key: str(rng.choice(opts)) for key, opts in FILL.items()}
        sex = str(rng.choice(["man", "woman"]))
        values.update(
            age=int(rng.integers(18, 90)), sex=sex, sx=sex[0].upper(), d=int(rng.integers(1, 15)),
            pack=int(rng.integers(0, 40)), temp=round(float(rng.uniform(36.0, 40.0)), 1),
            sat=int(rng.integers(88, 100)),
        )
        notes.append(" ".join(templates[i].format(**values) for i in idx))
    return notes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="number of notes (default 1000)")
    ap.add_argument("--batch-size", type=int, default=64, help="MiniLM batch size (default 64)")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    ap.add_argument("--style", choices=("normal", "compact"), default="normal")
    ap.add_argument("--n-components", type=int, default=64, help="TF-IDF SVD dimension")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.n < 2:
        ap.error("--n must be at least 2")

    import torch

    from ehrcausal.runtime import resolve_device
    from ehrcausal.text.embeddings import embed

    device = resolve_device(args.device)
    notes = synthetic_notes(args.n, args.style, args.seed)
    words = np.mean([len(t.split()) for t in notes])
    cpu = platform.processor() or platform.machine()
    print(f"{args.n} {args.style} notes, {words:.1f} words on average; device {device}; "
          f"torch threads {torch.get_num_threads()}; OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; {cpu}")

    start = time.perf_counter()
    embed(notes[:8], "minilm", device=device, cache_dir=False, progress=False)
    print(f"minilm: model load + warm-up {time.perf_counter() - start:.2f} s")
    start = time.perf_counter()
    Z = embed(notes, "minilm", device=device, batch_size=args.batch_size, cache_dir=False,
              progress=False)
    sec = time.perf_counter() - start
    print(f"minilm: {args.n / sec:8.1f} notes/s ({sec:.2f} s, d={Z.shape[1]}, "
          f"batch {args.batch_size})")

    start = time.perf_counter()
    Z = embed(notes, "tfidf", n_components=args.n_components, random_state=args.seed,
              cache_dir=False)
    sec = time.perf_counter() - start
    print(f"tfidf:  {args.n / sec:8.1f} notes/s ({sec:.2f} s, d={Z.shape[1]}, fit + transform)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
