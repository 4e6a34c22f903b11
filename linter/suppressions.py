"""Inline suppressions: comments that switch a rule off for one line or one file.

    # mailproxy-lint: disable-next-line=MPL401 -- IDLE is not used on this port
    # mailproxy-lint: disable-file=MPL108,client-ip-lost -- internal relay only

A directive is a whole-line `#` comment, which every format we read accepts (Postfix main.cf
and master.cf know no other comments). "Next line" is the next line that is neither blank nor
a comment, so a directive may sit above other comments and, in master.cf, between `-o` lines.
Rules are named by id or name; the reason after ` -- ` is required.

A directive that cannot be understood (no reason, an unknown rule, a misspelt verb, a trailing
comment) suppresses nothing and is reported by MPL006; a valid one that suppressed nothing is
reported by MPL007. `Review` holds that judgement; the engine applies it and the late rules in
`rules/suppressions.py` turn its lists into findings.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable

from mailproxy_lint.api import Finding, Rule
from mailproxy_lint.model import SourceFile, Span

VERBS = {"disable-next-line": "next-line", "disable-file": "file"}
# Rules about suppressions themselves cannot be suppressed inline (that would hide the report
# about the directive doing the hiding); `ignore` in the configuration switches them off.
NOT_SUPPRESSIBLE = {"MPL006", "MPL007"}
FORBIDDEN = "inline suppressions are disabled (--no-inline-suppressions): this one was ignored"

# `mailproxy-lint` as written by someone who meant a directive: any spelling of the tool name at
# the start of a comment. What follows decides whether it is a directive or just prose.
_TOOL = re.compile(r"^(?P<indent>\s*)#+\s*(?P<tool>mailproxy[-_ ]?lint)(?P<rest>\b.*)$", re.I)
_DIRECTIVE_WORD = re.compile(r"^\s*[:=]?\s*(disable|enable|ignore|noqa|skip|suppress)", re.I)
_TRAILING = re.compile(r"#\s*mailproxy[-_ ]?lint\s*:", re.I)
_COMMENT = re.compile(r"^\s*#")


@dataclass(frozen=True)
class Directive:
    """One suppression comment. `problem` says why it is invalid (it then suppresses nothing)."""

    span: Span
    scope: str = ""  # "next-line" or "file"
    rule_ids: tuple[str, ...] = ()
    reason: str = ""
    target: int | None = None  # the line a next-line directive covers
    problem: str | None = None

    def covers(self, finding: Finding) -> bool:
        if self.problem is not None or finding.span.path != self.span.path or finding.rule_id not in self.rule_ids:
            return False
        return self.scope == "file" or finding.span.line == self.target


# --------------------------------------------------------------------------------------------
# Reading directives
# --------------------------------------------------------------------------------------------


def scan(source: SourceFile, rules: list[Rule]) -> list[Directive]:
    """Every directive (valid or not) written in one file."""
    if "lint" not in source.text.lower():
        return []
    lines = source.text.split("\n")
    directives = []
    for index, line in enumerate(lines):
        number = index + 1
        match = _TOOL.match(line)
        if match:
            directive = _parse(source.path, number, line, match, rules)
            if directive is not None:
                if directive.scope == "next-line" and directive.problem is None:
                    directive = _with_target(directive, lines, index)
                directives.append(directive)
        elif not _COMMENT.match(line) and _TRAILING.search(line):
            column = _TRAILING.search(line).start() + 1
            directives.append(Directive(Span(source.path, number, column, number, len(line) + 1),
                                        problem="a suppression must be a comment on a line of its own"))
    return directives


def _parse(path: str, number: int, line: str, match: re.Match, rules: list[Rule]) -> Directive | None:
    span = Span(path, number, len(match.group("indent")) + 1, number, len(line.rstrip()) + 1)
    rest = match.group("rest")
    if not rest.lstrip().startswith(":"):
        if not _DIRECTIVE_WORD.match(rest):
            return None  # prose that mentions the tool
        return Directive(span, problem="expected `mailproxy-lint: <directive>` (a colon after the tool name)")
    if match.group("tool") != "mailproxy-lint":
        return Directive(span, problem=f"write the tool name as `mailproxy-lint`, not `{match.group('tool')}`")
    body, dashes, reason = rest.lstrip()[1:].partition("--")
    verb, equals, names = body.strip().partition("=")
    verb = verb.strip().lower()
    if verb not in VERBS:
        close = difflib.get_close_matches(verb, list(VERBS), n=1, cutoff=0.6)
        hint = f"; did you mean `{close[0]}`?" if close else f"; expected {' or '.join(VERBS)}"
        return Directive(span, problem=f"unknown directive `{verb}`{hint}")
    tokens = [t for t in re.split(r"[\s,]+", names.strip()) if t]
    if not equals or not tokens:
        return Directive(span, problem=f"`{verb}` needs the rules to suppress: `{verb}=MPL401 -- reason`")
    ids = []
    for token in tokens:
        found = next((r for r in rules if r.id == token.upper() or r.name == token.lower()), None)
        if found is None:
            return Directive(span, problem=f"unknown rule `{token}` (see --list-rules)")
        if found.id in NOT_SUPPRESSIBLE:
            return Directive(span, problem=f"{found.id} cannot be suppressed inline; use `ignore` in the configuration")
        ids.append(found.id)
    reason = reason.strip()
    if not dashes or not reason:
        return Directive(span, problem="a reason is required: `... -- why this is fine here`")
    return Directive(span, VERBS[verb], tuple(dict.fromkeys(ids)), reason)


def _with_target(directive: Directive, lines: list[str], index: int) -> Directive:
    for later in range(index + 1, len(lines)):
        if lines[later].strip() and not _COMMENT.match(lines[later]):
            return Directive(directive.span, directive.scope, directive.rule_ids, directive.reason, later + 1)
    return Directive(directive.span, problem="no line follows this suppression")


# --------------------------------------------------------------------------------------------
# Judging them against the findings
# --------------------------------------------------------------------------------------------


@dataclass
class Review:
    """What the directives did to one deployment's findings."""

    kept: list[Finding] = field(default_factory=list)
    suppressed: list[tuple[Finding, Directive]] = field(default_factory=list)
    invalid: list[tuple[Span, str]] = field(default_factory=list)  # for MPL006
    unused: list[tuple[Span, str]] = field(default_factory=list)  # for MPL007


def review(directives: Iterable[Directive], findings: Iterable[Finding], *, allowed: bool = True,
           active: Callable[[str, str], bool] = lambda rule_id, path: True, judge_unused: bool = True) -> Review:
    """Apply `directives` to `findings`.

    `allowed=False` (--no-inline-suppressions) keeps every finding and reports every directive.
    `active(rule_id, path)` says whether a rule ran on a file: a directive is never called
    unused for a rule that was not selected there. `judge_unused=False` skips that judgement
    (when a file failed to parse, rules that needed it stayed silent).
    """
    directives = list(directives)
    result = Review()
    for directive in directives:
        if directive.problem is not None:
            result.invalid.append((directive.span, f"invalid suppression: {directive.problem}"))
        elif not allowed:
            result.invalid.append((directive.span, FORBIDDEN))
    if not allowed:
        result.kept = list(findings)
        return result
    used: set[tuple[int, str]] = set()
    for finding in findings:
        index = next((i for i, d in enumerate(directives) if d.covers(finding)), None)
        if index is None:
            result.kept.append(finding)
        else:
            used.add((index, finding.rule_id))
            result.suppressed.append((finding, directives[index]))
    if judge_unused:
        for index, directive in enumerate(directives):
            if directive.problem is not None:
                continue
            for rule_id in directive.rule_ids:
                if (index, rule_id) not in used and active(rule_id, directive.span.path):
                    result.unused.append((directive.span, _unused_message(directive, rule_id)))
    return result


def _unused_message(directive: Directive, rule_id: str) -> str:
    where = f"on line {directive.target}" if directive.scope == "next-line" else "in this file"
    return f"unused suppression: {rule_id} reports nothing {where}; remove {rule_id} from this comment"
