"""`--format github`: GitHub Actions workflow commands, their escaping, and the automatic choice."""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

from hypothesis import given, strategies as st

from mailproxy_lint.api import Finding, Related, Severity
from mailproxy_lint.cli import main
from mailproxy_lint.engine import RunResult, all_rules
from mailproxy_lint.model import Span
from mailproxy_lint.report import REPORTERS, github_command, github_escape_data, github_escape_property

REPO = Path(__file__).resolve().parents[1]
BROKEN_FIXTURE = REPO / "tests" / "fixtures" / "rules" / "MPL101" / "bad-haproxy-to-dovecot-without-haproxy"
BROKEN_DOVECOT = "service imap-login {\n  inet_listener imap {\n    port = 143\n}\n"


def finding(message: str = "sends PROXY v2", span: Span | None = None, severity: Severity = Severity.ERROR,
            related: tuple[Related, ...] = ()) -> Finding:
    return Finding("MPL101", "proxy-header-not-accepted", severity, message,
                   span or Span("dms/dovecot.cf", 4, 3, 4, 22), related)


def parse_command(line: str) -> tuple[str, dict[str, str], str]:
    """Read a workflow command back the way the Actions runner does (split, then unescape)."""
    match = re.fullmatch(r"::(\w+) ([^:]*)::(.*)", line)
    assert match, f"not a workflow command with properties: {line!r}"
    command, props, data = match.groups()

    def unescape(text: str) -> str:
        for escaped, raw in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
            text = text.replace(escaped, raw)
        return text

    properties = dict(pair.split("=", 1) for pair in props.split(","))
    return command, {k: unescape(v) for k, v in properties.items()}, unescape(data)


# --------------------------------------------------------------------------------------------
# The command line for one finding
# --------------------------------------------------------------------------------------------


def test_one_line_span_gives_every_position_property():
    assert github_command(finding()) == (
        "::error file=dms/dovecot.cf,line=4,col=3,endLine=4,endColumn=21,"
        "title=MPL101 proxy-header-not-accepted::sends PROXY v2"
    )


def test_multi_line_span_leaves_out_columns():
    # GitHub only honours columns when the annotation starts and ends on the same line.
    line = github_command(finding(span=Span("haproxy.cfg", 8, 1, 10, 5)))
    assert line.startswith("::error file=haproxy.cfg,line=8,endLine=10,title=MPL101 ")
    assert "col=" not in line and "endColumn=" not in line


def test_span_without_end_is_one_line():
    line = github_command(finding(span=Span("haproxy.cfg", 12, 7)))
    assert line.startswith("::error file=haproxy.cfg,line=12,col=7,endLine=12,title=")
    assert "endColumn" not in line


def test_severities_map_to_error_warning_notice():
    assert github_command(finding(severity=Severity.ERROR)).startswith("::error ")
    assert github_command(finding(severity=Severity.WARNING)).startswith("::warning ")
    assert github_command(finding(severity=Severity.NOTE)).startswith("::notice ")


def test_related_locations_are_folded_into_the_message():
    related = (Related(Span("compose.yaml", 75, 9), "the PROXY header is sent here"),
               Related(Span("haproxy/haproxy.cfg", 3, 1), "defaults 'mail'"))
    line = github_command(finding(related=related))
    assert "\n" not in line
    assert line.endswith("::sends PROXY v2%0Arelated: compose.yaml:75:9 the PROXY header is sent here"
                         "%0Arelated: haproxy/haproxy.cfg:3:1 defaults 'mail'")


# --------------------------------------------------------------------------------------------
# Escaping
# --------------------------------------------------------------------------------------------


def test_data_escapes_percent_cr_and_lf_only():
    assert github_escape_data("100%") == "100%25"
    assert github_escape_data("a\rb") == "a%0Db"
    assert github_escape_data("a\nb") == "a%0Ab"
    assert github_escape_data("a\r\nb") == "a%0D%0Ab"
    # ':' and ',' are fine in the message, which runs to the end of the line
    assert github_escape_data("host:port, again") == "host:port, again"
    # escaping '%' first keeps an existing '%0A' literal
    assert github_escape_data("%0A") == "%250A"


def test_property_escapes_colon_and_comma_too():
    assert github_escape_property("a:b") == "a%3Ab"
    assert github_escape_property("a,b") == "a%2Cb"
    assert github_escape_property("50%") == "50%25"
    assert github_escape_property("x\ry\nz") == "x%0Dy%0Az"
    assert github_escape_property("%3A") == "%253A"


def test_every_special_character_in_a_real_command():
    span = Span("conf,d/weird:name%.cfg", 2, 1, 2, 4)
    line = github_command(finding("50% of\r\nclients: lost, badly", span))
    assert line == ("::error file=conf%2Cd/weird%3Aname%25.cfg,line=2,col=1,endLine=2,endColumn=3,"
                    "title=MPL101 proxy-header-not-accepted::50%25 of%0D%0Aclients: lost, badly")
    command, props, message = parse_command(line)
    assert command == "error"
    assert props["file"] == "conf,d/weird:name%.cfg"
    assert message == "50% of\r\nclients: lost, badly"


@given(path=st.text(min_size=1, max_size=40).filter(lambda p: "\x00" not in p), message=st.text(max_size=80))
def test_any_text_survives_the_round_trip(path, message):
    line = github_command(finding(message, Span(path, 1, 1, 1, 2)))
    assert "\n" not in line and "\r" not in line
    _, props, data = parse_command(line)
    assert props["file"] == path
    assert data == message


def test_report_has_one_command_per_finding_then_the_summary():
    rules = [r for r in all_rules() if r.id == "MPL101"]
    result = RunResult([finding(), finding(severity=Severity.NOTE, span=Span("b.cfg", 1, 1))], rules,
                       ["b.cfg", "dms/dovecot.cf"])
    out = io.StringIO()
    REPORTERS["github"](result, out, False)
    lines = out.getvalue().splitlines()
    assert [line.split(" ", 1)[0] for line in lines[:2]] == ["::error", "::notice"]
    assert lines[2] == "Found 2 problems: 1 error, 1 note (2 files checked)."
    assert len(lines) == 3


# --------------------------------------------------------------------------------------------
# Choosing the format
# --------------------------------------------------------------------------------------------


def test_github_actions_env_selects_annotations(monkeypatch, capsys, tmp_path):
    (tmp_path / "dovecot.conf").write_text(BROKEN_DOVECOT)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert main([str(tmp_path)]) == 1
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("::error file=")
    assert ",title=MPL001 syntax-error::" in first


def test_without_github_actions_env_output_is_text(monkeypatch, capsys, tmp_path):
    (tmp_path / "dovecot.conf").write_text(BROKEN_DOVECOT)
    for value in (None, "false", "1"):  # the runner sets exactly "true"
        if value is None:
            monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
        else:
            monkeypatch.setenv("GITHUB_ACTIONS", value)
        assert main([str(tmp_path)]) == 1
        out = capsys.readouterr().out
        assert not out.startswith("::"), value
        assert " MPL001 [error] " in out


def test_explicit_format_wins_over_the_environment(monkeypatch, capsys, tmp_path):
    (tmp_path / "dovecot.conf").write_text(BROKEN_DOVECOT)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert main(["--format", "text", str(tmp_path)]) == 1
    assert " MPL001 [error] " in capsys.readouterr().out
    monkeypatch.delenv("GITHUB_ACTIONS")
    assert main(["--format", "github", str(tmp_path)]) == 1
    assert capsys.readouterr().out.startswith("::error file=")


def test_report_file_stays_text_inside_github_actions(monkeypatch, capsys, tmp_path):
    # The runner reads commands only from a step's output, so a file gets the readable format.
    (tmp_path / "dovecot.conf").write_text(BROKEN_DOVECOT)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    report = tmp_path / "report.txt"
    assert main(["--output", str(report), str(tmp_path)]) == 1
    assert capsys.readouterr().out == ""
    assert " MPL001 [error] " in report.read_text()


def test_installed_command_in_a_github_job(tmp_path):
    """The whole program as the runner starts it: real fixture, real environment variable."""
    env = {**os.environ, "GITHUB_ACTIONS": "true", "NO_COLOR": "1"}
    proc = subprocess.run([sys.executable, "-m", "mailproxy_lint", str(BROKEN_FIXTURE.relative_to(REPO))],
                          cwd=REPO, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1, proc.stderr
    commands = [parse_command(line) for line in proc.stdout.splitlines() if line.startswith("::")]
    mpl101 = [c for c in commands if c[1]["title"] == "MPL101 proxy-header-not-accepted"]
    assert len(mpl101) == 1
    command, props, message = mpl101[0]
    assert command == "error"
    assert props["file"] == f"{BROKEN_FIXTURE.relative_to(REPO).as_posix()}/dovecot/dovecot.conf"
    assert int(props["line"]) >= 1
    assert "\nrelated: " in message and "haproxy/haproxy.cfg:" in message
    assert proc.stdout.splitlines()[-1].startswith("Found ")
