"""Dovecot main-config parser (`dovecot.conf`, `conf.d/*.conf`, docker-mailserver `dovecot.cf`).

Text -> `DovecotFile`: a *flat* list of statements (settings, section headers, `}`, includes),
each with exact spans. It stays flat because Dovecot lets a `}` in an included file close a
section opened by the including file, so nesting can only be decided once includes are
resolved; `build/dovecot.py` does that with a stack. Per file the parser records which sections
stay open at the end and which `}` close nothing, and the builder reports those only for the
whole include tree of a root file (a fragment may legitimately close its parent's section).

Two stages, as Dovecot's own reader (facts-formats §1.1-§1.3):

1. A hand pre-pass turns physical lines into logical lines: `#` comments outside quotes are cut
   (a `#` glued to text still starts a comment; Dovecot warns, we record it), a trailing backslash
   joins the next line with one space, and a blank or comment line throws away a pending
   continuation (edge case D3). Each logical line keeps a map back to file positions.
2. `grammars/dovecot.lark` parses each logical line (LALR); the common shapes (`key = value`,
   `type [name] {`, `}`, `!include x`) are split by regular expressions over the same terminals first, which
   is much cheaper than a Lark call per line (tests/test_parse_dovecot_fast.py holds the two
   together). Quoting, `$variables` and `<file`
   values are classified in Python from the first/last characters of the value, as Dovecot
   does. `$var`/`%{}` are kept as text; `!include` targets are recorded, never read.

A line that does not parse becomes a `ParseProblem` ("unexpected X; expected Y") at the
offending token's file position, and the file's tree is None (doveconf refuses such a file).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from mailproxy_lint.model import Comment, ParseProblem, SourceFile, Span
from mailproxy_lint.parse import Parsed
from mailproxy_lint.parse import _lark

GRAMMAR = "dovecot"
_BLANK = " \t"  # Dovecot 2.3 IS_WHITE


class ValueKind(StrEnum):
    PLAIN = "plain"  # taken verbatim
    QUOTED = "quoted"  # "..." or '...': quotes stripped, backslash escapes removed
    VARIABLE = "variable"  # unquoted and contains `$`: expanded by the config parser
    FILE = "file"  # `<path`: the file's contents become the value


@dataclass(frozen=True, slots=True)
class KeyValue:
    """`key = value`."""

    key: str
    value: str  # interpreted: unquoted/unescaped for QUOTED, the path for FILE, else as written
    raw: str  # the text after `=` as written (trailing blanks and comment removed)
    kind: ValueKind
    span: Span  # from the key to the end of the value
    key_span: Span
    value_span: Span | None  # None for `key =`
    key_quoted: bool = False


@dataclass(frozen=True, slots=True)
class SectionBegin:
    """`type {`, `type name {`, `type "quoted name" {`, or 2.4 `group @label name {`."""

    type: str
    name: str | None
    span: Span  # the header, from the type to the `{`
    name_span: Span | None = None
    label: str | None = None  # 2.4 group label (`@label`)


@dataclass(frozen=True, slots=True)
class SectionEnd:
    span: Span


@dataclass(frozen=True, slots=True)
class Include:
    """`!include PATTERN` / `!include_try PATTERN` (the pattern is raw: quotes are part of it)."""

    pattern: str
    optional: bool  # !include_try
    span: Span
    pattern_span: Span | None


Statement = KeyValue | SectionBegin | SectionEnd | Include


@dataclass(frozen=True, slots=True)
class DovecotFile:
    """One parsed file: statements in order plus the facts the builder needs about braces."""

    path: str
    statements: tuple[Statement, ...]
    # sections this file opens and does not close (outermost first)
    unclosed: tuple[SectionBegin, ...] = ()
    # `}` lines that close nothing opened in this file (they may close an includer's section)
    stray_closes: tuple[SectionEnd, ...] = ()
    # `#` glued to the text before it: Dovecot treats it as a comment and logs a warning
    ambiguous_comments: tuple[Span, ...] = ()
    # `\` continuations thrown away by a following blank or comment line (edge case D3)
    discarded_continuations: tuple[Span, ...] = ()
    end: Span | None = None  # the end of the file (for "missing '}'" problems)

    def includes(self) -> tuple[Include, ...]:
        return tuple(s for s in self.statements if isinstance(s, Include))


# --------------------------------------------------------------------------------------------
# Stage 1: physical lines -> logical lines
# --------------------------------------------------------------------------------------------


@dataclass
class LogicalLine:
    """A logical line and where each run of its text came from."""

    text: str = ""
    # (offset in text, physical line, physical column, length) per copied run
    pieces: list[tuple[int, int, int, int]] = field(default_factory=list)

    def add(self, run: str, line: int, column: int) -> None:
        if self.text:
            self.text += " "  # Dovecot joins continued lines with exactly one space
        self.pieces.append((len(self.text), line, column, len(run)))
        self.text += run

    def position(self, offset: int) -> tuple[int, int]:
        """File (line, column) of a text offset; offsets past a run map to just after it."""
        for start, line, column, length in reversed(self.pieces):
            if offset >= start:
                return line, column + min(offset - start, length)
        return self.pieces[0][1], self.pieces[0][2]

    def span(self, path: str, start: int, end: int) -> Span:
        line, column = self.position(start)
        end_line, end_column = self.position(end)
        return Span(path, line, column, end_line, end_column)


@dataclass
class _Lines:
    logical: list[LogicalLine] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    ambiguous: list[Span] = field(default_factory=list)
    discarded: list[Span] = field(default_factory=list)
    last_line: int = 1
    last_column: int = 1


def split_logical_lines(text: str, path: str) -> _Lines:
    """Dovecot's line reader (facts-formats §1.1), keeping positions."""
    out = _Lines()
    pending: LogicalLine | None = None
    physical = text.split("\n")
    for number, line in enumerate(physical, start=1):
        if line.endswith("\r"):
            line = line[:-1]
        start = len(line) - len(line.lstrip(_BLANK))
        if start == len(line) or line[start] == "#":
            if start < len(line):
                out.comments.append(Comment(number, start + 1, line[start:]))
            if pending is not None and pending.pieces:
                out.discarded.append(pending.span(path, 0, len(pending.text)))
            pending = None
            continue
        end = _strip_comment(line, start, number, path, out)
        end = len(line[:end].rstrip(_BLANK))
        if line[end - 1] == "\\":
            body_end = len(line[: end - 1].rstrip(_BLANK))
            pending = pending or LogicalLine()
            if body_end > start:
                pending.add(line[start:body_end], number, start + 1)
            continue
        logical = pending or LogicalLine()
        logical.add(line[start:end], number, start + 1)
        out.logical.append(logical)
        pending = None
    out.last_line = len(physical)
    out.last_column = len(physical[-1]) + 1
    return out


def _strip_comment(line: str, start: int, number: int, path: str, out: _Lines) -> int:
    """Index where the line's content ends: the first `#` outside quotes, else its length."""
    i = start
    while i < len(line):
        char = line[i]
        if char in "'\"":
            i += 1
            while i < len(line) and line[i] != char:
                i += 2 if line[i] == "\\" and i + 1 < len(line) else 1
            if i >= len(line):
                return len(line)  # unterminated quote: nothing after it is a comment
        elif char == "#":
            out.comments.append(Comment(number, i + 1, line[i:]))
            if line[i - 1] not in _BLANK:
                out.ambiguous.append(Span(path, number, i + 1, number, i + 2))
            return i
        i += 1
    return len(line)


# --------------------------------------------------------------------------------------------
# Stage 2: each logical line -> a statement
# --------------------------------------------------------------------------------------------

# words for the grammar's terminals in "expected ..." messages
_WORDS = {
    "INCLUDE_KW": "'!include'",
    "INCLUDE_ARG": "a file name",
    "QUOTED_KEY": "a quoted setting name",
    "KEY": "a setting or section name",
    "NAME": "a section name",
    "QUOTED_NAME": "a quoted section name",
    "VALUE": "a value",
    "EQUAL": "'='",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "_NL": "end of line",
    "$END": "end of line",
}


def _describe(terminal: str) -> str:
    return _WORDS.get(terminal, terminal)


def parse(source: SourceFile) -> Parsed:
    path = source.path
    lines = split_logical_lines(source.text, path)
    statements: list[Statement] = []
    problems: list[ParseProblem] = []
    for logical in lines.logical:
        statement, problem = _parse_line(logical, path)
        if problem is not None:
            problems.append(problem)
        elif statement is not None:
            statements.append(statement)
    end = Span(path, lines.last_line, lines.last_column)
    if problems:
        return Parsed(source, None, problems, lines.comments)
    unclosed, stray = _balance(statements)
    tree = DovecotFile(
        path=path,
        statements=tuple(statements),
        unclosed=unclosed,
        stray_closes=stray,
        ambiguous_comments=tuple(lines.ambiguous),
        discarded_continuations=tuple(lines.discarded),
        end=end,
    )
    return Parsed(source, tree, [], lines.comments)


def _parse_line(logical: LogicalLine, path: str) -> tuple[Statement | None, ParseProblem | None]:
    shape = statement_fast(logical.text)
    if shape is None:
        shape, problem = statement_lark(logical.text, path)
        if problem is not None:
            line, column = logical.position(problem.span.column - 1)
            return None, ParseProblem(Span(path, line, column), problem.message, problem.expected)
    kind, tokens = shape
    if kind == "include":
        return _include(tokens, logical, path), None
    if kind == "keyvalue":
        return _keyvalue(tokens, logical, path), None
    if kind == "section_end":
        return SectionEnd(_token_span(tokens[0], logical, path)), None
    return _section_begin(tokens, logical, path)


def statement_lark(text: str, path: str) -> tuple[tuple[str, list] | None, ParseProblem | None]:
    """(statement kind, its tokens) from the grammar, or the grammar's problem."""
    tree, problem = _lark.parse(GRAMMAR, text + "\n", path, describe=_describe)
    if problem is not None:
        return None, problem
    node = tree.children[0]
    return (str(node.data), list(node.children)), None


class _Token(str):
    """A token of the fast path: the text, with the grammar terminal's name and offsets."""

    type: str
    start_pos: int
    end_pos: int

    @classmethod
    def of(cls, match, group: int, terminal: str) -> "_Token":
        token = cls(match.group(group))
        token.type, token.start_pos, token.end_pos = terminal, match.start(group), match.end(group)
        return token


# The grammar's most common statements as regular expressions over the same terminals (KEY,
# NAME, "=", VALUE, braces, blanks, the include keyword and argument). A key starting with a
# letter, digit or `_` can be nothing but KEY, so a match splits the line exactly as the grammar
# would; quoted keys and names, two-name headers and anything unusual go to Lark, which also
# explains errors.
_KEY = r"([A-Za-z0-9_][^ \t\n=]*)"
_KEYVALUE = re.compile(_KEY + r"[ \t]*(=)[ \t]*([^ \t\n][^\n]*)?")
_SECTION = re.compile(_KEY + r"[ \t]+(?:([^ \t\n\"{=][^ \t\n]*)[ \t]+)?(\{)")
_INCLUDE = re.compile(r"(!include(?:_try)?)(?:[ \t]+([^ \t\n][^\n]*))?")


def statement_fast(text: str) -> tuple[str, list] | None:
    """(statement kind, its tokens) without Lark, or None when the line needs the grammar."""
    if text == "}":
        token = _Token("}")
        token.type, token.start_pos, token.end_pos = "RBRACE", 0, 1
        return "section_end", [token]
    match = _INCLUDE.fullmatch(text)
    if match is not None:
        tokens = [_Token.of(match, 1, "INCLUDE_KW")]
        if match.group(2) is not None:
            tokens.append(_Token.of(match, 2, "INCLUDE_ARG"))
        return "include", tokens
    match = _KEYVALUE.fullmatch(text)
    if match is not None:
        tokens = [_Token.of(match, 1, "KEY"), _Token.of(match, 2, "EQUAL")]
        if match.group(3) is not None:
            tokens.append(_Token.of(match, 3, "VALUE"))
        return "keyvalue", tokens
    match = _SECTION.fullmatch(text)
    if match is not None:
        tokens = [_Token.of(match, 1, "KEY")]
        if match.group(2) is not None:
            tokens.append(_Token.of(match, 2, "NAME"))
        return "section_begin", tokens + [_Token.of(match, 3, "LBRACE")]
    return None


def _token_span(token, logical: LogicalLine, path: str) -> Span:
    return logical.span(path, token.start_pos, token.end_pos)


def _include(tokens, logical: LogicalLine, path: str) -> Include:
    keyword = tokens[0]
    argument = tokens[1] if len(tokens) > 1 else None
    end = argument.end_pos if argument is not None else keyword.end_pos
    return Include(
        pattern=str(argument) if argument is not None else "",
        optional=str(keyword) == "!include_try",
        span=logical.span(path, keyword.start_pos, end),
        pattern_span=_token_span(argument, logical, path) if argument is not None else None,
    )


def _keyvalue(tokens, logical: LogicalLine, path: str) -> KeyValue:
    key_token, equal = tokens[0], tokens[1]
    value_token = tokens[2] if len(tokens) > 2 else None
    raw = str(value_token) if value_token is not None else ""
    kind, value = classify_value(raw)
    quoted_key = key_token.type == "QUOTED_KEY"
    end = value_token.end_pos if value_token is not None else equal.end_pos
    return KeyValue(
        key=unescape_24(str(key_token)[1:-1]) if quoted_key else str(key_token),
        value=value,
        raw=raw,
        kind=kind,
        span=logical.span(path, key_token.start_pos, end),
        key_span=_token_span(key_token, logical, path),
        value_span=_token_span(value_token, logical, path) if value_token is not None else None,
        key_quoted=quoted_key,
    )


def _section_begin(tokens, logical: LogicalLine, path: str) -> tuple[SectionBegin | None, ParseProblem | None]:
    type_token, names, brace = tokens[0], tokens[1:-1], tokens[-1]
    span = logical.span(path, type_token.start_pos, brace.end_pos)
    section_type = str(type_token)
    label = None
    if len(names) == 2:
        if section_type != "group" or names[0].type != "NAME" or not str(names[0]).startswith("@"):
            line, column = logical.position(names[1].start_pos)
            return None, ParseProblem(
                Span(path, line, column), f"unexpected {str(names[1])!r}; expected '{{'", ("'{'",)
            )
        label, names = str(names[0]), names[1:]
    name_token = names[0] if names else None
    return SectionBegin(
        type=section_type,
        name=_section_name(name_token) if name_token is not None else None,
        span=span,
        name_span=_token_span(name_token, logical, path) if name_token is not None else None,
        label=label,
    ), None


def _section_name(token) -> str:
    text = str(token)
    return unescape_23(text[1:-1]) if token.type == "QUOTED_NAME" else text


def _balance(statements: list[Statement]) -> tuple[tuple[SectionBegin, ...], tuple[SectionEnd, ...]]:
    """Sections left open at the end of this file, and `}` that close nothing in it."""
    stack: list[SectionBegin] = []
    stray: list[SectionEnd] = []
    for statement in statements:
        if isinstance(statement, SectionBegin):
            stack.append(statement)
        elif isinstance(statement, SectionEnd):
            if stack:
                stack.pop()
            else:
                stray.append(statement)
    return tuple(stack), tuple(stray)


# --------------------------------------------------------------------------------------------
# Values (facts-formats §1.3)
# --------------------------------------------------------------------------------------------


def classify_value(raw: str) -> tuple[ValueKind, str]:
    """(kind, interpreted value) of the text after `=`, by Dovecot's first/last-character rules."""
    if raw.startswith("<"):
        return ValueKind.FILE, raw[1:].lstrip(_BLANK)
    if raw[:1] in ("'", '"'):
        if len(raw) >= 2 and raw[-1] == raw[0]:
            return ValueKind.QUOTED, unescape_23(raw[1:-1])
        return ValueKind.PLAIN, raw
    if "$" in raw:
        return ValueKind.VARIABLE, raw
    return ValueKind.PLAIN, raw


def unescape_23(text: str) -> str:
    """Dovecot 2.3 `str_unescape`: every `\\x` becomes `x`."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            i += 1
        out.append(text[i])
        i += 1
    return "".join(out)


def unescape_24(text: str) -> str:
    """Dovecot 2.4 `config_str_unescape` for what it accepts (`\\\\`, `\\"`); others kept."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and text[i + 1 : i + 2] in ("\\", '"'):
            i += 1
        out.append(text[i])
        i += 1
    return "".join(out)
