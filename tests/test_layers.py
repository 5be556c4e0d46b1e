"""The package's layers: every import follows the table in ``audiorec/__init__.py``'s docstring.

The table is the rule and this test reads it, so the documentation cannot drift from what is enforced. An import
counts wherever it stands (module top, inside a function, under ``TYPE_CHECKING``), and so does a
``"package.module:name"`` string, which a registry imports when a job runs.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

import audiorec

PACKAGE_ROOT = Path(audiorec.__file__).parent
REPO = PACKAGE_ROOT.parents[1]
ALWAYS_ALLOWED = "errors"
TARGET_STRING = re.compile(r"audiorec(?:\.\w+)+(?::\w+)?")


def layer_rules(docstring: str) -> dict[str, list[str]]:
    """The ``unit <- allowed, ...`` rows of the docstring's Layers block, in order (continuation lines joined)."""
    rules: dict[str, list[str]] = {}
    last = None
    for line in docstring.split("Layers\n------", 1)[1].splitlines():
        row = re.fullmatch(r" {4}(\w+) +<-(.*)", line)
        if row:
            last = row[1]
            rules[last] = [name.strip() for name in row[2].split(",") if name.strip()]
        elif last and re.fullmatch(r" {5,}\S.*", line):
            rules[last] += [name.strip() for name in line.split(",") if name.strip()]
        elif rules and not line.strip():
            last = None
    return rules


def unit_of(module: str) -> str:
    """``audiorec.evaluation.metrics`` -> ``evaluation``; the package root itself is ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, package: str = "") -> list[tuple[int, str]]:
    """(line, audiorec module) of every import and import-target string in the file at ``path``.

    ``package`` is the file's package, against which relative imports resolve.
    """
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found += [(node.lineno, base)]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and TARGET_STRING.fullmatch(node.value):
            found.append((node.lineno, node.value.split(":")[0]))
    return [(line, module) for line, module in found if module == "audiorec" or module.startswith("audiorec.")]


def forbidden_imports(root: Path, rules: dict[str, list[str]]) -> list[str]:
    """One line per import of ``root``'s tree that the rules do not allow."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        unit = unit_of(module_name(path, root))
        if unit not in rules and unit not in ("__init__", ALWAYS_ALLOWED):
            problems.append(f"{path.relative_to(root)}: {unit!r} has no row in the layer table")
            continue
        allowed = {unit, ALWAYS_ALLOWED, *rules.get(unit, [])}
        name = module_name(path, root)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for line, module in imported_modules(path, package):
            target = unit_of(module)
            if target not in allowed and not (unit == "__init__" and target == ALWAYS_ALLOWED):
                problems.append(f"{path.relative_to(root)}:{line}: imports {module} ({unit} may not import {target})")
    return problems


@pytest.fixture(scope="module")
def rules() -> dict[str, list[str]]:
    return layer_rules(audiorec.__doc__ or "")


def test_table_names_every_package_and_points_only_up(rules: dict[str, list[str]]) -> None:
    units = {path.stem if path.is_file() else path.name for path in PACKAGE_ROOT.iterdir()}
    units = {unit for unit in units if not unit.startswith(("_", ".")) and unit != ALWAYS_ALLOWED}
    assert set(rules) == units
    seen: set[str] = set()
    for unit, allowed in rules.items():
        assert set(allowed) <= seen, f"{unit} names {set(allowed) - seen}, which are not on rows above it"
        seen.add(unit)


def test_every_import_follows_the_layer_table(rules: dict[str, list[str]]) -> None:
    assert forbidden_imports(PACKAGE_ROOT, rules) == []


def test_at_most_a_few_modules_at_the_top() -> None:
    top_modules = sorted(path.name for path in PACKAGE_ROOT.glob("*.py"))
    assert top_modules == ["__init__.py", "cli.py", "errors.py"]


@pytest.mark.parametrize(
    ("module", "planted", "expected"),
    [
        (
            "evaluation/metrics.py",
            "\n\ndef _late():\n    from audiorec.reporting.report import result_blocks\n",
            "imports audiorec.reporting.report (evaluation may not import reporting)",
        ),
        ("ssl/data.py", "\nimport audiorec.backbones.base\n", "(ssl may not import backbones)"),
        ("protocol/split.py", '\n_TARGET = "audiorec.recommenders.knn:KNNRecommender"\n', "(protocol may not import"),
        ("common/names.py", "\nfrom ..storage import atomic\n", "imports audiorec.storage (common may not import"),
    ],
)
def test_a_planted_forbidden_import_is_caught(
    tmp_path: Path, rules: dict[str, list[str]], module: str, planted: str, expected: str
) -> None:
    copy = tmp_path / "audiorec"
    shutil.copytree(PACKAGE_ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with open(copy / module, "a", encoding="utf-8") as stream:
        stream.write(planted)
    (problem,) = forbidden_imports(copy, rules)
    assert problem.startswith(module) and expected in problem


def test_a_package_without_a_row_is_caught(tmp_path: Path, rules: dict[str, list[str]]) -> None:
    copy = tmp_path / "audiorec"
    shutil.copytree(PACKAGE_ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "newlayer").mkdir()
    (copy / "newlayer" / "__init__.py").write_text("")
    assert forbidden_imports(copy, rules) == ["newlayer/__init__.py: 'newlayer' has no row in the layer table"]


def test_workflow_scripts_are_thin_adapters() -> None:
    for script in sorted((REPO / "workflow" / "scripts").glob("*.py")):
        modules = {module for _, module in imported_modules(script)}
        assert modules <= {"audiorec.stages", "audiorec.storage.logs"}, script.name
