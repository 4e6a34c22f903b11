"""YAML parsing: positioned nodes, merges, documents, comments, syntax errors, corpus agreement."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from mailproxy_lint.model import FileKind, SourceFile, Span
from mailproxy_lint.parse import parse_file
from mailproxy_lint.parse.yamlfile import YamlMap, YamlScalar, YamlSeq, YamlTree

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus"


def parse(text: str, kind: FileKind = FileKind.COMPOSE, path: str = "compose.yaml"):
    return parse_file(SourceFile(path, kind, text))


COMPOSE = """\
x-restart: &restart   # shared settings
  restart: always
services:
  mailserver:
    <<: *restart
    image: "ghcr.io/docker-mailserver/docker-mailserver:15.0.0"  # pinned
    restart: unless-stopped
    labels:
      - traefik.tcp.routers.smtp.rule=HostSNI(`*`)
      - 'traefik.enable=true'
    command: |
      echo "# not a comment"
"""


def test_key_and_value_spans():
    parsed = parse(COMPOSE)
    assert parsed.ok
    service = parsed.tree.root.get("services").get("mailserver")
    image = service.get("image")
    assert isinstance(image, YamlScalar)
    assert image.text == "ghcr.io/docker-mailserver/docker-mailserver:15.0.0"
    assert image.style == '"'
    assert image.span("compose.yaml") == Span("compose.yaml", 6, 12, 6, 64)
    key, _ = service.entry("image")
    assert (key.line, key.column) == (6, 5)
    labels = service.get("labels")
    assert isinstance(labels, YamlSeq)
    assert [(item.line, item.column, item.text) for item in labels.items] == [
        (9, 9, "traefik.tcp.routers.smtp.rule=HostSNI(`*`)"),
        (10, 9, "traefik.enable=true"),
    ]


def test_position_inside_a_scalar():
    labels = parse(COMPOSE).tree.root.get("services").get("mailserver").get("labels")
    plain, quoted = labels.items
    assert plain.position_of(len("traefik.tcp.routers.smtp.rule=")) == (9, 39)
    assert quoted.position_of(0) == (10, 10)  # after the opening quote


def test_merge_keys_and_explicit_keys_win():
    service = parse(COMPOSE).tree.root.get("services").get("mailserver")
    assert service.keys() == ["restart", "image", "labels", "command"]
    restart = service.get("restart")
    assert restart.text == "unless-stopped" and restart.line == 7
    anchor_only = parse("a: &x {k: 1}\nb:\n  <<: *x\n").tree.root.get("b")
    assert anchor_only.get("k").value == 1 and anchor_only.get("k").line == 1


def test_scalar_typing_follows_yaml_1_2():
    root = parse("a: true\nb: yes\nc: 25\nd:\ne: '25'\nf: 1.5\n").tree.root
    assert root.get("a").value is True and root.get("a").as_text() == "true"
    assert root.get("b").value == "yes"  # YAML 1.2: not a boolean
    assert root.get("c").value == 25 and root.get("e").value == "25"
    assert root.get("d").is_null and root.get("d").as_text() == ""
    assert root.get("f").value == 1.5


def test_case_insensitive_lookup():
    root = parse("entryPoints:\n  smtp:\n    address: ':25'\n", FileKind.TRAEFIK_STATIC, "traefik.yml").tree.root
    assert root.get("entrypoints") is None
    assert root.get_ci("ENTRYPOINTS").get("smtp").get("address").text == ":25"


def test_multi_document_kubernetes():
    text = "apiVersion: v1\nkind: Service\n---\n# empty\n---\napiVersion: traefik.io/v1alpha1\nkind: IngressRouteTCP\n"
    tree = parse(text, FileKind.KUBERNETES, "k8s.yaml").tree
    assert isinstance(tree, YamlTree)
    assert len(tree.documents) == 3
    assert tree.documents[1].root.is_null  # a document holding only a comment
    kind = tree.documents[2].root.get("kind")
    assert (kind.text, kind.line, kind.column) == ("IngressRouteTCP", 7, 7)


def test_custom_tags_are_recorded_not_executed():
    root = parse("a: !!python/object/apply:os.system ['true']\nb: !reset null\n").tree.root
    assert isinstance(root.get("a"), YamlSeq)
    assert root.get("a").tag == "tag:yaml.org,2002:python/object/apply:os.system"
    assert root.get("b").tag == "!reset"


def test_recursive_anchor_does_not_loop():
    root = parse("a: &x\n  - *x\n").tree.root
    outer = root.get("a")
    assert outer.items[0] is outer


def test_comments_are_collected_outside_scalars():
    comments = parse(COMPOSE).comments
    assert [(c.line, c.column, c.text) for c in comments] == [
        (1, 23, "# shared settings"),
        (6, 66, "# pinned"),
    ]


def test_empty_file_has_no_documents():
    parsed = parse("")
    assert parsed.ok and parsed.tree.documents == [] and parsed.tree.root is None


@pytest.mark.parametrize(
    ("text", "line", "column", "found"),
    [
        ("services:\n  a:\n    image: x\n[...]\n    ports: []\n", 4, 1, "unexpected '[...]'; expected ':'"),
        ("a: b\n  c: d\n", 2, 4, "unexpected ':'"),
        ("a: [b, c\n", 2, 1, "unexpected end of file; expected ',' or ']'"),
        ("{% if x %}\n", 1, 2, "unexpected character '%'"),
        ("a: *nowhere\n", 1, 4, "unexpected undefined alias 'nowhere'"),
        ("a:\n\t- b\n", 2, 1, "unexpected character '\\t'"),
    ],
)
def test_syntax_errors(text, line, column, found):
    parsed = parse(text)
    assert parsed.tree is None
    (problem,) = parsed.problems
    assert (problem.span.line, problem.span.column) == (line, column)
    assert problem.message.startswith(found)
    assert "(YAML: " in problem.message  # the parser's own words are kept


def test_syntax_error_keeps_whole_line_comments():
    parsed = parse("# mailproxy-lint: disable-file=MPL001\na: b\n  c: d\n")
    assert parsed.tree is None
    assert [c.text for c in parsed.comments] == ["# mailproxy-lint: disable-file=MPL001"]


def test_never_raises_on_control_characters():
    parsed = parse('a: "b\x01"\n')
    assert parsed.tree is None
    assert parsed.problems[0].span.line == 1
    assert parsed.problems[0].message.startswith("unexpected character '\\x01'")


# --------------------------------------------------------------------------------------------
# Corpus agreement: PyYAML's verdict on real files (syntax only)
# --------------------------------------------------------------------------------------------

YAML_TYPES = {"traefik-compose": FileKind.COMPOSE, "traefik-dynamic": FileKind.TRAEFIK_DYNAMIC,
              "traefik-k8s": FileKind.KUBERNETES, "traefik-static": FileKind.TRAEFIK_STATIC}


def _corpus_rows():
    manifest = CORPUS / "manifest.tsv"
    if not manifest.exists():
        return []
    with manifest.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [r for r in rows if r["type"] in YAML_TYPES and "PyYAML" in r["notes"]]


@pytest.mark.skipif(not _corpus_rows(), reason="../shared corpus not available")
@pytest.mark.parametrize("row", _corpus_rows(), ids=lambda r: Path(r["path"]).name[-60:])
def test_corpus_agrees_with_pyyaml(row):
    path = CORPUS / row["path"]
    parsed = parse(path.read_text(encoding="utf-8"), YAML_TYPES[row["type"]], row["path"])
    if row["oracle_verdict"] == "syntax-ok":
        assert parsed.ok, parsed.problems
        assert isinstance(parsed.tree.root, (YamlMap, YamlSeq))
    else:
        assert parsed.tree is None
        # PyYAML's marks: "<context> ..., line N, column M <problem> ..., line N, column M". The
        # line to fix is the problem's, except for an unfinished key (the key's own line).
        marks = [(int(a), int(b)) for a, b in re.findall(r", line (\d+), column (\d+)", row["oracle_verdict"])]
        expected = marks[0] if "simple key" in row["oracle_verdict"] else marks[-1]
        span = parsed.problems[0].span
        assert (span.line, span.column) == expected
