"""Peak memory of a chapter: the resident memory of its kernel's process tree, sampled.

A chapter runs in a kernel process, which may start worker processes of its own (joblib, Dask's
local cluster, data loaders). :func:`tree_rss` sums the resident set size (RSS) of a process and
all its descendants; :class:`PeakMemory` samples that sum in a background thread every
``interval`` seconds for the processes a callable names, and keeps the largest value seen. A
spike shorter than the interval can be missed, so the figure is a lower bound of the true peak
(within one interval of it for memory that is held). The runner records it per chapter in the
manifest (``peak_memory_mib``); ``benchmarks/chapter_cost.py`` uses the same measure.

The same samples also give the CPU time of the tree: each process's user + system seconds as last
seen (:attr:`PeakMemory.cpu_seconds`), summed over every process seen during the run. CPU time is
what a run costs on a machine shared with other work, where wall time mostly measures the load; a
process's last interval before it ends is missed, so this too is a lower bound.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from types import TracebackType

__all__ = ["PeakMemory", "tree_rss"]


def _tree(pid: int) -> list:
    """Process ``pid`` and all its descendants as ``psutil.Process`` objects ([] when gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _read_tree(pid: int, cpu: dict[tuple[int, float], float] | None = None) -> int:
    """Summed RSS (bytes) of the tree of ``pid``; records each process's CPU seconds in ``cpu``.

    ``cpu`` is keyed by (pid, creation time), so a reused pid is a new process. Processes that
    end while they are being read are skipped.
    """
    import psutil

    total = 0
    for proc in _tree(pid):
        try:
            with proc.oneshot():
                total += proc.memory_info().rss
                if cpu is not None:
                    times = proc.cpu_times()
                    cpu[(proc.pid, proc.create_time())] = times.user + times.system
        except psutil.Error:
            continue
    return total


def tree_rss(pid: int) -> int:
    """Resident memory in bytes of process ``pid`` and all its descendants (0 when it is gone).

    Processes that end while they are being read are skipped.
    """
    return _read_tree(pid)


class PeakMemory:
    """Context manager: the largest summed RSS of the process trees of ``pids()``, sampled.

    ``pids`` is called at every sample (processes may appear after the start, e.g. a kernel);
    ``peak_bytes`` is the largest sum of :func:`tree_rss` over them, ``peak_mib`` the same in
    MiB (``None`` when no sample saw a process); ``cpu_seconds`` is the user + system CPU time
    of every process seen, as last sampled.
    """

    def __init__(self, pids: Callable[[], Iterable[int]], interval: float = 0.25) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        self.pids = pids
        self.interval = float(interval)
        self.peak_bytes = 0
        self.samples = 0
        self._cpu: dict[tuple[int, float], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-memory", daemon=True)

    def sample(self) -> int:
        """Take one sample now; return it (bytes) and update the peak."""
        pids = list(self.pids())
        total = sum(_read_tree(pid, self._cpu) for pid in pids)
        if pids and total:
            self.samples += 1
            self.peak_bytes = max(self.peak_bytes, total)
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    @property
    def peak_mib(self) -> float | None:
        """The peak in MiB, rounded to 0.1 (``None`` when nothing was sampled)."""
        return round(self.peak_bytes / 2**20, 1) if self.samples else None

    @property
    def cpu_seconds(self) -> float | None:
        """User + system CPU seconds of every process seen, rounded to 0.1 (``None`` if none)."""
        return round(sum(self._cpu.values()), 1) if self._cpu else None

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
