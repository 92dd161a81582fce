"""Slide decks and rendered notebooks: self-contained pages that load nothing from the network."""

import html
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from course_notebooks import CHECK, REAL_NOTEBOOKS, SECTION_TITLES, code, course_notebook, markdown

from gencourse.export import SLIDE_CODE, STATIC, export_slides, external_resources, main, render, slide_cells
from gencourse.plot import PLAYER_ICONS


class _LocalLinks(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if tag != "a" and key in ("src", "href") and value and not re.match(r"(data:|#|https?:|//)", value):
                self.links.append(value)


def local_links(page: str) -> list[str]:
    finder = _LocalLinks()
    finder.feed(page)
    return finder.links


def test_vendored_assets_are_small_licensed_and_reference_only_each_other():
    files = [p for p in STATIC.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 1_000_000
    for licence in (STATIC / "reveal.js" / "LICENSE", STATIC / "katex" / "LICENSE"):
        assert "Permission is hereby granted, free of charge" in licence.read_text()  # the MIT licence
    for css in STATIC.rglob("*.css"):
        text = css.read_text()
        assert not re.search(r"(?:url\(|@import)\s*[\"']?(?:https?:)?//", text), css
        for url in re.findall(r"url\(([^)]+)\)", text):
            if not url.startswith("data:"):
                assert (css.parent / url.strip("\"'")).is_file(), f"{css.name} names {url}, which is not vendored"


@pytest.mark.parametrize(
    "page, found",
    [
        ('<script src="https://unpkg.com/reveal.js/dist/reveal.js"></script>', 1),
        ('<link rel="stylesheet" href="//fonts.example.org/font.css">', 1),
        ("<style>@import url('https://fonts.example.org/a.css');</style>", 1),
        ('<div style="background: url(http://example.org/a.png)"></div>', 1),
        ("<script type=\"module\">import mermaid from 'https://cdn.example.org/mermaid.mjs';</script>", 1),
        ('<img src="https://example.org/figure.png">', 1),
        ('<a href="https://arxiv.org/abs/1312.6114">the paper</a>', 0),
        ('<script src="_static/katex/katex.min.js"></script><img src="data:image/png;base64,AAAA">', 0),
        ("<p>see https://example.org in the text</p>", 0),
    ],
)
def test_external_resources_finds_what_a_page_would_fetch(page, found):
    assert len(external_resources(page)) == found


def test_nbconverts_own_decks_would_need_the_network():
    """The check is not vacuous: nbconvert's default deck loads reveal.js, require.js and MathJax from CDNs."""
    from nbconvert import SlidesExporter

    page, _ = SlidesExporter().from_notebook_node(course_notebook())
    online = " ".join(external_resources(page))
    assert "reveal.js" in online and "require" in online and "mathjax" in online.lower()


@pytest.mark.parametrize("path", ["synthetic"] + REAL_NOTEBOOKS, ids=lambda p: getattr(p, "stem", p))
def test_each_notebook_becomes_an_offline_deck_with_a_slide_per_section(path, tmp_path):
    if path == "synthetic":  # always runs, so this test never passes on an empty notebooks/ folder
        path = tmp_path / "00_demo.ipynb"
        nbformat.write(course_notebook(), path)
    nb = nbformat.read(path, as_version=4)
    ((deck, run),) = export_slides(path, tmp_path / "slides")
    assert deck == tmp_path / "slides" / f"{path.stem}.slides.html" and run is None
    page = deck.read_text()
    assert external_resources(page) == []
    for link in local_links(page):
        assert (deck.parent / link).is_file(), f"the deck links to {link}, which was not written"
    assert "_static/reveal.js/dist/reveal.js" in local_links(page) and "Reveal.initialize" in page
    slides = sum(1 for c in nb.cells if c.metadata.get("slideshow", {}).get("slide_type") == "slide")
    sections = sum(1 for c in nb.cells if c.cell_type == "markdown" and re.match(r"##\s+\d+\.\s", c.source))
    assert len(re.findall(r"<section[^>]*>\s*<section", page)) == slides >= sections + 1  # title + sections
    assert f'href="{deck.name}"' in (deck.parent / "index.html").read_text()


def test_a_deck_keeps_fragments_math_and_links(tmp_path):
    path = tmp_path / "00_demo.ipynb"
    nbformat.write(course_notebook(), path)
    export_slides(path, tmp_path, code=True)
    page = (tmp_path / "00_demo.slides.html").read_text()
    assert page.count('class="fragment"') == 2  # the equation, then its code
    assert "$y = 2x$" in page and "renderMathInElement" in page  # KaTeX renders it in the browser
    assert 'href="https://arxiv.org/abs/1312.6114"' in page
    assert [title in page for title in SECTION_TITLES] == [True] * len(SECTION_TITLES)
    export_slides(path, tmp_path)  # by default code is hidden, and the code fragment has no output to show
    assert (tmp_path / "00_demo.slides.html").read_text().count('class="fragment"') == 1


def with_outputs(nb):
    """The synthetic lesson as if run: its assert cell (a fragment) prints 200 lines, the exercise prints one."""
    nb.cells[4].outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="".join(f"row {i}\n" for i in range(200)))
    ]
    nb.cells[7].outputs = [nbformat.v4.new_output("stream", name="stdout", text="Correct! double(x) = 2 x.\n")]
    return nb


def _text(page: str) -> str:
    """What a page's HTML says, without tags (pygments splits code into spans)."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def test_a_deck_shows_outputs_and_only_the_code_of_cells_tagged_slide_code():
    nb = with_outputs(course_notebook())
    nb.cells[7].metadata["tags"] = [SLIDE_CODE]
    page = render(nb, "slides", "00_demo")
    text = _text(page)
    assert "row 199" in text and "Correct! double(x) = 2 x." in text  # outputs are on the slides
    assert CHECK in text  # the tagged cell's code
    assert "torch.arange" not in text and "seed_everything" not in text and "y = x + x" not in text
    assert not re.search(r"Prompt[^>]*>\s*(In|Out)", page)  # no prompts: a figure gets the full width
    assert 'class="fragment"' in page.split("row 0")[0].rsplit("<section", 1)[1]  # the output keeps its fragment
    everything = _text(render(nb, "slides", "00_demo", code=True))
    assert "torch.arange" in everything and "seed_everything" in everything and "y = x + x" in everything
    assert "torch.arange" in _text(render(nb, "html", "00_demo"))  # the rendered notebook is the whole notebook


def test_long_outputs_scroll_inside_the_slide():
    page = render(with_outputs(course_notebook()), "slides", "00_demo")
    css = re.search(r"\.reveal \.jp-OutputArea-output:not\(\.jp-RenderedImage\) \{([^}]*)\}", page).group(1)
    assert "max-height: 420px" in css and "overflow: auto" in css  # (tests/test_browser.py scrolls it in Chromium)
    assert re.search(r"\.reveal \.jp-RenderedImage img \{[^}]*max-height: 600px", page)  # a figure fits a slide


def test_hidden_cells_leave_no_blank_slide_or_fragment_step():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        markdown("# Title", "slide"),
        code("setup = 1", "slide"),  # no output: nothing to show, so the slide starts at the next cell
        markdown("Text after the setup."),
        code("x = 2", "fragment"),  # an empty fragment step
        code("print(x)", "subslide"),
        code("y = 3", "slide"),  # hidden before a subslide: that one becomes the new slide
        markdown("A new section.", "subslide"),
        code("z = 4", "notes"),
    ]
    nb.cells[4].outputs = [nbformat.v4.new_output("stream", name="stdout", text="2\n")]
    types = [c.metadata.get("slideshow", {}).get("slide_type", "-") for c in slide_cells(nb).cells]
    assert types == ["slide", "skip", "slide", "skip", "subslide", "skip", "slide", "notes"]
    assert [c.metadata.get("slideshow", {}).get("slide_type", "-") for c in nb.cells][1] == "slide"  # a copy
    assert [c.metadata.get("slideshow", {}).get("slide_type", "-") for c in slide_cells(nb, code=True).cells] == [
        "slide", "slide", "-", "fragment", "subslide", "slide", "subslide", "notes"
    ]  # fmt: skip


def test_slides_execute_runs_each_notebook_headless_and_shows_its_outputs(tmp_path, capsys):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        markdown("# 1. A tiny deck", "slide"),
        code('import os\n\nprint("widgets", os.environ.get("GENCOURSE_WIDGETS"))'),
        code('import matplotlib.pyplot as plt\n\nplt.plot([0, 1], [1, 0])\nplt.title("a line")\nplt.show()', "slide"),
    ]
    nbformat.write(nb, tmp_path / "01_tiny.ipynb")
    assert (
        main(["slides", str(tmp_path / "01_tiny.ipynb"), str(tmp_path / "deck"), "--execute", "--profile", "smoke"])
        == 0
    )
    assert "01_tiny.slides.html (ran in" in capsys.readouterr().out
    page = (tmp_path / "deck" / "01_tiny.slides.html").read_text()
    assert "widgets 0" in page  # explore() draws its static panels: a page cannot run a slider
    assert re.search(r'<img[^>]+src="data:image/png;base64,', page) and "plt.plot" not in page
    assert external_resources(page) == []


def test_render_refuses_a_notebook_that_would_load_from_the_network():
    nb = course_notebook()
    nb.cells.append(markdown('<img src="https://example.org/figure.png">'))
    with pytest.raises(RuntimeError, match="would not work offline.*example.org/figure.png"):
        render(nb, "slides", "00_demo")


def test_matplotlib_animation_player_gets_its_icons_offline():
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation

    fig, ax = plt.subplots(figsize=(1, 1))
    player = FuncAnimation(fig, lambda i: ax.set_title(str(i)), frames=2).to_jshtml()
    plt.close(fig)
    assert "font-awesome" in player  # what gencourse.plot.animate shows in a live kernel
    nb = course_notebook()
    nb.cells[4].outputs = [nbformat.v4.new_output("display_data", data={"text/html": player})]
    page = render(nb, "html", "00_demo")
    assert external_resources(page) == [] and PLAYER_ICONS in page and 'class="fa fa-play"' in page
    assert "font-awesome" in nb.cells[4].outputs[0].data["text/html"], "the notebook itself is not changed"


def test_html_runs_each_notebook_in_the_profile_and_indexes_the_run_times(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENCOURSE_PROFILE", "lecture")  # the command's --profile must win
    ok = nbformat.v4.new_notebook()
    ok.cells = [
        markdown("# 1. A tiny lesson\n\nWith math: $a^2 + b^2 = c^2$."),
        code('import os\n\nprint("profile", os.environ["GENCOURSE_PROFILE"])'),
        code('import matplotlib.pyplot as plt\n\nplt.plot([0, 1], [1, 0])\nplt.title("a line")\nplt.show()'),
    ]
    broken = nbformat.v4.new_notebook()
    broken.cells = [markdown("# 2. Broken"), code('raise ValueError("boom")'), code('print("never")')]
    src = tmp_path / "notebooks"
    src.mkdir()
    nbformat.write(ok, src / "01_tiny.ipynb")
    nbformat.write(broken, src / "02_broken.ipynb")

    assert main(["html", str(src), str(tmp_path / "html"), "--profile", "smoke", "--timeout", "60"]) == 1
    out = capsys.readouterr().out
    assert "02_broken.html FAILED: CellExecutionError: ValueError: boom" in out

    page = (tmp_path / "html" / "01_tiny.html").read_text()
    assert "profile smoke" in page and re.search(r'<img[^>]+src="data:image/png;base64,', page)
    assert external_resources(page) == [] and "katex.min.js" in page
    assert all((tmp_path / "html" / link).is_file() for link in local_links(page))
    failed = (tmp_path / "html" / "02_broken.html").read_text()
    assert "ValueError" in failed and "boom" in failed and "<pre>never" not in failed

    index = (tmp_path / "html" / "index.html").read_text()
    assert external_resources(index) == []
    ran = re.search(r'<a href="01_tiny.html">01_tiny</a></td><td>1. A tiny lesson</td><td>([\d.]+) s</td>', index)
    assert ran and 0 < float(ran.group(1)) < 60
    assert re.search(r"01_tiny.html \(ran in " + re.escape(ran.group(1)) + r" s", out)
    assert 'href="02_broken.html"' in index and "failed: CellExecutionError: ValueError: boom" in index
    assert "<code>smoke</code> profile" in index


def test_bad_arguments_are_reported_without_a_traceback(tmp_path, capsys):
    assert main(["slides", str(tmp_path / "missing"), str(tmp_path / "out")]) == 1
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["html", str(tmp_path), str(tmp_path / "out"), "--profile", "fast"])
    assert Path(tmp_path / "out").exists() is False
