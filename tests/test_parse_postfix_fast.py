"""The Postfix fast path (regular expressions) and the grammars (Lark) must read lines alike.

`parse/postfix.py` splits the common line shapes of main.cf, master.cf and docker-mailserver
postfix-master.cf without Lark and sends every other line to the grammar. These tests hold the
two paths together: on every line of the corpus and of the fixtures, on generated lines full of
the characters that matter (braces, blanks, `=`, `/`, Unicode spaces), and on whole files read
with the fast path switched off.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailproxy_lint.model import FileKind, SourceFile
from mailproxy_lint.parse import postfix

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus" / "files"
FIXTURES = REPO / "tests" / "fixtures"

MAIN_NAMES = {"main.cf", "postfix-main.cf"}
MASTER_NAMES = {"master.cf"}
OVERRIDE_NAMES = {"postfix-master.cf"}


def _files(names: set[str], corpus_dirs: tuple[str, ...], corpus_suffixes: tuple[str, ...]) -> list[Path]:
    found = [p for p in FIXTURES.rglob("*") if p.is_file() and p.name in names]
    for folder in corpus_dirs:
        directory = CORPUS / folder
        if directory.is_dir():
            found += [p for p in directory.iterdir() if p.is_file() and p.name.endswith(corpus_suffixes)]
    return sorted(found)


MAIN_FILES = _files(MAIN_NAMES, ("postfix-main", "postfix-dms-override"), ("main.cf",))
MASTER_FILES = _files(MASTER_NAMES, ("postfix-master",), ("master.cf",))
OVERRIDE_FILES = _files(OVERRIDE_NAMES, ("postfix-dms-override",), ("postfix-master.cf",))


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def _logical_texts(paths: list[Path]) -> list[str]:
    return [line.text for path in paths for line in postfix.logical_lines(_text(path), str(path))[0]]


def _override_texts(paths: list[Path]) -> list[str]:
    lines = (raw.strip() for path in paths for raw in _text(path).split("\n"))
    return [line for line in lines if line and not line.startswith("#")]


# --- one line: the fast answer, when there is one, is the grammar's answer --------------------


def _same_main(text: str) -> bool:
    fast = postfix.main_offsets_fast(text)
    slow, problem = postfix.main_offsets_lark(text, "main.cf")
    if fast is None:
        return True  # the grammar decides; nothing to compare
    assert problem is None, (text, problem)
    assert fast == slow, text
    return True


def _same_master(text: str) -> bool:
    fast = postfix.master_offsets_fast(text)
    slow, problem = postfix.master_offsets_lark(text, "master.cf")
    if fast is None:
        return True
    assert problem is None, (text, problem)
    assert fast == slow, text
    return True


def _same_override(text: str) -> bool:
    fast = postfix.override_parts_fast(text)
    slow, problem = postfix.override_parts_lark(text, _span())
    if fast is None:
        return True
    assert problem is None, (text, problem)
    assert fast == slow, text
    return True


def _span():
    from mailproxy_lint.model import Span

    return Span("postfix-master.cf", 1, 1)


def test_the_inputs_exist():
    # the fixtures alone hold main.cf, master.cf and postfix-master.cf files
    assert MAIN_FILES and MASTER_FILES and OVERRIDE_FILES


def test_main_cf_lines_agree_and_most_take_the_fast_path():
    texts = _logical_texts(MAIN_FILES)
    assert all(_same_main(text) for text in texts)
    fast = sum(postfix.main_offsets_fast(text) is not None for text in texts)
    assert fast >= 0.95 * len(texts), (fast, len(texts))


def test_master_cf_lines_agree_and_most_take_the_fast_path():
    texts = _logical_texts(MASTER_FILES)
    assert all(_same_master(text) for text in texts)
    fast = sum(postfix.master_offsets_fast(text) is not None for text in texts)
    assert fast >= 0.95 * len(texts), (fast, len(texts))


def test_override_lines_agree_and_most_take_the_fast_path():
    texts = _override_texts(OVERRIDE_FILES)
    assert all(_same_override(text) for text in texts)
    fast = sum(postfix.override_parts_fast(text) is not None for text in texts)
    assert fast >= 0.8 * len(texts), (fast, len(texts))


@pytest.mark.parametrize("text, words", [
    ("smtp inet n - y - - smtpd", ["smtp", "inet", "n", "-", "y", "-", "-", "smtpd"]),
    ("a b -o { x = y } c", ["a", "b", "-o", "{ x = y }", "c"]),
    ("a x{b c}y }", ["a", "x{b c}y", "}"]),
    ("a\tb\x0bc\rd", ["a", "b", "c", "d"]),
])
def test_master_fast_path_words(text, words):
    offsets = postfix.master_offsets_fast(text)
    assert [text[start:end] for start, end in offsets] == words
    assert _same_master(text)


@pytest.mark.parametrize("text", ["a b { c", "a\xa0b", "a {{{{{x}}}}}"])
def test_lines_the_grammar_refuses_are_left_to_it(text):
    assert postfix.master_offsets_fast(text) is None
    assert postfix.master_offsets_lark(text, "master.cf")[1] is not None


@pytest.mark.parametrize("text", ["= value", "name value", "name\xa0= value", "name =\xa0value"])
def test_main_lines_the_grammar_refuses_are_left_to_it(text):
    assert postfix.main_offsets_fast(text) is None
    assert postfix.main_offsets_lark(text, "main.cf")[1] is not None


# --- generated lines ---------------------------------------------------------------------------

_TRICKY = st.text(alphabet="ab=/{} \t\r\x0b\x0c\xa0-o$", min_size=1, max_size=24)


@settings(max_examples=400, deadline=None)
@given(_TRICKY)
def test_generated_lines_agree(text):
    text = text.lstrip(" \t\r\x0b").rstrip()  # what the logical-line pre-pass hands over
    if text:
        assert _same_main(text) and _same_master(text) and _same_override(text)


# --- whole files: the same trees and problems with the fast path switched off ------------------


@pytest.fixture
def lark_only(monkeypatch):
    for name in ("main_offsets_fast", "master_offsets_fast", "override_parts_fast"):
        monkeypatch.setattr(postfix, name, lambda text: None)


def _parse_all(paths: list[Path], kind: FileKind):
    return [postfix.parse(SourceFile(str(p), kind, _text(p))) for p in paths]


@pytest.mark.parametrize("files, kind", [
    (MAIN_FILES, FileKind.POSTFIX_MAIN),
    (MASTER_FILES, FileKind.POSTFIX_MASTER),
    (OVERRIDE_FILES, FileKind.DMS_POSTFIX_MASTER),
], ids=["main.cf", "master.cf", "postfix-master.cf"])
def test_whole_files_read_the_same_without_the_fast_path(files, kind, request):
    fast = _parse_all(files, kind)
    request.getfixturevalue("lark_only")
    slow = _parse_all(files, kind)
    for one, other in zip(fast, slow):
        assert one.tree == other.tree, one.source.path
        assert one.problems == other.problems, one.source.path
        assert one.comments == other.comments
