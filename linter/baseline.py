"""Baselines: record today's findings, then report only new ones (`--write-baseline`, `--baseline`).

A finding is recognised by its fingerprint, not its line number: a hash of the rule id, the
file's path and the whitespace-normalised text of the reported line, plus an occurrence number
among identical hashes. Lines can move (a setting added above) without a baselined finding
coming back; changing the flagged line itself makes it new, which is the point. The same
`fingerprints` function gives SARIF its `partialFingerprints`, so a code-scanning alert and a
baseline entry agree on what "the same finding" is.

In a baseline file, paths are relative to the file's own folder, so the baseline works from
any working directory. The file is JSON, versioned, sorted and indented: it diffs well.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from mailproxy_lint.api import Finding

FORMAT_VERSION = 1
TOOL = "mailproxy-lint"


class BaselineError(ValueError):
    """A baseline file that cannot be read or used."""


def fingerprints(findings: list[Finding], texts: dict[str, str],
                 path_key: Callable[[str], str] | None = None) -> list[str]:
    """One `hash:n` per finding: rule id + path + the reported line's text, not its number.

    Whitespace is normalised so re-indenting changes nothing. `n` counts identical hashes in
    the order given, keeping two findings on identical lines apart. `texts` maps display paths
    to file contents; `path_key` turns a display path into the path that goes into the hash.
    """
    seen: dict[str, int] = {}
    prints = []
    for finding in findings:
        path = finding.span.path
        line = " ".join(_line(texts.get(path), finding.span.line).split())
        key = "\0".join((finding.rule_id, path_key(path) if path_key else path, line))
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
        seen[digest] = seen.get(digest, 0) + 1
        prints.append(f"{digest}:{seen[digest]}")
    return prints


def _line(text: str | None, number: int) -> str:
    if not text or number < 1:
        return ""
    lines = text.split("\n")
    return lines[number - 1].rstrip("\r") if number <= len(lines) else ""


@dataclass(frozen=True, order=True)
class Entry:
    path: str  # relative to the baseline file's folder
    rule: str
    fingerprint: str
    message: str  # for the reader of the file; not used for matching

    @property
    def key(self) -> tuple[str, str, str]:
        return self.path, self.rule, self.fingerprint


class Baseline:
    """Fingerprints the findings of a run against one baseline file's location."""

    def __init__(self, file: Path, texts: dict[str, str], sources: dict[str, str]):
        self.file = file
        self.folder = Path(os.path.abspath(file)).parent
        self.texts = texts
        self.sources = sources  # display path -> absolute path

    def entries(self, findings: Iterable[Finding]) -> list[Entry]:
        ordered = sorted(findings, key=Finding.sort_key)
        prints = fingerprints(ordered, self.texts, self.relative)
        return [Entry(self.relative(f.span.path), f.rule_id, fp, f.message) for f, fp in zip(ordered, prints)]

    def relative(self, display: str) -> str:
        absolute = self.sources.get(display) or os.path.abspath(display)
        return Path(os.path.relpath(absolute, self.folder)).as_posix()

    def render(self, findings: Iterable[Finding]) -> tuple[str, int]:
        """The baseline file's text for `findings`, and how many entries it holds."""
        entries = sorted(self.entries(findings))
        document = {
            "version": FORMAT_VERSION,
            "tool": TOOL,
            "findings": [{"path": e.path, "rule": e.rule, "fingerprint": e.fingerprint, "message": e.message}
                         for e in entries],
        }
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n", len(entries)

    def read(self) -> Counter:
        """The (path, rule, fingerprint) keys the file records."""
        try:
            document = json.loads(self.file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise BaselineError(f"{self.file}: cannot read baseline: {exc.strerror or exc}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            where = f":{exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
            raise BaselineError(f"{self.file}{where}: not a baseline file (invalid JSON: {exc})") from None
        return Counter(e for e in _entries(document, self.file))

    def split(self, findings: list[Finding]) -> tuple[list[Finding], list[Finding]]:
        """(new findings, baselined findings)."""
        known = self.read()
        new, old = [], []
        ordered = sorted(findings, key=Finding.sort_key)
        for finding, entry in zip(ordered, self.entries(ordered)):
            if known[entry.key] > 0:
                known[entry.key] -= 1
                old.append(finding)
            else:
                new.append(finding)
        return new, old


def _entries(document, file: Path) -> Iterable[tuple[str, str, str]]:
    if not isinstance(document, dict) or document.get("tool") != TOOL or "findings" not in document:
        raise BaselineError(f"{file}: not a mailproxy-lint baseline (expected an object with \"tool\": \"{TOOL}\")")
    if document.get("version") != FORMAT_VERSION:
        raise BaselineError(f"{file}: baseline version {document.get('version')!r} is not supported "
                            f"(expected {FORMAT_VERSION}); write it again with --write-baseline")
    findings = document["findings"]
    if not isinstance(findings, list):
        raise BaselineError(f"{file}: \"findings\" must be a list")
    for number, item in enumerate(findings, start=1):
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("path", "rule", "fingerprint")):
            raise BaselineError(f"{file}: finding {number} needs string \"path\", \"rule\" and \"fingerprint\"")
        yield item["path"], item["rule"], item["fingerprint"]
