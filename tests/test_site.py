"""The rendered course site (``tlcourse site``): pages with outputs, the course map in front.

Self-contained and fast: a small course in a temporary folder — the real welcome
notebook (it holds the course map) and a stand-in experiment notebook with a plot, a
table, a progress bar and a link — is executed once (a few seconds), then built into a
site. Building never executes anything; it reads the executed copies.
"""

from __future__ import annotations

import re
import shutil
import time

import nbformat
import pytest
from conftest import NOTEBOOKS

from tlcourse.cli import main as cli
from tlcourse.runner import execute
from tlcourse.site import SiteError, build_site

pytestmark = pytest.mark.xdist_group("site")

STANDIN = [
    ("markdown", "# 01 · Plots and tables\n\nA stand-in experiment, back to the [welcome](00_welcome.ipynb) "
                 "and on to [the next one](02_missing.ipynb). Math: $L = \\frac{1}{N}\\sum_i l_i$."),
    ("code", "SEED = 0"),
    ("code", "import matplotlib.pyplot as plt\nimport pandas as pd\nfrom tqdm.auto import tqdm\n"
             "xs = [x for x in tqdm(range(5), desc='runs')]\n"
             "display(pd.DataFrame({'budget': xs, 'acc': [0.5 + x / 10 for x in xs]}))\n"
             "fig, ax = plt.subplots(figsize=(4, 3))\nax.plot(xs, xs)\nax.set_title('a line')\nplt.show()"),
    ("markdown", "## Summary\n\nThe line goes up."),
]
_ERROR_IN_PAGE = re.compile(r"Traceback \(most recent call last\)|\bename\b|<span class=\"ansi-red-fg\">[A-Za-z]*Error")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """notebooks/ with 00 (real) and 01 (stand-in), and their executed copies."""
    root = tmp_path_factory.mktemp("course")
    src, executed = root / "notebooks", root / "executed"
    src.mkdir()
    shutil.copy(NOTEBOOKS / "00_welcome.ipynb", src)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(t) if kind == "markdown" else nbformat.v4.new_code_cell(t)
                for kind, t in STANDIN]
    nb.cells[1].metadata["tags"] = ["parameters"]
    nbformat.write(nb, src / "01_plots.ipynb")
    env = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "TLCOURSE_CHECKS": "",
           "TLCOURSE_RESULTS_DIR": str(root / "results")}
    for path in sorted(src.glob("*.ipynb")):
        report = execute(path, executed / path.name, env=env, timeout=300, variant="site")
        assert report.ok, report.error
    return src, executed


@pytest.fixture(scope="module")
def site(course, tmp_path_factory):
    src, executed = course
    out = tmp_path_factory.mktemp("site") / "site"
    start = time.perf_counter()
    report = build_site(src, executed, out, require_all=True)
    print(f"\n{report.summary()}\n(build {time.perf_counter() - start:.1f} s)")
    return report


def test_every_notebook_has_a_page_and_the_front_page_is_the_course_map(site, course):
    src, _ = course
    out = site.out
    assert sorted(p.name for p in out.glob("*.html")) == ["00_welcome.html", "01_plots.html", "index.html"]
    assert [p.stem for p in site.pages] == [p.stem for p in sorted(src.glob("*.ipynb"))]
    index = (out / "index.html").read_text()
    assert "The course map" in index and "<table" in index  # 00's map, as an HTML table
    assert "capstone and glossary" in index                  # ... all of it
    assert 'href="00_welcome.html"' in index and 'href="01_plots.html"' in index
    assert "¶" not in index and ".ipynb\"" not in index


def test_pages_show_outputs_with_images_and_navigation(site):
    out = site.out
    page = (out / "01_plots.html").read_text()
    assert page.count("data:image/png;base64,") >= 1, "the plot is embedded"
    assert "<table" in page and "budget" in page, "the DataFrame renders as an HTML table"
    assert 'href="00_welcome.html"' in page, "links between notebooks point at pages"
    assert "02_missing.ipynb" not in page, "a link to a notebook without a page does not dangle"
    assert 'class="tlcourse-nav top"' in page and 'href="index.html"' in page
    assert '<link rel="stylesheet" href="static/notebook.css">' in page and (out / "static" / "notebook.css").stat().st_size > 10_000
    welcome = (out / "00_welcome.html").read_text()
    assert "tlcourse-check" in welcome and "Not attempted" in welcome, "the learner's view: blank exercises"
    assert 'class="next" href="01_plots.html"' in welcome
    assert next(p for p in site.pages if p.stem == "01_plots").images == 1


def test_no_page_shows_an_error(site):
    for page in site.out.glob("*.html"):
        text = page.read_text()
        assert not _ERROR_IN_PAGE.search(text), f"{page.name} shows an error"


def test_an_executed_copy_with_an_error_is_refused(course, tmp_path):
    src, executed = course
    broken = tmp_path / "executed"
    shutil.copytree(executed, broken)
    nb = nbformat.read(broken / "01_plots.ipynb", as_version=4)
    nb.cells[2].outputs.append(nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero",
                                                      traceback=["Traceback (most recent call last)"]))
    nbformat.write(nb, broken / "01_plots.ipynb")
    with pytest.raises(SiteError, match="ZeroDivisionError"):
        build_site(src, broken, tmp_path / "site")
    assert not (tmp_path / "site").exists(), "nothing is written when a copy is refused"


def test_solved_copies_are_marked_and_missing_ones_reported(course, tmp_path):
    src, executed = course
    only = tmp_path / "executed"
    only.mkdir()
    shutil.copy(executed / "00_welcome.ipynb", only / "00_welcome.solved.ipynb")
    report = build_site(src, only, tmp_path / "site")
    assert report.missing == ["01_plots"] and [p.stem for p in report.pages] == ["00_welcome"]
    assert "exercises <b>solved</b>" in (tmp_path / "site" / "00_welcome.html").read_text()
    index = (tmp_path / "site" / "index.html").read_text()
    assert "01_plots" not in index.split("<h2>Pages</h2>")[1]
    with pytest.raises(SiteError, match="01_plots"):
        build_site(src, only, tmp_path / "site", require_all=True)


def test_the_output_folder_is_emptied_only_if_it_is_a_site(course, tmp_path):
    src, executed = course
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    with pytest.raises(SiteError, match="refusing"):
        build_site(src, executed, precious)
    assert (precious / "thesis.tex").exists()


def test_command_line(course, tmp_path, capsys):
    src, executed = course
    out = tmp_path / "site"
    assert cli(["site", "--folder", str(src), "--executed", str(executed), "--out", str(out)]) == 0
    assert "2 page(s)" in capsys.readouterr().out
    assert (out / "index.html").exists()
    assert cli(["site", "--folder", str(src), "--executed", str(tmp_path / "nothing"), "--out", str(out)]) == 1
