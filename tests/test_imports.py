"""The import contracts of pyproject.toml: kept by the packages, and broken by each import that
docs/design.md says the packages never make."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("fair", "exhibitors", "deals", "livehalls", "audience", "recommend")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own virtualenv's script
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root, capture_output=True, text=True, check=False, timeout=60,
    )


def test_the_packages_keep_their_import_contracts() -> None:
    linted = lint_imports(ROOT)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "0 broken" in linted.stdout


@pytest.mark.parametrize(("module", "added", "broken"), [
    # The core of fair imports no domain package, not even for a type.
    ("fair/service.py", "from livehalls.models import Hall",
     "fair is not allowed to import livehalls"),
    ("fair/permissions.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
     "    from deals.models import Intent", "fair is not allowed to import deals"),
    ("fair/views.py", "from exhibitors import service",
     "fair is not allowed to import exhibitors"),
    # exhibitors imports only fair; livehalls nothing from deals.
    ("exhibitors/service.py", "from livehalls import rooms",
     "exhibitors is not allowed to import livehalls"),
    ("livehalls/events.py", "from deals import totals",
     "livehalls is not allowed to import deals"),
    # The packages below audience tell it through fair.signals, never by importing it.
    ("exhibitors/views.py", "from audience import recording",
     "exhibitors is not allowed to import audience"),
    ("audience/service.py", "from deals import totals",
     "audience is not allowed to import deals"),
    # recommend reads every package; none reads it (pages reach it through a template global).
    ("deals/service.py", "from recommend import service as recommend_service",
     "deals is not allowed to import recommend"),
    ("exhibitors/views.py", "from recommend import service as recommend_service",
     "exhibitors is not allowed to import recommend"),
    # deals tells livehalls through broadcast only, never through its rooms or presence.
    ("deals/service.py", "from livehalls import rooms",
     "deals is not allowed to import livehalls.rooms"),
    # No cycles inside a package, also when an import inside a function hides one.
    ("livehalls/rooms.py", "def _late():\n    from livehalls import presence",
     "No cycles are allowed in livehalls"),
    ("fair/database.py", "def _late():\n    from fair.extensions import socketio",
     "No cycles are allowed in fair"),
])
def test_an_import_against_the_direction_breaks_a_contract(
    tmp_path: Path, module: str, added: str, broken: str
) -> None:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("templates", "static", "translations",
                                                      "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    assert lint_imports(tmp_path).returncode == 0
    with (tmp_path / module).open("a") as source:
        source.write(f"\n{added}\n")

    linted = lint_imports(tmp_path)

    assert linted.returncode == 1, linted.stdout + linted.stderr
    assert broken in linted.stdout
