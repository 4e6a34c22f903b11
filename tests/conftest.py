"""Shared test options and helpers."""
from __future__ import annotations

import os
import textwrap
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


# One IMAP path through HAProxy whose 50 s idle timeout is too short for IMAP IDLE: a run finds
# exactly one problem, MPL401 (error) on line 7 (`timeout client 50s`).
SHORT_IDLE_HAPROXY = """\
global
    log stdout format raw local0

defaults
    mode tcp
    timeout connect 5s
    timeout client 50s
    timeout server 50s

frontend imap
    bind :143
    default_backend dovecot_imap

backend dovecot_imap
    server mail1 10.0.0.5:143 send-proxy-v2
"""


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write `files` (relative path -> text) below `root`, creating folders; returns `root`."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def analyse_tree(root: Path, files: dict[str, str], monkeypatch):
    """Write `files` below `root` (each text dedented, leading newlines dropped), make `root` the
    working directory and analyse it as `mailproxy-lint .` would: the deployment model."""
    from mailproxy_lint.engine import analyse

    write_tree(root, {name: textwrap.dedent(text).lstrip("\n") for name, text in files.items()})
    monkeypatch.chdir(root)
    return analyse(".", [Path(".")])


@pytest.fixture
def short_idle(tmp_path, monkeypatch) -> Path:
    """The working directory is a project whose one finding is MPL401 (error) at haproxy/haproxy.cfg:7."""
    monkeypatch.chdir(write_tree(tmp_path, {"haproxy/haproxy.cfg": SHORT_IDLE_HAPROXY}))
    return tmp_path
