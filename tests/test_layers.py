"""The import rules of docs/ARCHITECTURE.md, enforced: import-linter's contracts in
pyproject.toml (layers, only the HTTP layer importing FastAPI/Starlette, the SDK on its
own), and a queue worker that runs without the web framework loaded at all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.requirements import missing

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent


def _env() -> dict[str, str]:
    # this checkout's code, whichever copy of the package is installed
    path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def test_import_contracts_hold() -> None:
    lint_imports = BIN / "lint-imports"
    if not lint_imports.exists():
        missing("import-linter", "pip install -e '.[dev]'")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_worker_imports_no_web_framework() -> None:
    check = (
        "import sys, tailwinds.worker\n"
        "loaded = sorted(m for m in ('fastapi', 'starlette') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], env=_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
