"""The Traefik rule language: v2 and v3 forms, positions, HostSNI extraction, syntax errors."""
from __future__ import annotations

import pytest

from mailproxy_lint.parse.traefik_rule import canonical_matcher, host_sni_values, matchers, parse_rule, sni_domain


def parsed(text: str):
    tree, problem = parse_rule(text)
    assert problem is None, problem
    return tree


def test_catch_all():
    tree = parsed("HostSNI(`*`)")
    assert host_sni_values(tree) == ["*"]
    assert sni_domain(tree) is None


def test_v3_single_argument_matchers_with_operators():
    tree = parsed("HostSNI(`mail.example.com`) && !ClientIP(`10.0.0.0/8`) || (ALPN(`imap`))")
    found = [(m.name, m.canonical, [a.value for a in m.arguments], m.negated, m.column) for m in matchers(tree)]
    assert found == [
        ("HostSNI", "HostSNI", ["mail.example.com"], False, 1),
        ("ClientIP", "ClientIP", ["10.0.0.0/8"], True, 33),
        ("ALPN", "ALPN", ["imap"], False, 60),
    ]
    assert sni_domain(tree) == "mail.example.com"


def test_v2_multi_argument_hostsni_and_quoted_strings():
    tree = parsed('HostSNI(`a.example.com`, "b.example.com",)')  # Go allows a trailing comma
    (matcher,) = matchers(tree)
    assert [a.value for a in matcher.arguments] == ["a.example.com", "b.example.com"]
    assert [(a.line, a.column) for a in matcher.arguments] == [(1, 9), (1, 26)]
    assert host_sni_values(tree) == ["a.example.com", "b.example.com"]


def test_negated_hostsni_is_not_a_routing_domain():
    tree = parsed("!HostSNI(`bad.example`) && HostSNI(`*`)")
    assert host_sni_values(tree) == ["*"]


def test_http_rules_parse_with_the_same_grammar():
    tree = parsed("Host(`mail.example.com`) || Host(`autoconfig.example.com`) && PathPrefix(`/`)")
    assert [m.canonical for m in matchers(tree)] == ["Host", "Host", "PathPrefix"]
    assert host_sni_values(tree) == []


@pytest.mark.parametrize(("name", "canonical"), [
    ("HostSNI", "HostSNI"), ("hostsni", "HostSNI"), ("HOSTSNI", "HostSNI"), ("Hostsni", "HostSNI"),
    ("hostSNI", None), ("clientip", "ClientIP"), ("Unknown", None),
])
def test_only_four_spellings_of_a_matcher(name, canonical):
    assert canonical_matcher(name) == canonical
    (matcher,) = matchers(parsed(f"{name}(`x`)"))
    assert matcher.canonical == canonical


def test_line_break_after_an_operator_is_fine():
    tree = parsed("HostSNI(`*`) &&\n  ClientIP(`192.0.2.1`)")
    assert [(m.line, m.column) for m in matchers(tree)] == [(1, 1), (2, 3)]
    parsed("HostSNI(`*`)\n")  # a trailing line break is consumed by Go


@pytest.mark.parametrize(("text", "line", "column", "message"), [
    ("HostSNI('x')", 3, 18, "unexpected \"'\"; expected a `backtick` string, a \"quoted\" string or ')'"),
    ("HostSNI(`*`) and ClientIP(`1`)", 3, 23, "unexpected 'and'"),
    ("HostSNI(`*`)\n&& ClientIP(`1`)", 3, 22, "unexpected line break; expected '&&', '||'"),
    ("", 3, 10, "unexpected end of input; expected a matcher name, '(' or '!'"),
    ("HostSNI(`*`) ||", 3, 23, "unexpected end of input"),  # at the dangling operator
])
def test_syntax_errors_point_into_the_file(text, line, column, message):
    tree, problem = parse_rule(text, "compose.yaml", line=3, column=10)
    assert tree is None
    assert problem.span.path == "compose.yaml"
    assert (problem.span.line, problem.span.column) == (line, column)
    assert problem.message.startswith(message)
