"""The one way a test asks for something from outside Python: a service, a command, a
file beside the checkout. Where it is missing the test skips, naming it and how to get it;
under `CI=true` it fails instead, since a green run that skipped proves nothing
(`scripts/install-test-deps` installs the system packages)."""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def missing(what: str, how: str) -> NoReturn:
    """Skip (fail under CI=true) because `what` is not here; `how` says how to get it."""
    if IN_CI:
        pytest.fail(f"{what} is missing and CI=true: {how}", pytrace=False)
    pytest.skip(f"{what} is missing: {how}")


def require_command(name: str, how: str, path: str | None = None) -> str:
    """The full path of the command `name` (also looked for in /usr/sbin, where Debian puts
    nginx), or skip/fail through `missing`."""
    found = shutil.which(name, path=path)
    if found is None and path is None and os.access(f"/usr/sbin/{name}", os.X_OK):
        found = f"/usr/sbin/{name}"
    if found is None:
        missing(f"the command `{name}`", how)
    return found


def require_module(name: str, how: str) -> None:
    """Import the Python module `name`, or skip the whole test module (fail under CI=true)
    when it is not installed; `how` says how to get it."""
    import importlib

    try:
        importlib.import_module(name)
    except ImportError:
        if IN_CI:
            pytest.fail(f"the module {name} is missing and CI=true: {how}", pytrace=False)
        pytest.skip(f"the module {name} is missing: {how}", allow_module_level=True)
