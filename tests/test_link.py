"""The linker: which listener each upstream server reaches, and why."""
from __future__ import annotations

import shutil
from pathlib import Path

from mailproxy_lint.engine import analyse, run

RULES = Path(__file__).parent / "fixtures" / "rules"
GOOD = RULES / "MPL101" / "good-traefik-labels-to-dms-postscreen-override"
BAD = RULES / "MPL101" / "bad-traefik-labels-to-dms-stock-postscreen"


def test_stacks_in_one_tree_are_linked_within_their_own_folder(tmp_path, monkeypatch):
    # Many compose stacks with the same entrypoint, service and container names: each route
    # links to its own stack only, so links grow linearly and findings stay where they belong.
    for i in range(20):
        shutil.copytree(GOOD if i % 2 else BAD, tmp_path / f"stack{i:02d}")
    monkeypatch.chdir(tmp_path)
    deployment = analyse(".", [Path(".")])
    assert len(deployment.links) == 20
    for lk in deployment.links:
        folder = lk.route.span.path.split("/")[0]
        assert lk.entrypoint.span.path.split("/")[0] == folder
        assert lk.listener.span.path.split("/")[0] == folder
    result = run([Path(".")])
    assert {f.rule_id for f in result.findings} == {"MPL101"}, "stacks must not collide with each other"
    assert sorted(f.span.path.split("/")[0] for f in result.findings) == [f"stack{i:02d}" for i in range(0, 20, 2)]
    hosts = sorted(h.name for h in deployment.hosts if h.name.endswith("mailserver"))
    assert hosts[:2] == ["stack00/mailserver", "stack01/mailserver"]


def test_plain_directory_links_by_port_with_evidence(monkeypatch):
    monkeypatch.chdir(RULES / "MPL101" / "bad-haproxy-to-dovecot-without-haproxy")
    [lk] = analyse(".", [Path(".")]).links
    assert (lk.server.host, lk.server.port, lk.listener.port) == ("10.0.0.1", 143, 143)
    assert lk.evidence == "port 143 on 10.0.0.1, taken to be the mail server in this directory"
    assert lk.route.name == "imap/dovecot_imap" and lk.entrypoint.port == 143
