"""Every rule against its fixture directories, plus the meta-tests that keep rules honest.

A case is a directory `tests/fixtures/rules/<ID>/<bad|good>-<slug>/` holding a real-looking
config tree. Expected findings of the rule under test are written in the files themselves:

    # expect: MPL101          the next non-annotation line must get an MPL101 finding
    # expect: MPL101, MPL103  several rules on that line
    # expect-file: MPL101     a finding somewhere in this file
    # expect-todo: MPL101     a known miss on the next line: reported as xfail, never silently

The runner runs the engine on the case directory exactly as the CLI would, and compares the set
of (file, line, rule) for the rule under test. `good-*` cases (near misses) must produce no
finding of that rule.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from mailproxy_lint.api import DOC_SECTIONS
from mailproxy_lint.engine import all_rules, run

FIXTURES = Path(__file__).parent / "fixtures" / "rules"
CATALOG = Path(__file__).resolve().parents[1].parent / "shared" / "spec" / "rules.md"
ANNOTATION = re.compile(r"#\s*expect(-file|-todo)?:\s*([A-Za-z0-9_,\s-]+?)\s*$")


def cases():
    for rule_dir in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):
        for case in sorted(p for p in rule_dir.iterdir() if p.is_dir()):
            yield pytest.param(rule_dir.name, case, id=f"{rule_dir.name}/{case.name}")


def annotations(case: Path):
    """(expected, todo, anywhere_in_file) sets of (path, line, rule) from the case's files."""
    expected, todo, in_file = set(), set(), set()
    for path in sorted(case.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(case).as_posix()
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        pending: list[tuple[str, str]] = []
        for number, line in enumerate(lines, start=1):
            match = ANNOTATION.search(line)
            if match:
                kind, ids = match.group(1) or "", [i.strip() for i in match.group(2).split(",") if i.strip()]
                if kind == "-file":
                    in_file |= {(rel, rid) for rid in ids}
                else:
                    pending += [(kind, rid) for rid in ids]
                continue
            for kind, rid in pending:
                (todo if kind == "-todo" else expected).add((rel, number, rid))
            pending = []
    return expected, todo, in_file


@pytest.mark.parametrize("rule_id, case", list(cases()))
def test_rule_fixture(rule_id, case, monkeypatch):
    monkeypatch.chdir(case)
    result = run([Path(".")])
    got = {(f.span.path, f.span.line, f.rule_id) for f in result.findings if f.rule_id == rule_id}
    expected, todo, in_file = annotations(case)
    expected = {e for e in expected if e[2] == rule_id}
    todo = {e for e in todo if e[2] == rule_id}
    in_file = {e for e in in_file if e[1] == rule_id}
    if case.name.startswith("good-"):
        assert not expected and not in_file, "a near-miss case must not carry expectations"
        assert got - todo == set(), f"near miss produced findings: {sorted(got)}"
        return
    located = {g for g in got if (g[0], g[2]) not in in_file}
    missing_files = {e for e in in_file if not any(g[0] == e[0] for g in got)}
    assert located - todo == expected, (
        f"\nunexpected: {sorted(located - expected - todo)}\nmissing: {sorted(expected - located)}")
    assert not missing_files, f"expected a finding in: {sorted(missing_files)}"
    if todo:
        pytest.xfail(f"known misses: {sorted(todo - got)}")


# --------------------------------------------------------------------------------------------
# Meta-tests
# --------------------------------------------------------------------------------------------

RULES = all_rules()


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rule_has_bad_and_good_cases(rule):
    folder = FIXTURES / rule.id
    names = [p.name for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []
    assert any(n.startswith("bad-") for n in names), f"{rule.id} has no bad-* fixture"
    assert any(n.startswith("good-") for n in names), f"{rule.id} has no good-* near-miss fixture"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_bad_cases_annotate_their_rule(rule):
    folder = FIXTURES / rule.id
    for case in (p for p in folder.iterdir() if p.is_dir() and p.name.startswith("bad-")):
        expected, todo, in_file = annotations(case)
        assert any(e[-1] == rule.id for e in expected | todo | in_file), f"{case} has no expect: {rule.id}"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rule_page_has_sections(rule):
    sections = rule.sections()
    for heading in DOC_SECTIONS:
        assert sections.get(heading, "").strip(), f"{rule.id} docstring lacks a '## {heading}' section"
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.name), "rule names are kebab-case"
    assert rule.summary and "\n" not in rule.summary


# Rules that extend the catalog: the next free ids of a catalog family, listed here one by one
# (id -> name, severity) so that every other rule is still checked against the catalog exactly.
EXTENSIONS = {
    "MPL006": ("invalid-suppression", "warning"),
    "MPL007": ("unused-suppression", "note"),
}


@pytest.mark.skipif(not CATALOG.is_file(), reason="../shared/spec/rules.md not available")
@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rule_matches_catalog(rule):
    catalog = CATALOG.read_text(encoding="utf-8")
    row = re.search(rf"^\| {rule.id}\b[^|]*\| ([a-z0-9-]+) \| ([a-z ()/:0-9]+?) \|", catalog, re.M)
    if rule.id in EXTENSIONS:
        assert not row, f"{rule.id} is now in the catalog: check it there and drop it from EXTENSIONS"
        family = rule.id[:4]
        assert re.search(rf"^\| {family}\d\d\b", catalog, re.M), f"{rule.id} extends no catalog family"
        assert (rule.name, str(rule.severity)) == EXTENSIONS[rule.id]
        return
    assert row, f"{rule.id} is not in the catalog"
    assert row.group(1) == rule.name
    assert row.group(2).split()[0] == str(rule.severity) or row.group(2).startswith("by product")


def test_rule_ids_are_unique_and_sorted():
    ids = [r.id for r in RULES]
    assert ids == sorted(set(ids))
