"""Stage 6: formatting a `RunResult`. Reporters only format; they compute nothing.

`text` is the default (grep- and editor-friendly `path:line:col: ID [severity] message`),
`json` is a versioned document for scripts, `github` prints GitHub Actions workflow commands that
become annotations on the run and the pull request. SARIF lives in `sarif.py` because its library
is slow to import and only that format needs it.
"""
from __future__ import annotations

import json
from typing import Callable, TextIO

from mailproxy_lint.api import Finding, Severity
from mailproxy_lint.engine import RunResult

JSON_FORMAT_VERSION = 1

_COLOURS = {Severity.ERROR: "\033[31m", Severity.WARNING: "\033[33m", Severity.NOTE: "\033[36m"}
_BOLD, _DIM, _RESET = "\033[1m", "\033[2m", "\033[0m"


def write_text(result: RunResult, out: TextIO, colour: bool = False) -> None:
    for finding in result.findings:
        sev = str(finding.severity)
        where = str(finding.span)
        if colour:
            sev = f"{_COLOURS[finding.severity]}{sev}{_RESET}"
            where = f"{_BOLD}{where}{_RESET}"
        out.write(f"{where}: {finding.rule_id} [{sev}] {finding.message}\n")
        for related in finding.related:
            line = f"    related: {related.span} {related.message}"
            out.write(f"{_DIM}{line}{_RESET}\n" if colour else f"{line}\n")
    if result.include_suppressed:
        for hidden in result.suppressed:
            f = hidden.finding
            out.write(f"{f.span}: {f.rule_id} [{f.severity}] {f.message} [suppressed: {hidden.justification}]\n")
    out.write(summary(result) + "\n")


def summary(result: RunResult) -> str:
    counts = {sev: 0 for sev in Severity}
    for finding in result.findings:
        counts[finding.severity] += 1
    files = len(result.files)
    checked = f"{files} file{'s' if files != 1 else ''} checked"
    # findings left out on purpose are counted, so a clean report never hides that they exist
    left_out = [f"{n} {what}" for n, what in ((len(result.suppressed), "suppressed inline"),
                                              (result.baselined, "baselined")) if n]
    if left_out:
        checked += "; " + ", ".join(left_out)
    if not result.findings:
        return f"No problems found ({checked})."
    parts = [f"{counts[sev]} {sev}{'s' if counts[sev] != 1 else ''}" for sev in reversed(Severity) if counts[sev]]
    total = len(result.findings)
    return f"Found {total} problem{'s' if total != 1 else ''}: {', '.join(parts)} ({checked})."


def finding_to_dict(finding: Finding) -> dict:
    span = finding.span
    return {
        "rule": finding.rule_id,
        "name": finding.rule_name,
        "severity": str(finding.severity),
        "message": finding.message,
        "path": span.path,
        "line": span.line,
        "column": span.column,
        "end_line": span.end_line,
        "end_column": span.end_column,
        "related": [
            {"path": r.span.path, "line": r.span.line, "column": r.span.column, "message": r.message}
            for r in finding.related
        ],
    }


def write_json(result: RunResult, out: TextIO, colour: bool = False) -> None:
    document = {
        "version": JSON_FORMAT_VERSION,
        "tool": {"name": "mailproxy-lint", "version": result.version},
        "files": result.files,
        "findings": [finding_to_dict(f) for f in result.findings],
        "summary": {str(sev): sum(1 for f in result.findings if f.severity is sev) for sev in Severity},
        "config": result.config,
        "suppressed": len(result.suppressed),
        "baselined": result.baselined,
    }
    if result.include_suppressed:
        document["suppressed_findings"] = [
            {**finding_to_dict(s.finding), "justification": s.justification} for s in result.suppressed]
    json.dump(document, out, indent=2)
    out.write("\n")


def write_sarif(result: RunResult, out: TextIO, colour: bool = False) -> None:
    from mailproxy_lint.sarif import write_sarif as write  # sarif-om is imported only for SARIF

    write(result, out)


# GitHub Actions workflow commands (`::error file=..,line=..::message`). The runner reads them from
# the step's output; see docs/github-code-scanning.md for how they compare with SARIF upload.
_GITHUB_COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}


def github_escape_data(text: str) -> str:
    """Escape a command's message: the runner would end the command at a line break."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_escape_property(text: str) -> str:
    """Escape a property value: `:` and `,` would otherwise end the value or the property list."""
    return github_escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_command(finding: Finding) -> str:
    """One finding as one workflow-command line.

    Related locations go into the message (after a line break, as in the text format), because
    an annotation has one location. Columns are sent only for a one-line span: GitHub ignores
    them on annotations that cover several lines. `endColumn` is the last column covered, so
    the exclusive `end_column` of the span is one past it.
    """
    span = finding.span
    end_line = max(span.end_line or span.line, span.line)
    one_line = end_line == span.line
    properties = [("file", span.path), ("line", span.line)]
    if one_line:
        properties.append(("col", span.column))
    properties.append(("endLine", end_line))
    if one_line and span.end_column is not None and span.end_column > span.column:
        properties.append(("endColumn", span.end_column - 1))
    properties.append(("title", f"{finding.rule_id} {finding.rule_name}"))
    message = finding.message
    for related in finding.related:
        message += f"\nrelated: {related.span} {related.message}"
    props = ",".join(f"{name}={github_escape_property(str(value))}" for name, value in properties)
    return f"::{_GITHUB_COMMANDS[finding.severity]} {props}::{github_escape_data(message)}"


def write_github(result: RunResult, out: TextIO, colour: bool = False) -> None:
    """One annotation per finding, then the summary as a plain log line."""
    for finding in result.findings:
        out.write(github_command(finding) + "\n")
    out.write(summary(result) + "\n")


REPORTERS: dict[str, Callable[[RunResult, TextIO, bool], None]] = {
    "text": write_text,
    "json": write_json,
    "sarif": write_sarif,
    "github": write_github,
}
