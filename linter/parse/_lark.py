"""The one place that builds Lark parsers and turns Lark's exceptions into `ParseProblem`s.

Lark is imported on first use only (start-up matters for a pre-commit hook), and each grammar is
analysed once per process. Analysing a grammar (Lark reads the `.lark` file with its own
meta-parser, then computes the LALR tables) costs more than parsing a small config, so the
analysed parser is kept between runs in a per-user cache:

* the directory is `$MAILPROXY_LINT_CACHE_DIR`, else `$XDG_CACHE_HOME/mailproxy-lint`, else
  `~/.cache/mailproxy-lint`; `MAILPROXY_LINT_CACHE_DIR=""` switches the cache off;
* an entry is JSON (Lark's own serialized form, tuples and integer keys tagged), never a pickle,
  so reading one can build nothing but Lark's parser classes;
* an entry is used only when the directory and the file belong to this user and nobody else can
  write them, and when the hash of the grammar text, the Lark version and the options that it
  records matches the one asked for; anything else (missing, foreign, stale, damaged) means the
  grammar is analysed again and the entry rewritten;
* entries are written to a temporary file (mode 0600) and renamed into place, so a reader never
  sees half an entry; writing one removes the entries of older versions of the same grammar.
  Any error while caching is ignored: the cache only ever saves time.

Lark's own `cache=True` is not used: it pickles into a predictable file in the shared temporary
directory, which another local user could plant.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any, Callable

from mailproxy_lint.model import ParseProblem, Span

CACHE_ENV = "MAILPROXY_LINT_CACHE_DIR"
# bump when the way entries are written changes, so old entries are never read
CACHE_FORMAT = 1
# the options every grammar is built with (they are part of an entry's hash)
_OPTIONS = {"parser": "lalr", "propagate_positions": True, "maybe_placeholders": False}


@functools.cache
def parser(grammar: str, start: str = "start"):
    """A LALR parser for `grammars/<grammar>.lark`, with positions kept on every tree node."""
    from lark import Lark, __version__ as lark_version

    text = _grammar_text(grammar)
    options = {**_OPTIONS, "start": start}
    key = _cache_key(text, lark_version, options)
    directory = cache_dir()
    path = directory / f"{grammar}.{start}.{key}.json" if directory else None
    entry = _read_entry(path, key) if path else None
    if entry is not None:
        try:
            return Lark.load(entry)
        except Exception:  # a damaged entry: analyse the grammar again and overwrite it
            pass
    built = Lark(text, **options)
    if path:
        _write_entry(path, key, built)
    return built


def _grammar_text(grammar: str) -> str:
    """The text of `grammars/<grammar>.lark`, read as `pkgutil.get_data` does (zip-safe) but
    without importing `importlib.resources` (which costs more than reading the file)."""
    import mailproxy_lint.grammars as package

    path = os.path.join(os.path.dirname(package.__file__), f"{grammar}.lark")
    return package.__loader__.get_data(path).decode("utf-8")


# --------------------------------------------------------------------------------------------
# The per-user parser cache
# --------------------------------------------------------------------------------------------


def cache_dir() -> Path | None:
    """Where analysed parsers are kept, or None when caching is off or not possible here."""
    if not hasattr(os, "getuid"):  # no owner check without POSIX ownership: do not cache
        return None
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return Path(configured) if configured else None
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "mailproxy-lint"


def _cache_key(text: str, lark_version: str, options: dict[str, Any]) -> str:
    material = json.dumps([CACHE_FORMAT, lark_version, options, text], sort_keys=True)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def _private(st: os.stat_result) -> bool:
    """Owned by this user and writable by nobody else."""
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def _read_entry(path: Path, key: str) -> dict | None:
    """The entry at `path` if it is private, intact and for `key`; else None."""
    try:
        if not _private(os.stat(path.parent)):
            return None
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not (stat.S_ISREG(st.st_mode) and _private(st)):
                return None
            document = json.loads(fh.read(), object_hook=_untag)
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(document, dict) or document.get("key") != key:
        return None
    return {"data": document.get("data"), "memo": document.get("memo")}


def _write_entry(path: Path, key: str, built: Any) -> None:
    """Write the entry atomically, then drop the entries of older versions of the same grammar."""
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    from mailproxy_lint.atomic import write_atomically

    directory = path.parent
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(os.stat(directory)):
            return
        data, memo = built.memo_serialize([TerminalDef, Rule])
        text = json.dumps({"key": key, "data": _tag(data), "memo": _tag(memo)}, separators=(",", ":"))
        write_atomically(path, text, temp_prefix=".entry-", temp_suffix=".tmp")  # mode 0600
        stem = path.name[: -len(key) - len(".json")]  # "<grammar>.<start>."
        for old in directory.glob(f"{stem}*.json"):
            if old != path:
                old.unlink(missing_ok=True)
    except (OSError, TypeError, ValueError):
        pass


# Lark's serialized form uses tuples and integer dictionary keys, which JSON cannot hold as
# such: they are tagged on the way out and restored on the way in, so an entry reads back equal.
_TUPLE, _ITEMS = "__tuple__", "__items__"


def _tag(value: Any) -> Any:
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: _tag(v) for k, v in value.items()}
        return {_ITEMS: [[_tag(k), _tag(v)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {_TUPLE: [_tag(v) for v in value]}
    if isinstance(value, list):
        return [_tag(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot cache a {type(value).__name__}")


def _untag(obj: dict) -> Any:
    if len(obj) == 1:
        if _TUPLE in obj:
            return tuple(obj[_TUPLE])
        if _ITEMS in obj:
            return {k: v for k, v in obj[_ITEMS]}
    return obj


# --------------------------------------------------------------------------------------------
# Parsing and error messages
# --------------------------------------------------------------------------------------------


def parse(
    grammar: str, text: str, path: str, *, start: str = "start", line_offset: int = 0,
    column_offset: int = 0, describe: Callable[[Any], str] | None = None,
) -> tuple[Any, ParseProblem | None]:
    """Parse `text`; return (tree, None) or (None, problem).

    `line_offset`/`column_offset` shift positions when `text` is a fragment of a larger file
    (a logical line, a label value). `describe` may turn a token type into words for the message.
    """
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

    try:
        return parser(grammar, start).parse(text), None
    except UnexpectedInput as exc:
        line = getattr(exc, "line", None)
        column = getattr(exc, "column", None)
        if not isinstance(line, int) or line < 1:
            line, column = _end_position(text)
        column = column if isinstance(column, int) and column > 0 else 1
        expected = sorted(_expected(exc))
        words = [describe(e) if describe else _TOKEN_WORDS.get(e, e) for e in expected]
        if isinstance(exc, UnexpectedCharacters):
            found = repr(text[exc.pos_in_stream]) if 0 <= exc.pos_in_stream < len(text) else "end of input"
        elif isinstance(exc, UnexpectedToken):
            tok = exc.token
            found = "end of input" if tok.type == "$END" else _TOKEN_WORDS.get(tok.type, repr(str(tok)))
        elif isinstance(exc, UnexpectedEOF):
            found = "end of input"
        else:  # pragma: no cover - every UnexpectedInput is one of the three above
            found = "unexpected input"
        message = f"unexpected {found}"
        if words:
            message += f"; expected {_join(words)}"
        span = Span(path, line + line_offset, column + (column_offset if line == 1 else 0))
        return None, ParseProblem(span, message, tuple(words))


def _expected(exc: Any) -> set[str]:
    expected = getattr(exc, "expected", None) or getattr(exc, "allowed", None) or set()
    return {e for e in expected if not e.startswith("__")}


def _end_position(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1


def _join(words: list[str]) -> str:
    unique = list(dict.fromkeys(words))
    if len(unique) > 6:
        unique = unique[:6] + ["..."]
    return unique[0] if len(unique) == 1 else ", ".join(unique[:-1]) + " or " + unique[-1]


# Readable names for the terminals grammars share; grammars may add their own via `describe`.
_TOKEN_WORDS = {
    "_NL": "end of line",
    "NEWLINE": "end of line",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "EQUAL": "'='",
    "$END": "end of input",
}
