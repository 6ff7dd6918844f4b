"""The run manifest: ``book/_generated/manifest.json`` and its Markdown rendering.

Per chapter the manifest records the profile, device, wall time, peak memory (the largest
sampled resident memory of the kernel's process tree, in MiB), status, commit, content hash,
time (UTC), output and parameters of its last run, plus the package versions. Both files are
written atomically (:func:`ehrcausal.cache.atomic_write_text`).

Several runs may record chapters at the same time (two terminals, ``--jobs``): every change is
a read-merge-write of the one chapter's record under an exclusive lock
(:func:`fcntl.flock` on ``book/_generated/.manifest.lock``), so no run overwrites the records
another run wrote after it started. A malformed manifest (not JSON, ``"chapters": null``, a
record that is not a mapping) is read as empty, with a warning naming the file, and rewritten.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..cache import atomic_write_text
from .paths import StudyPaths

__all__ = [
    "utc_now",
    "git_commit",
    "manifest_lock",
    "read_manifest",
    "repair_manifest",
    "update_manifest",
    "render_manifest_markdown",
    "write_manifest",
    "write_manifest_markdown",
]

#: The lock file beside the manifest (``book/_generated/.manifest.lock``).
LOCK_NAME = ".manifest.lock"

# flock excludes other processes; this excludes other threads of this one. It is re-entrant,
# and a thread that holds it does not flock again (a second descriptor would deadlock).
_THREAD_LOCK = threading.RLock()
_HELD = threading.local()


def utc_now() -> str:
    """The current time in UTC as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


def _clean_manifest(data: Any) -> tuple[dict[str, Any], list[str]]:
    """``data`` as a well-formed manifest, and what had to be dropped to make it one."""
    problems: list[str] = []
    if not isinstance(data, dict):
        problems.append(f"the top level is {type(data).__name__}, not a mapping")
        data = {}
    out = dict(data)
    for key in ("chapters", "versions"):
        if key not in out:
            out[key] = {}
        elif not isinstance(out[key], dict):
            problems.append(f"{key!r} is {json.dumps(out[key])[:40]}, not a mapping")
            out[key] = {}
    chapters = {}
    for stem, entry in out["chapters"].items():
        if isinstance(entry, dict):
            chapters[stem] = entry
        else:
            problems.append(f"the record of {stem!r} is {json.dumps(entry)[:40]}, not a mapping")
    out["chapters"] = chapters
    return out, problems


def _load(path: Path) -> tuple[dict[str, Any], list[str]]:
    """The manifest at ``path`` (empty when missing) and its defects (none when well formed)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        data = {}
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        return _clean_manifest({})[0], [f"not readable JSON ({exc})"]
    return _clean_manifest(data)


def _warn(path: Path, problems: list[str]) -> None:
    print(
        f"warning: {path} is malformed ({'; '.join(problems)}); "
        "reading what is well formed and rewriting it",
        file=sys.stderr,
    )


def read_manifest(path: Path, *, warn: bool = True) -> dict[str, Any]:
    """The manifest at ``path``: ``{"chapters": {...}, "versions": {...}, ...}``.

    Empty when missing. A malformed file (not JSON, not a mapping, ``"chapters"`` or
    ``"versions"`` not a mapping, a chapter's record not a mapping) is read as far as it is well
    formed (else as empty), with a warning on stderr naming the file when ``warn``.
    """
    data, problems = _load(path)
    if problems and warn:
        _warn(path, problems)
    return data


@contextlib.contextmanager
def manifest_lock(paths: StudyPaths) -> Iterator[None]:
    """Hold the manifest's exclusive lock (threads of this process and other processes).

    :func:`fcntl.flock` on ``book/_generated/.manifest.lock``; where :mod:`fcntl` does not exist
    (Windows) only the threads of this process are excluded.
    """
    lock_path = (paths.generated / LOCK_NAME).resolve()
    with _THREAD_LOCK:
        held: set[Path] = _HELD.__dict__.setdefault("paths", set())
        if lock_path in held:  # this thread holds it already
            yield
            return
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            fcntl = None
        with open(lock_path, "a+b") as handle:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            held.add(lock_path)
            try:
                yield
            finally:
                held.discard(lock_path)
                if fcntl is not None:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def update_manifest(
    paths: StudyPaths,
    entries: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    versions: Mapping[str, str] | None = None,
    updated: str | None = None,
) -> dict[str, Any]:
    """Merge chapter records into the manifest on disk, under :func:`manifest_lock`.

    Reads the manifest as it is *now* (records written by other runs included), replaces the
    records of the chapters in ``entries`` only, sets ``versions`` and ``updated`` when given,
    and writes ``manifest.json`` and ``manifest.md`` atomically. Returns the merged manifest.
    """
    with manifest_lock(paths):
        manifest = read_manifest(paths.manifest)
        for stem, entry in (entries or {}).items():
            manifest["chapters"][stem] = dict(entry)
        if versions is not None:
            manifest["versions"] = dict(versions)
        if updated is not None:
            manifest["updated"] = updated
        write_manifest(paths, manifest)
        return manifest


def repair_manifest(paths: StudyPaths) -> bool:
    """Rewrite a malformed manifest as its well-formed part (warning); ``True`` if it did."""
    with manifest_lock(paths):
        manifest, problems = _load(paths.manifest)
        if not problems:
            return False
        _warn(paths.manifest, problems)
        write_manifest(paths, manifest)
        return True


def render_manifest_markdown(manifest: Mapping[str, Any]) -> str:
    """The manifest as Markdown tables (chapters, then package versions), no headings."""
    rows = [
        "| Chapter | Profile | Device | Status | Seconds | Peak memory (MiB) | Commit "
        "| Finished (UTC) | Content hash |",
        "|---|---|---|---|---:|---:|---|---|---|",
    ]
    chapters = manifest.get("chapters") or {}
    if not chapters:
        rows.append("| *no chapters executed yet* | | | | | | | | |")
    for stem in sorted(chapters):
        c = chapters[stem]
        commit = str(c.get("commit", "unknown"))
        short = (
            commit if commit == "unknown" else commit[:10] + ("-dirty" * commit.endswith("-dirty"))
        )
        seconds = c.get("seconds")
        peak = c.get("peak_memory_mib")
        rows.append(
            "| {chapter} | {profile} | {device} | {status} | {seconds} | {peak} | `{commit}` "
            "| {ts} | `{h}` |".format(
                chapter=c.get("chapter", stem),
                profile=c.get("profile", ""),
                device=c.get("device", ""),
                status=c.get("status", ""),
                seconds="" if seconds is None else f"{float(seconds):.1f}",
                peak="" if peak is None else f"{float(peak):,.0f}",
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


def write_manifest(paths: StudyPaths, manifest: Mapping[str, Any]) -> None:
    """Write ``manifest.json`` and ``manifest.md`` (each atomically), replacing what is there.

    Runs that may overlap use :func:`update_manifest` instead, which merges under the lock.
    """
    atomic_write_text(paths.manifest, json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    atomic_write_text(paths.manifest_md, render_manifest_markdown(manifest))


def write_manifest_markdown(paths: StudyPaths) -> Path:
    """Render ``manifest.md`` from ``manifest.json`` (a "no chapters yet" table when missing)."""
    atomic_write_text(paths.manifest_md, render_manifest_markdown(read_manifest(paths.manifest)))
    return paths.manifest_md
