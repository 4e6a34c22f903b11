"""Traefik router rules: `HostSNI(`a`) && !ClientIP(`10.0.0.0/8`) || ALPN(`imap`)`.

Traefik hands the rule to Go's expression parser (through `vulcand/predicate`), so the syntax is
a Go expression: matcher calls with backtick or double-quoted string arguments, `&&`, `||`, `!`
and parentheses. `grammars/traefik_rule.lark` holds that syntax; this module parses a rule,
applies the one Go rule a grammar cannot express (a line break after `)`, a name or a string
ends the expression: Go inserts a `;` there), and offers the helpers builders and rules need:
the matchers with their arguments, and the HostSNI values.

Which matchers exist and how many arguments they take depend on the Traefik version and on
the router kind (TCP or HTTP); that is data for rules (`TCP_MATCHERS`, `canonical_matcher`),
not syntax.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailproxy_lint.model import ParseProblem, Span
from mailproxy_lint.parse import _lark

# Matchers of TCP routers (facts-formats §6.2). Traefik accepts exactly four spellings of each:
# as written, lower case, UPPER case and Title case (`Hostsni`).
TCP_MATCHERS = ("HostSNI", "HostSNIRegexp", "ClientIP", "ALPN")
HTTP_MATCHERS = ("Host", "HostRegexp", "Path", "PathPrefix", "PathRegexp", "Method", "Header", "HeaderRegexp",
                 "Query", "QueryRegexp", "ClientIP", "HostHeader", "Headers", "HeadersRegexp")

_SPELLINGS = {
    spelling: name
    for name in TCP_MATCHERS + HTTP_MATCHERS
    for spelling in (name, name.lower(), name.upper(), name.title())
}

_WORDS = {
    "NAME": "a matcher name",
    "RAW_STRING": "a `backtick` string",
    "STRING": 'a "quoted" string',
    "_OR": "'||'",
    "_AND": "'&&'",
    "_NOT": "'!'",
    "_LPAR": "'('",
    "_RPAR": "')'",
    "_COMMA": "','",
    "$END": "end of rule",
}


@dataclass(frozen=True, slots=True)
class RuleArgument:
    value: str  # the string's content (backticks/quotes removed, escapes applied)
    line: int  # 1-based, within the rule text
    column: int


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str  # as written
    canonical: str | None  # "HostSNI" for `hostsni`; None for a name Traefik does not know
    arguments: tuple[RuleArgument, ...]
    negated: bool  # under an odd number of `!`
    line: int
    column: int


def canonical_matcher(name: str) -> str | None:
    return _SPELLINGS.get(name)


def parse_rule(text: str, path: str = "<rule>", *, line: int = 1, column: int = 1) -> tuple[Any, ParseProblem | None]:
    """Parse a rule; positions in problems are shifted so the rule starts at (line, column)."""
    problem = _line_break_problem(text, path, line, column)
    if problem is not None:
        return None, problem
    return _lark.parse("traefik_rule", text, path, line_offset=line - 1, column_offset=column - 1,
                       describe=lambda token: _WORDS.get(token, token))


def matchers(tree: Any) -> list[Matcher]:
    """Every matcher call in the rule, in order."""
    found: list[Matcher] = []
    _collect(tree, False, found)
    return found


def host_sni_values(tree: Any) -> list[str]:
    """The arguments of every (non-negated) HostSNI matcher, `*` included, in order."""
    return [a.value for m in matchers(tree) if m.canonical == "HostSNI" and not m.negated for a in m.arguments]


def sni_domain(tree: Any) -> str | None:
    """The first domain a rule routes on by SNI; None for HostSNI(`*`) or no HostSNI at all."""
    return next((value for value in host_sni_values(tree) if value != "*"), None)


def _collect(node: Any, negated: bool, found: list[Matcher]) -> None:
    from lark import Tree

    if not isinstance(node, Tree):
        return
    if node.data == "call":
        name, *args = node.children
        found.append(Matcher(str(name), canonical_matcher(str(name)),
                             tuple(RuleArgument(_string_value(a), a.line, a.column) for a in args),
                             negated, name.line, name.column))
        return
    inner_negated = not negated if node.data == "negation" else negated
    for child in node.children:
        _collect(child, inner_negated, found)


def _string_value(token: Any) -> str:
    text = str(token)
    if text.startswith("`"):
        return text[1:-1]
    body = text[1:-1]
    if "\\" not in body:
        return body
    try:  # Go escapes are close enough to Python's for hostnames and CIDRs
        return body.encode("utf-8").decode("unicode_escape")
    except UnicodeDecodeError:
        return body


def _line_break_problem(text: str, path: str, line: int, column: int) -> ParseProblem | None:
    """Go ends an expression at a line break that follows `)`, a name or a string."""
    last = ""  # kind of the last significant token: "end" when a ';' would be inserted after it
    index = 0
    while index < len(text):
        char = text[index]
        if char in "`\"":
            close = text.find(char, index + 1)
            while char == '"' and close > 0 and text[close - 1] == "\\":
                close = text.find(char, close + 1)
            if close < 0:
                return None  # unterminated string: the grammar reports it
            index, last = close + 1, "end"
            continue
        if char == "\n" and last == "end" and text[index:].strip():
            row = text.count("\n", 0, index) + 1
            col = index - (text.rfind("\n", 0, index) + 1) + 1
            span = Span(path, row + line - 1, col + (column - 1 if row == 1 else 0))
            return ParseProblem(span, "unexpected line break; expected '&&', '||' or the end of the rule on the "
                                "same line (Go ends the expression at this line break)", ("'&&'", "'||'"))
        if char.isalnum() or char in "_)":
            last = "end"
        elif not char.isspace():
            last = "operator"
        index += 1
    return None
