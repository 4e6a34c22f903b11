"""The SARIF reporter: valid SARIF 2.1.0, clean under GitHub's ingestion rules, stable identities.

The run results are fabricated (rules with real-looking pages, findings with exact spans), so
these tests pin the reporter alone; scenario tests can reuse `sarif_tools` on real runs.
"""
from __future__ import annotations

import io
import json
import random
import re
from pathlib import Path

import pytest

from mailproxy_lint.api import Finding, Related, Rule, Severity, rule
from mailproxy_lint.engine import RunResult
from mailproxy_lint.model import Deployment, FileKind, SourceFile, Span
from mailproxy_lint.report import REPORTERS
from mailproxy_lint.rules.syntax import syntax_error
from mailproxy_lint.sarif import FINGERPRINT_KEY, to_json_dict, write_sarif
from sarif_tools import run_multitool, validate_schema

HAPROXY = "haproxy/haproxy.cfg"
DOVECOT = "dovecot/conf.d/10 master.conf"  # a space, to check percent-encoding
COMPOSE = "compose.yaml"

HAPROXY_TEXT = """\
global
    log stdout format raw local0

defaults
    mode tcp
    timeout connect 5s

frontend imaps
    bind :993
    default_backend dovecot_imaps

backend dovecot_imaps
    server mail mailserver:10993 send-proxy-v2
"""

DOVECOT_TEXT = """\
service imap-login {
  inet_listener imaps {
    port = 10993
    ssl = yes
  }
}
"""

COMPOSE_TEXT = """\
services:
  mailserver:
    image: mailserver/docker-mailserver:15
    ports:
      - "993:993"
"""


@rule("MPL101", "proxy-header-not-accepted", Severity.ERROR,
      summary="A hop sends a PROXY header the receiver does not accept",
      tags=("proxy-protocol",), security_severity=7.5)
def proxy_header_not_accepted(ctx):
    """## Why it matters
    The receiver reads the PROXY header as the client's first command and drops
    the connection, so every client of this port fails.

    Second paragraph, not part of the full description.

    ## Bad
    ```
    server mail mailserver:10993 send-proxy-v2
    ```

    ## Good
    ```
    inet_listener imaps {
      haproxy = yes
    }
    ```

    ## Fix
    Accept the header on the listener, or stop sending it.
    """
    return ()


@rule("MPL108", "client-ip-lost", Severity.WARNING, summary="The mail server sees the proxy's address",
      tags=("proxy-protocol", "client-ip"))
def client_ip_lost(ctx):
    """## Why it matters
    Rate limits and DNSBL checks act on the proxy instead of the client.
    """
    return ()


@rule("MPL501", "unused-backend", Severity.NOTE, summary="A backend no route uses")
def unused_backend(ctx):
    """## Why it matters
    Nothing reaches it.
    """
    return ()


ALL_RULES = [syntax_error, proxy_header_not_accepted, client_ip_lost, unused_backend]


def cross_file_finding(line: int = 13, haproxy_file: str = HAPROXY) -> Finding:
    """PROXY sent by HAProxy, not accepted by Dovecot: two related locations in two other files."""
    return Finding(
        "MPL101", "proxy-header-not-accepted", Severity.ERROR,
        "backend [dovecot_imaps] sends PROXY v2 but Dovecot's imaps listener does not accept it",
        Span(haproxy_file, line, 5, line, 47),
        (Related(Span(DOVECOT, 2, 3, 2, 23), "listener without haproxy = yes"),
         Related(Span(COMPOSE, 5, 9), "port published here")),
    )


def syntax_finding() -> Finding:
    return Finding("MPL001", "syntax-error", Severity.ERROR, "unexpected '}'; expected a setting",
                   Span(DOVECOT, 1, 1))


def lowered_finding() -> Finding:
    """An error rule reporting a warning: the level must be written, not left to the default."""
    return Finding("MPL101", "proxy-header-not-accepted", Severity.WARNING,
                   "health checks will fail on this listener", Span(HAPROXY, 9, 5))


def note_finding() -> Finding:
    return Finding("MPL501", "unused-backend", Severity.NOTE, "backend 'old' is never used.",
                   Span(HAPROXY, 12, 1))


def files(haproxy_text: str = HAPROXY_TEXT) -> tuple[SourceFile, ...]:
    return (SourceFile(HAPROXY, FileKind.HAPROXY, haproxy_text),
            SourceFile(DOVECOT, FileKind.DOVECOT, DOVECOT_TEXT),
            SourceFile(COMPOSE, FileKind.COMPOSE, COMPOSE_TEXT))


def make_result(findings, rules=None, source_files=None) -> RunResult:
    source_files = files() if source_files is None else source_files
    return RunResult(
        findings=list(findings),
        rules=list(ALL_RULES if rules is None else rules),
        files=sorted(f.path for f in source_files),
        deployments=[Deployment(".", source_files)],
        version="1.2.3",
    )


def sarif_text(result: RunResult) -> str:
    out = io.StringIO()
    write_sarif(result, out)
    return out.getvalue()


def sarif(result: RunResult) -> dict:
    return json.loads(sarif_text(result))


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Run from a scratch directory: %SRCROOT% is the working directory."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def full_result() -> RunResult:
    return make_result([cross_file_finding(), syntax_finding(), lowered_finding(), note_finding()])


def results_by_rule(doc: dict, rule_id: str) -> list[dict]:
    return [r for r in doc["runs"][0]["results"] if r["ruleId"] == rule_id]


def physical(location: dict) -> dict:
    return location["physicalLocation"]


# --------------------------------------------------------------------------------------------
# Validity
# --------------------------------------------------------------------------------------------


def test_output_validates_against_the_sarif_schema(full_result):
    validate_schema(sarif(full_result))


def test_output_validates_without_findings():
    validate_schema(sarif(make_result([])))


def test_multitool_reports_no_errors_and_no_warnings(full_result, tmp_path):
    path = tmp_path / "mailproxy-lint.sarif"
    path.write_text(sarif_text(full_result), encoding="utf-8")
    errors, warnings, text = run_multitool(path)
    assert errors == [], text
    assert warnings == [], text


def test_multitool_helper_does_report_problems(full_result, tmp_path):
    """Guards the helper itself: a log missing what GitHub needs must not pass."""
    doc = sarif(full_result)
    del doc["runs"][0]["tool"]["driver"]["informationUri"]  # SARIF2005, a warning
    del physical(doc["runs"][0]["results"][0]["locations"][0])["artifactLocation"]["uri"]  # GH1017
    path = tmp_path / "broken.sarif"
    path.write_text(json.dumps(doc), encoding="utf-8")
    errors, warnings, _ = run_multitool(path)
    assert any(e.startswith("GH1017 ") for e in errors)
    assert any(w.startswith("SARIF2005 ") for w in warnings)


def test_the_sarif_reporter_delegates_here(full_result):
    out = io.StringIO()
    REPORTERS["sarif"](full_result, out, False)
    assert out.getvalue() == sarif_text(full_result)


# --------------------------------------------------------------------------------------------
# Log, run and tool
# --------------------------------------------------------------------------------------------


def test_log_has_one_run_with_what_github_reads(full_result, tmp_path):
    text = sarif_text(full_result)
    doc = json.loads(text)
    assert list(doc)[:2] == ["$schema", "version"]
    assert doc["version"] == "2.1.0"
    assert len(doc["runs"]) == 1
    run = doc["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "mailproxy-lint"
    assert driver["version"] == driver["semanticVersion"] == "1.2.3"
    assert driver["informationUri"] == "https://github.com/mailproxy-lint/mailproxy-lint"
    assert run["automationDetails"] == {"id": "mailproxy-lint/"}
    assert run["columnKind"] == "unicodeCodePoints"
    assert run["invocations"] == [{"executionSuccessful": True}]
    srcroot = run["originalUriBaseIds"]["%SRCROOT%"]["uri"]
    assert srcroot == tmp_path.as_uri() + "/"
    # no timestamps, and none of sarif-om's filler defaults leak into the output
    for absent in ("startTimeUtc", "endTimeUtc", '"kind"', '"rank"', '"language"',
                   "newlineSequences", '"contents"', "byteOffset", "charOffset", '"enabled"'):
        assert absent not in text


def test_every_enabled_rule_is_described_even_without_results(full_result):
    rules = sarif(full_result)["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["MPL001", "MPL101", "MPL108", "MPL501"]
    by_id = {r["id"]: r for r in rules}
    assert not results_by_rule(sarif(full_result), "MPL108")
    lost = by_id["MPL108"]
    assert lost["name"] == "client-ip-lost"
    assert lost["shortDescription"] == {"text": "The mail server sees the proxy's address"}
    assert lost["defaultConfiguration"] == {"level": "warning"}
    assert lost["properties"] == {"precision": "high", "tags": ["proxy-protocol", "client-ip"]}
    assert lost["helpUri"] == (
        "https://github.com/mailproxy-lint/mailproxy-lint/blob/main/docs/rules/MPL108.md")


def test_rule_descriptor_comes_from_the_rule_page():
    descriptor = sarif(make_result([]))["runs"][0]["tool"]["driver"]["rules"][1]
    assert descriptor["id"] == "MPL101"
    assert descriptor["fullDescription"]["text"] == (
        "The receiver reads the PROXY header as the client's first command and drops "
        "the connection, so every client of this port fails.")
    page = proxy_header_not_accepted.doc
    assert descriptor["help"] == {"text": page, "markdown": page}
    assert descriptor["help"]["markdown"].startswith("## Why it matters\n")
    assert "## Fix\nAccept the header" in descriptor["help"]["markdown"]
    assert descriptor["defaultConfiguration"] == {"level": "error"}


def test_security_severity_is_a_string_and_marks_the_rule_as_security():
    descriptor = sarif(make_result([]))["runs"][0]["tool"]["driver"]["rules"][1]
    assert descriptor["properties"]["security-severity"] == "7.5"
    assert descriptor["properties"]["tags"] == ["proxy-protocol", "security"]
    syntax = sarif(make_result([]))["runs"][0]["tool"]["driver"]["rules"][0]
    assert "security-severity" not in syntax["properties"]
    assert "security" not in syntax["properties"]["tags"]


def test_descriptions_are_clipped_to_githubs_limit():
    long_rule = Rule("MPL900", "long-page", Severity.NOTE, "S" * 2000, lambda ctx: (),
                     tags=("x",))
    long_rule.check.__doc__ = "## Why it matters\n" + "word " * 400
    descriptor = sarif(make_result([], rules=[long_rule]))["runs"][0]["tool"]["driver"]["rules"][0]
    assert len(descriptor["shortDescription"]["text"]) == 1024
    assert len(descriptor["fullDescription"]["text"]) <= 1024


def test_rule_without_a_page_still_has_descriptions_and_help():
    bare = Rule("MPL901", "no-page", Severity.WARNING, "Summary only", lambda ctx: ())
    descriptor = sarif(make_result([], rules=[bare]))["runs"][0]["tool"]["driver"]["rules"][0]
    assert descriptor["fullDescription"] == {"text": "Summary only"}
    assert descriptor["help"] == {"text": "Summary only", "markdown": "Summary only"}


def test_finding_of_a_rule_missing_from_rules_still_gets_a_descriptor():
    doc = sarif(make_result([note_finding()], rules=[syntax_error]))
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["MPL001", "MPL501"]
    assert doc["runs"][0]["results"][0]["ruleIndex"] == 1
    validate_schema(doc)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


def test_levels_follow_each_findings_severity(full_result):
    doc = sarif(full_result)
    levels = {(r["ruleId"], r["message"]["text"].split(" ")[0]): r["level"] for r in doc["runs"][0]["results"]}
    assert levels == {
        ("MPL001", "unexpected"): "error",
        ("MPL101", "backend"): "error",
        ("MPL101", "health"): "warning",  # explicit although the rule defaults to error
        ("MPL501", "backend"): "note",
    }


def test_rule_index_points_at_the_rule(full_result):
    run = sarif(full_result)["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_syntax_error_is_an_ordinary_result_on_line_1_column_1(full_result):
    [result] = results_by_rule(sarif(full_result), "MPL001")
    assert result["message"] == {"text": "unexpected '}'; expected a setting"}
    [location] = result["locations"]
    assert physical(location)["artifactLocation"] == {
        "uri": "dovecot/conf.d/10%20master.conf", "uriBaseId": "%SRCROOT%"}
    assert physical(location)["region"] == {"startLine": 1, "startColumn": 1, "endLine": 1, "endColumn": 2}
    assert "relatedLocations" not in result


def test_cross_file_finding_links_its_related_locations(full_result):
    [result] = [r for r in results_by_rule(sarif(full_result), "MPL101") if r["level"] == "error"]
    assert physical(result["locations"][0])["artifactLocation"]["uri"] == HAPROXY
    assert physical(result["locations"][0])["region"] == {
        "startLine": 13, "startColumn": 5, "endLine": 13, "endColumn": 47}
    related = result["relatedLocations"]
    assert [r["id"] for r in related] == [1, 2]
    assert [physical(r)["artifactLocation"]["uri"] for r in related] == [
        "dovecot/conf.d/10%20master.conf", COMPOSE]
    assert [r["message"]["text"] for r in related] == [
        "listener without haproxy = yes", "port published here"]
    assert physical(related[1])["region"] == {"startLine": 5, "startColumn": 9, "endLine": 5, "endColumn": 10}

    text = result["message"]["text"]
    assert text == (
        "backend \\[dovecot_imaps\\] sends PROXY v2 but Dovecot's imaps listener does not accept it."
        " Related: [dovecot/conf.d/10 master.conf:2](1), [compose.yaml:5](2).")
    # every link (an unescaped [text](n)) names a related location, and every one is linked
    links = re.findall(r"(?<!\\)\[((?:[^\]\\]|\\.)*)\]\((\d+)\)", text)
    assert sorted(int(n) for _, n in links) == [r["id"] for r in related]


def test_brackets_in_related_paths_are_escaped_in_link_text():
    finding = Finding("MPL101", "proxy-header-not-accepted", Severity.ERROR, "sent.",
                      Span(HAPROXY, 13, 5), (Related(Span("conf[1].d/x.conf", 3, 1), "here"),))
    [result] = sarif(make_result([finding]))["runs"][0]["results"]
    assert result["message"]["text"] == "sent. Related: [conf\\[1\\].d/x.conf:3](1)."
    assert physical(result["relatedLocations"][0])["artifactLocation"]["uri"] == "conf%5B1%5D.d/x.conf"


def test_paths_outside_the_working_directory_become_file_uris(tmp_path):
    outside = tmp_path.parent / "elsewhere dir" / "main.cf"
    findings = [Finding("MPL501", "unused-backend", Severity.NOTE, "n.", Span(str(outside), 2, 1)),
                Finding("MPL501", "unused-backend", Severity.NOTE, "n.", Span("../up/main.cf", 3, 1)),
                Finding("MPL501", "unused-backend", Severity.NOTE, "n.", Span("./here/main.cf", 4, 1))]
    doc = sarif(make_result(findings))
    locations = {physical(r["locations"][0])["region"]["startLine"]: physical(r["locations"][0])["artifactLocation"]
                 for r in doc["runs"][0]["results"]}
    assert locations[2] == {"uri": outside.as_uri()}
    assert "%20" in locations[2]["uri"]
    assert locations[3] == {"uri": (tmp_path.parent / "up" / "main.cf").as_uri()}
    assert locations[4] == {"uri": "here/main.cf", "uriBaseId": "%SRCROOT%"}
    validate_schema(doc)


@pytest.mark.parametrize(("span", "region"), [
    (Span(HAPROXY, 3, 7), {"startLine": 3, "startColumn": 7, "endLine": 3, "endColumn": 8}),
    (Span(HAPROXY, 3, 7, 3, 12), {"startLine": 3, "startColumn": 7, "endLine": 3, "endColumn": 12}),
    (Span(HAPROXY, 3, 7, 3, 7), {"startLine": 3, "startColumn": 7, "endLine": 3, "endColumn": 8}),
    (Span(HAPROXY, 3, 7, 1, 2), {"startLine": 3, "startColumn": 7, "endLine": 3, "endColumn": 8}),
    (Span(HAPROXY, 3, 7, 5, 4), {"startLine": 3, "startColumn": 7, "endLine": 5, "endColumn": 4}),
    # a later end line without a column runs to the end of that line ("defaults" + 1)
    (Span(HAPROXY, 2, 5, 4, None), {"startLine": 2, "startColumn": 5, "endLine": 4, "endColumn": 9}),
])
def test_regions_always_have_an_end_after_the_start(span, region):
    finding = Finding("MPL501", "unused-backend", Severity.NOTE, "n.", span)
    [result] = sarif(make_result([finding]))["runs"][0]["results"]
    assert physical(result["locations"][0])["region"] == region


# --------------------------------------------------------------------------------------------
# Fingerprints and determinism
# --------------------------------------------------------------------------------------------


def fingerprint(doc: dict) -> str:
    [result] = [r for r in doc["runs"][0]["results"] if r["ruleId"] == "MPL101"]
    return result["partialFingerprints"][FINGERPRINT_KEY]


def test_fingerprint_is_namespaced_and_leaves_githubs_key_alone(full_result):
    for result in sarif(full_result)["runs"][0]["results"]:
        assert list(result["partialFingerprints"]) == ["mailproxy-lint/v1"]
        assert re.fullmatch(r"[0-9a-f]{32}:1", result["partialFingerprints"][FINGERPRINT_KEY])


def test_fingerprint_survives_lines_moving_and_reindenting():
    before = sarif(make_result([cross_file_finding(line=13)]))
    moved_text = "# managed by ansible\n\n" + HAPROXY_TEXT.replace(
        "    server mail", "\tserver   mail")
    after = sarif(make_result([cross_file_finding(line=15)], source_files=files(moved_text)))
    assert moved_text.split("\n")[14] == "\tserver   mail mailserver:10993 send-proxy-v2"
    assert fingerprint(before) == fingerprint(after)


def test_fingerprint_changes_with_the_line_rule_or_file():
    base = fingerprint(sarif(make_result([cross_file_finding(line=13)])))
    edited = sarif(make_result([cross_file_finding(line=13)], source_files=files(
        HAPROXY_TEXT.replace("send-proxy-v2", "send-proxy"))))
    assert fingerprint(edited) != base
    other_line = fingerprint(sarif(make_result([cross_file_finding(line=12)])))
    assert other_line != base
    renamed = (SourceFile("lb/haproxy.cfg", FileKind.HAPROXY, HAPROXY_TEXT),) + files()[1:]
    other_file = fingerprint(sarif(make_result([cross_file_finding(haproxy_file="lb/haproxy.cfg")],
                                               source_files=renamed)))
    assert other_file != base


def test_identical_lines_get_a_running_index():
    text = "backend a\n    server s1 mail:993\nbackend b\n    server s1 mail:993\n"
    findings = [Finding("MPL501", "unused-backend", Severity.NOTE, f"n{line}.", Span(HAPROXY, line, 5))
                for line in (2, 4)]
    results = sarif(make_result(findings, source_files=files(text)))["runs"][0]["results"]
    prints = [r["partialFingerprints"][FINGERPRINT_KEY] for r in results]
    assert prints[0].split(":")[0] == prints[1].split(":")[0]
    assert [p.split(":")[1] for p in prints] == ["1", "2"]


def test_fingerprint_without_file_text_still_identifies_rule_and_path():
    doc = sarif(make_result([cross_file_finding()], source_files=()))
    assert re.fullmatch(r"[0-9a-f]{32}:1", fingerprint(doc))


def test_output_is_deterministic_whatever_the_finding_order(full_result):
    shuffled = list(full_result.findings)
    random.Random(7).shuffle(shuffled)
    first = sarif_text(full_result)
    assert sarif_text(make_result(shuffled)) == first
    assert sarif_text(full_result) == first
    uris = [(physical(r["locations"][0])["artifactLocation"]["uri"],
             physical(r["locations"][0])["region"]["startLine"]) for r in json.loads(first)["runs"][0]["results"]]
    assert uris == [("dovecot/conf.d/10%20master.conf", 1), (HAPROXY, 9), (HAPROXY, 12), (HAPROXY, 13)]


# --------------------------------------------------------------------------------------------
# Serializer
# --------------------------------------------------------------------------------------------


def test_serializer_renames_fields_and_keeps_meaningful_defaults():
    import sarif_om as om

    result = om.Result(message=om.Message(text="m."), rule_id="MPL001", level="warning",
                       partial_fingerprints={"a/b": "1"}, properties={"snake_case": [1, 2.5, True]})
    assert to_json_dict(result) == {
        "message": {"text": "m."}, "level": "warning", "partialFingerprints": {"a/b": "1"},
        "properties": {"snake_case": [1, 2.5, True]}, "ruleId": "MPL001"}


def test_serializer_refuses_values_json_cannot_hold():
    import sarif_om as om

    with pytest.raises(TypeError):
        to_json_dict(om.Message(text="m.", arguments={"a", "b"}))
    with pytest.raises(TypeError):
        to_json_dict(om.Result(message=om.Message(text="m."), properties={1: "x"}))
    with pytest.raises(TypeError):
        to_json_dict(om.ArtifactLocation(uri=Path("x")))
