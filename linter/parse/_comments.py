"""Finding `#` comments in formats where `#` may also stand inside a value (YAML, TOML).

A parser that has read a file knows where its string values lie; a `#` outside all of them starts
a comment. A file that did not parse gives no such positions, so only whole-line comments are
safe to report there. Suppressions and test annotations read both.
"""
from __future__ import annotations

import re
from typing import Iterable

from mailproxy_lint.model import Comment

# (line, column, end line, end column) of a value, 1-based, end column exclusive
Extent = tuple[int, int, int, int]

_TO_LINE_END = 1 << 30


def comments_outside(text: str, values: Iterable[Extent], marker: str) -> list[Comment]:
    """The first `marker` match on each line that no value covers starts that line's comment."""
    covered: dict[int, list[tuple[int, int]]] = {}
    for line, column, end_line, end_column in values:
        for number in range(line, end_line + 1):
            start = column if number == line else 1
            end = end_column if number == end_line else _TO_LINE_END
            covered.setdefault(number, []).append((start, end))
    comments = []
    for number, line_text in enumerate(text.split("\n"), start=1):
        for match in re.finditer(marker, line_text):
            column = match.start() + 1
            if not any(start <= column < end for start, end in covered.get(number, ())):
                comments.append(Comment(number, column, line_text[match.start():]))
                break
    return comments


def line_comments(text: str) -> list[Comment]:
    """Whole-line comments only: what can be found safely in a file that does not parse."""
    comments = []
    for number, line_text in enumerate(text.split("\n"), start=1):
        stripped = line_text.lstrip()
        if stripped.startswith("#"):
            comments.append(Comment(number, len(line_text) - len(stripped) + 1, stripped))
    return comments
