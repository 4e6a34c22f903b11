"""Stages 4-5 and the pipeline: load -> parse -> build -> link -> check.

`run()` is the one entry point the CLI (and the tests) call. It returns a `RunResult` holding
everything a reporter needs; reporters only format it.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path

from mailproxy_lint import __version__
from mailproxy_lint.api import Context, Finding, Rule
from mailproxy_lint.model import Deployment, FileKind


class RuleSelectionError(ValueError):
    """An unknown rule id or name in --select/--ignore."""


@dataclass
class RunResult:
    findings: list[Finding]
    rules: list[Rule]  # every enabled rule, in catalog order
    files: list[str]  # display paths of every file read
    deployments: list[Deployment] = field(default_factory=list)
    version: str = __version__


def all_rules() -> list[Rule]:
    """Every rule shipped in `mailproxy_lint.rules`, sorted by id. Fails on a duplicate id."""
    import mailproxy_lint.rules as package

    found: dict[str, Rule] = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, Rule):
                if value.id in found and found[value.id] is not value:
                    raise RuntimeError(f"duplicate rule id {value.id}")
                found[value.id] = value
    return sorted(found.values(), key=lambda r: r.id)


def resolve_rules(rules: list[Rule], names: list[str]) -> set[str]:
    """Ids for a list of ids, names or id prefixes (MPL1 = the MPL1xx family)."""
    ids: set[str] = set()
    for raw in names:
        token = raw.strip()
        if not token:
            continue
        matched = {r.id for r in rules if r.id == token.upper() or r.name == token.lower()}
        if not matched and token.upper().startswith("MPL"):
            matched = {r.id for r in rules if r.id.startswith(token.upper())}
        if token.upper() == "ALL":
            matched = {r.id for r in rules}
        if not matched:
            raise RuleSelectionError(f"unknown rule {token!r} (see --list-rules)")
        ids |= matched
    return ids


def select_rules(select: list[str] | None, ignore: list[str] | None) -> list[Rule]:
    rules = all_rules()
    chosen = resolve_rules(rules, select) if select else {r.id for r in rules}
    chosen -= resolve_rules(rules, ignore or [])
    return [r for r in rules if r.id in chosen]


def analyse(root: str, paths: list[Path], forced_kind: FileKind | None = None) -> Deployment:
    """Everything up to the model: load, parse, build, link."""
    from mailproxy_lint.build import build
    from mailproxy_lint.link import link
    from mailproxy_lint.load import load
    from mailproxy_lint.parse import parse_file

    loaded = load(paths, forced_kind)
    parsed = [parse_file(source) for source in loaded.sources]
    model = build(root, parsed)
    model.problems[:0] = loaded.problems
    return model.freeze(link(model))


def check(deployment: Deployment, rules: list[Rule], options: dict[str, dict] | None = None) -> list[Finding]:
    findings: list[Finding] = []
    for rule_ in rules:
        ctx = Context(deployment, rule_, (options or {}).get(rule_.id, {}))
        findings.extend(rule_.check(ctx) or ())
    return findings


def run(paths: list[Path], *, select: list[str] | None = None, ignore: list[str] | None = None,
        forced_kind: FileKind | None = None) -> RunResult:
    rules = select_rules(select, ignore)
    findings: list[Finding] = []
    files: list[str] = []
    deployments: list[Deployment] = []
    # Each directory given is one deployment; files named directly are checked together.
    dirs = [p for p in paths if not p.is_file()]
    named_files = [p for p in paths if p.is_file()]
    groups = [(str(d), [d]) for d in dirs]
    if named_files:
        groups.append((str(named_files[0].parent), named_files))
    for root, group in groups:
        deployment = analyse(root, group, forced_kind)
        deployments.append(deployment)
        files.extend(f.path for f in deployment.files)
        findings.extend(check(deployment, rules))
    unique = sorted(set(findings), key=Finding.sort_key)
    return RunResult(unique, rules, sorted(set(files)), deployments)
