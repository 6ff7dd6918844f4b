"""The book's Sphinx extension (``_config.yml``: ``sphinx.config.extensions``).

- **Tables are tables.** A ``{glue:figure}`` whose name starts with ``tbl-`` pastes a table (a
  glued data frame). myst-nb wraps every paste in a figure, which Sphinx would number and
  reference as "Fig. n"; :class:`TablesAreTables` turns those into :class:`table_figure` nodes,
  an enumerable node of type ``table``: numbered "Table n" in their caption and in every
  ``{numref}``, in the same sequence as Markdown tables.
- **Bibliography entries are list items.** docutils marks the citation list ``role="list"``
  and each entry ``role="doc-biblioentry"``, a role DPUB-ARIA 1.1 deprecated in favour of
  ``listitem``; a list without list items is a critical accessibility error (axe-core
  ``aria-required-children``), so each entry of a citation list becomes a ``listitem``.
- **The book's style sheet** (``static/ehrcausal.css``): long text in code blocks and outputs
  (example clinical notes) wraps instead of running off the page; tables scroll inside their
  own box when wider than the page; the provenance line of a caption is set small. Its script
  (``static/ehrcausal.js``) makes such a scrolling box reachable by keyboard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.transforms import SphinxTransform

__all__ = ["TABLE_PREFIX", "TablesAreTables", "setup", "table_figure"]

#: Names of pasted figures that hold tables.
TABLE_PREFIX = "tbl-"
STATIC = Path(__file__).resolve().parent / "static"


class table_figure(nodes.figure):  # noqa: N801 - docutils names node classes in lower case
    """A pasted table with a caption: rendered like a figure, numbered as a table."""


class TablesAreTables(SphinxTransform):
    """Make every figure named ``tbl-*`` a :class:`table_figure`."""

    default_priority = 400

    def apply(self, **kwargs: Any) -> None:
        for node in list(self.document.findall(nodes.figure)):
            if type(node) is nodes.figure and any(
                str(i).startswith(TABLE_PREFIX) for i in node.get("ids", []) + node.get("names", [])
            ):
                node.__class__ = table_figure
                node["classes"] = [*node.get("classes", []), "table-figure"]


def _caption_title(node: nodes.Element) -> str | None:
    for child in node.children:
        if isinstance(child, nodes.caption):
            return child.astext()
    return None


def _visit(self: Any, node: nodes.Element) -> None:
    self.visit_figure(node)


def _depart(self: Any, node: nodes.Element) -> None:
    self.depart_figure(node)


def _listitem_citations(app: Any, pagename: str, templatename: str, context: dict[str, Any],
                        doctree: Any) -> None:
    body = context.get("body")
    if isinstance(body, str) and 'role="doc-biblioentry"' in body:
        context["body"] = body.replace('role="doc-biblioentry"', 'role="listitem"')


def _add_static(app: Any) -> None:
    static = str(STATIC)
    if static not in app.config.html_static_path:
        app.config.html_static_path.append(static)


def setup(app: Any) -> dict[str, Any]:
    """Register the node, the transform and the style sheet."""
    app.add_enumerable_node(
        table_figure, "table", _caption_title, html=(_visit, _depart), text=(_visit, _depart)
    )
    app.add_transform(TablesAreTables)
    app.connect("builder-inited", _add_static)
    app.connect("html-page-context", _listitem_citations)
    app.add_css_file("ehrcausal.css")
    app.add_js_file("ehrcausal.js")
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
