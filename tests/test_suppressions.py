"""Inline suppressions: reading the comments in every format, applying them, and the findings
about suppressions that do not work (MPL006) or no longer do anything (MPL007)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import SHORT_IDLE_HAPROXY, write_tree
from mailproxy_lint.api import Finding, Severity
from mailproxy_lint.cli import main
from mailproxy_lint.config import load
from mailproxy_lint.engine import all_rules, run
from mailproxy_lint.model import FileKind, SourceFile, Span
from mailproxy_lint.suppressions import review, scan

RULES = all_rules()

REASON = "-- batch clients only, no IDLE"


def haproxy(directive: str) -> str:
    """The short-idle HAProxy config with `directive` as a line of its own above `timeout client` (line 7)."""
    return SHORT_IDLE_HAPROXY.replace("    timeout client 50s\n", f"{directive}\n    timeout client 50s\n", 1)


def findings(**kwargs) -> set[tuple[str, int, str]]:
    return {(f.span.path, f.span.line, f.rule_id) for f in run([Path(".")], **kwargs).findings}


def source(text: str, kind: FileKind, path: str = "f") -> SourceFile:
    return SourceFile(path, kind, text)


# --------------------------------------------------------------------------------------------
# Reading directives in each format
# --------------------------------------------------------------------------------------------

# (kind, text, line of the directive, line it covers)
FORMATS = [
    (FileKind.DOVECOT, "protocols = imap\n# mailproxy-lint: disable-next-line=MPL201 -- x\n\n# other\nservice imap-login {\n}\n", 2, 5),
    (FileKind.POSTFIX_MAIN, "myhostname = a\n# mailproxy-lint: disable-next-line=MPL502 -- x\nsmtpd_upstream_proxy_protocol = haproxy\n", 2, 3),
    (FileKind.POSTFIX_MASTER, "smtpd pass - - y - - smtpd\n  # mailproxy-lint: disable-next-line=MPL104 -- x\n"
                              "  -o smtpd_upstream_proxy_protocol=haproxy\n", 2, 3),
    (FileKind.HAPROXY, "defaults\n    # mailproxy-lint: disable-next-line=MPL401 -- x\n    timeout client 50s\n", 2, 3),
    (FileKind.COMPOSE, "services:\n  m:\n    labels:\n      # mailproxy-lint: disable-next-line=MPL303 -- x\n"
                       "      - traefik.tcp.routers.a.rule=HostSNI(`a`)\n", 4, 5),
    (FileKind.DMS_USER_PATCHES, "#!/bin/bash\n# mailproxy-lint: disable-next-line=MPL504 -- x\npostconf -P a/inet/b=c\n", 2, 3),
    (FileKind.TRAEFIK_STATIC, "[entryPoints.imap]\n# mailproxy-lint: disable-next-line=MPL303 -- x\naddress = \":143\"\n", 2, 3),
]


@pytest.mark.parametrize("kind, text, line, target", FORMATS, ids=[f[0].value for f in FORMATS])
def test_directive_in_every_format(kind, text, line, target):
    (directive,) = scan(source(text, kind), RULES)
    assert directive.problem is None
    assert directive.span.line == line and directive.target == target
    assert directive.scope == "next-line" and directive.reason == "x"


def test_directive_fields():
    text = "a = 1\n  # mailproxy-lint: disable-file = MPL401, trusted-networks-missing  --  reviewed by ops \n"
    (directive,) = scan(source(text, FileKind.DOVECOT, "d.conf"), RULES)
    assert directive.scope == "file" and directive.target is None
    assert directive.rule_ids == ("MPL401", "MPL201")
    assert directive.reason == "reviewed by ops"
    assert directive.span == Span("d.conf", 2, 3, 2, 89)  # the comment, without trailing blanks


@pytest.mark.parametrize("comment, problem", [
    ("# mailproxy-lint: disable-next-line=MPL401", "a reason is required"),
    ("# mailproxy-lint: disable-next-line=MPL401 --", "a reason is required"),
    ("# mailproxy-lint: disable-next-line=MPL401 reason without dashes", "unknown rule `reason`"),
    ("# mailproxy-lint: disable-next-line=MPL499 -- x", "unknown rule `MPL499`"),
    ("# mailproxy-lint: disable-next-line=MPL4 -- x", "unknown rule `MPL4`"),  # no prefixes here
    ("# mailproxy-lint: disable-nextline=MPL401 -- x", "unknown directive `disable-nextline`; did you mean `disable-next-line`?"),
    ("# mailproxy-lint: disable=MPL401 -- x", "unknown directive `disable`"),
    ("# mailproxy-lint: disable-next-line -- x", "`disable-next-line` needs the rules to suppress"),
    ("# mailproxy-lint disable-next-line=MPL401 -- x", "a colon after the tool name"),
    ("# mailproxy_lint: disable-file=MPL401 -- x", "write the tool name as `mailproxy-lint`"),
    ("# mailproxy-lint: disable-file=MPL007 -- x", "MPL007 cannot be suppressed inline"),
    ("# mailproxy-lint: disable-file=invalid-suppression -- x", "MPL006 cannot be suppressed inline"),
])
def test_malformed_directives(comment, problem):
    (directive,) = scan(source(f"{comment}\ntimeout client 50s\n", FileKind.HAPROXY), RULES)
    assert directive.problem is not None and problem in directive.problem, directive.problem


def test_prose_mentioning_the_tool_is_no_directive():
    text = "# mailproxy-lint checks this file in CI\n# see mailproxy-lint --explain MPL401\nmode tcp\n"
    assert scan(source(text, FileKind.HAPROXY), RULES) == []


def test_trailing_directive_is_reported():
    (directive,) = scan(source("    timeout client 50s  # mailproxy-lint: disable-next-line=MPL401 -- x\n",
                               FileKind.HAPROXY), RULES)
    assert directive.span.column == 25 and "line of its own" in directive.problem


def test_directive_at_the_end_of_a_file():
    (directive,) = scan(source("mode tcp\n# mailproxy-lint: disable-next-line=MPL401 -- x\n\n# end\n", FileKind.HAPROXY), RULES)
    assert directive.problem == "no line follows this suppression"


# --------------------------------------------------------------------------------------------
# Applying them
# --------------------------------------------------------------------------------------------


def _finding(rule_id: str, path: str, line: int) -> Finding:
    return Finding(rule_id, "x", Severity.ERROR, "m", Span(path, line, 1))


def test_review_applies_by_line_and_file_and_lists_unused():
    text = ("# mailproxy-lint: disable-file=MPL201 -- overlay\n"
            "# mailproxy-lint: disable-next-line=MPL401,MPL404 -- batch\n"
            "timeout client 50s\n")
    directives = scan(source(text, FileKind.HAPROXY, "h.cfg"), RULES)
    hits = [_finding("MPL401", "h.cfg", 3), _finding("MPL401", "h.cfg", 4), _finding("MPL201", "h.cfg", 9),
            _finding("MPL401", "other.cfg", 3)]
    result = review(directives, hits)
    assert [(f.span.path, f.span.line) for f in result.kept] == [("h.cfg", 4), ("other.cfg", 3)]
    assert [(f.rule_id, d.reason) for f, d in result.suppressed] == [("MPL401", "batch"), ("MPL201", "overlay")]
    assert [(span.line, message) for span, message in result.unused] == [
        (2, "unused suppression: MPL404 reports nothing on line 3; remove MPL404 from this comment")]
    # rules that did not run are never called unused
    quiet = review(directives, hits, active=lambda rule_id, path: rule_id != "MPL404")
    assert quiet.unused == []
    assert review(directives, [], judge_unused=False).unused == []


def test_review_when_suppressions_are_forbidden():
    directives = scan(source("# mailproxy-lint: disable-next-line=MPL401 -- batch\ntimeout client 50s\n"
                             "# mailproxy-lint: disable-next-line=MPL401\nmode tcp\n", FileKind.HAPROXY, "h.cfg"), RULES)
    hits = [_finding("MPL401", "h.cfg", 2)]
    result = review(directives, hits, allowed=False)
    assert result.kept == hits and result.suppressed == [] and result.unused == []
    assert [(span.line, message.split(":")[0]) for span, message in result.invalid] == [
        (1, "inline suppressions are disabled (--no-inline-suppressions)"), (3, "invalid suppression")]


# --------------------------------------------------------------------------------------------
# End to end
# --------------------------------------------------------------------------------------------


def test_next_line_suppression_in_haproxy(tmp_path, monkeypatch):
    monkeypatch.chdir(write_tree(tmp_path, {"haproxy.cfg": haproxy(f"    # mailproxy-lint: disable-next-line=MPL401 {REASON}")}))
    result = run([Path(".")])
    assert result.findings == []
    (hidden,) = result.suppressed
    assert hidden.finding.rule_id == "MPL401" and hidden.finding.span.line == 8
    assert hidden.justification == "batch clients only, no IDLE"


def test_reason_is_required(tmp_path, monkeypatch):
    monkeypatch.chdir(write_tree(tmp_path, {"haproxy.cfg": haproxy("    # mailproxy-lint: disable-next-line=MPL401")}))
    assert findings() == {("haproxy.cfg", 7, "MPL006"), ("haproxy.cfg", 8, "MPL401")}


def test_unused_suppression(tmp_path, monkeypatch):
    text = haproxy(f"    # mailproxy-lint: disable-next-line=MPL401 {REASON}").replace("50s", "31m")
    monkeypatch.chdir(write_tree(tmp_path, {"haproxy.cfg": text}))
    assert findings() == {("haproxy.cfg", 7, "MPL007")}
    # not for a rule that was not selected, nor one ignored for that file
    assert findings(select=["MPL0"], ignore=["MPL401"]) == set()
    config_file = tmp_path / ".mailproxy-lint.toml"
    config_file.write_text('[per-file-ignores]\n"*.cfg" = ["MPL401"]\n')
    assert findings(config=load(config_file, RULES)) == set()


def test_suppressions_in_dovecot_master_cf_compose_and_user_patches(tmp_path, monkeypatch):
    monkeypatch.chdir(write_tree(tmp_path, {
        "dovecot/dovecot.conf": "# mailproxy-lint: disable-file=trusted-networks-missing -- set by the overlay\n"
                                "protocols = imap\nservice imap-login {\n  inet_listener imap {\n    port = 143\n"
                                "    haproxy = yes\n  }\n}\n",
        "postfix/main.cf": "myhostname = mail.example.com\n",
        "postfix/master.cf": "smtp      inet  n       -       y       -       1       postscreen\n"
                             "smtpd     pass  -       -       y       -       -       smtpd\n"
                             "  -o syslog_name=postfix/smtpd\n"
                             "  # mailproxy-lint: disable-next-line=MPL104 -- the 10025 variant reads PROXY\n"
                             "  -o smtpd_upstream_proxy_protocol=haproxy\n",
    }))
    result = run([Path(".")])
    assert {(s.finding.span.path, s.finding.span.line, s.finding.rule_id) for s in result.suppressed} == {
        ("dovecot/dovecot.conf", 6, "MPL201"), ("postfix/master.cf", 5, "MPL104")}
    assert not {f.rule_id for f in result.findings} & {"MPL201", "MPL104", "MPL006", "MPL007"}


def test_suppressions_in_compose_labels_and_user_patches(tmp_path, monkeypatch):
    monkeypatch.chdir(write_tree(tmp_path, {
        "compose.yaml": "services:\n  traefik:\n    image: traefik:v3.1\n    command:\n"
                        "      - --entrypoints.imaps.address=:993\n"
                        "  mailserver:\n    image: ghcr.io/docker-mailserver/docker-mailserver:15.0.0\n"
                        "    volumes:\n      - ./docker-data/dms/config/:/tmp/docker-mailserver/\n"
                        "    labels:\n      - traefik.enable=true\n"
                        "      # mailproxy-lint: disable-next-line=MPL303 -- staging stack\n"
                        "      - traefik.tcp.routers.imaps.rule=HostSNI(`mail.example.org`)\n"
                        "      - traefik.tcp.routers.imaps.entrypoints=imaps\n"
                        "      - traefik.tcp.services.imaps.loadbalancer.server.port=993\n",
        "docker-data/dms/config/user-patches.sh": "#!/bin/bash\n"
                                                  "# mailproxy-lint: disable-next-line=MPL504 -- our image adds 12525\n"
                                                  "postconf -P 12525/inet/postscreen_upstream_proxy_protocol=haproxy\n",
    }))
    result = run([Path(".")])
    hidden = {(s.finding.span.path, s.finding.span.line, s.finding.rule_id) for s in result.suppressed}
    assert hidden == {("compose.yaml", 13, "MPL303"), ("docker-data/dms/config/user-patches.sh", 3, "MPL504")}
    assert not {f.rule_id for f in result.findings} & {"MPL303", "MPL504", "MPL006", "MPL007"}


def test_forbid_switch_reports_every_suppression(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(write_tree(tmp_path, {"haproxy.cfg": haproxy(f"    # mailproxy-lint: disable-next-line=MPL401 {REASON}")}))
    assert findings(inline_suppressions=False) == {("haproxy.cfg", 7, "MPL006"), ("haproxy.cfg", 8, "MPL401")}
    for flag in ("--no-inline-suppressions", "--disable-suppressions"):
        assert main([flag, "."]) == 1
        out = capsys.readouterr().out
        assert "haproxy.cfg:7:5: MPL006 [warning] inline suppressions are disabled" in out
        assert "haproxy.cfg:8:5: MPL401 [error]" in out


def test_suppressed_findings_in_reports(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(write_tree(tmp_path, {"haproxy.cfg": haproxy(f"    # mailproxy-lint: disable-next-line=MPL401 {REASON}")}))
    assert main(["."]) == 0
    assert capsys.readouterr().out == "No problems found (1 file checked; 1 suppressed inline).\n"
    assert main(["--include-suppressed", "."]) == 0  # shown, but never failing the run
    assert "[suppressed: batch clients only, no IDLE]" in capsys.readouterr().out
    main(["--format", "json", "--include-suppressed", "."])
    doc = json.loads(capsys.readouterr().out)
    assert doc["suppressed"] == 1 and doc["findings"] == []
    assert doc["suppressed_findings"][0]["rule"] == "MPL401"
    assert doc["suppressed_findings"][0]["justification"] == "batch clients only, no IDLE"


def test_sarif_drops_suppressed_results_unless_asked(tmp_path, monkeypatch, capsys):
    from sarif_tools import validate_schema

    monkeypatch.chdir(write_tree(tmp_path, {"haproxy.cfg": haproxy(f"    # mailproxy-lint: disable-next-line=MPL401 {REASON}")}))
    main(["--format", "sarif", "."])
    assert json.loads(capsys.readouterr().out)["runs"][0]["results"] == []
    main(["--format", "sarif", "--include-suppressed", "."])
    doc = json.loads(capsys.readouterr().out)
    validate_schema(doc)
    (result,) = doc["runs"][0]["results"]
    assert result["ruleId"] == "MPL401"
    assert result["suppressions"] == [{"kind": "inSource", "justification": "batch clients only, no IDLE"}]
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 8
