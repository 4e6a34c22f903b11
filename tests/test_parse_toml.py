"""The TOML reader: values equal tomllib's, positions are exact, TOML's "defined twice" rules hold.

tomllib (Python's standard TOML 1.0 parser) is the oracle: for every text it accepts our values
must be equal, and every text it rejects must give one MPL001 problem (`tree=None`). The texts are
the TOML files of ../shared/corpus (skipped when absent), hand-written edge cases, and texts
generated from random documents written in several TOML spellings.
"""
from __future__ import annotations

import csv
import datetime
import math
import tomllib

import pytest
from conftest import SHARED
from hypothesis import HealthCheck, given, settings, strategies as st

from mailproxy_lint.model import FileKind, SourceFile
from mailproxy_lint.parse import parse_file
from mailproxy_lint.parse.toml import TomlArray, TomlScalar, TomlTable, parse_text, to_python
from mailproxy_lint.parse.yamlfile import YamlMap, YamlScalar, YamlSeq, text_of

CORPUS = SHARED / "corpus"


def same(a, b) -> bool:
    """Deep equality that also checks types (1 vs 1.0 vs True) and treats nan as equal to nan."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, datetime.datetime):
        return a == b and a.utcoffset() == b.utcoffset()
    return a == b


def agrees_with_tomllib(text: str) -> None:
    parsed = parse_text(text)
    try:
        expected = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        assert parsed.tree is None, f"tomllib rejects ({exc}) but we accepted"
        assert len(parsed.problems) == 1
        return
    assert parsed.tree is not None, f"tomllib accepts but we reported {parsed.problems}"
    assert parsed.problems == []
    got = to_python(parsed.tree.root)
    assert same(got, expected), f"\n ours:    {got!r}\n tomllib: {expected!r}"


# --------------------------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------------------------


def corpus_toml_files():
    manifest = CORPUS / "manifest.tsv"
    if not manifest.is_file():
        return []
    with manifest.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [row for row in rows if row["type"] in ("stalwart", "traefik-static", "traefik-dynamic")
            and (row["path"].endswith(".toml") or row["type"] == "stalwart" or ".toml" in row["path"])]


CORPUS_FILES = corpus_toml_files()


@pytest.mark.skipif(not CORPUS_FILES, reason="../shared/corpus not available")
@pytest.mark.parametrize("row", CORPUS_FILES, ids=lambda r: r["path"].rsplit("/", 1)[-1][:70])
def test_corpus_file_values_equal_tomllib(row):
    text = (CORPUS / row["path"]).read_text(encoding="utf-8")
    agrees_with_tomllib(text)
    if row["oracle_verdict"].startswith("syntax-error"):
        # "... (at line 42, column 15)": the same place tomllib blames
        where = row["oracle_verdict"].rsplit("(at line ", 1)[1].rstrip(")")
        line, column = (int(part.split()[-1]) for part in where.split(","))
        problem = parse_text(text).problems[0]
        assert (problem.span.line, problem.span.column) == (line, column)


def test_corpus_has_toml_files_when_present():
    if not (CORPUS / "manifest.tsv").is_file():
        pytest.skip("../shared/corpus not available")
    assert len(CORPUS_FILES) >= 10


# --------------------------------------------------------------------------------------------
# Hand-written cases (valid and invalid), each checked against tomllib
# --------------------------------------------------------------------------------------------

EDGE_CASES = [
    # tables, dotted keys, quoted keys
    "[a.b.c]\n[a]\nb.d = 1", "[a]\nb.c = 1\n[a.b.d]", 'a."b.c".d = 1', "[ a . b ]\n[ a ]", '"" = 1', "''.x = 1",
    "1234 = 1\ntrue = 2\ninf = 3\n1.5 = 4", "a.b = 1\n[a.c]", "[a]\n[a.b]\n[a.b.c]\n[a.x]",
    # arrays of tables
    "[[a]]\nb = 1\n[[a]]\nb = 2", "[[a]]\n[a.b]\n[[a]]\n[a.b]", "[[a.b]]\n[a]\nc = 1", "[[a]]\n[[a.b]]\n[[a.b]]",
    # strings
    'a = "tab\\there \\u00e9 \\U0001F600 \\"q\\" \\\\"', "a = 'C:\\path'", 'a = """\nfirst\nsecond"""',
    'a = """\\\n    joined \\\n    words"""', "a = '''\nraw \\n'''", 'a = """x"""""', "a = '''a''b'''", 'a = """"""',
    "a = ''''''", 'a = "# not a comment" # a comment',
    # numbers, booleans, dates
    "a = 0xDEAD_beef\nb = 0o755\nc = 0b1101\nd = -17\ne = +99\nf = 1_000", "a = 6.626e-34\nb = -0.0\nc = 1e06\nd = 3.14_15",
    "a = inf\nb = -inf\nc = nan\nd = +nan", "a = true\nb = false",
    "a = 1979-05-27T07:32:00Z\nb = 1979-05-27T00:32:00.999999-07:00\nc = 1979-05-27 07:32:00\nd = 1979-05-27\ne = 00:32:00.5",
    "a = 1979-05-27t07:32:00z", "a = 07:32:00.1234567",
    # arrays and inline tables
    "a = [\n  1, # one\n  2,\n]\n", "a = [[1, 2], ['x'], [], [ ]]", "a = {}", "a = {b.c = 1, b.d = 2}",
    "a = [{x = 1}, {x = 2}]", "points = [ { x = 1, y = 2 }, { x = 7, y = 8 } ]",
    # invalid: defined twice
    "a = 1\na = 2", "[a]\n[a]", "[a]\nb.c = 1\n[a.b]", "[a.b]\nx = 1\n[a]\nb.y = 2", "a = {b = 1}\n[a]",
    "a = {b = 1}\na.c = 2", "a = {b = {c = 1}, b.d = 2}", "[[a]]\n[a]", "[a]\n[[a]]", "a = []\n[[a]]",
    "[[t.a]]\n[t]\na.x = 1", "a.b = 1\n[a]", "x = 1\n[x.y]", "a = [{b = 1}]\n[a.c]", "[[a.b]]\n[a]\nb.c = 1",
    # invalid: syntax
    "a = 1 b = 2", "a = 01", "a = 1__0", "a = 0x_1", "a = 1.", "a = .5", 'a = "\\x"', "a = 'x\n'",
    "a = [1,,2]", "a = [,]", "a = {b = 1,}", "a = {\nb = 1}", "trusted-networks = 10.0.0.0/8", "= 1", "[a",
    "a = 2021-13-01", "a = 2021-02-29", 'a = "\\uD800"', "a = 1979-05-27 07:32:00+24:00", "a = \"x\x01\"",
]


@pytest.mark.parametrize("text", EDGE_CASES)
def test_edge_case_agrees_with_tomllib(text):
    agrees_with_tomllib(text)


# --------------------------------------------------------------------------------------------
# Generated documents
# --------------------------------------------------------------------------------------------

KEYS = st.one_of(st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True), st.text(max_size=6))
SCALARS = st.one_of(
    st.text(max_size=12),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=True, width=64),
    st.booleans(),
    st.dates(),
    st.times(),
    st.datetimes(timezones=st.sampled_from([None, datetime.timezone.utc,
                                           datetime.timezone(datetime.timedelta(hours=-7, minutes=-30))])),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=3)), max_leaves=8)
DOCUMENTS = st.dictionaries(KEYS, VALUES, max_size=5)


def key_text(key: str, draw_style: int) -> str:
    if draw_style % 3 == 0 and key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key):
        return key
    if draw_style % 3 == 1 and all(c not in "'\n\r" and (c == "\t" or ord(c) >= 0x20) and ord(c) != 0x7F for c in key):
        return f"'{key}'"
    return basic_string(key)


def basic_string(text: str) -> str:
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}.get(c, f"\\u{ord(c):04X}"))
        elif 0xD800 <= ord(c) <= 0xDFFF:
            out.append("?")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def scalar_text(value, style: int) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if value >= 0 and style % 4 == 1:
            return hex(value)
        if value >= 0 and style % 4 == 2:
            return oct(value)
        if style % 4 == 3:
            return f"{value:_}"  # 1_000_000
        return str(value)
    if isinstance(value, float):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = repr(value)
        return text if any(c in text for c in ".eE") else text + ".0"
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep="T" if style % 2 else " ").replace("+00:00", "Z" if style % 3 else "+00:00")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if style % 3 == 1 and "'" not in value and all(c == "\t" or (ord(c) >= 0x20 and ord(c) != 0x7F) for c in value):
        return f"'{value}'"
    return basic_string(value)


def inline(value, style: int) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key_text(k, style)} = {inline(v, style + 1)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        sep = ",\n  " if style % 2 else ", "
        return "[" + sep.join(inline(v, style + 1) for v in value) + ("," if value and style % 5 == 0 else "") + "]"
    return scalar_text(value, style)


def document_text(doc: dict, style: int) -> str:
    """The document with scalars first, then each table as a `[header]` (or dotted keys)."""
    lines, tables = [], []
    for key, value in doc.items():
        if isinstance(value, dict) and value and style % 2 == 0:
            tables.append((key, value))
        else:
            lines.append(f"{key_text(key, style)} = {inline(value, style)}  # note")
    for key, table in tables:
        lines.append(f"\n[{key_text(key, style + 1)}]")
        for sub, value in table.items():
            lines.append(f"{key_text(sub, style)} = {inline(value, style + 2)}")
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENTS, st.integers(min_value=0, max_value=60))
def test_generated_documents_agree_with_tomllib(doc, style):
    agrees_with_tomllib(document_text(doc, style))


# --------------------------------------------------------------------------------------------
# Positions, messages, node interface
# --------------------------------------------------------------------------------------------

TRAEFIK = '''# static
[entryPoints.smtp]
  address = ":25"
  [entryPoints.smtp.proxyProtocol]
    trustedIPs = ["10.0.0.1", "10.0.0.2"]

[tcp.routers.mail]
  rule = "HostSNI(`*`)"   # catch-all
  entryPoints = ["smtp"]
  [tcp.routers.mail.tls]
    passthrough = true

[[tcp.services.mail.loadBalancer.servers]]
  address = "mail:25"
'''


def test_nodes_are_the_yaml_node_classes_with_exact_spans():
    parsed = parse_text(TRAEFIK, "traefik.toml")
    root = parsed.tree.root
    assert isinstance(root, YamlMap) and isinstance(root, TomlTable)
    smtp = root.get_ci("ENTRYPOINTS").get("smtp")
    address = smtp.get("address")
    assert isinstance(address, YamlScalar) and address.as_text() == ":25"
    assert (address.line, address.column, address.end_line, address.end_column) == (3, 13, 3, 18)
    assert address.position_of(0) == (3, 14)  # inside the quotes
    trusted = smtp.get_ci("proxyProtocol").get_ci("trustedips")
    assert isinstance(trusted, YamlSeq) and [text_of(i) for i in trusted.items] == ["10.0.0.1", "10.0.0.2"]
    assert trusted.span("traefik.toml").line == 5 and trusted.span("traefik.toml").column == 18
    router = root.get("tcp").get("routers").get("mail")
    assert (router.line, router.column) == (7, 1)  # the [tcp.routers.mail] header
    assert text_of(router.get("tls").get("passthrough")) == "true"
    servers = root.get("tcp").get("services").get("mail").get("loadBalancer").get("servers")
    assert isinstance(servers, TomlArray) and servers.of_tables
    assert text_of(servers.items[0].get("address")) == "mail:25"
    keys = [key for key, _ in root.get("tcp").get("routers").get("mail").pairs]
    assert [(k.text, k.line, k.column) for k in keys] == [("rule", 8, 3), ("entryPoints", 9, 3), ("tls", 10, 21)]


def test_comments_are_collected_outside_strings():
    parsed = parse_text(TRAEFIK)
    assert [(c.line, c.column, c.text) for c in parsed.comments] == [(1, 1, "# static"), (8, 27, "# catch-all")]
    assert parse_text('a = "#x" # y').comments[0].column == 10


def test_scalar_values_and_text():
    root = parse_text("v = 2\nb = true\nf = 1.50\nh = 0x1F\nd = 1979-05-27\n").tree.root
    assert isinstance(root.get("v"), TomlScalar)
    assert [root.get(k).value for k in "vbfhd"] == [2, True, 1.5, 31, datetime.date(1979, 5, 27)]
    assert [root.get(k).as_text() for k in "vbfhd"] == ["2", "true", "1.50", "31", "1979-05-27"]


@pytest.mark.parametrize("text, line, column, message", [
    ("a = 1\nb = 2\na = 3\n", 3, 1, "unexpected duplicate key 'a'; expected each key once per table (first set at line 1)"),
    ("[server.listener.smtp]\nbind = 1\n\n[server.listener.smtp]\n", 4, 18,
     "unexpected second definition of table [server.listener.smtp]; expected each table once (first defined at line 1)"),
    ("[a]\nb.c = 1\n[a.b]\n", 3, 4,
     "unexpected second definition of table [a.b]; expected each table once (first defined at line 2)"),
    ("a = {b = 1}\na.c = 2\n", 2, 1,
     "unexpected dotted key through 'a', which is an inline table (line 1); expected a key that is not defined elsewhere"),
    ("[a]\n[[a]]\n", 2, 3,
     "unexpected array of tables [[a]] where a table with its own header is already defined (line 1); expected a new name"),
    ("trusted-networks = 10.0.0.0/8\n", 1, 24, "unexpected '.'"),
    ("bind = [::]:25\n", 1, 9, "unexpected ':'"),
    ("a = 1 b = 2\n", 1, 7, "unexpected 'b'"),
    ("a = 2021-02-30\n", 1, 5, "unexpected date or time '2021-02-30' (day is out of range for month); "
                              "expected a valid calendar date and time"),
])
def test_errors_point_at_what_to_fix(text, line, column, message):
    parsed = parse_text(text, "config.toml")
    assert parsed.tree is None
    [problem] = parsed.problems
    assert (problem.span.path, problem.span.line, problem.span.column) == ("config.toml", line, column)
    assert problem.message.startswith(message)
    assert "expected" in problem.message


def test_unterminated_string_names_what_was_expected():
    [problem] = parse_text('rule = "HostSNI(`*`)\n').problems
    assert (problem.span.line, problem.span.column) == (1, 8)
    assert problem.message.startswith("unexpected '\"'; expected")


def test_dispatch_by_kind_and_suffix():
    toml_static = SourceFile("traefik.toml", FileKind.TRAEFIK_STATIC, '[entryPoints.smtp]\naddress = ":25"\n')
    yaml_static = SourceFile("traefik.yml", FileKind.TRAEFIK_STATIC, 'entryPoints:\n  smtp:\n    address: ":25"\n')
    stalwart = SourceFile("config", FileKind.STALWART, '[server.listener.smtp]\nbind = "[::]:25"\n')
    for source in (toml_static, yaml_static):
        root = parse_file(source).tree.root
        assert text_of(root.get_ci("entrypoints").get("smtp").get("address")) == ":25"
    assert isinstance(parse_file(toml_static).tree.root, TomlTable)
    assert isinstance(parse_file(stalwart).tree.root, TomlTable)


def test_crlf_and_never_raises_on_junk():
    assert to_python(parse_text("a = 1\r\nb = '''x\r\ny'''\r\n").tree.root) == {"a": 1, "b": "x\ny"}
    for junk in ["\x00", "[[[", "a = {{", '"""', "a = [\n", "[a]]", "a.=1", "\ufeff", "a = 1979-05-27T"]:
        parse_text(junk)  # must not raise
