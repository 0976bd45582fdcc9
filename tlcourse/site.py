"""A static web site of the course: every notebook with its outputs, the course map in front.

``tlcourse site --executed build/executed --out build/site`` turns executed copies of the
notebooks into HTML pages; it never runs a notebook itself unless asked (``--execute``
runs the learner's view — default parameters, blank exercises — into the executed
folder first, with :func:`tlcourse.runner.execute`).

How: nbconvert's ``lab`` template, so a page looks like the notebook in JupyterLab (same
CSS, images embedded as data URIs). A front page ``index.html`` shows the course map
taken from the welcome notebook (its "course map" cell) with links to the pages, and every
page gets a bar: course map · previous · next. Links between notebooks (``01_x.ipynb``)
become links between pages. The template's stylesheet is written once
(``static/notebook.css``) instead of into every page. Everything works offline; only
MathJax (formulas) and require.js are loaded from a CDN by the reader's browser.

Why not Jupyter Book 2 (MyST): its HTML build downloads its theme from the internet at
build time, which an offline machine (or CI here) cannot do.

Which copy is shown: for a notebook ``NN_topic`` the executed folder may hold
``NN_topic.ipynb`` (the learner's view) and ``NN_topic.solved.ipynb`` (exercises filled in,
written by the test suite). The learner's view is preferred unless ``prefer_solved``;
a solved page says so in a banner. A copy with an error output is refused (a site never
shows a traceback) unless ``allow_errors``.

>>> from tlcourse.site import build_site                      # doctest: +SKIP
>>> report = build_site("notebooks", "build/executed", "build/site")   # doctest: +SKIP
>>> print(report.summary())                                   # doctest: +SKIP
"""

from __future__ import annotations

import html
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from tlcourse.notebook_tools import notebooks

_HEAD_STYLE = re.compile(r"<style[^>]*>.*?</style>", re.S)
_NB_LINK = re.compile(r'href="(?:\./)?([0-9]{2}_[\w-]+)\.ipynb(#[^"]*)?"')
_WIDGET = "application/vnd.jupyter.widget-view+json"
_MARKER = ".tlcourse-site"

SITE_CSS = """
.tlcourse-nav { display: flex; gap: 1.5em; align-items: baseline; flex-wrap: wrap;
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; padding: 10px 24px;
  border-bottom: 1px solid #ddd; background: #fafafa; }
.tlcourse-nav.bottom { border-top: 1px solid #ddd; border-bottom: none; margin-top: 2em; }
.tlcourse-nav a { color: #1565c0; text-decoration: none; }
.tlcourse-nav a:hover { text-decoration: underline; }
.tlcourse-nav .next { margin-left: auto; }
.tlcourse-banner { margin: 12px 24px; padding: 8px 12px; border-left: 6px solid #8d6e00;
  background: #fff8e1; font: 14px/1.5 system-ui, sans-serif; }
.tlcourse-index { max-width: 1000px; margin: 0 auto; padding: 16px 24px 48px;
  font: 16px/1.6 system-ui, -apple-system, "Segoe UI", sans-serif; color: #212121; }
.tlcourse-index table { border-collapse: collapse; margin: 1em 0; }
.tlcourse-index th, .tlcourse-index td { padding: 4px 10px; text-align: left; vertical-align: top;
  border-bottom: 1px solid #e0e0e0; }
.tlcourse-index code { background: #f5f5f5; padding: 0 3px; border-radius: 3px; }
.tlcourse-index a { color: #1565c0; }
.tlcourse-index .pages li { margin: 2px 0; }
.tlcourse-index .meta { color: #616161; font-size: 14px; }
"""


@dataclass
class Page:
    """One notebook's page."""

    stem: str
    title: str
    source: Path
    solved: bool
    images: int = 0
    dropped_widgets: int = 0
    stale: bool = False

    @property
    def href(self) -> str:
        return f"{self.stem}.html"


@dataclass
class SiteReport:
    """What was built: the pages, how long it took and how big the site is."""

    out: Path
    pages: list[Page] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.out.rglob("*") if p.is_file())

    def summary(self) -> str:
        lines = [f"site: {self.out}/index.html, {len(self.pages)} page(s), "
                 f"{self.size_bytes / 1e6:.1f} MB, built in {self.seconds:.1f} s"]
        for p in self.pages:
            notes = [f"{p.images} image(s)"]
            if p.solved:
                notes.append("solved copy")
            if p.dropped_widgets:
                notes.append(f"{p.dropped_widgets} progress widget(s) left out")
            if p.stale:
                notes.append("STALE: its text differs from notebooks/, re-execute")
            lines.append(f"  {p.href:<40} {', '.join(notes)}")
        if self.missing:
            lines.append(f"  no executed copy (no page): {', '.join(self.missing)}")
        return "\n".join(lines)


class SiteError(RuntimeError):
    """The site cannot be built as asked (no executed copy, or an executed copy with an error)."""


def executed_copy(executed: Path, stem: str, *, prefer_solved: bool = False) -> Path | None:
    """The executed copy of notebook ``stem`` in folder ``executed``, or None."""
    plain, solved = executed / f"{stem}.ipynb", executed / f"{stem}.solved.ipynb"
    order = (solved, plain) if prefer_solved else (plain, solved)
    return next((p for p in order if p.exists()), None)


def execute_learner_view(sources: list[Path], executed: Path, *, timeout: float = 900) -> list:
    """Run each notebook at default parameters, exercises blank, into ``executed/<stem>.ipynb``."""
    from tlcourse.runner import execute

    env = {
        "TLCOURSE_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "TLCOURSE_CHECKS": "",  # a learner's checks display their verdict, never raise
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",  # plots become outputs
        "TLCOURSE_RESULTS_DIR": str(executed / "results"),
    }
    return [execute(src, executed / src.name, env=env, timeout=timeout, variant="site") for src in sources]


_FRAMEWORK = {"_torch": "PyTorch", "_tf": "TensorFlow/Keras"}


def _title(nb, stem: str) -> str:
    """The notebook's first ``#`` heading, and its framework when it is one of a pair."""
    title = stem
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", cell.source, re.M)
            if m:
                title = m.group(1).strip()
                break
    for suffix, name in _FRAMEWORK.items():
        if stem.endswith(suffix) and name.lower() not in title.lower():
            title += f" ({name})"
    return title


def _markdown_text(nb) -> list[str]:
    return [c.source.strip() for c in nb.cells if c.cell_type == "markdown"]


def _errors(nb) -> list[str]:
    return [f"{o.get('ename')}: {str(o.get('evalue'))[:200]}"
            for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]


def _drop_stateless_widgets(nb) -> int:
    """Leave out widget outputs whose state was not saved (tqdm bars): a page cannot draw them,
    and their text fallback shows a bar stuck at 0%."""
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    dropped = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        keep = []
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(_WIDGET)
            if view is not None and view.get("model_id") not in state:
                dropped += 1
                continue
            keep.append(out)
        cell.outputs = keep
    return dropped


def _nav(pages: list[Page], i: int, where: str) -> str:
    parts = ['<a class="home" href="index.html">Course map</a>']
    if i > 0:
        parts.append(f'<a class="prev" href="{pages[i - 1].href}">← {html.escape(pages[i - 1].title)}</a>')
    if i + 1 < len(pages):
        parts.append(f'<a class="next" href="{pages[i + 1].href}">{html.escape(pages[i + 1].title)} →</a>')
    return f'<nav class="tlcourse-nav {where}">{"".join(parts)}</nav>'


def _relink(text: str, known: set[str]) -> str:
    """Links to course notebooks point to their pages (a notebook without a page: no link)."""
    def sub(m: re.Match) -> str:
        stem, anchor = m.group(1), m.group(2) or ""
        return f'href="{stem}.html{anchor}"' if stem in known else 'href="index.html" class="tlcourse-unbuilt" title="no page yet: see the course map"'

    return _NB_LINK.sub(sub, text)


def _course_map(welcome_nb, known: set[str]) -> str | None:
    """The welcome notebook's course-map cell as HTML, links pointing at the pages."""
    from nbconvert.filters.markdown import markdown2html

    for cell in welcome_nb.cells:
        if cell.cell_type == "markdown" and re.search(r"^#+\s.*course map", cell.source, re.M | re.I):
            text = _relink(markdown2html(cell.source), known)
            text = re.sub(r'<a class="anchor-link"[^>]*>.*?</a>', "", text)  # the "¶" after headings
            # Written for a reader of the welcome notebook itself:
            text = re.sub(r"<p><strong>Next:</strong>.*?</p>", "", text, flags=re.S)
            return text.replace(" (this notebook)", "")
    return None


def _index(pages: list[Page], course_map: str | None, built: str) -> str:
    listing = "\n".join(
        f'<li><a href="{p.href}">{html.escape(p.title)}</a>'
        f'{" <span class=meta>(exercises solved)</span>" if p.solved else ""}</li>' for p in pages)
    body = course_map or "<h2>The course</h2>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tlcourse — transfer learning, hands on</title>
<link rel="stylesheet" href="static/site.css">
</head><body>
<main class="tlcourse-index">
<h1>tlcourse — transfer learning, hands on</h1>
<p>An interactive notebook course on transfer learning with PyTorch and TensorFlow/Keras. These
pages show every notebook <em>with its outputs</em>, as it ran; to run and change them, open the
notebooks in JupyterLab (<code>make lab</code>, or the Binder badge in the README).</p>
{body}
<h2>Pages</h2>
<ol class="pages">
{listing}
</ol>
<p class="meta">Built {html.escape(built)} from executed copies of the notebooks.</p>
</main></body></html>
"""


def build_site(
    notebooks_dir: str | Path,
    executed_dir: str | Path,
    out_dir: str | Path,
    *,
    prefer_solved: bool = False,
    allow_errors: bool = False,
    require_all: bool = False,
) -> SiteReport:
    """Build the site in ``out_dir`` (emptied first) from the executed copies.

    The pages and their order come from the course's notebooks in ``notebooks_dir``; a
    notebook without an executed copy gets no page (``require_all``: an error instead).
    """
    import nbformat
    from nbconvert import HTMLExporter

    start = time.perf_counter()
    sources = notebooks(notebooks_dir)
    if not sources:
        raise SiteError(f"no course notebooks (NN_name.ipynb) in {notebooks_dir}")
    executed, out = Path(executed_dir), Path(out_dir)
    report = SiteReport(out=out)
    loaded = []
    problems = []
    for src in sources:
        copy = executed_copy(executed, src.stem, prefer_solved=prefer_solved)
        if copy is None:
            report.missing.append(src.stem)
            continue
        nb = nbformat.read(copy, as_version=4)
        errors = _errors(nb)
        if errors and not allow_errors:
            problems.append(f"{copy}: {'; '.join(errors)}")
        page = Page(src.stem, _title(nb, src.stem), copy, solved=copy.name.endswith(".solved.ipynb"))
        page.stale = _markdown_text(nb) != _markdown_text(nbformat.read(src, as_version=4))
        loaded.append((page, nb))
    if problems:
        raise SiteError("executed copies with errors (a page would show a traceback):\n" + "\n".join(problems))
    if require_all and report.missing:
        raise SiteError(f"no executed copy in {executed} for: {', '.join(report.missing)}")
    if not loaded:
        raise SiteError(f"no executed copies in {executed} (run with --execute, or run the tests first)")

    if out.exists() and any(out.iterdir()):
        if not (out / _MARKER).exists():
            raise SiteError(f"{out} exists and is not a site built by tlcourse: refusing to empty it")
        shutil.rmtree(out)
    (out / "static").mkdir(parents=True)
    (out / _MARKER).write_text("built by `tlcourse site`; the folder is emptied on every build\n")
    pages = [p for p, _ in loaded]
    report.pages = pages
    known = {p.stem for p in pages}
    exporter = HTMLExporter(template_name="lab")
    notebook_css = None
    for i, (page, nb) in enumerate(loaded):
        page.dropped_widgets = _drop_stateless_widgets(nb)
        page.images = sum(1 for c in nb.cells for o in c.get("outputs", [])
                          if any(k.startswith("image/") for k in o.get("data", {})))
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": page.title}})
        head, sep, rest = body.partition("</head>")
        styles = _HEAD_STYLE.findall(head)
        if notebook_css is None:
            notebook_css = "\n".join(re.sub(r"^<style[^>]*>|</style>$", "", s) for s in styles)
        for s in styles:
            head = head.replace(s, "", 1)
        head += ('<link rel="stylesheet" href="static/notebook.css">\n'
                 '<link rel="stylesheet" href="static/site.css">\n')
        banner = ('<div class="tlcourse-banner">This page shows the notebook with its exercises '
                  "<b>solved</b>.</div>") if page.solved else ""
        top = _nav(pages, i, "top") + banner
        rest = re.sub(r"(<body[^>]*>)", lambda m, top=top: m.group(1) + top, rest, count=1)
        rest = rest.replace("</body>", _nav(pages, i, "bottom") + "</body>", 1)
        (out / page.href).write_text(_relink(head + sep + rest, known), encoding="utf-8")
    (out / "static" / "notebook.css").write_text(notebook_css or "", encoding="utf-8")
    (out / "static" / "site.css").write_text(SITE_CSS, encoding="utf-8")

    welcome = next((s for s in sources if s.stem.startswith("00")), None)
    course_map = _course_map(nbformat.read(welcome, as_version=4), known) if welcome else None
    built = time.strftime("%Y-%m-%d %H:%M")
    (out / "index.html").write_text(_index(pages, course_map, built), encoding="utf-8")
    report.seconds = time.perf_counter() - start
    return report
