"""Dovecot parser: logical lines, values, spans, errors, and agreement with the real doveconf."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from conftest import shared_path
from mailproxy_lint.model import FileKind, SourceFile, Span
from mailproxy_lint.parse import parse_file
from mailproxy_lint.parse.dovecot import (
    DovecotFile,
    Include,
    KeyValue,
    SectionBegin,
    SectionEnd,
    ValueKind,
    classify_value,
    parse,
)

FIXTURES = Path(__file__).parent / "fixtures" / "parsers" / "dovecot"


def parsed(text: str, path: str = "dovecot.conf"):
    return parse(SourceFile(path, FileKind.DOVECOT, text))


def tree(text: str) -> DovecotFile:
    result = parsed(text)
    assert result.problems == [], result.problems
    assert isinstance(result.tree, DovecotFile)
    return result.tree


def settings_of(text: str) -> dict[str, KeyValue]:
    return {s.key: s for s in tree(text).statements if isinstance(s, KeyValue)}


def only_problem(text: str):
    result = parsed(text)
    assert result.tree is None
    assert len(result.problems) == 1, result.problems
    return result.problems[0]


# --------------------------------------------------------------------------------------------
# The fixture file: every statement kind, with exact spans
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def basic():
    path = "tests/fixtures/parsers/dovecot/basic.conf"
    return parse(SourceFile(path, FileKind.DOVECOT, (FIXTURES / "basic.conf").read_text()))


def test_basic_fixture_parses_with_dispatch():
    source = SourceFile("basic.conf", FileKind.DOVECOT, (FIXTURES / "basic.conf").read_text())
    result = parse_file(source)
    assert result.ok and isinstance(result.tree, DovecotFile)


def test_basic_statement_sequence(basic):
    kinds = [type(s).__name__ for s in basic.tree.statements]
    assert kinds == [
        "KeyValue", "KeyValue", "KeyValue", "KeyValue", "KeyValue", "KeyValue", "KeyValue",
        "KeyValue",
        "SectionBegin", "SectionBegin", "KeyValue", "KeyValue", "KeyValue", "SectionEnd", "SectionEnd",
        "SectionBegin", "KeyValue", "SectionEnd",
        "SectionBegin", "KeyValue", "KeyValue", "SectionEnd",
        "Include",
    ]
    assert basic.tree.unclosed == () and basic.tree.stray_closes == ()


def test_basic_plain_setting_span(basic):
    path = "tests/fixtures/parsers/dovecot/basic.conf"
    protocols = basic.tree.statements[0]
    assert protocols == KeyValue(
        key="protocols", value="imap pop3 lmtp", raw="imap pop3 lmtp", kind=ValueKind.PLAIN,
        span=Span(path, 2, 1, 2, 27), key_span=Span(path, 2, 1, 2, 10), value_span=Span(path, 2, 13, 2, 27),
    )
    assert protocols.span == Span(path, 2, 1, 2, 27)
    assert protocols.value_span == Span(path, 2, 13, 2, 27)


def test_basic_continuation_joins_with_one_space_and_spans_lines(basic):
    greeting = basic.tree.statements[2]
    assert greeting.key == "login_greeting"
    assert greeting.value == "Mail server ready"
    assert (greeting.span.line, greeting.span.column) == (4, 1)
    assert (greeting.span.end_line, greeting.span.end_column) == (6, 8)
    assert (greeting.value_span.line, greeting.value_span.column) == (4, 18)


def test_basic_quotes_comments_and_variables(basic):
    by_key = {s.key: s for s in basic.tree.statements if isinstance(s, KeyValue)}
    assert by_key["ssl_cipher_list"].value == "ALL:!LOW # kept"  # '#' inside quotes is kept (D2)
    assert by_key["ssl_cipher_list"].kind is ValueKind.QUOTED
    assert by_key["mail_location"].value == "maildir:~/Maildir"  # glued '#' still comments (D1)
    assert by_key["haproxy_trusted_networks"].value == "10.0.0.1 192.168.0.0/24"
    assert by_key["pop3_deleted_flag"].kind is ValueKind.QUOTED
    assert by_key["pop3_deleted_flag"].value == "$Deleted"
    assert by_key["postmaster_address"].value == "postmaster@example.org"
    assert by_key["ssl_cert"].kind is ValueKind.FILE and by_key["ssl_cert"].value == "/etc/ssl/mail.pem"
    path = "tests/fixtures/parsers/dovecot/basic.conf"
    assert basic.tree.ambiguous_comments == (Span(path, 8, 34, 8, 35),)


def test_basic_comments_collected(basic):
    assert basic.comments[0].line == 1 and basic.comments[0].column == 1
    trailing = [c for c in basic.comments if c.line == 9]
    assert [(c.column, c.text) for c in trailing] == [(52, "# proxies")]


def test_basic_sections_and_include(basic):
    path = "tests/fixtures/parsers/dovecot/basic.conf"
    sections = [s for s in basic.tree.statements if isinstance(s, SectionBegin)]
    assert [(s.type, s.name) for s in sections] == [
        ("service", "imap-login"), ("inet_listener", "imaps"), ("protocol", "imap"),
        ("local_name", "mail.example.org"),
    ]
    assert sections[1].span == Span(path, 14, 3, 14, 24)
    assert sections[1].name_span == Span(path, 14, 17, 14, 22)
    assert sections[3].name_span == Span(path, 25, 12, 25, 30)  # quotes included in the span
    include = basic.tree.statements[-1]
    assert include == Include("conf.d/*.conf", True, Span(path, 30, 1, 30, 27), Span(path, 30, 14, 30, 27))


# --------------------------------------------------------------------------------------------
# Logical lines (facts-formats §1.1 and the edge cases of §1.8)
# --------------------------------------------------------------------------------------------


def test_comment_line_discards_pending_continuation_d3():
    problem = only_problem("login_greeting = Hello \\\n# comment\n  world\n")
    assert problem.span == Span("dovecot.conf", 3, 8)
    assert problem.message.startswith("unexpected end of line; expected '='")


def test_blank_line_discards_pending_continuation():
    result = parsed("a = b \\\n\nc = d\n")
    assert result.ok
    assert [s.key for s in result.tree.statements] == ["c"]
    assert result.tree.discarded_continuations == (Span("dovecot.conf", 1, 1, 1, 6),)


def test_continuation_at_end_of_file_is_dropped():
    assert tree("a = b\nc = d \\\n").statements[-1].key == "a"


def test_whitespace_at_joins_collapses_d4():
    assert settings_of("a = x \\\n  y   \\\nz\n")["a"].value == "x y z"


def test_empty_continuation_lines():
    assert settings_of("a = Hello \\\n   \\\n big \\\n world\n")["a"].value == "Hello big world"


def test_crlf_lines():
    kv = settings_of("ssl = yes\r\nlisten = *\r\n")
    assert kv["ssl"].value == "yes" and kv["listen"].value == "*"
    assert kv["listen"].span == Span("dovecot.conf", 2, 1, 2, 11)


def test_unterminated_quote_keeps_hash():
    assert settings_of("a = \"abc # d\n")["a"].value == "\"abc # d"


# --------------------------------------------------------------------------------------------
# Values (facts-formats §1.3, §1.4)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, kind, value", [
    ("yes", ValueKind.PLAIN, "yes"),
    ('"a\\b"', ValueKind.QUOTED, "ab"),  # 2.3 str_unescape
    ("'x\\'y'", ValueKind.QUOTED, "x'y"),
    ('"a" b "c"', ValueKind.QUOTED, 'a" b "c'),  # D7: both ends decide
    ('"abc', ValueKind.PLAIN, '"abc'),
    ('a "b" c', ValueKind.PLAIN, 'a "b" c'),
    ("$protocols sieve", ValueKind.VARIABLE, "$protocols sieve"),
    ("%{user | domain}", ValueKind.PLAIN, "%{user | domain}"),
    ('"$Deleted"', ValueKind.QUOTED, "$Deleted"),
    ("<  /etc/ssl/x.pem", ValueKind.FILE, "/etc/ssl/x.pem"),
    ("", ValueKind.PLAIN, ""),
])
def test_classify_value(raw, kind, value):
    assert classify_value(raw) == (kind, value)


def test_key_value_spacing_variants_d6():
    kv = settings_of("a=b=c\nd =e\nf= g\nempty =\n")
    assert kv["a"].value == "b=c" and kv["d"].value == "e" and kv["f"].value == "g"
    assert kv["empty"].value == "" and kv["empty"].value_span is None
    assert kv["empty"].span == Span("dovecot.conf", 4, 1, 4, 8)


def test_quoted_key_24():
    kv = settings_of('"quoted key" = 1\n')
    assert kv["quoted key"].key_quoted
    assert kv["quoted key"].key_span == Span("dovecot.conf", 1, 1, 1, 13)


def test_include_value_is_raw():
    include = tree('!include "x.conf"\n').statements[0]
    assert include.pattern == '"x.conf"' and not include.optional


def test_group_section_24():
    begin = tree("group @mail special {\n}\n").statements[0]
    assert (begin.type, begin.label, begin.name) == ("group", "@mail", "special")


def test_filters_and_quoted_names():
    sections = [s for s in tree(
        "local 10.0.0.0/8 {\n remote 10.1.0.0/16 {\n  protocol !indexer-worker {\n  }\n }\n}\n"
        'local_name "a.example b.example" {\n}\n'
    ).statements if isinstance(s, SectionBegin)]
    assert [(s.type, s.name) for s in sections] == [
        ("local", "10.0.0.0/8"), ("remote", "10.1.0.0/16"), ("protocol", "!indexer-worker"),
        ("local_name", "a.example b.example"),
    ]


def test_unbalanced_braces_are_facts_not_problems():
    result = parsed("}\nservice imap {\n")
    assert result.ok
    assert [s.span.line for s in result.tree.stray_closes] == [1]
    assert [s.type for s in result.tree.unclosed] == ["service"]
    assert result.tree.end == Span("dovecot.conf", 3, 1)


# --------------------------------------------------------------------------------------------
# Errors (facts-formats §1.2, D5)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, line, column, message", [
    ("protocol imap { key = v }\n", 1, 17, "unexpected 'key'; expected end of line"),
    ("protocol imap{\n", 1, 15, "unexpected end of line; expected '{', a section name or a quoted section name"),
    ("ssl = yes\nprotocol imap pop3 {\n}\n", 2, 15, "unexpected 'pop3'; expected '{'"),
    ("  world\n", 1, 8, "unexpected end of line; expected '=', '{', a section name or a quoted section name"),
    ("} x\n", 1, 3, "unexpected 'x'; expected end of line"),
    ("protocol \\\n  imap \\\n pop3 {\n", 3, 2, "unexpected 'pop3'; expected '{'"),
])
def test_error_positions(text, line, column, message):
    problem = only_problem(text)
    assert (problem.span.line, problem.span.column) == (line, column)
    assert problem.message == message


def test_fixture_syntax_error():
    text = (FIXTURES / "syntax-error.conf").read_text()
    problem = only_problem(text)
    assert (problem.span.line, problem.span.column) == (3, 15)


def test_every_bad_line_is_reported():
    result = parsed("a {\nb c d {\n}\nlone\n}\n")
    assert [p.span.line for p in result.problems] == [2, 4]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(list("ab =\\{}\"'#<$!\n \t") + ["!include", "service "]), max_size=40).map("".join))
def test_never_raises(text):
    result = parsed(text)
    assert (result.tree is None) == bool(result.problems)


# --------------------------------------------------------------------------------------------
# Real configs (../shared/corpus) and the seed snippets
# --------------------------------------------------------------------------------------------


def _corpus_rows():
    manifest = shared_path("corpus", "manifest.tsv")
    with manifest.open(encoding="utf-8") as fh:
        return [row for row in csv.DictReader(fh, delimiter="\t") if row["type"] == "dovecot"]


def _parse_corpus(row):
    path = shared_path("corpus", row["path"])
    return parse(SourceFile(row["path"], FileKind.DOVECOT, path.read_text(encoding="utf-8")))


def test_corpus_accepted_files_parse():
    rows = [r for r in _corpus_rows() if r["oracle_verdict"].startswith("accepted") and r["is_template"] == "no"]
    assert len(rows) > 40
    failures = {r["path"]: _parse_corpus(r).problems for r in rows if not _parse_corpus(r).ok}
    assert failures == {}


# doveconf's syntax errors ("Expecting '{'") in the rejected corpus files, by line. The 2.3
# modoboa template is reported at line 25 by doveconf because its line counter also counts the
# lines of the included protocols.d files; the statement is on line 21.
SYNTAX_REJECTED = {
    "Mailu__Mailu__core__dovecot__conf__dovecot.conf": 8,
    "modoboa__modoboa-installer__modoboa_installer__scripts__files__dovecot__2.3__dovecot.conf.tpl": 21,
    "modoboa__modoboa-installer__modoboa_installer__scripts__files__dovecot__2.4__dovecot.conf.tpl": 23,
    "hardware__mailserver__rootfs__etc__dovecot__conf.d__10-auth.conf": 4,
    # doveconf stops one line earlier on an unknown section name (not syntax)
    "modoboa__modoboa-installer__modoboa_installer__scripts__files__dovecot__2.4__conf.d__10-master.conf.tpl": 149,
}


def test_corpus_rejected_files():
    rows = [r for r in _corpus_rows() if r["oracle_verdict"].startswith("rejected")]
    for row in rows:
        name = row["path"].rsplit("/", 1)[-1]
        result = _parse_corpus(row)
        if name in SYNTAX_REJECTED:
            assert result.tree is None, name
            assert result.problems[0].span.line == SYNTAX_REJECTED[name], (name, result.problems)
        else:  # rejected for meaning (unknown setting, bad number), not syntax
            assert result.ok, (name, result.problems)


def seed_dovecot_snippets() -> list[tuple[str, str]]:
    """(seed file, snippet) for every dovecot.cf code block of seeds 000 and 001."""
    snippets = []
    for pattern in ("000_*.txt", "001_*.txt"):
        for seed in sorted(shared_path("seeds").glob(pattern)):
            snippets.extend((seed.name, block) for block in _dovecot_blocks(seed.read_text(encoding="utf-8")))
    return snippets


def _dovecot_blocks(text: str) -> list[str]:
    lines = text.split("\n")
    blocks = []
    i = 0
    while i < len(lines):
        fence = re.match(r"^(\s*)```(.*)$", lines[i])
        if fence is None:
            i += 1
            continue
        indent, info = fence.group(1), fence.group(2)
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        if "dovecot.cf" in info or "dovecot.cf" in before:
            blocks.append("\n".join(line[len(indent):] for line in lines[i + 1:end]) + "\n")
        i = end + 1
    return blocks


def test_seed_snippets_parse():
    snippets = seed_dovecot_snippets()
    assert len(snippets) >= 3
    for seed, snippet in snippets:
        result = parsed(snippet, seed)
        assert result.ok, (seed, result.problems)
        assert result.tree.unclosed == () and result.tree.stray_closes == ()
        assert any(isinstance(s, KeyValue) and s.key == "haproxy_trusted_networks" for s in result.tree.statements)


def test_seed_004_doc_blocks_parse():
    """Seed 004 is Dovecot's HAProxy page; its config blocks are extracted in the corpus."""
    rows = [r for r in _corpus_rows() if "haproxy.md__block" in r["path"]]
    assert len(rows) >= 5
    for row in rows:
        result = _parse_corpus(row)
        assert result.ok, (row["path"], result.problems)
        assert isinstance(result.tree.statements[-1], (KeyValue, SectionEnd))
