"""YAML files (compose, Traefik static/dynamic, Kubernetes) -> a small positioned node tree.

A YAML *composer* does the work: it scans and parses the text into nodes that carry start and
end marks, but constructs no Python objects, so no tag (`!!python/object`, `!reset`, ...) is
ever executed; tags are only recorded. libyaml's (through PyYAML) is used where it reads a file
exactly as ruamel.yaml's would, because it is much faster; ruamel.yaml reads everything else and
every file with a syntax error, so its verdict and messages are the reference. Each node is
wrapped once into a `YamlScalar`, `YamlMap` or `YamlSeq` with 1-based line/column spans, so
builders can point at any key or value (`node.span(path)`). Aliases share the wrapped node of their anchor; `<<` merge
keys are resolved by `YamlMap.get` (explicit keys win over merged ones).

A file is a `YamlTree` of documents (`---` separated, as Kubernetes manifests are). A syntax
error gives `tree=None` and one `ParseProblem` at the line/column the YAML parser blames, with
its own problem text. Both libraries are imported inside `parse` only (start-up time matters).
"""
from __future__ import annotations

import bisect
import functools
import re
import warnings
from dataclasses import dataclass, field
from typing import Iterator

from mailproxy_lint.model import Comment, ParseProblem, SourceFile, Span
from mailproxy_lint.parse import Parsed
from mailproxy_lint.parse._comments import comments_outside, line_comments

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_MERGE = "tag:yaml.org,2002:merge"


# --------------------------------------------------------------------------------------------
# The node tree
# --------------------------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class YamlNode:
    """Common part of every node: where it is written (1-based, end column exclusive)."""

    line: int
    column: int
    end_line: int
    end_column: int
    tag: str

    def span(self, path: str) -> Span:
        return Span(path, self.line, self.column, self.end_line, self.end_column)


@dataclass(eq=False, slots=True)
class YamlScalar(YamlNode):
    text: str = ""  # the scalar's value as a string (quotes removed, escapes applied)
    style: str = ""  # "" plain, "'" or '"' quoted, "|" literal, ">" folded

    @property
    def is_null(self) -> bool:
        return self.tag == _NULL

    @property
    def value(self) -> str | bool | int | float | None:
        """The value with YAML 1.2 core typing (what compose and Traefik see for plain scalars)."""
        if self.tag == _NULL:
            return None
        if self.tag == _BOOL:
            return self.text.lower() == "true"
        if self.tag == _INT:
            try:
                return int(self.text.replace("_", ""), 0)
            except ValueError:
                return self.text
        if self.tag == _FLOAT:
            try:
                return float(self.text)
            except ValueError:
                return self.text
        return self.text

    def as_text(self) -> str:
        """The value as an environment or label string: null -> "", booleans lower-cased."""
        if self.tag == _NULL:
            return ""
        if self.tag == _BOOL:
            return self.text.lower()
        return self.text

    def position_of(self, index: int) -> tuple[int, int]:
        """(line, column) of character `index` of `text`, exact for one-line plain/quoted scalars.

        Multi-line and escaped scalars map to the scalar's start: close enough to point a user
        at the right value.
        """
        quoted = self.style in ("'", '"')
        single_line = self.line == self.end_line and self.style in ("", "'", '"')
        if single_line and (not quoted or self.end_column - self.column == len(self.text) + 2):
            return self.line, self.column + (1 if quoted else 0) + index
        return self.line, self.column


@dataclass(eq=False, slots=True)
class YamlMap(YamlNode):
    pairs: list[tuple[YamlNode, YamlNode]] = field(default_factory=list)  # as written, merges kept

    def items(self) -> Iterator[tuple[str, YamlNode, YamlNode]]:
        """(key text, key node, value node) with `<<` merges applied; a later explicit key wins."""
        seen: dict[str, tuple[YamlNode, YamlNode]] = {}
        for key, value in self._merged():
            seen[_key_text(key)] = (key, value)
        for text, (key, value) in seen.items():
            yield text, key, value

    def _merged(self) -> list[tuple[YamlNode, YamlNode]]:
        merged: list[tuple[YamlNode, YamlNode]] = []
        explicit: list[tuple[YamlNode, YamlNode]] = []
        for key, value in self.pairs:
            if isinstance(key, YamlScalar) and key.tag == _MERGE:
                sources = value.items if isinstance(value, YamlSeq) else [value]
                for source in sources:
                    if isinstance(source, YamlMap) and source is not self:
                        merged.extend(source._merged())
            else:
                explicit.append((key, value))
        return merged + explicit

    def get(self, key: str) -> YamlNode | None:
        entry = self.entry(key)
        return entry[1] if entry else None

    def entry(self, key: str) -> tuple[YamlNode, YamlNode] | None:
        """(key node, value node) for `key`, or None."""
        for text, key_node, value in self.items():
            if text == key:
                return key_node, value
        return None

    def get_ci(self, key: str) -> YamlNode | None:
        """Case-insensitive lookup (Traefik field names); the first spelling in order wins."""
        wanted = key.lower()
        return next((value for text, _, value in self.items() if text.lower() == wanted), None)

    def keys(self) -> list[str]:
        return [text for text, _, _ in self.items()]


@dataclass(eq=False, slots=True)
class YamlSeq(YamlNode):
    items: list[YamlNode] = field(default_factory=list)


@dataclass(eq=False)
class YamlDocument:
    root: YamlNode | None  # None for an empty document


@dataclass(eq=False)
class YamlTree:
    documents: list[YamlDocument]

    @property
    def root(self) -> YamlNode | None:
        """The first document's root: compose and Traefik files hold a single document."""
        return self.documents[0].root if self.documents else None


def _key_text(key: YamlNode) -> str:
    return key.as_text() if isinstance(key, YamlScalar) else f"<{type(key).__name__}>"


def text_of(node: YamlNode | None) -> str | None:
    """A scalar's string value, or None for a missing or non-scalar node."""
    return node.as_text() if isinstance(node, YamlScalar) else None


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def parse(source: SourceFile) -> Parsed:
    nodes = compose_libyaml(source.text)
    if nodes is None:
        return _parse_ruamel(source)
    wrapper = _Wrapper(source.text)
    try:
        tree = YamlTree([YamlDocument(wrapper.wrap(node) if node is not None else None) for node in nodes])
    except (_Undecided, RecursionError):  # very deep nesting: ruamel's reader reports it
        return _parse_ruamel(source)
    return Parsed(source, tree, [], _comments(source.text, wrapper.scalars))


# Texts ruamel reads: explicit tags and directives (recorded differently), line breaks other
# than LF/CRLF (YAML 1.1 has more), and what libyaml is laxer about than ruamel: tabs, a `#`
# or a blank right after a block scalar's `|`/`>`, anchor and alias names other than plain
# letters, digits, `-` and `_` (a `&`/`*` after a blank inside a plain scalar, as in `a && b`,
# also lands here: harmless, only slower).
_RUAMEL_ONLY = re.compile(
    r"!|^%|\r(?!\n)|[\x85\u2028\u2029\t]|[|>][-+0-9]*#"
    r"|(?:^|[\s\[\]{},])[&*](?![A-Za-z0-9_-]+(?:[\s,\[\]{}]|$))"
    r"|^(?:--- *)?[|>]", re.M)  # a document that is one block scalar: ruamel's indentation rules differ


def compose_libyaml(text: str) -> list | None:
    """The documents' nodes from libyaml (PyYAML's C parser), or None to let ruamel decide.

    libyaml is about ten times faster than ruamel's pure-Python scanner. It is used only where
    the two agree by construction: plain scalars are typed with ruamel's own YAML 1.2 resolver
    (PyYAML's is YAML 1.1: `25:25` would be a base-60 integer there), and a text with an
    explicit tag (`!`) or a directive (`%YAML`, `%TAG`), which ruamel records differently, or
    one that libyaml refuses goes to ruamel, whose messages and verdict stay the reference.
    """
    if not text.endswith("\n") or _RUAMEL_ONLY.search(text):
        return None
    loader_class = _libyaml_loader()
    if loader_class is None:
        return None
    import yaml

    try:
        return list(yaml.compose_all(text, Loader=loader_class))
    except Exception:  # a syntax error (or anything odd): ruamel reads it again and explains
        return None


@functools.cache
def _libyaml_loader():
    """A loader class: libyaml's parser and composer, with YAML 1.2 tags for plain scalars."""
    try:
        import yaml
        from yaml.cyaml import CParser
        from yaml.resolver import BaseResolver
    except ImportError:
        return None
    if not getattr(yaml, "__with_libyaml__", False):
        return None
    resolve_plain = _plain_scalar_tag()

    class Loader(CParser, BaseResolver):
        def __init__(self, stream) -> None:
            CParser.__init__(self, stream)
            BaseResolver.__init__(self)

        def resolve(self, kind, value, implicit):
            if kind is yaml.ScalarNode and implicit[0]:
                return resolve_plain(value)
            return BaseResolver.resolve(self, kind, value, implicit)

    return Loader


def _plain_scalar_tag():
    """value -> tag of a plain scalar, as ruamel's round-trip composer assigns it (YAML 1.2)."""
    from ruamel.yaml.nodes import ScalarNode
    from ruamel.yaml.resolver import VersionedResolver

    resolver = VersionedResolver()

    @functools.lru_cache(maxsize=4096)
    def tag(value: str) -> str:
        found = resolver.resolve(ScalarNode, value, (True, False))
        return str(getattr(found, "value", found) or "")

    return tag


def _parse_ruamel(source: SourceFile) -> Parsed:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError
    from ruamel.yaml.reader import ReaderError

    yaml = YAML(typ="rt", pure=True)  # composer only: nodes with marks, nothing constructed
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nodes = list(yaml.compose_all(source.text))
    except MarkedYAMLError as exc:
        problem = _marked_problem(source, exc)
        return Parsed(source, None, [problem], line_comments(source.text))
    except ReaderError as exc:
        line, column = _position(source.text, getattr(exc, "position", 0) or 0)
        character = chr(exc.character) if isinstance(exc.character, int) else exc.character
        message = f"unexpected character {character!r}; expected printable text (YAML: {exc.reason})"
        return Parsed(source, None, [ParseProblem(Span(source.path, line, column), message)],
                      line_comments(source.text))
    except Exception as exc:  # ruamel raises plain errors on a few pathological inputs
        message = f"unexpected input; expected a YAML document (YAML: {exc})"
        return Parsed(source, None, [ParseProblem(Span(source.path, 1, 1), message)], line_comments(source.text))
    wrapper = _Wrapper()
    tree = YamlTree([YamlDocument(wrapper.wrap(node) if node is not None else None) for node in nodes])
    return Parsed(source, tree, [], _comments(source.text, wrapper.scalars))


class _Wrapper:
    """Turns composed nodes into ours once each (aliases and recursive anchors share a node).

    With `text` (libyaml's nodes), an empty plain scalar (`key:` with nothing after it) is
    placed where ruamel places it, at the next token, instead of right after the `:`.
    """

    def __init__(self, text: str | None = None) -> None:
        self.done: dict[int, YamlNode] = {}
        self.scalars: list[YamlScalar] = []
        self.text = text
        self.line_starts: list[int] | None = None

    def wrap(self, node) -> YamlNode:
        known = self.done.get(id(node))
        if known is not None:
            return known
        start, end = node.start_mark, node.end_mark
        position = (start.line + 1, start.column + 1, end.line + 1, end.column + 1)
        kind = type(node).__name__
        if self.text is not None and kind == "ScalarNode" and not node.style and node.value == "":
            moved = self._after_line_end(start.line, start.column)
            if moved is not None:
                position = (moved[0] + 1, moved[1] + 1, moved[0] + 1, moved[1] + 1)
        tag = str(getattr(node.tag, "value", node.tag) or "")
        if kind == "ScalarNode":
            text = str(node.value)
            if node.style == ">":
                text = text.replace("\a", "")  # ruamel marks the folds of `>` scalars with BEL
            wrapped: YamlNode = YamlScalar(*position, tag, text, node.style or "")
            self.scalars.append(wrapped)  # type: ignore[arg-type]
        elif kind == "SequenceNode":
            wrapped = YamlSeq(*position, tag)
            self.done[id(node)] = wrapped
            wrapped.items = [self.wrap(item) for item in node.value]
        else:
            wrapped = YamlMap(*position, tag)
            self.done[id(node)] = wrapped
            wrapped.pairs = [(self.wrap(k), self.wrap(v)) for k, v in node.value]
        self.done[id(node)] = wrapped
        return wrapped

    def _after_line_end(self, line: int, column: int) -> tuple[int, int] | None:
        """Where ruamel puts an empty value that libyaml puts at 0-based (line, column).

        Both put it right after its indicator, except that ruamel moves a mapping value whose
        `:` ends the line (trailing blanks allowed) to the next token, past blank and comment
        lines. None: the position stays.
        """
        text = self.text
        if self.line_starts is None:
            self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        index = self.line_starts[line] + column
        if index == 0 or text[index - 1] not in ":-":
            raise _Undecided  # a flow collection's or a complex key's empty value: ask ruamel
        if _COMMENT_REST.match(text, index):
            raise _Undecided  # ruamel's place for it then depends on what follows
        if text[index - 1] == "-" or _LINE_REST.match(text, index) is None:
            return None
        index = _BLANKS_AND_COMMENT_LINES.match(text, index).end()
        line = bisect.bisect_right(self.line_starts, index) - 1
        return line, index - self.line_starts[line]


class _Undecided(Exception):
    """libyaml's nodes cannot be placed exactly as ruamel's would be: let ruamel read the file."""


_COMMENT_REST = re.compile(r"[ \t]*#")
_LINE_REST = re.compile(r"[ \t]*\r?\n")
_BLANKS_AND_COMMENT_LINES = re.compile(r"(?:[ \t\r\n]|#[^\n]*)*")


def _marked_problem(source: SourceFile, exc) -> ParseProblem:
    """A ruamel error as "unexpected X; expected Y (YAML: <ruamel's problem text>)".

    The position is the problem mark, except for an unfinished simple key: the user must fix
    the key's own line (the context mark), which is also the line PyYAML and compose report.
    """
    problem = (exc.problem or exc.context or "invalid YAML").strip()
    context = (exc.context or "").strip()
    mark = exc.problem_mark
    if "simple key" in context and exc.context_mark is not None:
        mark = exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    found, expected = _found_expected(problem, context, source.text, line)
    detail = f"{context}: {problem}" if context else problem
    return ParseProblem(Span(source.path, line, column), f"unexpected {found}; expected {expected} (YAML: {detail})",
                        (expected,))


_REWRITES: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"expected (?P<e>.+?), but (?:found|got) (?P<f>.+)$"), "{f}", "{e}"),
    (re.compile(r"found (?P<f>.+?) that cannot start any token"), "{f}", "the start of a YAML value"),
    (re.compile(r"mapping values are not allowed here"), "':'", "a line break before a nested mapping, or a quoted value"),
    (re.compile(r"found undefined alias (?P<f>.+)"), "undefined alias {f}", "an alias to an anchor defined earlier"),
    (re.compile(r"found unexpected end of stream"), "end of file", "the closing quote or bracket"),
    (re.compile(r"found unknown escape character (?P<f>.+)"), "escape {f}", "a YAML escape sequence"),
    (re.compile(r"found character (?P<f>.+?) that"), "character {f}", "valid YAML"),
    (re.compile(r"found a tab character"), "tab character", "spaces for indentation"),
]


# ruamel's token names, as a user would say them
_TOKEN_NAMES = {"'<stream end>'": "end of file", "<stream end>": "end of file", "<block end>": "the end of the block",
                "'<block mapping start>'": "a new mapping key at a deeper indent",
                "'<block sequence start>'": "a list item at a deeper indent", "'<block end>'": "the end of the block"}


def _found_expected(problem: str, context: str, text: str, line: int) -> tuple[str, str]:
    if problem.startswith("could not find expected"):
        # An unfinished key such as "[...]" pasted into a mapping: show the line's text.
        words = text.split("\n")[line - 1].strip() if 0 < line <= text.count("\n") + 1 else ""
        wanted = problem.removeprefix("could not find expected").strip()
        return (repr(words[:40]) if words else "end of line"), f"{wanted} after a mapping key"
    for pattern, found, expected in _REWRITES:
        match = pattern.search(problem)
        if match:
            words = {k: _TOKEN_NAMES.get(v, v) for k, v in match.groupdict().items()}
            return found.format(**words), expected.format(**words)
    return "input", "valid YAML"


def _position(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


# --------------------------------------------------------------------------------------------
# Comments (for suppressions and test annotations)
# --------------------------------------------------------------------------------------------


def _comments(text: str, scalars: list[YamlScalar]) -> list[Comment]:
    """Every `#` comment: a `#` at line start or after a blank that no scalar covers."""
    extents = ((scalar.line, scalar.column, scalar.end_line, scalar.end_column) for scalar in scalars)
    return comments_outside(text, extents, r"(?:^|(?<=[ \t]))#")
