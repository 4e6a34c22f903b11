"""Real configuration files written by others: the linter must never crash on any of them.

The corpus lives in `../shared/corpus` (files plus `manifest.tsv`); these tests skip when it is
absent. Per-kind agreement with the daemons' own verdicts is tested beside each parser
(`test_parse_*.py`); here every file goes through the whole pipeline, as a user would run it.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
from conftest import SHARED

from mailproxy_lint.engine import run
from mailproxy_lint.model import FileKind

CORPUS = SHARED / "corpus"

# manifest type -> the kind the file is read as; None: not a format the linter reads
KIND_BY_TYPE = {
    "dovecot": FileKind.DOVECOT,
    "haproxy": FileKind.HAPROXY,
    "postfix-main": FileKind.POSTFIX_MAIN,
    "postfix-master": FileKind.POSTFIX_MASTER,
    "traefik-compose": FileKind.COMPOSE,
    "traefik-dynamic": FileKind.TRAEFIK_DYNAMIC,
    "traefik-k8s": FileKind.KUBERNETES,
    "traefik-static": FileKind.TRAEFIK_STATIC,
    "stalwart": FileKind.STALWART,
}


def dms_override_kind(path: str) -> FileKind:
    name = path.rsplit("__", 1)[-1]
    if name.startswith("dovecot"):
        return FileKind.DOVECOT
    if name.startswith("postfix-main"):
        return FileKind.POSTFIX_MAIN
    return FileKind.DMS_POSTFIX_MASTER


def manifest_rows():
    manifest = CORPUS / "manifest.tsv"
    if not manifest.is_file():
        return []
    with manifest.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


ROWS = manifest_rows()


@pytest.mark.skipif(not ROWS, reason="../shared/corpus not available")
def test_cli_over_the_whole_corpus_tree_never_crashes():
    proc = subprocess.run([sys.executable, "-m", "mailproxy_lint", "--format", "json", str(CORPUS / "files")],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode in (0, 1), proc.stderr
    assert proc.stderr == ""
    assert '"findings"' in proc.stdout


@pytest.mark.skipif(not ROWS, reason="../shared/corpus not available")
@pytest.mark.parametrize("row", ROWS, ids=lambda r: r["path"].rsplit("/", 1)[-1][:80])
def test_every_corpus_file_read_as_its_kind(row):
    if row["type"] == "postfix-dms-override":
        kind = dms_override_kind(row["path"])
    else:
        kind = KIND_BY_TYPE.get(row["type"])
    if kind is None:
        pytest.skip(f"type {row['type']!r} is not a format the linter reads")
    path = CORPUS / row["path"]
    result = run([path], forced_kind=kind)  # must not raise
    assert result.files, "the file was not read"
    for finding in result.findings:
        assert finding.span.line >= 1 and finding.span.column >= 1
        assert finding.message
