"""The study runner: execute the chapters with papermill per profile, cache them, build the book.

Usage (from the repository root)::

    python -m ehrcausal.study list                       # chapters and whether they are up to date
    python -m ehrcausal.study run --profile smoke        # execute every notebooks/*.ipynb
    python -m ehrcausal.study run --profile paper --device cuda --jobs 1
    python -m ehrcausal.study run -f my_params.yml --chapters ihdp_benchmark --force
    python -m ehrcausal.study build                      # Jupyter Book -> _build/html (-W)
    python -m ehrcausal.study params --profile paper ihdp_benchmark > paper.yml  # papermill -f

How a chapter is run
--------------------
1. **Parameters.** The notebook's own ``parameters`` cell holds the smoke values. They are
   overridden by ``notebooks/params/<profile>.yml`` (a mapping *chapter stem* -> *{name: value}*,
   or the file given with ``-f``), and ``device`` is added when ``--device`` is given. Only the
   overrides are injected: papermill adds an ``injected-parameters`` cell after the
   ``parameters`` cell.
2. **Cache.** The chapter's content hash covers the notebook bytes, the resolved parameters, the
   profile, the versions of the key packages and every source file of the installed
   ``ehrcausal`` package (``**/*.py`` and package data). A chapter whose hash matches the last
   successful run recorded in the manifest, and whose output exists, is skipped (``--force``
   reruns it).
3. **Execution.** papermill runs the notebook in a kernel started from *this* interpreter
   (``sys.executable -m ipykernel_launcher``, so the virtualenv's ipykernel is the one used and
   nothing is registered globally), with ``notebooks/`` as working directory and
   ``EHRCAUSAL_PROFILE=<profile>`` in its environment. The executed notebook is written to a
   temporary file in ``book/chapters/`` and moved over ``book/chapters/<stem>.ipynb`` only on
   success. A failing chapter's partial notebook goes to ``_build/failed/<stem>.ipynb``; the
   runner reports the failing cell and exception, runs the other chapters and exits non-zero.
4. **Manifest.** ``book/_generated/manifest.json`` records, per chapter, the profile, device,
   wall time, status, commit, content hash and time (UTC), with the package versions;
   ``book/_generated/manifest.md`` renders it as a table for the book's reproducibility page.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "StudyPaths",
    "ChapterResult",
    "discover_chapters",
    "notebook_parameters",
    "load_params_file",
    "profile_overrides",
    "resolve_parameters",
    "content_hash",
    "package_files",
    "package_versions",
    "git_commit",
    "resolve_device",
    "run_chapters",
    "read_manifest",
    "render_manifest_markdown",
    "write_manifest_markdown",
    "plan_chapters",
    "missing_toc_files",
    "missing_mathjax",
    "build_book",
    "main",
]

#: Packages whose versions the manifest records (and the content hash covers).
KEY_PACKAGES: tuple[str, ...] = (
    "numpy",
    "pandas",
    "scikit-learn",
    "econml",
    "torch",
    "papermill",
    "jupyter-book",
)
#: Profiles shipped in ``notebooks/params/``.
PROFILES: tuple[str, ...] = ("smoke", "default", "paper")
#: Environment variable exported to every kernel: the profile being run.
PROFILE_ENV = "EHRCAUSAL_PROFILE"
MANIFEST_JSON = "manifest.json"
MANIFEST_MD = "manifest.md"
_SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}


# --------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StudyPaths:
    """Where the runner reads and writes; every path derives from the repository ``root``.

    Tests build one on ``tmp_path`` (``StudyPaths.from_root(tmp_path)``); the command line finds
    the root by walking up from the current directory to the folder with ``_config.yml``.
    """

    root: Path
    notebooks: Path
    params: Path
    chapters: Path
    generated: Path
    failed: Path
    package: Path

    @classmethod
    def from_root(cls, root: str | os.PathLike[str], package: Path | None = None) -> StudyPaths:
        """Standard layout under ``root``; ``package`` defaults to the installed ``ehrcausal``."""
        root = Path(root).resolve()
        return cls(
            root=root,
            notebooks=root / "notebooks",
            params=root / "notebooks" / "params",
            chapters=root / "book" / "chapters",
            generated=root / "book" / "_generated",
            failed=root / "_build" / "failed",
            package=(package or Path(__file__).resolve().parent),
        )

    @property
    def manifest(self) -> Path:
        """``book/_generated/manifest.json``."""
        return self.generated / MANIFEST_JSON

    @property
    def manifest_md(self) -> Path:
        """``book/_generated/manifest.md`` (included by ``book/reproducibility.md``)."""
        return self.generated / MANIFEST_MD

    def rel(self, path: Path) -> str:
        """``path`` relative to the root (POSIX), or as given when it lies outside."""
        try:
            return Path(path).resolve().relative_to(self.root).as_posix()
        except ValueError:
            return Path(path).as_posix()


def find_root(start: Path | None = None) -> Path:
    """The nearest ancestor of ``start`` (default: cwd) holding ``_config.yml`` and ``notebooks/``."""
    here = (start or Path.cwd()).resolve()
    for p in (here, *here.parents):
        if (p / "_config.yml").is_file() and (p / "notebooks").is_dir():
            return p
    return here


# --------------------------------------------------------------------------------------------
# Chapters and parameters
# --------------------------------------------------------------------------------------------
def discover_chapters(notebooks_dir: Path, names: Sequence[str] | None = None) -> list[Path]:
    """The chapter notebooks: every ``*.ipynb`` in ``notebooks_dir`` (sorted), or those named.

    ``names`` may be stems (``ihdp_benchmark``), file names or paths; an unknown name raises
    :class:`FileNotFoundError` listing the chapters that exist.
    """
    notebooks_dir = Path(notebooks_dir)
    available = sorted(p for p in notebooks_dir.glob("*.ipynb") if not p.name.startswith("."))
    if not names:
        return available
    by_stem = {p.stem: p for p in available}
    chosen: list[Path] = []
    for name in names:
        stem = Path(name).stem if name.endswith(".ipynb") else Path(name).name
        if stem not in by_stem:
            known = ", ".join(by_stem) or "none"
            raise FileNotFoundError(f"no chapter {name!r} in {notebooks_dir} (chapters: {known})")
        if by_stem[stem] not in chosen:
            chosen.append(by_stem[stem])
    return chosen


def _parameters_cell(nb: Mapping[str, Any]) -> tuple[int, str] | None:
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get(
            "tags", []
        ):
            src = cell.get("source", "")
            return i, "".join(src) if isinstance(src, list) else src
    return None


def _read_nb(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def notebook_parameters(notebook: Path) -> dict[str, Any]:
    """The defaults of a notebook's ``parameters`` cell, as Python values.

    Simple assignments (``n = 2``, ``learners: list[str] = ["ols"]``) are read with
    :func:`ast.literal_eval`; a value that is not a literal is kept as its source text.
    A notebook without a ``parameters`` cell has no defaults.
    """
    found = _parameters_cell(_read_nb(Path(notebook)))
    if found is None:
        return {}
    _, source = found
    # IPython magics and shell escapes are not Python: blank them before parsing.
    lines = ["" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines()]
    source = "\n".join(lines)
    tree = ast.parse(source)
    params: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                try:
                    params[target.id] = ast.literal_eval(value)
                except ValueError:
                    params[target.id] = ast.get_source_segment(source, value)
    return params


def load_params_file(path: Path) -> dict[str, dict[str, Any]]:
    """Read a parameters YAML: a mapping *chapter stem* -> *{parameter: value}*.

    An empty file means no overrides. Anything else raises :class:`ValueError` naming the file.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"parameters file not found: {path}")
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping chapter -> {{param: value}}, got {data!r}")
    out: dict[str, dict[str, Any]] = {}
    for chapter, params in data.items():
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ValueError(f"{path}: parameters of {chapter!r} must be a mapping, got {params!r}")
        out[str(chapter)] = dict(params)
    return out


def profile_overrides(
    params_dir: Path, profile: str | None = None, params_file: Path | None = None
) -> tuple[str, dict[str, dict[str, Any]]]:
    """The profile's name and its per-chapter overrides.

    ``params_file`` (``-f``) wins over ``profile``; its stem names the profile. A profile without
    a file in ``params_dir`` raises :class:`FileNotFoundError` listing the profiles that exist.
    """
    if params_file is not None:
        return Path(params_file).stem, load_params_file(Path(params_file))
    profile = profile or "default"
    path = Path(params_dir) / f"{profile}.yml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in Path(params_dir).glob("*.yml"))) or "none"
        raise FileNotFoundError(f"no profile {profile!r}: {path} is missing (profiles: {known})")
    return profile, load_params_file(path)


def resolve_parameters(
    notebook: Path,
    overrides: Mapping[str, Any] | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """The parameters a chapter runs with: notebook defaults < ``overrides`` < ``device``.

    ``overrides`` are the chapter's entries of the profile YAML; ``device`` (from ``--device``)
    is added last when given. Returns the full mapping, defaults included.
    """
    params = notebook_parameters(notebook)
    params.update(dict(overrides or {}))
    if device is not None:
        params["device"] = device
    return params


def _injected(overrides: Mapping[str, Any] | None, device: str | None) -> dict[str, Any]:
    """What papermill injects: the profile overrides plus ``device`` when given."""
    injected = dict(overrides or {})
    if device is not None:
        injected["device"] = device
    return injected


# --------------------------------------------------------------------------------------------
# Content hash, versions, commit, device
# --------------------------------------------------------------------------------------------
def package_files(package_dir: Path) -> list[Path]:
    """Every source and data file of the package (no ``__pycache__``, no byte code), sorted."""
    package_dir = Path(package_dir)
    files = []
    for p in package_dir.rglob("*"):
        if not p.is_file() or p.suffix in _SKIP_SUFFIXES:
            continue
        if any(part in _SKIP_DIRS for part in p.relative_to(package_dir).parts):
            continue
        files.append(p)
    return sorted(files, key=lambda p: p.relative_to(package_dir).as_posix())


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def content_hash(
    notebook: Path,
    parameters: Mapping[str, Any],
    package_dir: Path,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """SHA-256 over the notebook bytes, the parameters, the package's files and ``extra``.

    Package files enter with their path relative to ``package_dir``, so the hash does not depend
    on where the checkout lives. ``extra`` (the runner passes the profile and package versions)
    is hashed as canonical JSON.
    """
    h = hashlib.sha256()

    def feed(tag: str, data: bytes) -> None:
        h.update(tag.encode())
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)

    feed("notebook", Path(notebook).read_bytes())
    feed("parameters", _canonical(dict(parameters)).encode())
    feed("extra", _canonical(dict(extra or {})).encode())
    package_dir = Path(package_dir)
    for p in package_files(package_dir):
        feed("file:" + p.relative_to(package_dir).as_posix(), p.read_bytes())
    return h.hexdigest()


def package_versions() -> dict[str, str]:
    """Python and the key packages' versions (``"absent"`` for one not installed)."""
    versions = {"python": ".".join(map(str, sys.version_info[:3]))}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def git_commit(root: Path) -> str:
    """``git rev-parse HEAD`` of ``root`` (+ ``-dirty`` when the tree has changes), or ``unknown``."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=30
        )
        if head.returncode != 0:
            return "unknown"
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = head.stdout.strip()
    return commit + ("-dirty" if status.returncode != 0 or status.stdout.strip() else "")


def resolve_device(device: str | None) -> str:
    """``"auto"``/``None`` -> ``"cuda"`` when torch sees a GPU, else ``"cpu"``; others unchanged.

    The choice itself lives in :func:`ehrcausal.runtime.resolve_device`.
    """
    if device in (None, "auto"):
        from .runtime import resolve_device as choose

        return choose("auto")
    return str(device)


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


# --------------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------------
def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest at ``path`` (an empty one when missing or unreadable)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        data = {}
    data.setdefault("chapters", {})
    data.setdefault("versions", {})
    return data


def render_manifest_markdown(manifest: Mapping[str, Any]) -> str:
    """The manifest as Markdown tables (chapters, then package versions), no headings."""
    rows = [
        "| Chapter | Profile | Device | Status | Seconds | Commit | Finished (UTC) | Content hash |",
        "|---|---|---|---|---:|---|---|---|",
    ]
    chapters = manifest.get("chapters") or {}
    if not chapters:
        rows.append("| *no chapters executed yet* | | | | | | | |")
    for stem in sorted(chapters):
        c = chapters[stem]
        commit = str(c.get("commit", "unknown"))
        short = (
            commit if commit == "unknown" else commit[:10] + ("-dirty" * commit.endswith("-dirty"))
        )
        seconds = c.get("seconds")
        rows.append(
            "| {chapter} | {profile} | {device} | {status} | {seconds} | `{commit}` | {ts} | `{h}` |".format(
                chapter=c.get("chapter", stem),
                profile=c.get("profile", ""),
                device=c.get("device", ""),
                status=c.get("status", ""),
                seconds="" if seconds is None else f"{float(seconds):.1f}",
                commit=short,
                ts=c.get("timestamp", ""),
                h=str(c.get("hash", ""))[:12],
            )
        )
    versions = manifest.get("versions") or {}
    lines = ["Chapters as last executed by the runner:", "", *rows, ""]
    if versions:
        lines += [
            "Package versions of the last run:",
            "",
            "| Package | Version |",
            "|---|---|",
            *(f"| {k} | {v} |" for k, v in versions.items()),
            "",
        ]
    return "\n".join(lines)


def write_manifest_markdown(paths: StudyPaths) -> Path:
    """Render ``manifest.md`` from ``manifest.json`` (a "no chapters yet" table when missing)."""
    _atomic_write_text(paths.manifest_md, render_manifest_markdown(read_manifest(paths.manifest)))
    return paths.manifest_md


def _write_manifest(paths: StudyPaths, manifest: Mapping[str, Any]) -> None:
    _atomic_write_text(paths.manifest, json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    _atomic_write_text(paths.manifest_md, render_manifest_markdown(manifest))


# --------------------------------------------------------------------------------------------
# Execution
# --------------------------------------------------------------------------------------------
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


def _kernel_manager_class(env: Mapping[str, str]) -> type:
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


def _injected_cell_position(source_nb: Mapping[str, Any], injected: bool) -> int | None:
    """Where papermill puts the injected-parameters cell (after ``parameters``, else first)."""
    if not injected:
        return None
    found = _parameters_cell(source_nb)
    return 0 if found is None else found[0] + 1


@dataclass
class _Task:
    stem: str
    notebook: Path
    parameters: dict[str, Any]  # resolved (defaults included), for the manifest
    injected: dict[str, Any]
    digest: str


def _execute_chapter(
    task: _Task,
    paths: StudyPaths,
    *,
    profile: str,
    device: str | None,
    kernel_manager_class: type,
    progress_bar: bool,
    timeout: float | None,
) -> ChapterResult:
    """Run one chapter with papermill; never raises for a failing notebook."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    paths.chapters.mkdir(parents=True, exist_ok=True)
    final = paths.chapters / f"{task.stem}.ipynb"
    # Hidden, unique, same folder (so os.replace is atomic); papermill creates it.
    tmp = paths.chapters / f".{task.stem}.{uuid.uuid4().hex[:12]}.tmp.ipynb"
    result = ChapterResult(chapter=task.stem, status="failed", hash=task.digest)
    result.parameters = task.parameters
    start = time.perf_counter()
    try:
        try:
            pm.execute_notebook(
                str(task.notebook),
                str(tmp),
                parameters=task.injected or None,
                kernel_name="python3",
                progress_bar=progress_bar,
                # The kernel's working directory; papermill's own ``cwd`` would os.chdir the whole
                # process, which is not thread-safe when chapters run in parallel.
                resources={"metadata": {"path": str(task.notebook.parent)}},
                kernel_manager_class=kernel_manager_class,
                execution_timeout=timeout,
            )
        except PapermillExecutionError as exc:
            src_nb = _read_nb(task.notebook)
            pos = _injected_cell_position(src_nb, bool(task.injected))
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
            nb = _read_nb(tmp)
            pm_meta = nb.setdefault("metadata", {}).setdefault("papermill", {})
            # Machine-independent paths in the published notebook.
            pm_meta["input_path"] = paths.rel(task.notebook)
            pm_meta["output_path"] = paths.rel(final)
            nb["metadata"]["ehrcausal"] = {"profile": profile, "content_hash": task.digest}
            tmp.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            glued = glued_scalar(nb, "device")
            result.device = (
                str(glued)
                if glued is not None
                else resolve_device(device if device is not None else task.parameters.get("device"))
            )
            os.replace(tmp, final)
            result.status = "ok"
            result.output = paths.rel(final)
        if result.status == "failed" and tmp.exists() and tmp.stat().st_size > 0:
            paths.failed.mkdir(parents=True, exist_ok=True)
            failed = paths.failed / f"{task.stem}.ipynb"
            shutil.move(str(tmp), failed)
            result.failed_output = paths.rel(failed)
    finally:
        result.seconds = round(time.perf_counter() - start, 3)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return result


@contextlib.contextmanager
def _quiet_papermill_logs() -> Iterator[None]:
    """papermill logs its paths at INFO; keep warnings (e.g. unknown parameters) only."""
    import logging

    logger = logging.getLogger("papermill")
    old = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(old)


def plan_chapters(
    paths: StudyPaths,
    chapters: Sequence[str] | None = None,
    *,
    profile: str | None = "default",
    params_file: Path | None = None,
    device: str | None = None,
) -> tuple[str, list[_Task], dict[str, str]]:
    """Resolve profile, parameters and content hashes; no execution.

    Returns the profile name, one task per chapter and the package versions (hashed too).
    """
    profile_name, per_chapter = profile_overrides(paths.params, profile, params_file)
    notebooks = discover_chapters(paths.notebooks, chapters)
    unknown = sorted(set(per_chapter) - {nb.stem for nb in discover_chapters(paths.notebooks)})
    for stem in unknown:
        print(f"warning: parameters for unknown chapter {stem!r} are ignored", file=sys.stderr)
    versions = package_versions()
    tasks = []
    for nb in notebooks:
        overrides = per_chapter.get(nb.stem, {})
        defaults = notebook_parameters(nb)
        for name in overrides:
            if name not in defaults:
                print(
                    f"warning: {nb.stem}: parameter {name!r} is not in the notebook's "
                    "parameters cell",
                    file=sys.stderr,
                )
        params = resolve_parameters(nb, overrides, device)
        digest = content_hash(
            nb, params, paths.package, extra={"profile": profile_name, "versions": versions}
        )
        tasks.append(_Task(nb.stem, nb, params, _injected(overrides, device), digest))
    return profile_name, tasks, versions


def is_current(task_digest: str, stem: str, manifest: Mapping[str, Any], paths: StudyPaths) -> bool:
    """Whether the last successful run of ``stem`` had this hash and its output still exists."""
    entry = (manifest.get("chapters") or {}).get(stem) or {}
    return (
        entry.get("status") == "ok"
        and entry.get("hash") == task_digest
        and (paths.chapters / f"{stem}.ipynb").is_file()
    )


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
        Chapters run concurrently (threads, each driving its own kernel process).
    force
        Run even chapters whose content hash is unchanged.
    progress
        Show progress bars (default: when stderr is a terminal). papermill's per-cell bar is
        shown only with ``jobs == 1``.
    timeout
        Per-cell execution timeout in seconds (``None``: no limit).

    Returns one :class:`ChapterResult` per chapter, in chapter order.
    """
    from tqdm.auto import tqdm

    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if progress is None:
        progress = sys.stderr.isatty()
    profile_name, tasks, versions = plan_chapters(
        paths, chapters, profile=profile, params_file=params_file, device=device
    )
    manifest = read_manifest(paths.manifest)
    commit = git_commit(paths.root)
    results: dict[str, ChapterResult] = {}
    todo: list[_Task] = []
    for task in tasks:
        if not force and is_current(task.digest, task.stem, manifest, paths):
            results[task.stem] = ChapterResult(
                task.stem,
                "cached",
                hash=task.digest,
                device=str(manifest["chapters"][task.stem].get("device", "")),
                output=paths.rel(paths.chapters / f"{task.stem}.ipynb"),
                parameters=task.parameters,
            )
        else:
            todo.append(task)

    env = {
        PROFILE_ENV: profile_name,
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        # figures saved by ehrcausal.plots.save_figure land beside the executed chapters
        "EHRCAUSAL_FIGURES": str((paths.chapters / "figures").resolve()),
    }
    km_class = _kernel_manager_class(env)
    lock = threading.Lock()
    bar = tqdm(total=len(tasks), desc=f"chapters [{profile_name}]", unit="ch", disable=not progress)
    for stem in results:
        bar.write(f"cached  {stem} (unchanged since its last run; --force reruns it)")
        bar.update(1)

    def record(result: ChapterResult) -> None:
        with lock:
            results[result.chapter] = result
            entry = {
                "chapter": result.chapter,
                "profile": profile_name,
                "device": result.device,
                "seconds": result.seconds,
                "status": result.status,
                "commit": commit,
                "hash": result.hash,
                "timestamp": _utc_now(),
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
            manifest["chapters"][result.chapter] = entry
            manifest["versions"] = versions
            manifest["updated"] = entry["timestamp"]
            _write_manifest(paths, manifest)
            if result.status == "ok":
                bar.write(f"ok      {result.chapter} ({result.seconds:.1f} s, {result.device})")
            else:
                bar.write(f"FAILED  {result.describe_failure()}")
                if result.failed_output:
                    bar.write(f"        partial output: {result.failed_output}")
            bar.update(1)

    kwargs = dict(
        profile=profile_name,
        device=device,
        kernel_manager_class=km_class,
        progress_bar=bool(progress and jobs == 1),
        timeout=timeout,
    )
    try:
        with _quiet_papermill_logs():
            if jobs == 1 or len(todo) <= 1:
                for task in todo:
                    bar.set_postfix_str(task.stem)
                    record(_execute_chapter(task, paths, **kwargs))
            else:
                with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="chapter") as pool:
                    futures: list[Future[ChapterResult]] = [
                        pool.submit(_execute_chapter, task, paths, **kwargs) for task in todo
                    ]
                    for fut in as_completed(futures):
                        record(fut.result())
    finally:
        bar.close()
    if not manifest["chapters"] or not paths.manifest.exists():
        manifest["versions"] = versions
        _write_manifest(paths, manifest)
    return [results[t.stem] for t in tasks]


# --------------------------------------------------------------------------------------------
# Book
# --------------------------------------------------------------------------------------------
def _toc_files(root: Path) -> list[str]:
    """Every ``file:``/``root:`` entry of ``_toc.yml``."""
    import yaml

    toc_path = root / "_toc.yml"
    if not toc_path.is_file():
        return []
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8")) or {}
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                if isinstance(node.get(key), str):
                    found.append(node[key])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return found


def missing_toc_files(root: Path) -> list[str]:
    """Entries of ``_toc.yml`` with no ``.md``/``.ipynb`` file (e.g. chapters not run yet)."""
    missing = []
    for entry in _toc_files(root):
        base = root / entry
        if base.suffix in (".md", ".ipynb") and base.is_file():
            continue
        if not any(base.with_suffix(s).is_file() for s in (".md", ".ipynb")):
            missing.append(entry)
    return missing


def missing_mathjax(root: Path) -> str | None:
    """``mathjax_path`` of ``_config.yml`` when it is local but in none of its static paths.

    Returns ``None`` when MathJax is found (or when the config names no local MathJax).
    """
    import yaml

    config_path = root / "_config.yml"
    if not config_path.is_file():
        return None
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    sphinx_config = (config.get("sphinx") or {}).get("config") or {}
    mathjax = sphinx_config.get("mathjax_path")
    if not mathjax or "://" in str(mathjax):
        return None
    static = sphinx_config.get("html_static_path") or []
    if any((root / s / mathjax).is_file() for s in static):
        return None
    return str(mathjax)


def build_book(
    paths: StudyPaths,
    *,
    strict: bool = True,
    all_pages: bool = True,
    extra_args: Sequence[str] = (),
) -> int:
    """Build the Jupyter Book at ``paths.root`` into ``_build/html``; return the exit status.

    Writes ``manifest.md`` first if it is missing (a "no chapters executed yet" table). With
    ``strict`` (default) warnings fail the build (``-W -n --keep-going``); ``all_pages`` rebuilds
    every page, so warnings of unchanged pages are reported too.
    """
    if not paths.manifest_md.is_file():
        write_manifest_markdown(paths)
    mathjax = missing_mathjax(paths.root)
    if mathjax:
        print(
            f"error: MathJax ({mathjax}) is not in any html_static_path of _config.yml;\n"
            "  install it with `make vendor` (npm, pinned) so that the book builds offline",
            file=sys.stderr,
        )
        return 1
    missing = missing_toc_files(paths.root)
    if missing:
        print(
            "error: _toc.yml lists pages that do not exist: "
            + ", ".join(missing)
            + "\n  (chapters under book/chapters/ are written by `python -m ehrcausal.study run`)",
            file=sys.stderr,
        )
        return 1
    cmd = [
        sys.executable,
        "-c",
        "import sys; from jupyter_book.cli.main import main; sys.argv[0] = 'jupyter-book'; main()",
        "build",
        str(paths.root),
        "--builder",
        "html",
    ]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    if all_pages:
        cmd.append("--all")
    cmd += list(extra_args)
    return subprocess.run(cmd, cwd=paths.root).returncode


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ehrcausal.study",
        description=(
            "Execute the study's chapters (notebooks/*.ipynb) with papermill at a profile, "
            "and build the Jupyter Book."
        ),
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="repository root (default: the nearest folder above the cwd with _config.yml)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{run,build,list,params}")

    def add_selection(p: argparse.ArgumentParser) -> None:
        group = p.add_mutually_exclusive_group()
        group.add_argument(
            "-p",
            "--profile",
            default="default",
            help="parameter profile: notebooks/params/<PROFILE>.yml "
            f"({', '.join(PROFILES)}; default: %(default)s)",
        )
        group.add_argument(
            "-f",
            "--params-file",
            type=Path,
            default=None,
            help="a YAML file of per-chapter parameters to use instead of a profile",
        )
        p.add_argument(
            "--chapters",
            nargs="+",
            metavar="CHAPTER",
            default=None,
            help="chapters to run (notebook stems); default: every notebooks/*.ipynb",
        )
        p.add_argument(
            "--device",
            default=None,
            help="inject parameter `device` (auto, cpu, cuda, cuda:N); default: the notebook's own",
        )

    run = sub.add_parser("run", help="execute chapters with papermill into book/chapters/")
    add_selection(run)
    run.add_argument(
        "-j", "--jobs", type=int, default=1, help="chapters run in parallel (default: %(default)s)"
    )
    run.add_argument(
        "--force",
        action="store_true",
        help="rerun chapters even when their content hash is unchanged",
    )
    run.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="per-cell execution timeout in seconds (default: none)",
    )
    bars = run.add_mutually_exclusive_group()
    bars.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="always show progress",
    )
    bars.add_argument(
        "--no-progress", dest="progress", action="store_false", help="never show progress bars"
    )

    build = sub.add_parser("build", help="build the Jupyter Book into _build/html")
    build.add_argument(
        "--no-strict", action="store_true", help="do not turn warnings into errors (not for CI)"
    )
    build.add_argument(
        "--incremental", action="store_true", help="rebuild only changed pages (default: all)"
    )

    lst = sub.add_parser("list", help="list chapters, their parameters and cache state")
    add_selection(lst)

    prm = sub.add_parser(
        "params",
        help="print one chapter's overrides as flat YAML (for `papermill -f`)",
        description=(
            "Print the parameters the runner would inject into CHAPTER (the profile's overrides, "
            "plus device when given) as a flat YAML mapping, the format papermill's -f expects."
        ),
    )
    group = prm.add_mutually_exclusive_group()
    group.add_argument("-p", "--profile", default="default", help="profile (default: %(default)s)")
    group.add_argument("-f", "--params-file", type=Path, default=None, help="a YAML file instead")
    prm.add_argument("--device", default=None, help="add parameter `device`")
    prm.add_argument(
        "--all",
        dest="full",
        action="store_true",
        help="print every resolved parameter, the notebook's defaults included",
    )
    prm.add_argument("chapter", help="chapter (notebook stem)")
    return parser


def _cmd_params(paths: StudyPaths, args: argparse.Namespace) -> int:
    import yaml

    (notebook,) = discover_chapters(paths.notebooks, [args.chapter])
    _, per_chapter = profile_overrides(paths.params, args.profile, args.params_file)
    overrides = per_chapter.get(notebook.stem, {})
    if args.full:
        values = resolve_parameters(notebook, overrides, args.device)
    else:
        values = _injected(overrides, args.device)
    sys.stdout.write(
        yaml.safe_dump(values, sort_keys=False, default_flow_style=False) if values else "{}\n"
    )
    return 0


def _cmd_list(paths: StudyPaths, args: argparse.Namespace) -> int:
    profile_name, tasks, _ = plan_chapters(
        paths, args.chapters, profile=args.profile, params_file=args.params_file, device=args.device
    )
    manifest = read_manifest(paths.manifest)
    print(f"profile {profile_name}; notebooks in {paths.rel(paths.notebooks)}")
    if not tasks:
        print("  (no chapters)")
    for task in tasks:
        entry = manifest["chapters"].get(task.stem) or {}
        if is_current(task.digest, task.stem, manifest, paths):
            state = "up to date"
        elif entry:
            state = f"stale (last run: {entry.get('status')}, profile {entry.get('profile')})"
        else:
            state = "never run"
        print(f"  {task.stem:<30} {state}")
        print(f"      parameters: {_canonical(task.parameters)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``python -m ehrcausal.study`` / ``ehrcausal-study``)."""
    args = _parser().parse_args(argv)
    paths = StudyPaths.from_root(args.root or find_root())
    try:
        if args.command == "list":
            return _cmd_list(paths, args)
        if args.command == "params":
            return _cmd_params(paths, args)
        if args.command == "build":
            return build_book(paths, strict=not args.no_strict, all_pages=not args.incremental)
        results = run_chapters(
            paths,
            args.chapters,
            profile=args.profile,
            params_file=args.params_file,
            device=args.device,
            jobs=args.jobs,
            force=args.force,
            progress=args.progress,
            timeout=args.timeout,
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = [r for r in results if r.status == "failed"]
    counts = {s: sum(r.status == s for r in results) for s in ("ok", "cached", "failed")}
    print(
        f"{len(results)} chapter(s): {counts['ok']} executed, {counts['cached']} cached, "
        f"{counts['failed']} failed; manifest: {paths.rel(paths.manifest)}"
    )
    for r in failed:
        print(f"  {r.describe_failure()}", file=sys.stderr)
        if r.failed_output:
            print(f"    partial output: {r.failed_output}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
