"""HAProxy `haproxy.cfg` -> sections of statements, each word with its line and column.

Two steps:

1. The text is split into lines, words and comments, and the lines are grouped into sections.
   `grammars/haproxy.lark` defines this: its WORD terminal is HAProxy's tokenizer (`parse_line`
   in src/tools.c) as one regular expression, so word boundaries, quotes and mid-word `#`
   comments have exact positions; an unterminated quote is an error at the quote. A Lark parse
   with positions costs over ten times what the splitting needs, so `split_lines` does the same
   with the grammar's own terminal expressions, line by line, and hands the file to Lark only
   when a line does not fit (which happens only when the file has a syntax error: Lark then
   words it). `tests/test_parse_haproxy_fast.py` holds the two together.
2. This module then decodes each word the way `parse_line` does (quotes removed, `\\` escapes
   applied, `"${VAR}"` kept as written because the environment is unknown) and runs the few
   checks for which `haproxy -c` refuses a file in every version: keywords outside any section,
   section headers without a name, `.if` blocks that do not match, a trailing `\\` taken for a
   line continuation (HAProxy has none: it becomes an argument), malformed `timeout` values,
   `tcp-check expect` with stray words, `server`/`bind` without an address or port.
3. `.if`/`.elif`/`.else` conditions are parsed into small expression trees (src/cfgcond.c) and
   every statement records the branch it sits in (`Statement.branch`). HAProxy decides them at
   start-up; here only what is constant is decided (numbers, `streq` of plain strings): lines
   under a branch that is false whatever the environment are not checked, as HAProxy does not
   read them. The builder decides the rest when it knows the HAProxy version (`version_*`).

Any problem means HAProxy would not start, so the tree is then None. Unknown keywords are not
reported: new HAProxy versions add them often and the linter must not reject valid files.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator, Union

from mailproxy_lint.data import haproxy_keywords as kw
from mailproxy_lint.model import Comment, ParseProblem, SourceFile, Span, Version
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
    env: bool = False  # holds a `"$VAR"` reference, so its value depends on the environment

    def span(self, path: str) -> Span:
        return Span(path, self.line, self.column, self.line, self.end_column)


@dataclass(frozen=True, slots=True)
class Statement:
    """A keyword and its arguments: one physical line."""

    words: tuple[Word, ...]
    branch: Branch | None = None  # the innermost `.if` branch the line sits in; None outside any


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
# `.if` conditions (src/cfgcond.c)
# --------------------------------------------------------------------------------------------

# What the linter knows when it decides a condition: only the HAProxy version, when an image tag
# or the user's config gives it. Environment variables and build features stay unknown.


@dataclass(frozen=True, slots=True)
class Constant:
    """A number term: 0 is false, any other integer true."""

    value: bool

    def evaluate(self, version: Version | None) -> bool | None:
        return self.value


@dataclass(frozen=True, slots=True)
class Predicate:
    """`name(arg, ...)`; `env` when an argument came from a `"$VAR"` expansion."""

    name: str
    args: tuple[str, ...]
    env: bool = False

    def evaluate(self, version: Version | None) -> bool | None:
        if self.name in ("streq", "strneq", "strstr") and len(self.args) == 2 and not self.env:
            a, b = self.args
            return {"streq": a == b, "strneq": a != b, "strstr": b in a}[self.name]
        if self.name in ("version_atleast", "version_before") and self.args and version is not None:
            at_least = version_at_least(version, self.args[0])
            if at_least is None:
                return None
            return at_least if self.name == "version_atleast" else not at_least
        return None  # defined(), feature(), enabled(), the SSL library...: known only at start-up


@dataclass(frozen=True, slots=True)
class Not:
    term: Condition

    def evaluate(self, version: Version | None) -> bool | None:
        value = self.term.evaluate(version)
        return None if value is None else not value


@dataclass(frozen=True, slots=True)
class AllOf:
    """`a && b`: false as soon as one term is false, even when another is unknown."""

    terms: tuple[Condition, ...]

    def evaluate(self, version: Version | None) -> bool | None:
        values = [t.evaluate(version) for t in self.terms]
        return False if False in values else (None if None in values else True)


@dataclass(frozen=True, slots=True)
class AnyOf:
    """`a || b`: true as soon as one term is true, even when another is unknown."""

    terms: tuple[Condition, ...]

    def evaluate(self, version: Version | None) -> bool | None:
        values = [t.evaluate(version) for t in self.terms]
        return True if True in values else (None if None in values else False)


Condition = Union[Constant, Predicate, Not, AllOf, AnyOf]


def version_at_least(version: Version, text: str) -> bool | None:
    """Whether `version` >= `text`; None when `text` is not a version, or when `version` is only
    a branch (`haproxy:2.8`, patch unknown) and `text` names a release inside that branch."""
    wanted = Version.parse(text)
    if wanted is None or not re.fullmatch(r"\d+(\.\d+)*", text.strip()):
        return None
    mine, theirs = list(version.parts), list(wanted.parts)
    if len(theirs) > len(mine) and theirs[:len(mine)] == mine and any(theirs[len(mine):]):
        return None
    width = max(len(mine), len(theirs))
    return tuple(mine + [0] * (width - len(mine))) >= tuple(theirs + [0] * (width - len(theirs)))


@dataclass(frozen=True, slots=True)
class Branch:
    """One branch of a `.if` block: the lines between its opening directive and the next one.

    A branch is taken when its own condition is true (`.else` has none), every earlier branch of
    the block was not, and the enclosing branch is taken.
    """

    directive: Statement  # the `.if`, `.elif` or `.else` line that opens the branch
    condition: Condition | None  # None for `.else`
    earlier: tuple[Condition, ...]  # the conditions of the block's earlier branches
    parent: Branch | None

    @property
    def text(self) -> str:
        """The directive as written, for messages: `.if defined(TLS)`."""
        return " ".join(w.text for w in self.directive.words)

    def own(self, version: Version | None = None) -> bool | None:
        """Whether this branch is the one its block takes, leaving the enclosing blocks aside."""
        mine = True if self.condition is None else self.condition.evaluate(version)
        before = [c.evaluate(version) for c in self.earlier]
        if mine is False or True in before:
            return False
        return True if mine is True and all(b is False for b in before) else None

    def taken(self, version: Version | None = None) -> bool | None:
        """True or False when decided from constants (and `version`, when known); else None."""
        outcomes = []
        branch: Branch | None = self
        while branch is not None:
            outcomes.append(branch.own(version))
            branch = branch.parent
        return False if False in outcomes else (None if None in outcomes else True)

    def undecided(self, version: Version | None = None) -> Branch | None:
        """The innermost branch, this one or an enclosing one, whose fate is not known."""
        branch: Branch | None = self
        while branch is not None and branch.own(version) is not None:
            branch = branch.parent
        return branch


class _ConditionError(Exception):
    def __init__(self, position: int, message: str):
        super().__init__(message)
        self.position = position  # offset in the condition text
        self.message = message


_NUMBER = re.compile(r"[+-]?(?:0[xX][0-9A-Fa-f]+|[1-9][0-9]*|0[0-7]*)")
_MAX_DEPTH = 100


class _ConditionReader:
    """The recursive-descent reader of cfgcond.c over the condition words joined by spaces:

        expr := and ('||' expr)?      and := term ('&&' and)?
        term := '!'* (integer | '(' expr ')' | predicate ['(' args ')'])
    """

    def __init__(self, text: str, env: bool):
        self.text, self.env, self.pos = text, env, 0

    def read(self) -> Condition:
        condition = self._expr(0)
        self._blanks()
        if self.pos < len(self.text):
            raise _ConditionError(self.pos, f"unexpected character {self.text[self.pos]!r} after the condition "
                                            f"'{self.text[:self.pos].strip()}'; expected '&&', '||' or the end "
                                            "of the line")
        return condition

    def _blanks(self) -> None:
        while self.text[self.pos: self.pos + 1] in (" ", "\t") and self.pos < len(self.text):
            self.pos += 1

    def _expr(self, depth: int) -> Condition:
        terms = [self._and(depth)]
        while self._operator("||"):
            terms.append(self._and(depth))
        return terms[0] if len(terms) == 1 else AnyOf(tuple(terms))

    def _and(self, depth: int) -> Condition:
        terms = [self._term(depth)]
        while self._operator("&&"):
            terms.append(self._term(depth))
        return terms[0] if len(terms) == 1 else AllOf(tuple(terms))

    def _operator(self, op: str) -> bool:
        self._blanks()
        if self.text.startswith(op, self.pos):
            self.pos += 2
            return True
        return False

    def _term(self, depth: int) -> Condition:
        self._blanks()
        start = self.pos
        if depth >= _MAX_DEPTH:
            raise _ConditionError(start, "unexpected nesting deeper than 100 levels; expected a simpler condition")
        negate = False
        while self.text[self.pos: self.pos + 1] == "!":
            negate = not negate
            self.pos += 1
            self._blanks()
        term = self._number() or self._parenthesis(depth) or self._predicate(start)
        return Not(term) if negate else term

    def _number(self) -> Condition | None:
        match = _NUMBER.match(self.text, self.pos)
        if match is None or match.end() == self.pos:
            return None
        self.pos = match.end()
        digits = re.sub(r"^[+-]?(?:0[xX])?", "", match.group(0))  # strtol: "010" is octal, "0x1f" hex
        return Constant(digits.strip("0") != "")

    def _parenthesis(self, depth: int) -> Condition | None:
        if self.text[self.pos: self.pos + 1] != "(":
            return None
        start = self.pos
        self.pos += 1
        inner = self._expr(depth + 1)
        self._blanks()
        if self.text[self.pos: self.pos + 1] != ")":
            raise _ConditionError(start, f"unexpected end of '{self.text[start:self.pos].strip()}'; expected ')' "
                                         "after the sub-expression")
        self.pos += 1
        return inner

    def _predicate(self, start: int) -> Condition:
        name = re.match(r"[^ (]*", self.text[self.pos:]).group(0)
        if name not in kw.CONDITION_PREDICATES:
            rest = self.text[start:].strip()
            found = f"'{rest}'" if rest else "end of line"
            raise _ConditionError(start, f"unexpected {found} in the condition; expected a number, '!', '(' or a "
                                         "predicate such as defined(VAR), streq(a,b) or version_atleast(2.4) "
                                         "(unparsable conditional expression)")
        self.pos += len(name)
        args = self._arguments(name) if self.text[self.pos: self.pos + 1] == "(" else ()
        env = self.env and any("$" in a for a in args)
        return Predicate(name, args, env)

    def _arguments(self, name: str) -> tuple[str, ...]:
        """make_arg_list: comma-separated strings up to ')', quotes removed."""
        minimum, maximum = kw.CONDITION_PREDICATES[name]
        self.pos += 1
        args, current, quote = [], [], ""
        while True:
            if self.pos >= len(self.text):
                raise _ConditionError(self.pos, f"unexpected end of the condition in the arguments of '{name}'; "
                                                "expected ')'")
            c = self.text[self.pos]
            self.pos += 1
            if quote:
                quote = "" if c == quote else quote
                if quote:
                    current.append(c)
            elif c in "\"'":
                quote = c
            elif c in ",)":
                args.append("".join(current))
                current = []
                if len(args) > maximum and (maximum or args != [""]):
                    raise _ConditionError(self.pos - 1, f"unexpected argument {len(args)} to '{name}'; expected "
                                                        f"{maximum} argument{'s' if maximum != 1 else ''} and ')'")
                if c == ")":
                    break
            else:
                current.append(c)
        if len(args) < minimum:
            raise _ConditionError(self.pos - 1, f"unexpected ')' after {len(args)} argument{'s' if len(args) != 1 else ''} "
                                                f"of '{name}'; expected {minimum}")
        return tuple(args) if maximum else ()


def read_condition(words: tuple[Word, ...], path: str) -> tuple[Condition | None, ParseProblem | None]:
    """The condition of a `.if`/`.elif` line (its words after the directive), or a problem.

    HAProxy joins the words again with single spaces (so `streq(a, b)` compares "a" with " b")
    and reports positions in that text, which are mapped back to columns here. An empty
    condition is false.
    """
    if not words:
        return Constant(False), None
    starts, offset = [], 0
    for word in words:
        starts.append(offset)
        offset += len(word.text) + 1
    text = " ".join(w.text for w in words)
    try:
        return _ConditionReader(text, any(w.env for w in words)).read(), None
    except _ConditionError as error:
        index = max(i for i, start in enumerate(starts) if start <= error.position)
        word = words[index]
        inside = error.position - starts[index]
        column = word.column + inside if word.raw == word.text else word.column
        return None, ParseProblem(Span(path, word.line, min(column, word.end_column)), error.message)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def parse(source: SourceFile) -> Parsed:
    path, text = source.path, source.text
    problems: list[ParseProblem] = []
    if text and not text.endswith("\n"):
        problems.append(_missing_lf(path, text))
        text += "\n"  # keep looking for other problems
    lines = split_lines(text)
    if lines is None:
        lines, problem = lines_lark(text, path)
        if problem is not None:
            return Parsed(source, None, problems + [_reword(problem, text)])
    builder = _LineReader(path)
    config, comments = builder.read(lines)
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
# Text -> lines of tokens: the fast splitter, and the grammar for the rest
# --------------------------------------------------------------------------------------------

# A token is (terminal, text, line, column, end_column), the terminal named as in the grammar;
# a line is (kind, tokens) with kind "header", "statement", "directive", "scope" or "comment"
# (a comment on a line of its own). Both ways of reading the text produce these.
Token = tuple[str, str, int, int, int]
Line = tuple[str, tuple[Token, ...]]

# The grammar's terminals (grammars/haproxy.lark), as the same regular expressions
_WORD_PART = r"""(?:[^ \t\v\f\r\n#"'\\]|\\[^\t\v\f\r\n]?|"(?:[^"\\\n]|\\[^\n])*"|'[^'\n]*')"""
_NEXT_TOKEN = re.compile(rf"[ \t\v\f\r]*(?:({_WORD_PART}+)|(#.*))")  # ignored blanks, then WORD or COMMENT
_DIRECTIVE = re.compile(rf"\.{_WORD_PART}+")
_SCOPE = re.compile(r"\[[^\]\n]*\][^\n#]*")
_BLANKS = re.compile(r"[ \t\v\f\r]*")
# SECTION: one of these words, whole, first on its line (the grammar lists HAProxy 2.0 to 3.5)
_SECTION_NAMES = frozenset((
    "global", "defaults", "frontend", "backend", "listen", "resolvers", "peers", "userlist", "mailers", "cache",
    "http-errors", "ring", "log-forward", "fcgi-app", "namespace_list", "program", "crt-store", "log-profile",
    "traces", "acme", "healthcheck",
))


def split_lines(text: str) -> list[Line] | None:
    """The file's lines as the grammar reads them, or None when a line does not fit the grammar
    (an unterminated quote, a keyword before the first section): Lark then finds and words the
    error. `text` ends with a newline (or is empty)."""
    lines: list[Line] = []
    in_section = False
    for number, line in enumerate(text.split("\n"), 1):
        tokens = _split_line(line, number)
        if tokens is None:
            return None
        if not tokens:
            continue
        first = tokens[0][0]
        if first == "SECTION":
            in_section = True
            lines.append(("header", tokens))
        elif first == "WORD":
            if not in_section:
                return None  # a statement outside any section
            lines.append(("statement", tokens))
        else:
            lines.append((_LINE_KINDS[first], tokens))
    return lines


_LINE_KINDS = {"DIRECTIVE": "directive", "SCOPE": "scope", "COMMENT": "comment"}


def _split_line(line: str, number: int) -> tuple[Token, ...] | None:
    """The tokens of one line (without its newline); None when the grammar cannot read it."""
    tokens: list[Token] = []
    pos = _BLANKS.match(line).end()
    first = _first_token(line, pos, number)
    if first is not None:
        tokens.append(first)
        pos = first[4] - 1
    size = len(line)
    while pos < size:
        match = _NEXT_TOKEN.match(line, pos)
        if match is None:
            break
        start, pos = match.start(match.lastindex), match.end()
        tokens.append(("WORD" if match.lastindex == 1 else "COMMENT", match[match.lastindex], number, start + 1, pos + 1))
    if _BLANKS.match(line, pos).end() != size:
        return None  # a character no terminal starts with here (an unterminated quote)
    return tuple(tokens)


def _first_token(line: str, pos: int, number: int) -> Token | None:
    """The terminals only the start of a line offers: SECTION, DIRECTIVE, SCOPE (the grammar
    gives them priority over WORD)."""
    char = line[pos: pos + 1]
    match = _DIRECTIVE.match(line, pos) if char == "." else _SCOPE.match(line, pos) if char == "[" else None
    if match is not None:
        return ("DIRECTIVE" if char == "." else "SCOPE", match[0], number, pos + 1, match.end() + 1)
    match = _NEXT_TOKEN.match(line, pos)
    if match is None or match.lastindex != 1:
        return None  # an empty line, a comment, or no token at all: the general loop decides
    end = match.end()
    word = match[1]
    if word in _SECTION_NAMES and line[end: end + 1] in ("", " ", "\t", "\v", "\f", "\r", "#"):
        return ("SECTION", word, number, pos + 1, end + 1)
    return ("WORD", word, number, pos + 1, end + 1)


def lines_lark(text: str, path: str) -> tuple[list[Line] | None, ParseProblem | None]:
    """The same lines read with the grammar: (lines, None) or (None, the syntax problem)."""
    tree, problem = _lark.parse("haproxy", text, path)
    if problem is not None:
        return None, problem
    lines: list[Line] = []
    for child in tree.children:
        if not _is_token(child) and child.data == "section":
            header, *body = child.children
            lines.append(("header", _tokens(header.children)))
            lines.extend(_line_of(item) for item in body)
        else:
            lines.append(_line_of(child))
    return lines, None


def _line_of(node: Any) -> Line:
    if _is_token(node):
        return "comment", _tokens([node])
    return str(node.data), _tokens(node.children)


def _tokens(children: list[Any]) -> tuple[Token, ...]:
    return tuple((t.type, str(t), t.line, t.column, t.end_column) for t in children)


def _is_token(node: Any) -> bool:
    return hasattr(node, "type")


# --------------------------------------------------------------------------------------------
# Lines -> syntax objects, with word decoding
# --------------------------------------------------------------------------------------------


class _LineReader:
    """Reads the lines once; decodes words and collects comments and tokenizer errors."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[ParseProblem] = []
        self.comments: list[Comment] = []
        self.blocks: list[_Block] = []  # the `.if` blocks open at the current line
        self.branch: Branch | None = None  # the branch the current line sits in

    def read(self, lines: list[Line]) -> tuple[HaproxyConfig, list[Comment]]:
        sections: list[Section] = []
        directives: list[Statement] = []
        header: Statement | None = None
        statements: list[Statement] = []
        for kind, tokens in lines:
            if kind == "statement":
                statements.append(self._statement(tokens))
            elif kind == "header":
                if header is not None:
                    sections.append(Section(header, tuple(statements)))
                header, statements = self._statement(tokens), []
            elif kind == "comment":
                self._comment(tokens[0])
            elif kind == "directive":
                directives.append(self._directive(tokens))
            else:  # scope line: read for its tokenizer errors only
                self._statement(tokens)
        if header is not None:
            sections.append(Section(header, tuple(statements)))
        return HaproxyConfig(self.path, tuple(sections), tuple(directives)), self.comments

    def _statement(self, tokens: tuple[Token, ...]) -> Statement:
        return Statement(self._words(tokens), self.branch)

    def _words(self, tokens: tuple[Token, ...]) -> tuple[Word, ...]:
        words = []
        for token in tokens:
            kind, raw, line, column, end_column = token
            if kind == "COMMENT":
                self._comment(token)
            elif "'" in raw or '"' in raw or "\\" in raw:
                words.append(self._word(token))
            else:  # nothing to decode (most words): skip the decoder's call
                words.append(Word(raw, raw, line, column, end_column))
        return tuple(words)

    def _directive(self, tokens: tuple[Token, ...]) -> Statement:
        """A `.if`-family line opens, switches or closes a branch; other directives are plain."""
        words = self._words(tokens)
        name = words[0].text
        block = self.blocks[-1] if self.blocks else None
        if name == ".if":
            statement = Statement(words, self.branch)
            condition = self._condition(statement, skipped=False)
            self.blocks.append(_Block(self.branch, [condition]))
            self.branch = Branch(statement, condition, (), self.branch)
            return statement
        if block is None or name not in _CONDITIONALS:
            return Statement(words, self.branch)  # a lone `.elif`/`.else`/`.endif` is reported by _check
        statement = Statement(words, block.parent)
        earlier = tuple(block.conditions)
        if name == ".elif":
            # HAProxy does not evaluate an `.elif` once an earlier branch was taken
            condition = self._condition(statement, skipped=any(c.evaluate(None) is True for c in earlier))
            block.conditions.append(condition)
            self.branch = Branch(statement, condition, earlier, block.parent)
        elif name == ".else":
            self.branch = Branch(statement, None, earlier, block.parent)
        else:
            self.blocks.pop()
            self.branch = block.parent
        return statement

    def _condition(self, statement: Statement, skipped: bool) -> Condition:
        """The directive's condition; a problem when HAProxy would evaluate it and cannot."""
        condition, problem = read_condition(statement.args, self.path)
        reached = statement.branch is None or statement.branch.taken() is not False
        if problem is not None and reached and not skipped:
            self.problems.append(ParseProblem(problem.span, f"{problem.message} (in '{statement.keyword}')"))
        return condition if condition is not None else Constant(False)

    def _comment(self, token: Token) -> None:
        _, text, line, column, _ = token
        self.comments.append(Comment(line, column, text))

    def _word(self, token: Token) -> Word:
        _, raw, line, column, end_column = token
        text, error, env = _decode(raw)
        if error is not None:
            offset, message = error
            self.problems.append(ParseProblem(Span(self.path, line, column + offset), message))
        return Word(text, raw, line, column, end_column, env)


@dataclass
class _Block:
    """An open `.if` block while reading: the branch around it and its conditions so far."""

    parent: Branch | None
    conditions: list[Condition]


def decode_word(raw: str) -> tuple[str, tuple[int, str] | None]:
    """Apply HAProxy's quoting and escapes to one word (parse_line, src/tools.c).

    Returns the text and, when HAProxy would refuse the word, (offset of the culprit, message).
    Environment references inside double quotes are kept as written (`${VAR}`): the values
    are unknown to a static linter.
    """
    text, error, _ = _decode(raw)
    return text, error


def _decode(raw: str) -> tuple[str, tuple[int, str] | None, bool]:
    """`decode_word`, plus whether the word holds an environment reference."""
    if "'" not in raw and '"' not in raw and "\\" not in raw:
        return raw, None, False  # nothing to undo (the common case): no loop per character
    env = False
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
                return "".join(out), (i, error), env
            out.append(emitted)
            i += consumed
        elif c == "$" and double:
            end, error = _env_reference_end(raw, i)
            if error:
                return "".join(out), error, env
            out.append(raw[i:end])
            env = True
            i = end
        else:
            out.append(c)
            i += 1
    return "".join(out), None, env


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
        if _skipped(section.header):
            continue
        yield from _check_header(path, section, seen)
        if section.kind in kw.PROXY_SECTIONS or section.kind == "global":
            for statement in section.statements:
                if not _skipped(statement):
                    yield from _check_statement(path, section, statement)


def _skipped(statement: Statement) -> bool:
    """True for a line in a branch that is false whatever the environment: HAProxy skips it."""
    return statement.branch is not None and statement.branch.taken() is False


_CONDITIONALS = {".if", ".elif", ".else", ".endif"}
_MESSAGES = {".notice", ".warning", ".alert", ".diag"}
_MAX_NESTED_IFS = 100  # MAXNESTEDCONDS


def _check_directives(path: str, directives: tuple[Statement, ...]) -> Iterator[ParseProblem]:
    stack: list[tuple[Statement, bool]] = []  # (opening .if, an .else was seen)
    for d in directives:
        where, name = d.words[0].span(path), d.keyword
        if name == ".if":
            stack.append((d, False))
            if len(stack) > _MAX_NESTED_IFS:
                yield ParseProblem(where, f"unexpected '.if' nested {len(stack)} deep; expected at most "
                                          f"{_MAX_NESTED_IFS} nested '.if' blocks")
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
        if not _skipped(d):
            yield from _check_directive_arguments(path, d)
    for opening, _ in stack:
        yield ParseProblem(opening.words[0].span(path), "unexpected end of file inside this '.if' block; "
                                                        "expected '.endif' (non-terminated '.if' block)")


def _check_directive_arguments(path: str, d: Statement) -> Iterator[ParseProblem]:
    """What HAProxy refuses in a directive it reads (one outside any branch known to be false)."""
    name, args = d.keyword, d.args
    if name in (".else", ".endif") and args:
        yield ParseProblem(args[0].span(path), f"unexpected argument '{args[0].text}' after '{name}'; "
                                               "expected nothing")
    elif name in _MESSAGES and len(args) > 1:
        yield ParseProblem(args[1].span(path), f"unexpected argument '{args[1].text}' after '{name}'; "
                                               "expected one message (use quotes if it contains spaces)")
    elif name == ".alert" and (d.branch is None or d.branch.taken() is True):
        message = f" \"{args[0].text}\"" if args else ""
        yield ParseProblem(d.words[0].span(path), f"unexpected '.alert'{message} in a part of the file HAProxy "
                                                  "always reads; expected no '.alert' (it stops HAProxy)")
    elif name not in _CONDITIONALS and name not in _MESSAGES:
        yield ParseProblem(d.words[0].span(path), f"unexpected directive '{name}'; expected one of .if, .elif, "
                                                  ".else, .endif, .notice, .warning, .alert or .diag (unknown "
                                                  "directive)")


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
        # `.if X` / `.else` blocks often define one name twice, once per branch
        if section.header.branch is None or section.header.branch.taken() is not None:
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
        conditional = other.header.branch is not None and other.header.branch.taken() is None
        if mine & _CAPABILITIES.get(other.kind, set()) and not conditional:
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
