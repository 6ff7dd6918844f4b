"""Executing one chapter: papermill in a kernel of this interpreter, published atomically.

:func:`execute_chapter` runs a planned chapter with papermill into a hidden temporary notebook
in ``book/chapters/``; on success it rewrites the notebook's papermill paths relative to the
repository, stores the runner's record in its metadata (``metadata.ehrcausal``: content hash,
profile, parameters, device, seconds, peak memory of the kernel's process tree
(:mod:`.memory`), commit, time; what decides later whether the chapter is current) and publishes it with :func:`ehrcausal.cache.atomic_write_text` as
``book/chapters/<stem>.ipynb``. A failing chapter's
partial notebook goes to ``_build/failed/<stem>.ipynb`` and the failing cell (index in the
*source* notebook) and exception are reported in the :class:`ChapterResult`; it never raises
for a failing notebook.

Temporary notebooks are named ``.<stem>.<pid>-<hex>.tmp.ipynb`` (the runner's process id) and
removed on every exit the process can catch (a failure, an exception, ``KeyboardInterrupt``,
``SIGTERM`` turned into an exception by :mod:`.run`). One left by a killed process is removed by
:func:`sweep_stale_temp_files` at the start of the next run: its process is gone (or it is one
of this process's that no chapter is writing), or, for the older name without a process id, it
is older than :data:`LEGACY_TEMP_MAX_AGE` seconds.

The kernel's working directory is ``book/chapters/``, the folder the executed chapter is
published in: nbval re-executes a published chapter in its own folder, so both runs see the
same working directory.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import shutil
import threading
import time
import uuid
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cache import atomic_write_text
from ..runtime import resolve_device
from .manifest import utc_now
from .memory import PeakMemory
from .params import parameters_cell, read_notebook
from .paths import StudyPaths
from .plan import ChapterTask
from .publish import chapter_data_digest, decorate_notebook

__all__ = [
    "PROFILE_ENV",
    "ChapterResult",
    "kernel_env",
    "kernel_manager_class",
    "glued_scalar",
    "injected_cell_position",
    "execute_chapter",
    "quiet_papermill_logs",
    "temp_notebook_path",
    "sweep_stale_temp_files",
    "remove_live_temp_files",
    "stop_live_kernels",
]

#: Environment variable exported to every kernel: the profile being run.
PROFILE_ENV = "EHRCAUSAL_PROFILE"

#: A temporary notebook of the runner: ``.<stem>.<pid>-<12 hex>.tmp.ipynb``.
TEMP_PATTERN = re.compile(r"^\.(?P<stem>.+)\.(?P<pid>\d+)-[0-9a-f]{12}\.tmp\.ipynb$")
#: The name before process ids were added: ``.<stem>.<12 hex>.tmp.ipynb``.
LEGACY_TEMP_PATTERN = re.compile(r"^\.(?P<stem>.+)\.[0-9a-f]{12}\.tmp\.ipynb$")
#: Seconds after which a temporary notebook of the legacy name counts as stale.
LEGACY_TEMP_MAX_AGE = 6 * 3600.0

# Temporary notebooks being written by this process, and its chapters' kernel managers.
_LIVE_TEMP: set[Path] = set()
_LIVE_LOCK = threading.Lock()
_LIVE_KERNELS: weakref.WeakSet[Any] = weakref.WeakSet()


def temp_notebook_path(paths: StudyPaths, stem: str) -> Path:
    """A new hidden temporary path for ``stem`` in ``book/chapters/``, naming this process."""
    return paths.chapters / f".{stem}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp.ipynb"


def _process_alive(pid: int) -> bool:
    """Whether a process with this id exists (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, OSError):
        return False
    return True


def sweep_stale_temp_files(folder: Path, *, now: float | None = None) -> list[Path]:
    """Remove the runner's temporary notebooks in ``folder`` that no run is writing any more.

    A name ``.<stem>.<pid>-<hex>.tmp.ipynb`` is stale when process ``pid`` no longer exists, or
    is this process and the file is not one it is writing; a legacy name
    ``.<stem>.<hex>.tmp.ipynb`` when it was last modified more than
    :data:`LEGACY_TEMP_MAX_AGE` seconds ago. Other files are never touched. Returns the removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    now = time.time() if now is None else now
    with _LIVE_LOCK:
        live = set(_LIVE_TEMP)
    removed = []
    for path in sorted(folder.iterdir()):
        match = TEMP_PATTERN.match(path.name)
        if match:
            pid = int(match["pid"])
            stale = (path not in live) if pid == os.getpid() else not _process_alive(pid)
        elif LEGACY_TEMP_PATTERN.match(path.name):
            try:
                stale = now - path.stat().st_mtime > LEGACY_TEMP_MAX_AGE
            except FileNotFoundError:
                continue
        else:
            continue
        if stale and path.is_file():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


def remove_live_temp_files() -> list[Path]:
    """Remove every temporary notebook this process is writing (when a run is interrupted)."""
    with _LIVE_LOCK:
        live = sorted(_LIVE_TEMP)
    removed = []
    for path in live:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def stop_live_kernels() -> int:
    """Kill the kernel processes of this process's running chapters; returns how many.

    Used when a run is interrupted, so that chapters running in worker threads fail at once
    (and clean up their temporary notebooks) instead of running to their end.
    """
    stopped = 0
    for km in list(_LIVE_KERNELS):
        process = getattr(getattr(km, "provisioner", None), "process", None)
        if process is not None and process.poll() is None:
            with contextlib.suppress(OSError):
                process.kill()
                stopped += 1
    return stopped


@dataclass
class ChapterResult:
    """What happened to one chapter in one run."""

    chapter: str
    status: str  # "ok", "failed" or "cached"
    seconds: float = 0.0
    hash: str = ""
    device: str = ""
    output: str | None = None
    failed_output: str | None = None
    cell_index: int | None = None  # index of the failing cell in the *source* notebook
    executed_cell_index: int | None = None  # the same cell in the executed (parameterised) one
    execution_count: int | None = None
    ename: str | None = None
    evalue: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    peak_memory_mib: float | None = None  # peak RSS of the kernel's process tree (sampled)

    @property
    def ok(self) -> bool:
        """Whether the chapter's output is current (executed now or cached)."""
        return self.status in ("ok", "cached")

    def describe_failure(self) -> str:
        """One line: chapter, failing cell and the exception."""
        where = "before any cell ran" if self.cell_index is None else f"cell {self.cell_index}"
        if self.execution_count is not None:
            where += f" (In [{self.execution_count}])"
        return f"chapter {self.chapter!r} failed at {where}: {self.ename}: {self.evalue}"


def kernel_env(paths: StudyPaths, profile: str) -> dict[str, str]:
    """Variables added to every chapter kernel's environment.

    The profile's name (``EHRCAUSAL_PROFILE``) and the folder where
    :func:`ehrcausal.plots.save_figure` writes figures (``book/chapters/figures``, beside the
    executed chapters).
    """
    return {
        PROFILE_ENV: profile,
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "EHRCAUSAL_FIGURES": str((paths.chapters / "figures").resolve()),
    }


def kernel_manager_class(env: Mapping[str, str]) -> type:
    """A kernel manager whose kernel is this interpreter's ipykernel, with ``env`` added.

    The spec is built from :func:`ipykernel.kernelspec.get_kernel_dict` (``sys.executable -m
    ipykernel_launcher``) instead of being looked up by name, so a ``python3`` kernel registered
    elsewhere (user or system Jupyter paths) can never be picked up, and nothing is installed.
    """
    from ipykernel.kernelspec import RESOURCES, get_kernel_dict
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import AsyncKernelManager

    spec_dict = get_kernel_dict(python_arguments=["-Xfrozen_modules=off"])
    known = {"argv", "display_name", "language", "metadata", "interrupt_mode", "env"}
    spec_kwargs = {k: v for k, v in spec_dict.items() if k in known}
    spec_kwargs["env"] = {**spec_kwargs.get("env", {}), **dict(env)}

    class StudyKernelManager(AsyncKernelManager):
        """AsyncKernelManager pinned to the current interpreter's ipykernel."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            _LIVE_KERNELS.add(self)
            import zmq

            # CurveZMQ keys for the kernel's TCP sockets where available (else ipykernel warns
            # that traffic is plain text).
            supports = getattr(self, "_kernel_supports_curve_encryption", lambda: False)
            if hasattr(self, "transport_encryption") and zmq.has("curve") and supports():
                self.transport_encryption = "auto"

        async def _async_interrupt_kernel(self) -> None:
            # jupyter_client interrupts (SIGINT) every kernel before asking it to shut down,
            # and ipykernel then logs "KeyboardInterrupt caught in kernel" at ERROR level
            # after every chapter. The chapter has finished by then, and a shutdown request
            # (followed by a kill) stops a busy kernel anyway, so skip that one interrupt.
            if self.shutting_down:
                return
            await super()._async_interrupt_kernel()

        @property
        def kernel_spec(self) -> KernelSpec:  # type: ignore[override]
            if self._kernel_spec is None:
                self._kernel_spec = KernelSpec(resource_dir=RESOURCES, **spec_kwargs)
            return self._kernel_spec

    return StudyKernelManager


def glued_scalar(nb: Mapping[str, Any], name: str) -> Any:
    """The value glued (``myst_nb.glue``) under ``name`` in an executed notebook, else ``None``."""
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) or []:
            scrap = (out.get("metadata") or {}).get("scrapbook") or {}
            if out.get("output_type") != "display_data" or scrap.get("name") != name:
                continue
            data = out.get("data") or {}
            text = data.get(scrap.get("mime_prefix", "") + "text/plain", data.get("text/plain"))
            if text is None:
                continue
            text = "".join(text) if isinstance(text, list) else text
            try:
                return ast.literal_eval(text)
            except (ValueError, SyntaxError):
                return text.strip().strip("'\"")
    return None


def injected_cell_position(source_nb: Mapping[str, Any], injected: bool) -> int | None:
    """Where papermill puts the injected-parameters cell (after ``parameters``, else first)."""
    if not injected:
        return None
    found = parameters_cell(source_nb)
    return 0 if found is None else found[0] + 1


def _recorded_device(glued: Any, requested: Any) -> str:
    """The device for the manifest: the chapter's glued ``device``, else the requested one
    resolved (``auto`` -> ``cuda``/``cpu``), else the requested value as given."""
    if glued is not None:
        return str(glued)
    try:
        return resolve_device(requested)
    except ValueError:
        return str(requested)


def execute_chapter(
    task: ChapterTask,
    paths: StudyPaths,
    *,
    profile: str,
    device: str | None,
    kernel_manager_class: type,
    progress_bar: bool = False,
    timeout: float | None = None,
    commit: str = "unknown",
) -> ChapterResult:
    """Run one chapter with papermill and publish it; never raises for a failing notebook.

    The executed notebook is decorated (:func:`.publish.decorate_notebook`: parameters shown
    once, provenance lines, alt text, the rerun section) and its ``metadata.ehrcausal`` holds
    the runner's record of the run
    (``content_hash``, ``profile``, ``parameters``, ``device``, ``seconds``, ``commit``,
    ``timestamp``). The temporary notebook is removed whatever happens (an exception or an
    interrupt included); it is moved to ``_build/failed/`` when the chapter fails.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    paths.chapters.mkdir(parents=True, exist_ok=True)
    final = paths.chapter_output(task.stem)
    # Hidden and unique in the chapters folder; papermill writes it as the cells run.
    tmp = temp_notebook_path(paths, task.stem)
    result = ChapterResult(chapter=task.stem, status="failed", hash=task.digest)
    result.parameters = task.parameters
    start = time.perf_counter()
    managers: list[Any] = []

    class _ChapterKernelManager(kernel_manager_class):  # type: ignore[misc, valid-type]
        """The run's kernel manager, remembered so this chapter's kernel can be measured."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            managers.append(self)

    def kernel_pids() -> list[int]:
        procs = [getattr(getattr(km, "provisioner", None), "process", None) for km in managers]
        return [p.pid for p in procs if p is not None and p.poll() is None]

    memory = PeakMemory(kernel_pids)
    with _LIVE_LOCK:
        _LIVE_TEMP.add(tmp)
    try:
        try:
            with memory:
                pm.execute_notebook(
                    str(task.notebook),
                    str(tmp),
                    parameters=task.injected or None,
                    kernel_name="python3",
                    progress_bar=progress_bar,
                    # The kernel's working directory; papermill's own ``cwd`` would os.chdir the
                    # whole process, which is not thread-safe when chapters run in parallel.
                    resources={"metadata": {"path": str(paths.chapters)}},
                    kernel_manager_class=_ChapterKernelManager,
                    execution_timeout=timeout,
                )
        except PapermillExecutionError as exc:
            pos = injected_cell_position(read_notebook(task.notebook), bool(task.injected))
            result.executed_cell_index = exc.cell_index
            if pos is not None and exc.cell_index >= pos:
                result.cell_index = exc.cell_index - 1 if exc.cell_index > pos else None
            else:
                result.cell_index = exc.cell_index
            result.execution_count = exc.exec_count
            result.ename, result.evalue = exc.ename, exc.evalue
        except Exception as exc:  # kernel died, timeout, unreadable notebook, ...
            lines = str(exc).strip().splitlines()
            result.ename, result.evalue = type(exc).__name__, (lines[0] if lines else "")
        else:
            nb = read_notebook(tmp)
            pm_meta = nb.setdefault("metadata", {}).setdefault("papermill", {})
            # Machine-independent paths in the published notebook.
            pm_meta["input_path"] = paths.rel(task.notebook)
            pm_meta["output_path"] = paths.rel(final)
            requested = device if device is not None else task.parameters.get("device")
            result.device = _recorded_device(glued_scalar(nb, "device"), requested)
            decorate_notebook(
                nb,
                task.stem,
                profile=profile,
                parameters=task.parameters,
                injected=task.injected,
                device_from_cli=device,
                commit=commit,
                data_sha256=chapter_data_digest(paths, task.stem),
            )
            nb["metadata"]["ehrcausal"] = {
                "content_hash": task.digest,
                "profile": profile,
                "parameters": task.parameters,
                "device": result.device,
                "seconds": round(time.perf_counter() - start, 3),
                "peak_memory_mib": memory.peak_mib,
                "commit": commit,
                "timestamp": utc_now(),
            }
            atomic_write_text(final, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            result.status = "ok"
            result.output = paths.rel(final)
        if result.status == "failed" and tmp.exists() and tmp.stat().st_size > 0:
            paths.failed.mkdir(parents=True, exist_ok=True)
            failed = paths.failed / f"{task.stem}.ipynb"
            shutil.move(str(tmp), failed)
            result.failed_output = paths.rel(failed)
    finally:
        result.seconds = round(time.perf_counter() - start, 3)
        result.peak_memory_mib = memory.peak_mib
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        with _LIVE_LOCK:
            _LIVE_TEMP.discard(tmp)
    return result


@contextlib.contextmanager
def quiet_papermill_logs() -> Iterator[None]:
    """papermill logs its paths at INFO; keep warnings (e.g. unknown parameters) only."""
    import logging

    logger = logging.getLogger("papermill")
    old = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(old)
