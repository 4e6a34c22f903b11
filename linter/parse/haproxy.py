"""HAProxy `haproxy.cfg` -> sections of statements, each word with its line and column.

Two steps:

1. `grammars/haproxy.lark` splits the text into lines, words and comments and groups the lines
   into sections. Its WORD terminal is HAProxy's tokenizer (`parse_line` in src/tools.c) as one
   regular expression, so word boundaries, quotes and mid-word `#` comments are decided by Lark
   with exact positions; an unterminated quote is a Lark error at the quote.
2. This module then decodes each word the way `parse_line` does (quotes removed, `\\` escapes
   applied, `"${VAR}"` kept as written because the environment is unknown) and runs the few
   checks for which `haproxy -c` refuses a file in every version: keywords outside any section,
   section headers without a name, `.if` blocks that do not match, a trailing `\\` taken for a
   line continuation (HAProxy has none: it becomes an argument), malformed `timeout` values,
   `tcp-check expect` with stray words, `server`/`bind` without an address or port.

Any problem means HAProxy would not start, so the tree is then None. Unknown keywords are not
reported: new HAProxy versions add them often and the linter must not reject valid files.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator

from mailproxy_lint.data import haproxy_keywords as kw
from mailproxy_lint.model import Comment, ParseProblem, SourceFile, Span
from mailproxy_lint.parse import Parsed, _lark

# --------------------------------------------------------------------------------------------
# Syntax objects
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Word:
    """One argument of a line, as HAProxy sees it, and where it is written."""

    text: str  # quotes removed, escapes applied; environment references kept as written
    raw: str  # exactly as written
    line: int
    column: int  # 1-based
    end_column: int  # exclusive

    def span(self, path: str) -> Span:
        return Span(path, self.line, self.column, self.line, self.end_column)


@dataclass(frozen=True, slots=True)
class Statement:
    """A keyword and its arguments: one physical line."""

    words: tuple[Word, ...]

    @property
    def keyword(self) -> str:
        return self.words[0].text

    @property
    def args(self) -> tuple[Word, ...]:
        return self.words[1:]

    @property
    def line(self) -> int:
        return self.words[0].line

    def arg(self, index: int) -> str | None:
        """The text of argument `index` (0 = first after the keyword), or None."""
        return self.words[index + 1].text if index + 1 < len(self.words) else None

    def span(self, path: str) -> Span:
        first, last = self.words[0], self.words[-1]
        return Span(path, first.line, first.column, last.line, last.end_column)

    def __str__(self) -> str:
        return " ".join(w.text for w in self.words)


@dataclass(frozen=True, slots=True)
class Section:
    """A section header and the statements up to the next header (directives excluded)."""

    header: Statement
    statements: tuple[Statement, ...]

    @property
    def kind(self) -> str:
        return self.header.keyword

    @property
    def name(self) -> str | None:
        """The section's name; None for `global`, anonymous `defaults` and `defaults from x`."""
        first = self.header.arg(0)
        if first is None or (self.kind == "defaults" and first == "from"):
            return None
        return first

    @property
    def from_defaults(self) -> Word | None:
        """The `from <defaults>` reference of a proxy section, when written."""
        args = self.header.args
        for i, word in enumerate(args[:-1]):
            if word.text == "from" and (i == 1 or (i == 0 and self.kind == "defaults")):
                return args[i + 1]
        return None

    def find(self, keyword: str) -> list[Statement]:
        return [s for s in self.statements if s.keyword == keyword]


@dataclass(frozen=True, slots=True)
class HaproxyConfig:
    """A parsed haproxy.cfg: the tree of `Parsed` for kind `haproxy`."""

    path: str
    sections: tuple[Section, ...]
    directives: tuple[Statement, ...]  # `.if`, `.endif`, `.notice`, ... in file order


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def parse(source: SourceFile) -> Parsed:
    path, text = source.path, source.text
    problems: list[ParseProblem] = []
    if text and not text.endswith("\n"):
        problems.append(_missing_lf(path, text))
        text += "\n"  # keep looking for other problems
    tree, problem = _lark.parse("haproxy", text, path)
    if problem is not None:
        return Parsed(source, None, problems + [_reword(problem, text)])
    builder = _TreeReader(path)
    config, comments = builder.read(tree)
    problems.extend(builder.problems)
    problems.extend(_check(config))
    problems.sort(key=lambda p: (p.span.line, p.span.column))
    return Parsed(source, None if problems else config, problems, comments)


def _missing_lf(path: str, text: str) -> ParseProblem:
    lines = text.split("\n")
    return ParseProblem(
        Span(path, len(lines), len(lines[-1]) + 1),
        "unexpected end of file in the middle of the last line; expected a newline at the end "
        "(HAProxy 2.2+ refuses a file whose last line has no LF)",
        ("end of line",),
    )


def _reword(problem: ParseProblem, text: str) -> ParseProblem:
    """Say in HAProxy's terms what the grammar could not read."""
    lines = text.split("\n")
    line_text = lines[problem.span.line - 1] if problem.span.line <= len(lines) else ""
    char = line_text[problem.span.column - 1: problem.span.column]
    if char in ("'", '"'):
        message = f"unexpected end of line inside a quoted string opened here; expected a closing {char}"
        return ParseProblem(problem.span, message, (char,))
    if "SECTION" in problem.expected:
        word = re.split(r"[\s#]", line_text[problem.span.column - 1:], maxsplit=1)[0] or "text"
        message = (f"unexpected keyword '{word}' outside any section; expected a section header "
                   "('global', 'defaults', 'frontend', 'backend', 'listen', ...) before it")
        return ParseProblem(problem.span, message, ("section header",))
    return problem


# --------------------------------------------------------------------------------------------
# Lark tree -> syntax objects, with word decoding
# --------------------------------------------------------------------------------------------


class _TreeReader:
    """Walks the Lark tree once; decodes words and collects comments and tokenizer errors."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[ParseProblem] = []
        self.comments: list[Comment] = []

    def read(self, tree: Any) -> tuple[HaproxyConfig, list[Comment]]:
        sections: list[Section] = []
        directives: list[Statement] = []
        for child in tree.children:
            if _is_token(child):  # a comment line before the first section
                self._comment(child)
            elif child.data == "section":
                sections.append(self._section(child, directives))
            elif child.data == "directive":
                directives.append(self._statement(child))
            else:  # scope line
                self._statement(child)
        return HaproxyConfig(self.path, tuple(sections), tuple(directives)), self.comments

    def _section(self, tree: Any, directives: list[Statement]) -> Section:
        header, *body = tree.children
        statements = []
        for child in body:
            if _is_token(child):
                self._comment(child)
            elif child.data == "statement":
                statements.append(self._statement(child))
            elif child.data == "directive":
                directives.append(self._statement(child))
            else:
                self._statement(child)
        return Section(self._statement(header), tuple(statements))

    def _statement(self, tree: Any) -> Statement:
        words = []
        for token in tree.children:
            if token.type == "COMMENT":
                self._comment(token)
            else:
                words.append(self._word(token))
        return Statement(tuple(words))

    def _comment(self, token: Any) -> None:
        self.comments.append(Comment(token.line, token.column, str(token)))

    def _word(self, token: Any) -> Word:
        raw = str(token)
        text, error = decode_word(raw)
        if error is not None:
            offset, message = error
            self.problems.append(ParseProblem(Span(self.path, token.line, token.column + offset), message))
        return Word(text, raw, token.line, token.column, token.end_column)


def _is_token(node: Any) -> bool:
    return hasattr(node, "type")


def decode_word(raw: str) -> tuple[str, tuple[int, str] | None]:
    """Apply HAProxy's quoting and escapes to one word (parse_line, src/tools.c).

    Returns the text and, when HAProxy would refuse the word, (offset of the culprit, message).
    Environment references inside double quotes are kept as written (`${VAR}`): the values
    are unknown to a static linter.
    """
    out: list[str] = []
    i, n = 0, len(raw)
    single = double = False
    while i < n:
        c = raw[i]
        if single:  # strong quotes: everything literal up to the closing quote
            if c == "'":
                single = False
            else:
                out.append(c)
            i += 1
        elif c == '"':
            double = not double
            i += 1
        elif c == "'" and not double:
            single = True
            i += 1
        elif c == "\\":
            emitted, consumed, error = _escape(raw, i, double)
            if error:
                return "".join(out), (i, error)
            out.append(emitted)
            i += consumed
        elif c == "$" and double:
            end, error = _env_reference_end(raw, i)
            if error:
                return "".join(out), error
            out.append(raw[i:end])
            i = end
        else:
            out.append(c)
            i += 1
    return "".join(out), None


_ESCAPES = {" ": " ", "\\": "\\", "t": "\t", "n": "\n", "r": "\r", "#": "#", "'": "'", '"': '"'}
_HEX = re.compile(r"[0-9A-Fa-f]{2}")


def _escape(raw: str, i: int, double: bool) -> tuple[str, int, str | None]:
    """(text emitted, characters consumed, error) for the backslash at `raw[i]`."""
    nxt = raw[i + 1: i + 2]
    if nxt in _ESCAPES and nxt:
        return _ESCAPES[nxt], 2, None
    if nxt == "$" and double:
        return "$", 2, None
    if nxt == "x":
        if not _HEX.fullmatch(raw[i + 2: i + 4]):
            return "", 0, (f"unexpected '{raw[i:i + 4]}'; expected '\\x' followed by two hexadecimal digits "
                           "(truncated or invalid hexadecimal sequence)")
        return chr(int(raw[i + 2: i + 4], 16)), 4, None
    return "\\", 1, None  # not an escape: the backslash stays, the next character is read normally


def _env_reference_end(raw: str, i: int) -> tuple[int, tuple[int, str] | None]:
    """End offset of the `$VAR` / `${VAR}` reference starting at `raw[i]`, or an error."""
    j = i + 1
    brace = j if raw[j: j + 1] == "{" else None
    if brace is not None:
        j += 1
    first = raw[j: j + 1]
    if not (first.isascii() and (first.isalpha() or first in "_.")):
        found = repr(first) if first and first != '"' else "end of the quoted string"
        return j, (j, f"unexpected {found} after '$' in double quotes; expected an environment variable "
                      "name (a letter, '_' or '.'); write '\\$' for a literal dollar")
    j += 1
    while j < len(raw) and raw[j].isascii() and (raw[j].isalnum() or raw[j] == "_"):
        j += 1
    if brace is None:
        return j, None
    if raw[j: j + 1] == "[":
        if raw[j: j + 3] != "[*]":
            return j, (j, f"unexpected '{raw[j:j + 3]}' in '{raw[i:j + 3]}'; expected '[*]' (word expansion)")
        j += 3
    close = raw.find("}", j) if raw[j: j + 1] == "-" else (j if raw[j: j + 1] == "}" else -1)
    if close < 0:
        return j, (brace, f"unexpected end of '{raw[i:]}'; expected '}}' after the environment variable name")
    return close + 1, None


# --------------------------------------------------------------------------------------------
# Checks for what HAProxy refuses (every version)
# --------------------------------------------------------------------------------------------


def _check(config: HaproxyConfig) -> Iterator[ParseProblem]:
    path = config.path
    yield from _check_directives(path, config.directives)
    seen: dict[str, list[Section]] = {}
    for section in config.sections:
        yield from _check_header(path, section, seen)
        if section.kind in kw.PROXY_SECTIONS or section.kind == "global":
            for statement in section.statements:
                yield from _check_statement(path, section, statement)


_CONDITIONALS = {".if", ".elif", ".else", ".endif"}
_MESSAGES = {".notice", ".warning", ".alert", ".diag"}


def _check_directives(path: str, directives: tuple[Statement, ...]) -> Iterator[ParseProblem]:
    stack: list[tuple[Statement, bool]] = []  # (opening .if, an .else was seen)
    for d in directives:
        where, name = d.words[0].span(path), d.keyword
        if name == ".if":
            stack.append((d, False))
        elif name in (".elif", ".else"):
            if not stack:
                yield ParseProblem(where, f"unexpected '{name}' with no matching '.if'; expected '.if' before it")
            elif stack[-1][1]:
                yield ParseProblem(where, f"unexpected '{name}' after '.else'; expected '.endif'")
            elif name == ".else":
                stack[-1] = (stack[-1][0], True)
        elif name == ".endif":
            if not stack:
                yield ParseProblem(where, "unexpected '.endif' with no matching '.if'; expected '.if' before it")
            else:
                stack.pop()
        elif name not in _MESSAGES and not stack:
            # inside a block that may be false HAProxy does not look at other directives
            yield ParseProblem(where, f"unexpected directive '{name}'; expected one of .if, .elif, .else, "
                                      ".endif, .notice, .warning, .alert or .diag (unknown directive)")
    for opening, _ in stack:
        yield ParseProblem(opening.words[0].span(path), "unexpected end of file inside this '.if' block; "
                                                        "expected '.endif' (non-terminated '.if' block)")


_PROXY_NAME = re.compile(r"[A-Za-z0-9._:-]+")
_CAPABILITIES = {"frontend": {"frontend"}, "backend": {"backend"}, "listen": {"frontend", "backend"}}


def _check_header(path: str, section: Section, seen: dict[str, list[Section]]) -> Iterator[ParseProblem]:
    header, spec = section.header, kw.SECTIONS[section.kind]
    args = header.args
    if spec.needs_name and not args:
        yield ParseProblem(header.words[0].span(path), f"unexpected end of line after '{section.kind}'; "
                                                       f"expected a name ({spec.message})")
        return
    if not spec.takes_name and args:
        yield ParseProblem(args[0].span(path), f"unexpected argument '{args[0].text}' after '{section.kind}'; "
                                               "expected nothing")
    if not spec.proxy:
        return
    name_word = None if section.name is None else args[0]
    if name_word is not None and not _PROXY_NAME.fullmatch(name_word.text):
        bad = next(ch for ch in name_word.text if not _PROXY_NAME.fullmatch(ch))
        yield ParseProblem(name_word.span(path), f"unexpected character {bad!r} in {section.kind} name "
                                                 f"'{name_word.text}'; expected letters, digits, '.', '_', ':' or '-'")
    yield from _check_proxy_extra_args(path, section)
    yield from _check_from(path, section, seen)
    if section.name is not None:
        yield from _check_duplicate(path, section, seen)
        seen.setdefault(section.name, []).append(section)


def _check_proxy_extra_args(path: str, section: Section) -> Iterator[ParseProblem]:
    args = section.header.args
    if section.kind in _CAPABILITIES and len(args) > 1 and args[1].text != "from":
        # an old-style `listen smtp :25`; HAProxy stops reading the section there
        yield ParseProblem(args[1].span(path), f"unexpected '{args[1].text}' after the {section.kind} name; "
                                               "expected 'from <defaults>' or nothing (please use the 'bind' "
                                               "keyword for listening addresses)")


def _check_from(path: str, section: Section, seen: dict[str, list[Section]]) -> Iterator[ParseProblem]:
    ref = section.from_defaults
    if ref is None:
        return
    if not any(s.kind == "defaults" for s in seen.get(ref.text, [])):
        yield ParseProblem(ref.span(path), f"unexpected defaults name '{ref.text}'; expected a `defaults` "
                                           f"section named so above this {section.kind} (defaults section "
                                           f"'{ref.text}' not found)")


def _check_duplicate(path: str, section: Section, seen: dict[str, list[Section]]) -> Iterator[ParseProblem]:
    mine = _CAPABILITIES.get(section.kind)
    if not mine:
        return
    for other in seen.get(section.name or "", []):
        if mine & _CAPABILITIES.get(other.kind, set()):
            yield ParseProblem(section.header.args[0].span(path),
                               f"unexpected {section.kind} name '{section.name}', already used by the "
                               f"{other.kind} on line {other.header.line}; expected a unique name")
            return


def _check_statement(path: str, section: Section, statement: Statement) -> Iterator[ParseProblem]:
    keyword = statement.keyword
    last = statement.words[-1]
    if keyword in kw.STRICT_ARGUMENT_KEYWORDS and len(statement.words) > 1 and last.text == "\\":
        yield ParseProblem(last.span(path), f"unexpected '\\' at the end of a '{keyword}' line; expected all "
                                            "of its options on one line (HAProxy has no line continuation: it "
                                            "reads the '\\' as an argument and the next line as a new keyword)")
        return
    if section.kind == "global":
        return
    if keyword == "timeout":
        yield from _check_timeout(path, statement)
    elif keyword == "tcp-check" and statement.arg(0) == "expect":
        yield from _check_tcp_check_expect(path, statement)
    elif keyword == "server" and len(statement.args) < 2:
        yield ParseProblem(statement.span(path), "unexpected end of line; expected 'server <name> "
                                                 "<addr>[:<port>]' ('server' expects <name> and <addr>[:<port>] "
                                                 "as arguments)")
    elif keyword == "bind":
        yield from _check_bind(path, statement)


def _check_timeout(path: str, statement: Statement) -> Iterator[ParseProblem]:
    args = statement.args
    if not args or args[0].text not in kw.TIMEOUT_KINDS:
        where = args[0].span(path) if args else statement.span(path)
        found = f"'{args[0].text}'" if args else "end of line"
        yield ParseProblem(where, f"unexpected {found} after 'timeout'; expected one of "
                                  f"{', '.join(sorted(kw.TIMEOUT_KINDS))}")
        return
    kind = args[0].text
    if len(args) < 2:
        yield ParseProblem(statement.span(path), f"unexpected end of line after 'timeout {kind}'; expected "
                                                 "a time value such as 30s or 5m")
        return
    value = args[1]
    error = haproxy_time_error(value.text)
    if error is not None:
        offset, message = error
        column = value.column + offset if value.raw == value.text else value.column
        yield ParseProblem(Span(path, value.line, column), f"{message} in 'timeout {kind} {value.text}'; "
                                                           "expected digits and an optional unit (us, ms, s, m, h, d)")
    if len(args) > 2:
        yield ParseProblem(args[2].span(path), f"unexpected extra argument '{args[2].text}' after "
                                               f"'timeout {kind} {value.text}'; expected end of line")


def _check_tcp_check_expect(path: str, statement: Statement) -> Iterator[ParseProblem]:
    words = statement.args[1:]
    i, pattern_seen = 0, False
    while i < len(words):
        word = words[i].text
        if word == "!":
            i += 1
            continue
        if word in kw.TCP_CHECK_EXPECT_OPTIONS or word in kw.TCP_CHECK_EXPECT_MATCHES:
            if i + 1 >= len(words):
                yield ParseProblem(words[i].span(path), f"unexpected end of line after '{word}'; expected "
                                                        "its argument")
                return
            if word in kw.TCP_CHECK_EXPECT_MATCHES:
                if pattern_seen:
                    yield ParseProblem(words[i].span(path), f"unexpected second pattern '{word}'; expected "
                                                            "one pattern per 'tcp-check expect'")
                    return
                pattern_seen = True
            i += 2
            continue
        hint = " (quote a pattern that contains spaces)" if pattern_seen else ""
        yield ParseProblem(words[i].span(path), f"unexpected '{word}' in 'tcp-check expect'; expected "
                                                f"min-recv, comment, [!]string, [!]rstring, [!]binary, "
                                                f"[!]rbinary, [!]string-lf or [!]binary-lf{hint}")
        return
    if not pattern_seen:
        yield ParseProblem(statement.span(path), "unexpected end of line in 'tcp-check expect'; expected a "
                                                 "match such as 'string <pattern>'")


def _check_bind(path: str, statement: Statement) -> Iterator[ParseProblem]:
    if not statement.args:
        yield ParseProblem(statement.span(path), "unexpected end of line after 'bind'; expected an address "
                                                 "such as ':25' or '0.0.0.0:993'")
        return
    word = statement.args[0]
    for part in word.text.split(","):
        address = split_address(part)
        if address.needs_port and address.port_text is None:
            yield ParseProblem(word.span(path), f"unexpected address '{part}' without a port; expected "
                                                f"'{part}:<port>' (missing port specification)")


# --------------------------------------------------------------------------------------------
# Values shared with the builder
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Address:
    """An address argument of `bind` or `server` (str2sa_range), split into host and port."""

    host: str  # "" for every interface (`:25`, `*:25`); a path for unix sockets
    port_text: str | None  # None when absent; may be a range "2000-2100", an offset "+1", or "${PORT}"
    family: str  # "inet", "unix", "fd", "abns", ...

    @property
    def needs_port(self) -> bool:
        return self.family == "inet" and "$" not in self.host

    @property
    def port(self) -> int | None:
        """The port as a number: the first one of a range; None for offsets, variables, absence."""
        if self.port_text is None:
            return None
        match = re.fullmatch(r"(\d+)(?:-\d+)?", self.port_text)
        return int(match.group(1)) if match else None


_NON_INET_PREFIXES = {"unix": "unix", "abns": "abns", "abnsz": "abns", "fd": "fd", "sockpair": "fd"}


def split_address(text: str) -> Address:
    prefix, sep, rest = text.partition("@")
    if sep and re.fullmatch(r"[a-z0-9]+", prefix):
        if prefix in _NON_INET_PREFIXES:
            return Address(rest, None, _NON_INET_PREFIXES[prefix])
        text = rest  # ipv4@, ipv6@, tcp6@, quic4@, udp@, mptcp@ ...: still host:port
    if text.startswith("/"):
        return Address(text, None, "unix")
    if text.startswith("["):
        host, _, after = text[1:].partition("]")
        return Address(host, after[1:] if after.startswith(":") and after[1:] else None, "inet")
    if ":" not in text:
        return Address(text, None, "inet")
    host, _, port = text.rpartition(":")
    if host == "*":
        host = ""
    return Address(host, port or None, "inet")


_TIME = re.compile(r"(\d+)(us|ms|s|m|h|d)?")
_UNIT_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_MAX_MS = 2**31 - 1


def parse_haproxy_time(text: str, default_unit: str = "ms") -> float | None:
    """A HAProxy time value in seconds (parse_time_err), or None when HAProxy refuses it.

    Digits and an optional unit: us, ms, s, m (minutes), h, d; without a unit the keyword's
    default applies (milliseconds for every `timeout`). Characters after a valid unit
    (`30sec`) only earn a warning, so the value still counts.
    """
    if haproxy_time_error(text, default_unit) is not None:
        return None
    match = _TIME.match(text)
    assert match is not None  # guaranteed by haproxy_time_error
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2) or default_unit]


def haproxy_time_error(text: str, default_unit: str = "ms") -> tuple[int, str] | None:
    """(offset, message) when HAProxy refuses `text` as a time value, else None."""
    match = _TIME.match(text)
    if match is None:
        found = repr(text[0]) if text else "an empty value"
        return 0, f"unexpected {found}"
    if match.group(2) is None and match.end() < len(text):
        return match.end(), f"unexpected {text[match.end()]!r}"
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2) or default_unit]
    if seconds * 1000 > _MAX_MS:
        return 0, "unexpected value above 2147483647 ms (~24.8 days, timer overflow)"
    return None
