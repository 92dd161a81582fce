"""The student edition of the notebooks: every reference answer replaced by a "your turn" stub.

    python -m gencourse.student notebooks/ student/           # every notebook in the folder
    python -m gencourse.student notebooks/04_vae_basics.ipynb student/
    python -m gencourse.student --list notebooks/             # the exercises, as a markdown table

In the repository (the solution edition, the one CI runs) each exercise's reference answer sits between
two marker lines::

    def gaussian_kl(mu, logvar):
        # BEGIN SOLUTION
        return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(dim=1)
        # END SOLUTION

The student edition keeps every other line and puts, at the indentation of the ``# BEGIN SOLUTION``
line, ::

        raise NotImplementedError("your turn: replace this line with your code, then run the check cell below")

so the check cell that follows (``gencourse.exercises.check_<name>(fn)``, built with
:func:`gencourse.exercises.checker`) answers "`gaussian_kl` is not written yet ..." instead of failing
somewhere later. Outputs and execution counts are stripped. Markers must come in pairs inside one code
cell, never nested; anything else is a :class:`SolutionMarkerError` that names the notebook and cell.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

BEGIN = re.compile(r"^(?P<indent>[ \t]*)#\s*BEGIN SOLUTION\b")
END = re.compile(r"^[ \t]*#\s*END SOLUTION\b")
STUB = 'raise NotImplementedError("your turn: replace this line with your code, then run the check cell below")'
CHECK_CALL = re.compile(r"\b(?:gencourse\.)?exercises\.(check_\w+)\s*\(")
DEFINITION = re.compile(r"^(?:def|class)\s+(\w+)", re.MULTILINE)


class SolutionMarkerError(ValueError):
    """The ``# BEGIN SOLUTION`` / ``# END SOLUTION`` markers of a cell do not pair up."""


@dataclass(frozen=True)
class Exercise:
    """One "Your turn" exercise: the cell holding the reference answer and the check cell after it."""

    notebook: str
    cell: int  # index of the exercise cell in ``nb.cells``
    functions: tuple[str, ...]  # what the exercise cell defines at top level
    checkers: tuple[str, ...]  # the ``check_*`` names the next code cell calls (empty if none)
    check_cell: int | None  # index of the next code cell, None when the exercise cell is the last one


def _where(notebook: str, index: int, cell) -> str:
    cell_id = cell.get("id")
    return f"{notebook}, cell {index + 1}" + (f" (id {cell_id!r})" if cell_id else "")


def solution_blocks(source: str, where: str = "this cell") -> list[tuple[int, int, str]]:
    """The solution blocks of one cell's ``source`` as ``(begin_line, end_line, indent)``, 0-based and
    inclusive of the marker lines. Raises :class:`SolutionMarkerError` on an unbalanced or nested marker."""
    blocks, open_at, indent = [], None, ""
    lines = source.splitlines()
    for number, line in enumerate(lines):
        begin = BEGIN.match(line)
        if begin and open_at is not None:
            raise SolutionMarkerError(
                f"{where}, line {number + 1}: '# BEGIN SOLUTION' inside the block opened on line {open_at + 1}; "
                "solution blocks cannot be nested: close the first one with '# END SOLUTION'"
            )
        if begin:
            open_at, indent = number, begin.group("indent")
        elif END.match(line):
            if open_at is None:
                raise SolutionMarkerError(
                    f"{where}, line {number + 1}: '# END SOLUTION' without a '# BEGIN SOLUTION' above it"
                )
            blocks.append((open_at, number, indent))
            open_at = None
    if open_at is not None:
        raise SolutionMarkerError(
            f"{where}, line {open_at + 1}: '# BEGIN SOLUTION' is never closed; add '# END SOLUTION' after the "
            "reference answer, in the same cell"
        )
    return blocks


def strip_solutions(source: str, where: str = "this cell") -> str:
    """``source`` with every solution block replaced by the "your turn" stub at the block's indentation."""
    blocks = solution_blocks(source, where)
    if not blocks:
        return source
    lines = source.splitlines()
    out, start = [], 0
    for begin, end, indent in blocks:
        out += lines[start:begin] + [indent + STUB]
        start = end + 1
    out += lines[start:]
    return "\n".join(out)


def _check_python(source: str, where: str) -> None:
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        compile(TransformerManager().transform_cell(source), where, "exec")
    except SyntaxError as exc:
        raise SolutionMarkerError(
            f"{where}: the student edition of this cell is not valid Python ({exc.msg}, line {exc.lineno}); "
            "put '# BEGIN SOLUTION' at the indentation of the code it replaces"
        ) from None


def clear_outputs(nb) -> None:
    """Strip outputs, execution counts, execution timings and stored widget state, in place."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)


def student_notebook(nb, name: str = "notebook"):
    """A copy of ``nb`` with solutions replaced by stubs and outputs stripped (``nb`` is not changed)."""
    nb = copy.deepcopy(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        where = _where(name, index, cell)
        stripped = strip_solutions(cell.source, where)
        if stripped != cell.source:
            _check_python(stripped, where)
            cell.source = stripped
    clear_outputs(nb)
    return nb


def exercises(nb, name: str = "notebook") -> list[Exercise]:
    """The exercises of ``nb``: each code cell with a solution block, and what its check cell calls."""
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    found = []
    for position, index in enumerate(code):
        cell = nb.cells[index]
        if not solution_blocks(cell.source, _where(name, index, cell)):
            continue
        check_cell = code[position + 1] if position + 1 < len(code) else None
        checkers = tuple(CHECK_CALL.findall(nb.cells[check_cell].source)) if check_cell is not None else ()
        found.append(Exercise(name, index, tuple(DEFINITION.findall(cell.source)), checkers, check_cell))
    return found


def notebook_paths(src: Path) -> list[Path]:
    """``src`` itself if it is a notebook, else the notebooks directly inside the folder ``src``, sorted."""
    src = Path(src)
    if src.is_file():
        if src.suffix != ".ipynb":
            raise ValueError(f"{src} is not a notebook (.ipynb)")
        return [src]
    if not src.is_dir():
        raise FileNotFoundError(f"{src} does not exist: give a notebook or a folder of notebooks")
    paths = sorted(src.glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no notebooks (*.ipynb) in {src}")
    return paths


def write_student_edition(src: Path, dest: Path) -> list[tuple[Path, int]]:
    """Write the student edition of ``src`` (a notebook or a folder) into ``dest`` (a folder, or a
    ``.ipynb`` path when ``src`` is one notebook). Returns ``(written path, number of exercises)`` pairs.
    Every notebook is checked before anything is written, so a marker error leaves ``dest`` untouched."""
    paths = notebook_paths(src)
    dest = Path(dest)
    single_file = dest.suffix == ".ipynb"
    if single_file and len(paths) > 1:
        raise ValueError(f"{src} holds {len(paths)} notebooks: give a folder as the destination, not {dest}")
    editions = []
    for path in paths:
        target = dest if single_file else dest / path.name
        if target.resolve() == path.resolve():
            raise ValueError(f"the student edition of {path} would overwrite it: choose another destination")
        nb = nbformat.read(path, as_version=4)
        editions.append((target, student_notebook(nb, path.name), len(exercises(nb, path.name))))
    written = []
    for target, nb, count in editions:
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
        written.append((target, count))
    return written


def exercise_table(paths: list[Path]) -> str:
    """A markdown table of every exercise: notebook, what the student writes, which checker grades it."""
    rows = ["| notebook | you write | checked by |", "| --- | --- | --- |"]
    for path in paths:
        for ex in exercises(nbformat.read(path, as_version=4), path.name):
            rows.append(
                f"| `{path.stem}` | {', '.join(f'`{f}`' for f in ex.functions) or '(a code block)'} | "
                f"{', '.join(f'`{c}`' for c in ex.checkers) or '(no check cell)'} |"
            )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gencourse.student", description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path, help="a notebook, or a folder of notebooks (e.g. notebooks/)")
    parser.add_argument("dest", type=Path, nargs="?", help="output folder (or .ipynb path for one notebook)")
    parser.add_argument("--list", action="store_true", help="print the exercises as a markdown table instead")
    args = parser.parse_args(argv)
    try:
        if args.list:
            print(exercise_table(notebook_paths(args.src)))
            return 0
        if args.dest is None:
            parser.error("give a destination folder, e.g. student/")
        for target, count in write_student_edition(args.src, args.dest):
            print(f"{target}: {count} exercise{'s' if count != 1 else ''} left for the student")
    except (ValueError, OSError) as exc:  # SolutionMarkerError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
