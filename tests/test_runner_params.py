"""Parameters files checked against the notebooks before anything runs (issue 13).

A misspelled or mistyped profile parameter used to run anyway (with the notebook's default, or
failing inside the notebook); a YAML error did not say where. Now every problem is one
``error:`` line naming the file, the chapter, the parameter, the value given and what is
expected, and ``run``, ``list`` and ``params`` exit with status 2 before any chapter runs.
The miniature repository comes from ``test_runner.py``; nothing here starts a kernel.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ehrcausal import runner
from ehrcausal.runner import StudyPaths

from .test_runner import repo, write_notebook

__all__ = ["repo"]  # the fixture, imported from test_runner

REPO_ROOT = Path(__file__).resolve().parents[1]


def cli(paths: StudyPaths, *args: str) -> int:
    return runner.main(["--root", str(paths.root), *args])


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


@pytest.mark.parametrize("command", ["run", "list", "params"])
def test_misspelled_parameter_is_an_error_before_anything_runs(
    command: str, repo: StudyPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo.params / "smoke.yml").write_text("alpha:\n  n: 3\n  nn: 1\n")
    extra = {"run": ["--no-progress"], "list": [], "params": ["alpha"]}[command]
    args = [command, "-p", "smoke", *extra]
    assert cli(repo, *args) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert line.startswith("error: notebooks/params/smoke.yml: chapter 'alpha': ")
    assert "unknown parameter 'nn' (given 1)" in line
    assert "defines: n, label, scale, device" in line and "did you mean 'n'?" in line
    assert not repo.chapters.exists()  # nothing ran


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            'n: "1"',
            "parameter 'n' got '1' (a string); expected an integer (the notebook's default is 2)",
        ),
        ("n: 2.5", "parameter 'n' got 2.5 (a number); expected an integer"),
        ("n: true", "parameter 'n' got True (a boolean); expected an integer"),
        ("n: null", "parameter 'n' got None (null); expected an integer"),
        ("scale: fast", "parameter 'scale' got 'fast' (a string); expected a number"),
        ("label: [a, b]", "parameter 'label' got ['a', 'b'] (a list); expected a string"),
    ],
)
def test_wrong_type_is_an_error_naming_chapter_parameter_value_and_type(
    entry: str, expected: str, repo: StudyPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = repo.root / "bad.yml"
    bad.write_text(f"alpha:\n  {entry}\n")
    assert cli(repo, "run", "-f", str(bad), "--no-progress") == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert line.startswith("error: bad.yml: chapter 'alpha': " + expected), line
    assert not repo.chapters.exists()


def test_every_problem_of_a_file_is_reported_at_once(
    repo: StudyPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo.params / "smoke.yml").write_text("alpha: {n: x, scal: 2}\nalpah: {n: 1}\n")
    assert cli(repo, "list", "-p", "smoke") == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 3 and all(line.startswith("error: ") for line in lines)
    assert "unknown chapter 'alpah' (chapters: alpha); did you mean 'alpha'?" in lines[2]


def test_check_parameter_types() -> None:
    check = runner.check_parameter
    # accepted
    assert check("x", 3, 1.5) is None  # an int for a float
    assert check("x", 2.0, 1.5) is None
    assert check("x", "a,b", ["a"]) is None  # a comma string for a list
    assert check("x", "all", ["a", "b"]) is None
    assert check("x", ["a", "b"], "a,b") is None  # a list for a comma string
    assert check("x", [0.1, 1], "0.5,1.0") is None
    assert check("x", [1, 2], [3, 4]) is None
    assert check("x", [1, 2], [0.5]) is None  # ints for a list of floats
    assert check("x", None, None) is None and check("x", {"a": 1}, None) is None
    assert check("x", False, True) is None and check("x", "cpu", "auto") is None
    # rejected, each naming what is expected
    assert "expected an integer" in check("epochs", 2.5, 30)
    assert "expected an integer" in check("epochs", "3", 30)
    assert "expected an integer" in check("epochs", True, 30)
    assert "expected a number" in check("annotated", "0.5", 1.0)
    assert "expected a number" in check("annotated", False, 1.0)
    assert "expected a boolean (true or false)" in check("use_cache", 0, False)
    assert "expected a string" in check("device", ["cpu"], "auto")  # no comma: not a list
    assert "expected a list of strings or a comma-separated string" in check("l", ["a", 1], ["b"])
    assert "expected a list of integers" in check("s", [1.5], [1, 2])
    assert "expected a comma-separated string or a list" in check("s", 368, "368,1017")
    assert "expected a comma-separated string or a list" in check("s", [["a"]], "a,b")
    assert "expected a string" in check("device", None, "auto")


def test_non_literal_default_accepts_anything(repo: StudyPaths) -> None:
    write_notebook(
        repo.notebooks / "alpha.ipynb",
        [("code", "import os\nn = 2\nworkers = os.cpu_count()\n", ["parameters"])],
    )
    runner.validate_overrides(repo.notebooks, {"alpha": {"workers": 3}}, "f.yml")
    runner.validate_overrides(repo.notebooks, {"alpha": {"workers": "many"}}, "f.yml")
    assert runner.notebook_parameters(repo.notebooks / "alpha.ipynb")["workers"] == "os.cpu_count()"
    with pytest.raises(runner.ParameterError, match="f.yml: chapter 'alpha': parameter 'n'"):
        runner.validate_overrides(repo.notebooks, {"alpha": {"n": "2"}}, "f.yml")


@pytest.mark.parametrize("profile", runner.PROFILES)
def test_shipped_profiles_validate_against_the_real_notebooks(profile: str) -> None:
    paths = StudyPaths.from_root(REPO_ROOT)
    name, per_chapter = runner.checked_overrides(paths, profile)
    assert name == profile
    assert set(per_chapter) == {nb.stem for nb in runner.discover_chapters(paths.notebooks)}


def test_real_profile_with_the_issues_typos_is_rejected(tmp_path: Path) -> None:
    paths = StudyPaths.from_root(REPO_ROOT)
    bad = tmp_path / "typo.yml"
    bad.write_text("ihdp_benchmark: {n_realisations: 1}\naace_policies: {epochs: 2.5}\n")
    with pytest.raises(runner.ParameterError) as info:
        runner.checked_overrides(paths, params_file=bad)
    first, second = info.value.problems
    assert "chapter 'ihdp_benchmark': unknown parameter 'n_realisations' (given 1)" in first
    assert "did you mean 'n_realizations'?" in first
    assert "chapter 'aace_policies': parameter 'epochs' got 2.5 (a number)" in second


# ------------------------------------------------------------------------------------------
# YAML errors name the file and the line
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("alpha:\n  n: 3\n  label: [a\n  scale: 2\n", "line 4, column 8", "expected ',' or ']'"),
        ("alpha:\n\tn: 3\n", "line 2, column 1", "found character '\\t'"),
        ("alpha:\n  n: 3\n  n: 4\n", "line 3, column 3", "key 'n' is given twice"),
    ],
)
def test_yaml_error_is_one_line_naming_file_and_line(
    text: str, where: str, what: str, repo: StudyPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = repo.root / "broken.yml"
    bad.write_text(text)
    for command in (["run", "--no-progress"], ["list"], ["params", "alpha"]):
        assert cli(repo, command[0], "-f", str(bad), *command[1:]) == 2
        (line,) = error_lines(capsys.readouterr().err)
        assert line.startswith(f"error: {bad}, {where}: not valid YAML: "), line
        assert what in line


def test_params_file_that_is_not_utf8_names_the_file(
    repo: StudyPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = repo.root / "latin1.yml"
    bad.write_bytes("alpha: {label: caf\xe9}\n".encode("latin-1"))
    assert cli(repo, "list", "-f", str(bad)) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert line.startswith(f"error: {bad}: not a UTF-8 text file")
