"""HAProxy parser: tokenizer, sections, positions, and the errors `haproxy -c` refuses.

Every valid fixture here was checked with `haproxy -c` (2.6); every invalid one is refused by it
at the line the test expects.
"""
from __future__ import annotations

import csv
import re

import pytest

from mailproxy_lint.model import FileKind, SourceFile, Version
from mailproxy_lint.parse import parse_file
from mailproxy_lint.parse.haproxy import (
    HaproxyConfig,
    decode_word,
    parse_haproxy_time,
    split_address,
)
from tests.conftest import shared_path


def parse(text: str):
    return parse_file(SourceFile("haproxy.cfg", FileKind.HAPROXY, text))


def only_problem(text: str):
    parsed = parse(text)
    assert parsed.tree is None, "haproxy -c refuses this file"
    assert len(parsed.problems) == 1, parsed.problems
    return parsed.problems[0]


# --------------------------------------------------------------------------------------------
# tokenizer
# --------------------------------------------------------------------------------------------

VALID = """\
# mail proxy
global
    log stdout format raw local0   # trailing comment
defaults mail
    mode tcp
    timeout client 31m
frontend imaps from mail
    bind :993 ssl crt "/etc/haproxy/certs/mail example.pem"
    bind 127.0.0.1:10993#no-space comment
    default_backend dovecot
backend dovecot
    server d1 10.0.0.1:993 ssl verify none send-proxy-v2-ssl
"""


def test_sections_statements_and_word_columns():
    parsed = parse(VALID)
    assert parsed.problems == []
    config = parsed.tree
    assert isinstance(config, HaproxyConfig)
    assert [(s.kind, s.name) for s in config.sections] == [
        ("global", None), ("defaults", "mail"), ("frontend", "imaps"), ("backend", "dovecot")]
    frontend = config.sections[2]
    assert frontend.from_defaults is not None and frontend.from_defaults.text == "mail"
    bind = frontend.statements[0]
    assert bind.keyword == "bind"
    assert [(w.text, w.column, w.end_column) for w in bind.words] == [
        ("bind", 5, 9), (":993", 10, 14), ("ssl", 15, 18), ("crt", 19, 22),
        ("/etc/haproxy/certs/mail example.pem", 23, 60)]
    assert bind.words[4].raw == '"/etc/haproxy/certs/mail example.pem"'
    span = bind.span("haproxy.cfg")
    assert (span.line, span.column, span.end_line, span.end_column) == (8, 5, 8, 60)


def test_hash_ends_a_word_even_without_a_space():
    config = parse(VALID).tree
    second_bind = config.sections[2].statements[1]
    assert [w.text for w in second_bind.words] == ["bind", "127.0.0.1:10993"]


def test_comments_are_collected_with_positions():
    comments = parse(VALID).comments
    assert [(c.line, c.column, c.text) for c in comments] == [
        (1, 1, "# mail proxy"), (3, 36, "# trailing comment"), (9, 25, "#no-space comment")]


@pytest.mark.parametrize(("raw", "text"), [
    ('"a"b\'c\'', "abc"),  # quotes glue to their neighbours
    ("''", ""),  # an empty argument
    ("a\\ b", "a b"),  # escaped space
    ("\\#x", "#x"),
    ("\\\\", "\\"),
    ("\\q", "\\q"),  # not an escape: the backslash stays
    ("\\$HOME", "\\$HOME"),  # outside double quotes \$ stays two characters
    ('"\\$HOME"', "$HOME"),  # inside them it escapes the dollar
    ("'\\n$X'", "\\n$X"),  # strong quotes: everything literal
    ('"${MAIL_HOST}:993"', "${MAIL_HOST}:993"),  # environment kept as written
    ('"${PORT-10993}"', "${PORT-10993}"),
    ('"${ADDRS[*]}"', "${ADDRS[*]}"),
    ('"\\x41\\t"', "A\t"),
    ("'#'x", "#x"),
])
def test_decode_word(raw, text):
    assert decode_word(raw) == (text, None)


@pytest.mark.parametrize(("line", "column", "words"), [
    ('    setenv X "a$1"', 17, "environment variable name"),  # haproxy: position 17
    ('    setenv X "a${X"', 17, "'}'"),  # haproxy: position 17 (the brace)
    ('    setenv X "a\\xZZ"', 16, "hexadecimal"),  # haproxy: position 16
    ('  setenv X "${X[1]}"', 16, "[*]"),  # haproxy: position 16
    ('    log "stdout format raw local0', 9, "closing \""),  # haproxy: unmatched quote at position 9
    ("    log stdout local0 'ab", 23, "closing '"),
])
def test_tokenizer_errors_at_haproxys_position(line, column, words):
    problem = only_problem(f"global\n{line}\n")
    assert (problem.span.line, problem.span.column) == (2, column)
    assert problem.message.startswith("unexpected ")
    assert words in problem.message


def test_missing_lf_on_last_line():
    problem = only_problem("global\n    maxconn 10\n# c")
    assert (problem.span.line, problem.span.column) == (3, 4)
    assert "expected a newline" in problem.message


def test_empty_and_blank_files_are_valid():
    assert parse("").tree is not None
    assert parse("\n   \n# only a comment\n").ok


# --------------------------------------------------------------------------------------------
# structure errors
# --------------------------------------------------------------------------------------------


def test_keyword_outside_any_section():
    problem = only_problem("  \n# x\noption tcp-check\nglobal\n")
    assert (problem.span.line, problem.span.column) == (3, 1)
    assert problem.message.startswith("unexpected keyword 'option' outside any section; expected a section header")


def test_directives_may_precede_sections():
    assert parse(".if defined(X)\nglobal\n.endif\n").ok


@pytest.mark.parametrize(("text", "line", "column", "message"), [
    ("global\n.endif\n", 2, 1, "unexpected '.endif' with no matching '.if'"),
    (".if 1\n.elif 0\n.else\n.else\n.endif\n", 4, 1, "unexpected '.else' after '.else'"),
    (".if defined(X)\nglobal\n", 1, 1, "unexpected end of file inside this '.if' block"),
    (".foo\n", 1, 1, "unexpected directive '.foo'"),
])
def test_conditional_block_errors(text, line, column, message):
    problem = only_problem(text)
    assert (problem.span.line, problem.span.column) == (line, column)
    assert problem.message.startswith(message)


@pytest.mark.parametrize(("text", "line", "column", "message"), [
    ("frontend\n", 1, 1, "unexpected end of line after 'frontend'; expected a name"),
    ("peers\n", 1, 1, "unexpected end of line after 'peers'; expected a name (missing name for peers section)"),
    ("global x\n", 1, 8, "unexpected argument 'x' after 'global'"),
    ("frontend a/b\n", 1, 10, "unexpected character '/' in frontend name 'a/b'"),
    ('frontend "a b"\n', 1, 10, "unexpected character ' ' in frontend name 'a b'"),
    ("listen smtp :25\n  mode tcp\n", 1, 13, "unexpected ':25' after the listen name"),
    ("defaults a\nfrontend x from b\n", 2, 17, "unexpected defaults name 'b'"),
    ("backend x\nbackend x\n", 2, 9, "unexpected backend name 'x', already used by the backend on line 1"),
    ("frontend x\nlisten x\n", 2, 8, "unexpected listen name 'x', already used by the frontend on line 1"),
])
def test_section_header_errors(text, line, column, message):
    problem = only_problem(text)
    assert (problem.span.line, problem.span.column) == (line, column)
    assert problem.message.startswith(message)


def test_headers_haproxy_accepts():
    assert parse("frontend x\nbackend x\n").ok  # different capabilities may share a name (< 3.3)
    assert parse("defaults a\ndefaults b from a\nfrontend x from b\nnamespace_list\n").ok
    assert parse("defaults from\n").ok
    assert parse("frontend a.b:c-d_1\n").ok


# --------------------------------------------------------------------------------------------
# statement errors
# --------------------------------------------------------------------------------------------


def test_trailing_backslash_is_not_a_line_continuation():
    text = ("backend dovecot\n"
            "    server d1 10.0.0.1:993 ssl verify required \\\n"
            "        send-proxy-v2-ssl\n")
    problem = only_problem(text)
    assert (problem.span.line, problem.span.column) == (2, 48)
    assert problem.message.startswith("unexpected '\\' at the end of a 'server' line; expected all of its "
                                      "options on one line (HAProxy has no line continuation")


def test_trailing_backslash_on_a_free_form_line_is_accepted():
    assert parse("backend a\n  acl x path_beg /a \\\n  balance roundrobin \\\n").ok


@pytest.mark.parametrize(("line", "column", "message"), [
    ("  timeout client 1.5s", 19, "unexpected '.' in 'timeout client 1.5s'"),
    ("  timeout client 5s x", 21, "unexpected extra argument 'x' after 'timeout client 5s'"),
    ("  timeout client", 3, "unexpected end of line after 'timeout client'"),
    ("  timeout clients 5s", 11, "unexpected 'clients' after 'timeout'"),
    ("  timeout server 25d", 18, "unexpected value above 2147483647 ms"),
    ("  tcp-check expect string * OK", 29, "unexpected 'OK' in 'tcp-check expect'"),
    ("  tcp-check expect", 3, "unexpected end of line in 'tcp-check expect'"),
    ("  server s", 3, "unexpected end of line; expected 'server <name> <addr>[:<port>]'"),
    ("  bind 1.2.3.4", 8, "unexpected address '1.2.3.4' without a port"),
])
def test_statement_errors(line, column, message):
    problem = only_problem(f"defaults\n  mode tcp\nlisten a\n{line}\n")
    assert (problem.span.line, problem.span.column) == (4, column)
    assert problem.message.startswith(message)


def test_statements_haproxy_accepts():
    text = ("listen a\n"
            "  timeout client 30sec\n"  # only a warning in HAProxy 2.4+
            "  tcp-check expect string \"* OK\"\n"
            "  tcp-check expect ! rstring ^5 comment \"not an error\"\n"
            "  bind unix@/run/haproxy.sock\n"
            "  bind /run/other.sock\n"
            "  server s 10.0.0.1\n")
    assert parse(text).ok


def test_addresses_from_the_environment_are_not_judged():
    # valid when PORT/ADDR are set where HAProxy runs; the linter cannot know the environment
    assert parse('listen a\n  bind :${PORT}\n  bind "${ADDR}"\n').ok


# --------------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [
    ("50000", 50.0), ("50s", 50.0), ("31m", 1860.0), ("2h", 7200.0), ("1d", 86400.0),
    ("500ms", 0.5), ("1500us", 0.0015), ("30sec", 30.0), ("0", 0.0),
    ("1.5s", None), ("s", None), ("", None), ("10x", None), ("25d", None),
])
def test_parse_haproxy_time(text, seconds):
    assert parse_haproxy_time(text) == seconds


def test_parse_haproxy_time_with_another_default_unit():
    assert parse_haproxy_time("5", default_unit="s") == 5.0


@pytest.mark.parametrize(("text", "host", "port"), [
    (":25", "", 25), ("*:25", "", 25), ("0.0.0.0:993", "0.0.0.0", 993), ("[::]:993", "::", 993),
    (":::993", "::", 993), ("1.2.3.4:2000-2100", "1.2.3.4", 2000), ("ipv4@10.0.0.1:25", "10.0.0.1", 25),
    ("mailserver:10993", "mailserver", 10993), ("10.0.0.1", "10.0.0.1", None),
    ("10.0.0.1:+1", "10.0.0.1", None), ("unix@/run/x.sock", "/run/x.sock", None),
    ("/run/x.sock", "/run/x.sock", None), ("${HOST}:${PORT}", "${HOST}", None),
])
def test_split_address(text, host, port):
    address = split_address(text)
    assert (address.host, address.port) == (host, port)


def test_never_raises_on_odd_input():
    for text in ["\x00", "\\", '"', "'", "global\n\\x", "#", "[scope]\n", "[x] y\n", "global\n  \"$\"\n",
                 "global\r\n  maxconn 1\r\n", "frontend\tx\n", "global\n  ${\n", "\n\n\n"]:
        parse(text)


# --------------------------------------------------------------------------------------------
# agreement with haproxy -c on the corpus
# --------------------------------------------------------------------------------------------

# Rejections that depend on the HAProxy version rather than on syntax: the parser accepts these.
VERSION_DEPENDENT = {
    "haproxy__haproxy__examples__mptcp.cfg": "mptcp@ addresses need HAProxy 3.1+",
    "dovecot__documentation__source__configuration_manual__haproxy__index.rst__block4":
        "nbproc was removed in HAProxy 2.5",
}


def _corpus_rows():
    manifest = shared_path("corpus", "manifest.tsv")
    with manifest.open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle, delimiter="\t") if r["type"] == "haproxy"]
    return manifest.parent, rows


def test_corpus_agrees_with_haproxy():
    root, rows = _corpus_rows()
    assert rows
    for row in rows:
        if row["is_template"] != "no":
            continue
        name = row["path"].rsplit("/", 1)[-1]
        text = (root / row["path"]).read_text(encoding="utf-8", errors="replace")
        parsed = parse_file(SourceFile(name, FileKind.HAPROXY, text))
        verdict = row["oracle_verdict"]
        if verdict.startswith("accepted") or name in VERSION_DEPENDENT:
            assert parsed.ok, (name, parsed.problems)
            continue
        assert parsed.tree is None, name
        line = int(re.search(r":(\d+)\]", verdict).group(1))
        assert parsed.problems[0].span.line == line, (name, verdict, parsed.problems)


# --------------------------------------------------------------------------------------------
# `.if` conditions (each case checked with haproxy 2.6 -c: accepted, or refused at that line)
# --------------------------------------------------------------------------------------------


def branch_of(text: str, keyword: str):
    """The branch the first statement with `keyword` sits in."""
    parsed = parse(text)
    assert parsed.ok, parsed.problems
    statements = [s for sec in parsed.tree.sections for s in (sec.header, *sec.statements)]
    return next(s for s in statements if s.keyword == keyword).branch


@pytest.mark.parametrize(("condition", "taken"), [
    ("1", True), ("0", False), ("", False), ("!0", True), ("!!1", True), ("0x10", True), ("-1", True),
    ("1 && 0", False), ("0 || 1", True), ("streq(a,a) && 0 || 1", True), ("( 1 )", True),
    ("streq(a,a)", True), ("streq(a, a)", False), ("strneq(a,b)", True), ('streq("x y",x y)', True),
    ("defined(HOME)", None), ("feature(OPENSSL)", None), ("enabled(POLL)", None),
    ("defined(HOME) && 0", False), ("defined(HOME) || 1", True), ('streq("${MODE}",tls)', None),
    ("version_atleast(2.4)", None),
])
def test_condition_values_without_the_environment(condition, taken):
    text = f"global\n.if {condition}\n    maxconn 10\n.endif\n"
    assert branch_of(text, "maxconn").taken() is taken


def test_version_predicates_use_the_known_version():
    branch = branch_of("global\n.if version_atleast(2.8)\n    maxconn 10\n.endif\n", "maxconn")
    assert branch.taken(Version((2, 6, 12))) is False
    assert branch.taken(Version((3, 0))) is True
    before = branch_of("global\n.if version_before(2.8.5)\n    maxconn 10\n.endif\n", "maxconn")
    assert before.taken(Version((2, 8))) is None  # a floating 2.8 tag: the patch is unknown
    assert before.taken(Version((2, 8, 3))) is True


def test_elif_and_else_depend_on_the_earlier_branches():
    text = "global\n.if defined(A)\n    maxconn 1\n.elif 1\n    nbthread 2\n.else\n    daemon\n.endif\n"
    assert branch_of(text, "nbthread").taken() is None  # taken unless A is defined
    assert branch_of(text, "daemon").taken() is False  # an earlier branch is always true
    nested = "global\n.if 0\n.if 1\n    maxconn 1\n.endif\n.endif\n"
    assert branch_of(nested, "maxconn").taken() is False


def test_undecided_names_the_innermost_unknown_branch():
    text = "global\n.if defined(A)\n.if 1\n    maxconn 1\n.endif\n.endif\n"
    branch = branch_of(text, "maxconn")
    assert branch.undecided().directive.line == 2


@pytest.mark.parametrize(("condition", "column", "message"), [
    ("foo(1)", 5, "unexpected 'foo(1)' in the condition"),
    ('streq("a")', 5, "unexpected ')' after 1 argument of 'streq'; expected 2"),
    ("(1", 5, "unexpected end of '(1'; expected ')'"),
    ("defined(HOME", 17, "unexpected end of the condition in the arguments of 'defined'"),
    ("1 2", 7, "unexpected character '2' after the condition '1'"),
    ("defined (HOME)", 13, "unexpected character '('"),
    ("1 ||", 9, "unexpected end of line in the condition"),
    ("streq(a,b,c)", 16, "unexpected argument 3 to 'streq'"),
    ("!", 5, "unexpected '!' in the condition"),
    ("08", 6, "unexpected character '8'"),
])
def test_malformed_conditions_are_refused_where_haproxy_points(condition, column, message):
    problem = only_problem(f"global\n.if {condition}\n    maxconn 10\n.endif\n")
    assert (problem.span.line, problem.span.column) == (2, column)
    assert problem.message.startswith(message)


@pytest.mark.parametrize("text", [
    ".if 0\n.if foo(1)\n.endif\n.endif\n",  # not evaluated under a false branch
    ".if 1\n.elif foo(1)\n.endif\n",  # not evaluated once an earlier branch was taken
    ".if 0\n.foo\n.endif\n",
    ".if 0\n.alert \"x\"\n.endif\n",
    ".if defined(X)\n.alert \"x\"\n.endif\n",
    ".if version_atleast(2.4)\n.else\n.alert \"too old\"\n.endif\n",
    "defaults\n.if 0\n    timeout client abc\n.endif\n",
    ".if 0\nbackend a\n.endif\nbackend a\n",
    ".if defined(X)\nbackend a\n.else\nbackend a\n.endif\n",
])
def test_lines_haproxy_does_not_read_are_not_checked(text):
    parsed = parse(text)
    assert parsed.ok, parsed.problems


@pytest.mark.parametrize(("text", "line", "column", "message"), [
    (".if 0\n.elif foo(1)\n.endif\n", 2, 7, "unexpected 'foo(1)' in the condition"),
    (".if 1\n.foo\n.endif\n", 2, 1, "unexpected directive '.foo'"),
    (".if 1\n.alert \"x\"\n.endif\n", 2, 1, "unexpected '.alert' \"x\""),
    (".if 1\n.notice x y\n.endif\n", 2, 11, "unexpected argument 'y' after '.notice'"),
    (".if 1\n.else foo\n.endif\n", 2, 7, "unexpected argument 'foo' after '.else'"),
    (".if 1\n.endif foo\n", 2, 8, "unexpected argument 'foo' after '.endif'"),
    ("defaults\n.if 1\n    timeout client abc\n.endif\n", 3, 20, "unexpected 'a' in 'timeout client abc'"),
])
def test_directive_errors_in_lines_haproxy_reads(text, line, column, message):
    problem = only_problem(text)
    assert (problem.span.line, problem.span.column) == (line, column)
    assert problem.message.startswith(message)
