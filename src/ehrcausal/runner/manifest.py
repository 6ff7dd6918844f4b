"""The run manifest: ``book/_generated/manifest.json`` and its Markdown rendering.

Per chapter the manifest records the profile, device, wall time, status, commit, content hash,
time (UTC), output and parameters of its last run, plus the package versions. Both files are
written atomically (:func:`ehrcausal.cache.atomic_write_text`).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..cache import atomic_write_text
from .paths import StudyPaths

__all__ = [
    "utc_now",
    "git_commit",
    "read_manifest",
    "render_manifest_markdown",
    "write_manifest",
    "write_manifest_markdown",
]


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


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest at ``path`` (an empty one when missing or unreadable)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        data = {}
    if not isinstance(data, dict):
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


def write_manifest(paths: StudyPaths, manifest: Mapping[str, Any]) -> None:
    """Write ``manifest.json`` and ``manifest.md`` (each atomically)."""
    atomic_write_text(paths.manifest, json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    atomic_write_text(paths.manifest_md, render_manifest_markdown(manifest))


def write_manifest_markdown(paths: StudyPaths) -> Path:
    """Render ``manifest.md`` from ``manifest.json`` (a "no chapters yet" table when missing)."""
    atomic_write_text(paths.manifest_md, render_manifest_markdown(read_manifest(paths.manifest)))
    return paths.manifest_md
