"""Benchmark: notes per second of the text representations, and the faster MiniLM candidates.

On the chapters' notes (``--notes respiratory`` or ``cardiac``: the AACE simulators' rendered
notes; ``synthetic``: templated notes in the ``--style`` given) every MiniLM candidate is timed
side by side in this one process, in ``--rounds`` interleaved rounds (the machine may be shared:
the ratio to the current path, taken within each round, is what to read), and compared with
the float32 PyTorch reference note by note (smallest cosine, largest absolute difference):

- ``current``: what ``embed`` does by default (PyTorch float32, notes sorted by length and
  encoded in batches of ``--batch-size``, torch's default thread count);
- ``unsorted``: the same without length bucketing (batches in the notes' own order);
- ``batch N``: other batch sizes; ``threads N``: other torch thread counts;
- ``bf16``: PyTorch under bfloat16 autocast (``embed(..., backend="bf16")``);
- ``onnx``: ONNX Runtime float32 on the graph exported from the packaged model
  (``embed(..., backend="onnx")``), at 1 and at all threads;
- ``onnx int8``: the same graph with ONNX Runtime's dynamic int8 quantisation (per-channel
  weights), not offered by ``embed`` unless it stays faithful.

A candidate is faithful when its cosine to the reference is at least ``--min-cosine`` (0.999) on
every note. TF-IDF + SVD is timed once at the end.

    python benchmarks/embedding_throughput.py --notes respiratory --n 512 --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

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


def chapter_notes(kind: str, n: int, seed: int, style: str) -> list[str]:
    """``n`` notes of the AACE simulators (``respiratory``, ``cardiac``) or templated ones."""
    if kind == "synthetic":
        return synthetic_notes(n, style, seed)
    from ehrcausal.data import simulate_cardiac, simulate_respiratory

    simulate = simulate_respiratory if kind == "respiratory" else simulate_cardiac
    return list(simulate(n, seed=seed).text)


@contextlib.contextmanager
def torch_threads(k: int | None):
    """Run the block with ``k`` torch threads (``None``: unchanged)."""
    import torch

    before = torch.get_num_threads()
    if k is not None:
        torch.set_num_threads(k)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def unsorted_minilm(notes: list[str], batch_size: int) -> np.ndarray:
    """MiniLM float32 in batches of the notes' own order (no length bucketing across batches)."""
    from ehrcausal.text.embeddings import _load_minilm  # noqa: PLC2701 - benchmark of internals

    model = _load_minilm("cpu")
    parts = [model.encode(notes[i : i + batch_size], batch_size=batch_size,
                          show_progress_bar=False, convert_to_numpy=True,
                          normalize_embeddings=True)
             for i in range(0, len(notes), batch_size)]
    return np.vstack(parts).astype(np.float32)


def int8_candidate(folder: Path, threads: int) -> Callable[[list[str], int], np.ndarray]:
    """The exported MiniLM graph quantised to dynamic int8 (per-channel weights), as a function."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from ehrcausal.text.embeddings import _load_minilm  # noqa: PLC2701 - benchmark of internals
    from ehrcausal.text.onnx_minilm import OnnxMiniLM, export_minilm_onnx

    model = _load_minilm("cpu")
    fp32, int8 = folder / "minilm.onnx", folder / "minilm-int8.onnx"
    export_minilm_onnx(model, fp32)
    quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True)
    runner = OnnxMiniLM(int8, model.tokenizer, model.max_seq_length, threads)

    def run(notes: list[str], batch_size: int) -> np.ndarray:
        order = np.argsort([-len(t) for t in notes], kind="stable")
        out = np.empty((len(notes), 384), dtype=np.float32)
        for i in range(0, len(notes), batch_size):
            idx = order[i : i + batch_size]
            out[idx] = runner.encode([notes[j] for j in idx])
        return out

    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--notes", choices=("respiratory", "cardiac", "synthetic"),
                    default="respiratory", help="which notes (default: respiratory)")
    ap.add_argument("--n", type=int, default=512, help="number of notes (default 512)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--batch-size", type=int, default=64, help="MiniLM batch size (default 64)")
    ap.add_argument("--style", choices=("normal", "compact"), default="normal")
    ap.add_argument("--n-components", type=int, default=64, help="TF-IDF SVD dimension")
    ap.add_argument("--min-cosine", type=float, default=0.999)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.n < 2:
        ap.error("--n must be at least 2")
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")

    import torch

    from ehrcausal.text.embeddings import _load_minilm, embed  # noqa: PLC2701

    notes = chapter_notes(args.notes, args.n, args.seed, args.style)
    model = _load_minilm("cpu")
    tokens = [len(ids) for ids in model.tokenizer(notes, truncation=True,
                                                   max_length=model.max_seq_length)["input_ids"]]
    threads = torch.get_num_threads()
    cpu = platform.processor() or platform.machine()
    print(f"{len(notes)} {args.notes} notes: {np.mean([len(t.split()) for t in notes]):.1f} "
          f"words, {np.mean(tokens):.1f} tokens on average (max {max(tokens)}); CPU, torch "
          f"threads {threads}, {os.cpu_count()} cores seen; OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; {cpu}")

    bs = args.batch_size

    def via_embed(backend: str, batch_size: int = bs, k: int | None = None):
        def run() -> np.ndarray:
            with torch_threads(k):
                return embed(notes, "minilm", device="cpu", batch_size=batch_size,
                             cache_dir=False, progress=False, backend=backend)
        return run

    candidates: dict[str, Callable[[], np.ndarray]] = {
        "current": via_embed("torch"),
        "unsorted": lambda: unsorted_minilm(notes, bs),
    }
    for b in (16, 32, 128):
        if b != bs:
            candidates[f"batch {b}"] = via_embed("torch", b)
    for k in sorted({1, threads} - {threads}):
        candidates[f"threads {k}"] = via_embed("torch", k=k)
    candidates["bf16"] = via_embed("bf16")
    candidates["onnx"] = via_embed("onnx")
    if threads > 1:
        candidates["onnx threads 1"] = via_embed("onnx", k=1)
    tmp = tempfile.TemporaryDirectory()
    int8 = int8_candidate(Path(tmp.name), threads)
    candidates["onnx int8"] = lambda: int8(notes, bs)

    start = time.perf_counter()  # load the model, export the graph, build the sessions, warm up
    for backend, k in (("torch", None), ("bf16", None), ("onnx", None), ("onnx", 1)):
        with torch_threads(k):
            embed(notes[:8], "minilm", device="cpu", cache_dir=False, progress=False,
                  backend=backend)
    int8(notes[:8], bs)
    print(f"model load, ONNX export and int8 quantisation, warm-up: "
          f"{time.perf_counter() - start:.1f} s")

    seconds: dict[str, list[float]] = {name: [] for name in candidates}
    ratios: dict[str, list[float]] = {name: [] for name in candidates}
    vectors: dict[str, np.ndarray] = {}
    loads = []
    for _ in range(args.rounds):
        loads.append(os.getloadavg()[0])
        for name, run in candidates.items():
            t0 = time.perf_counter()
            vectors[name] = run()
            seconds[name].append(time.perf_counter() - t0)
        for name in candidates:
            ratios[name].append(seconds["current"][-1] / seconds[name][-1])
    loads.append(os.getloadavg()[0])
    ref = vectors["current"]
    print(f"load average (1 min) during the rounds: {min(loads):.1f} to {max(loads):.1f}")
    print(f"{'candidate':16s} {'notes/s':>9s} {'x current':>10s} {'min cosine':>11s} "
          f"{'max |diff|':>11s}  faithful")
    for name in candidates:
        rate = len(notes) / float(np.median(seconds[name]))
        cos = float((vectors[name] * ref).sum(axis=1).min())
        diff = float(np.abs(vectors[name] - ref).max())
        print(f"{name:16s} {rate:9.1f} {float(np.median(ratios[name])):9.2f}x {cos:11.6f} "
              f"{diff:11.2e}  {'yes' if cos >= args.min_cosine else 'no'}")
    tmp.cleanup()

    t0 = time.perf_counter()
    Z = embed(notes, "tfidf", n_components=args.n_components, random_state=args.seed,
              cache_dir=False)
    sec = time.perf_counter() - t0
    print(f"tfidf: {len(notes) / sec:8.1f} notes/s ({sec:.2f} s, d={Z.shape[1]}, fit + transform)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
