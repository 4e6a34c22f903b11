"""The Dovecot fast path (regular expressions) and the grammar (Lark) must read lines alike.

`parse/dovecot.py` splits `key = value`, `type [name] {`, `}` and `!include` lines without Lark and sends
every other logical line to the grammar. On every line of the corpus and the fixtures, on
generated lines, and on whole files read with the fast path switched off, the fast answer is
the grammar's answer.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailproxy_lint.model import FileKind, SourceFile
from mailproxy_lint.parse import dovecot

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus" / "files"


def _files() -> list[Path]:
    found = [p for p in (REPO / "tests" / "fixtures").rglob("*")
             if p.is_file() and (p.suffix in (".conf", ".ext") or p.name == "dovecot.cf")]
    for folder, suffix in (("dovecot", ""), ("postfix-dms-override", "dovecot.cf")):
        directory = CORPUS / folder
        if directory.is_dir():
            found += [p for p in directory.iterdir() if p.is_file() and p.name.endswith(suffix)]
    return sorted(found)


FILES = _files()


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def _lines() -> list[str]:
    return [line.text for path in FILES for line in dovecot.split_logical_lines(_text(path), str(path)).logical]


def tokens(shape) -> tuple:
    kind, items = shape
    return kind, tuple((t.type, str(t), t.start_pos, t.end_pos) for t in items)


def agree(text: str) -> bool:
    fast = dovecot.statement_fast(text)
    if fast is None:
        return True  # the grammar decides
    slow, problem = dovecot.statement_lark(text, "dovecot.conf")
    assert problem is None, (text, problem)
    assert tokens(fast) == tokens(slow), text
    return True


def test_the_inputs_exist():
    assert len(FILES) >= 5


def test_every_line_agrees_and_most_take_the_fast_path():
    texts = _lines()
    assert all(agree(text) for text in texts)
    fast = sum(dovecot.statement_fast(text) is not None for text in texts)
    assert fast >= 0.9 * len(texts), (fast, len(texts))


@pytest.mark.parametrize("text, kind", [
    ("protocols = imap lmtp", "keyvalue"), ("ssl =", "keyvalue"), ("a=b=c", "keyvalue"),
    ("service imap-login {", "section_begin"), ("protocol imap {", "section_begin"),
    ("inet_listener imaps {", "section_begin"), ("}", "section_end"),
    ("mail_location = maildir:~/Maildir # not a comment here", "keyvalue"),
    ("!include conf.d/*.conf", "include"), ("!include_try /etc/dovecot/local.conf", "include"),
    ("!include", "include"),
])
def test_common_shapes_take_the_fast_path(text, kind):
    assert dovecot.statement_fast(text)[0] == kind
    assert agree(text)


@pytest.mark.parametrize("text", [
    "!includes x", '"quoted key" = 1', "group @label name {", 'passdb "x" {',
    "type{", "type name{", "} extra", "= value", "{",
])
def test_unusual_lines_go_to_the_grammar(text):
    assert dovecot.statement_fast(text) is None


@settings(max_examples=400, deadline=None)
@given(st.one_of(
    st.text(alphabet='ab1_ \t={}"!@#$<\\\'.-', min_size=1, max_size=24),
    st.builds(lambda a, b: a + b, st.sampled_from(["!include", "!include_try", "!includ"]),
              st.text(alphabet='ab_ \t=}"!*', max_size=10)),
))
def test_generated_lines_agree(text):
    text = text.strip(" \t")  # what the logical-line pre-pass hands over
    if text:
        assert agree(text)


def test_whole_files_read_the_same_without_the_fast_path(monkeypatch):
    fast = [dovecot.parse(SourceFile(str(p), FileKind.DOVECOT, _text(p))) for p in FILES]
    monkeypatch.setattr(dovecot, "statement_fast", lambda text: None)
    slow = [dovecot.parse(SourceFile(str(p), FileKind.DOVECOT, _text(p))) for p in FILES]
    for one, other in zip(fast, slow):
        assert one.tree == other.tree, one.source.path
        assert one.problems == other.problems, one.source.path
        assert one.comments == other.comments
