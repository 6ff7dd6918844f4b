// The book's own script (added by ehrcausal.runner.sphinx_ext).
// A result table wider than the page scrolls inside its own box; make that box reachable and
// scrollable by keyboard, and name it after the table's caption for screen readers.
(() => {
  const mark = () => {
    document.querySelectorAll("figure.table-figure div.output, figure.table-figure .text_html")
      .forEach((box) => {
        if (box.scrollWidth <= box.clientWidth) return;
        const caption = box.closest("figure").querySelector(".caption-number");
        box.tabIndex = 0;
        box.setAttribute("role", "region");
        box.setAttribute("aria-label", (caption ? caption.textContent.trim() : "Table") + " (scrolls)");
      });
  };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", mark);
  } else {
    mark();
  }
  window.addEventListener("resize", mark);
})();
