"""Small synthetic course notebooks for the tests of the teaching tools (student edition, slides,
rendered pages, notebook conventions), and the list of the real ones in notebooks/.

``course_notebook()`` follows every convention of a real lesson: title cell with run times, the setup
cell with the Colab guard, numbered sections as slides, one exercise with its check cell.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import torch

import gencourse.exercises
from gencourse.config import colab_install_block
from gencourse.exercises import checker, expect_close

REPO = Path(__file__).resolve().parents[1]
REAL_NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))

TITLE = """# 0. Doubling numbers

A lesson that builds a function that doubles a tensor, to test the course tools.

Learning goals:
- write `double`;
- check it.

Prerequisites: none.

Run time: smoke about 5 s, lecture about 10 s, full: on a GPU, not measured yet."""

# The Colab block (it installs the course from where it is published, pyproject.toml's [project.urls]), then
# the imports, the seed and the one-line description every setup cell prints.
SETUP = (
    colab_install_block()
    + """
import torch

import gencourse
import gencourse.exercises

gencourse.seed_everything(0)
print(gencourse.describe())
profile = gencourse.profile()"""
)

EXERCISE = '''def double(x):
    """Return 2 x for a tensor x."""
    # BEGIN SOLUTION
    y = x + x
    return y
    # END SOLUTION'''

SOLUTION_LINES = ("y = x + x", "return y")
SECTION_TITLES = ("1. Doubling", "2. Your turn", "Summary")
CHECK = "gencourse.exercises.check_double(double)"


@checker
def check_double(student_fn):
    """The checker the synthetic notebook's check cell calls (installed by the ``course_checker`` fixture)."""
    x = torch.tensor([1.0, -2.0, 3.5])
    expect_close("double(x)", student_fn(x), 2 * x, hint="multiply by two")
    return "double(x) = 2 x."


def markdown(source: str, slide_type: str | None = None):
    cell = nbformat.v4.new_markdown_cell(source)
    if slide_type:
        cell.metadata["slideshow"] = {"slide_type": slide_type}
    return cell


def code(source: str, slide_type: str | None = None):
    cell = nbformat.v4.new_code_cell(source)
    if slide_type:
        cell.metadata["slideshow"] = {"slide_type": slide_type}
    return cell


def course_notebook():
    """A notebook that meets every convention (cells: title, setup, 2 sections, exercise, summary)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        markdown(TITLE, "slide"),
        code(SETUP),
        markdown("## 1. Doubling\n\nWhy: doubling is the simplest linear map.", "slide"),
        markdown("The equation: $y = 2x$, or in display\n\n$$y_i = 2 x_i \\quad \\text{for all } i.$$", "fragment"),
        code("x = torch.arange(4.0)\ny = 2 * x\nassert torch.equal(y, torch.tensor([0.0, 2.0, 4.0, 6.0]))", "fragment"),
        markdown("## 2. Your turn\n\nWrite `double`.", "slide"),
        code(EXERCISE),
        code(CHECK),
        markdown(
            "## Summary\n\nWe doubled numbers. Further reading: [a paper](https://arxiv.org/abs/1312.6114) (2013).",
            "slide",
        ),
    ]
    return nb


def install_checker(monkeypatch) -> None:
    """Make ``gencourse.exercises.check_double`` exist for the duration of one test."""
    monkeypatch.setattr(gencourse.exercises, "check_double", check_double, raising=False)


def first_code_cell(nb) -> int:
    return next(i for i, cell in enumerate(nb.cells) if cell.cell_type == "code")


def run_cells(nb, indices, namespace: dict | None = None) -> dict:
    """Execute the code cells ``indices`` of ``nb`` in this process, in one namespace, as a kernel would."""
    from IPython.core.inputtransformer2 import TransformerManager

    namespace = {"__name__": "__main__"} if namespace is None else namespace
    for index in indices:
        source = TransformerManager().transform_cell(nb.cells[index].source)
        exec(compile(source, f"<cell {index + 1}>", "exec"), namespace)
    return namespace
