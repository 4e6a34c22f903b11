"""Shared test options and helpers."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests expect the default text output; inside GitHub Actions the CLI would switch to annotations.
os.environ.pop("GITHUB_ACTIONS", None)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", help="rewrite scenario golden files")


@pytest.fixture
def update_golden(request) -> bool:
    return request.config.getoption("--update-golden")


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test when the reference material is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not available (../shared is not beside the repository)")
    return path
