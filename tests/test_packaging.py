"""The installed package: one namespace, every rule module and grammar inside it."""
from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_no_code_imports_the_folder_names():
    offenders = []
    for path in REPO.glob("**/*.py"):
        if any(part in {".venv", "venv", "node_modules", "build"} for part in path.parts):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.match(r"\s*(from|import)\s+(rules|linter|grammars)\b", line):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offenders, "import through mailproxy_lint, not the folder names:\n" + "\n".join(offenders)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
        capture_output=True, text=True)
    assert proc.returncode == 0, f"building the wheel failed: {proc.stderr.strip()[-600:]}"
    return next(out.glob("*.whl"))


def test_wheel_holds_one_namespace_with_every_module(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.endswith(".dist-info/") and ".dist-info" not in n}
    assert top == {"mailproxy_lint"}
    for folder, package in (("rules", "rules"), ("grammars", "grammars"), ("linter/parse", "parse"),
                            ("linter/build", "build"), ("linter/data", "data")):
        for source in (REPO / folder).glob("*"):
            if source.suffix in {".py", ".lark", ".json"}:
                assert f"mailproxy_lint/{package}/{source.name}" in names, f"{source} missing from the wheel"
