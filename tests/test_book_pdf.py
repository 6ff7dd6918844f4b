"""The book as one PDF (``make pdf``): every page of ``_toc.yml``, every chapter, every figure.

Prints the built book (``_build/html``) with :func:`ehrcausal.runner.pdf.build_pdf` into a
temporary file, exactly as ``make pdf`` does, and reads it back with pypdf: at least one PDF page
per book page, one bookmark per book page in the order of ``_toc.yml``, each chapter's title in
the text, at least as many images as the chapters have figures, and typeset maths (MathJax's
output, not TeX source). Skipped when the book was not built or no Chromium is found; marked
``book`` (``make test`` builds the book first).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from ehrcausal.runner.paths import StudyPaths
from ehrcausal.runner.pdf import book_pages, build_pdf, find_browser, page_title

pytestmark = pytest.mark.book

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"


@pytest.fixture(scope="module")
def pdf(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    if not (HTML / "index.html").is_file():
        pytest.skip("_build/html is missing: build the book first (`make book` or `make test`)")
    if find_browser() is None:
        pytest.skip("no chromium-headless-shell or chromium on PATH (install with `make browser`)")
    paths = StudyPaths.from_root(ROOT)
    out = build_pdf(paths, tmp_path_factory.mktemp("pdf") / "book.pdf")
    return out, book_pages(paths)


def _text(reader: object) -> str:
    """The PDF's text, ligatures (ﬁ) unfolded, whitespace collapsed."""
    text = " ".join((p.extract_text() or "") for p in reader.pages)
    return " ".join(unicodedata.normalize("NFKC", text).split())


def _font_names(reader: object) -> set[str]:
    names = set()
    for page in reader.pages:
        fonts = (page.get("/Resources") or {}).get("/Font") or {}
        for font in fonts.values():
            font = font.get_object()
            descriptor = font.get("/FontDescriptor")
            name = descriptor.get_object().get("/FontName") if descriptor else font.get(
                "/BaseFont")
            names.add(str(name))
    return names


def test_pdf_holds_every_page_and_chapter(pdf: tuple[Path, list[Path]]) -> None:
    from pypdf import PdfReader

    path, pages = pdf
    reader = PdfReader(path)
    assert len(reader.pages) >= len(pages), (len(reader.pages), len(pages))
    titles = [page_title(p) for p in pages]
    assert [item.title for item in reader.outline] == titles  # one bookmark per page, in order
    text = _text(reader)
    chapters = [p for p in pages if p.parent.name == "chapters"]
    assert chapters, "no chapter in the book"
    squashed = re.sub(r"\s+", "", text)
    for page in chapters:
        title = unicodedata.normalize("NFKC", page_title(page))
        assert re.sub(r"\s+", "", title) in squashed, f"chapter {title!r} is not in the PDF"
    # maths typeset by MathJax (its fonts are embedded), not left as TeX
    assert any("MathJax_" in name for name in _font_names(reader))
    assert "\\mathbb" not in text and "$$" not in text


def test_pdf_has_the_figures(pdf: tuple[Path, list[Path]]) -> None:
    from pypdf import PdfReader

    path, pages = pdf
    figures = sum(
        len(re.findall(r"<img\b", p.read_text(encoding="utf-8")))
        for p in pages
        if p.parent.name == "chapters"
    )
    images = sum(len(page.images) for page in PdfReader(path).pages)
    assert figures and images >= figures, (images, figures)
