"""The README shows real output: the example block must be what the shipped example prints."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_readme_example_output_is_current():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"The example run prints.*?```text\n(.*?)```", readme, re.S)
    assert block, "README lost its example output block"
    proc = subprocess.run([sys.executable, "-m", "mailproxy_lint", "examples/dms-traefik"], cwd=REPO,
                          capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"}, timeout=120)
    assert proc.returncode == 1
    assert proc.stdout == block.group(1)


def test_readme_first_commands_are_the_ci_commands():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", readme, re.S)
    assert blocks[0].strip().endswith("mailproxy-lint examples/dms-traefik")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert blocks[1].strip() in ci, "the README's test command must be what CI runs"
