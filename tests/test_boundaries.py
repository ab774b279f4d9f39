"""training/ is plain Python: no module in it may import Django or the Django apps."""

import ast
from pathlib import Path

from tests.conftest import REPO_ROOT

FORBIDDEN = ("django", "rlaif_site", "runs", "constitutions", "django_rq", "rq")


def test_training_imports_no_django():
    offenders = []
    for path in sorted(Path(REPO_ROOT, "training").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [
                f"{path.relative_to(REPO_ROOT)}:{node.lineno} {n}" for n in names if n.split(".")[0] in FORBIDDEN
            ]
    assert offenders == []
