"""The SARIF 2.1.0 reporter (`--format sarif`), shaped for GitHub code scanning.

The log is built from sarif-om objects (the attrs classes generated from the SARIF schema) and
turned into JSON by `to_json_dict`, a small walker of our own: sarif-om has no serializer, and
`jschema_to_python` would add an unmaintained dependency. This module is imported only when SARIF
is asked for, because `import sarif_om` is slow.

What GitHub needs and why it is done this way (see docs/ and the SARIF spec):
- one run, every enabled rule in `tool.driver.rules` with descriptions and help, so alerts have a
  page even when the rule found nothing this time;
- repo-relative, percent-encoded URIs anchored to `%SRCROOT%`;
- cross-file findings: the file to edit is `locations[0]`, the other side goes to
  `relatedLocations`, and the message links to them (`[path:line](id)`), since GitHub only shows
  related locations that the message links to;
- a namespaced, content-based `partialFingerprints` entry, so an alert survives lines moving and
  GitHub still computes its own `primaryLocationLineHash`;
- deterministic output (sorted, no timestamps), so golden files stay stable. The one
  machine-dependent value is `originalUriBaseIds["%SRCROOT%"]` (the working directory).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path, PurePosixPath
from typing import Any, TextIO
from urllib.parse import quote

from mailproxy_lint.api import Finding, Rule, Severity
from mailproxy_lint.engine import RunResult
from mailproxy_lint.model import Span

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "mailproxy-lint"
INFORMATION_URI = "https://github.com/mailproxy-lint/mailproxy-lint"
RULE_HELP_URI = INFORMATION_URI + "/blob/main/docs/rules/{id}.md"
SRCROOT = "%SRCROOT%"
# Namespaced so GitHub still computes (and never argues with) its own primaryLocationLineHash.
FINGERPRINT_KEY = "mailproxy-lint/v1"
AUTOMATION_ID = "mailproxy-lint/"
DESCRIPTION_LIMIT = 1024  # GitHub truncates/refuses longer shortDescription/fullDescription
DEFAULT_PRECISION = "high"

LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}


def write_sarif(result: RunResult, out: TextIO) -> None:
    """Write `result` as one SARIF 2.1.0 log to `out`."""
    log = build_log(result, Path.cwd())
    json.dump(to_json_dict(log), out, indent=2)
    out.write("\n")


# --------------------------------------------------------------------------------------------
# Building the log
# --------------------------------------------------------------------------------------------


def build_log(result: RunResult, cwd: Path):
    """The sarif-om `SarifLog` for `result`; `cwd` anchors relative paths (%SRCROOT%)."""
    import sarif_om as om

    rules = _rules_for(result)
    rule_index = {r.id: i for i, r in enumerate(rules)}
    texts = _file_texts(result)
    findings = sorted(result.findings, key=Finding.sort_key)
    # suppressed findings only with --include-suppressed: GitHub shows them as open alerts
    hidden = sorted(result.suppressed, key=lambda s: s.finding.sort_key()) if result.include_suppressed else []
    fingerprints = _fingerprints(findings + [s.finding for s in hidden], texts)
    run = om.Run(
        tool=om.Tool(driver=om.ToolComponent(
            name=TOOL_NAME,
            version=result.version,
            semantic_version=result.version,
            information_uri=INFORMATION_URI,
            rules=[_descriptor(r) for r in rules],
        )),
        automation_details=om.RunAutomationDetails(id=AUTOMATION_ID),
        column_kind="unicodeCodePoints",
        invocations=[om.Invocation(execution_successful=True)],
        original_uri_base_ids={SRCROOT: om.ArtifactLocation(uri=cwd.as_uri().rstrip("/") + "/")},
        results=[
            _result(f, rule_index[f.rule_id], fp, texts, cwd)
            for f, fp in zip(findings, fingerprints)
        ] + [
            _suppressed_result(s, rule_index[s.finding.rule_id], fp, texts, cwd)
            for s, fp in zip(hidden, fingerprints[len(findings):])
        ],
    )
    return om.SarifLog(runs=[run], version="2.1.0", schema_uri=SCHEMA_URI)


def _rules_for(result: RunResult) -> list:
    """Every enabled rule, plus a bare entry for any finding whose rule is not among them.

    The engine only reports enabled rules, but a result whose ruleId is missing from `rules`
    makes the whole log invalid for GitHub, so a stray one is described rather than dropped.
    """
    rules: list = list(result.rules)
    known = {r.id for r in rules}
    for finding in result.findings + [s.finding for s in result.suppressed]:
        if finding.rule_id not in known:
            known.add(finding.rule_id)
            rules.append(_BareRule(finding))
    return rules


class _BareRule:
    """Just enough of a `Rule` to describe a finding whose rule is not in `result.rules`."""

    tags: tuple[str, ...] = ()
    security_severity = None
    doc = ""

    def __init__(self, finding: Finding):
        self.id = finding.rule_id
        self.name = finding.rule_name
        self.severity = finding.severity
        self.summary = finding.rule_name.replace("-", " ").capitalize()

    def sections(self) -> dict[str, str]:
        return {}


def _descriptor(rule: Rule):
    import sarif_om as om

    page = rule.doc.strip() or rule.summary
    tags = list(rule.tags)
    properties: dict[str, Any] = {"precision": getattr(rule, "precision", None) or DEFAULT_PRECISION}
    if rule.security_severity is not None:
        properties["security-severity"] = f"{rule.security_severity:.1f}"
        if "security" not in tags:
            tags.append("security")
    properties["tags"] = tags
    return om.ReportingDescriptor(
        id=rule.id,
        name=rule.name,
        short_description=om.MultiformatMessageString(text=_clip(rule.summary)),
        full_description=om.MultiformatMessageString(text=_clip(_full_description(rule))),
        help=om.MultiformatMessageString(text=page, markdown=page),
        help_uri=RULE_HELP_URI.format(id=rule.id),
        default_configuration=om.ReportingConfiguration(level=LEVELS[rule.severity]),
        properties=properties,
    )


def _full_description(rule: Rule) -> str:
    """The first paragraph of "Why it matters", on one line; the summary when there is none."""
    why = rule.sections().get("Why it matters", "").strip()
    if not why:
        return rule.summary
    first = re.split(r"\n\s*\n", why, maxsplit=1)[0]
    return " ".join(first.split())


def _clip(text: str) -> str:
    return text if len(text) <= DESCRIPTION_LIMIT else text[: DESCRIPTION_LIMIT - 1] + "…"


def _result(finding: Finding, rule_index: int, fingerprint: str, texts: dict[str, str], cwd: Path):
    import sarif_om as om

    related = [
        om.Location(
            id=number,
            physical_location=_physical_location(r.span, texts, cwd),
            message=om.Message(text=r.message),
        )
        for number, r in enumerate(finding.related, start=1)
    ]
    return om.Result(
        rule_id=finding.rule_id,
        rule_index=rule_index,
        level=LEVELS[finding.severity],
        message=om.Message(text=_message_text(finding)),
        locations=[om.Location(physical_location=_physical_location(finding.span, texts, cwd))],
        related_locations=related or None,
        partial_fingerprints={FINGERPRINT_KEY: fingerprint},
    )


def _suppressed_result(hidden, rule_index: int, fingerprint: str, texts: dict[str, str], cwd: Path):
    """A result an inline comment suppressed, marked as such with the comment's reason."""
    import sarif_om as om

    result = _result(hidden.finding, rule_index, fingerprint, texts, cwd)
    result.suppressions = [om.Suppression(kind="inSource", justification=hidden.justification)]
    return result


def _message_text(finding: Finding) -> str:
    """The finding's message, with an embedded link to every related location (SARIF §3.11.6).

    Link destinations are the related locations' ids; literal brackets are escaped so a consumer
    does not mistake them for links.
    """
    text = _escape_brackets(finding.message.strip())
    if not finding.related:
        return text
    links = ", ".join(
        f"[{_escape_brackets(f'{r.span.path}:{r.span.line}')}]({number})"
        for number, r in enumerate(finding.related, start=1)
    )
    if text and text[-1] not in ".!?":
        text += "."
    return f"{text} Related: {links}."


def _escape_brackets(text: str) -> str:
    return text.replace("[", "\\[").replace("]", "\\]")


# --------------------------------------------------------------------------------------------
# Locations
# --------------------------------------------------------------------------------------------


def _physical_location(span: Span, texts: dict[str, str], cwd: Path):
    import sarif_om as om

    uri, base = artifact_uri(span.path, cwd)
    return om.PhysicalLocation(
        artifact_location=om.ArtifactLocation(uri=uri, uri_base_id=base),
        region=_region(span, texts.get(span.path)),
    )


def artifact_uri(path: str, cwd: Path) -> tuple[str, str | None]:
    """(uri, uriBaseId) for a display path.

    Paths inside the working directory become percent-encoded relative URIs against
    `%SRCROOT%` (what GitHub maps onto the repository); anything else becomes an absolute
    `file:` URI, which GitHub also accepts, rather than a `../` that would escape the root.
    """
    posix = path.replace(os.sep, "/") if os.sep != "/" else path
    pure = PurePosixPath(posix)
    if not pure.is_absolute() and ".." not in pure.parts:
        return quote(pure.as_posix(), safe="/"), SRCROOT  # PurePosixPath drops "./" and "//"
    absolute = Path(os.path.normpath(cwd / posix))
    return absolute.as_uri(), None


def _region(span: Span, text: str | None):
    """A SARIF region; the end is never before the start, and always present (GitHub wants it)."""
    import sarif_om as om

    start_line, start_column = max(span.line, 1), max(span.column, 1)
    end_line = max(span.end_line or start_line, start_line)
    end_column = span.end_column
    if end_column is None:
        # Same line: one character. A later line with no column: up to that line's end.
        end_column = start_column + 1 if end_line == start_line else len(_line(text, end_line)) + 1
    if end_line == start_line and end_column <= start_column:
        end_column = start_column + 1
    return om.Region(start_line=start_line, start_column=start_column,
                     end_line=end_line, end_column=end_column)


# --------------------------------------------------------------------------------------------
# Fingerprints
# --------------------------------------------------------------------------------------------


def _file_texts(result: RunResult) -> dict[str, str]:
    return {f.path: f.text for d in result.deployments for f in d.files}


def _line(text: str | None, number: int) -> str:
    if not text or number < 1:
        return ""
    lines = text.split("\n")
    return lines[number - 1].rstrip("\r") if number <= len(lines) else ""


def _fingerprints(findings: list[Finding], texts: dict[str, str]) -> list[str]:
    """Content fingerprints, computed as for baselines (`baseline.fingerprints`)."""
    from mailproxy_lint.baseline import fingerprints

    return fingerprints(findings, texts)


# --------------------------------------------------------------------------------------------
# Serializing sarif-om objects
# --------------------------------------------------------------------------------------------

# Defaults that still carry meaning: a result's level omitted would fall back to the rule's
# default level, so a warning from an error rule would display as an error.
_KEEP_DEFAULT = {"level"}


def to_json_dict(value: Any) -> Any:
    """Plain JSON data for a sarif-om object tree.

    attrs fields are renamed to their schema names; None and default values are dropped (so
    sarif-om's filler defaults such as `rank: -1` or `kind: "fail"` never leak); dicts
    (property bags, fingerprints, uri base ids) keep their keys as written.
    """
    import attr

    if attr.has(type(value)):
        data = {}
        for field in attr.fields(type(value)):
            item = getattr(value, field.name)
            if item is None or (field.name not in _KEEP_DEFAULT and item == _default(field)):
                continue
            data[field.metadata["schema_property_name"]] = to_json_dict(item)
        if "$schema" in data:  # readers expect the log to open with $schema and version
            data = {"$schema": data.pop("$schema"), "version": data.pop("version"), **data}
        return data
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"SARIF property bag with a non-string key: {value!r}")
        return {k: to_json_dict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_dict(v) for v in value]
    if isinstance(value, (str, bool, int, float)):
        return value
    raise TypeError(f"cannot put {type(value).__name__} into SARIF: {value!r}")


def _default(field) -> Any:
    import attr

    default = field.default
    if isinstance(default, attr.Factory):  # type: ignore[arg-type]
        return default.factory()
    return default if default is not attr.NOTHING else _NO_DEFAULT


_NO_DEFAULT = object()
