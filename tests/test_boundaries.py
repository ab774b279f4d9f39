"""The intended picture of the code, checked arrow by arrow from the imports (ast) of every .py file:

- ``training/`` is plain Python: it imports neither Django nor the Django apps nor the job queue;
- ``constitutions/`` knows nothing of ``runs/`` (runs registers providers with it instead), and its templates
  name no ``runs:`` URL and follow no relation to runs;
- ``benchmarks/`` scripts do not import the test suite.
"""

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

#: package -> the top-level modules it must not import.
FORBIDDEN_IMPORTS = {
    "training": ("django", "rlaif_site", "runs", "constitutions", "django_rq", "rq"),
    "constitutions": ("runs",),
    "benchmarks": ("tests",),
}

#: What a template of constitutions/ must not contain: a ``runs:`` URL name, or a relation to runs
#: (``version.runs``, ``n_runs``-style lookups through ``runs__``).
RUNS_IN_TEMPLATES = re.compile(r"""['"]runs:|\.runs\b|\bruns__""")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every absolute import in ``path``, at any depth (functions included)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def import_offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    """``path:line module`` for each import in ``package`` of a module under one of ``forbidden``."""
    offenders = []
    for path in sorted(Path(REPO_ROOT, package).rglob("*.py")):
        offenders += [
            f"{path.relative_to(REPO_ROOT)}:{line} {module}"
            for line, module in imported_modules(path) if module.split(".")[0] in forbidden
        ]
    return offenders


#: Arrows known to be broken today, each with what breaks it (strict: the test fails once it holds again).
KNOWN_BROKEN: dict[str, str] = {}


@pytest.mark.parametrize("package", [
    pytest.param(package, marks=pytest.mark.xfail(strict=True, reason=KNOWN_BROKEN[package]))
    if package in KNOWN_BROKEN else package
    for package in sorted(FORBIDDEN_IMPORTS)
])
def test_package_imports_nothing_it_must_not(package):
    assert Path(REPO_ROOT, package).is_dir()
    assert import_offenders(package, FORBIDDEN_IMPORTS[package]) == []


def test_the_check_sees_a_forbidden_import_inside_a_function(tmp_path, monkeypatch):
    module = tmp_path / "constitutions" / "late.py"
    module.parent.mkdir()
    module.write_text("import os\n\ndef f():\n    from runs.models import Run\n    import runs.lint\n")
    monkeypatch.setattr("tests.test_boundaries.REPO_ROOT", tmp_path)
    assert import_offenders("constitutions", ("runs",)) == [
        "constitutions/late.py:4 runs.models", "constitutions/late.py:5 runs.lint"]


def test_constitution_templates_know_nothing_of_runs():
    offenders = []
    for path in sorted(Path(REPO_ROOT, "constitutions", "templates").rglob("*.html")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            offenders += [f"{path.relative_to(REPO_ROOT)}:{number} {m.group()}"
                          for m in RUNS_IN_TEMPLATES.finditer(line)]
    assert offenders == []
