"""The one place that builds Lark parsers and turns Lark's exceptions into `ParseProblem`s.

Lark is imported on first use only (start-up matters for a pre-commit hook), each grammar is
analysed once per process, and no pickle cache is written anywhere.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from mailproxy_lint.model import ParseProblem, Span


@functools.cache
def parser(grammar: str, start: str = "start", **options: Any):
    """A LALR parser for `grammars/<grammar>.lark`, with positions kept on every tree node."""
    from lark import Lark

    return Lark.open_from_package(
        "mailproxy_lint.grammars",
        f"{grammar}.lark",
        ("",),
        parser="lalr",
        start=start,
        propagate_positions=True,
        maybe_placeholders=False,
        **options,
    )


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
