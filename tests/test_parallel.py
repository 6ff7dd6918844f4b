"""The replicate loop (``ehrcausal.parallel``): order kept, sequential or in processes."""

from __future__ import annotations

from ehrcausal.parallel import run_replicates


def _square(x: int) -> int:
    return x * x


def test_run_replicates_keeps_order_in_parallel():
    assert run_replicates(lambda x: x * x, range(6), n_jobs=2, progress=False) == [
        0, 1, 4, 9, 16, 25
    ]


def test_run_replicates_sequential_calls_in_order():
    seen: list[int] = []

    def record(x: int) -> int:
        seen.append(x)
        return _square(x)

    assert run_replicates(record, [3, 1, 2], progress=False) == [9, 1, 4]
    assert seen == [3, 1, 2]
