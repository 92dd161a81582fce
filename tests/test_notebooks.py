"""Conventions every course notebook in notebooks/ meets (see DESIGN.md, "A notebook's shape").

Each ``*_problems`` function returns what is wrong with a notebook, one sentence per problem, so a
failing test says what to fix. They are tested on a synthetic notebook that follows every convention
and on variants that break one each, so the checks cannot pass by checking nothing.
"""

import ast
import re

import nbformat
import pytest
from course_notebooks import REAL_NOTEBOOKS, course_notebook, install_checker, markdown
from IPython.core.inputtransformer2 import TransformerManager

import gencourse.exercises
from gencourse.config import colab_install_block, repository_url
from gencourse.student import SolutionMarkerError, exercises, mark_for_nbgrader, nbgrader_metadata

SLIDE_TYPES = {"slide", "subslide", "fragment", "skip", "notes", "-"}
SECTION = re.compile(r"^##\s+(\d+)\.\s")
NAME = re.compile(r"^(\d\d)_[a-z0-9_]+\.ipynb$")
# "<profile>", then within 40 characters (not crossing another profile's name) a time with its unit
RUN_TIME = r"{}\b(?:(?!smoke|lecture|full)[\s\S]){{0,40}}?\d+(?:\.\d+)?\s*(?:s|sec|seconds?|min|minutes?)\b"
COURSE_SIZE = 7


def _python(source: str) -> ast.Module:
    return ast.parse(TransformerManager().transform_cell(source))


def _slide_type(cell) -> str:
    return cell.metadata.get("slideshow", {}).get("slide_type", "-")


def output_problems(nb) -> list[str]:
    """Committed without outputs, execution counts or stored widget state."""
    problems = [
        f"cell {i + 1} has outputs or an execution count: clear all outputs before committing"
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    if "widgets" in nb.metadata:
        problems.append("the notebook metadata holds widget state: clear it (Edit > Clear outputs of all cells)")
    return problems


def _is_colab_guard(node) -> bool:
    """``if "google.colab" in sys.modules:``"""
    test = getattr(node, "test", None)
    return (
        isinstance(node, ast.If)
        and isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Constant)
        and test.left.value == "google.colab"
        and isinstance(test.ops[0], ast.In)
        and ast.unparse(test.comparators[0]) == "sys.modules"
    )


def colab_block_problems(guard: ast.If) -> list[str]:
    """The Colab guard is :func:`gencourse.config.colab_install_block`: it installs the course from the address
    where it is published (``Repository`` in pyproject.toml's ``[project.urls]``, the one place that holds it)
    and says so when that address cannot be reached."""
    url = repository_url()
    strings = [n.value for n in ast.walk(guard) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    addresses = {a.rstrip("/") for s in strings for a in re.findall(r"https?://[^\s\"'{}]+", s)}
    problems = [
        f"the Colab guard installs from {address}, but the course is published at {url} "
        "(pyproject.toml's [project.urls] Repository)"
        for address in sorted(addresses - {url.rstrip("/")})
    ]
    expected = next(node for node in ast.parse(colab_install_block()).body if _is_colab_guard(node))
    if ast.dump(guard) != ast.dump(expected):
        problems.append(
            "the Colab guard is not the course's install block (it must check that the address can be reached "
            "before pip runs): replace it with the block that "
            '`python -c "import gencourse.config as c; print(c.colab_install_block())"` prints'
        )
    return problems


def setup_cell_problems(nb) -> list[str]:
    """The first code cell installs the package on Colab only, then imports it, seeds and describes."""
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    if not code:
        return ["the notebook has no code cell"]
    tree, problems = _python(code[0].source), []
    guard = next((node for node in tree.body if _is_colab_guard(node)), None)
    gencourse_import = next(
        (
            node.lineno
            for node in tree.body
            if (isinstance(node, ast.Import) and any(a.name.split(".")[0] == "gencourse" for a in node.names))
            or (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "gencourse")
        ),
        None,
    )
    if guard is None:
        problems.append('the first code cell lacks the Colab guard `if "google.colab" in sys.modules:`')
    else:
        body = ast.unparse(guard.body)
        if guard.orelse or "pip" not in body or "install" not in body or "gencourse" not in body:
            problems.append("the Colab guard must only pip-install gencourse (no else branch)")
        if gencourse_import is not None and gencourse_import < guard.lineno:
            problems.append("the first code cell imports gencourse before the Colab guard installs it")
        problems += colab_block_problems(guard)
    if gencourse_import is None:
        problems.append("the first code cell does not import gencourse")
    calls = {ast.unparse(node.func).split(".")[-1] for node in ast.walk(tree) if isinstance(node, ast.Call)}
    problems += [
        f"the first code cell does not call {name}()" for name in ("seed_everything", "describe") if name not in calls
    ]
    return problems


def marker_problems(nb, name: str) -> list[str]:
    """``# BEGIN SOLUTION`` / ``# END SOLUTION`` pair up in every cell."""
    try:
        exercises(nb, name)
    except SolutionMarkerError as exc:
        return [str(exc)]
    return []


def _rebinds(tree, name: str) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any((a.asname or a.name) == name for a in node.names):
            return True
        if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store):
            return True
    return False


def exercise_problems(nb, name: str) -> list[str]:
    """Each exercise cell is followed by a check cell calling an existing ``gencourse.exercises.check_*``
    on the student's function, and no later cell uses the student's function (a missing or wrong answer
    must not break the rest of the notebook)."""
    try:
        found = exercises(nb, name)
    except SolutionMarkerError:
        return []  # reported by marker_problems
    problems = []
    for ex in found:
        where = f"exercise cell {ex.cell + 1}"
        if not ex.checkers:
            problems.append(f"{where} is not followed by a cell calling gencourse.exercises.check_<name>(<function>)")
            continue
        problems += [
            f"{where}: gencourse.exercises has no {checker}"
            for checker in ex.checkers
            if not hasattr(gencourse.exercises, checker)
        ]
        checked = re.findall(r"check_\w+\(\s*(\w+)", nb.cells[ex.check_cell].source)
        if not set(checked) & set(ex.functions):
            problems.append(
                f"{where}: the check cell does not pass the student's {', '.join(ex.functions)} to a checker"
            )
        for function in ex.functions:
            for index in range(ex.check_cell + 1, len(nb.cells)):
                cell = nb.cells[index]
                if cell.cell_type != "code":
                    continue
                tree = _python(cell.source)
                if _rebinds(tree, function):
                    break
                if any(isinstance(n, ast.Name) and n.id == function for n in ast.walk(tree)):
                    problems.append(
                        f"cell {index + 1} uses the student's {function} from {where}: use the package's "
                        "implementation after the check, so a missing answer cannot break later cells"
                    )
                    break
    return problems


def nbgrader_problems(nb, name: str) -> list[str]:
    """A notebook that carries nbgrader metadata carries exactly what ``python -m gencourse.student --nbgrader``
    writes: its exercise cells are nbgrader's solution cells, its check cells autograded tests, no other cell."""
    if not any("nbgrader" in cell.metadata for cell in nb.cells):
        return []
    try:
        exercises(nb, name)
    except SolutionMarkerError:
        return []  # reported by marker_problems
    try:
        wanted = nbgrader_metadata(nb, name)
    except SolutionMarkerError as exc:
        return [str(exc)]
    return [
        f"cell {i + 1} has outdated nbgrader metadata: run python -m gencourse.student --nbgrader notebooks/"
        for i, cell in enumerate(nb.cells)
        if cell.metadata.get("nbgrader") != wanted.get(i)
    ]


def slide_problems(nb) -> list[str]:
    """The title cell and each numbered section title ("## 1. ...") start a slide; sections are 1, 2, 3..."""
    problems = [
        f"cell {i + 1} has slide_type {_slide_type(cell)!r}; use one of {sorted(SLIDE_TYPES)}"
        for i, cell in enumerate(nb.cells)
        if _slide_type(cell) not in SLIDE_TYPES
    ]
    if nb.cells and nb.cells[0].cell_type == "markdown" and _slide_type(nb.cells[0]) != "slide":
        problems.append('the title cell needs slide_type "slide"')
    numbers = []
    for i, cell in enumerate(nb.cells):
        title = SECTION.match(cell.source.lstrip()) if cell.cell_type == "markdown" else None
        if title:
            numbers.append(int(title.group(1)))
            if _slide_type(cell) != "slide":
                problems.append(f'cell {i + 1} starts section {title.group(1)}: it needs slide_type "slide"')
    if numbers != list(range(1, len(numbers) + 1)):
        problems.append(f"sections are numbered {numbers}; number them 1, 2, 3... in order")
    if not numbers:
        problems.append('no numbered sections ("## 1. ...")')
    return problems


def title_problems(nb) -> list[str]:
    """The first cell is a markdown title ("# ...") that states the measured run time per profile."""
    if not nb.cells or nb.cells[0].cell_type != "markdown" or not nb.cells[0].source.startswith("# "):
        return ['the first cell must be the markdown title ("# ...")']
    text = nb.cells[0].source
    problems = [
        f"the title cell does not state the {profile} run time (e.g. '{profile}: about 40 s')"
        for profile in ("smoke", "lecture")
        if not re.search(RUN_TIME.format(profile), text, re.IGNORECASE)
    ]
    if not re.search(r"\bfull\b", text, re.IGNORECASE):
        problems.append("the title cell does not mention the full profile's run time")
    return problems


def notebook_problems(nb, name: str) -> list[str]:
    return (
        title_problems(nb)
        + output_problems(nb)
        + setup_cell_problems(nb)
        + marker_problems(nb, name)
        + exercise_problems(nb, name)
        + nbgrader_problems(nb, name)
        + slide_problems(nb)
    )


# Lessons, not lab logs (LESSONS.md): markdown never quotes the benchmarks, the course's targets or earlier runs.
LAB_LOG = re.compile(
    r"benchmarks/|python -m benchmarks|\bbenchmark(s|ed)?\b|(the course|our)('s)? targets?\b|measured (in|on|with)\b"
    r"|lecture profile,? (we|measured)|earlier run|in an earlier|results page measured",
    re.IGNORECASE,
)
GOING_FURTHER = re.compile(r"^#+\s+Going further\b", re.IGNORECASE)
MAIN_PATH_WORDS = {"07": 3100}  # about 2,500 words of markdown a lesson; 07 about 3,000
# The notebooks rewritten as lessons so far; the others follow (then this becomes every notebook).
LESSONS = ("01", "02", "03", "04", "05", "06", "07")


def main_path_cells(nb) -> list:
    """The markdown cells before the first "Going further" section (the optional depth at the end)."""
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "markdown" and GOING_FURTHER.match(cell.source.lstrip()):
            break
        cells.append(cell)
    return [c for c in cells if c.cell_type == "markdown"]


def prose(markdown: str) -> str:
    """The words a student reads: an equation counts as one word, the generated run-time block as none."""
    markdown = re.sub(r"<!-- run-time:start -->.*?<!-- run-time:end -->", " ", markdown, flags=re.S)
    markdown = re.sub(r"\$\$.*?\$\$", " x ", markdown, flags=re.S)
    return re.sub(r"\$[^$]*\$", " x ", markdown)


def lesson_problems(nb, name: str) -> list[str]:
    """A lesson's markdown quotes no benchmark, target or earlier run, its main path is about 2,500 words
    (07: 3,000), and its "Going further" sections start collapsed."""
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown" or i == 0:  # the title cell's run time is generated
            continue
        hit = LAB_LOG.search(cell.source)
        if hit:
            problems.append(f"markdown cell {i} reads like a lab log ({hit.group(0)!r}); see LESSONS.md")
        if GOING_FURTHER.match(cell.source.lstrip()) and not cell.metadata.get("jp-MarkdownHeadingCollapsed"):
            problems.append(f'markdown cell {i} starts a "Going further" section that is not collapsed')
    words = sum(len(prose(c.source).split()) for c in main_path_cells(nb))
    limit = MAIN_PATH_WORDS.get(name[:2], 2600)
    if words > limit:
        problems.append(f"the main path has {words} words of markdown; a lesson has about {limit - 100}")
    return problems


def naming_problems(names: list[str]) -> list[str]:
    """Notebooks are 01_<topic>.ipynb ... 07_<topic>.ipynb, one per number."""
    problems = [f"{n} is not named NN_topic.ipynb (lower case)" for n in names if not NAME.match(n)]
    numbers = sorted(int(NAME.match(n).group(1)) for n in names if NAME.match(n))
    problems += [
        f"notebook number {k:02d} is outside 01..{COURSE_SIZE:02d}" for k in numbers if not 1 <= k <= COURSE_SIZE
    ]
    problems += [f"two notebooks are numbered {k:02d}" for k in sorted(set(numbers)) if numbers.count(k) > 1]
    if len(numbers) == COURSE_SIZE and numbers != list(range(1, COURSE_SIZE + 1)):
        problems.append(f"the {COURSE_SIZE} notebooks must be numbered 01..{COURSE_SIZE:02d}, got {numbers}")
    return problems


# ---- the real notebooks ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["synthetic"] + REAL_NOTEBOOKS, ids=lambda p: getattr(p, "stem", p))
def test_notebook_follows_the_course_conventions(path, monkeypatch):
    if path == "synthetic":  # always runs, so this test never passes on an empty notebooks/ folder
        install_checker(monkeypatch)
        nb, name = course_notebook(), "00_demo.ipynb"
    else:
        nb, name = nbformat.read(path, as_version=4), path.name
    problems = notebook_problems(nb, name)
    assert not problems, f"{name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("path", [p for p in REAL_NOTEBOOKS if p.name[:2] in LESSONS], ids=lambda p: p.stem)
def test_notebook_reads_as_a_lesson(path):
    nb = nbformat.read(path, as_version=4)
    problems = lesson_problems(nb, path.name)
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize(
    "text",
    [
        "The benchmark measured 84% (`python -m benchmarks.diffusion`).",
        "This meets the course's target of 80%.",
        "In the lecture profile we measured 1.45 bits/dim.",
        "An earlier run gave FID 25.",
        "See benchmarks/results.md.",
    ],
)
def test_a_lab_log_sentence_is_reported(text):
    nb = course_notebook()
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(text))
    assert any("reads like a lab log" in p for p in lesson_problems(nb, "00_demo.ipynb"))


def test_prose_counts_an_equation_as_one_word_and_skips_the_run_time_block():
    text = "Hence $$a + b\n= c$$ and $x_1$.\n<!-- run-time:start -->\n**Run time** about 5 s\n<!-- run-time:end -->"
    assert prose(text).split() == ["Hence", "x", "and", "x", "."]


def test_the_lesson_checks_pass_a_lesson_and_count_only_the_main_path():
    nb = course_notebook()
    assert lesson_problems(nb, "00_demo.ipynb") == []
    nb.cells.append(nbformat.v4.new_markdown_cell("## Going further: more\n\n" + "word " * 3000))
    assert lesson_problems(nb, "00_demo.ipynb") == [
        f'markdown cell {len(nb.cells) - 1} starts a "Going further" section that is not collapsed'
    ]
    nb.cells[-1].metadata["jp-MarkdownHeadingCollapsed"] = True
    assert lesson_problems(nb, "00_demo.ipynb") == []
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("word " * 3000))
    assert any("the main path has" in p for p in lesson_problems(nb, "00_demo.ipynb"))


def test_notebooks_are_numbered_in_order():
    problems = naming_problems([p.name for p in REAL_NOTEBOOKS])
    assert not problems, "\n".join(problems)


# ---- the checks themselves, on a synthetic notebook ---------------------------------------------


def _set(index, field, value):
    def change(nb):
        nb.cells[index][field] = value

    return change


def _replace(index, old, new):
    def change(nb):
        assert old in nb.cells[index].source
        nb.cells[index].source = nb.cells[index].source.replace(old, new)

    return change


def _slide(index, slide_type):
    def change(nb):
        nb.cells[index].metadata["slideshow"] = {"slide_type": slide_type}

    return change


def _insert(index, cell):
    def change(nb):
        nb.cells.insert(index, cell)

    return change


def _output(nb):
    nb.cells[4].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi\n")]


def _widget_state(nb):
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}


BROKEN = {
    "output": (_output, "cell 5 has outputs or an execution count"),
    "execution count": (_set(4, "execution_count", 3), "cell 5 has outputs or an execution count"),
    "widget state": (_widget_state, "widget state"),
    "no colab guard": (_replace(1, 'if "google.colab" in sys.modules:', "if True:"), "lacks the Colab guard"),
    "guard does more": (
        _replace(1, "check=True)\n", "check=True)\nelse:\n    pass\n"),
        "must only pip-install gencourse",
    ),
    "another address": (
        _replace(1, f'REPOSITORY = "{repository_url()}"', 'REPOSITORY = "https://github.com/someone/else"'),
        f"installs from https://github.com/someone/else, but the course is published at {repository_url()}",
    ),
    "no reachability check": (
        _replace(1, "    if found.returncode != 0:\n", "    if False:\n"),
        "must check that the address can be reached before pip runs",
    ),
    "import before guard": (
        _replace(1, "import subprocess\n", "import subprocess\nimport gencourse\n"),
        "imports gencourse before the Colab guard",
    ),
    "no seed": (_replace(1, "gencourse.seed_everything(0)", "torch.manual_seed(0)"), "does not call seed_everything()"),
    "no describe": (_replace(1, "print(gencourse.describe())", "print(profile)"), "does not call describe()"),
    "unclosed marker": (_replace(6, "    # END SOLUTION", ""), "'# BEGIN SOLUTION' is never closed"),
    "nested marker": (_replace(6, "    y = x + x", "    # BEGIN SOLUTION\n    y = x + x"), "cannot be nested"),
    "no check cell": (
        _replace(7, "gencourse.exercises.check_double(double)", "double(torch.ones(2))"),
        "exercise cell 7 is not followed by a cell calling gencourse.exercises.check_",
    ),
    "unknown checker": (_replace(7, "check_double(", "check_doubel("), "gencourse.exercises has no check_doubel"),
    "checks something else": (_replace(7, "(double)", "(lambda x: 2 * x)"), "does not pass the student's double"),
    "later cell uses the answer": (
        _insert(8, nbformat.v4.new_code_cell("z = double(torch.ones(2))")),
        "cell 9 uses the student's double from exercise cell 7",
    ),
    "section not a slide": (_slide(5, "subslide"), 'cell 6 starts section 2: it needs slide_type "slide"'),
    "stale nbgrader metadata": (
        _set(4, "metadata", {"nbgrader": {"grade": True, "grade_id": "old", "locked": True, "points": 1}}),
        "cell 5 has outdated nbgrader metadata",
    ),
    "title not a slide": (_slide(0, "-"), 'the title cell needs slide_type "slide"'),
    "unknown slide type": (_slide(3, "fragmnet"), "cell 4 has slide_type 'fragmnet'"),
    "sections out of order": (_replace(5, "## 2.", "## 3."), "sections are numbered [1, 3]"),
    "no title": (_insert(0, markdown("Some words first.", "slide")), "the first cell must be the markdown title"),
    "no lecture time": (_replace(0, "lecture about 10 s", "lecture quickly"), "does not state the lecture run time"),
    "no smoke time": (_replace(0, "smoke about 5 s", "smoke fast"), "does not state the smoke run time"),
    "no full profile": (_replace(0, "full: on a GPU, not measured yet", "GPU: later"), "full profile's run time"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_each_broken_convention_is_reported(case, monkeypatch):
    install_checker(monkeypatch)
    change, expected = BROKEN[case]
    nb = course_notebook()
    change(nb)
    problems = notebook_problems(nb, "00_demo.ipynb")
    assert any(expected in p for p in problems), problems


def test_a_notebook_marked_for_nbgrader_follows_the_conventions(monkeypatch):
    install_checker(monkeypatch)
    nb = course_notebook()
    assert mark_for_nbgrader(nb, "00_demo.ipynb")
    assert notebook_problems(nb, "00_demo.ipynb") == []
    nb.cells[6].source = nb.cells[6].source.replace("# END SOLUTION", "# end solution")
    assert notebook_problems(nb, "00_demo.ipynb") == [
        f"00_demo.ipynb, cell 7 (id {nb.cells[6].id!r}), line 6: nbgrader only finds solution markers written "
        "exactly '# BEGIN SOLUTION' / '# END SOLUTION', not '# end solution'"
    ]


def test_rebinding_the_exercise_name_from_the_package_is_allowed(monkeypatch):
    install_checker(monkeypatch)
    nb = course_notebook()
    nb.cells[8:8] = [nbformat.v4.new_code_cell("from math import fabs as double\nz = double(-1.0)")]
    assert exercise_problems(nb, "00_demo.ipynb") == []


@pytest.mark.parametrize(
    "names, expected",
    [
        (["01_intro.ipynb", "02_gan_basics.ipynb", "04_vae_basics.ipynb"], []),
        ([f"0{k}_topic{k}.ipynb" for k in range(1, 8)], []),
        (["01_intro.ipynb", "01_again.ipynb"], ["two notebooks are numbered 01"]),
        (["08_extra.ipynb"], ["notebook number 08 is outside 01..07"]),
        (["Intro.ipynb"], ["Intro.ipynb is not named NN_topic.ipynb (lower case)"]),
        (
            [f"0{k}_t.ipynb" for k in (1, 2, 3, 4, 5, 6)] + ["00_t.ipynb"],
            [
                "notebook number 00 is outside 01..07",
                "the 7 notebooks must be numbered 01..07, got [0, 1, 2, 3, 4, 5, 6]",
            ],
        ),
    ],
)
def test_naming(names, expected):
    assert naming_problems(names) == expected
