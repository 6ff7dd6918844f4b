"""Render the built book in a real browser (headless Chromium) and check what a reader sees.

``_build/html`` is served on 127.0.0.1 (a free port, ``http.server`` in a thread) and every page
under ``book/`` (intro, chapters, reproducibility, references) is loaded by
``chromium-headless-shell`` (or ``chromium``) with ``--dump-dom``. The tests check that

- every ``<img>`` of a chapter resolves to a file of the build, and each chapter has a figure;
- math is typeset by MathJax (``mjx-container`` elements, no ``mjx-merror``, no raw ``\\(``,
  ``\\[`` or ``$$`` left in the visible text), with MathJax loaded exactly once, locally;
- no page loads a script, style sheet or font from anywhere but the local server, and every
  request the pages made was answered (no 404);
- axe-core (npm, pinned, vendored by ``make vendor`` into ``book/_vendor/node_modules``),
  injected by the test server into every page it serves, finds no serious or critical
  accessibility violation; every ``<img>`` has alt text;
- example notes and other long text wrap (no ``pre`` of a note or an output is wider than its
  box: ``scrollWidth <= clientWidth`` in the browser);
- the findings page links to existing sections of the chapters and pastes their numbers; each
  chapter offers its executed notebook for download and says how to rerun it; tables are
  numbered as tables; every figure and table caption ends with its provenance line; the
  parameters cell shows the parameters that ran, once.

``make test`` builds the book first; run alone, the module is skipped when ``_build/html`` is
missing. Marked ``book`` (``pytest -m book``).
"""

from __future__ import annotations

import html as html_lib
import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import pytest

from ehrcausal.runner.pdf import HEADLESS_FLAGS

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
    img_alts: list[str] = field(default_factory=list)
    anchors: list[tuple[str, str]] = field(default_factory=list)  # (href, class)
    ids: set[str] = field(default_factory=set)
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
        if a.get("id"):
            self.page.ids.add(a["id"])
        if tag == "img":
            self.page.imgs.append(a.get("src", ""))
            self.page.img_alts.append(a.get("alt", "").strip())
        elif tag == "a" and a.get("href"):
            self.page.anchors.append((a["href"], a.get("class", "")))
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


AXE_JS = ROOT / "book" / "_vendor" / "node_modules" / "axe-core" / "axe.min.js"
AXE_URL = "/__render-test__/axe.min.js"
#: Impacts of axe violations that fail the tests.
FAILING_IMPACTS = {"serious", "critical"}
#: What the test server adds before ``</body>`` of every HTML page: once MathJax has typeset,
#: run axe-core and measure every note and output block, then store the results as JSON in
#: ``<script type="application/json" id="render-test-results">`` for ``--dump-dom``.
PROBE = f"""<script src="{AXE_URL}"></script>
<script>
(async () => {{
  const out = {{}};
  try {{
    if (document.readyState !== "complete") {{
      await new Promise(ok => window.addEventListener("load", ok, {{once: true}}));
    }}
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {{
      await MathJax.startup.promise;
    }}
    // the theme makes scrollable blocks focusable 300 ms after the page settles
    await new Promise(ok => setTimeout(ok, 1500));
    const blocks = [...document.querySelectorAll(
      "div.highlight-text pre, div.cell_output pre, div.output pre")];
    out.blocks = blocks.length;
    out.overflow = blocks.filter(el => el.scrollWidth > el.clientWidth)
      .map(el => [el.scrollWidth, el.clientWidth, el.textContent.slice(0, 80)]);
    // preload: false -- axe would fetch the style sheets' @imports relative to the page
    if (!window.axe) {{
      throw new Error("axe-core is not vendored");
    }}
    const res = await axe.run(document, {{resultTypes: ["violations"], preload: false}});
    out.violations = res.violations.map(v => ({{
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))}}));
  }} catch (e) {{
    out.error = String(e);
  }}
  const el = document.createElement("script");
  el.type = "application/json";
  el.id = "render-test-results";
  el.textContent = JSON.stringify(out);
  document.body.appendChild(el);
}})();
</script>
"""


class _Handler(SimpleHTTPRequestHandler):
    """Serves the build quietly, records (path, status) of every request, adds :data:`PROBE`."""

    requests: list[tuple[str, int]]

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = urlsplit(self.path).path
        if path == AXE_URL:
            if not AXE_JS.is_file():  # the probe reports it; the accessibility test fails
                return self._send(b"window.axe = null;", "text/javascript")
            return self._send(AXE_JS.read_bytes(), "text/javascript")
        file = Path(self.translate_path(path))
        if file.is_dir():
            file = file / "index.html"
        if file.suffix == ".html" and file.is_file():
            html = file.read_text(encoding="utf-8")
            html = html.replace("</body>", PROBE + "</body>", 1)
            return self._send(html.encode("utf-8"), "text/html; charset=utf-8")
        return super().do_GET()

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

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

    @property
    def probe(self) -> dict[str, Any]:
        """What :data:`PROBE` measured in the browser (axe violations, block overflow)."""
        match = re.search(
            r'<script type="application/json" id="render-test-results">(.*?)</script>',
            self.dom_html,
            re.DOTALL,
        )
        assert match, f"{self.url}: the page's probe did not run (no axe results in the DOM)"
        return json.loads(html_lib.unescape(match[1]) if "&quot;" in match[1] else match[1])


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
            *HEADLESS_FLAGS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=30000",
            "--window-size=1280,900",
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


# ------------------------------------------------------------------------------------------
def chapter_pages(rendered: dict[str, Rendered]) -> dict[str, Rendered]:
    return {rel: page for rel, page in rendered.items() if rel.startswith("book/chapters/")}


def test_no_serious_accessibility_violations(rendered: dict[str, Rendered]) -> None:
    assert AXE_JS.is_file(), (
        f"axe-core is not vendored ({AXE_JS.relative_to(ROOT)}): run `make vendor`"
    )
    failures = []
    for rel, page in rendered.items():
        probe = page.probe
        assert "error" not in probe, f"{rel}: axe-core failed: {probe['error']}"
        failures += [
            f"{rel}: {v['impact']} {v['id']} ({v['help']}) at {v['nodes']}"
            for v in probe["violations"]
            if v["impact"] in FAILING_IMPACTS
        ]
    assert not failures, "axe-core:\n" + "\n".join(failures)


def test_every_figure_has_alt_text(rendered: dict[str, Rendered]) -> None:
    for rel, page in rendered.items():
        missing = [src for src, alt in zip(page.dom.imgs, page.dom.img_alts, strict=True)
                   if not alt]
        assert not missing, f"{rel}: images without alt text: {missing}"


def test_notes_and_outputs_wrap(rendered: dict[str, Rendered]) -> None:
    blocks = 0
    for rel, page in rendered.items():
        probe = page.probe
        blocks += probe["blocks"]
        assert not probe["overflow"], f"{rel}: blocks wider than their box: {probe['overflow']}"
    assert blocks, "no note or output block was measured"


def test_findings_page_pastes_numbers_and_links_to_sections(
    rendered: dict[str, Rendered], server: tuple[str, list[tuple[str, int]]]
) -> None:
    base, _ = server
    page = rendered["book/findings.html"]
    html = page.path.read_text(encoding="utf-8")
    assert "{glue" not in "".join(page.dom.text), "a glue role was left unresolved"
    assert 'class="pasted-text"' in html, "no glued number on the findings page"
    linked: set[str] = set()
    for href, _ in page.static.anchors:
        absolute = urljoin(page.url, href)
        target = _file_of(href, page.url, base)
        if target is None or "/chapters/" not in absolute:
            continue
        assert target.is_file(), f"findings: {href} -> {target} does not exist"
        fragment = urlsplit(absolute).fragment
        if fragment:
            ids = parse(target.read_text(encoding="utf-8")).ids
            assert fragment in ids, f"findings: {href}: no element with id {fragment!r}"
            linked.add(target.stem)
    chapters = {rel.split("/")[-1][:-5] for rel in chapter_pages(rendered)}
    assert linked == chapters, f"chapters without a linked finding: {chapters - linked}"


def test_each_chapter_offers_its_notebook_and_how_to_rerun_it(
    rendered: dict[str, Rendered], server: tuple[str, list[tuple[str, int]]]
) -> None:
    base, _ = server
    for rel, page in chapter_pages(rendered).items():
        stem = Path(rel).stem
        downloads = [h for h, cls in page.static.anchors
                     if "download" in cls.split() and h.endswith(f"/{stem}.ipynb")]
        assert downloads, f"{rel}: no download link to {stem}.ipynb"
        target = _file_of(downloads[0], page.url, base)
        assert target is not None and target.is_file(), f"{rel}: {downloads[0]} is missing"
        nb = json.loads(target.read_text(encoding="utf-8"))
        assert nb["metadata"]["ehrcausal"]["profile"], f"{rel}: not an executed chapter"
        assert any(c.get("outputs") for c in nb["cells"]), f"{rel}: the notebook has no outputs"
        text = " ".join("".join(page.dom.text).split())
        assert "Rerun this chapter" in text
        html = page.path.read_text(encoding="utf-8")
        assert f"notebooks/{stem}.ipynb" in html and "papermill" in html


def test_tables_are_numbered_as_tables_and_captions_carry_provenance(
    rendered: dict[str, Rendered],
) -> None:
    tables = 0
    for rel, page in chapter_pages(rendered).items():
        html = page.path.read_text(encoding="utf-8")
        figures = re.findall(r"<figure\b[^>]*>.*?</figure>", html, re.DOTALL)
        assert figures, f"{rel}: no figure"
        for fig in figures:
            number = re.search(r'<span class="caption-number">([^<]*)</span>', fig)
            assert number, f"{rel}: a figure without a numbered caption"
            is_table = "<table" in fig
            tables += is_table
            expected = "Table" if is_table else "Fig."
            assert number[1].startswith(expected), f"{rel}: {number[1]!r} numbers a " + (
                "table" if is_table else "figure")
            assert 'class="provenance"' in fig, f"{rel}: {number[1]} has no provenance line"
            provenance = re.search(r'<p class="provenance">(.*?)</p>', fig, re.DOTALL)[1]
            assert "commit" in provenance and "profile" in provenance
            assert f"{Path(rel).stem}.ipynb" in provenance
    assert tables, "no table in any chapter"


def test_parameters_are_shown_once_with_their_profile(rendered: dict[str, Rendered]) -> None:
    for rel, page in chapter_pages(rendered).items():
        html = page.path.read_text(encoding="utf-8")
        meta = json.loads((ROOT / rel.replace(".html", ".ipynb")).read_text())["metadata"]
        injected = bool(meta["papermill"]["parameters"])
        # myst-nb marks each cell's tags as classes: the notebook's defaults are removed from
        # the page when papermill injected the ones that ran, and those are labelled.
        assert html.count("tag_parameters") == (0 if injected else 1), rel
        if injected:
            assert html.count("tag_injected-parameters") == 1, rel
            assert html.count("The parameters this chapter ran with") == 1, rel
            assert f"[{meta['ehrcausal']['profile']}]" in html, rel
