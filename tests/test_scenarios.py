"""Whole deployments through the CLI, compared with reviewed golden output.

Each directory in `tests/fixtures/scenarios/` is a complete setup (the docker-mailserver and
Dovecot tutorials, Stalwart's Traefik example, and variants of them). `expected.txt` holds the
exact text output, reviewed by a person; regenerate with `pytest --update-golden` and review the
diff. Every scenario's SARIF must also pass the SARIF schema and the SARIF multitool.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sarif_tools import find_multitool, run_multitool, validate_schema

SCENARIOS = Path(__file__).parent / "fixtures" / "scenarios"
ALL = sorted(p for p in SCENARIOS.iterdir() if p.is_dir())


def lint(case: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("GITHUB_ACTIONS", None)
    return subprocess.run([sys.executable, "-m", "mailproxy_lint", *args, "."], cwd=case, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case", ALL, ids=lambda p: p.name)
def test_text_output_matches_golden(case, update_golden):
    proc = lint(case)
    assert proc.stderr == "", proc.stderr
    assert "Traceback" not in proc.stdout
    golden = case / "expected.txt"
    if update_golden:
        golden.write_text(proc.stdout, encoding="utf-8")
    assert golden.is_file(), f"{golden} missing: run pytest --update-golden and review it"
    assert proc.stdout == golden.read_text(encoding="utf-8")
    has_findings = not proc.stdout.startswith("No problems found")
    assert proc.returncode == (1 if has_findings and ("[error]" in proc.stdout or "[warning]" in proc.stdout) else 0)


@pytest.mark.parametrize("case", ALL, ids=lambda p: p.name)
def test_sarif_is_valid(case, tmp_path):
    out = tmp_path / "report.sarif"
    proc = lint(case, "--format", "sarif", "--output", str(out))
    assert proc.returncode in (0, 1), proc.stderr
    document = json.loads(out.read_text(encoding="utf-8"))
    validate_schema(document)
    results = document["runs"][0]["results"]
    assert len(results) == len([line for line in (case / "expected.txt").read_text().splitlines()
                                if not line.startswith((" ", "Found ", "No problems"))])
    if find_multitool() is None:
        pytest.skip("SARIF multitool not installed (.ci/run installs it)")
    errors, warnings, text = run_multitool(out)
    assert (errors, warnings) == ([], []), text
