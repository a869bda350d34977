"""Where the package and the project sit (a source checkout keeps corpus/, prompts/ and tests/ beside
the package, the way the README installs it)."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
PROJECT_DIR = PACKAGE_DIR.parent if (PACKAGE_DIR.parent / "pyproject.toml").exists() else Path.cwd()
