"""The publishing workflow (``.github/workflows/book.yml``) does what README.md says it does.

Parsed as YAML: it runs on pushes to ``main`` and by hand with a profile (``default`` or
``paper``); the build job runs ``make book`` (``paper`` on a GPU runner with ``DEVICE=cuda``)
and ``make pdf``, and uploads ``_build/html``; the deploy job publishes that artifact with the
permissions Pages needs. Every ``make`` target it calls exists in the Makefile, and every action
is pinned to a major version.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def load() -> dict[str, Any]:
    wf = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the key `on` as True
    wf["on"] = wf.pop(True, wf.get("on"))
    return wf


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps", [])


def test_triggers_and_profiles() -> None:
    wf = load()
    assert wf["on"]["push"]["branches"] == ["main"]
    profile = wf["on"]["workflow_dispatch"]["inputs"]["profile"]
    assert profile["options"] == ["default", "paper"] and profile["default"] == "default"
    shipped = sorted(p.stem for p in (ROOT / "notebooks" / "params").glob("*.yml"))
    assert set(profile["options"]) <= set(shipped)


def test_build_runs_make_book_and_uploads_the_html() -> None:
    build = load()["jobs"]["build"]
    runs = "\n".join(s.get("run", "") for s in steps(build))
    assert re.search(r"^make book PROFILE=\"\$PROFILE\" DEVICE=\"\$DEVICE\"$", runs, re.M)
    assert "make browser pdf" in runs
    # `paper` goes to a GPU runner with DEVICE=cuda; `default` to a hosted CPU runner
    assert "inputs.profile == 'paper'" in build["runs-on"] and '"gpu"' in build["runs-on"]
    assert "ubuntu-latest" in build["runs-on"]
    assert "'cuda'" in build["env"]["DEVICE"] and "'default'" in build["env"]["PROFILE"]
    upload = [s for s in steps(build) if s.get("uses", "").startswith(
        "actions/upload-pages-artifact@")]
    assert len(upload) == 1 and upload[0]["with"]["path"] == "_build/html"
    # setup happens before the book is made
    uses = [s.get("uses", "") for s in steps(build)]
    assert uses[0].startswith("actions/checkout@")
    assert any(u.startswith("actions/setup-python@") for u in uses)
    assert any(u.startswith("actions/setup-node@") for u in uses)  # npm: MathJax, axe-core


def test_deploy_publishes_the_artifact_with_pages_permissions() -> None:
    deploy = load()["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert [s["uses"].split("@")[0] for s in steps(deploy)] == ["actions/deploy-pages"]


def test_make_targets_exist_and_actions_are_pinned() -> None:
    wf = load()
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z]+):", makefile, re.M))
    for job in wf["jobs"].values():
        for step in steps(job):
            for line in step.get("run", "").splitlines():
                if line.startswith("make "):
                    called = [w for w in line.split()[1:] if "=" not in w]
                    assert set(called) <= targets, f"unknown make target in {line!r}"
            if "uses" in step:
                assert re.fullmatch(r"[\w-]+/[\w-]+@v\d+", step["uses"]), step["uses"]
