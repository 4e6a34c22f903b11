"""Stages 4-5 and the pipeline: load -> parse -> build -> link -> check.

`run()` is the one entry point the CLI (and the tests) call. It returns a `RunResult` holding
everything a reporter needs; reporters only format it. The project configuration
(`config.Config`) shapes every stage: which files are read, which rules run with which options
and severities, versions and names the model takes as given. Inline suppressions are applied
here, after the rules (`suppressions.py`); baselines are the command line's business.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailproxy_lint import __version__
from mailproxy_lint.api import Context, Finding, Rule, Severity
from mailproxy_lint.config import Config
from mailproxy_lint.model import Deployment, FileKind


class RuleSelectionError(ValueError):
    """An unknown rule id or name in --select/--ignore."""


@dataclass(frozen=True)
class Suppressed:
    """A finding an inline comment suppressed, and the reason the comment gives."""

    finding: Finding
    justification: str


@dataclass
class RunResult:
    findings: list[Finding]
    rules: list[Rule]  # every enabled rule, in catalog order
    files: list[str]  # display paths of every file read
    deployments: list[Deployment] = field(default_factory=list)
    version: str = __version__
    suppressed: list[Suppressed] = field(default_factory=list)  # not in `findings`
    include_suppressed: bool = False  # reporters show `suppressed` too (--include-suppressed)
    baselined: int = 0  # findings left out of `findings` because the baseline records them
    config: str | None = None  # display path of the configuration file used


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


def select_rules(select: list[str] | None, ignore: list[str] | None, extend_select: list[str] | None = None,
                 config: Config | None = None) -> list[Rule]:
    """The enabled rules, each with the severity the configuration gives it.

    `--select` replaces the file's `select`; `extend-select` adds to whichever applies; ignores
    add up, except that a rule the command line names exactly is not ignored by the file.
    """
    config = config or Config()
    rules = all_rules()
    tokens = list(select or []) or list(config.select or [])
    chosen = resolve_rules(rules, tokens) if tokens else {r.id for r in rules}
    if tokens:
        chosen |= resolve_rules(rules, list(config.extend_select) + list(extend_select or []))
    named_on_command_line = {r.id for r in rules for t in (select or []) + (extend_select or [])
                             if t.strip().upper() == r.id or t.strip().lower() == r.name}
    chosen -= resolve_rules(rules, list(config.ignore)) - named_on_command_line
    chosen -= resolve_rules(rules, ignore or [])
    return [_with_rule_severity(r, config) for r in rules if r.id in chosen]


def _with_rule_severity(rule_: Rule, config: Config) -> Rule:
    level = config.severity.get(rule_.id)
    return dataclasses.replace(rule_, severity=Severity.parse(level)) if level else rule_


def analyse(root: str, paths: list[Path], forced_kind: FileKind | None = None, config: Config | None = None) -> Deployment:
    """Everything up to the model: load, parse, build, link."""
    from mailproxy_lint.build import build
    from mailproxy_lint.link import link
    from mailproxy_lint.load import load
    from mailproxy_lint.parse import parse_file

    exclude = config.excluded if config is not None and config.exclude else None
    loaded = load(paths, forced_kind, exclude=exclude)
    parsed = [parse_file(source) for source in loaded.sources]
    model = build(root, parsed, config)
    # the model holds what it needs of the syntax trees: free them before linking, so a large
    # tree's parse and its links never take memory at the same time
    del parsed
    model.problems[:0] = loaded.problems
    return model.freeze(link(model))


def check(deployment: Deployment, rules: list[Rule], options: dict[str, dict] | None = None,
          review: Any = None) -> list[Finding]:
    findings: list[Finding] = []
    for rule_ in rules:
        ctx = Context(deployment, rule_, (options or {}).get(rule_.id, {}), review if rule_.late else None)
        findings.extend(rule_.check(ctx) or ())
    return findings


def check_deployment(deployment: Deployment, rules: list[Rule], config: Config | None = None,
                     inline_suppressions: bool = True) -> tuple[list[Finding], list[Suppressed]]:
    """Run the rules on one deployment: (findings to report, findings suppressed inline).

    Order: the rules; `per-file-ignores`; the inline suppressions (judged against what is left);
    the late rules that report on those suppressions; severity overrides.
    """
    from mailproxy_lint.suppressions import review as review_suppressions, scan

    config = config or Config()
    enabled = {r.id for r in rules}
    sources = {f.path: f.abspath or f.path for f in deployment.files}

    def active(rule_id: str, path: str) -> bool:
        return rule_id in enabled and not config.ignored_here(rule_id, Path(sources.get(path, path)))

    found = [f for f in check(deployment, [r for r in rules if not r.late], config.options)
             if active(f.rule_id, f.span.path)]
    catalog = all_rules()
    directives = [d for source in deployment.files for d in scan(source, catalog)]
    review = review_suppressions(directives, found, allowed=inline_suppressions, active=active,
                                 judge_unused=not deployment.unknown)
    late = [f for f in check(deployment, [r for r in rules if r.late], config.options, review)
            if active(f.rule_id, f.span.path)]
    kept = [_with_severity(f, config) for f in review.kept + late]
    hidden = [Suppressed(_with_severity(f, config), d.reason) for f, d in review.suppressed]
    return kept, hidden


def _with_severity(finding: Finding, config: Config) -> Finding:
    level = config.severity.get(finding.rule_id)
    return dataclasses.replace(finding, severity=Severity.parse(level)) if level else finding


def run(paths: list[Path], *, select: list[str] | None = None, ignore: list[str] | None = None,
        forced_kind: FileKind | None = None, config: Config | None = None, extend_select: list[str] | None = None,
        inline_suppressions: bool = True, include_suppressed: bool = False) -> RunResult:
    rules = select_rules(select, ignore, extend_select, config)
    findings: list[Finding] = []
    suppressed: list[Suppressed] = []
    files: list[str] = []
    deployments: list[Deployment] = []
    # Each directory given is one deployment; files named directly are checked together.
    dirs = [p for p in paths if not p.is_file()]
    named_files = [p for p in paths if p.is_file()]
    groups = [(str(d), [d]) for d in dirs]
    if named_files:
        groups.append((str(named_files[0].parent), named_files))
    for root, group in groups:
        deployment = analyse(root, group, forced_kind, config)
        deployments.append(deployment)
        files.extend(f.path for f in deployment.files)
        kept, hidden = check_deployment(deployment, rules, config, inline_suppressions)
        findings.extend(kept)
        suppressed.extend(hidden)
    from mailproxy_lint.secrets import mask_run  # no report may echo a password from the files

    unique = sorted(set(findings), key=Finding.sort_key)
    hidden_unique = sorted(set(suppressed), key=lambda s: s.finding.sort_key())
    masked, deployments = mask_run(unique + [s.finding for s in hidden_unique], deployments)
    hidden_masked = [Suppressed(f, s.justification) for f, s in zip(masked[len(unique):], hidden_unique)]
    return RunResult(masked[: len(unique)], rules, sorted(set(files)), deployments, suppressed=hidden_masked,
                     include_suppressed=include_suppressed, config=config.path if config is not None else None)
