"""Test helpers for SARIF output: schema validation and the Microsoft SARIF multitool.

Any test that produces SARIF can use them:

    from sarif_tools import validate_schema, run_multitool, require_multitool

- `validate_schema(doc)` checks a SARIF document against the official OASIS 2.1.0 schema, read from
  `../shared/sarif/` next to the repository (skips the test when that folder is absent).
- `run_multitool(path)` runs `Sarif.Multitool validate --rule-kind "Sarif;Gh"` (the SARIF rules
  plus GitHub's ingestion rules) and returns `(errors, warnings, text)`. It skips the test when
  the multitool is not installed, unless `SARIF_MULTITOOL` names it (as `.ci/run` does), in which
  case a missing binary is a failure: CI must never skip this check.

The multitool exits 0 even when it finds problems, so its verdict is read from the SARIF log it
writes. It reports nothing at all for a log it cannot deserialize (for instance an invalid
`level` value), which is why tests should run both checks.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO_ROOT.parent / "shared" / "sarif" / "sarif-schema-2.1.0.json"

# What the npm package @microsoft/sarif-multitool pulls in for each platform.
_PLATFORM_BINARIES = {
    "linux": ("sarif-multitool-linux", "Sarif.Multitool"),
    "darwin": ("sarif-multitool-darwin", "Sarif.Multitool"),
    "win32": ("sarif-multitool-win32", "Sarif.Multitool.exe"),
}


# --------------------------------------------------------------------------------------------
# JSON schema
# --------------------------------------------------------------------------------------------


def validate_schema(doc: dict) -> None:
    """Fail with every schema error (sorted by path) unless `doc` is valid SARIF 2.1.0."""
    import jsonschema

    if not SCHEMA_PATH.is_file():
        pytest.skip(f"SARIF schema not found at {SCHEMA_PATH}")
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    # The OASIS errata01 schema is draft-04; a newer validator would read it differently.
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]
        pytest.fail("SARIF schema errors:\n" + "\n".join(lines))


# --------------------------------------------------------------------------------------------
# Microsoft SARIF multitool
# --------------------------------------------------------------------------------------------


def find_multitool() -> Path | None:
    """The multitool binary: `$SARIF_MULTITOOL`, else under `node_modules` in the repository."""
    configured = os.environ.get("SARIF_MULTITOOL")
    if configured:
        return Path(configured)
    package, binary = _PLATFORM_BINARIES.get(sys.platform, (None, None))
    if package is None:
        return None
    candidate = REPO_ROOT / "node_modules" / "@microsoft" / package / binary
    return candidate if candidate.exists() else None


def require_multitool() -> Path:
    """The usable multitool binary, or skip (not installed) / fail (configured but unusable)."""
    tool = find_multitool()
    configured = bool(os.environ.get("SARIF_MULTITOOL"))
    problem = None
    if tool is None:
        problem = "the SARIF multitool is not installed (npm ci at the repo root, or run .ci/run)"
    elif not tool.is_file():
        problem = f"SARIF multitool not found at {tool}"
    elif not os.access(tool, os.X_OK):
        problem = f"SARIF multitool at {tool} is not executable (chmod u+x it; .ci/run does)"
    if problem is None:
        return tool
    if configured:
        pytest.fail(f"SARIF_MULTITOOL is set but unusable: {problem}")
    pytest.skip(problem)


def run_multitool(path: Path | str) -> tuple[list[str], list[str], str]:
    """Validate a SARIF file with the SARIF and GitHub rules: (errors, warnings, console text).

    Each error or warning reads `RULEID location: message`. Notes are advice (code snippets,
    version-control provenance, reachable URIs) and are not returned.
    """
    tool = require_multitool()
    env = dict(os.environ)
    # .NET needs libicu unless told to run without culture data; validation needs none.
    env.setdefault("DOTNET_SYSTEM_GLOBALIZATION_INVARIANT", "1")
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "validation.sarif"
        completed = subprocess.run(
            [str(tool), "validate", str(path), "--rule-kind", "Sarif;Gh", "--level", "Error;Warning",
             "--output", str(report), "--log", "ForceOverwrite"],
            capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=120,
        )
        text = completed.stdout + completed.stderr
        if completed.returncode != 0 or not report.is_file():
            pytest.fail(f"SARIF multitool failed (exit {completed.returncode}):\n{text}")
        log = json.loads(report.read_text(encoding="utf-8-sig"))
    errors: list[str] = []
    warnings: list[str] = []
    for run in log.get("runs", []):
        for result in run.get("results", []):
            level = result.get("level", "warning")
            line = f"{result.get('ruleId')} {_describe(result)}"
            if level == "error":
                errors.append(line)
            elif level == "warning":
                warnings.append(line)
    return errors, warnings, text


def _describe(result: dict) -> str:
    """The multitool puts the JSON path and details in the message arguments."""
    message = result.get("message", {})
    return message.get("text") or " | ".join(map(str, message.get("arguments", [])))
