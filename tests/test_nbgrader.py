"""nbgrader-ready exercises: the exercise cells carry nbgrader's metadata, and nbgrader's own
``generate_assignment`` and ``autograde`` produce the course's student edition and grade the check cells."""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from course_notebooks import REPO, course_notebook, install_checker

from gencourse.student import (
    NBGRADER_CONFIG,
    STUB,
    SolutionMarkerError,
    main,
    mark_for_nbgrader,
    nbgrader_metadata,
    student_notebook,
)

# The synthetic lesson with an exercise the package can check in a kernel of its own (check_double
# exists only inside this test process): the KL of notebook 04.
ANSWER = "return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(dim=1)"
WRONG = "return -0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(dim=1)"  # the sign flipped
EXERCISE = f'''def my_gaussian_kl(mu, logvar):
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per example: [B, D], [B, D] -> [B]."""
    # BEGIN SOLUTION
    {ANSWER}
    # END SOLUTION'''


def kl_lesson():
    nb = course_notebook()
    nb.cells[6].source = EXERCISE
    nb.cells[7].source = "gencourse.exercises.check_gaussian_kl(my_gaussian_kl)"
    return nb


def test_exercise_and_check_cells_get_nbgrader_metadata_once():
    nb = kl_lesson()
    assert mark_for_nbgrader(nb, "00_demo.ipynb") is True
    marked = {i: c.metadata["nbgrader"] for i, c in enumerate(nb.cells) if "nbgrader" in c.metadata}
    assert marked == {
        6: {"grade": False, "grade_id": "my_gaussian_kl", "locked": False, "solution": True, "schema_version": 3,
            "task": False},
        7: {"grade": True, "grade_id": "check_gaussian_kl", "locked": True, "points": 1, "solution": False,
            "schema_version": 3, "task": False},
    }  # fmt: skip
    assert mark_for_nbgrader(nb, "00_demo.ipynb") is False  # idempotent
    nb.cells[4].metadata["nbgrader"] = {"grade": True, "grade_id": "old", "points": 2}  # a cell that no longer is one
    assert mark_for_nbgrader(nb, "00_demo.ipynb") is True and "nbgrader" not in nb.cells[4].metadata
    assert "nbgrader" in student_notebook(nb).cells[7].metadata  # the student edition keeps it


def test_the_metadata_passes_nbgraders_own_validation():
    validator = pytest.importorskip("nbgrader.nbgraderformat", reason="nbgrader is not installed").MetadataValidator
    nb = kl_lesson()
    nb.cells.insert(8, nbformat.v4.new_code_cell(EXERCISE.replace("my_gaussian_kl", "kl_again", 1)))
    nb.cells.insert(9, nbformat.v4.new_code_cell("gencourse.exercises.check_gaussian_kl(kl_again)"))
    mark_for_nbgrader(nb, "00_demo.ipynb")
    assert nb.cells[9].metadata["nbgrader"]["grade_id"] == "check_gaussian_kl_2"  # grade ids are unique
    validator().validate_nb(nb)


@pytest.mark.parametrize("marker", ["    # begin solution", "    #BEGIN SOLUTION", "    # BEGIN SOLUTION  "])
def test_markers_nbgrader_would_not_find_are_refused(marker):
    nb = kl_lesson()
    nb.cells[6].source = EXERCISE.replace("    # BEGIN SOLUTION", marker)
    with pytest.raises(SolutionMarkerError, match=r"00_demo.ipynb, cell 7.*line 3: nbgrader only finds"):
        nbgrader_metadata(nb, "00_demo.ipynb")


def test_the_command_marks_notebooks_in_place(tmp_path, capsys, monkeypatch):
    install_checker(monkeypatch)
    path = tmp_path / "00_demo.ipynb"
    nbformat.write(course_notebook(), path)
    assert main(["--nbgrader", str(tmp_path)]) == 0
    assert f"{path}: 1 exercises marked for nbgrader" in capsys.readouterr().out
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[6].metadata["nbgrader"]["solution"] and nb.cells[7].metadata["nbgrader"]["points"] == 1
    before = path.stat().st_mtime_ns
    assert main(["--nbgrader", str(path)]) == 0 and path.stat().st_mtime_ns == before  # nothing to change


def test_the_nbgrader_configuration_is_the_documented_one():
    assert NBGRADER_CONFIG in (REPO / "docs" / "teaching.md").read_text()


def _nbgrader(root: Path, *args: str) -> None:
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(root / ".jupyter")}  # no user configuration
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args, "--force"], cwd=root, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_nbgrader_generates_the_student_edition_and_grades_right_and_wrong_answers(tmp_path):
    pytest.importorskip("nbgrader", reason="nbgrader is not installed (it is in the test extra)")
    from nbgrader.api import Gradebook

    root = tmp_path / "course"
    (root / "source" / "ps1").mkdir(parents=True)
    (root / "nbgrader_config.py").write_text(NBGRADER_CONFIG)
    nb = kl_lesson()
    mark_for_nbgrader(nb, "00_demo.ipynb")
    nbformat.write(nb, root / "source" / "ps1" / "00_demo.ipynb")

    _nbgrader(root, "generate_assignment", "ps1")
    released = nbformat.read(root / "release" / "ps1" / "00_demo.ipynb", as_version=4)
    ours = student_notebook(nb, "00_demo.ipynb")
    assert [c.source for c in released.cells if c.cell_type == "code"] == [
        c.source for c in ours.cells if c.cell_type == "code"
    ]
    assert STUB in released.cells[6].source and ANSWER not in released.cells[6].source

    for student, answer in [("right", ANSWER), ("wrong", WRONG)]:
        submission = nbformat.read(root / "release" / "ps1" / "00_demo.ipynb", as_version=4)
        submission.cells[6].source = submission.cells[6].source.replace(STUB, answer)
        (root / "submitted" / student / "ps1").mkdir(parents=True)
        nbformat.write(submission, root / "submitted" / student / "ps1" / "00_demo.ipynb")
    _nbgrader(root, "autograde", "ps1")

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        scores = {
            student: (sub.score, sub.max_score)
            for student in ("right", "wrong")
            for sub in [gradebook.find_submission_notebook("00_demo", "ps1", student)]
        }
    assert scores == {"right": (1.0, 1.0), "wrong": (0.0, 1.0)}
    graded = nbformat.read(root / "autograded" / "wrong" / "ps1" / "00_demo.ipynb", as_version=4)
    assert "the sign is flipped" in graded.cells[7].outputs[-1].evalue  # the checker's message, as feedback
