"""TOML files (Traefik static/dynamic `*.toml`, Stalwart `config.toml`) -> a positioned node tree.

`grammars/toml.lark` gives the syntax; this module gives the meaning tomllib gives: strings are
unescaped, numbers and dates become Python values, dotted keys and `[table]` / `[[array]]`
headers build nested tables, and the TOML 1.0 rules about defining things twice are enforced
(a duplicate key, a table header written twice, a dotted key reaching into a table defined by a
header, anything added to an inline table or a static array). Such a file gets `tree=None` and
one `ParseProblem` at the key to fix, as a syntax error does.

The tree uses the node classes of `parse/yamlfile.py` (`TomlTable` is a `YamlMap`, `TomlArray`
a `YamlSeq`, `TomlScalar` a `YamlScalar`), so the Traefik builder reads `traefik.toml` and
`traefik.yml` with the same code (`get_ci`, `items`, `as_text`, `span`). `to_python` turns a
tree into the plain values `tomllib.loads` returns (tests compare the two).
"""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Any

from mailproxy_lint.model import Comment, ParseProblem, SourceFile, Span
from mailproxy_lint.parse import Parsed, _lark
from mailproxy_lint.parse._comments import comments_outside, line_comments
from mailproxy_lint.parse.yamlfile import YamlDocument, YamlMap, YamlNode, YamlScalar, YamlSeq, YamlTree

GRAMMAR = "toml"

# YAML core tags, so code written for YAML nodes types TOML values the same way
_TAGS = {
    "string": "tag:yaml.org,2002:str",
    "integer": "tag:yaml.org,2002:int",
    "float": "tag:yaml.org,2002:float",
    "boolean": "tag:yaml.org,2002:bool",
    "datetime": "tag:yaml.org,2002:timestamp",
}
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"

_WORDS = {
    "BARE_KEY": "a key",
    "BASIC_STRING": 'a "string"',
    "ML_BASIC_STRING": 'a """string"""',
    "LITERAL_STRING": "a 'string'",
    "ML_LITERAL_STRING": "a '''string'''",
    "INTEGER": "an integer",
    "FLOAT": "a float",
    "BOOLEAN": "true or false",
    "OFFSET_DATETIME": "a date-time",
    "LOCAL_DATETIME": "a date-time",
    "LOCAL_DATE": "a date",
    "LOCAL_TIME": "a time",
    "_EQUALS": "'='",
    "_DOT": "'.'",
    "_COMMA": "','",
    "_LSQB": "'['",
    "_RSQB": "']'",
    "_DOUBLE_LSQB": "'[['",
    "_DOUBLE_RSQB": "']]'",
    "_LBRACE": "'{'",
    "_RBRACE": "'}'",
    "_NL": "end of line",
    "$END": "end of file",
}


# --------------------------------------------------------------------------------------------
# Nodes
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class TomlScalar(YamlScalar):
    """A string, number, boolean or date; `data` is the Python value tomllib gives."""

    data: Any = None

    @property
    def value(self) -> Any:
        return self.data

    def as_text(self) -> str:
        """The value as Traefik's decoder reads a TOML value into a string field."""
        if isinstance(self.data, bool):
            return "true" if self.data else "false"
        if isinstance(self.data, (str, int)):
            return str(self.data)
        return self.text  # floats and dates as written


@dataclass(eq=False)
class TomlTable(YamlMap):
    """A table. `origin` says how it came to exist, which decides what may still add to it:

    root, header (`[a]` or an `[[a]]` element), implicit (a parent named by a deeper header),
    dotted (made by a dotted key), inline (`{...}`, complete where written).
    """

    origin: str = "header"
    frozen: bool = False  # inline tables and everything in a static array: nothing may add keys
    index: dict[str, tuple[YamlNode, YamlNode]] = field(default_factory=dict)

    def add(self, key: TomlScalar, value: YamlNode) -> None:
        self.pairs.append((key, value))
        self.index[key.text] = (key, value)

    def child(self, name: str) -> YamlNode | None:
        entry = self.index.get(name)
        return entry[1] if entry else None

    def get(self, key: str) -> YamlNode | None:
        return self.child(key)

    def entry(self, key: str) -> tuple[YamlNode, YamlNode] | None:
        return self.index.get(key)


@dataclass(eq=False)
class TomlArray(YamlSeq):
    """An array value (`of_tables=False`, frozen) or an array of tables built by `[[name]]`."""

    of_tables: bool = False
    frozen: bool = False


def to_python(node: YamlNode) -> Any:
    """The plain Python value of a node, as `tomllib.loads` returns it."""
    if isinstance(node, TomlTable):
        return {key.text: to_python(value) for key, value in node.pairs}  # type: ignore[attr-defined]
    if isinstance(node, TomlArray):
        return [to_python(item) for item in node.items]
    if isinstance(node, TomlScalar):
        return node.data
    raise TypeError(f"not a TOML node: {node!r}")


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


class _TomlError(Exception):
    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line, self.column, self.message = line, column, message


def parse(source: SourceFile) -> Parsed:
    text = source.text.replace("\r\n", "\n")
    tree, problem = _lark.parse(GRAMMAR, text, source.path, describe=lambda t: _WORDS.get(t, t))
    if problem is not None:
        return Parsed(source, None, [problem], line_comments(text))
    strings: list[tuple[int, int, int, int]] = []
    try:
        root = _Builder(strings).build(tree)
    except _TomlError as exc:
        return Parsed(source, None, [ParseProblem(Span(source.path, exc.line, exc.column), exc.message)],
                      line_comments(text))
    return Parsed(source, YamlTree([YamlDocument(root)]), [], _comments(text, strings))


def parse_text(text: str, path: str = "<toml>") -> Parsed:
    """Parse TOML text that is not a loaded file (tests, fragments)."""
    from mailproxy_lint.model import FileKind

    return parse(SourceFile(path, FileKind.TRAEFIK_DYNAMIC, text))


class _Builder:
    """Turns the statement list into nested tables, checking what TOML forbids twice."""

    def __init__(self, strings: list[tuple[int, int, int, int]]) -> None:
        self.root = TomlTable(1, 1, 1, 1, _MAP_TAG, origin="root")
        self.current = self.root
        self.strings = strings  # spans of string tokens, so '#' inside them is not a comment

    def build(self, tree) -> TomlTable:
        for statement in tree.children:
            if statement.data == "keyval":
                self._keyval(self.current, statement)
            elif statement.data == "table":
                self.current = self._header(statement)
            else:
                self.current = self._array_table(statement)
        return self.root

    # -- headers ------------------------------------------------------------------------------

    def _header(self, statement) -> TomlTable:
        keys = self._keys(statement.children[0])
        parent = self._walk_headers(keys[:-1])
        last = keys[-1]
        existing = parent.child(last.text)
        if existing is None:
            table = _table_at(statement.meta, "header")
            parent.add(last, table)
            return table
        if isinstance(existing, TomlTable) and existing.origin == "implicit" and not existing.frozen:
            existing.origin = "header"
            existing.line, existing.column = statement.meta.line, statement.meta.column
            existing.end_line, existing.end_column = statement.meta.end_line, statement.meta.end_column
            return existing
        raise _TomlError(last.line, last.column, f"unexpected second definition of table [{_dotted(keys)}]; "
                         f"expected each table once (first defined at line {existing.line})")

    def _array_table(self, statement) -> TomlTable:
        keys = self._keys(statement.children[0])
        parent = self._walk_headers(keys[:-1])
        last = keys[-1]
        existing = parent.child(last.text)
        if existing is None:
            existing = TomlArray(statement.meta.line, statement.meta.column, statement.meta.end_line,
                                 statement.meta.end_column, _SEQ_TAG, of_tables=True)
            parent.add(last, existing)
        elif not (isinstance(existing, TomlArray) and existing.of_tables and not existing.frozen):
            raise _TomlError(last.line, last.column, f"unexpected array of tables [[{_dotted(keys)}]] where "
                             f"{_what(existing)} is already defined (line {existing.line}); expected a new name")
        table = _table_at(statement.meta, "header")
        existing.items.append(table)
        return table

    def _walk_headers(self, keys: list[TomlScalar]) -> TomlTable:
        """The table a header's parent keys name, creating implicit tables on the way."""
        table = self.root
        for key in keys:
            child = table.child(key.text)
            if child is None:
                child = TomlTable(key.line, key.column, key.end_line, key.end_column, _MAP_TAG, origin="implicit")
                table.add(key, child)
            elif isinstance(child, TomlArray) and child.of_tables and not child.frozen:
                child = child.items[-1]
            if not isinstance(child, TomlTable) or child.frozen:
                raise _TomlError(key.line, key.column, f"unexpected table header under key {key.text!r}, which is "
                                 f"{_what(child)} (line {child.line}); expected a table")
            table = child
        return table

    # -- key/value pairs ----------------------------------------------------------------------

    def _keyval(self, table: TomlTable, statement) -> None:
        key_tree, value_tree = statement.children
        keys = self._keys(key_tree)
        for key in keys[:-1]:
            table = self._dotted_step(table, key)
        last = keys[-1]
        existing = table.child(last.text)
        if existing is not None:
            raise _TomlError(last.line, last.column, f"unexpected duplicate key {_dotted(keys)!r}; expected each key "
                             f"once per table (first set at line {existing.line})")
        table.add(last, self._value(value_tree))

    def _dotted_step(self, table: TomlTable, key: TomlScalar) -> TomlTable:
        child = table.child(key.text)
        if child is None:
            child = TomlTable(key.line, key.column, key.end_line, key.end_column, _MAP_TAG, origin="dotted")
            table.add(key, child)
            return child
        if isinstance(child, TomlTable) and child.origin in ("implicit", "dotted") and not child.frozen:
            child.origin = "dotted"  # now defined by dotted keys: a later [header] for it is an error
            return child
        raise _TomlError(key.line, key.column, f"unexpected dotted key through {key.text!r}, which is "
                         f"{_what(child)} (line {child.line}); expected a key that is not defined elsewhere")

    def _value(self, tree) -> YamlNode:
        if not hasattr(tree, "data"):
            return self._scalar(tree)
        meta = tree.meta
        if tree.data == "array":
            array = TomlArray(meta.line, meta.column, meta.end_line, meta.end_column, _SEQ_TAG,
                              [self._value(item) for item in tree.children])
            _freeze(array)
            return array
        table = TomlTable(meta.line, meta.column, meta.end_line, meta.end_column, _MAP_TAG, origin="inline")
        for keyval in tree.children:
            self._keyval(table, keyval)
        _freeze(table)
        return table

    def _keys(self, key_tree) -> list[TomlScalar]:
        return [self._key(token) for token in key_tree.children]

    def _key(self, token) -> TomlScalar:
        if token.type == "BARE_KEY":
            text, style = str(token), ""
        else:
            text, style = _string(token), token[0]
            self.strings.append((token.line, token.column, token.end_line, token.end_column))
        return TomlScalar(token.line, token.column, token.end_line, token.end_column, _TAGS["string"], text, style,
                          data=text)

    def _scalar(self, token) -> TomlScalar:
        kind, data, style = _convert(token)
        if kind == "string":
            self.strings.append((token.line, token.column, token.end_line, token.end_column))
        text = data if kind == "string" else str(token)
        return TomlScalar(token.line, token.column, token.end_line, token.end_column, _TAGS[kind], text, style,
                          data=data)


def _table_at(meta, origin: str) -> TomlTable:
    return TomlTable(meta.line, meta.column, meta.end_line, meta.end_column, _MAP_TAG, origin=origin)


def _freeze(node: YamlNode) -> None:
    """Inline tables and static arrays are complete where written (recursively)."""
    if isinstance(node, TomlTable):
        node.frozen = True
        for _, value in node.pairs:
            _freeze(value)
    elif isinstance(node, TomlArray):
        node.frozen = True
        for item in node.items:
            _freeze(item)


def _dotted(keys: list[TomlScalar]) -> str:
    return ".".join(k.text if re.fullmatch(r"[A-Za-z0-9_-]+", k.text) else f'"{k.text}"' for k in keys)


def _what(node: YamlNode) -> str:
    if isinstance(node, TomlTable):
        return {"inline": "an inline table", "header": "a table with its own header",
                "dotted": "a table made by dotted keys"}.get(node.origin, "a table")
    if isinstance(node, TomlArray):
        return "an array of tables" if node.of_tables else "an array"
    return "a value"


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------


def _convert(token) -> tuple[str, Any, str]:
    """(kind, Python value, YAML-like style) of a value token."""
    kind = token.type
    text = str(token)
    if kind in ("BASIC_STRING", "LITERAL_STRING"):
        return "string", _string(token), text[0]
    if kind in ("ML_BASIC_STRING", "ML_LITERAL_STRING"):
        return "string", _string(token), "|"
    if kind == "INTEGER":
        return "integer", int(text.replace("_", ""), 0), ""
    if kind == "FLOAT":
        return "float", float(text.replace("_", "")), ""
    if kind == "BOOLEAN":
        return "boolean", text == "true", ""
    return "datetime", _datetime(token), ""


def _string(token) -> str:
    text = str(token)
    if token.type == "LITERAL_STRING":
        return text[1:-1]
    if token.type == "ML_LITERAL_STRING":
        return text[3:-3].removeprefix("\n")
    if token.type == "ML_BASIC_STRING":
        return _unescape(text[3:-3].removeprefix("\n"), token)
    return _unescape(text[1:-1], token)


_ESCAPE = re.compile(r'\\(?:(?P<simple>[btnfr"\\])|u(?P<u4>[0-9A-Fa-f]{4})|U(?P<u8>[0-9A-Fa-f]{8})|(?P<trim>[ \t]*\n[ \t\n]*))')
_SIMPLE = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


def _unescape(body: str, token) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group("simple"):
            return _SIMPLE[match.group("simple")]
        if match.group("trim") is not None:
            return ""  # a line-ending backslash joins the lines
        code = int(match.group("u4") or match.group("u8"), 16)
        if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
            raise _TomlError(token.line, token.column, f"unexpected escape {match.group(0)!r}; expected a Unicode "
                             "scalar value (not a surrogate, at most U+10FFFF)")
        return chr(code)

    return _ESCAPE.sub(replace, body)


_DATETIME = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})"
    r"(?:[Tt ](?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2})(?:\.(?P<frac>\d+))?(?:(?P<z>[Zz])|(?P<sign>[+-])(?P<oh>\d{2}):(?P<om>\d{2}))?)?"
    r"|(?P<th>\d{2}):(?P<tmi>\d{2}):(?P<ts>\d{2})(?:\.(?P<tfrac>\d+))?"
)


def _datetime(token) -> datetime.date | datetime.time | datetime.datetime:
    m = _DATETIME.fullmatch(str(token))
    try:
        if m is None:
            raise ValueError("unknown form")
        if m.group("th") is not None:
            return datetime.time(int(m["th"]), int(m["tmi"]), int(m["ts"]), _micro(m["tfrac"]))
        if m.group("h") is None:
            return datetime.date(int(m["y"]), int(m["mo"]), int(m["d"]))
        zone = None
        if m.group("z"):
            zone = datetime.timezone.utc
        elif m.group("sign"):
            sign = -1 if m["sign"] == "-" else 1
            zone = datetime.timezone(sign * datetime.timedelta(hours=int(m["oh"]), minutes=int(m["om"])))
        return datetime.datetime(int(m["y"]), int(m["mo"]), int(m["d"]), int(m["h"]), int(m["mi"]), int(m["s"]),
                                 _micro(m["frac"]), tzinfo=zone)
    except ValueError as exc:
        reason = "UTC offset out of range" if "offset" in str(exc) else str(exc)
        raise _TomlError(token.line, token.column, f"unexpected date or time {str(token)!r} ({reason}); "
                         "expected a valid calendar date and time") from None


def _micro(fraction: str | None) -> int:
    return int(fraction[:6].ljust(6, "0")) if fraction else 0


# --------------------------------------------------------------------------------------------
# Comments (for suppressions and test annotations)
# --------------------------------------------------------------------------------------------


def _comments(text: str, strings: list[tuple[int, int, int, int]]) -> list[Comment]:
    """Every `#` comment: a `#` no string token covers starts one (TOML has no other use for it)."""
    return comments_outside(text, strings, "#")
