"""The runner's command line: ``python -m ehrcausal.runner {run,build,list,params}``."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from ..cache import canonical_json
from .book import build_book
from .manifest import read_manifest, repair_manifest
from .params import (
    PROFILES,
    ParameterError,
    discover_chapters,
    injected_parameters,
    resolve_parameters,
)
from .paths import StudyPaths, find_root
from .plan import checked_overrides, is_current, plan_chapters, published_record
from .run import CHAPTER_THREAD, Terminated, run_chapters

__all__ = ["PROG", "build_parser", "main"]

PROG = "python -m ehrcausal.runner"


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The argument parser of the five sub-commands."""
    parser = argparse.ArgumentParser(
        prog=prog,
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
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="{run,build,pdf,list,params}"
    )

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

    pdf = sub.add_parser("pdf", help="print the built book to one PDF (_build/pdf/book.pdf)")
    pdf.add_argument("-o", "--output", type=Path, default=None, help="where to write the PDF")

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


def _cmd_pdf(paths: StudyPaths, args: argparse.Namespace) -> int:
    from .pdf import build_pdf

    try:
        out = build_pdf(paths, args.output)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"pdf: {paths.rel(out)}")
    return 0


def _cmd_params(paths: StudyPaths, args: argparse.Namespace) -> int:
    import yaml

    (notebook,) = discover_chapters(paths.notebooks, [args.chapter])
    _, per_chapter = checked_overrides(paths, args.profile, args.params_file)
    overrides = per_chapter.get(notebook.stem, {})
    if args.full:
        values = resolve_parameters(notebook, overrides, args.device)
    else:
        values = injected_parameters(
            overrides, args.device, declared=resolve_parameters(notebook, overrides)
        )
    sys.stdout.write(
        yaml.safe_dump(values, sort_keys=False, default_flow_style=False) if values else "{}\n"
    )
    return 0


def _cmd_list(paths: StudyPaths, args: argparse.Namespace) -> int:
    profile_name, tasks, _ = plan_chapters(
        paths, args.chapters, profile=args.profile, params_file=args.params_file, device=args.device
    )
    if paths.manifest.exists():
        repair_manifest(paths)
    manifest = read_manifest(paths.manifest)
    print(f"profile {profile_name}; notebooks in {paths.rel(paths.notebooks)}")
    if not tasks:
        print("  (no chapters)")
    for task in tasks:
        entry = manifest["chapters"].get(task.stem) or {}
        record = published_record(paths, task.stem)
        if is_current(task.digest, task.stem, paths):
            state = "up to date"
        elif record is not None:
            state = f"stale (published with other inputs, profile {record.get('profile')})"
        elif paths.chapter_output(task.stem).exists():
            state = "stale (the published notebook is unreadable or has no runner record)"
        elif entry:
            state = f"stale (last run: {entry.get('status')}, profile {entry.get('profile')})"
        else:
            state = "never run"
        print(f"  {task.stem:<30} {state}")
        print(f"      parameters: {canonical_json(task.parameters)}")
    return 0


def _exit_now_if_chapters_linger(status: int) -> None:
    """End the process at once when interrupted chapter threads are still alive.

    Their kernels were stopped and their temporary notebooks removed; what is left is a thread
    waiting for a reply from a dead kernel, which the interpreter would join at exit (up to the
    cell timeout). Only the command line does this, never :func:`run_chapters` itself.
    """
    if any(t.name.startswith(CHAPTER_THREAD) and t.is_alive() for t in threading.enumerate()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Command-line entry point (``python -m ehrcausal.runner``); returns the exit status.

    0: success; 1: a chapter failed or the book did not build; 2: bad input (unknown profile
    or chapter, unreadable parameters file, a parameter the notebook does not define or of the
    wrong type, bad ``--jobs``/``--timeout``), one ``error:`` line per problem on stderr;
    130: interrupted (``KeyboardInterrupt``); ``SIGTERM`` during ``run`` exits with 143.
    """
    args = build_parser(prog).parse_args(argv)
    paths = StudyPaths.from_root(args.root or find_root())
    try:
        if args.command == "list":
            return _cmd_list(paths, args)
        if args.command == "params":
            return _cmd_params(paths, args)
        if args.command == "build":
            return build_book(paths, strict=not args.no_strict, all_pages=not args.incremental)
        if args.command == "pdf":
            return _cmd_pdf(paths, args)
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
    except ParameterError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        _exit_now_if_chapters_linger(130)
        return 130
    except Terminated as exc:
        _exit_now_if_chapters_linger(int(exc.code))
        raise
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
