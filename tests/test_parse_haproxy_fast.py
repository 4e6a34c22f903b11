"""The HAProxy line splitter and the grammar (Lark) must read every file alike.

`parse/haproxy.py` splits haproxy.cfg into lines of tokens with the grammar's own terminal
expressions and hands a file to Lark only when a line does not fit. These tests hold the two
together: on every haproxy.cfg of the corpus and of the fixtures, on the texts of the parser's
own tests (many of them broken on purpose), on generated texts full of the characters that
matter (quotes, backslashes, `#`, `.`, `[`, blanks, section keywords), and on whole parses with
the splitter switched off.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailproxy_lint.model import FileKind, SourceFile
from mailproxy_lint.parse import haproxy

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus" / "files" / "haproxy"


def _config_files() -> list[Path]:
    found = [p for folder in ("tests/fixtures", "examples") for p in (REPO / folder).rglob("*.cfg") if p.is_file()]
    if CORPUS.is_dir():
        found += [p for p in CORPUS.iterdir() if p.is_file()]
    return sorted(found)


def _test_texts() -> list[str]:
    """Every multi-line string written in the HAProxy parser's tests: valid and broken files."""
    module = ast.parse((REPO / "tests" / "test_parse_haproxy.py").read_text(encoding="utf-8"))
    texts = {node.value for node in ast.walk(module) if isinstance(node, ast.Constant)
             and isinstance(node.value, str) and "\n" in node.value}
    return sorted(texts)


FILES = _config_files()
TEXTS = _test_texts()


def _with_newline(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"  # as parse() hands it over


def _agree(text: str) -> bool:
    """The splitter gives the grammar's lines, and gives up exactly when the grammar refuses."""
    text = _with_newline(text)
    fast = haproxy.split_lines(text)
    slow, problem = haproxy.lines_lark(text, "haproxy.cfg")
    if problem is not None:
        assert fast is None, (text, problem)
    else:
        assert fast == slow, text
    return True


def test_the_splitter_uses_the_grammars_terminals():
    """The expressions are copies of the grammar's: a change to one must reach the other."""
    grammar = (REPO / "grammars" / "haproxy.lark").read_text(encoding="utf-8")
    terminals = dict(re.findall(r"^([A-Z]+)(?:\.\d)?: /(.*)/$", grammar, re.M))
    assert terminals["WORD"] == haproxy._WORD_PART + "+"
    assert terminals["DIRECTIVE"] == haproxy._DIRECTIVE.pattern
    assert terminals["SCOPE"] == haproxy._SCOPE.pattern
    assert terminals["COMMENT"] == "#[^\\n]*"
    names = re.fullmatch(r"\(\?:(.*)\)\(\?!\[\^ \\t\\v\\f\\r\\n#\]\)", terminals["SECTION"])
    assert names is not None and set(names.group(1).split("|")) == haproxy._SECTION_NAMES


def test_the_inputs_exist():
    assert len([p for p in FILES if "fixtures" in p.parts]) >= 50
    assert len(TEXTS) >= 50


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_haproxy_cfg_agrees(path):
    assert _agree(path.read_text(encoding="utf-8", errors="replace"))


def test_the_parser_tests_texts_agree():
    assert all(_agree(text) for text in TEXTS)


def test_valid_files_take_the_splitter():
    """Only a file the grammar refuses goes to Lark, so a valid file never imports it."""
    texts = [_with_newline(p.read_text(encoding="utf-8", errors="replace")) for p in FILES]
    for text in texts:
        if haproxy.lines_lark(text, "haproxy.cfg")[1] is None:
            assert haproxy.split_lines(text) is not None


@pytest.mark.parametrize("text, lines", [
    ("global\n  maxconn 10 # limit\n", [
        ("header", (("SECTION", "global", 1, 1, 7),)),
        ("statement", (("WORD", "maxconn", 2, 3, 10), ("WORD", "10", 2, 11, 13), ("COMMENT", "# limit", 2, 14, 21))),
    ]),
    # a section keyword glued to more text is a word; `#` ends a word even in its middle
    ("defaults\nglobalx a#b\n", [
        ("header", (("SECTION", "defaults", 1, 1, 9),)),
        ("statement", (("WORD", "globalx", 2, 1, 8), ("WORD", "a", 2, 9, 10), ("COMMENT", "#b", 2, 10, 12))),
    ]),
    # quotes and escapes glue into one word; a blank after a backslash belongs to the word
    ("listen l\n  x \"a b\"'c'\\ d\r\n", [
        ("header", (("SECTION", "listen", 1, 1, 7), ("WORD", "l", 1, 8, 9))),
        ("statement", (("WORD", "x", 2, 3, 4), ("WORD", "\"a b\"'c'\\ d", 2, 5, 16))),
    ]),
    # directives and scope lines, before and inside sections; a lone dot is a word
    (".if defined(X)\n[spoe]  # s\nbackend b\n  . x\n.endif\n", [
        ("directive", (("DIRECTIVE", ".if", 1, 1, 4), ("WORD", "defined(X)", 1, 5, 15))),
        ("scope", (("SCOPE", "[spoe]  ", 2, 1, 9), ("COMMENT", "# s", 2, 9, 12))),
        ("header", (("SECTION", "backend", 3, 1, 8), ("WORD", "b", 3, 9, 10))),
        ("statement", (("WORD", ".", 4, 3, 4), ("WORD", "x", 4, 5, 6))),
        ("directive", (("DIRECTIVE", ".endif", 5, 1, 7),)),
    ]),
    # a non-breaking space is not a blank for HAProxy: it stays inside the word
    ("global\n\n  a\xa0b\x0bc\n", [
        ("header", (("SECTION", "global", 1, 1, 7),)),
        ("statement", (("WORD", "a\xa0b", 3, 3, 6), ("WORD", "c", 3, 7, 8))),
    ]),
])
def test_split_lines(text, lines):
    assert haproxy.split_lines(text) == lines
    assert _agree(text)


@pytest.mark.parametrize("text", [
    "maxconn 10\n",  # a keyword before the first section
    "global\n  log \"unterminated\n",
    "global\n  log 'unterminated\n",
    "global\n  a\"b\n",
])
def test_lines_the_grammar_refuses_are_left_to_it(text):
    assert haproxy.split_lines(text) is None
    assert haproxy.lines_lark(text, "haproxy.cfg")[1] is not None


# --- generated texts -----------------------------------------------------------------------------

_PIECES = st.sampled_from([
    "global", "defaults", "frontend", "backend b", "listen", "cache", "log-forward", "bind", ":25", "a",
    ".if", ".endif", ".", "[", "]", "[s]", "#", " ", "  ", "\t", "\r", "\x0b", "\x0c", "\xa0", "\"", "'",
    "\\", "\\x41", "\"${X}\"", "$", "{", "}", "\n",
])


@settings(max_examples=600, deadline=None)
@given(st.lists(_PIECES, max_size=30).map("".join))
def test_generated_texts_agree(text):
    assert _agree(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="gl obaf\"'\\#.[]\t\r\n\x0bx", max_size=40))
def test_generated_characters_agree(text):
    assert _agree(text)


# --- whole parses: the same config, comments and problems without the splitter -------------------


def _parse(path: Path):
    return haproxy.parse(SourceFile(str(path), FileKind.HAPROXY, path.read_text(encoding="utf-8", errors="replace")))


def test_whole_files_read_the_same_without_the_splitter(monkeypatch):
    fast = [_parse(p) for p in FILES]
    monkeypatch.setattr(haproxy, "split_lines", lambda text: None)
    slow = [_parse(p) for p in FILES]
    for one, other in zip(fast, slow):
        assert one.tree == other.tree, one.source.path
        assert one.problems == other.problems, one.source.path
        assert one.comments == other.comments, one.source.path
