"""Postfix main.cf / master.cf / DMS postfix-master.cf / user-patches.sh parsers."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from mailproxy_lint.model import FileKind, SourceFile, Span
from mailproxy_lint.parse import postfix, user_patches

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def main_cf(text: str, path: str = "main.cf"):
    return postfix.parse(SourceFile(path, FileKind.POSTFIX_MAIN, text))


def master_cf(text: str, path: str = "master.cf"):
    return postfix.parse(SourceFile(path, FileKind.POSTFIX_MASTER, text))


def dms_master(text: str, path: str = "postfix-master.cf"):
    return postfix.parse(SourceFile(path, FileKind.DMS_POSTFIX_MASTER, text, dms_override=True))


def script(text: str, path: str = "user-patches.sh"):
    return user_patches.parse(SourceFile(path, FileKind.DMS_USER_PATCHES, text, dms_override=True))


# --------------------------------------------------------------------------------------------
# main.cf
# --------------------------------------------------------------------------------------------


def test_main_entries_with_exact_spans():
    parsed = main_cf("# header\nmyhostname = mail.example.com\n\nrelayhost =\n")
    assert parsed.ok
    first, second = parsed.tree.entries
    assert (first.name, first.value) == ("myhostname", "mail.example.com")
    assert first.span == Span("main.cf", 2, 1, 2, 11)
    assert first.value_span == Span("main.cf", 2, 14, 2, 30)
    assert (second.name, second.value, second.value_span) == ("relayhost", "", None)
    assert [(c.line, c.text) for c in parsed.comments] == [(1, "# header")]


def test_continuation_joins_as_written_and_skips_inner_comments():
    text = "mynetworks = 127.0.0.0/8\n  # a comment inside the value\n    [::1]/128 # not a comment\nnext = 1\n"
    parsed = main_cf(text)
    entry = parsed.tree.values()["mynetworks"]
    # no separator is added and the continuation's leading blanks are kept
    assert entry.value == "127.0.0.0/8    [::1]/128 # not a comment"
    assert entry.span == Span("main.cf", 1, 1, 1, 11)
    assert entry.value_span == Span("main.cf", 1, 14, 3, 30)
    assert parsed.tree.values()["next"].span.line == 4
    assert [c.line for c in parsed.comments] == [2]


def test_blanks_around_equals_and_value_with_equals():
    entry = main_cf("a\t=  b = c  \n").tree.entries[0]
    assert (entry.name, entry.value) == ("a", "b = c")
    assert entry.value_span == Span("main.cf", 1, 6, 1, 11)


def test_last_definition_wins():
    parsed = main_cf("a = 1\na = 2\n")
    assert parsed.tree.values()["a"].value == "2"
    assert parsed.tree.values()["a"].span.line == 2


def test_leading_whitespace_before_first_entry_is_ignored_not_an_error():
    parsed = main_cf("  indented = x\nfoo = bar\n")
    assert parsed.ok
    assert [e.name for e in parsed.tree.entries] == ["foo"]
    assert parsed.tree.ignored == [Span("main.cf", 1, 1, 1, 15)]


def test_missing_equals_is_refused_at_the_offending_word():
    parsed = main_cf("a = b\nbad line here\n")
    assert parsed.tree is None
    (problem,) = parsed.problems
    assert problem.span == Span("main.cf", 2, 5)
    assert problem.message.startswith("unexpected 'line'; expected '='")
    assert "missing '=' after attribute name" in problem.message


def test_missing_name_is_refused():
    parsed = main_cf("= value\n")
    assert parsed.tree is None
    assert parsed.problems[0].span == Span("main.cf", 1, 1)
    assert "missing attribute name" in parsed.problems[0].message


def test_error_inside_a_continued_line_points_at_the_continuation():
    parsed = main_cf("foo\n  bar = x\n")
    assert parsed.tree is None
    assert parsed.problems[0].span == Span("main.cf", 2, 3)


# --------------------------------------------------------------------------------------------
# master.cf
# --------------------------------------------------------------------------------------------

MASTER = """\
# service type  private unpriv  chroot  wakeup  maxproc command + args
smtp      inet  n       -       y       -       1       postscreen
submission inet n       -       y       -       -       smtpd
  -o syslog_name=postfix/submission
  # a comment between options
  -o { smtpd_client_restrictions = permit_sasl_authenticated, reject }
  -osmtpd_tls_security_level=encrypt
[::1]:10026 inet n      -       n       -       -       smtpd # note
pickup    unix  n       -       y       60?     1       pickup
"""


def test_master_entries_fields_and_options():
    parsed = master_cf(MASTER)
    assert parsed.ok
    smtp, submission, local, pickup = parsed.tree.entries
    assert (smtp.service, smtp.type, smtp.command, smtp.process_limit) == ("smtp", "inet", "postscreen", "1")
    assert smtp.span == Span("master.cf", 2, 1, 2, 5)
    # M1: the comment line inside the entry is dropped; one entry with three options
    assert [(o.name, o.value) for o in submission.options] == [
        ("syslog_name", "postfix/submission"),
        ("smtpd_client_restrictions", "permit_sasl_authenticated, reject"),
        ("smtpd_tls_security_level", "encrypt"),
    ]
    assert submission.options[0].span == Span("master.cf", 4, 3, 4, 36)
    assert submission.options[1].span == Span("master.cf", 6, 3, 6, 71)
    assert submission.options[2].span == Span("master.cf", 7, 3, 7, 37)
    assert submission.line_span.line == 3 and submission.line_span.end_line == 7
    # M4 and M2: bracketed IPv6 host; '#' after text is a daemon argument
    assert local.service == "[::1]:10026"
    assert [w.text for w in local.args] == ["#", "note"]
    # M5: conditional wakeup
    assert pickup.wakeup == "60?"


def test_space_after_comma_splits_an_option_into_a_stray_argument():
    entry = master_cf("s inet n - n - - smtpd -o smtpd_client_restrictions=permit_mynetworks, reject\n").tree.entries[0]
    assert [(o.name, o.value) for o in entry.options] == [("smtpd_client_restrictions", "permit_mynetworks,")]
    assert entry.args[-1].text == "reject"


def test_braces_inside_a_word_stay_one_argument():
    text = "x unix - n n - - pipe\n  -o syslog_name=${multi_instance_name?{$multi_instance_name}:{postfix}}/$service_name\n"
    entry = master_cf(text).tree.entries[0]
    assert entry.options[0].value == "${multi_instance_name?{$multi_instance_name}:{postfix}}/$service_name"


def test_o_brace_without_space_is_flagged_and_read_as_the_daemon_reads_it():
    parsed = master_cf("s inet n - n - - smtpd -o{smtpd_upstream_proxy_protocol=haproxy}\n")
    assert parsed.tree is not None
    assert parsed.tree.entries[0].options[0].name == "{smtpd_upstream_proxy_protocol"
    assert parsed.problems[0].span == Span("master.cf", 1, 24, 1, 65)
    assert "does not unwrap" in parsed.problems[0].message


def test_unbalanced_brace_is_a_problem_but_postconf_keeps_the_file():
    parsed = master_cf("s inet n - n - - smtpd -o { a = b\n")
    assert parsed.tree is not None
    assert parsed.problems[0].span == Span("master.cf", 1, 27)
    assert "missing '}'" in parsed.problems[0].message


def test_bad_field_count_refuses_the_file():
    parsed = master_cf("smtp inet n - n - 1 postscreen\nfoo inet\n")
    assert parsed.tree is None
    (problem,) = parsed.problems
    assert problem.span == Span("master.cf", 2, 9)
    assert problem.message.startswith("unexpected end of entry after 2 fields; expected the private field")
    assert "bad field count" in problem.message


@pytest.mark.parametrize("line, column, field", [
    ("foo bogus n - n - 1 smtpd", 5, "type"),
    ("smtp inet q - n - 1 postscreen", 11, "private"),
    ("smtp inet n - maybe - 1 postscreen", 15, "chroot"),
    ("smtp inet n - n x 1 postscreen", 17, "wakeup"),
    ("smtp inet n - n - PH_MAX postscreen", 19, "process_limit"),
])
def test_invalid_field_values_refuse_the_file(line, column, field):
    parsed = master_cf(line + "\n")
    assert parsed.tree is None
    assert parsed.problems[0].span.line == 1 and parsed.problems[0].span.column == column
    assert f"in the {field} field" in parsed.problems[0].message


def test_option_without_equals_is_a_problem():
    parsed = master_cf("s inet n - n - - smtpd -o x\n")
    assert parsed.tree.entries[0].options == ()
    assert "expected name=value" in parsed.problems[0].message


# --------------------------------------------------------------------------------------------
# docker-mailserver postfix-master.cf
# --------------------------------------------------------------------------------------------


def test_dms_override_lines_and_skipped_lines():
    text = ("smtp/inet/postscreen_upstream_proxy_protocol=haproxy\n"
            "    # indented comment\n"
            "  submission/inet/smtpd_upstream_proxy_protocol = haproxy  \n"
            "Submission/inet/smtpd_upstream_proxy_protocol=haproxy\n"
            "[::1]:10026/inet/x=y\n"
            "-o/inet/x=y\n")
    parsed = dms_master(text)
    assert parsed.ok
    lines = parsed.tree.lines
    assert [(l.service, l.type, l.parameter, l.value) for l in lines[:2]] == [
        ("smtp", "inet", "postscreen_upstream_proxy_protocol", "haproxy"),
        ("submission", "inet", "smtpd_upstream_proxy_protocol", "haproxy"),
    ]
    assert lines[1].span == Span("postfix-master.cf", 3, 3, 3, 58)
    assert [l.applies for l in lines] == [True, True, False, False, False]
    assert "uppercase" in lines[2].skipped
    assert "'['" in lines[3].skipped
    assert "'-'" in lines[4].skipped
    assert [c.line for c in parsed.comments] == [2]


def test_dms_override_whitespace_in_value_does_not_apply():
    parsed = dms_master("submission/inet/smtpd_client_restrictions=permit_sasl_authenticated, reject\n")
    assert parsed.tree is not None  # DMS carries on with the next line
    line = parsed.tree.lines[0]
    assert not line.applies
    assert parsed.problems[0].span == Span("postfix-master.cf", 1, 69)
    assert "does not accept whitespace in parameter value" in parsed.problems[0].message


def test_dms_override_wrong_number_of_parts():
    parsed = dms_master("submission/smtpd_upstream_proxy_protocol=haproxy\n")
    assert not parsed.tree.lines[0].applies
    assert "expected '/'" in parsed.problems[0].message


# --------------------------------------------------------------------------------------------
# user-patches.sh
# --------------------------------------------------------------------------------------------

SEED_PATCHES = """\
#!/bin/bash
set -euo pipefail

# Duplicate the config for the submission(s) service ports (587 / 465)
postconf -Mf submission/inet | sed -e s/^submission/10587/ -e 's/submission/submission-proxyprotocol/' >> /etc/postfix/master.cf
postconf -Mf submissions/inet | sed -e s/^submissions/10465/ -e 's/submissions/submissions-proxyprotocol/' >> /etc/postfix/master.cf
postconf -P 10587/inet/smtpd_upstream_proxy_protocol=haproxy
postconf -P 10465/inet/smtpd_upstream_proxy_protocol=haproxy

postconf -Mf smtp/inet | sed -e s/^smtp/12525/ >> /etc/postfix/master.cf
postconf -P 12525/inet/postscreen_upstream_proxy_protocol=haproxy 12525/inet/syslog_name=smtp-proxyprotocol
postconf -e 'postscreen_cache_map = proxy:btree:$data_directory/postscreen_cache'
echo "patched"
sed -i 's/^#submission/submission/' /etc/postfix/master.cf
"""


def test_user_patches_commands_of_the_seed():
    parsed = script(SEED_PATCHES)
    commands = parsed.tree.commands
    kinds = [type(c).__name__ for c in commands]
    assert kinds == ["ServiceClone", "ServiceClone", "ServiceParameterEdit", "ServiceParameterEdit",
                     "ServiceClone", "ServiceParameterEdit", "ServiceParameterEdit", "MainEdit"]
    clone = commands[0]
    assert (clone.service, clone.type, clone.folded) == ("submission", "inet", True)
    assert clone.span == Span("user-patches.sh", 5, 1, 5, 129)
    several = commands[5:7]
    assert [(c.service, c.parameter, c.value) for c in several] == [
        ("12525", "postscreen_upstream_proxy_protocol", "haproxy"), ("12525", "syslog_name", "smtp-proxyprotocol")]
    assert several[0].span.line == several[1].span.line == 11
    assert (commands[7].name, commands[7].value) == ("postscreen_cache_map", "proxy:btree:$data_directory/postscreen_cache")
    assert [(n.span.line, n.text) for n in parsed.tree.not_analyzed] == [
        (14, "sed -i 's/^#submission/submission/' /etc/postfix/master.cf")]


def test_sed_substitutions_apply_like_sed():
    clone = script(SEED_PATCHES).tree.commands[0]

    def run(line: str) -> str:
        for substitution in clone.substitutions:
            line = substitution.apply(line)
        return line

    assert run("submission inet  n       -       n       -       -       smtpd") == (
        "10587 inet  n       -       n       -       -       smtpd")
    assert run("    -o syslog_name=postfix/submission") == "    -o syslog_name=postfix/submission-proxyprotocol"


def test_sed_bre_groups_and_ampersand():
    command = script("postconf -M smtp/inet | sed 's/^\\(smtp\\) /2&\\1 /g' >> /etc/postfix/master.cf\n").tree.commands[0]
    assert command.substitutions[0].apply("smtp inet") == "2smtp smtp inet"


def test_unknown_shell_lines_are_not_analyzed():
    parsed = script("#!/bin/sh\nset -e\ncp /tmp/x /etc/postfix/main.cf\npostconf -F smtp/inet/chroot=y\n"
                    "postconf -Mf smtp/inet | sed -e s/^smtp/2525/ > /etc/postfix/master.cf\n")
    assert parsed.tree.commands == []
    assert [n.span.line for n in parsed.tree.not_analyzed] == [3, 4, 5]


def test_postconf_master_edit_and_removal():
    parsed = script("postconf -M '127.0.0.1:10026/inet=127.0.0.1:10026 inet n - n - - smtpd'\npostconf -MX smtps/inet\n")
    edit, removal = parsed.tree.commands
    assert (edit.service, edit.action, edit.entry) == ("127.0.0.1:10026", "set", "127.0.0.1:10026 inet n - n - - smtpd")
    assert (removal.service, removal.type, removal.action) == ("smtps", "inet", "remove")


# --------------------------------------------------------------------------------------------
# Corpus agreement with the real postconf
# --------------------------------------------------------------------------------------------


def _corpus_rows():
    manifest = CORPUS / "manifest.tsv"
    if not manifest.is_file():
        return []
    rows = []
    for row in csv.DictReader(manifest.open(encoding="utf-8"), delimiter="\t"):
        kind = _corpus_kind(row)
        if kind is not None:
            rows.append(pytest.param(row, kind, id=Path(row["path"]).name[:80]))
    return rows


def _corpus_kind(row) -> FileKind | None:
    if row["type"] == "postfix-main":
        return FileKind.POSTFIX_MAIN
    if row["type"] == "postfix-master":
        return FileKind.POSTFIX_MASTER
    if row["type"] == "postfix-dms-override" and "oracle=postfix" in row["notes"]:
        return FileKind.DMS_POSTFIX_MASTER if "checked with --main" in row["notes"] else FileKind.POSTFIX_MAIN
    return None


@pytest.mark.skipif(not (CORPUS / "manifest.tsv").is_file(), reason="../shared/corpus not available")
@pytest.mark.parametrize("row, kind", _corpus_rows())
def test_corpus_agrees_with_postconf(row, kind):
    text = (CORPUS / row["path"]).read_text(encoding="utf-8")
    parsed = postfix.parse(SourceFile(row["path"], kind, text))
    verdict = row["oracle_verdict"]
    if verdict.startswith("accepted") and row["is_template"] == "no":
        assert parsed.ok, parsed.problems
    elif verdict.startswith("rejected") and "postconf: fatal" in verdict:
        assert parsed.tree is None
        line = _daemon_line(verdict, text)
        assert line in {p.span.line for p in parsed.problems}


def _daemon_line(verdict: str, text: str) -> int:
    """The line postconf named, or the line holding the entry it quoted."""
    match = re.search(r"line (\d+)", verdict)
    if match:
        return int(match.group(1))
    quoted = re.search(r'field "([^"]+)" in "', verdict).group(1)
    return next(n for n, line in enumerate(text.splitlines(), 1) if quoted in line)
