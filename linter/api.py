"""What rule modules import: `rule`, `Rule`, `Context`, `Finding`, `Severity` and the model types.

A rule is a function decorated with `@rule(id, name, severity, summary=...)`. It receives a
`Context` and yields `Finding`s made with `ctx.finding(...)`. Its docstring is the rule page,
with the sections "Why it matters", "Bad", "Good" and "Fix" (shown by `--explain`, the docs and
SARIF). The loader collects every `Rule` from the modules of `mailproxy_lint.rules`; nothing is
registered globally.

A rule may declare options (`options=(Option("name", default, "help"),)`); users set them in the
configuration file and the rule reads them with `ctx.option("name")`, which falls back to the
declared default. The option's type is the default's type (`duration` options take "2m" too).
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
        # every field, so two findings that differ only in their related locations still sort
        # the same way on every run
        related = tuple((r.span.path, r.span.line, r.span.column, r.message) for r in self.related)
        return (self.span.path, self.span.line, self.span.column, self.rule_id, self.message, related)


DOC_SECTIONS = ("Why it matters", "Bad", "Good", "Fix")


@dataclass(frozen=True)
class Option:
    """A setting a rule lets users change, with its default and type.

    `kind` is "bool", "int", "float", "str" or "duration" (seconds, written as a number or as
    "90s", "2m", "1h"); by default it is the type of `default`.
    """

    name: str
    default: Any
    help: str
    kind: str = ""

    def __post_init__(self):
        if not self.kind:
            object.__setattr__(self, "kind", type(self.default).__name__)
        if self.kind not in OPTION_KINDS:
            raise ValueError(f"option {self.name!r}: unsupported kind {self.kind!r}")

    def convert(self, value: Any) -> Any:
        """The value as the rule wants it; ValueError (saying what is expected) when it is not one."""
        if self.kind == "bool" and isinstance(value, bool):
            return value
        if self.kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            return value
        if self.kind in ("float", "duration") and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if self.kind == "str" and isinstance(value, str):
            return value
        if self.kind == "duration" and isinstance(value, str):
            from mailproxy_lint.units import dovecot_seconds

            seconds = dovecot_seconds(value)
            if seconds is not None:
                return seconds
        raise ValueError(f"expected {OPTION_KINDS[self.kind]}, got {value!r}")


OPTION_KINDS = {
    "bool": "true or false",
    "int": "a whole number",
    "float": "a number",
    "str": "a string",
    "duration": 'a duration such as "2m" or a number of seconds',
}


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
    options: tuple[Option, ...] = ()
    # A late rule runs after all others and reviews their findings (`Context.review`): the
    # suppression rules, which judge the inline suppressions against what was found.
    late: bool = False

    def option(self, name: str) -> Option | None:
        return next((o for o in self.options if o.name == name), None)

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
         security_severity: float | None = None, facts: tuple[str, ...] = (), options: tuple[Option, ...] = (),
         late: bool = False):
    """Turn a check function into a `Rule` (the module-level name then holds the Rule)."""

    def wrap(fn: Callable[[Context], Iterable[Finding]]) -> Rule:
        return Rule(rule_id, name, severity, summary, fn, tags, security_severity, facts, tuple(options), late)

    return wrap


@dataclass
class Context:
    """What a rule sees: the whole deployment, its own metadata, and its options.

    `review` is given to late rules only: the engine's judgement of the inline suppressions
    (`suppressions.Review`) after every other rule ran.
    """

    model: Deployment
    rule: Rule
    options: dict[str, Any] = field(default_factory=dict)
    review: Any = None

    def option(self, name: str, default: Any = None) -> Any:
        """The configured value of an option, else its declared default (else `default`)."""
        if name in self.options:
            return self.options[name]
        declared = self.rule.option(name)
        return declared.default if declared is not None else default

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
