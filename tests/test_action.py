"""The GitHub Action (`action.yml`): its lint step, run as the runner would, writes valid SARIF.

The step's script is taken from action.yml and run with bash, with the `${{ ... }}` expressions
of its `env:` evaluated the way the runner evaluates them for these inputs, so the test breaks
when the action's command line does (a renamed option, a lost --exit-zero, a wrong output).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sarif_tools import run_multitool, validate_schema

REPO = Path(__file__).resolve().parents[1]
ACTION = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
EXAMPLE = "examples/dms-traefik"


def step(step_id: str | None = None, name: str | None = None) -> dict:
    for s in ACTION["runs"]["steps"]:
        if (step_id and s.get("id") == step_id) or (name and s.get("name") == name):
            return s
    raise AssertionError(f"action.yml has no step {step_id or name!r}")


def evaluate(expression_text: str, inputs: dict[str, str]) -> str:
    """Replace `${{ inputs.x }}` and `${{ github.action_path }}` like the runner does."""
    context = {**{f"inputs.{k}": v for k, v in inputs.items()}, "github.action_path": str(REPO)}

    def value(match: re.Match) -> str:
        return context[match.group(1)]

    return re.sub(r"\$\{\{\s*([\w.-]+)\s*\}\}", value, expression_text)


def action_inputs(**overrides: str) -> dict[str, str]:
    defaults = {name: spec.get("default", "") for name, spec in ACTION["inputs"].items()}
    unknown = set(overrides) - set(defaults)
    assert not unknown, f"action.yml has no input {unknown}"
    return {**defaults, **overrides}


def run_step(s: dict, inputs: dict[str, str], cwd: Path, github_output: Path) -> subprocess.CompletedProcess:
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    env = {key: value for key, value in os.environ.items() if key != "GITHUB_ACTIONS"}
    env.update({name: evaluate(str(text), inputs) for name, text in s.get("env", {}).items()})
    # the runner's PATH has the Python that the install step used; here that is this venv
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["GITHUB_OUTPUT"] = str(github_output)
    assert s["shell"] == "bash"
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", s["run"]], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_action_shape():
    assert ACTION["runs"]["using"] == "composite"
    assert ACTION["inputs"]["path"]["default"] == "."
    assert ACTION["inputs"]["output"]["default"] == "mailproxy-lint.sarif"
    assert ACTION["inputs"]["args"]["default"] == ""
    assert ACTION["outputs"]["sarif-file"]["value"] == "${{ steps.lint.outputs.sarif-file }}"
    install = step(name="Install mailproxy-lint")
    assert "${{ github.action_path }}" in install["env"].values()
    assert "pip install" in install["run"]
    setup = step(name="Set up Python")
    assert setup["uses"].startswith("actions/setup-python@")


def test_inputs_never_reach_the_script_text():
    # ${{ }} inside `run:` would paste user text into the shell script (script injection).
    for s in ACTION["runs"]["steps"]:
        assert "${{" not in s.get("run", ""), s.get("name")


def test_lint_step_writes_valid_sarif_for_the_example(tmp_path):
    output = tmp_path / "report.sarif"
    github_output = tmp_path / "github_output"
    inputs = action_inputs(path=EXAMPLE, output=str(output))
    proc = run_step(step("lint"), inputs, REPO, github_output)
    assert proc.returncode == 0, proc.stderr  # --exit-zero: findings do not fail the job
    assert proc.stdout == ""  # the report went to the file
    assert github_output.read_text() == f"sarif-file={output}\n"

    doc = json.loads(output.read_text(encoding="utf-8"))
    validate_schema(doc)
    results = doc["runs"][0]["results"]
    assert {r["ruleId"] for r in results} >= {"MPL101", "MPL301", "MPL501"}
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
    assert all(uri.startswith(EXAMPLE + "/") for uri in uris), uris  # repo-relative, as GitHub needs
    errors, warnings, text = run_multitool(output)
    assert errors == [] and warnings == [], text


def test_lint_step_passes_args_and_default_output(tmp_path):
    shutil.copytree(REPO / EXAMPLE, tmp_path / "repo" / "mail")
    workspace = tmp_path / "repo"
    inputs = action_inputs(path="mail", args="--select MPL101 --fail-on note")
    proc = run_step(step("lint"), inputs, workspace, tmp_path / "github_output")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((workspace / "mailproxy-lint.sarif").read_text(encoding="utf-8"))
    assert [r["id"] for r in doc["runs"][0]["tool"]["driver"]["rules"]] == ["MPL101"]
    assert {r["ruleId"] for r in doc["runs"][0]["results"]} == {"MPL101"}


def test_lint_step_fails_on_a_usage_error(tmp_path):
    inputs = action_inputs(path="no/such/dir", output=str(tmp_path / "x.sarif"))
    proc = run_step(step("lint"), inputs, tmp_path, tmp_path / "github_output")
    assert proc.returncode == 2
    assert "no such file or directory" in proc.stderr
    assert not (tmp_path / "x.sarif").exists()
