"""What rule modules import: `rule`, `Rule`, `Context`, `Finding`, `Severity` and the model types.

A rule is a function decorated with `@rule(id, name, severity, summary=...)`. It receives a
`Context` and yields `Finding`s made with `ctx.finding(...)`. Its docstring is the rule page,
with the sections "Why it matters", "Bad", "Good" and "Fix" (shown by `--explain`, the docs and
SARIF). The loader collects every `Rule` from the modules of `mailproxy_lint.rules`; nothing is
registered globally.
"""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Callable, Iterable

from mailproxy_lint.model import *  # noqa: F401,F403 - rules get the model types from here
from mailproxy_lint.model import Deployment, Span


class Severity(IntEnum):
    NOTE = 1
    WARNING = 2
    ERROR = 3

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        return cls[text.strip().upper()]


@dataclass(frozen=True, slots=True)
class Related:
    span: Span
    message: str


@dataclass(frozen=True, slots=True)
class Finding:
    rule_id: str
    rule_name: str
    severity: Severity
    message: str
    span: Span
    related: tuple[Related, ...] = ()

    def sort_key(self):
        return (self.span.path, self.span.line, self.span.column, self.rule_id, self.message)


DOC_SECTIONS = ("Why it matters", "Bad", "Good", "Fix")


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: Severity
    summary: str
    check: Callable[[Context], Iterable[Finding]] = field(repr=False)
    tags: tuple[str, ...] = ()
    # GitHub code scanning treats a rule with a security-severity as a security rule
    security_severity: float | None = None
    facts: tuple[str, ...] = ()  # entries of the facts catalog behind the rule (PP01, TR03, ...)

    @property
    def doc(self) -> str:
        return inspect.cleandoc(self.check.__doc__ or "")

    def sections(self) -> dict[str, str]:
        """The rule page split by its `## Heading` lines."""
        parts: dict[str, str] = {}
        current = None
        for line in self.doc.splitlines():
            m = re.match(r"^##\s+(.+?)\s*$", line)
            if m:
                current = m.group(1)
                parts[current] = ""
            elif current is not None:
                parts[current] += line + "\n"
        return {k: v.strip("\n") for k, v in parts.items()}


def rule(rule_id: str, name: str, severity: Severity, *, summary: str, tags: tuple[str, ...] = (),
         security_severity: float | None = None, facts: tuple[str, ...] = ()):
    """Turn a check function into a `Rule` (the module-level name then holds the Rule)."""

    def wrap(fn: Callable[[Context], Iterable[Finding]]) -> Rule:
        return Rule(rule_id, name, severity, summary, fn, tags, security_severity, facts)

    return wrap


@dataclass
class Context:
    """What a rule sees: the whole deployment, its own metadata, and its options."""

    model: Deployment
    rule: Rule
    options: dict[str, Any] = field(default_factory=dict)

    def option(self, name: str, default: Any) -> Any:
        return self.options.get(name, default)

    def finding(self, span: Span, message: str, *, related: Iterable[tuple[Span | None, str]] = (),
                severity: Severity | None = None) -> Finding:
        return Finding(
            self.rule.id,
            self.rule.name,
            severity or self.rule.severity,
            message,
            span,
            tuple(Related(s, m) for s, m in related if s is not None and s != span),
        )
