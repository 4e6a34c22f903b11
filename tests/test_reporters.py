"""The text and JSON reporters on one shared set of findings."""
from __future__ import annotations

import io
import json

from mailproxy_lint.api import Finding, Related, Severity
from mailproxy_lint.engine import RunResult, all_rules
from mailproxy_lint.model import Span
from mailproxy_lint.report import summary, write_json, write_text


def sample_result() -> RunResult:
    rules = [r for r in all_rules() if r.id in {"MPL001", "MPL101"}]
    findings = [
        Finding("MPL001", "syntax-error", Severity.ERROR, "unexpected '}'; expected a setting",
                Span("dovecot/dovecot.conf", 3, 1)),
        Finding("MPL101", "proxy-header-not-accepted", Severity.ERROR, "sends PROXY v2 but ...",
                Span("dms/dovecot.cf", 4, 3, 4, 22),
                (Related(Span("compose.yaml", 30, 9), "the PROXY header is sent here"),)),
    ]
    return RunResult(findings, rules, ["compose.yaml", "dms/dovecot.cf", "dovecot/dovecot.conf"])


def test_text_lines_related_and_summary():
    out = io.StringIO()
    write_text(sample_result(), out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "dovecot/dovecot.conf:3:1: MPL001 [error] unexpected '}'; expected a setting"
    assert lines[1] == "dms/dovecot.cf:4:3: MPL101 [error] sends PROXY v2 but ..."
    assert lines[2] == "    related: compose.yaml:30:9 the PROXY header is sent here"
    assert lines[3] == "Found 2 problems: 2 errors (3 files checked)."
    assert "\033[" not in out.getvalue()


def test_text_colour_only_when_asked():
    out = io.StringIO()
    write_text(sample_result(), out, True)
    assert "\033[31merror\033[0m" in out.getvalue()


def test_summary_when_clean():
    assert summary(RunResult([], [], ["a.cfg"])) == "No problems found (1 file checked)."


def test_json_is_versioned_and_complete():
    out = io.StringIO()
    write_json(sample_result(), out)
    doc = json.loads(out.getvalue())
    assert doc["version"] == 1
    assert doc["tool"]["name"] == "mailproxy-lint"
    second = doc["findings"][1]
    assert second == {
        "rule": "MPL101", "name": "proxy-header-not-accepted", "severity": "error",
        "message": "sends PROXY v2 but ...", "path": "dms/dovecot.cf", "line": 4, "column": 3,
        "end_line": 4, "end_column": 22,
        "related": [{"path": "compose.yaml", "line": 30, "column": 9, "message": "the PROXY header is sent here"}],
    }
    assert doc["summary"] == {"note": 0, "warning": 0, "error": 2}
