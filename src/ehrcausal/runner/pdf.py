"""One PDF of the built book, offline: Chromium prints every page, pypdf joins them.

:func:`build_pdf` serves ``_build/html`` on 127.0.0.1 (a free port, a thread), has headless
Chromium (``chromium-headless-shell`` or ``chromium``) print each page of ``_toc.yml`` in its
order (``--print-to-pdf``, after MathJax has typeset, no browser header or footer), and joins the
pages into ``_build/pdf/book.pdf`` with one bookmark per page, titled as the page. Nothing is
fetched from the network: the pages load only the build's own files.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..cache import atomic_write_bytes
from .paths import StudyPaths, toc_files

__all__ = ["PDF_NAME", "book_pages", "build_pdf", "find_browser", "page_title"]

PDF_NAME = "book.pdf"
#: Virtual milliseconds Chromium lets a page's scripts (MathJax) run before printing it.
VIRTUAL_TIME_MS = 20000


def find_browser() -> str | None:
    """``chromium-headless-shell`` (Debian), else ``chromium``; ``None`` when neither is found."""
    return shutil.which("chromium-headless-shell") or shutil.which("chromium")


def book_pages(paths: StudyPaths) -> list[Path]:
    """The built HTML page of every entry of ``_toc.yml``, in the book's order.

    Raises :class:`FileNotFoundError` naming the first page that was not built.
    """
    html = paths.root / "_build" / "html"
    pages = []
    for entry in toc_files(paths.root):
        page = html / Path(entry).with_suffix(".html")
        if not page.is_file():
            raise FileNotFoundError(f"{paths.rel(page)} is missing: build the book first "
                                    "(`make book`, or `python -m ehrcausal.runner build`)")
        pages.append(page)
    return pages


class _Title(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.h1: list[str] = []
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "h1" and not self.h1:
            self._depth = 1
        elif self._depth and tag in ("a", "span") and ("class", "headerlink") in attrs:
            self._depth = -1  # the pilcrow link: not part of the title

    def handle_endtag(self, tag: str) -> None:
        if tag == "h1" and self._depth:
            self._depth = 0
            self.h1.append("")  # stop at the first heading
        elif self._depth == -1 and tag in ("a", "span"):
            self._depth = 1

    def handle_data(self, data: str) -> None:
        if self._depth == 1:
            self.h1.append(data)


def page_title(page: Path) -> str:
    """The first ``<h1>`` of a built page, as text (the file name when it has none)."""
    parser = _Title()
    parser.feed(page.read_text(encoding="utf-8"))
    title = " ".join("".join(parser.h1).split())
    return title or page.stem


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextmanager
def _serve(folder: Path) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


# Offline headless Chromium, shared with the render tests.
HEADLESS_FLAGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
)


def _print_page(browser: str, url: str, target: Path, profile: Path, timeout: float) -> None:
    cmd = [
        browser,
        *HEADLESS_FLAGS,
        f"--user-data-dir={profile}",
        f"--virtual-time-budget={VIRTUAL_TIME_MS}",
        "--no-pdf-header-footer",
        f"--print-to-pdf={target}",
        url,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not target.is_file() or target.stat().st_size == 0:
        raise RuntimeError(f"{browser} could not print {url} (status {proc.returncode}):\n"
                           f"{proc.stderr[-2000:]}")


def build_pdf(paths: StudyPaths, output: Path | None = None, *, browser: str | None = None,
              timeout: float = 300.0) -> Path:
    """Print the built book to one PDF (default ``_build/pdf/book.pdf``); return its path.

    Raises :class:`FileNotFoundError` when the book was not built or no Chromium is found, and
    :class:`RuntimeError` when Chromium fails on a page (naming it). The PDF is written
    atomically, with a bookmark per page.
    """
    from pypdf import PdfReader, PdfWriter

    browser = browser or find_browser()
    if browser is None:
        raise FileNotFoundError("no chromium-headless-shell or chromium on PATH "
                                "(install one with `make browser`)")
    pages = book_pages(paths)
    html = paths.root / "_build" / "html"
    output = Path(output) if output is not None else paths.root / "_build" / "pdf" / PDF_NAME
    writer = PdfWriter()
    with tempfile.TemporaryDirectory(prefix="ehrcausal-pdf-") as tmp, _serve(html) as base:
        for i, page in enumerate(pages):
            part = Path(tmp) / f"{i:03d}.pdf"
            url = base + page.relative_to(html).as_posix()
            _print_page(browser, url, part, Path(tmp) / f"profile-{i}", timeout)
            first = len(writer.pages)
            for pdf_page in PdfReader(part).pages:
                writer.add_page(pdf_page)
            writer.add_outline_item(title=page_title(page), page_number=first)
        writer.add_metadata({"/Title": page_title(pages[0]) if pages else "book"})
        with tempfile.TemporaryFile() as buffer:
            writer.write(buffer)
            buffer.seek(0)
            atomic_write_bytes(output, buffer.read())
    return output
