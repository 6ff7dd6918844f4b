"""The findings page: every chapter's headline results, glued from its executed notebook.

One registry, ``book/findings.yml``, holds one entry per chapter (the notebook's stem)::

    aace_policies:
      section: What the numbers say          # heading of the chapter the findings link to
      data: []                               # input files or folders (provenance; optional)
      findings:
        - "On respiratory notes AACE {glue:md}`resp_verdict`."
        - text: "It captures {glue:text}`resp_share_of_gain:.0f` % of the gain."
          section: Results                   # this finding links to another heading

A finding is MyST Markdown that names the chapter's own glue keys exactly as the chapter's prose
does. :func:`render_findings` turns the registry into the page's Markdown
(``book/_generated/findings.md``, included by ``book/findings.md``):

- ``{glue:text}`key:fmt``` and ``{glue}`key``` become cross-document glue references to the
  executed chapter (``{glue:text}`chapters/<stem>.ipynb::key:fmt```), which myst-nb resolves
  from the notebook's outputs when the book is built;
- ``{glue:md}`key``` (a sentence glued as Markdown, such as a verdict) is replaced by that
  output's Markdown as the executed notebook holds it (myst-nb does not paste Markdown across
  documents);
- every key must be glued by the executed chapter and every ``section`` must be a heading of
  it: each problem is reported (and the book is not built) instead of a page with a gap.

Chapters appear in the order of ``_toc.yml``, each with its title, the profile, device and
commit its executed notebook records, and a link to every section cited.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cache import atomic_write_text
from .paths import StudyPaths, toc_chapters

__all__ = [
    "FINDINGS_FILE",
    "ChapterFindings",
    "Finding",
    "chapter_title",
    "glued_outputs",
    "heading_slug",
    "headings",
    "load_registry",
    "render_findings",
    "write_findings",
]

#: The registry, relative to the repository root.
FINDINGS_FILE = "book/findings.yml"

#: A glue role: ``{glue}`` / ``{glue:text}`` / ``{glue:md}`` ... with its content.
GLUE_ROLE = re.compile(r"\{glue(?::(?P<kind>[a-z]+))?\}`(?P<body>[^`]+)`")
HEADING = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<title>.+?)\s*#*\s*$")


@dataclass(frozen=True)
class Finding:
    """One bullet of the findings page: MyST text with glue roles, and the section it cites."""

    text: str
    section: str


@dataclass(frozen=True)
class ChapterFindings:
    """A chapter's entry of the registry."""

    chapter: str
    section: str
    findings: tuple[Finding, ...]
    data: tuple[str, ...] = field(default_factory=tuple)


def _problem(where: str, message: str) -> str:
    return f"{FINDINGS_FILE}: {where}: {message}"


def load_registry(path: Path) -> tuple[dict[str, ChapterFindings], list[str]]:
    """Read ``book/findings.yml``: the entries that are well formed, and the problems found.

    An entry is a mapping with ``findings`` (a non-empty list of strings, or of mappings with
    ``text`` and an optional ``section``), an optional ``section`` (default for its findings) and
    an optional ``data`` (a list of paths relative to the repository root).
    """
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, [_problem("file", "missing (one entry per chapter is expected)")]
    except yaml.YAMLError as exc:
        return {}, [_problem("file", f"not valid YAML ({exc})")]
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return {}, [_problem("file", "the top level must map chapter names to entries")]
    entries: dict[str, ChapterFindings] = {}
    problems: list[str] = []
    for chapter, entry in raw.items():
        where = f"chapter {chapter!r}"
        if not isinstance(entry, dict):
            problems.append(_problem(where, "the entry must be a mapping with `findings`"))
            continue
        unknown = sorted(set(entry) - {"section", "findings", "data"})
        if unknown:
            problems.append(_problem(where, f"unknown keys {unknown} (allowed: section, "
                                            "findings, data)"))
        section = entry.get("section", "")
        if not isinstance(section, str):
            problems.append(_problem(where, "`section` must be the text of a heading"))
            section = ""
        items = entry.get("findings")
        if not isinstance(items, list) or not items:
            problems.append(_problem(where, "`findings` must be a non-empty list"))
            continue
        findings: list[Finding] = []
        for i, item in enumerate(items, start=1):
            if isinstance(item, str):
                text, sec = item, section
            elif isinstance(item, dict) and isinstance(item.get("text"), str):
                text, sec = item["text"], item.get("section", section)
            else:
                problems.append(_problem(f"{where}, finding {i}",
                                         "must be a string or a mapping with `text`"))
                continue
            if not isinstance(sec, str) or not sec:
                problems.append(_problem(f"{where}, finding {i}",
                                         "names no `section` (its own or the entry's)"))
                continue
            findings.append(Finding(text.strip(), sec))
        data = entry.get("data") or []
        if not isinstance(data, list) or not all(isinstance(d, str) for d in data):
            problems.append(_problem(where, "`data` must be a list of paths"))
            data = []
        entries[str(chapter)] = ChapterFindings(str(chapter), section, tuple(findings),
                                                tuple(data))
    return entries, problems


def glued_outputs(nb: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every glued output of an executed notebook: key -> its MIME bundle (prefix removed)."""
    found: dict[str, dict[str, Any]] = {}
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) or []:
            scrap = (out.get("metadata") or {}).get("scrapbook") or {}
            name = scrap.get("name")
            if out.get("output_type") != "display_data" or not name:
                continue
            prefix = scrap.get("mime_prefix", "")
            bundle = {}
            for mime, value in (out.get("data") or {}).items():
                text = "".join(value) if isinstance(value, list) else value
                bundle[mime[len(prefix):] if mime.startswith(prefix) else mime] = text
            found[name] = bundle
    return found


def _markdown_sources(nb: Mapping[str, Any]) -> list[str]:
    out = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            src = cell.get("source", "")
            out.append("".join(src) if isinstance(src, list) else src)
    return out


def headings(nb: Mapping[str, Any]) -> list[tuple[int, str]]:
    """The Markdown headings of a notebook: (level, title), fenced blocks skipped."""
    found = []
    for source in _markdown_sources(nb):
        fenced = False
        for line in source.splitlines():
            if line.lstrip().startswith(("```", "~~~")):
                fenced = not fenced
                continue
            match = None if fenced else HEADING.match(line)
            if match:
                found.append((len(match["hashes"]), match["title"]))
    return found


def chapter_title(nb: Mapping[str, Any]) -> str:
    """The notebook's first level-1 heading ('' when it has none)."""
    return next((title for level, title in headings(nb) if level == 1), "")


def heading_slug(title: str) -> str:
    """The HTML id Sphinx gives a section with this title (:func:`docutils.nodes.make_id`)."""
    from docutils.nodes import make_id

    return make_id(title)


def _short_commit(commit: str) -> str:
    if not commit or commit == "unknown":
        return "unknown"
    return commit[:10] + ("-dirty" if commit.endswith("-dirty") else "")


def _inline_markdown(text: str) -> str:
    """A glued Markdown sentence as inline text (one line; a block is refused by the caller)."""
    return " ".join(line.strip() for line in text.strip().splitlines())


def _rewrite(finding: Finding, chapter: str, doc: str, glued: Mapping[str, Mapping[str, Any]],
             problems: list[str]) -> str:
    where = f"chapter {chapter!r}"

    def replace(match: re.Match[str]) -> str:
        kind, body = match["kind"] or "", match["body"]
        key = body.split("::", 1)[-1]
        if kind == "text" or kind == "md":
            key = key.rsplit(":", 1)[0] if ":" in key else key
        if "::" in body:
            problems.append(_problem(where, f"{match[0]} names a document; name the key only"))
            return match[0]
        if key not in glued:
            problems.append(_problem(
                where, f"{match[0]}: the executed chapter glues no key {key!r}"))
            return match[0]
        if kind == "md":
            markdown = glued[key].get("text/markdown")
            if markdown is None:
                problems.append(_problem(where, f"{match[0]}: {key!r} is not glued as Markdown"))
                return match[0]
            if "```" in markdown or "\n\n" in markdown.strip():
                problems.append(_problem(where, f"{match[0]}: {key!r} is a block, not a sentence"))
                return match[0]
            return _inline_markdown(markdown)
        if kind not in ("", "text", "any"):
            problems.append(_problem(where, f"{match[0]}: only {{glue}}, {{glue:text}} and "
                                            "{glue:md} can be used on the findings page"))
            return match[0]
        if kind == "text":
            # myst-nb splits a cross-document key from its format at the last colon
            return f"{{glue:text}}`{doc}::{body if ':' in body else body + ':s'}`"
        return f"{{glue}}`{doc}::{body}`"

    return GLUE_ROLE.sub(replace, finding.text)


def render_findings(paths: StudyPaths, page_dir: str = "book") -> tuple[str, list[str]]:
    """The findings page's Markdown and the problems found (empty when it is complete).

    ``page_dir`` is the folder of the page that includes the result (relative to the root);
    links and glue references are written relative to it. Every chapter of ``_toc.yml`` must
    have an entry and an executed notebook; every entry must name a chapter of ``_toc.yml``.
    """
    entries, problems = load_registry(paths.root / FINDINGS_FILE)
    order = toc_chapters(paths.root)
    for chapter in entries:
        if chapter not in order:
            problems.append(_problem(f"chapter {chapter!r}", "is not a chapter of _toc.yml"))
    blocks: list[str] = []
    for chapter in order:
        if chapter not in entries:
            problems.append(_problem(f"chapter {chapter!r}", "has no entry (add one: see "
                                     "CONTRIBUTING.md, 'Add a chapter')"))
            continue
        notebook = paths.chapter_output(chapter)
        if not notebook.is_file():
            problems.append(_problem(f"chapter {chapter!r}", f"{paths.rel(notebook)} does not "
                                     "exist (run the chapter first)"))
            continue
        nb = json.loads(notebook.read_text(encoding="utf-8"))
        doc = os.path.relpath(notebook, paths.root / page_dir).replace(os.sep, "/")
        blocks.append(_render_chapter(entries[chapter], nb, doc, problems))
    return "\n".join(blocks), problems


def _render_chapter(entry: ChapterFindings, nb: Mapping[str, Any], doc: str,
                    problems: list[str]) -> str:
    page = doc.rsplit(".", 1)[0] + ".html"
    glued = glued_outputs(nb)
    titles = {heading_slug(title): title for _, title in headings(nb)}
    record = (nb.get("metadata") or {}).get("ehrcausal") or {}
    title = chapter_title(nb) or entry.chapter
    lines = [
        f"## {title}",
        "",
        f"From [the chapter]({doc}), executed at profile `{record.get('profile', 'unknown')}` "
        f"on `{record.get('device', 'unknown')}` (commit "
        f"`{_short_commit(str(record.get('commit', 'unknown')))}`).",
        "",
    ]
    for finding in entry.findings:
        slug = heading_slug(finding.section)
        if slug not in titles:
            problems.append(_problem(f"chapter {entry.chapter!r}", f"section "
                                     f"{finding.section!r} is not a heading of the chapter"))
            continue
        text = _rewrite(finding, entry.chapter, doc, glued, problems)
        # A plain link to the section's id: MyST checks anchors only in Markdown documents.
        href = f"{page}#{slug}"
        lines.append(f'- {text} (<a class="finding-source" href="{href}">{titles[slug]}</a>)')
    return "\n".join(lines) + "\n"


def write_findings(paths: StudyPaths) -> list[str]:
    """Write ``book/_generated/findings.md`` from the registry; return the problems found.

    Nothing is written when there is a problem (the previous page, if any, is removed so that a
    stale page is never built).
    """
    text, problems = render_findings(paths)
    target = paths.generated / "findings.md"
    if problems:
        target.unlink(missing_ok=True)
        return problems
    header = ("<!-- Generated by `python -m ehrcausal.runner build` from book/findings.yml and "
              "the executed chapters; do not edit. -->\n\n")
    atomic_write_text(target, header + text)
    return []
