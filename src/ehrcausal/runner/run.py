"""Running the study: plan every chapter, skip the current ones, execute the rest, record all.

:func:`run_chapters` is what ``python -m ehrcausal.runner run`` calls. Chapters run one after
another or in parallel threads (each drives its own kernel process); every finished chapter is
recorded in the manifest at once (a read-merge-write of its one record under the manifest's
lock, :func:`.manifest.update_manifest`), so an interrupted run keeps what it finished and
overlapping runs keep each other's records.

A chapter is skipped as "cached" only when its published notebook carries the planned content
hash (:func:`.plan.is_current`); its manifest record is then brought in line with the notebook.
``SIGTERM`` is turned into an exception while chapters run (in the main thread), so that, as on
an exception or ``KeyboardInterrupt``, the temporary notebooks are removed and the kernels
stopped; temporary notebooks left by a killed run are swept at the start of the next.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from .execute import (
    ChapterResult,
    execute_chapter,
    kernel_env,
    kernel_manager_class,
    quiet_papermill_logs,
    remove_live_temp_files,
    stop_live_kernels,
    sweep_stale_temp_files,
)
from .manifest import (
    git_commit,
    manifest_lock,
    read_manifest,
    repair_manifest,
    update_manifest,
    utc_now,
)
from .paths import StudyPaths
from .plan import ChapterTask, plan_chapters, published_record

__all__ = [
    "CHAPTER_THREAD", "Terminated", "run_chapters", "record_from_notebook", "terminate_raises",
]

#: name prefix of the worker threads that run chapters in parallel (``--jobs`` > 1)
CHAPTER_THREAD = "chapter"


class Terminated(SystemExit):
    """Raised in the main thread on ``SIGTERM`` while chapters run (exit status 128 + 15)."""


@contextlib.contextmanager
def terminate_raises() -> Iterator[None]:
    """While active, ``SIGTERM`` raises :class:`Terminated` in the main thread.

    Python's default ``SIGTERM`` ends the process without running ``finally`` blocks, which
    left one temporary notebook per kill; as an exception it unwinds like ``KeyboardInterrupt``.
    Outside the main thread (where handlers cannot be set) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def record_from_notebook(paths: StudyPaths, stem: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest's record of a published chapter, from the record stored in the notebook."""
    return {
        "chapter": stem,
        "profile": record.get("profile", ""),
        "device": record.get("device", ""),
        "seconds": record.get("seconds"),
        "peak_memory_mib": record.get("peak_memory_mib"),
        "status": "ok",
        "commit": record.get("commit", "unknown"),
        "hash": record["content_hash"],
        "timestamp": record.get("timestamp", ""),
        "output": paths.rel(paths.chapter_output(stem)),
        "parameters": record.get("parameters", {}),
    }


def _manifest_entry(result: ChapterResult, profile: str, commit: str) -> dict[str, Any]:
    """The manifest's record of one executed chapter."""
    entry: dict[str, Any] = {
        "chapter": result.chapter,
        "profile": profile,
        "device": result.device,
        "seconds": result.seconds,
        "peak_memory_mib": result.peak_memory_mib,
        "status": result.status,
        "commit": commit,
        "hash": result.hash,
        "timestamp": utc_now(),
        "output": result.output,
        "parameters": result.parameters,
    }
    if result.status == "failed":
        entry["error"] = {
            "cell_index": result.cell_index,
            "execution_count": result.execution_count,
            "ename": result.ename,
            "evalue": result.evalue,
            "partial_output": result.failed_output,
        }
    return entry


def run_chapters(
    paths: StudyPaths,
    chapters: Sequence[str] | None = None,
    *,
    profile: str | None = "default",
    params_file: Path | None = None,
    device: str | None = None,
    jobs: int = 1,
    force: bool = False,
    progress: bool | None = None,
    timeout: float | None = None,
) -> list[ChapterResult]:
    """Execute the chapters of ``paths.notebooks`` and record them in the manifest.

    Parameters
    ----------
    paths
        The layout (:meth:`StudyPaths.from_root`).
    chapters
        Stems to run; all notebooks when ``None``.
    profile, params_file
        Profile name (``notebooks/params/<profile>.yml``) or an explicit YAML file.
    device
        Injected as parameter ``device`` when given; recorded resolved (``auto`` -> cuda/cpu),
        unless the chapter glues a ``device`` scalar, which wins.
    jobs
        Chapters run concurrently (threads, each driving its own kernel process); >= 1.
    force
        Run even chapters whose content hash is unchanged.
    progress
        Show progress bars (default: when stderr is a terminal). papermill's per-cell bar is
        shown only with ``jobs == 1``.
    timeout
        Per-cell execution timeout in seconds, > 0 (``None``: no limit).

    Returns one :class:`ChapterResult` per chapter, in chapter order.
    """
    from tqdm.auto import tqdm

    from ..validation import check_int, check_number

    jobs = check_int(jobs, "jobs", low=1)
    if timeout is not None:
        timeout = check_number(timeout, "timeout", low=0, low_open=True)
    if progress is None:
        progress = sys.stderr.isatty()
    profile_name, tasks, versions = plan_chapters(
        paths, chapters, profile=profile, params_file=params_file, device=device
    )
    swept = sweep_stale_temp_files(paths.chapters)
    if swept:
        print(
            f"removed {len(swept)} temporary notebook(s) left by an interrupted run: "
            + ", ".join(p.name for p in swept),
            file=sys.stderr,
        )
    repair_manifest(paths)
    commit = git_commit(paths.root)
    results: dict[str, ChapterResult] = {}
    todo: list[ChapterTask] = []
    repaired: dict[str, dict[str, Any]] = {}
    with manifest_lock(paths):
        manifest = read_manifest(paths.manifest, warn=False)
        for task in tasks:
            record = published_record(paths, task.stem)  # what is_current reads
            if force or record is None or record["content_hash"] != task.digest:
                todo.append(task)
                continue
            results[task.stem] = ChapterResult(
                task.stem,
                "cached",
                hash=task.digest,
                device=str(record.get("device", "")),
                output=paths.rel(paths.chapter_output(task.stem)),
                parameters=task.parameters,
            )
            entry = manifest["chapters"].get(task.stem) or {}
            if entry.get("status") != "ok" or entry.get("hash") != task.digest:
                # The manifest lost or mis-states this chapter's record: the notebook is right.
                repaired[task.stem] = record_from_notebook(paths, task.stem, record)
        if repaired or not paths.manifest.exists():
            update_manifest(paths, repaired, versions=versions)

    km_class = kernel_manager_class(kernel_env(paths, profile_name))
    lock = threading.Lock()
    bar = tqdm(total=len(tasks), desc=f"chapters [{profile_name}]", unit="ch", disable=not progress)
    for stem in results:
        bar.write(f"cached  {stem} (unchanged since its last run; --force reruns it)")
        bar.update(1)

    def record(result: ChapterResult) -> None:
        with lock:
            results[result.chapter] = result
            with manifest_lock(paths):
                entry = _manifest_entry(result, profile_name, commit)
                published = published_record(paths, result.chapter)
                if result.status == "ok" and published is not None:
                    # What is published now: this run's notebook, or one that an overlapping
                    # run published after it (then its record is the true one).
                    entry = record_from_notebook(paths, result.chapter, published)
                update_manifest(
                    paths, {result.chapter: entry}, versions=versions, updated=utc_now()
                )
            if result.status == "ok":
                bar.write(f"ok      {result.chapter} ({result.seconds:.1f} s, {result.device})")
            else:
                bar.write(f"FAILED  {result.describe_failure()}")
                if result.failed_output:
                    bar.write(f"        partial output: {result.failed_output}")
            bar.update(1)

    kwargs: dict[str, Any] = dict(
        profile=profile_name,
        device=device,
        kernel_manager_class=km_class,
        progress_bar=bool(progress and jobs == 1),
        timeout=timeout,
        commit=commit,
    )
    try:
        with quiet_papermill_logs(), terminate_raises():
            if jobs == 1 or len(todo) <= 1:
                for task in todo:
                    bar.set_postfix_str(task.stem)
                    record(execute_chapter(task, paths, **kwargs))
            else:
                pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix=CHAPTER_THREAD)
                futures: list[Future[ChapterResult]] = [
                    pool.submit(execute_chapter, task, paths, **kwargs) for task in todo
                ]
                try:
                    # Wait in short slices: a process-directed SIGTERM may be delivered to a
                    # chapter thread, and the main thread runs the Python handler only when it
                    # wakes; an unbounded wait could then miss it for good.
                    pending = set(futures)
                    while pending:
                        done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                        for fut in done:
                            record(fut.result())
                except BaseException:
                    # Interrupted: chapters not started never start, running ones lose their
                    # kernel; the pool is not waited for (a cell whose kernel died may wait for
                    # its timeout), and the command line ends the process (see cli.main).
                    pool.shutdown(wait=False, cancel_futures=True)
                    stop_live_kernels()
                    raise
                pool.shutdown(wait=True)
    except BaseException:
        stop_live_kernels()
        remove_live_temp_files()
        raise
    finally:
        bar.close()
    return [results[t.stem] for t in tasks]
