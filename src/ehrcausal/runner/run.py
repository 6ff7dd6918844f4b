"""Running the study: plan every chapter, skip the current ones, execute the rest, record all.

:func:`run_chapters` is what ``python -m ehrcausal.runner run`` calls. Chapters run one after
another or in parallel threads (each drives its own kernel process); every finished chapter is
recorded in the manifest at once, so an interrupted run keeps what it finished.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from .execute import (
    ChapterResult,
    execute_chapter,
    kernel_env,
    kernel_manager_class,
    quiet_papermill_logs,
)
from .manifest import git_commit, read_manifest, utc_now, write_manifest
from .paths import StudyPaths
from .plan import ChapterTask, is_current, plan_chapters

__all__ = ["run_chapters"]


def _manifest_entry(result: ChapterResult, profile: str, commit: str) -> dict[str, Any]:
    """The manifest's record of one executed chapter."""
    entry: dict[str, Any] = {
        "chapter": result.chapter,
        "profile": profile,
        "device": result.device,
        "seconds": result.seconds,
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
    manifest = read_manifest(paths.manifest)
    commit = git_commit(paths.root)
    results: dict[str, ChapterResult] = {}
    todo: list[ChapterTask] = []
    for task in tasks:
        if not force and is_current(task.digest, task.stem, manifest, paths):
            results[task.stem] = ChapterResult(
                task.stem,
                "cached",
                hash=task.digest,
                device=str(manifest["chapters"][task.stem].get("device", "")),
                output=paths.rel(paths.chapter_output(task.stem)),
                parameters=task.parameters,
            )
        else:
            todo.append(task)

    km_class = kernel_manager_class(kernel_env(paths, profile_name))
    lock = threading.Lock()
    bar = tqdm(total=len(tasks), desc=f"chapters [{profile_name}]", unit="ch", disable=not progress)
    for stem in results:
        bar.write(f"cached  {stem} (unchanged since its last run; --force reruns it)")
        bar.update(1)

    def record(result: ChapterResult) -> None:
        with lock:
            results[result.chapter] = result
            entry = _manifest_entry(result, profile_name, commit)
            manifest["chapters"][result.chapter] = entry
            manifest["versions"] = versions
            manifest["updated"] = entry["timestamp"]
            write_manifest(paths, manifest)
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
    )
    try:
        with quiet_papermill_logs():
            if jobs == 1 or len(todo) <= 1:
                for task in todo:
                    bar.set_postfix_str(task.stem)
                    record(execute_chapter(task, paths, **kwargs))
            else:
                with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="chapter") as pool:
                    futures: list[Future[ChapterResult]] = [
                        pool.submit(execute_chapter, task, paths, **kwargs) for task in todo
                    ]
                    for fut in as_completed(futures):
                        record(fut.result())
    finally:
        bar.close()
    if not manifest["chapters"] or not paths.manifest.exists():
        manifest["versions"] = versions
        write_manifest(paths, manifest)
    return [results[t.stem] for t in tasks]
