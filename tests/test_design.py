"""The package's layout rules (DESIGN.md): family modules stand apart, recipes compose them, and nothing
outside the package reaches into its private names."""

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("gan", "vae", "flows", "diffusion")


def imported_modules(tree: ast.AST) -> set[str]:
    """Every module an AST imports, anywhere (also inside functions): ``gencourse.x`` for ``from gencourse
    import x`` as well."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


@pytest.mark.parametrize("family", FAMILIES)
def test_a_family_module_imports_no_other_family_and_no_recipe(family):
    tree = ast.parse((ROOT / "gencourse" / f"{family}.py").read_text())
    forbidden = {f"gencourse.{other}" for other in FAMILIES if other != family} | {"gencourse.recipes"}
    imported = imported_modules(tree)
    bad = sorted(m for m in imported if any(m == f or m.startswith(f + ".") for f in forbidden))
    assert not bad, f"gencourse/{family}.py imports {bad}: families stand apart; compose them in gencourse/recipes/"


def test_downstream_evaluation_imports_no_family_and_no_recipe():
    imported = imported_modules(ast.parse((ROOT / "gencourse" / "downstream.py").read_text()))
    forbidden = {f"gencourse.{family}" for family in FAMILIES} | {"gencourse.recipes"}
    assert not sorted(m for m in imported if any(m == f or m.startswith(f + ".") for f in forbidden))


def test_the_design_check_sees_imports_inside_functions():
    tree = ast.parse("def f():\n    from gencourse.vae import mnist_vae\n")
    assert "gencourse.vae" in imported_modules(tree)


def private_uses(source: str) -> list[str]:
    """``gencourse`` private names (``_x``) that ``source`` imports or reaches through a module alias."""
    tree = ast.parse(source)
    aliases, uses = {"gencourse"}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gencourse":
            for alias in node.names:
                if alias.name.startswith("_"):
                    uses.append(f"from {node.module} import {alias.name}")
                else:
                    aliases.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "gencourse":
                    aliases.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in aliases:
                uses.append(ast.unparse(node))
    return uses


def outside_sources():
    for path in sorted((ROOT / "benchmarks").rglob("*.py")) + sorted((ROOT / "tests").glob("*.py")):
        yield path.relative_to(ROOT), path.read_text()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        lines = [line for line in code.splitlines() if not line.lstrip().startswith(("%", "!"))]  # IPython magics
        yield path.relative_to(ROOT), "\n".join(lines)


def test_nothing_outside_the_package_uses_its_private_names():
    offenders = {str(path): uses for path, source in outside_sources() if (uses := private_uses(source))}
    assert not offenders, f"private gencourse names used outside the package (make them public): {offenders}"


def test_the_private_name_check_sees_imports_and_attributes():
    source = "from gencourse import gan as G\nfrom gencourse.vae import _mlp_config\nG._mnist_gan('x')\nG.GAN\n"
    assert private_uses(source) == ["from gencourse.vae import _mlp_config", "G._mnist_gan"]
