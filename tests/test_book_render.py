"""Render the built book in a real browser (headless Chromium) and check what a reader sees.

``_build/html`` is served on 127.0.0.1 (a free port, ``http.server`` in a thread) and every page
under ``book/`` (intro, chapters, reproducibility, references) is loaded by
``chromium-headless-shell`` (or ``chromium``) with ``--dump-dom``. The tests check that

- every ``<img>`` of a chapter resolves to a file of the build, and each chapter has a figure;
- math is typeset by MathJax (``mjx-container`` elements, no ``mjx-merror``, no raw ``\\(``,
  ``\\[`` or ``$$`` left in the visible text), with MathJax loaded exactly once, locally;
- no page loads a script, style sheet or font from anywhere but the local server, and every
  request the pages made was answered (no 404).

``make test`` builds the book first; run alone, the module is skipped when ``_build/html`` is
missing. Marked ``book`` (``pytest -m book``).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

pytestmark = pytest.mark.book

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
HIDDEN_TAGS = {"script", "style", "pre", "code", "textarea", "template", "noscript"}
VOID_TAGS = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}
MATHJAX_SCRIPT = "tex-mml-chtml.js"


def find_browser() -> str | None:
    """``chromium-headless-shell`` (Debian), else ``chromium``."""
    return shutil.which("chromium-headless-shell") or shutil.which("chromium")


@dataclass
class Page:
    """What the parser saw in one HTML document."""

    imgs: list[str] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (rel, href)
    styles: list[str] = field(default_factory=list)  # contents of <style>
    tags: dict[str, int] = field(default_factory=dict)
    math_elements: int = 0  # elements with class "math" (Sphinx/MyST math, before MathJax)
    text: list[str] = field(default_factory=list)  # visible text


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._hidden = 0
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        self.page.tags[tag] = self.page.tags.get(tag, 0) + 1
        if tag == "img":
            self.page.imgs.append(a.get("src", ""))
        elif tag == "script" and a.get("src"):
            self.page.scripts.append(a["src"])
        elif tag == "link" and a.get("href"):
            self.page.links.append((a.get("rel", ""), a["href"]))
        if "math" in a.get("class", "").split():
            self.page.math_elements += 1
        if tag in HIDDEN_TAGS and tag not in VOID_TAGS:
            self._hidden += 1
            self._in_style = tag == "style"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <img/> etc.: record without touching the hidden-depth counter.
        hidden = self._hidden
        self.handle_starttag(tag, attrs)
        self._hidden = hidden

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN_TAGS and self._hidden:
            self._hidden -= 1
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.page.styles.append(data)
        elif not self._hidden:
            self.page.text.append(data)


def parse(html: str) -> Page:
    parser = _Collector()
    parser.feed(html)
    parser.close()
    return parser.page


class _Handler(SimpleHTTPRequestHandler):
    """Serves the build quietly and records (path, status) of every request."""

    requests: list[tuple[str, int]]

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.requests.append((self.path, int(code) if str(code).isdigit() else 0))

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@dataclass
class Rendered:
    url: str
    path: Path  # the .html file in _build/html
    static: Page  # the file as built
    dom: Page  # the DOM after scripts (MathJax) ran
    dom_html: str


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, list[tuple[str, int]]]]:
    if not (HTML / "index.html").is_file():
        pytest.skip(
            f"{HTML.relative_to(ROOT)} is missing: build the book first (`make book` or `make test`)"
        )
    requests: list[tuple[str, int]] = []
    handler = type("Handler", (_Handler,), {"requests": requests})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(HTML)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", requests
    finally:
        httpd.shutdown()
        httpd.server_close()


def book_pages() -> list[Path]:
    return sorted((HTML / "book").rglob("*.html")) if (HTML / "book").is_dir() else []


@pytest.fixture(scope="module")
def rendered(
    server: tuple[str, list[tuple[str, int]]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Rendered]:
    browser = find_browser()
    if browser is None:
        pytest.skip("no chromium-headless-shell or chromium on PATH (install with `make browser`)")
    base, _ = server
    pages = book_pages()
    assert pages, f"no pages under {HTML / 'book'}"
    out: dict[str, Rendered] = {}
    for path in pages:
        rel = path.relative_to(HTML).as_posix()
        url = urljoin(base, rel)
        profile = tmp_path_factory.mktemp("chromium-profile")
        cmd = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, f"{browser} failed on {rel}:\n{proc.stderr[-2000:]}"
        assert "</html>" in proc.stdout or "</body>" in proc.stdout, f"empty DOM for {rel}"
        out[rel] = Rendered(
            url, path, parse(path.read_text(encoding="utf-8")), parse(proc.stdout), proc.stdout
        )
    return out


def _is_local(url: str, page_url: str) -> bool:
    absolute = urljoin(page_url, url)
    parts = urlsplit(absolute)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.scheme in ("http", "https") and parts.hostname in LOCAL_HOSTS


def _file_of(url: str, page_url: str, base: str) -> Path | None:
    absolute = urljoin(page_url, url)
    if not absolute.startswith(base):
        return None
    return HTML / unquote(urlsplit(absolute).path.lstrip("/"))


# ------------------------------------------------------------------------------------------
def test_pages_include_intro_and_chapters(rendered: dict[str, Rendered]) -> None:
    assert "book/intro.html" in rendered
    assert [p for p in rendered if p.startswith("book/chapters/")], "no chapter pages were built"
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):  # every chapter is in the book
        assert f"book/chapters/{notebook.stem}.html" in rendered


def test_chapter_figures_exist(
    rendered: dict[str, Rendered], server: tuple[str, list[tuple[str, int]]]
) -> None:
    base, _ = server
    for rel, page in rendered.items():
        if not rel.startswith("book/chapters/"):
            continue
        srcs = page.dom.imgs
        assert srcs, f"{rel}: the chapter has no figure"
        for src in srcs:
            assert src, f"{rel}: <img> without src"
            if src.startswith("data:"):
                continue
            target = _file_of(src, page.url, base)
            assert target is not None, f"{rel}: image {src} is not served by the local build"
            assert target.is_file(), (
                f"{rel}: image {src} -> {target.relative_to(HTML)} does not exist"
            )


def test_math_is_typeset_by_local_mathjax(rendered: dict[str, Rendered]) -> None:
    pages_with_math = [rel for rel, p in rendered.items() if p.static.math_elements]
    assert "book/intro.html" in pages_with_math, "the intro's maths was not rendered as math"
    for rel in pages_with_math:
        page = rendered[rel]
        mathjax = [s for s in page.static.scripts if MATHJAX_SCRIPT in s]
        assert len(mathjax) == 1, f"{rel}: MathJax loaded {len(mathjax)} times: {mathjax}"
        assert _is_local(mathjax[0], page.url), f"{rel}: MathJax from {mathjax[0]}"
        assert len([s for s in page.dom.scripts if MATHJAX_SCRIPT in s]) == 1
        typeset = page.dom.tags.get("mjx-container", 0)
        assert typeset >= page.static.math_elements, (
            f"{rel}: {page.static.math_elements} math elements but {typeset} mjx-container"
        )
        assert page.dom.tags.get("mjx-merror", 0) == 0, f"{rel}: MathJax reported a TeX error"
        visible = "".join(page.dom.text)
        for raw in ("\\(", "\\[", "$$"):
            assert raw not in visible, f"{rel}: raw {raw!r} left in the visible text"


def test_no_remote_scripts_styles_or_fonts(
    rendered: dict[str, Rendered], server: tuple[str, list[tuple[str, int]]]
) -> None:
    base, requests = server
    for rel, page in rendered.items():
        for doc in (page.static, page.dom):
            remote = [s for s in doc.scripts if not _is_local(s, page.url)]
            remote += [
                h
                for r, h in doc.links
                if any(
                    k in r for k in ("stylesheet", "preload", "modulepreload", "prefetch", "icon")
                )
                and not _is_local(h, page.url)
            ]
            remote += [s for s in doc.styles if "url(http" in s and "127.0.0.1" not in s]
            assert not remote, f"{rel}: references non-local resources {remote}"
    # Every request the pages made reached the local server and was answered.
    missing = sorted({p for p, code in requests if code >= 400 and not p.endswith("favicon.ico")})
    assert not missing, f"requests that failed: {missing}"
    assert any(MATHJAX_SCRIPT in p for p, _ in requests), (
        "MathJax was never fetched from the local server"
    )
