"""Postfix `main.cf`, `master.cf` and docker-mailserver `postfix-master.cf` -> syntax trees.

Three formats share this module because they share Postfix's line rules:

* `main.cf` (and docker-mailserver `postfix-main.cf`, which is appended to main.cf): logical lines
  of `name = value`. Comments are whole lines only; a line starting with whitespace continues
  the previous one, joined as written (Postfix `readllines`).
* `master.cf`: the same logical lines, each an entry of eight fields plus daemon arguments, with
  `-o name=value` / `-o { name = value }` parameter overrides.
* docker-mailserver `postfix-master.cf`: one `postconf -P` argument per line
  (`service/type/parameter=value`). DMS silently skips lines that do not start with `[0-9a-z]`;
  those stay in the tree, marked, for rule MPL504.

A Python pre-pass builds logical lines with a position map; Lark (grammars `postfix_main`,
`postfix_master`) parses each line. Problems use Postfix's own line and describe what was found
and what was expected. `tree` is None only when `postconf` itself would refuse the file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from mailproxy_lint.model import Comment, FileKind, ParseProblem, SourceFile, Span
from mailproxy_lint.parse import Parsed
from mailproxy_lint.parse import _lark

# --------------------------------------------------------------------------------------------
# Syntax trees
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MainEntry:
    """One `name = value` of main.cf; `value` is raw (continuations joined as Postfix joins them)."""

    name: str
    value: str
    span: Span  # the name, on the entry's first line
    value_span: Span | None = None  # None for an empty value


@dataclass
class MainFile:
    entries: list[MainEntry] = field(default_factory=list)
    # text before the first logical line that starts with whitespace: Postfix warns and ignores it
    ignored: list[Span] = field(default_factory=list)

    def values(self) -> dict[str, MainEntry]:
        """name -> entry; the last definition wins, as in Postfix."""
        return {entry.name: entry for entry in self.entries}


@dataclass(frozen=True, slots=True)
class Word:
    """One whitespace-separated word of a master.cf entry, as written (braces included)."""

    text: str
    span: Span

    @property
    def is_group(self) -> bool:
        return self.text.startswith("{") and self.text.endswith("}")

    def unwrapped(self) -> str:
        """The text of a `{ ... }` word without braces and surrounding blanks (Postfix extpar)."""
        return self.text[1:-1].strip() if self.is_group else self.text


@dataclass(frozen=True, slots=True)
class MasterOption:
    """A daemon parameter override: `-o name=value`, `-o { name = value }`, `-oname=value`."""

    name: str
    value: str
    span: Span  # from the `-o` to the end of the value


@dataclass(frozen=True, slots=True)
class MasterEntry:
    """One master.cf service entry."""

    service: str  # [host:]port for inet, a path-like name otherwise
    type: str
    private: str
    unprivileged: str
    chroot: str
    wakeup: str
    process_limit: str
    command: str
    args: tuple[Word, ...]  # every word after the command, options included
    options: tuple[MasterOption, ...]  # the -o overrides, in order (the last of a name wins)
    span: Span  # the service name on the entry's first line
    line_span: Span  # the whole entry (first to last physical line)

    @property
    def key(self) -> tuple[str, str]:
        return (self.service, self.type)


@dataclass
class MasterFile:
    entries: list[MasterEntry] = field(default_factory=list)
    ignored: list[Span] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class OverrideLine:
    """One docker-mailserver postfix-master.cf line (`service/type/parameter=value`)."""

    text: str  # the line without surrounding whitespace, as DMS passes it to `postconf -P`
    span: Span  # the whole stripped line
    service: str | None = None  # None when the line could not be read
    type: str | None = None
    parameter: str | None = None
    value: str | None = None
    skipped: str | None = None  # why docker-mailserver skips the line without running it
    invalid: str | None = None  # why `postconf -P` refuses the line (it is then not applied)

    @property
    def applies(self) -> bool:
        return self.skipped is None and self.invalid is None and self.service is not None


@dataclass
class OverrideFile:
    lines: list[OverrideLine] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Logical lines (Postfix readllines)
# --------------------------------------------------------------------------------------------


@dataclass
class LogicalLine:
    """Physical lines joined as Postfix joins them, with a map back to file positions."""

    text: str
    # (offset in `text`, line, column) where each physical piece starts
    pieces: list[tuple[int, int, int]]

    @property
    def line(self) -> int:
        return self.pieces[0][1]

    def position(self, offset: int) -> tuple[int, int]:
        """(line, column) in the file of the character at `offset` (or just past the end)."""
        chosen = self.pieces[0]
        for piece in self.pieces:
            if piece[0] <= offset:
                chosen = piece
            else:
                break
        start, line, column = chosen
        return line, column + offset - start

    def span(self, path: str, start: int, end: int) -> Span:
        line, column = self.position(start)
        # the end of a range is just after its last character, on that character's line
        end_line, end_column = self.position(max(end - 1, start))
        return Span(path, line, column, end_line, end_column + (1 if end > start else 0))


def logical_lines(text: str, path: str) -> tuple[list[LogicalLine], list[Comment], list[Span]]:
    """Split `text` into logical lines; also return the comments and the ignored leading text.

    Comment lines (first non-blank character `#`) and blank lines are skipped wherever they
    are, also between continuation lines. A line starting with whitespace continues the
    previous logical line; before any logical line it is ignored (Postfix only warns).
    """
    logicals: list[LogicalLine] = []
    comments: list[Comment] = []
    ignored: list[Span] = []
    current: LogicalLine | None = None
    for number, raw in enumerate(text.split("\n"), start=1):
        stripped = raw.lstrip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            comments.append(Comment(number, len(raw) - len(stripped) + 1, stripped.rstrip()))
            continue
        if raw[0].isspace():
            if current is None:
                ignored.append(Span(path, number, 1, number, len(raw) + 1))
                continue
            current.pieces.append((len(current.text), number, 1))
            current.text += raw
            continue
        current = LogicalLine(raw, [(0, number, 1)])
        logicals.append(current)
    for logical in logicals:
        logical.text = logical.text.rstrip()
    return logicals, comments, ignored


# --------------------------------------------------------------------------------------------
# main.cf
# --------------------------------------------------------------------------------------------

_MAIN_WORDS = {
    "NAME": "a parameter name",
    "EQUAL": "'='",
    "VALUE": "a value",
    "$END": "end of line",
    "<END-OF-FILE>": "end of line",
}


def parse_main(source: SourceFile) -> Parsed:
    logicals, comments, ignored = logical_lines(source.text, source.path)
    tree = MainFile(ignored=ignored)
    problems: list[ParseProblem] = []
    for logical in logicals:
        entry, problem = _main_entry(logical, source.path)
        if problem is not None:
            problems.append(problem)
        elif entry is not None:
            tree.entries.append(entry)
    # postconf stops at the first malformed line: the file is refused
    return Parsed(source, None if problems else tree, problems, comments)


def _main_entry(logical: LogicalLine, path: str) -> tuple[MainEntry | None, ParseProblem | None]:
    offsets = main_offsets_fast(logical.text)
    if offsets is None:
        offsets, problem = main_offsets_lark(logical.text, path)
        if problem is not None:
            return None, _relocate(problem, logical, path, _main_hint)
    (name_start, name_end), value = offsets
    name_span = logical.span(path, name_start, name_end)
    name = logical.text[name_start:name_end]
    if value is None:
        return MainEntry(name, "", name_span), None
    value_span = logical.span(path, *value)
    return MainEntry(name, logical.text[value[0]:value[1]], name_span, value_span), None


# (name start, end), (value start, end) or None for an empty value: offsets in the logical line
MainOffsets = tuple[tuple[int, int], tuple[int, int] | None]

# The grammar `postfix_main` as one regular expression, for the lines that parse: the same
# terminals (NAME, blanks, "=", VALUE), so a match means the grammar would split the line the
# same way. Lines it does not match go to Lark, which also explains what is wrong.
_MAIN_LINE = re.compile(r"([^\s=]+)[ \t\f\v\r]*=[ \t\f\v\r]*(\S.*)?")


def main_offsets_fast(text: str) -> MainOffsets | None:
    """`name = value` split without Lark, or None when the line needs the grammar."""
    match = _MAIN_LINE.fullmatch(text)
    if match is None:
        return None
    return match.span(1), (match.span(2) if match.group(2) is not None else None)


def main_offsets_lark(text: str, path: str) -> tuple[MainOffsets | None, ParseProblem | None]:
    tree, problem = _lark.parse("postfix_main", text, path, describe=_describe(_MAIN_WORDS))
    if problem is not None:
        return None, problem
    name = value = None
    for token in tree.children:
        if token.type == "NAME":
            name = (token.start_pos, token.end_pos)
        elif token.type == "VALUE":
            value = (token.start_pos, token.end_pos)
    return (name, value), None


def _main_hint(text: str, offset: int) -> str:
    if offset == 0:
        return "postconf: missing attribute name"
    return "postconf: missing '=' after attribute name"


# --------------------------------------------------------------------------------------------
# master.cf
# --------------------------------------------------------------------------------------------

SERVICE_TYPES = ("inet", "unix", "unix-dgram", "fifo", "pass")
FIELD_NAMES = ("service", "type", "private", "unprivileged", "chroot", "wakeup", "process_limit", "command")
_YES_NO = re.compile(r"^[yn-]$")
_WAKEUP = re.compile(r"^(-|\d+\??)$")
_PROCESS_LIMIT = re.compile(r"^(-|\d+)$")

_MASTER_WORDS = {
    "TEXT": "a word",
    "GROUP": "a balanced '{ ... }' group",
    "_WS": "a blank",
    "$END": "end of entry",
    "<END-OF-FILE>": "end of entry",
}


def parse_master(source: SourceFile) -> Parsed:
    logicals, comments, ignored = logical_lines(source.text, source.path)
    tree = MasterFile(ignored=ignored)
    problems: list[ParseProblem] = []
    refused = False
    for logical in logicals:
        words, problem = _words(logical, source.path)
        if problem is not None:
            # postconf only warns about unbalanced braces; the master daemon refuses the entry
            problems.append(problem)
            words = _plain_words(logical, source.path)
        fatal = _check_fields(words, logical, source.path)
        if fatal is not None:
            problems.append(fatal)
            refused = True
            continue
        entry, option_problems = _master_entry(words, logical, source.path)
        problems.extend(option_problems)
        tree.entries.append(entry)
    return Parsed(source, None if refused else tree, problems, comments)


def _words(logical: LogicalLine, path: str) -> tuple[list[Word], ParseProblem | None]:
    offsets = master_offsets_fast(logical.text)
    if offsets is None:
        offsets, problem = master_offsets_lark(logical.text, path)
        if problem is not None:
            return [], _relocate(problem, logical, path, lambda text, offset: "postconf: missing '}'")
    return [Word(logical.text[start:end], logical.span(path, start, end)) for start, end in offsets], None


# The terminals of the grammar `postfix_master` (start rule), tried at each position in turn
# as Lark's lexer does: blanks, TEXT, GROUP. Their first characters differ, so at most one can
# match anywhere, and committing to it (no backtracking) is what the lexer does too.
_MASTER_TOKEN = re.compile(
    r"(?P<ws>[ \t\f\v\r]+)|[^\s{]+"
    r"|\{(?:[^{}]|\{(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*\})*\}"
)


def master_offsets_fast(text: str) -> list[tuple[int, int]] | None:
    """(start, end) of each word (adjacent TEXT/GROUP runs), or None when Lark must look.

    None for a character no terminal takes (an unbalanced `{`, a whitespace character other
    than the grammar's blanks): the grammar then reports the problem.
    """
    words: list[tuple[int, int]] = []
    position, length = 0, len(text)
    word_start = None
    while position < length:
        match = _MASTER_TOKEN.match(text, position)
        if match is None:
            return None
        if match.group("ws") is not None:
            if word_start is not None:
                words.append((word_start, position))
                word_start = None
        elif word_start is None:
            word_start = position
        position = match.end()
    if word_start is not None:
        words.append((word_start, length))
    return words or None


def master_offsets_lark(text: str, path: str) -> tuple[list[tuple[int, int]] | None, ParseProblem | None]:
    tree, problem = _lark.parse("postfix_master", text, path, describe=_describe(_MASTER_WORDS))
    if problem is not None:
        return None, problem
    return [(node.meta.start_pos, node.meta.end_pos) for node in tree.children], None


def _plain_words(logical: LogicalLine, path: str) -> list[Word]:
    """Whitespace-separated words, for an entry whose braces do not balance."""
    return [Word(m.group(), logical.span(path, m.start(), m.end())) for m in re.finditer(r"\S+", logical.text)]


def _check_fields(words: list[Word], logical: LogicalLine, path: str) -> ParseProblem | None:
    """The checks `postconf -M` makes on fields 1-7; each failure makes postconf refuse the file."""
    if len(words) < len(FIELD_NAMES):
        line, column = logical.position(len(logical.text))
        missing = FIELD_NAMES[len(words)]
        found = f"end of entry after {len(words)} field{'s' if len(words) != 1 else ''}"
        return ParseProblem(
            Span(path, line, column),
            f"unexpected {found}; expected the {missing} field (postconf: bad field count; "
            f"an entry has 8 fields: {' '.join(FIELD_NAMES)})",
            (missing,),
        )
    checks = (
        (1, lambda v: v in SERVICE_TYPES, "inet, unix, unix-dgram, fifo or pass"),
        (2, _YES_NO.match, "y, n or -"),
        (3, _YES_NO.match, "y, n or -"),
        (4, _YES_NO.match, "y, n or -"),
        (5, _WAKEUP.match, "a number of seconds (optionally followed by '?') or -"),
        (6, _PROCESS_LIMIT.match, "a number or -"),
    )
    for index, valid, expected in checks:
        word = words[index]
        if not valid(word.text):
            name = FIELD_NAMES[index]
            return ParseProblem(
                word.span,
                f"unexpected {word.text!r} in the {name} field; expected {expected} "
                f"(postconf: invalid {name} field)",
                (expected,),
            )
    return None


def _master_entry(words: list[Word], logical: LogicalLine, path: str) -> tuple[MasterEntry, list[ParseProblem]]:
    fields = [w.text for w in words[: len(FIELD_NAMES)]]
    args = tuple(words[len(FIELD_NAMES):])
    options, problems = _options(args, path)
    last_line, last_column = logical.position(len(logical.text))
    entry = MasterEntry(
        service=fields[0], type=fields[1], private=fields[2], unprivileged=fields[3], chroot=fields[4],
        wakeup=fields[5], process_limit=fields[6], command=fields[7], args=args, options=tuple(options),
        span=words[0].span,
        line_span=Span(path, logical.line, 1, last_line, last_column),
    )
    return entry, problems


def _options(args: tuple[Word, ...], path: str) -> tuple[list[MasterOption], list[ParseProblem]]:
    """The `-o` overrides among the daemon arguments, read as the master daemon reads them."""
    options: list[MasterOption] = []
    problems: list[ParseProblem] = []
    index = 0
    while index < len(args):
        word = args[index]
        index += 1
        if word.text == "-o":
            if index >= len(args):
                problems.append(ParseProblem(word.span, "unexpected end of entry after '-o'; expected name=value"))
                break
            value_word = args[index]
            index += 1
            text, span = value_word.unwrapped(), _join(word.span, value_word.span)
        elif word.text.startswith("-o") and not word.text.startswith("--"):
            text, span = word.text[2:], word.span
            if text.startswith("{"):
                # getopt hands the daemon "{name=value}" and the master only unwraps an argument
                # that starts with "{": the daemon gets a parameter literally named "{name"
                problems.append(ParseProblem(
                    word.span,
                    f"unexpected '{{' right after '-o' in {word.text!r}; expected '-o {text}' "
                    "(the master daemon does not unwrap '-o{...}': the setting is not applied)",
                ))
        else:
            continue
        option = _name_value(text, span)
        if option is None:
            problems.append(ParseProblem(
                span, f"unexpected {text!r} after '-o'; expected name=value (master: invalid \"-o {text}\" option value)"
            ))
            continue
        options.append(option)
    return options, problems


def _name_value(text: str, span: Span) -> MasterOption | None:
    """Postfix split_nameval: name up to blank or '=', optional blanks, '=', value trimmed."""
    match = re.match(r"^\s*([^\s=]+)\s*=(.*)$", text, re.S)
    if match is None:
        return None
    return MasterOption(match.group(1), match.group(2).strip(), span)


def _join(first: Span, last: Span) -> Span:
    return Span(first.path, first.line, first.column, last.end_line, last.end_column)


# --------------------------------------------------------------------------------------------
# docker-mailserver postfix-master.cf
# --------------------------------------------------------------------------------------------

_OVERRIDE_WORDS = {
    "SERVICE": "a service name",
    "SERVICE_TYPE": "a service type",
    "PARAMETER": "a parameter name",
    "SLASH": "'/'",
    "EQUAL": "'='",
    "VALUE": "a value",
    "_WS": "a blank",
    "$END": "end of line",
    "<END-OF-FILE>": "end of line",
}
# DMS runs `postconf -P "$LINE"` only for lines matching ^[0-9a-z] (setup.d/postfix.sh)
_DMS_APPLIED = re.compile(r"^[0-9a-z]")


def parse_dms_master(source: SourceFile) -> Parsed:
    tree = OverrideFile()
    problems: list[ParseProblem] = []
    comments: list[Comment] = []
    for number, raw in enumerate(source.text.split("\n"), start=1):
        stripped = raw.strip()
        column = len(raw) - len(raw.lstrip()) + 1
        if not stripped:
            continue
        if stripped.startswith("#"):
            comments.append(Comment(number, column, stripped))
            continue
        line, problem = _override_line(stripped, Span(source.path, number, column, number, column + len(stripped)))
        tree.lines.append(line)
        if problem is not None and line.skipped is None:
            problems.append(problem)
    # DMS carries on after a failing `postconf -P`, so the file as a whole is never refused
    return Parsed(source, tree, problems, comments)


def _override_line(text: str, span: Span) -> tuple[OverrideLine, ParseProblem | None]:
    skipped = None if _DMS_APPLIED.match(text) else _skip_reason(text)
    parts = override_parts_fast(text)
    if parts is None:
        parts, problem = override_parts_lark(text, span)
        if problem is not None:
            problem = _override_problem(text, span, problem)
            return OverrideLine(text, span, skipped=skipped, invalid=problem.message), problem
    line = OverrideLine(
        text, span, parts["SERVICE"], parts["SERVICE_TYPE"], parts["PARAMETER"], parts.get("VALUE", ""), skipped,
    )
    invalid = _override_semantics(line)
    if invalid is not None:
        line = OverrideLine(text, span, line.service, line.type, line.parameter, line.value, skipped, invalid)
        return line, ParseProblem(span, invalid)
    return line, None


# The grammar's `override` rule as one regular expression (same terminals, same order).
_OVERRIDE_LINE = re.compile(r"([^\s/]+)/([^\s/]+)/([^\s/=]+)[ \t\f\v\r]*=[ \t\f\v\r]*(\S+)?")


def override_parts_fast(text: str) -> dict[str, str] | None:
    """terminal name -> text for a well-formed `service/type/parameter=value`, else None."""
    match = _OVERRIDE_LINE.fullmatch(text)
    if match is None:
        return None
    service, service_type, parameter, value = match.groups()
    parts = {"SERVICE": service, "SERVICE_TYPE": service_type, "PARAMETER": parameter}
    if value is not None:
        parts["VALUE"] = value
    return parts


def override_parts_lark(text: str, span: Span) -> tuple[dict[str, str] | None, ParseProblem | None]:
    parsed, problem = _lark.parse(
        "postfix_master", text, span.path, start="override", line_offset=span.line - 1,
        column_offset=span.column - 1, describe=_describe(_OVERRIDE_WORDS),
    )
    if problem is not None:
        return None, problem
    return {token.type: str(token) for token in parsed.children if token.type not in ("SLASH", "EQUAL")}, None


def _skip_reason(text: str) -> str:
    first = text[0]
    if first.isupper():
        what = "an uppercase letter (service names are case-sensitive)"
    elif first == "[":
        what = "'[' (a bracketed IPv6 address)"
    else:
        what = repr(first)
    return f"docker-mailserver only applies lines that start with 0-9 or a-z; this one starts with {what}"


def _override_problem(text: str, span: Span, problem: ParseProblem) -> ParseProblem:
    """Reword Lark's error in the terms `postconf -P` uses for the same mistake."""
    offset = problem.span.column - span.column
    before = text[:offset]
    if before.count("/") >= 2 and "=" in before and text[offset:offset + 1].isspace():
        found = text[offset:].strip()
        return ParseProblem(
            problem.span,
            f"unexpected whitespace before {found!r} in the parameter value; expected end of line "
            "(postconf: -Pe does not accept whitespace in parameter value)",
            ("end of line",),
        )
    hint = "postconf: -Pe or -PX requires service_name/type/parameter"
    if "=" not in text:
        hint = "postconf: missing '=' after attribute name"
    return ParseProblem(problem.span, f"{problem.message} ({hint})", problem.expected)


def _override_semantics(line: OverrideLine) -> str | None:
    if line.parameter == "*":
        return "unexpected '*' as parameter name; expected a parameter name (postconf: -Pe does not accept wild-card parameter name)"
    if line.type not in SERVICE_TYPES and line.type != "*":
        return (f"unexpected {line.type!r} as service type; expected inet, unix, unix-dgram, fifo or pass "
                "(postconf: service type syntax is unsupported)")
    return None


# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------


def _describe(words: dict[str, str]):
    return lambda token: words.get(token, token.lower())


def _relocate(problem: ParseProblem, logical: LogicalLine, path: str, hint) -> ParseProblem:
    """Map a problem's column in the joined logical text back to the file; add postconf's words."""
    offset = problem.span.column - 1
    line, column = logical.position(offset)
    return ParseProblem(Span(path, line, column), f"{problem.message} ({hint(logical.text, offset)})", problem.expected)


def parse(source: SourceFile) -> Parsed:
    if source.kind is FileKind.POSTFIX_MAIN:
        return parse_main(source)
    if source.kind is FileKind.POSTFIX_MASTER:
        return parse_master(source)
    if source.kind is FileKind.DMS_POSTFIX_MASTER:
        return parse_dms_master(source)
    return Parsed(source)


def entries_from_text(text: str, at: Span) -> tuple[list[MasterEntry], list[ParseProblem]]:
    """master.cf entries from text a command writes (`postconf -M`, a sed pipeline).

    Every span of the result is `at`: the line of the script that produced the text.
    """
    parsed = parse_master(SourceFile(at.path, FileKind.POSTFIX_MASTER, text))
    problems = [replace(p, span=at) for p in parsed.problems]
    if parsed.tree is None:
        return [], problems
    entries = [
        replace(entry, span=at, line_span=at, args=tuple(replace(w, span=at) for w in entry.args),
                options=tuple(replace(o, span=at) for o in entry.options))
        for entry in parsed.tree.entries
    ]
    return entries, problems
