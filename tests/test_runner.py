"""Unit tests of the study runner (``ehrcausal.runner``) on throwaway notebooks in ``tmp_path``.

Each test builds a miniature repository: ``notebooks/*.ipynb`` made with nbformat (a
``parameters`` cell and cells that use it, or one that raises), ``notebooks/params/*.yml`` and a
tiny stand-in package whose files enter the content hash. Kernels really run (papermill), so
these tests take a few seconds each.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from ehrcausal import runner
from ehrcausal.runner import (
    StudyPaths,
    content_hash,
    discover_chapters,
    notebook_parameters,
    read_manifest,
    render_manifest_markdown,
    resolve_parameters,
    run_chapters,
)
from ehrcausal.runner.params import injected_parameters

PARAMS_SRC = 'n = 2\nlabel: str = "smoke"\nscale = 1.5\ndevice = "cpu"\n'


def write_notebook(path: Path, cells: list[tuple[str, str, list[str]]]) -> Path:
    """Write a notebook of ``(kind, source, tags)`` cells."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for kind, source, tags in cells:
        make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        nb.cells.append(make(source, metadata={"tags": tags} if tags else {}))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def good_cells(extra: str = "") -> list[tuple[str, str, list[str]]]:
    return [
        ("markdown", "# A chapter", []),
        ("code", PARAMS_SRC, ["parameters"]),
        (
            "code",
            "import os, sys\n"
            "from myst_nb import glue\n"
            "print(f'n={n} label={label} scale={scale} device={device}')\n"
            "print('exe=' + sys.executable)\n"
            "print('cwd=' + os.getcwd())\n"
            "print('profile=' + os.environ.get('EHRCAUSAL_PROFILE', '<unset>'))\n"
            "glue('device', 'glued-' + device, display=False)\n" + extra,
            [],
        ),
    ]


BAD_CELLS = [
    ("markdown", "# A broken chapter", []),  # cell 0
    ("code", "n = 1", ["parameters"]),  # cell 1
    ("code", "x = n + 1", []),  # cell 2
    ("code", "raise ValueError('boom at the third code cell')", []),  # cell 3
    ("code", "print('never reached')", []),  # cell 4
]


@pytest.fixture
def repo(tmp_path: Path) -> StudyPaths:
    """A miniature repository with one good chapter and the three profiles."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("VALUE = 1\n")
    write_notebook(tmp_path / "notebooks" / "alpha.ipynb", good_cells())
    params = tmp_path / "notebooks" / "params"
    params.mkdir(parents=True)
    (params / "smoke.yml").write_text("# smoke\nalpha:\n  n: 3\n")
    (params / "default.yml").write_text("alpha:\n  n: 5\n  label: default\n")
    (params / "paper.yml").write_text("alpha: {n: 7, label: paper}\n")
    return StudyPaths.from_root(tmp_path, package=pkg)


def outputs_text(nb_path: Path) -> str:
    nb = nbformat.read(nb_path, as_version=4)
    return "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )


def hidden_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(".")] if folder.exists() else []


# ------------------------------------------------------------------------------------------
# Discovery and parameters
# ------------------------------------------------------------------------------------------
def test_discover_chapters_sorted_named_and_unknown(repo: StudyPaths) -> None:
    write_notebook(repo.notebooks / "beta.ipynb", good_cells())
    write_notebook(repo.notebooks / "0_first.ipynb", good_cells())
    assert [p.stem for p in discover_chapters(repo.notebooks)] == ["0_first", "alpha", "beta"]
    named = discover_chapters(repo.notebooks, ["beta", "notebooks/alpha.ipynb"])
    assert [p.stem for p in named] == ["beta", "alpha"]
    with pytest.raises(FileNotFoundError, match="no chapter 'gamma'.*alpha"):
        discover_chapters(repo.notebooks, ["gamma"])


def test_notebook_parameters_reads_literals_and_keeps_expressions(tmp_path: Path) -> None:
    nb = write_notebook(
        tmp_path / "p.ipynb",
        [
            (
                "code",
                "a = 1\nb: list[str] = ['x', 'y']\nc = None\nd = os.cpu_count()\n%matplotlib inline\n",
                ["parameters"],
            )
        ],
    )
    assert notebook_parameters(nb) == {"a": 1, "b": ["x", "y"], "c": None, "d": "os.cpu_count()"}
    assert (
        notebook_parameters(write_notebook(tmp_path / "none.ipynb", [("code", "a = 1", [])])) == {}
    )


def test_device_injected_only_where_declared(tmp_path: Path) -> None:
    # A chapter without a `device` parameter (no neural learner) gets none: papermill would warn
    # "Passed unknown parameter: device" and the resolved parameters would list a device unused.
    plain = write_notebook(tmp_path / "plain.ipynb", [("code", "n = 2\n", ["parameters"])])
    assert resolve_parameters(plain, {"n": 4}, device="cuda") == {"n": 4}
    assert injected_parameters({"n": 4}, "cuda", declared={"n": 2}) == {"n": 4}
    torchy = write_notebook(
        tmp_path / "torchy.ipynb", [("code", "n = 2\ndevice = 'auto'\n", ["parameters"])]
    )
    assert resolve_parameters(torchy, device="cuda") == {"n": 2, "device": "cuda"}
    # Without the notebook's names (the caller knows nothing), the device is passed on as given.
    assert injected_parameters({}, "cpu") == {"device": "cpu"}


def test_resolve_parameters_priority(repo: StudyPaths) -> None:
    nb = repo.notebooks / "alpha.ipynb"
    assert resolve_parameters(nb) == {"n": 2, "label": "smoke", "scale": 1.5, "device": "cpu"}
    name, per_chapter = runner.profile_overrides(repo.params, "default")
    assert name == "default"
    resolved = resolve_parameters(nb, per_chapter["alpha"])
    assert resolved == {"n": 5, "label": "default", "scale": 1.5, "device": "cpu"}
    # An explicit device beats both the notebook and the profile.
    (repo.params / "gpu.yml").write_text("alpha: {device: cuda:1, n: 9}\n")
    _, gpu = runner.profile_overrides(repo.params, "gpu")
    assert resolve_parameters(nb, gpu["alpha"])["device"] == "cuda:1"
    assert resolve_parameters(nb, gpu["alpha"], device="cpu") == {
        "n": 9,
        "label": "smoke",
        "scale": 1.5,
        "device": "cpu",
    }


def test_profile_errors_are_clear(repo: StudyPaths, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no profile 'nope'.*default, paper, smoke"):
        runner.profile_overrides(repo.params, "nope")
    bad = tmp_path / "bad.yml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ValueError, match="expected a mapping"):
        runner.profile_overrides(repo.params, params_file=bad)
    custom = tmp_path / "custom.yml"
    custom.write_text("alpha:\n  n: 11\n")
    assert runner.profile_overrides(repo.params, "smoke", custom) == ("custom", {"alpha": {"n": 11}})


def test_shipped_profiles_are_valid() -> None:
    """notebooks/params/{smoke,default,paper}.yml of the repository parse as chapter mappings."""
    params_dir = Path(__file__).resolve().parents[1] / "notebooks" / "params"
    for profile in runner.PROFILES:
        name, per_chapter = runner.profile_overrides(params_dir, profile)
        assert name == profile
        assert "ihdp_benchmark" in per_chapter
        assert all(isinstance(v, dict) for v in per_chapter.values())


# ------------------------------------------------------------------------------------------
# Content hash
# ------------------------------------------------------------------------------------------
def test_content_hash_changes_only_with_inputs(repo: StudyPaths) -> None:
    nb = repo.notebooks / "alpha.ipynb"
    params = {"n": 2, "label": "x"}
    h0 = content_hash(nb, params, repo.package)
    assert h0 == content_hash(nb, {"label": "x", "n": 2}, repo.package)  # key order is irrelevant
    assert len(h0) == 64

    # Byte code and caches do not count...
    (repo.package / "__pycache__").mkdir()
    (repo.package / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"\0junk")
    assert content_hash(nb, params, repo.package) == h0

    # ...but parameters, package sources, package data, the notebook and extra do.
    assert content_hash(nb, {"n": 3, "label": "x"}, repo.package) != h0
    assert content_hash(nb, params, repo.package, extra={"profile": "paper"}) != h0
    (repo.package / "sub").mkdir()
    (repo.package / "sub" / "table.json").write_text("{}")
    h1 = content_hash(nb, params, repo.package)
    assert h1 != h0
    (repo.package / "__init__.py").write_text("VALUE = 2\n")
    h2 = content_hash(nb, params, repo.package)
    assert h2 not in (h0, h1)
    write_notebook(nb, good_cells(extra="print('changed')\n"))
    assert content_hash(nb, params, repo.package) != h2


# ------------------------------------------------------------------------------------------
# Running
# ------------------------------------------------------------------------------------------
def test_run_writes_output_manifest_and_skips_unchanged(repo: StudyPaths) -> None:
    (result,) = run_chapters(repo, profile="smoke", progress=False)
    assert result.status == "ok", result.describe_failure()
    out = repo.chapters / "alpha.ipynb"
    assert out.is_file() and result.output == "book/chapters/alpha.ipynb"
    assert hidden_files(repo.chapters) == []  # no temporary file left behind
    text = outputs_text(out)
    # The profile overrides n, the notebook's other defaults stay.
    assert "n=3 label=smoke scale=1.5 device=cpu" in text
    # The kernel is this interpreter (the virtualenv's ipykernel), with the profile, working in
    # book/chapters/ (where nbval re-executes the published chapter).
    assert f"exe={sys.executable}" in text
    assert f"cwd={repo.chapters}" in text
    assert "profile=smoke" in text
    # Metadata paths are relative to the repository (nothing machine-specific is published).
    meta = nbformat.read(out, as_version=4).metadata
    assert meta.papermill.input_path == "notebooks/alpha.ipynb"
    assert meta.papermill.output_path == "book/chapters/alpha.ipynb"
    assert meta.papermill.parameters == {"n": 3}
    # The runner's record travels with the notebook: what decides later whether it is current.
    record = meta.ehrcausal
    assert (record.content_hash, record.profile) == (result.hash, "smoke")
    assert record.parameters == {"n": 3, "label": "smoke", "scale": 1.5, "device": "cpu"}
    assert record.device == "glued-cpu" and record.commit == "unknown" and record.seconds > 0

    manifest = read_manifest(repo.manifest)
    entry = manifest["chapters"]["alpha"]
    assert {
        "chapter",
        "profile",
        "device",
        "seconds",
        "status",
        "commit",
        "hash",
        "timestamp",
    } <= set(entry)
    assert entry["chapter"] == "alpha" and entry["profile"] == "smoke" and entry["status"] == "ok"
    assert entry["device"] == "glued-cpu"  # the chapter's glued `device` wins
    assert entry["hash"] == result.hash and entry["seconds"] > 0
    assert entry["commit"] == "unknown"  # tmp_path is not a git checkout
    assert entry["timestamp"].endswith("Z")
    assert entry["parameters"] == {"n": 3, "label": "smoke", "scale": 1.5, "device": "cpu"}
    versions = manifest["versions"]
    for key in (
        "python",
        "numpy",
        "pandas",
        "scikit-learn",
        "econml",
        "torch",
        "papermill",
        "jupyter-book",
    ):
        assert versions[key]
    md = repo.manifest_md.read_text()
    assert "| alpha | smoke | glued-cpu | ok |" in md and "| papermill |" in md

    # Unchanged inputs: skipped, output untouched.
    mtime = out.stat().st_mtime_ns
    (again,) = run_chapters(repo, profile="smoke", progress=False)
    assert again.status == "cached" and again.hash == result.hash
    assert out.stat().st_mtime_ns == mtime
    # --force reruns; a changed profile reruns.
    (forced,) = run_chapters(repo, profile="smoke", force=True, progress=False)
    assert forced.status == "ok"
    (other,) = run_chapters(repo, profile="default", progress=False)
    assert other.status == "ok" and other.hash != result.hash
    assert "n=5 label=default" in outputs_text(out)
    # A deleted output reruns even with an unchanged hash.
    out.unlink()
    (rerun,) = run_chapters(repo, profile="default", progress=False)
    assert rerun.status == "ok" and out.is_file()


def test_device_is_injected_and_resolved(repo: StudyPaths) -> None:
    write_notebook(
        repo.notebooks / "alpha.ipynb",
        [("code", "device = 'cpu'", ["parameters"]), ("code", "print('device=' + device)", [])],
    )
    (repo.params / "smoke.yml").write_text("alpha: {}\n")  # this notebook has no `n`
    (result,) = run_chapters(repo, profile="smoke", device="auto", progress=False)
    assert result.status == "ok"
    assert "device=auto" in outputs_text(repo.chapters / "alpha.ipynb")  # passed as given
    assert result.device in ("cpu", "cuda")  # recorded resolved (no glue in this notebook)
    assert read_manifest(repo.manifest)["chapters"]["alpha"]["device"] == result.device


def test_failing_chapter_is_reported_and_others_complete(
    repo: StudyPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    write_notebook(repo.notebooks / "broken.ipynb", BAD_CELLS)
    (repo.params / "smoke.yml").write_text("alpha:\n  n: 3\nbroken:\n  n: 4\n")
    code = runner.main(
        ["--root", str(repo.root), "run", "--profile", "smoke", "--jobs", "2", "--no-progress"]
    )
    assert code != 0
    captured = capsys.readouterr()
    report = captured.out + captured.err
    assert "broken" in report
    assert "cell 3" in report  # index in the source notebook
    assert "ValueError: boom at the third code cell" in report

    # The good chapter completed; the broken one left no (partial) file in book/chapters.
    assert (repo.chapters / "alpha.ipynb").is_file()
    assert not (repo.chapters / "broken.ipynb").exists()
    assert hidden_files(repo.chapters) == []
    failed = repo.failed / "broken.ipynb"
    assert failed.is_file()
    assert "boom" in json.dumps(json.loads(failed.read_text()))

    entry = read_manifest(repo.manifest)["chapters"]["broken"]
    assert entry["status"] == "failed"
    assert entry["error"]["cell_index"] == 3
    assert entry["error"]["ename"] == "ValueError"
    assert entry["error"]["partial_output"] == "_build/failed/broken.ipynb"
    assert read_manifest(repo.manifest)["chapters"]["alpha"]["status"] == "ok"

    # A failed chapter is never "cached": the next run tries it again. (main() hashed the
    # installed package, so the same paths are used here.)
    cli_paths = StudyPaths.from_root(repo.root)
    results = {r.chapter: r for r in run_chapters(cli_paths, profile="smoke", progress=False)}
    assert results["alpha"].status == "cached"
    assert results["broken"].status == "failed" and results["broken"].cell_index == 3
    assert results["broken"].executed_cell_index == 4  # after papermill's injected cell


def test_failure_keeps_previous_output_intact(repo: StudyPaths) -> None:
    (ok,) = run_chapters(repo, profile="smoke", progress=False)
    assert ok.status == "ok"
    out = repo.chapters / "alpha.ipynb"
    before = out.read_bytes()
    write_notebook(repo.notebooks / "alpha.ipynb", BAD_CELLS)
    (bad,) = run_chapters(repo, profile="smoke", progress=False)
    assert bad.status == "failed"
    assert bad.failed_output == "_build/failed/alpha.ipynb"
    assert out.read_bytes() == before  # atomic: the published chapter was not touched
    assert hidden_files(repo.chapters) == []


def test_failure_without_parameters_cell_reports_source_index(repo: StudyPaths) -> None:
    write_notebook(
        repo.notebooks / "alpha.ipynb",
        [("code", "x = 1", []), ("code", "1 / 0", [])],
    )
    # No overrides for this chapter: nothing is injected, indices are unchanged.
    (repo.params / "none.yml").write_text("{}\n")
    (r,) = run_chapters(repo, profile="none", progress=False)
    assert (r.status, r.cell_index, r.ename) == ("failed", 1, "ZeroDivisionError")


# ------------------------------------------------------------------------------------------
# Manifest rendering and the command line
# ------------------------------------------------------------------------------------------
def test_manifest_markdown_placeholder_and_rows() -> None:
    empty = render_manifest_markdown({"chapters": {}, "versions": {}})
    assert "no chapters executed yet" in empty
    assert not any(line.startswith("#") for line in empty.splitlines())  # no headings
    md = render_manifest_markdown(
        {
            "chapters": {
                "b": {
                    "chapter": "b",
                    "profile": "paper",
                    "device": "cuda",
                    "seconds": 12.345,
                    "status": "ok",
                    "commit": "0123456789abcdef-dirty",
                    "hash": "f" * 64,
                    "timestamp": "2025-01-01T00:00:00Z",
                },
            },
            "versions": {"python": "3.11.7"},
        }
    )
    assert (
        "| b | paper | cuda | ok | 12.3 |  | `0123456789-dirty` | 2025-01-01T00:00:00Z "
        "| `ffffffffffff` |"
        in md
    )
    assert "| python | 3.11.7 |" in md


def test_build_writes_placeholder_manifest_and_checks_toc(repo: StudyPaths) -> None:
    (repo.root / "_toc.yml").write_text(
        yaml.safe_dump(
            {"format": "jb-book", "root": "intro", "chapters": [{"file": "book/chapters/alpha"}]}
        )
    )
    (repo.root / "intro.md").write_text("# Intro\n")
    assert runner.missing_toc_files(repo.root) == ["book/chapters/alpha"]
    assert runner.build_book(repo) == 1  # refuses before calling Jupyter Book
    assert "no chapters executed yet" in repo.manifest_md.read_text()


def test_cli_params_and_list(repo: StudyPaths, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(repo.root)
    assert runner.main(["--root", root, "params", "--profile", "paper", "alpha"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == {"n": 7, "label": "paper"}
    assert (
        runner.main(["--root", root, "params", "-p", "smoke", "--device", "cuda", "--all", "alpha"])
        == 0
    )
    assert yaml.safe_load(capsys.readouterr().out) == {
        "n": 3,
        "label": "smoke",
        "scale": 1.5,
        "device": "cuda",
    }
    assert runner.main(["--root", root, "list", "--profile", "smoke"]) == 0
    assert "alpha" in capsys.readouterr().out
    assert runner.main(["--root", root, "run", "--profile", "nope"]) == 2
    assert "no profile 'nope'" in capsys.readouterr().err


def test_build_refuses_without_vendored_mathjax(repo: StudyPaths) -> None:
    (repo.root / "_config.yml").write_text(
        yaml.safe_dump(
            {
                "sphinx": {
                    "config": {
                        "html_static_path": ["vendor/static"],
                        "mathjax_path": "mathjax/tex-mml-chtml.js",
                    }
                }
            }
        )
    )
    assert runner.missing_mathjax(repo.root) == "mathjax/tex-mml-chtml.js"
    assert runner.build_book(repo) == 1
    js = repo.root / "vendor" / "static" / "mathjax" / "tex-mml-chtml.js"
    js.parent.mkdir(parents=True)
    js.write_text("// stand-in")
    assert runner.missing_mathjax(repo.root) is None


def test_cli_rejects_bad_jobs_and_timeout(
    repo: StudyPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(repo.root)
    assert runner.main(["--root", root, "run", "-p", "smoke", "--jobs", "0"]) == 2
    assert "jobs must be an integer >= 1, got 0" in capsys.readouterr().err
    assert runner.main(["--root", root, "run", "-p", "smoke", "--timeout", "-1"]) == 2
    assert "timeout must be a number in (0, inf), got -1.0" in capsys.readouterr().err
    assert not repo.chapters.exists()  # nothing ran


@pytest.mark.parametrize("module", ["ehrcausal.runner", "ehrcausal.study"])
def test_module_entry_points_run_the_cli(
    module: str, repo: StudyPaths, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m ehrcausal.runner`` and the old name ``python -m ehrcausal.study`` agree."""
    import runpy

    monkeypatch.setattr(sys, "argv", [module, "--root", str(repo.root), "params", "-p", "paper", "alpha"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    assert exit_info.value.code == 0
    assert yaml.safe_load(capsys.readouterr().out) == {"n": 7, "label": "paper"}
    monkeypatch.setattr(sys, "argv", [module, "--root", str(repo.root), "run", "-p", "nope"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    assert exit_info.value.code == 2
    assert "no profile 'nope'" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------
# nbval: re-executing a published chapter reproduces every output
# ------------------------------------------------------------------------------------------
SANITIZE = Path(__file__).resolve().parent / "nbval_sanitize.cfg"


def sanitize(text: str) -> str:
    """``text`` as nbval sees it after the project's sanitizers."""
    import re

    from nbval.plugin import get_sanitize_patterns

    patterns = get_sanitize_patterns(SANITIZE.read_text(encoding="utf-8"))
    assert len(patterns) >= 10  # every "regex:" line was paired with its "replace:" line
    for regex, replace in patterns:
        text = re.sub(regex, replace, text)
    return text


def test_sanitizers_mask_what_varies_and_keep_results() -> None:
    pytest.importorskip("nbval")
    bars = (
        "work: 100%|##########| 30/30 [00:00<00:00, 478.37it/s]\n"
        "minilm: 300 note [00:02, 120.40note/s]\n"
        "fits:   0%|          | 0/8 [00:00<?, ?it/s]\n"
    )
    # what a leave=False bar leaves once nbval has resolved its carriage returns: blanks + \r
    cleared = "                                             \r"
    assert sanitize(bars + "UserWarning: keep me\n" + cleared) == "UserWarning: keep me\n"
    assert sanitize("took 0.140 s; Wall time: 12 ms; 2.5 min") == (
        "took DURATION; Wall time: DURATION; DURATION"
    )
    assert sanitize("at 2026-11-30T13:24:04 and 2026-11-30 13:24:04.711565, 13:24:05") == (
        "at DATETIME and DATETIME, TIME"
    )
    assert sanitize("<object object at 0x7f2e13ba73d0>") == "<object object at 0xADDRESS>"
    assert sanitize("scratch /tmp/tmpbppi3zel/x.npy done") == "scratch TMPPATH done"
    assert sanitize("commit 0123abc456-dirty") == "commit COMMIT"
    # Results are never masked: floats, integers, tables, a 64-digit content hash.
    results = (
        "0.1847370313496033 -1.5e-05 np.float64(0.25) 12345678 n=300 √PEHE 0.512 ± 0.031\n"
        "<td>0.734</td><td>1017</td> " + "ab12" * 16
    )
    assert sanitize(results) == results


def seeded_cells(leak: bool) -> list[tuple[str, str, list[str]]]:
    """A stand-in chapter: seeded draws, a progress bar, a timing, a date, an address, a glue."""
    work = (
        "import datetime, tempfile, time\n"
        "import numpy as np\n"
        "from myst_nb import glue\n"
        "from tqdm import tqdm\n"
        "start = time.perf_counter()\n"
        "x = np.random.default_rng(seed).normal(size=n)\n"
        "print('draws', x.tolist())\n"
        "for _ in tqdm(range(20), desc='work'):\n"
        "    time.sleep(0.001)\n"
        "print(f'took {time.perf_counter() - start:.4f} s')\n"
        "print('finished at', datetime.datetime.now(), object())\n"
        "with tempfile.TemporaryDirectory() as scratch:\n"
        "    print('scratch', scratch)\n"
        "glue('mean', float(x.mean()), display=False)\n"
        "x.sum()\n"
    )
    cells = [("code", "seed = 0\nn = 3\n", ["parameters"]), ("code", work, [])]
    if leak:
        cells.append(("code", "print(np.random.rand())  # unseeded: differs on every run", []))
    return cells


def test_nbval_reproduces_a_seeded_chapter_and_catches_an_unseeded_draw(
    repo: StudyPaths, tmp_path: Path
) -> None:
    """The `make test` nbval stage in miniature: publish with the runner, re-execute with nbval.

    The seeded chapter passes although its bar, timing, date, address and temporary path differ
    between the two runs; the same chapter with one unseeded draw fails at exactly that cell.
    """
    import subprocess
    import xml.etree.ElementTree as ET

    pytest.importorskip("nbval")
    pytest.importorskip("papermill")
    write_notebook(repo.notebooks / "seeded.ipynb", seeded_cells(leak=False))
    write_notebook(repo.notebooks / "leaky.ipynb", seeded_cells(leak=True))
    (repo.params / "smoke.yml").write_text("seeded: {n: 4}\nleaky: {n: 4}\n")
    results = run_chapters(repo, ["seeded", "leaky"], profile="smoke", jobs=2, progress=False)
    assert [r.status for r in results] == ["ok", "ok"], [r.describe_failure() for r in results]

    ini = tmp_path / "nbval.ini"
    ini.write_text("[pytest]\n")
    report = tmp_path / "nbval.xml"
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    proc = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-c", str(ini), "--rootdir", str(repo.root),
            "-p", "no:cacheprovider", "-q", "--nbval", "--nbval-current-env",
            "--nbval-sanitize-with", str(SANITIZE), f"--junitxml={report}",
            "book/chapters/seeded.ipynb", "book/chapters/leaky.ipynb",
        ],
        cwd=repo.root, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    cases = {
        (case.get("classname", "") + "::" + case.get("name", "")): case.find("failure") is None
        for case in ET.parse(report).getroot().iter("testcase")
    }
    failed = sorted(name for name, ok in cases.items() if not ok)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # parameters, injected parameters and the work cell pass in both; the leaked draw fails.
    assert len(cases) == 3 + 4 and len(failed) == 1, proc.stdout
    assert "leaky" in failed[0] and "Cell 3" in failed[0], failed
    assert "Cell outputs differ" in proc.stdout and "np.random.rand()" in proc.stdout
