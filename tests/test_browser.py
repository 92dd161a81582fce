"""The exported pages as a person sees them: a slide deck and a rendered notebook opened in headless Chromium
(Debian's ``chromium`` package, driven by the ``playwright`` Python package; .ci/run installs both).

Each page must typeset its math (no raw ``$...$`` left), show its images, log no console error and make no
request that leaves the machine: every request is routed, and only files under the exported folder (and
inline ``data:`` URLs) are allowed. Without Chromium the tests skip, saying why, unless
``GENCOURSE_REQUIRE_BROWSER=1`` (set by .ci/run), where that is a failure.
"""

import base64
import io
import os
import shutil
from pathlib import Path

import nbformat
import pytest
from course_notebooks import code, course_notebook

from gencourse.export import export, export_slides

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser")


def _chromium() -> str | None:
    found = os.environ.get("GENCOURSE_CHROMIUM") or next(filter(None, map(shutil.which, CHROMIUM_CANDIDATES)), None)
    return found if found and Path(found).exists() else None


def _unavailable(reason: str):
    if os.environ.get("GENCOURSE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, but GENCOURSE_REQUIRE_BROWSER=1 (CI) needs the browser tests to run")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (it is in the test extra: pip install -e '.[test]')")
    executable = _chromium()
    if executable is None:
        _unavailable("Chromium is not installed (Debian: apt-get install chromium; or set GENCOURSE_CHROMIUM)")
    with sync_playwright() as playwright:
        # No sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        chromium = playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield chromium
        chromium.close()


class Visit:
    """One page opened in a fresh browser context, with every request checked and every console error kept."""

    def __init__(self, browser, path: Path, allowed: Path):
        self.requests, self.blocked, self.errors = [], [], []
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.page = self.context.new_page()
        root = allowed.resolve().as_uri() + "/"

        def route(route):
            url = route.request.url
            if url.startswith(root) or url.startswith("data:"):
                route.continue_()
            else:
                self.blocked.append(url)
                route.abort()

        self.page.route("**/*", route)
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_load_state("load")
        self.outside = [url for url in self.requests if not (url.startswith(root) or url.startswith("data:"))]

    def close(self):
        self.context.close()


@pytest.fixture
def visit(browser):
    visits = []

    def open_page(path: Path, allowed: Path) -> Visit:
        visits.append(Visit(browser, path, allowed))
        return visits[-1]

    yield open_page
    for v in visits:
        v.close()


def _figure_png() -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([0, 1, 2], [0, 1, 4])
    ax.set(title="a figure", xlabel="$x$", ylabel="$x^2$")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=60)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The synthetic lesson with outputs, as a deck and as a rendered page: a fragment that prints 200 lines
    (longer than a slide), a figure on a subslide of its own, math inline and displayed."""
    root = tmp_path_factory.mktemp("pages")
    nb = course_notebook()
    nb.cells[4].outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="".join(f"row {i}\n" for i in range(200)))
    ]
    figure = code("plt.plot([0, 1, 2], [0, 1, 4])\nplt.show()", "subslide")
    figure.outputs = [nbformat.v4.new_output("display_data", data={"image/png": _figure_png(), "text/plain": "fig"})]
    nb.cells.insert(5, figure)
    path = root / "00_demo.ipynb"
    nbformat.write(nb, path)
    export_slides(path, root / "slides")
    export(path, root / "html", "html", run=False)
    return root


RAW_MATH = """() => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
    acceptNode: (node) => node.parentElement.closest("pre, code, script, style, .katex, .katex-display")
      ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT,
  });
  const raw = [];
  while (walker.nextNode()) if (walker.currentNode.textContent.includes("$")) raw.push(walker.currentNode.textContent);
  return raw;
}"""
IMAGES = "() => Array.from(document.images).map(img => [img.src.slice(0, 22), img.complete && img.naturalWidth > 0])"


def _looks_right(visit: Visit):
    page = visit.page
    assert visit.blocked == [] and visit.outside == [], (
        f"requests leaving the machine: {visit.blocked or visit.outside}"
    )
    assert visit.errors == [], f"console errors: {visit.errors}"
    assert page.locator(".katex").count() >= 2, "KaTeX typeset no math"
    assert page.evaluate(RAW_MATH) == [], "math left as raw $...$"
    images = page.evaluate(IMAGES)
    assert images and all(loaded for _, loaded in images), f"images missing or broken: {images}"
    assert any(src.startswith("data:image/png") for src, _ in images)


def test_the_slide_deck_in_chromium(exported, visit):
    deck = visit(exported / "slides" / "00_demo.slides.html", exported / "slides")
    page = deck.page
    page.wait_for_function("window.Reveal && Reveal.isReady()")
    _looks_right(deck)
    assert page.evaluate("Reveal.getTotalSlides()") == 5  # title, 1 (and its figure subslide), 2, summary

    # The long output: on its slide, inside a box that scrolls, the box within the screen.
    output = page.locator(".jp-OutputArea-output", has_text="row 199")
    page.evaluate("el => { const i = Reveal.getIndices(el.closest('section')); Reveal.slide(i.h, i.v, 99); }",
                  output.element_handle())  # fmt: skip
    page.wait_for_timeout(500)  # the slide transition
    box = output.evaluate("el => [el.scrollHeight, el.clientHeight, el.getBoundingClientRect().bottom]")
    assert box[0] > 2 * box[1] and box[2] <= 800, f"the output does not scroll inside its slide: {box}"
    assert page.locator("text=torch.arange").count() == 0  # its code is not on the slide

    page.evaluate("Reveal.down()")  # the figure's subslide: the whole image on screen
    page.wait_for_timeout(500)
    rect = page.locator(".present img").evaluate("img => img.getBoundingClientRect().toJSON()")
    assert rect["width"] > 200 and rect["top"] >= 0 and rect["bottom"] <= 800, rect


def test_the_rendered_notebook_in_chromium(exported, visit):
    rendered = visit(exported / "html" / "00_demo.html", exported / "html")
    _looks_right(rendered)
    assert rendered.page.locator("pre", has_text="row 199").count() == 1


@pytest.mark.parametrize("kind", ["slides", "html"])
def test_the_index_pages_in_chromium(exported, visit, kind):
    index = visit(exported / kind / "index.html", exported / kind)
    assert index.blocked == [] and index.errors == []
    assert index.page.locator("a", has_text="00_demo").count() == 1


def test_the_checks_catch_what_they_look_for(tmp_path, visit):
    """Not vacuous: raw math, a broken image, a console error and a request to the web are each reported."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><body><p>Raw math: $x^2$</p>"
        '<img src="missing.png"><img src="https://example.org/figure.png">'
        '<script>console.error("boom")</script></body></html>'
    )
    broken = visit(page, tmp_path)
    assert broken.blocked == ["https://example.org/figure.png"]
    assert "boom" in broken.errors
    assert broken.page.evaluate(RAW_MATH) == ["Raw math: $x^2$"]
    assert [loaded for _, loaded in broken.page.evaluate(IMAGES)] == [False, False]
