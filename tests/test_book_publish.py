"""What the runner adds to the book: the findings page, the published chapters' decorations.

Pure functions on notebooks built in memory (no kernel, no Sphinx): the findings registry
(``book/findings.yml``) rendered against executed chapters, the parameters shown once, the
provenance line and alt text of every figure and table, the rerun section, the input data's
SHA-256 and a figure's description. The rendered book is checked in a browser by
``tests/test_book_render.py``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from ehrcausal.plots import describe_figure, learner_palette, plain_text  # noqa: E402
from ehrcausal.runner.findings import (  # noqa: E402
    FINDINGS_FILE,
    heading_slug,
    headings,
    load_registry,
    render_findings,
    write_findings,
)
from ehrcausal.runner.paths import StudyPaths  # noqa: E402
from ehrcausal.runner.publish import (  # noqa: E402
    FIGURE_SUFFIX,
    data_digest,
    decorate_notebook,
    figure_records,
    render_figures_list,
    rerun_markdown,
)

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "application/papermill.record/"


def glue_output(name: str, **data: str) -> dict[str, Any]:
    """A display_data output as myst-nb's ``glue`` stores it."""
    return {
        "output_type": "display_data",
        "data": {PREFIX + mime.replace("_", "/"): v for mime, v in data.items()},
        "metadata": {"scrapbook": {"name": name, "mime_prefix": PREFIX}},
    }


def md(source: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {}, "source": source}


def code(source: str, count: int, outputs: list[dict[str, Any]] | None = None,
         tags: list[str] | None = None) -> dict[str, Any]:
    return {"cell_type": "code", "execution_count": count, "source": source,
            "metadata": {"tags": tags or []}, "outputs": outputs or []}


FIGURE_CELL = (
    "## Results\n\nSee {numref}`fig-a`.\n\n"
    "```{glue:figure} fig_a\n:name: fig-a\n\nThe effect by budget. A second sentence.\n```\n\n"
    "```{glue:figure} table_a\n:name: tbl-a\n\nMeans over replicates.\n```\n"
)


def executed_chapter() -> dict[str, Any]:
    """An executed chapter: parameters, injected parameters, glued numbers, a figure, a table."""
    return {
        "metadata": {"ehrcausal": {"profile": "default", "device": "cpu",
                                   "commit": "0123456789abcdef"}},
        "cells": [
            md("# Alpha: a chapter\n\nIntro."),
            code("n = 2  # replicates\nseed = 0  # master seed\ndevice = 'auto'", 1,
                 tags=["parameters"]),
            code("# Parameters\nn = 10\n", 2, tags=["injected-parameters"]),
            code("glue_all(...)", 3, [
                glue_output("best", text_plain="0.123456"),
                glue_output("name", text_plain="'TARNet'"),
                glue_output("verdict", text_plain="<Markdown>",
                            text_markdown="is *above* risk-based (0.4 vs 0.3)"),
                glue_output("block", text_plain="<Markdown>",
                            text_markdown="```text\na note\n```"),
            ]),
            code("glue_figure(...)", 4, [
                glue_output("fig_a", image_png="iVBOR", text_plain="<Figure>"),
                glue_output("fig_a" + FIGURE_SUFFIX, text_plain=repr(
                    {"alt": "Figure with 1 panel: (panel 'Policy'; x: budget)",
                     "files": ["alpha_fig.svg", "alpha_fig.png"]})),
                glue_output("table_a", text_html="<table></table>", text_plain="df"),
            ]),
            md(FIGURE_CELL),
            md("## What the numbers say\n\nText."),
            {"cell_type": "markdown", "metadata": {"tags": ["rerun"]},
             "source": "Fits are cached."},
        ],
    }


@pytest.fixture
def book(tmp_path: Path) -> StudyPaths:
    paths = StudyPaths.from_root(tmp_path)
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump({
        "format": "jb-book", "root": "book/intro",
        "parts": [{"caption": "x", "chapters": [{"file": "book/findings"},
                                                {"file": "book/chapters/alpha"}]}]}))
    paths.chapters.mkdir(parents=True)
    paths.chapter_output("alpha").write_text(json.dumps(executed_chapter()))
    return paths


def write_registry(paths: StudyPaths, entry: dict[str, Any]) -> None:
    (paths.root / FINDINGS_FILE).write_text(yaml.safe_dump(entry, allow_unicode=True))


# ------------------------------------------------------------------------------------------
# Findings
# ------------------------------------------------------------------------------------------
def test_findings_glue_numbers_paste_verdicts_and_link_sections(book: StudyPaths) -> None:
    write_registry(book, {"alpha": {"section": "What the numbers say", "findings": [
        "Best: **{glue:text}`name`**, {glue:text}`best:.2f`; it {glue:md}`verdict`.",
        {"text": "Figure value {glue}`best`.", "section": "Results"},
    ]}})
    text, problems = render_findings(book)
    assert problems == []
    assert text.startswith("## Alpha: a chapter\n")
    assert "profile `default` on `cpu` (commit `0123456789`)" in text
    # numbers stay glue references, resolved by myst-nb from the executed notebook
    assert "{glue:text}`chapters/alpha.ipynb::name:s`" in text  # myst-nb needs the format
    assert "{glue:text}`chapters/alpha.ipynb::best:.2f`" in text
    assert "{glue}`chapters/alpha.ipynb::best`" in text
    # a glued sentence is pasted as the notebook holds it
    assert "it is *above* risk-based (0.4 vs 0.3)." in text
    link = '(<a class="finding-source" href="chapters/alpha.html#{}">{}</a>)'
    assert link.format("what-the-numbers-say", "What the numbers say") in text
    assert link.format("results", "Results") in text
    assert write_findings(book) == []
    assert "chapters/alpha.ipynb::best" in (book.generated / "findings.md").read_text()


def test_findings_problems_are_named_and_block_the_page(book: StudyPaths) -> None:
    write_registry(book, {
        "alpha": {"section": "Nowhere", "findings": [
            "{glue:text}`missing`", {"text": "{glue:md}`block`", "section": "Results"},
            {"text": "{glue:md}`best`", "section": "Results"}]},
        "beta": {"section": "Results", "findings": ["x"]},
    })
    (book.generated).mkdir(parents=True, exist_ok=True)
    (book.generated / "findings.md").write_text("stale")
    problems = write_findings(book)
    joined = "\n".join(problems)
    assert "section 'Nowhere' is not a heading" in joined
    assert "glues no key 'missing'" not in joined  # that finding cites the missing heading
    assert "'block' is a block, not a sentence" in joined
    assert "'best' is not glued as Markdown" in joined
    assert "chapter 'beta': is not a chapter of _toc.yml" in joined
    assert not (book.generated / "findings.md").exists()  # no stale page is built
    write_registry(book, {"alpha": {"section": "Results", "findings": ["{glue:text}`nope`"]}})
    assert any("glues no key 'nope'" in p for p in write_findings(book))
    write_registry(book, {})
    assert any("'alpha': has no entry" in p for p in write_findings(book))


def test_registry_shape_errors() -> None:
    entries, problems = load_registry(Path("/nonexistent/findings.yml"))
    assert entries == {} and "missing" in problems[0]


def test_shipped_registry_covers_every_chapter_with_real_headings() -> None:
    entries, problems = load_registry(ROOT / FINDINGS_FILE)
    assert problems == []
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(entries) == notebooks, "every chapter needs one entry in book/findings.yml"
    for stem, entry in entries.items():
        nb = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text())
        slugs = {heading_slug(t) for _, t in headings(nb)}
        for finding in entry.findings:
            assert heading_slug(finding.section) in slugs, (stem, finding.section)
        for path in entry.data:
            assert (ROOT / path).exists(), path


# ------------------------------------------------------------------------------------------
# Published chapters
# ------------------------------------------------------------------------------------------
def test_parameters_are_shown_once_labelled_and_equivalent() -> None:
    nb = decorate_notebook(executed_chapter(), "alpha", profile="default",
                           parameters={"n": 10, "seed": 0, "device": "cuda"},
                           injected={"n": 10, "device": "cuda"}, device_from_cli="cuda")
    params, injected = nb["cells"][1], nb["cells"][2]
    assert "remove-cell" in params["metadata"]["tags"]  # the smoke defaults are not shown
    src = injected["source"]
    assert "profile 'default'" in src and "notebooks/params/default.yml" in src
    assert "n = 10  # [default] replicates" in src
    assert "seed = 0  # master seed" in src  # a notebook default: no label
    assert "device = 'cuda'  # [--device]" in src
    namespace: dict[str, Any] = {}
    exec(params["source"] + "\n" + src, namespace)  # noqa: S102 - the cells as the kernel runs them
    assert (namespace["n"], namespace["seed"], namespace["device"]) == (10, 0, "cuda")


def test_figures_and_tables_get_provenance_and_alt_text_once() -> None:
    kwargs = dict(profile="paper", parameters={"n": 10}, injected={"n": 10},
                  commit="0123456789abcdef-dirty", data_sha256="ab" * 32)
    nb = decorate_notebook(executed_chapter(), "alpha", **kwargs)
    cell = nb["cells"][5]["source"]
    assert ":alt: Figure with 1 panel: (panel 'Policy'; x: budget)" in cell
    assert cell.count(":alt:") == 1  # the table (HTML) gets none
    line = ("Source: {download}`alpha.ipynb <alpha.ipynb>`, cell In [4] · commit "
            "`0123456789-dirty` · profile `paper` · input data SHA-256 `" + "ab" * 32 + "`")
    assert cell.count(line) == 2 and cell.count("{.provenance}") == 2
    assert "\n\nThe effect by budget. A second sentence.\n\n{.provenance}\n" in cell
    # decorating again (a rerun publishes the same notebook) changes nothing
    again = decorate_notebook(json.loads(json.dumps(nb)), "alpha", **kwargs)
    assert again == nb
    assert [c["source"].startswith("## Rerun this chapter") for c in nb["cells"]].count(True) == 1
    # the chapter's own rerun note moves into the generated section
    assert nb["cells"][-1]["source"].endswith("\n\nFits are cached.\n")
    assert "remove-cell" in nb["cells"][-2]["metadata"]["tags"]
    records = figure_records(nb, "alpha")
    assert [(r.key, r.name, r.is_image, r.files) for r in records] == [
        ("fig_a", "fig-a", True, ("alpha_fig.svg", "alpha_fig.png")),
        ("table_a", "tbl-a", False, ()),
    ]
    listing = render_figures_list(records, "chapters/figures")
    assert "| alpha | {numref}`fig-a` | {download}`SVG <chapters/figures/alpha_fig.svg>`" in listing


def test_alt_text_falls_back_to_the_caption() -> None:
    nb = executed_chapter()
    nb["cells"][4]["outputs"].pop(1)  # no companion: a figure glued by hand
    decorate_notebook(nb, "alpha", profile="smoke", parameters={}, injected={})
    assert ":alt: The effect by budget\n" in nb["cells"][5]["source"]


def test_rerun_section_has_the_profile_entry_and_exact_commands() -> None:
    text = rerun_markdown("alpha", "paper", {"n": 10, "learners": ["ols", "tarnet"]},
                          device="cuda")
    entry = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(entry) == {"alpha": {"n": 10, "learners": ["ols", "tarnet"]}}
    assert "{download}`alpha.ipynb <alpha.ipynb>`" in text
    assert ("python -m ehrcausal.runner params --profile paper alpha > paper-alpha.yml\n"
            "papermill notebooks/alpha.ipynb alpha.ipynb -f paper-alpha.yml -p device cuda"
            ) in text
    assert "python -m ehrcausal.runner run --profile paper --chapters alpha --device cuda" in text
    custom = rerun_markdown("alpha", "mine", {"n": 1})
    assert "--profile mine" not in custom and "-f <file>" in custom


def test_data_digest_of_a_file_and_of_a_folder(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_bytes(b"1,2\n")
    (tmp_path / "d" / "b.csv").write_bytes(b"3,4\n")
    sha = {n: hashlib.sha256(b).hexdigest() for n, b in (("a", b"1,2\n"), ("b", b"3,4\n"))}
    assert data_digest(tmp_path, ["d/a.csv"]) == sha["a"]
    listing = f"{sha['a']}  d/a.csv\n{sha['b']}  d/b.csv\n"  # what `sha256sum d/*` prints
    assert data_digest(tmp_path, ["d"]) == hashlib.sha256(listing.encode()).hexdigest()
    assert data_digest(tmp_path, []) is None
    with pytest.raises(ValueError, match="'nope' does not exist"):
        data_digest(tmp_path, ["nope"])


def test_describe_figure_names_panels_axes_and_series() -> None:
    fig, (a, b) = plt.subplots(1, 2)
    a.plot([0, 1], [1, 2], label="AACE")
    a.plot([0, 1], [2, 1], label="risk-based")
    a.set(title="Policy", xlabel="budget", ylabel="benefit")
    a.legend()
    b.bar(["x"], [1])
    b.set_title("Error")
    fig.suptitle("Results")
    text = describe_figure(fig)
    plt.close(fig)
    assert text == ("Figure 'Results' with 2 panels: (panel 'Policy'; x: budget; y: benefit; "
                    "series: AACE, risk-based); (panel 'Error').")


def test_plain_text_reads_tex_labels() -> None:
    assert plain_text(r"$\sqrt{\epsilon_{PEHE}}$ (log scale)") == "√ε PEHE (log scale)"
    assert plain_text(r"$\hat\tau$ vs $\tau$") == "estimated τ vs τ"
    assert plain_text("no TeX: 25 %") == "no TeX: 25 %"


# Colour-vision deficiency simulation of Machado, Oliveira & Fernandes (2009), "A
# physiologically-based model for simulation of color vision deficiency", IEEE TVCG 15(6):
# their matrices for severity 1.0, applied to linear RGB.
CVD = {
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                   [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                     [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                   [0.004733, 0.691367, 0.303900]],
}


def _lab(rgb: tuple[float, float, float], matrix: list[list[float]]) -> np.ndarray:
    """CIELAB (D65) of an sRGB colour as seen through a deficiency ``matrix``."""
    c = np.asarray(rgb, dtype=float)
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    seen = np.clip(np.asarray(matrix) @ linear, 0, 1)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                    [0.0193, 0.1192, 0.9505]]) @ seen / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_learner_colours_stay_distinct_under_colour_vision_deficiencies() -> None:
    names = [f"learner{i}" for i in range(10)]  # the palette's ten colours
    colours = list(learner_palette(names).values())
    assert len(set(colours)) == 10
    for kind, matrix in CVD.items():
        labs = [_lab(c, matrix) for c in colours]
        closest = min(float(np.linalg.norm(a - b)) for a, b in itertools.combinations(labs, 2))
        # CIELAB distance 10: clearly different marks (a just-noticeable difference is about 2)
        assert closest >= 10, f"{kind}: two learner colours are {closest:.1f} apart"
