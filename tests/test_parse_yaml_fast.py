"""libyaml (the fast path) and ruamel.yaml (the reference) must give the same node trees.

`parse/yamlfile.py` composes with libyaml when it can and with ruamel.yaml otherwise. On every
YAML file of the corpus and the fixtures, and on snippets chosen for the places where YAML 1.1
and 1.2 or the two scanners could differ, the fast path either declines or yields exactly the
tree, tags, positions and comments ruamel.yaml yields.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailproxy_lint.model import FileKind, SourceFile
from mailproxy_lint.parse import yamlfile
from mailproxy_lint.parse.yamlfile import YamlMap, YamlScalar, YamlSeq

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus" / "files"

yaml = pytest.importorskip("yaml")
pytestmark = pytest.mark.skipif(not getattr(yaml, "__with_libyaml__", False), reason="PyYAML without libyaml")


def _yaml_files() -> list[Path]:
    found = [p for p in (REPO / "tests" / "fixtures").rglob("*") if p.suffix in (".yml", ".yaml")]
    found += [p for p in (REPO / "examples").rglob("*") if p.suffix in (".yml", ".yaml")]
    if CORPUS.is_dir():
        found += [p for d in CORPUS.iterdir() if d.name.startswith("traefik-") for p in d.iterdir() if p.is_file()]
    return sorted(p for p in found if p.is_file())


FILES = _yaml_files()


def shape(node, seen=None) -> object:
    """A wrapped node as nested tuples: kind, position, tag, text/style, children."""
    seen = {} if seen is None else seen
    if node is None:
        return None
    if id(node) in seen:  # an alias: the same node again
        return ("alias", seen[id(node)])
    seen[id(node)] = len(seen)
    where = (node.line, node.column, node.end_line, node.end_column, node.tag)
    if isinstance(node, YamlScalar):
        return ("scalar", where, node.text, node.style)
    if isinstance(node, YamlSeq):
        return ("seq", where, tuple(shape(item, seen) for item in node.items))
    assert isinstance(node, YamlMap)
    return ("map", where, tuple((shape(k, seen), shape(v, seen)) for k, v in node.pairs))


def both(text: str):
    source = SourceFile("f.yaml", FileKind.COMPOSE, text)
    reference = yamlfile._parse_ruamel(source)
    fast = yamlfile.parse(source)
    return reference, fast


def same(text: str) -> bool:
    reference, fast = both(text)
    assert (reference.tree is None) == (fast.tree is None)
    assert reference.problems == fast.problems
    assert reference.comments == fast.comments
    if reference.tree is not None:
        assert [shape(d.root) for d in fast.tree.documents] == [shape(d.root) for d in reference.tree.documents]
    return True


def test_there_are_files_to_compare():
    assert len(FILES) > 20


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_files_read_the_same(path):
    assert same(path.read_text(encoding="utf-8", errors="replace"))


def test_most_files_take_the_fast_path():
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in FILES]
    fast = [t for t in texts if yamlfile.compose_libyaml(t) is not None]
    assert len(fast) >= 0.6 * len(texts), (len(fast), len(texts))


SNIPPETS = [
    "ports:\n  - 25:25\n  - 0o17\n  - 0x1F\n  - 1_000\n  - 012\n  - 1:30:00\n",  # 1.1 vs 1.2 numbers
    "a: yes\nb: on\nc: y\nd: True\ne: FALSE\nf: ~\ng: null\nh:\ni: 1.5\nj: .inf\nk: -.5e3\nl: 2001-12-14\n",
    "base: &b {x: 1, y: [1, 2]}\nderived:\n  <<: *b\n  y: 3\nagain: *b\n",
    "folded: >\n  one\n  two\n\n  three\nliteral: |-\n  a\n   b\nkeep: |+\n  c\n\n",
    "q1: 'it''s'\nq2: \"tab\\there \\u00e9\"\nplain: a b # comment\nurl: http://x/#frag\n",
    "---\na: 1\n---\n---\n- b\n...\n",
    "k: \u00e9t\u00e9 caf\u00e9\nnext: [\u00e9, {z: 1}]\n",
    "multi: this is\n  a plain\n  multi-line scalar\nother: x\n",
    "key with spaces: 1\n? complex\n: value\n",
    "crlf: 1\r\nnext: 2\r\n",
    "a:   # nothing here\n  # nor here\nb:\n- \n- x\nc: {d: , e: 1}\nf: [g, ]\nlast:\n",
    "outer:\n  inner:\n\n# trailing comment\n",
    "rule: HostSNI(`*`) && !PathPrefix(`/x`)\ncron: 0 * * * *\nurl: a?b=1&c=2\n",
    "k: # empty, then a comment\nnext: 1\n", ">\n#not a comment here\n",
    "\ufeffbom: 1\n",
    "",
    "# only a comment\n",
    # syntax errors: the fast path must decline and ruamel explain
    "a: b: c\n", "a:\n\t- tab\n", "[1, 2\n", "a: 'open\n", "x: *nope\n", "- a\nb: c\n",
    "a: 1\n a: 2\n", "key: [a, b]]\n", "a: @x\n",
]


@pytest.mark.parametrize("text", SNIPPETS)
def test_snippets_read_the_same(text):
    assert same(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="a1:-  #\n\n   []{},'\"|>&*?\t\\.~@`\u00e9()", max_size=30))
def test_generated_texts_read_the_same(text):
    assert same(text)


def test_explicit_tags_and_directives_go_to_ruamel():
    assert yamlfile.compose_libyaml("a: !reset\n") is None
    assert yamlfile.compose_libyaml("%YAML 1.1\n---\na: yes\n") is None
    assert yamlfile.compose_libyaml("a: 1\n") is not None
