"""The student edition of the notebooks: every reference answer replaced by a "your turn" stub.

    python -m gencourse.student notebooks/ student/           # every notebook in the folder
    python -m gencourse.student notebooks/04_vae_basics.ipynb student/
    python -m gencourse.student --list notebooks/             # the exercises, as a markdown table
    python -m gencourse.student notebooks/ student/ --force   # also replace notebooks students changed
    python -m gencourse.student --nbgrader notebooks/         # mark the exercises for nbgrader, in place

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
Markers are matched whatever their case and spacing (``# begin  solution`` works too); a line that only
looks like one (``# BEGIN SOLUTIONS``, ``## BEGIN SOLUTION``, ``# BEGIN_SOLUTION``, a marker after code...)
is an error as well, so a mistyped marker never leaks a reference answer into the student edition.

Running the command again never loses a student's work: a notebook in the destination that differs from
the edition it would write (a student's answers, or an edition made from older notebooks) is kept and
reported, and the command exits with status 1; ``--force`` replaces such notebooks. New notebooks are
written, identical ones left alone.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

BEGIN = re.compile(r"^(?P<indent>[ \t]*)#\s*BEGIN\s+SOLUTION\b", re.IGNORECASE)
END = re.compile(r"^[ \t]*#\s*END\s+SOLUTION\b", re.IGNORECASE)
# What a mistyped marker looks like: a comment with BEGIN/END/START/STOP then SOLUTION, in any case or spacing.
NEAR_MISS = re.compile(r"#.*\b(?:BEGIN|END|START|STOP)[\W_]*SOLUTION", re.IGNORECASE)
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
        begin, end = BEGIN.match(line), END.match(line)
        if not begin and not end and NEAR_MISS.search(line):
            raise SolutionMarkerError(
                f"{where}, line {number + 1}: {line.strip()!r} looks like a solution marker but is not one, so its "
                "solution would stay in the student edition; write '# BEGIN SOLUTION' or '# END SOLUTION' alone "
                "on its line, at the indentation of the code, or reword the comment"
            )
        if begin and open_at is not None:
            raise SolutionMarkerError(
                f"{where}, line {number + 1}: '# BEGIN SOLUTION' inside the block opened on line {open_at + 1}; "
                "solution blocks cannot be nested: close the first one with '# END SOLUTION'"
            )
        if begin:
            open_at, indent = number, begin.group("indent")
        elif end:
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


# nbgrader (https://nbgrader.readthedocs.io) reads the same markers; with this configuration its student
# version of a notebook has the same code as this module's, and it runs the check cells to grade them.
NBGRADER_CONFIG = """\
from gencourse.student import STUB

c = get_config()  # noqa: F821 (nbgrader defines it)
c.ClearSolutions.code_stub = {"python": STUB}  # the "your turn" line of python -m gencourse.student
c.Execute.timeout = 1800  # seconds a cell may take while grading (nbgrader's default is 30)
"""
NBGRADER_MARKER = re.compile(r"^[ \t]*# (BEGIN|END) SOLUTION$")  # nbgrader matches the words exactly, in capitals


def nbgrader_metadata(nb, name: str = "notebook", points: int = 1) -> dict[int, dict]:
    """The nbgrader metadata of ``nb``'s exercises, by cell index: each exercise cell an autograded answer
    (its solution blocks are what nbgrader clears) and each check cell an autograded test worth ``points``,
    which scores them when it runs without an error. Marker lines must be written exactly
    ``# BEGIN SOLUTION`` / ``# END SOLUTION``, the only spelling nbgrader finds."""
    cells, ids = {}, set()

    def unique(grade_id: str) -> str:
        candidate, n = grade_id, 1
        while candidate in ids:
            n += 1
            candidate = f"{grade_id}_{n}"
        ids.add(candidate)
        return candidate

    for number, ex in enumerate(exercises(nb, name), start=1):
        cell = nb.cells[ex.cell]
        lines = cell.source.splitlines()
        for begin, end, _ in solution_blocks(cell.source):
            for line in (begin, end):
                if not NBGRADER_MARKER.match(lines[line]):
                    raise SolutionMarkerError(
                        f"{_where(name, ex.cell, cell)}, line {line + 1}: nbgrader only finds solution markers "
                        f"written exactly '# BEGIN SOLUTION' / '# END SOLUTION', not {lines[line].strip()!r}"
                    )
        common = {"schema_version": 3, "task": False}
        answer = ex.functions[0] if ex.functions else f"exercise_{number}"
        cells[ex.cell] = {"grade": False, "grade_id": unique(answer), "locked": False, "solution": True, **common}
        if ex.checkers:
            cells[ex.check_cell] = {
                "grade": True,
                "grade_id": unique(ex.checkers[0]),
                "locked": True,
                "points": points,
                "solution": False,
                **common,
            }
    return cells


def mark_for_nbgrader(nb, name: str = "notebook", points: int = 1) -> bool:
    """Give ``nb``'s exercise and check cells their nbgrader metadata (:func:`nbgrader_metadata`) and
    remove it from every other cell, in place. Running it again changes nothing; returns whether it
    changed ``nb``."""
    wanted, changed = nbgrader_metadata(nb, name, points), False
    for index, cell in enumerate(nb.cells):
        if cell.metadata.get("nbgrader") != wanted.get(index):
            changed = True
            if index in wanted:
                cell.metadata["nbgrader"] = wanted[index]
            else:
                cell.metadata.pop("nbgrader")
    return changed


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


def read_notebook(path: Path):
    """``nbformat.read`` with the file's name in the error when it is not a notebook."""
    try:
        return nbformat.read(path, as_version=4)
    except OSError:
        raise
    except Exception as exc:  # NotJSONError, a JSON or schema error...: all mean "not a notebook"
        raise ValueError(f"{path} is not a readable notebook ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class Written:
    """What :func:`write_student_edition` did with one notebook."""

    path: Path  # the student edition's path
    source: Path  # the solution notebook it comes from
    exercises: int
    status: str  # "new", "unchanged" (already identical), "overwritten" (differed; --force) or "kept" (differed)


def _edition_bytes(nb) -> bytes:
    text = nbformat.writes(nb)
    return (text if text.endswith("\n") else text + "\n").encode("utf-8")  # what nbformat.write puts on disk


def _write_atomically(target: Path, content: bytes) -> None:
    """Write through a temporary file in the same folder, so an interrupted write never leaves half a notebook."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")  # created with the usual permissions (umask)
    try:
        tmp.write_bytes(content)
        if target.exists():
            shutil.copymode(target, tmp)  # an overwritten notebook keeps its permissions
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_student_edition(src: Path, dest: Path, force: bool = False) -> list[Written]:
    """Write the student edition of ``src`` (a notebook or a folder) into ``dest`` (a folder, or a
    ``.ipynb`` path when ``src`` is one notebook), and say what happened to each notebook.

    A notebook already in ``dest`` that differs from the edition to write (a student's work) is kept
    (status ``"kept"``) unless ``force``; one identical to it is left alone. Every notebook is read and
    checked before anything is written, so a marker error leaves ``dest`` untouched."""
    paths = notebook_paths(src)
    dest = Path(dest)
    single_file = dest.suffix == ".ipynb"
    if single_file and len(paths) > 1:
        raise ValueError(f"{src} holds {len(paths)} notebooks: give a folder as the destination, not {dest}")
    plan = []
    for path in paths:
        target = dest if single_file else dest / path.name
        if target.resolve() == path.resolve() or (target.exists() and os.path.samefile(target, path)):
            raise ValueError(f"the student edition of {path} would overwrite it: choose another destination")
        nb = read_notebook(path)
        content = _edition_bytes(student_notebook(nb, path.name))
        if not target.exists():
            status = "new"
        elif target.read_bytes().replace(b"\r\n", b"\n") == content:
            status = "unchanged"
        else:
            status = "overwritten" if force else "kept"
        plan.append((Written(target, path, len(exercises(nb, path.name)), status), content))
    for written, content in plan:
        if written.status in ("new", "overwritten"):
            _write_atomically(written.path, content)
    return [written for written, _ in plan]


def exercise_table(paths: list[Path]) -> str:
    """A markdown table of every exercise: notebook, what the student writes, which checker grades it."""
    rows = ["| notebook | you write | checked by |", "| --- | --- | --- |"]
    for path in paths:
        for ex in exercises(read_notebook(path), path.name):
            rows.append(
                f"| `{path.stem}` | {', '.join(f'`{f}`' for f in ex.functions) or '(a code block)'} | "
                f"{', '.join(f'`{c}`' for c in ex.checkers) or '(no check cell)'} |"
            )
    return "\n".join(rows)


def _report(results: list[Written]) -> int:
    """Print what happened to each notebook; 1 when some were kept, else 0."""
    notes = {"new": "", "unchanged": " (unchanged)", "overwritten": " (overwritten, --force)"}
    for w in results:
        if w.status != "kept":
            count = f"{w.exercises} exercise{'s' if w.exercises != 1 else ''}"
            print(f"{w.path}: {count} left for the student{notes[w.status]}")
    kept = [w for w in results if w.status == "kept"]
    for w in kept:
        print(
            f"kept {w.path}: it differs from the student edition of {w.source} (a student's answers, or an edition "
            "of older notebooks), so it was not overwritten",
            file=sys.stderr,
        )
    if len(kept) == 1:
        it, its, was = "it", "its", "1 notebook kept as it was"
    else:
        it, its, was = "them", "their", f"{len(kept)} notebooks kept as they were"
    if kept:
        print(
            f"{was}. To replace {it} with the new student edition (losing {its} changes), rerun with --force; "
            f"to keep {it} and get the new edition too, rename or move {it} first, or write into another folder.",
            file=sys.stderr,
        )
    return 1 if kept else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gencourse.student", description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path, help="a notebook, or a folder of notebooks (e.g. notebooks/)")
    parser.add_argument("dest", type=Path, nargs="?", help="output folder (or .ipynb path for one notebook)")
    parser.add_argument("--list", action="store_true", help="print the exercises as a markdown table instead")
    parser.add_argument(
        "--nbgrader", action="store_true", help="mark the exercises of SRC for nbgrader, in place (no DEST)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace notebooks in the destination that differ from the new edition (a student's answers are lost)",
    )
    args = parser.parse_args(argv)
    try:
        if args.list:
            print(exercise_table(notebook_paths(args.src)))
            return 0
        if args.nbgrader:
            for path in notebook_paths(args.src):
                nb = read_notebook(path)
                if mark_for_nbgrader(nb, path.name):
                    _write_atomically(path, _edition_bytes(nb))
                print(f"{path}: {len(exercises(nb, path.name))} exercises marked for nbgrader")
            return 0
        if args.dest is None:
            parser.error("give a destination folder, e.g. student/")
        return _report(write_student_edition(args.src, args.dest, force=args.force))
    except (ValueError, OSError) as exc:  # SolutionMarkerError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
