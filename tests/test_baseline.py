"""Baselines: --write-baseline records today's findings, --baseline reports only new ones."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailproxy_lint.api import Finding, Severity
from mailproxy_lint.baseline import Baseline, fingerprints
from mailproxy_lint.cli import main
from mailproxy_lint.engine import RunResult, all_rules
from mailproxy_lint.model import Deployment, FileKind, SourceFile, Span
from mailproxy_lint.sarif import FINGERPRINT_KEY, build_log, to_json_dict

# every test starts from `short_idle` (conftest): one MPL401 at haproxy/haproxy.cfg:7

# a second IMAP path, in its own section, with its own short timeout: a new MPL401
NEW_ROUTE = """
listen imaps
    bind :993
    timeout client 40s
    timeout server 40s
    server mail2 10.0.0.5:993 send-proxy-v2
"""


def test_round_trip_survives_a_line_inserted_above(short_idle, capsys):
    assert main(["--write-baseline", "baseline.json", "."]) == 0
    captured = capsys.readouterr()
    assert captured.err == "mailproxy-lint: wrote 1 finding to baseline.json\n"
    assert captured.out == "No problems found (1 file checked; 1 baselined).\n"
    cfg = short_idle / "haproxy" / "haproxy.cfg"
    cfg.write_text(cfg.read_text().replace("defaults\n", "# tuned for the load balancer\n\ndefaults\n"))
    assert main(["--baseline", "baseline.json", "."]) == 0
    assert capsys.readouterr().out == "No problems found (1 file checked; 1 baselined).\n"
    # without the baseline the finding is still there, two lines further down
    assert main(["."]) == 1
    assert capsys.readouterr().out.startswith("haproxy/haproxy.cfg:9:5: MPL401 [error]")


def test_a_new_finding_is_reported(short_idle, capsys):
    main(["--write-baseline", "baseline.json", "."])
    capsys.readouterr()
    cfg = short_idle / "haproxy" / "haproxy.cfg"
    cfg.write_text(cfg.read_text() + NEW_ROUTE)
    assert main(["--baseline", "baseline.json", "--format", "json", "."]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [(f["rule"], f["line"]) for f in doc["findings"]] == [("MPL401", 19)]
    assert doc["baselined"] == 1


def test_changing_the_flagged_line_makes_the_finding_new(short_idle, capsys):
    main(["--write-baseline", "baseline.json", "."])
    capsys.readouterr()
    cfg = short_idle / "haproxy" / "haproxy.cfg"
    cfg.write_text(cfg.read_text().replace("timeout client 50s", "timeout client 45s"))
    assert main(["--baseline", "baseline.json", "."]) == 1
    assert "haproxy/haproxy.cfg:7:5: MPL401" in capsys.readouterr().out


def test_baseline_works_from_another_working_directory(short_idle, monkeypatch, capsys):
    main(["--write-baseline", "baseline.json", "."])
    monkeypatch.chdir(short_idle / "haproxy")
    assert main(["--baseline", "../baseline.json", "."]) == 0
    assert "1 baselined" in capsys.readouterr().out


def test_file_format_is_versioned_sorted_and_stable(short_idle, capsys):
    cfg = short_idle / "haproxy" / "haproxy.cfg"
    cfg.write_text(cfg.read_text() + NEW_ROUTE)
    (short_idle / "dovecot.conf").write_text("protocols = imap\nservice imap-login {\n  inet_listener imap {\n"
                                          "    haproxy = yes\n  }\n}\n")
    main(["--write-baseline", "b1.json", "."])
    main(["--write-baseline", "b2.json", "."])
    capsys.readouterr()
    text = (short_idle / "b1.json").read_text()
    assert text == (short_idle / "b2.json").read_text() and text.endswith("}\n")
    doc = json.loads(text)
    assert list(doc) == ["version", "tool", "findings"] and doc["version"] == 1 and doc["tool"] == "mailproxy-lint"
    entries = doc["findings"]
    assert len(entries) >= 3
    assert [(e["path"], e["rule"], e["fingerprint"]) for e in entries] == sorted(
        (e["path"], e["rule"], e["fingerprint"]) for e in entries)
    assert all(list(e) == ["path", "rule", "fingerprint", "message"] for e in entries)
    assert {e["path"] for e in entries} == {"dovecot.conf", "haproxy/haproxy.cfg"}


@pytest.mark.parametrize("content, message", [
    ("{\n  \"version\": 1,\n", "b.json:3: not a baseline file (invalid JSON"),
    ('{"version": 1, "findings": []}', 'b.json: not a mailproxy-lint baseline'),
    ('{"version": 9, "tool": "mailproxy-lint", "findings": []}', "b.json: baseline version 9 is not supported"),
    ('{"version": 1, "tool": "mailproxy-lint", "findings": {}}', 'b.json: "findings" must be a list'),
    ('{"version": 1, "tool": "mailproxy-lint", "findings": [{"rule": "MPL401"}]}', "b.json: finding 1 needs string"),
])
def test_broken_baseline_is_a_clear_error(short_idle, capsys, content, message):
    (short_idle / "b.json").write_text(content)
    assert main(["--baseline", "b.json", "."]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"mailproxy-lint: {message}") and captured.err.count("\n") == 1


def test_missing_baseline_is_a_clear_error(short_idle, capsys):
    assert main(["--baseline", "nope.json", "."]) == 2
    assert capsys.readouterr().err.startswith("mailproxy-lint: nope.json: cannot read baseline")


def test_sarif_and_baseline_share_one_fingerprint():
    text = "defaults\n    timeout client 50s\n\n    timeout client 50s\n"
    source = SourceFile("h.cfg", FileKind.HAPROXY, text, "/repo/h.cfg")
    findings = [Finding("MPL401", "idle-timeout-too-short", Severity.ERROR, "m", Span("h.cfg", line, 5))
                for line in (2, 4)]
    prints = fingerprints(findings, {"h.cfg": text})
    assert prints[0].split(":")[0] == prints[1].split(":")[0]  # same text, told apart by occurrence
    assert [p.split(":")[1] for p in prints] == ["1", "2"]
    # re-indenting the line changes nothing
    assert fingerprints(findings[:1], {"h.cfg": text.replace("    timeout", "\ttimeout")}) == prints[:1]
    result = RunResult(findings, all_rules(), ["h.cfg"], [Deployment("/repo", files=(source,))])
    sarif = to_json_dict(build_log(result, Path("/repo")))
    assert [r["partialFingerprints"][FINGERPRINT_KEY] for r in sarif["runs"][0]["results"]] == prints
    # a baseline file beside the scanned file records the same fingerprints
    entries = Baseline(Path("/repo/baseline.json"), {"h.cfg": text}, {"h.cfg": "/repo/h.cfg"}).entries(findings)
    assert [e.fingerprint for e in entries] == prints
