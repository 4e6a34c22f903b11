"""docs/rules/ is generated from the rule docstrings and must match them exactly.

When this fails after a rule changed, run `python docs/generate_rule_docs.py` and commit the
result. SARIF `helpUri` links point at these pages, so a missing page is a broken link in every
code-scanning alert of that rule.
"""
from __future__ import annotations

import difflib
import importlib.util
import io
from pathlib import Path

import pytest

from mailproxy_lint.api import Severity, rule
from mailproxy_lint.engine import RunResult, all_rules
from mailproxy_lint.sarif import RULE_HELP_URI, build_log, to_json_dict

REPO = Path(__file__).resolve().parents[1]
RULES_DOCS = REPO / "docs" / "rules"


def _load_generator():
    spec = importlib.util.spec_from_file_location("generate_rule_docs", REPO / "docs" / "generate_rule_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generator = _load_generator()


def test_committed_rule_pages_are_current():
    expected = generator.expected_files()
    problems = []
    for name, text in sorted(expected.items()):
        path = RULES_DOCS / name
        if not path.is_file():
            problems.append(f"docs/rules/{name} is missing")
            continue
        committed = path.read_text(encoding="utf-8")
        if committed != text:
            diff = difflib.unified_diff(committed.splitlines(), text.splitlines(), f"docs/rules/{name}",
                                        "generated", lineterm="", n=1)
            problems.append("\n".join(list(diff)[:20]))
    assert not problems, "run: python docs/generate_rule_docs.py\n" + "\n\n".join(problems)


def test_no_page_for_a_rule_that_does_not_exist():
    ids = {r.id for r in all_rules()}
    leftovers = [p.name for p in RULES_DOCS.glob("MPL*.md") if p.stem not in ids]
    assert not leftovers, f"pages without a rule (run the generator, it removes them): {leftovers}"


def test_every_sarif_help_uri_names_a_committed_page():
    log = to_json_dict(build_log(RunResult([], all_rules(), []), REPO))
    descriptors = log["runs"][0]["tool"]["driver"]["rules"]
    assert len(descriptors) == len(all_rules())
    prefix = RULE_HELP_URI.split("{id}")[0]
    repo_prefix = prefix[: prefix.index("/blob/main/") + len("/blob/main/")]
    for descriptor in descriptors:
        uri = descriptor["helpUri"]
        assert uri.startswith(repo_prefix), uri
        target = REPO / uri[len(repo_prefix):]
        assert target.is_file(), f"{descriptor['id']}: helpUri {uri} has no file {target.relative_to(REPO)}"
        assert target.read_text(encoding="utf-8").splitlines()[2] == f"# {descriptor['id']} {descriptor['name']}"


def test_index_lists_every_rule_with_a_link():
    index = (RULES_DOCS / "README.md").read_text(encoding="utf-8")
    for r in all_rules():
        assert f"| [{r.id}]({r.id}.md) | `{r.name}` | {r.severity} |" in index


# --------------------------------------------------------------------------------------------
# The generator itself, on a made-up rule
# --------------------------------------------------------------------------------------------


@rule("MPL999", "made-up-rule", Severity.WARNING, summary="A | pipe in a summary", tags=("demo",),
      facts=("XX01", "XX02"))
def made_up(ctx):
    """Text before the first section.

    ## Why it matters
    Because.

    ## Bad
    ```
    bad = yes
    ```

    ## Fix
    Set `bad = no`.
    """
    return ()


def test_page_layout():
    assert generator.render_page(made_up).splitlines() == [
        generator.GENERATED,
        "",
        "# MPL999 made-up-rule",
        "",
        "Severity: **warning** · Tags: `demo`",
        "",
        "A | pipe in a summary",
        "",
        "Text before the first section.",
        "",
        "## Why it matters",
        "",
        "Because.",
        "",
        "## Bad",
        "",
        "```",
        "bad = yes",
        "```",
        "",
        "## Fix",
        "",
        "Set `bad = no`.",
        "",
        "Facts: XX01, XX02",
    ]


def test_index_escapes_pipes():
    index = generator.render_index([made_up])
    assert "| [MPL999](MPL999.md) | `made-up-rule` | warning | A \\| pipe in a summary |" in index


def test_write_then_check_finds_a_stale_and_a_leftover_page(tmp_path, monkeypatch):
    directory = tmp_path / "rules"
    written = generator.write(directory)
    assert set(written) == set(generator.expected_files())
    assert generator.stale_files(directory) == []
    first = sorted(p for p in directory.glob("MPL*.md"))[0]
    first.write_text(first.read_text(encoding="utf-8") + "hand edit\n", encoding="utf-8")
    (directory / "MPL998.md").write_text("a removed rule\n", encoding="utf-8")
    assert generator.stale_files(directory) == sorted([first.name, "MPL998.md"])
    assert generator.write(directory) == sorted([first.name, "MPL998.md"])
    assert not (directory / "MPL998.md").exists()
    assert generator.stale_files(directory) == []


def test_check_mode_exit_status(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(generator, "RULES_DIR", tmp_path)
    assert generator.main(["--check"]) == 1  # empty directory: every page is missing
    assert "docs/rules/README.md is stale" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())  # --check writes nothing
    assert generator.main([]) == 0
    assert generator.main(["--check"]) == 0
