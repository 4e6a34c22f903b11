"""Real repositories' deployments, rebuilt from the corpus, compared with reviewed golden output.

The corpus (`../shared/corpus`) holds single files from public repositories, each with the
repository it came from and its path there (`repo`, `path_in_repo` in `manifest.tsv`). Here the
files of one repository that belong together are put back in their original layout in a temporary
directory, the engine runs on that directory as the CLI would, and the text output is compared
with `fixtures/corpus-deployments/<name>.expected.txt`. Paths in the output are relative to the
rebuilt root, so the goldens do not depend on where the test runs.

Each golden starts with `#` lines, one per finding, saying in one sentence why the finding is
right (the fact it rests on) or why it is accepted as a note. The rest of the file is the exact
output. `pytest --update-golden` rewrites the output part and keeps those lines; review the diff
and write a justification for every new finding.

What is rebuilt:
* only files that exist in the repository as files: blocks cut out of documentation pages
  (`*.md`, `*.rst`) and augeas test strings are snippets, not deployments (the seed tutorials are
  covered by `test_scenarios.py`);
* templates are included where the repository ships them beside real files, as a user's checkout
  would hold them: the linter must say it could not read them (MPL001 / MPL005), not guess;
* when a repository holds several independent examples, each example folder (or file) is its own
  deployment;
* when a path appears at several commits, the newest copy of the corpus is used unless the
  deployment names another commit.
"""
from __future__ import annotations

import csv
import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import SHARED

from mailproxy_lint.engine import run
from mailproxy_lint.report import write_text

CORPUS = SHARED / "corpus"
GOLDEN = Path(__file__).parent / "fixtures" / "corpus-deployments"
SNIPPET_SOURCES = (".md", ".rst", ".aug")  # files whose corpus entries are cut-out blocks


@dataclass(frozen=True)
class Deployment:
    """Files of one repository that are deployed together.

    `folders`: path prefixes inside the repository ("" = all of it); a prefix without a trailing
    slash names one file. `commit`: only files from this commit (a prefix of the hash).
    """

    name: str
    repo: str
    folders: tuple[str, ...] = ("",)
    commit: str | None = None


TRAEFIK_REFERENCE = "docs/content/reference/"

DEPLOYMENTS = (
    Deployment("danwin-mail-hosting", "DanWin/mail-hosting", ("etc/",)),
    Deployment("danwin-mail-hosting-clearnet-proxy", "DanWin/mail-hosting", ("etc_clearnet_proxy/",)),
    Deployment("prodekanus-docker-compose", "DatalogiskStudenterforeningAarhusUni/prodekanus-docker-compose"),
    Deployment("feministwiki", "FeministWiki/FeministWiki"),
    Deployment("grapheneos-mail", "GrapheneOS/mail.grapheneos.org"),
    Deployment("harisekhon-haproxy-configs", "HariSekhon/HAProxy-configs"),
    Deployment("mailu-core", "Mailu/Mailu"),
    Deployment("websurfinmurf-docker-mailserver", "WebSurfinMurf/docker-mailserver"),
    Deployment("c-bv-stacks", "c-bv/stacks"),
    Deployment("dms-image", "docker-mailserver/docker-mailserver", ("target/",)),
    Deployment("dms-compose", "docker-mailserver/docker-mailserver", ("compose.yaml", "config-examples/")),
    Deployment("dms-test-dsn", "docker-mailserver/docker-mailserver", ("test/config/dsn/",)),
    Deployment("dms-test-override-configs", "docker-mailserver/docker-mailserver", ("test/config/override-configs/",)),
    Deployment("dms-test-smtp-delivery", "docker-mailserver/docker-mailserver", ("test/config/smtp-delivery/",)),
    Deployment("dms-helm-chart", "docker-mailserver/docker-mailserver-helm"),
    Deployment("dovecot-example-config", "dovecot/core", ("doc/example-config/",)),
    Deployment("haproxy-examples", "haproxy/haproxy", ("examples/",)),
    Deployment("haproxy-tests-conf", "haproxy/haproxy", ("tests/conf/",)),
    Deployment("hardware-mailserver", "hardware/mailserver"),
    Deployment("iredmail-samples", "iredmail/iRedMail"),
    Deployment("jeboehm-image", "jeboehm/docker-mailserver", ("target/", ".github/")),
    Deployment("jeboehm-compose-traefik", "jeboehm/docker-mailserver", ("docs/example-configs/compose/traefik-reverse-proxy/",)),
    Deployment("jeboehm-kubernetes-traefik", "jeboehm/docker-mailserver", ("deploy/kustomize/ingress/traefik/", "test/k8s/")),
    Deployment("lucaswerkmeister-server-etc", "lucaswerkmeister/server-etc"),
    Deployment("mailinabox", "mail-in-a-box/mailinabox"),
    Deployment("mailcow", "mailcow/mailcow-dockerized", commit="0642467"),
    Deployment("mailcow-master-older", "mailcow/mailcow-dockerized", commit="5f04dc0"),
    Deployment("modoboa-installer", "modoboa/modoboa-installer"),
    Deployment("namgun-workspace", "namgun18/namgun-workspace"),
    Deployment("pure1337-stalwart-traefik", "puRe1337/stalwart-traefik-example"),
    Deployment("stalwart-config", "stalwartlabs/mail-server", ("resources/config/",), commit="55e62a6"),
    Deployment("stalwart-config-modular", "stalwartlabs/mail-server", ("resources/config/",), commit="c1bdd4f"),
    Deployment("stalwart-tests-proxy-protocol", "stalwartlabs/mail-server", ("tests/resources/proxy-protocol/",)),
    Deployment("stalwart-tests-smtp-config", "stalwartlabs/mail-server", ("tests/resources/smtp/config/",)),
    Deployment("tobiasbenkner-mail-server", "tobiasbenkner/mail-server"),
    # Traefik's reference pages list every option once in TOML and once in YAML: two alternatives
    Deployment("traefik-reference-dynamic-toml", "traefik/traefik", (f"{TRAEFIK_REFERENCE}dynamic-configuration/file.toml",)),
    Deployment("traefik-reference-dynamic-yaml", "traefik/traefik", (f"{TRAEFIK_REFERENCE}dynamic-configuration/file.yaml",)),
    Deployment("traefik-reference-static-toml", "traefik/traefik", (f"{TRAEFIK_REFERENCE}static-configuration/file.toml",)),
    Deployment("traefik-reference-static-yaml", "traefik/traefik", (f"{TRAEFIK_REFERENCE}static-configuration/file.yaml",)),
    Deployment("traefik-integration-k8s", "traefik/traefik", ("integration/fixtures/k8s/",)),
    # Traefik's integration fixtures: each file is one whole Traefik configuration
    *(Deployment(f"traefik-integration-{name}", "traefik/traefik", (f"integration/fixtures/{folder}/{name}.toml",))
      for folder, name in (("proxy-protocol", "proxy-protocol"), ("tcp", "catch-all-no-tls"), ("tcp", "ip-allowlist"),
                           ("tcp", "mixed"), ("tcp", "non-tls"), ("tcp", "postgres-starttls"))),
    Deployment("traefik-crd-proxyprotocol", "traefik/traefik", ("pkg/provider/kubernetes/crd/fixtures/tcp/with_proxyprotocol.yml",)),
    Deployment("traefik-crd-servers-transport", "traefik/traefik", ("pkg/provider/kubernetes/crd/fixtures/tcp/with_servers_transport.yml",)),
    Deployment("traefik-crd-tls-passthrough", "traefik/traefik", ("pkg/provider/kubernetes/crd/fixtures/tcp/with_tls_passthrough.yml",)),
    Deployment("virgo-apps", "univrs-cloud/virgo-apps"),
    Deployment("vdukhovni-postfix", "vdukhovni/postfix"),
)


def manifest_rows() -> list[dict[str, str]]:
    manifest = CORPUS / "manifest.tsv"
    if not manifest.is_file():
        return []
    with manifest.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _in(deployment: Deployment, row: dict[str, str]) -> bool:
    where = row["path_in_repo"]
    return (row["repo"] == deployment.repo
            and not where.endswith(SNIPPET_SOURCES)
            and (deployment.commit is None or row["commit"].startswith(deployment.commit))
            and any(where == f or (f.endswith("/") or f == "") and where.startswith(f) for f in deployment.folders))


def files_of(deployment: Deployment, rows: list[dict[str, str]]) -> dict[str, Path]:
    """path in the repository -> corpus file. Of several copies of one path (different commits),
    the corpus's own copy wins over those it marks `__at_<commit>`."""
    chosen: dict[str, Path] = {}
    for row in rows:
        if not _in(deployment, row):
            continue
        where = row["path_in_repo"]
        if where in chosen and "__at_" in row["path"]:
            continue
        chosen[where] = CORPUS / row["path"]
    return chosen


def assemble(deployment: Deployment, rows: list[dict[str, str]], root: Path) -> list[str]:
    """Rebuild the deployment's layout under `root`; the repository paths written."""
    files = files_of(deployment, rows)
    for where, source in sorted(files.items()):
        target = root / where
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return sorted(files)


def lint_text(root: Path, monkeypatch) -> str:
    """The CLI's text report for `root`, with paths relative to it."""
    monkeypatch.chdir(root)
    out = io.StringIO()
    write_text(run([Path(".")]), out)
    return out.getvalue()


def justification_lines(golden: Path) -> list[str]:
    if not golden.is_file():
        return []
    return [line for line in golden.read_text(encoding="utf-8").splitlines(keepends=True) if line.startswith("#")]


def output_part(golden: Path) -> str:
    return "".join(line for line in golden.read_text(encoding="utf-8").splitlines(keepends=True)
                   if not line.startswith("#"))


def finding_lines(report: str) -> list[str]:
    return [line for line in report.splitlines() if line and not line.startswith((" ", "Found ", "No problems"))]


ROWS = manifest_rows()


@pytest.mark.skipif(not ROWS, reason="../shared/corpus not available (it lives beside the repository)")
@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d.name)
def test_deployment_output_matches_reviewed_golden(deployment, tmp_path, monkeypatch, update_golden):
    written = assemble(deployment, ROWS, tmp_path)
    assert written, f"no corpus file matches {deployment}"
    report = lint_text(tmp_path, monkeypatch)
    assert "Traceback" not in report
    golden = GOLDEN / f"{deployment.name}.expected.txt"
    if update_golden:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text("".join(justification_lines(golden)) + report, encoding="utf-8")
    assert golden.is_file(), f"{golden} missing: run pytest --update-golden and review it"
    assert report == output_part(golden)


@pytest.mark.skipif(not ROWS, reason="../shared/corpus not available (it lives beside the repository)")
@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d.name)
def test_every_finding_has_a_justification(deployment):
    golden = GOLDEN / f"{deployment.name}.expected.txt"
    if not golden.is_file():
        pytest.skip(f"{golden.name} not written yet")
    findings = finding_lines(output_part(golden))
    reasons = justification_lines(golden)
    assert len(reasons) == len(findings), (
        f"{golden.name}: {len(findings)} findings but {len(reasons)} justification lines")


def test_every_golden_belongs_to_a_deployment():
    names = {d.name for d in DEPLOYMENTS}
    assert len(names) == len(DEPLOYMENTS), "deployment names must be unique"
    stale = sorted(p.name for p in GOLDEN.glob("*.expected.txt") if p.name.removesuffix(".expected.txt") not in names)
    assert not stale, f"goldens without a deployment: {stale}"


@pytest.mark.skipif(not ROWS, reason="../shared/corpus not available (it lives beside the repository)")
def test_every_real_file_of_the_corpus_is_in_some_deployment():
    """A new corpus file must be placed in a deployment (or its exclusion made explicit here)."""
    placed = {str(path) for d in DEPLOYMENTS for path in files_of(d, ROWS).values()}
    left = sorted(row["path"] for row in ROWS
                  if not row["path_in_repo"].endswith(SNIPPET_SOURCES) and str(CORPUS / row["path"]) not in placed
                  and row["path"] not in NOT_DEPLOYED)
    assert not left, f"corpus files in no deployment: {left}"


# Real files deliberately left out of every deployment, with the reason.
NOT_DEPLOYED = {
    # an autoconf input at an older commit than the example config; `dovecot.conf.in` is not a name
    # Dovecot reads, and the example config it becomes is deployed above
    "files/dovecot/dovecot__core__doc__dovecot.conf.in",
    # every Docker label key of Traefik with a placeholder value, not a compose file of a deployment
    "files/traefik-compose/traefik__traefik__docs__content__reference__dynamic-configuration__docker-labels.yml",
}
