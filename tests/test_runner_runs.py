"""The runner under overlapping runs, a broken manifest and interruptions (issue 13).

Overlapping runs lost manifest records and published another run's chapter as "cached"; a
malformed manifest crashed ``list`` and ``run``; a killed run left its temporary notebook
behind. The miniature repository and notebooks come from ``test_runner.py``; real kernels run
where a chapter is executed (a few seconds each).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ehrcausal import runner
from ehrcausal.runner import StudyPaths, read_manifest, run_chapters

from .test_runner import good_cells, hidden_files, outputs_text, repo, write_notebook

__all__ = ["repo"]  # the fixture, imported from test_runner


def cli(paths: StudyPaths, *args: str) -> int:
    return runner.main(["--root", str(paths.root), *args])


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


# ------------------------------------------------------------------------------------------
# 1. Overlapping runs: the manifest keeps every record, "cached" is read from the notebook
# ------------------------------------------------------------------------------------------
def test_overlapping_runs_keep_records_and_never_publish_another_runs_chapter(
    repo: StudyPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's reproduction, made deterministic.

    Run A (profile smoke, chapter alpha, --force) reads the manifest, then, while its chapter
    executes, run B (``-f other.yml``, chapter beta, --force) starts and finishes: B publishes
    beta with other parameters and records it. A then records alpha. The manifest must keep
    B's record of beta, and a later smoke run of beta must re-execute it instead of reporting
    B's notebook as "cached".
    """
    from ehrcausal.runner import run as run_module

    write_notebook(repo.notebooks / "beta.ipynb", good_cells())
    (repo.params / "smoke.yml").write_text("alpha: {n: 3}\nbeta: {n: 4}\n")
    other = repo.root / "other.yml"
    other.write_text("beta: {n: 9, label: other}\n")
    first = {r.chapter: r for r in run_chapters(repo, profile="smoke", progress=False)}
    assert [r.status for r in first.values()] == ["ok", "ok"]

    real_execute = run_module.execute_chapter
    overlapped: list[str] = []

    def execute_with_overlap(task, paths, **kwargs):  # type: ignore[no-untyped-def]
        if task.stem == "alpha" and not overlapped:  # run B, inside run A's execution
            overlapped.append("started")
            (b,) = run_chapters(paths, ["beta"], params_file=other, force=True, progress=False)
            overlapped.append(b.status)
        return real_execute(task, paths, **kwargs)

    monkeypatch.setattr(run_module, "execute_chapter", execute_with_overlap)
    (a,) = run_chapters(repo, ["alpha"], profile="smoke", force=True, progress=False)
    monkeypatch.undo()
    assert overlapped == ["started", "ok"] and a.status == "ok"
    assert "n=9 label=other" in outputs_text(repo.chapter_output("beta"))

    chapters = read_manifest(repo.manifest)["chapters"]
    assert set(chapters) == {"alpha", "beta"}
    assert chapters["alpha"]["profile"] == "smoke" and chapters["alpha"]["hash"] == a.hash
    # B's record survived A's write: it describes the notebook that is published.
    assert chapters["beta"]["profile"] == "other"
    assert chapters["beta"]["parameters"]["n"] == 9
    assert chapters["beta"]["hash"] != first["beta"].hash

    (again,) = run_chapters(repo, ["beta"], profile="smoke", progress=False)
    assert again.status == "ok"  # re-executed, not "cached"
    assert again.hash == first["beta"].hash
    assert "n=4 label=smoke" in outputs_text(repo.chapter_output("beta"))
    assert read_manifest(repo.manifest)["chapters"]["beta"]["profile"] == "smoke"


def test_truncated_or_replaced_chapter_is_not_cached(
    repo: StudyPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    """The manifest alone never makes a chapter current: its notebook must parse and match."""
    (ok,) = run_chapters(repo, profile="smoke", progress=False)
    out = repo.chapter_output("alpha")
    text = out.read_text()
    assert read_manifest(repo.manifest)["chapters"]["alpha"]["hash"] == ok.hash

    out.write_text(text[: len(text) // 2])  # truncated (a killed copy, a full disk)
    (rerun,) = run_chapters(repo, profile="smoke", progress=False)
    assert rerun.status == "ok"  # not "cached"
    assert json.loads(out.read_text())["metadata"]["ehrcausal"]["content_hash"] == ok.hash

    # Replaced by a notebook made with other inputs while the manifest still says current.
    nb = json.loads(out.read_text())
    nb["metadata"]["ehrcausal"]["content_hash"] = "0" * 64
    out.write_text(json.dumps(nb))
    assert read_manifest(repo.manifest)["chapters"]["alpha"]["hash"] == ok.hash
    capsys.readouterr()
    assert cli(StudyPaths.from_root(repo.root), "list", "-p", "smoke") == 0
    assert "stale (published with other inputs, profile smoke)" in capsys.readouterr().out
    (replaced,) = run_chapters(repo, profile="smoke", progress=False)
    assert replaced.status == "ok"  # not "cached"
    assert runner.is_current(ok.hash, "alpha", repo)
    repo.manifest.unlink()  # a lost manifest: the cached chapter's record comes from its notebook
    (cached,) = run_chapters(repo, profile="smoke", progress=False)
    assert cached.status == "cached" and cached.device == "glued-cpu"
    entry = read_manifest(repo.manifest)["chapters"]["alpha"]
    assert (entry["status"], entry["hash"], entry["profile"]) == ("ok", ok.hash, "smoke")
    assert entry["parameters"]["n"] == 3

    # A notebook without the runner's record (written by hand, or by an older runner).
    del nb["metadata"]["ehrcausal"]
    out.write_text(json.dumps(nb))
    assert runner.published_record(repo, "alpha") is None
    assert not runner.is_current(ok.hash, "alpha", repo)
    out.write_text("[]")
    assert runner.published_record(repo, "alpha") is None


def test_manifest_update_merges_under_the_lock(repo: StudyPaths) -> None:
    """A record is merged into the manifest as it is on disk now, not as it was read before."""
    runner.update_manifest(repo, {"a": {"chapter": "a", "status": "ok"}}, versions={"x": "1"})
    stale_copy = read_manifest(repo.manifest)
    runner.update_manifest(repo, {"b": {"chapter": "b", "status": "ok"}})  # another run
    stale_copy["chapters"]["c"] = {"chapter": "c", "status": "ok"}
    runner.update_manifest(repo, {"c": stale_copy["chapters"]["c"]})
    manifest = read_manifest(repo.manifest)
    assert set(manifest["chapters"]) == {"a", "b", "c"} and manifest["versions"] == {"x": "1"}
    assert "| b |" in repo.manifest_md.read_text()


# ------------------------------------------------------------------------------------------
# A malformed manifest is named, read as empty and rewritten
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"chapters": null, "versions": {"python": "3"}}', "'chapters' is null, not a mapping"),
        ('{"chapters": [], "versions": {}}', "'chapters' is [], not a mapping"),
        ('{"chapters": {"alpha": 1}}', "the record of 'alpha' is 1, not a mapping"),
        ("[1, 2]", "the top level is list, not a mapping"),
        ('{"chapters": {', "not readable JSON"),
    ],
)
def test_malformed_manifest_is_read_as_empty_named_and_rewritten(
    text: str, problem: str, repo: StudyPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    repo.generated.mkdir(parents=True)
    repo.manifest.write_text(text)
    assert cli(repo, "list", "-p", "smoke") == 0
    captured = capsys.readouterr()
    assert "alpha" in captured.out and "never run" in captured.out
    (warning,) = error_lines(captured.err)
    assert warning.startswith(f"warning: {repo.manifest} is malformed ({problem}")
    rewritten = json.loads(repo.manifest.read_text())
    assert rewritten["chapters"] == {} and isinstance(rewritten["versions"], dict)
    assert "no chapters executed yet" in repo.manifest_md.read_text()
    assert cli(repo, "list", "-p", "smoke") == 0
    assert capsys.readouterr().err == ""  # repaired once, silent after


def test_run_on_a_malformed_manifest_records_the_chapter(
    repo: StudyPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    repo.generated.mkdir(parents=True)
    repo.manifest.write_text('{"chapters": null}')
    (result,) = run_chapters(repo, profile="smoke", progress=False)
    assert result.status == "ok"
    assert "is malformed ('chapters' is null" in capsys.readouterr().err
    assert read_manifest(repo.manifest)["chapters"]["alpha"]["hash"] == result.hash


# ------------------------------------------------------------------------------------------
# 4. Temporary notebooks: removed on every exit the process can catch, stale ones swept
# ------------------------------------------------------------------------------------------
def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporary_notebooks_are_swept_at_the_start_of_run(
    repo: StudyPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    repo.chapters.mkdir(parents=True)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        old = time.time() - 7 * 3600
        files = {
            "dead": repo.chapters / f".alpha.{dead_pid()}-0123456789ab.tmp.ipynb",
            "mine": repo.chapters / f".alpha.{os.getpid()}-0123456789ab.tmp.ipynb",
            "legacy_old": repo.chapters / ".alpha.0123456789ab.tmp.ipynb",
            "live": repo.chapters / f".beta.{alive.pid}-0123456789ab.tmp.ipynb",
            "legacy_new": repo.chapters / ".beta.ba9876543210.tmp.ipynb",
            "other": repo.chapters / ".alpha.keep.ipynb",
        }
        for path in files.values():
            path.write_text("{}")
        os.utime(files["legacy_old"], (old, old))
        (result,) = run_chapters(repo, profile="smoke", progress=False)
        assert result.status == "ok"
        left = {p.name for p in hidden_files(repo.chapters)}
        assert left == {files[k].name for k in ("live", "legacy_new", "other")}
        assert (
            "removed 3 temporary notebook(s) left by an interrupted run" in capsys.readouterr().err
        )
    finally:
        alive.kill()
        alive.wait()


def copy_then(action: str) -> str:
    """Source of a stand-in ``papermill.execute_notebook``: writes the output, then ``action``."""
    return textwrap.dedent(
        f"""
        import os, shutil, signal, time
        import papermill

        def execute_notebook(input_path, output_path, **kwargs):
            shutil.copy(input_path, output_path)
            {action}

        papermill.execute_notebook = execute_notebook
        """
    )


def test_sigterm_during_a_chapter_removes_its_temporary_notebook(repo: StudyPaths) -> None:
    """Python's default SIGTERM skipped every ``finally``: the temporary notebook stayed."""
    script = repo.root / "terminate.py"
    script.write_text(
        copy_then("os.kill(os.getpid(), signal.SIGTERM); time.sleep(30)")
        + "import sys\nfrom ehrcausal.runner import main\n"
        + f"sys.exit(main(['--root', {str(repo.root)!r}, 'run', '-p', 'smoke', '--no-progress']))\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 128 + 15, proc.stderr
    assert repo.chapters.is_dir() and hidden_files(repo.chapters) == []
    assert not repo.chapter_output("alpha").exists()


@pytest.mark.parametrize("where", ["interrupt", "error", "publish"])
def test_exception_during_execution_removes_the_temporary_notebook(
    where: str, repo: StudyPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupt in a cell, a failing kernel, a failing write: no temporary file stays."""
    import shutil

    import papermill

    from ehrcausal.runner import execute

    seen: list[Path] = []

    def execute_notebook(input_path: str, output_path: str, **kwargs: object) -> None:
        shutil.copy(input_path, output_path)
        seen.append(Path(output_path))
        if where == "interrupt":
            raise KeyboardInterrupt
        if where == "error":
            raise RuntimeError("kernel died")

    def full_disk(path: object, text: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    monkeypatch.setattr(execute, "atomic_write_text", full_disk)
    if where == "error":
        (result,) = run_chapters(repo, profile="smoke", progress=False)
        assert (result.status, result.ename) == ("failed", "RuntimeError")
        assert (repo.failed / "alpha.ipynb").is_file()  # the partial notebook, kept aside
    else:
        with pytest.raises(KeyboardInterrupt if where == "interrupt" else OSError):
            run_chapters(repo, profile="smoke", progress=False)
    assert seen and not seen[0].exists() and hidden_files(repo.chapters) == []
    assert str(os.getpid()) in seen[0].name  # the name says which process writes it
    assert not repo.chapter_output("alpha").exists()


def test_sigterm_with_parallel_chapters_stops_their_kernels_and_cleans_up(
    repo: StudyPaths,
) -> None:
    """With --jobs 2 the chapters run in worker threads: SIGTERM stops their kernels at once."""
    for stem in ("alpha", "beta"):
        write_notebook(
            repo.notebooks / f"{stem}.ipynb",
            [
                ("code", "n = 1", ["parameters"]),
                ("code", "print('started')", []),
                ("code", "import time\ntime.sleep(600)", []),
            ],
        )
    (repo.params / "smoke.yml").write_text("alpha: {n: 2}\n")
    script = repo.root / "terminate.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, signal, sys, threading, time
            from pathlib import Path
            from ehrcausal.runner import main

            def terminate_once_both_sleep():
                folder, deadline = Path({str(repo.chapters)!r}), time.time() + 240
                while time.time() < deadline:
                    temps = list(folder.glob(".*.tmp.ipynb")) if folder.is_dir() else []
                    if len(temps) == 2 and all("started" in p.read_text() for p in temps):
                        break
                    time.sleep(0.2)
                os.kill(os.getpid(), signal.SIGTERM)

            threading.Thread(target=terminate_once_both_sleep, daemon=True).start()
            args = ["--root", {str(repo.root)!r}, "run", "-p", "smoke", "--jobs", "2"]
            sys.exit(main(args + ["--no-progress"]))
            """
        )
    )
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=500
    )
    assert proc.returncode == 128 + 15, proc.stdout + proc.stderr
    assert time.perf_counter() - start < 400  # the ten-minute cells did not run to their end
    assert hidden_files(repo.chapters) == []
    assert not any(repo.chapter_output(stem).exists() for stem in ("alpha", "beta"))
