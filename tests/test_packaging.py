"""The two ways to install the course must agree, and the package must carry what it needs."""

import re
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_names_the_same_runtime_dependencies_as_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = {_name(r) for r in pyproject["project"]["dependencies"]}
    conda = set()
    lines = (ROOT / "environment.yml").read_text().splitlines()
    for line in lines[lines.index("dependencies:") + 1 :]:
        match = re.match(r"\s*-\s+([A-Za-z][\w.-]*)", line)
        if match and not line.strip().startswith("- -e"):
            conda.add(CONDA_NAMES.get(_name(match.group(1)), _name(match.group(1))))
    conda -= {"python", "pip"}
    optional = {_name(r) for r in pyproject["project"]["optional-dependencies"]["widgets"]}
    assert runtime <= conda, f"missing from environment.yml: {runtime - conda}"
    assert conda - runtime <= optional, f"environment.yml has extras pyproject lacks: {conda - runtime - optional}"


def test_pytest_runs_the_tests_and_the_notebooks_in_lax_mode():
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert options["testpaths"] == ["tests", "notebooks"]
    assert "--nbval-lax" in options["addopts"] and "--nbval-current-env" in options["addopts"]
