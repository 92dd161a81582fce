"""The student edition: solutions replaced by "your turn" stubs that the exercise checkers recognise."""

import nbformat
import pytest
from course_notebooks import (
    EXERCISE,
    REAL_NOTEBOOKS,
    SOLUTION_LINES,
    course_notebook,
    first_code_cell,
    install_checker,
    run_cells,
)

from gencourse.exercises import ExerciseError
from gencourse.student import (
    STUB,
    SolutionMarkerError,
    exercise_table,
    exercises,
    main,
    strip_solutions,
    student_notebook,
)


def with_outputs(nb):
    for number, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        cell.execution_count = number + 1
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="printed\n")]
        cell.metadata["execution"] = {"iopub.status.busy": "2024-01-01T00:00:00Z"}
    return nb


def test_stub_keeps_the_indentation_and_the_code_around_the_block():
    source = "def f(x):\n    a = 1\n    # BEGIN SOLUTION\n    return a * x\n    # END SOLUTION\n\n\nprint(f)"
    assert strip_solutions(source) == f"def f(x):\n    a = 1\n    {STUB}\n\n\nprint(f)"


def test_several_blocks_in_one_cell_are_each_replaced():
    source = (
        "# BEGIN SOLUTION\nbeta = 0.5\n# END SOLUTION\n"
        "for i in range(2):\n    # BEGIN SOLUTION\n    beta += i\n    # END SOLUTION\n"
    )
    assert strip_solutions(source) == f"{STUB}\nfor i in range(2):\n    {STUB}"


@pytest.mark.parametrize(
    "source, problem",
    [
        ("x = 1\n# BEGIN SOLUTION\nx = 2\n", "line 2: '# BEGIN SOLUTION' is never closed"),
        ("x = 1\n# END SOLUTION\n", "line 2: '# END SOLUTION' without a '# BEGIN SOLUTION'"),
        (
            "# BEGIN SOLUTION\n# BEGIN SOLUTION\nx = 2\n# END SOLUTION\n# END SOLUTION",
            "line 2: '# BEGIN SOLUTION' inside the block opened on line 1",
        ),
    ],
)
def test_unbalanced_or_nested_markers_name_the_notebook_and_cell(source, problem):
    nb = course_notebook()
    nb.cells[6].source = source
    with pytest.raises(SolutionMarkerError) as info:
        student_notebook(nb, "03_example.ipynb")
    assert f"03_example.ipynb, cell 7 (id {nb.cells[6].id!r}), {problem}" in str(info.value)


def test_a_block_whose_stub_would_not_be_python_is_refused():
    nb = course_notebook()
    nb.cells[6].source = "for i in range(3):\n# BEGIN SOLUTION\n    y = i\n# END SOLUTION\n"
    with pytest.raises(SolutionMarkerError, match="cell 7.*not valid Python"):
        student_notebook(nb, "x.ipynb")


def test_command_writes_a_student_edition_without_solutions_or_outputs(tmp_path, capsys):
    source = with_outputs(course_notebook())
    (tmp_path / "notebooks").mkdir()
    nbformat.write(source, tmp_path / "notebooks" / "00_demo.ipynb")
    assert main([str(tmp_path / "notebooks"), str(tmp_path / "student")]) == 0
    assert "00_demo.ipynb: 1 exercise left for the student" in capsys.readouterr().out
    edition = nbformat.read(tmp_path / "student" / "00_demo.ipynb", as_version=4)
    text = "\n".join(cell.source for cell in edition.cells)
    assert "SOLUTION" not in text and not any(line in text for line in SOLUTION_LINES)
    assert edition.cells[6].source == f'def double(x):\n    """Return 2 x for a tensor x."""\n    {STUB}'
    for before, after in zip(source.cells, edition.cells):  # everything else is untouched
        assert after.source == before.source or before.source == EXERCISE
    code = [cell for cell in edition.cells if cell.cell_type == "code"]
    assert all(
        cell.outputs == [] and cell.execution_count is None and "execution" not in cell.metadata for cell in code
    )
    assert source.cells[1].outputs, "the solution edition itself is not changed"


def test_command_accepts_one_notebook_and_refuses_to_overwrite_it(tmp_path, capsys):
    path = tmp_path / "04_demo.ipynb"
    nbformat.write(course_notebook(), path)
    assert main([str(path), str(tmp_path / "out.ipynb")]) == 0
    assert "SOLUTION" not in (tmp_path / "out.ipynb").read_text()
    assert main([str(path), str(tmp_path / "student")]) == 0
    assert (tmp_path / "student" / "04_demo.ipynb").exists()
    assert main([str(path), str(path)]) == 1
    assert "would overwrite it" in capsys.readouterr().err
    assert "BEGIN SOLUTION" in path.read_text()


def test_command_reports_marker_errors_and_writes_nothing(tmp_path, capsys):
    good, bad = course_notebook(), course_notebook()
    bad.cells[6].source = "# BEGIN SOLUTION\nx = 1\n"
    nbformat.write(good, tmp_path / "01_good.ipynb")
    nbformat.write(bad, tmp_path / "02_bad.ipynb")
    assert main([str(tmp_path), str(tmp_path / "student")]) == 1
    assert "error: 02_bad.ipynb, cell 7" in capsys.readouterr().err
    assert not (tmp_path / "student").exists()


def test_exercise_list(tmp_path):
    nbformat.write(course_notebook(), tmp_path / "05_demo.ipynb")
    (ex,) = exercises(course_notebook(), "05_demo.ipynb")
    assert (ex.cell, ex.functions, ex.checkers, ex.check_cell) == (6, ("double",), ("check_double",), 7)
    assert exercise_table([tmp_path / "05_demo.ipynb"]).splitlines()[-1] == "| `05_demo` | `double` | `check_double` |"


def run_exercise(nb, ex):
    """The setup cell, the exercise cell and its check cell, in one namespace: what a student runs after
    jumping to the exercise from a fresh kernel."""
    return run_cells(nb, [first_code_cell(nb), ex.cell, ex.check_cell])


def check_both_editions(solution, name: str, capsys) -> int:
    """Every exercise passes its checker as solved and gets "not written yet" in the student edition.
    Returns the number of exercises."""
    found = exercises(solution, name)
    student = student_notebook(solution, name)
    for ex in found:
        try:
            run_exercise(solution, ex)
        except NameError as exc:
            pytest.fail(
                f"{name}: exercise cell {ex.cell + 1} or its check uses {exc.name!r} from a cell other than the "
                "setup cell; pass it to the checker or define it in the exercise cell"
            )
        assert "Correct!" in capsys.readouterr().out, f"{name} cell {ex.check_cell + 1}: the reference answer fails"
        with pytest.raises(ExerciseError) as info:
            run_exercise(student, ex)
        assert "is not written yet: replace the `raise NotImplementedError` line" in str(info.value)
        assert "your turn" in str(info.value)
    return len(found)


@pytest.mark.parametrize("path", ["synthetic"] + REAL_NOTEBOOKS, ids=lambda p: getattr(p, "stem", p))
def test_exercises_pass_as_solved_and_say_not_written_yet_as_student(path, monkeypatch, capsys):
    if path == "synthetic":  # always runs, so this test never passes on an empty notebooks/ folder
        install_checker(monkeypatch)
        assert check_both_editions(course_notebook(), "00_demo.ipynb", capsys) == 1
    elif not check_both_editions(nbformat.read(path, as_version=4), path.name, capsys):
        pytest.skip(f"{path.name} has no exercises")


def test_an_exercise_that_needs_an_earlier_cell_is_reported(monkeypatch, capsys):
    install_checker(monkeypatch)
    nb = course_notebook()
    nb.cells[6].source = nb.cells[6].source.replace("y = x + x", "y = x * factor")
    with pytest.raises(pytest.fail.Exception, match="uses 'factor' from a cell other than the setup cell"):
        check_both_editions(nb, "00_demo.ipynb", capsys)


def test_the_message_names_the_function(monkeypatch):
    install_checker(monkeypatch)
    solution = course_notebook()
    (ex,) = exercises(solution)
    with pytest.raises(ExerciseError, match="^`double` is not written yet"):
        run_exercise(student_notebook(solution), ex)


# ---------------------------------------------------------------------------------------------
# Markers in another case, and near-misses that would leak a solution
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "begin, end",
    [
        ("# begin solution", "# end solution"),
        ("# Begin Solution", "#End  Solution"),
        ("#BEGIN SOLUTION", "# END SOLUTION"),
    ],
)
def test_markers_in_another_case_or_spacing_are_stripped_like_the_usual_ones(begin, end):
    source = f"def f(x):\n    a = 1\n    {begin}\n    return a * x\n    {end}\n\n\nprint(f)"
    assert strip_solutions(source) == f"def f(x):\n    a = 1\n    {STUB}\n\n\nprint(f)"
    nb = course_notebook()
    nb.cells[6].source = nb.cells[6].source.replace("# BEGIN SOLUTION", begin).replace("# END SOLUTION", end)
    student = student_notebook(nb, "x.ipynb")
    assert student.cells[6].source == student_notebook(course_notebook(), "x.ipynb").cells[6].source
    assert not any(line in student.cells[6].source for line in SOLUTION_LINES)
    assert len(exercises(nb, "x.ipynb")) == 1


@pytest.mark.parametrize(
    "marker",
    [
        "# BEGIN SOLUTIONS",
        "# BEGIN_SOLUTION",
        "## BEGIN SOLUTION",
        "#BEGIN-SOLUTION",
        "# START SOLUTION",
        "y = 0  # BEGIN SOLUTION",
    ],
)
def test_a_near_miss_of_a_marker_is_refused_instead_of_leaking_the_solution(marker, tmp_path, capsys):
    nb = course_notebook()
    nb.cells[6].source = nb.cells[6].source.replace("# BEGIN SOLUTION", marker)
    with pytest.raises(SolutionMarkerError) as info:
        student_notebook(nb, "03_example.ipynb")
    message = str(info.value)
    assert f"03_example.ipynb, cell 7 (id {nb.cells[6].id!r}), line 3: {marker.strip()!r}" in message
    assert "looks like a solution marker" in message and "'# BEGIN SOLUTION'" in message
    # the command stops before writing anything
    nbformat.write(nb, tmp_path / "03_example.ipynb")
    assert main([str(tmp_path / "03_example.ipynb"), str(tmp_path / "student")]) == 1
    assert "03_example.ipynb, cell 7" in capsys.readouterr().err
    assert not (tmp_path / "student").exists()


# ---------------------------------------------------------------------------------------------
# Running the command again never loses a student's work
# ---------------------------------------------------------------------------------------------


def answer(path):
    """What a student does: write the answer into the exercise cell of the student edition, and save."""
    nb = nbformat.read(path, as_version=4)
    nb.cells[6].source = nb.cells[6].source.replace(STUB, "return x * 2  # my answer")
    nbformat.write(nb, path)
    return path.read_bytes()


def test_rerunning_into_a_folder_keeps_the_notebooks_students_changed(tmp_path, capsys):
    src, dest = tmp_path / "notebooks", tmp_path / "student"
    src.mkdir()
    nbformat.write(course_notebook(), src / "01_a.ipynb")
    nbformat.write(course_notebook(), src / "02_b.ipynb")
    assert main([str(src), str(dest)]) == 0
    capsys.readouterr()
    mine = answer(dest / "01_a.ipynb")
    untouched = (dest / "02_b.ipynb").read_bytes()
    nbformat.write(course_notebook(), src / "03_c.ipynb")  # the instructor adds a notebook

    assert main([str(src), str(dest)]) == 1
    out, err = capsys.readouterr()
    assert (dest / "01_a.ipynb").read_bytes() == mine, "the student's answer was overwritten"
    assert f"kept {dest / '01_a.ipynb'}: it differs from the student edition" in err
    assert "--force" in err and "1 notebook kept" in err
    assert f"{dest / '02_b.ipynb'}: 1 exercise left for the student (unchanged)" in out
    assert (dest / "02_b.ipynb").read_bytes() == untouched
    assert f"{dest / '03_c.ipynb'}: 1 exercise left for the student" in out and (dest / "03_c.ipynb").exists()
    assert sorted(p.name for p in dest.iterdir()) == ["01_a.ipynb", "02_b.ipynb", "03_c.ipynb"]

    assert main([str(src), str(dest), "--force"]) == 0
    assert f"{dest / '01_a.ipynb'}: 1 exercise left for the student (overwritten, --force)" in capsys.readouterr().out
    assert nbformat.read(dest / "01_a.ipynb", as_version=4).cells[6].source.endswith(f"    {STUB}")
    assert sorted(p.name for p in dest.iterdir()) == ["01_a.ipynb", "02_b.ipynb", "03_c.ipynb"]  # no temp files


def test_an_unchanged_rerun_succeeds_and_rewrites_nothing(tmp_path, capsys):
    path = tmp_path / "04_demo.ipynb"
    nbformat.write(with_outputs(course_notebook()), path)
    assert main([str(path), str(tmp_path / "student")]) == 0
    before = (tmp_path / "student" / "04_demo.ipynb").stat()
    assert main([str(path), str(tmp_path / "student")]) == 0
    assert "(unchanged)" in capsys.readouterr().out
    after = (tmp_path / "student" / "04_demo.ipynb").stat()
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)
    assert after.st_mode & 0o644 == 0o644, "written with the usual permissions"


def test_a_single_notebook_destination_is_not_overwritten_either(tmp_path, capsys):
    path, out = tmp_path / "04_demo.ipynb", tmp_path / "mine.ipynb"
    nbformat.write(course_notebook(), path)
    out.write_text("not even a notebook: a student's notes")
    assert main([str(path), str(out)]) == 1
    assert out.read_text() == "not even a notebook: a student's notes"
    err = capsys.readouterr().err
    assert f"kept {out}" in err and "--force" in err
    assert main([str(path), str(out), "--force"]) == 0
    assert nbformat.read(out, as_version=4).cells[6].source.endswith(f"    {STUB}")


def test_a_destination_that_is_the_source_under_another_name_is_refused(tmp_path, capsys):
    path = tmp_path / "04_demo.ipynb"
    nbformat.write(course_notebook(), path)
    (tmp_path / "link").mkdir()
    (tmp_path / "link" / "04_demo.ipynb").hardlink_to(path)
    assert main([str(path), str(tmp_path / "link"), "--force"]) == 1
    assert "would overwrite it" in capsys.readouterr().err
    assert "BEGIN SOLUTION" in path.read_text()


def test_an_unreadable_notebook_is_named(tmp_path, capsys):
    (tmp_path / "01_broken.ipynb").write_text("{ not json")
    assert main([str(tmp_path), str(tmp_path / "student")]) == 1
    assert f"error: {tmp_path / '01_broken.ipynb'} is not a readable notebook" in capsys.readouterr().err
    assert not (tmp_path / "student").exists()
